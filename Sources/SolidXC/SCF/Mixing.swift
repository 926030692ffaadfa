#if canImport(Glibc)
import Glibc
#endif

/// Kerker-preconditioned Anderson (Pulay) mixing of the density.
/// The preconditioned residual is P R = F^{-1}[ G^2/(G^2 + q0^2) R(G) ] on the spin-summed part
/// (the magnetisation part is unpreconditioned), and Anderson extrapolates the total density
/// over the last `history` iterates; the magnetisation takes plain damped steps until the SCF is
/// close to its fixed point, then joins the extrapolation (`next(..., joint:)`).
public final class AndersonKerkerMixer {
    let basis: PlaneWaveBasis
    let beta: Double
    let q0: Double
    let history: Int
    /// The last iterate and its preconditioned residual (empty before the first Anderson step).
    var previousInput: [Double] = []
    var previousResidual: [Double] = []
    /// Consecutive differences x_{j+1} - x_j and f_{j+1} - f_j of the last `history` iterates,
    /// oldest first, in single precision: they only steer the extrapolation (the residual of
    /// every step is computed afresh in double precision), and they take a quarter of the memory
    /// of the 2(m + 1) double-precision iterates they replace (spin-polarised Ni, 48^3, joint mode,
    /// m = 10: 18 MiB instead of 39).
    var inputSteps: [[Float]] = []
    var residualSteps: [[Float]] = []

    func clearHistory() {
        previousInput = []
        previousResidual = []
        inputSteps.removeAll()
        residualSteps.removeAll()
    }

    public init(basis: PlaneWaveBasis, beta: Double, q0: Double, history: Int = 10) {
        self.basis = basis
        self.beta = beta
        self.q0 = q0
        self.history = history
    }

    func precondition(_ r: [Double], nspin: Int) -> [Double] {
        let n = basis.gridCount
        var total = [Double](repeating: 0, count: n)
        for s in 0..<nspin { for i in 0..<n { total[i] += r[s * n + i] } }
        var tg = basis.fft.forward(real: total)
        let q2 = q0 * q0
        for i in 0..<n {
            // G = 0 carries no residual (the densities are normalised); with q0 = 0 (no Kerker
            // damping) its factor 0/0 would be NaN, so it is set to 0 explicitly.
            let g2 = basis.gNorm2[i]
            tg[i] = g2 > 0 ? (g2 / (g2 + q2)) * tg[i] : Complex(0, 0)
        }
        let pt = basis.fft.backwardReal(tg)
        if nspin == 1 { return pt }
        var out = [Double](repeating: 0, count: 2 * n)
        for i in 0..<n {
            let m = r[i] - r[n + i]
            out[i] = 0.5 * (pt[i] + m)
            out[n + i] = 0.5 * (pt[i] - m)
        }
        return out
    }

    /// Next input density from the current input and output densities.
    ///
    /// Without spin: Anderson over the Kerker-preconditioned residuals. With spin the total
    /// density goes through Anderson while the magnetisation takes plain damped steps: a
    /// least-squares extrapolation over the magnetisation steers to the nearest fixed point,
    /// which for a magnet is often the non-magnetic saddle, whereas plain steps let an unstable
    /// (magnetic) mode grow to the magnetic ground state. During the first `plainSteps`
    /// iterations (far from the fixed point, where the linear model behind Anderson fails) every
    /// step is plain and no history is kept.
    ///
    /// `joint` (spin only) puts the magnetisation into the Anderson extrapolation as well. The SCF
    /// switches it on once the density residual is small: the magnetic state has then formed (or
    /// has not), the linear model holds, and a slowly decaying or growing moment converges in a
    /// few steps instead of a hundred plain ones. Switching modes clears the history.
    public func next(rhoIn: [Double], rhoOut: [Double], nspin: Int, plain: Bool = false, joint: Bool = false) -> [Double] {
        let count = rhoIn.count
        var r = [Double](repeating: 0, count: count)
        for i in 0..<count { r[i] = rhoOut[i] - rhoIn[i] }
        let f = precondition(r, nspin: nspin)
        if nspin == 1 { return anderson(x: rhoIn, f: f, plain: plain) }
        let n = basis.gridCount
        if joint != jointMode {
            clearHistory()
            jointMode = joint
        }
        // [total, magnetisation] (joint) or the total alone.
        var x = [Double](repeating: 0, count: joint ? 2 * n : n)
        var step = [Double](repeating: 0, count: x.count)
        for i in 0..<n {
            x[i] = rhoIn[i] + rhoIn[n + i]
            step[i] = f[i] + f[n + i]
            if joint {
                x[n + i] = rhoIn[i] - rhoIn[n + i]
                step[n + i] = f[i] - f[n + i]
            }
        }
        let mixed = anderson(x: x, f: step, plain: plain)
        var out = [Double](repeating: 0, count: 2 * n)
        for i in 0..<n {
            let m = joint ? mixed[n + i] : rhoIn[i] - rhoIn[n + i] + beta * (f[i] - f[n + i])
            out[i] = 0.5 * (mixed[i] + m)
            out[n + i] = 0.5 * (mixed[i] - m)
        }
        return out
    }
    private var jointMode = false

    /// One Anderson step for iterate `x` with preconditioned residual `f` (plain if asked).
    ///
    /// Least squares over the history: minimise |f - sum_j gamma_j df_j|^2, then
    /// x' = x + beta f - sum_j gamma_j (dx_j + beta df_j), with dx_j, df_j the consecutive
    /// differences. They span what the differences to the current iterate (x - x_j, f - f_j) span,
    /// so this is the usual Anderson (Pulay) step.
    func anderson(x rhoIn: [Double], f: [Double], plain: Bool) -> [Double] {
        let count = rhoIn.count
        var x = rhoIn
        for i in 0..<count { x[i] += beta * f[i] }
        if plain {
            clearHistory()
            return x
        }
        if previousInput.count == count {
            var dx = [Float](repeating: 0, count: count)
            var df = [Float](repeating: 0, count: count)
            for i in 0..<count {
                dx[i] = Float(rhoIn[i] - previousInput[i])
                df[i] = Float(f[i] - previousResidual[i])
            }
            inputSteps.append(dx)
            residualSteps.append(df)
            if inputSteps.count > history {
                inputSteps.removeFirst()
                residualSteps.removeFirst()
            }
        }
        previousInput = rhoIn
        previousResidual = f
        let m = inputSteps.count
        guard m > 0 else { return x }
        var gram = [Double](repeating: 0, count: m * m)
        var rhs = [Double](repeating: 0, count: m)
        f.withUnsafeBufferPointer { fp in
            for a in 0..<m {
                residualSteps[a].withUnsafeBufferPointer { ra in
                    for b in a..<m {
                        residualSteps[b].withUnsafeBufferPointer { rb in
                            var s = 0.0
                            for i in 0..<count { s += Double(ra[i]) * Double(rb[i]) }
                            gram[a * m + b] = s
                            gram[b * m + a] = s
                        }
                    }
                    var s = 0.0
                    for i in 0..<count { s += Double(ra[i]) * fp[i] }
                    rhs[a] = s
                }
            }
        }
        guard let gamma = AndersonKerkerMixer.solveRegularised(gram, rhs, m) else { return x }
        for j in 0..<m {
            let g = gamma[j]
            inputSteps[j].withUnsafeBufferPointer { dx in residualSteps[j].withUnsafeBufferPointer { df in
                for i in 0..<count { x[i] -= g * (Double(dx[i]) + beta * Double(df[i])) }
            } }
        }
        return x
    }

    /// Solves (A + eps*trace/m I) x = b by Gaussian elimination with partial pivoting.
    static func solveRegularised(_ a0: [Double], _ b0: [Double], _ m: Int) -> [Double]? {
        var a = a0
        var b = b0
        var trace = 0.0
        for i in 0..<m { trace += a[i * m + i] }
        guard trace > 0, trace.isFinite else { return nil }
        for i in 0..<m { a[i * m + i] += 1e-10 * trace / Double(m) }
        for col in 0..<m {
            var pivot = col
            for r in col..<m where abs(a[r * m + col]) > abs(a[pivot * m + col]) { pivot = r }
            if abs(a[pivot * m + col]) < 1e-300 { return nil }
            if pivot != col {
                for c in 0..<m { a.swapAt(col * m + c, pivot * m + c) }
                b.swapAt(col, pivot)
            }
            for r in (col + 1)..<m {
                let factor = a[r * m + col] / a[col * m + col]
                for c in col..<m { a[r * m + c] -= factor * a[col * m + c] }
                b[r] -= factor * b[col]
            }
        }
        var x = [Double](repeating: 0, count: m)
        for r in stride(from: m - 1, through: 0, by: -1) {
            var s = b[r]
            for c in (r + 1)..<m { s -= a[r * m + c] * x[c] }
            x[r] = s / a[r * m + r]
        }
        return x.allSatisfy({ $0.isFinite }) ? x : nil
    }
}
