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
    var inputs: [[Double]] = []
    var residuals: [[Double]] = []

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
            inputs.removeAll()
            residuals.removeAll()
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
    func anderson(x rhoIn: [Double], f: [Double], plain: Bool) -> [Double] {
        let count = rhoIn.count
        if plain {
            inputs.removeAll()
            residuals.removeAll()
            var x = rhoIn
            for i in 0..<count { x[i] += beta * f[i] }
            return x
        }
        inputs.append(rhoIn)
        residuals.append(f)
        if inputs.count > history + 1 {
            inputs.removeFirst()
            residuals.removeFirst()
        }
        let m = inputs.count - 1
        var x = rhoIn
        for i in 0..<count { x[i] += beta * f[i] }
        guard m > 0 else { return x }
        // Least squares: minimise |f - sum_j gamma_j (f - f_j)|^2 over the history. The differences
        // f - f_j and x - x_j are formed on the fly, not stored: 2m arrays of the grid's size
        // (34 MiB for spin-polarised Ni on 48^3 with m = 10) that would double the mixer's memory.
        var gram = [Double](repeating: 0, count: m * m)
        var rhs = [Double](repeating: 0, count: m)
        f.withUnsafeBufferPointer { fp in
            for a in 0..<m {
                residuals[a].withUnsafeBufferPointer { ra in
                    for b in a..<m {
                        residuals[b].withUnsafeBufferPointer { rb in
                            var s = 0.0
                            for i in 0..<count { s += (fp[i] - ra[i]) * (fp[i] - rb[i]) }
                            gram[a * m + b] = s
                            gram[b * m + a] = s
                        }
                    }
                    var s = 0.0
                    for i in 0..<count { s += (fp[i] - ra[i]) * fp[i] }
                    rhs[a] = s
                }
            }
        }
        guard let gamma = AndersonKerkerMixer.solveRegularised(gram, rhs, m) else { return x }
        for j in 0..<m {
            let g = gamma[j]
            inputs[j].withUnsafeBufferPointer { xj in residuals[j].withUnsafeBufferPointer { fj in
                for i in 0..<count { x[i] -= g * ((rhoIn[i] - xj[i]) + beta * (f[i] - fj[i])) }
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
