#if canImport(Glibc)
import Glibc
#endif

/// The loss sensitivities the backward pass takes, as plain partial derivatives of a scalar loss L.
public struct LossGradient {
    /// dL/dE, E the (free) energy per cell (Ha).
    public var energy: Double = 0
    /// dL/drho_s(r_i) for every grid point ([nspin][N]), or empty.
    public var density: [Double] = []
    /// dL/de_nks ([nspin][nk][nband], the result's layout), or empty.
    public var eigenvalues: [Double] = []
    public init(energy: Double = 0, density: [Double] = [], eigenvalues: [Double] = []) {
        self.energy = energy
        self.density = density
        self.eigenvalues = eigenvalues
    }
}

/// Options of the response solve.
public struct BackwardOptions {
    /// Relative residual of the Dyson (GMRES) solve.
    public var tol: Double = 1e-10
    /// GMRES iterations (total, over restarts).
    public var maxiter: Int = 100
    /// Wall-clock limit of the response solve, seconds (nil: none). Checked before every
    /// application of chi0 (each bounded by its Sternheimer iteration limit); over it throws
    /// `SolidXCError.convergence` naming `time_limit`.
    public var timeLimit: Double? = nil
    public init() {}
}

/// The grid adjoints: partial derivatives of L with respect to the functional's outputs at every
/// grid point, at the converged density. dL/dtheta = sum_i adjE_i de_i/dtheta
/// + sum_{s,i} adjVrho_si dvrho_si/dtheta + sum_{ab,i} adjVsigma_abi dvsigma_abi/dtheta.
public struct BackwardResult {
    /// [N]: (dL/dE) Omega/N.
    public var adjE: [Double]
    /// [nspin][N].
    public var adjVrho: [Double]
    /// [nsigma][N] (1 or 3 blocks; empty for LDA).
    public var adjVsigma: [Double]
    /// Achieved relative residual of the Dyson solve (0 when none was needed), its GMRES
    /// iterations, and the worst relative residual of the Sternheimer solves.
    public var residual: Double
    public var iterations: Int
    public var sternheimerResidual: Double
    /// Residual after each GMRES iteration.
    public var history: [Double]
}

public extension SCFResult {
    /// The functional's inputs at the converged density: rho [nspin][N] and, for GGA, sigma
    /// ([1 or 3][N], |grad rho|^2 blocks uu, ud, dd), with the gradients the SCF uses.
    func xcInputs() throws -> (rho: [Double], sigma: [Double]) {
        let state = convergedState
        guard let xc = state.xc else { throw SolidXCError.numerical(message: "backward: the SCF has no xc term") }
        guard xc.functional.family == .gga else { return (state.density, []) }
        return (state.density, xc.sigmas(xc.spinGradients(state.density, nspin: state.nspin), nspin: state.nspin))
    }

    /// The vector-Jacobian product of the converged SCF (ADJOINT.md): the grid adjoints of the
    /// loss with respect to the functional's outputs e, vrho and vsigma.
    func backward(_ gradient: LossGradient, options: BackwardOptions = BackwardOptions()) throws -> BackwardResult {
        _ = MallocTuning.applied
        let state = convergedState
        let basis = state.basis
        let nspin = state.nspin
        let n = basis.gridCount
        guard let xc = state.xc else { throw SolidXCError.numerical(message: "backward: the SCF has no xc term") }
        guard gradient.energy.isFinite else {
            throw SolidXCError.input(field: "dL_dE", message: "must be finite, got \(gradient.energy)")
        }
        guard options.tol.isFinite, options.tol > 0 else {
            throw SolidXCError.input(field: "tol", message: "must be a positive number, got \(options.tol)")
        }
        guard options.maxiter >= 1, options.maxiter <= 100_000 else {
            throw SolidXCError.input(field: "maxiter", message: "must be between 1 and 100000, got \(options.maxiter)")
        }
        try Deadline.validate(options.timeLimit)
        let deadline = Deadline(seconds: options.timeLimit)
        if !gradient.density.isEmpty {
            guard gradient.density.count == nspin * n else {
                throw SolidXCError.input(field: "dL_drho", message: "has \(gradient.density.count) values; expected nspin*n1*n2*n3 = \(nspin * n)")
            }
            if let bad = gradient.density.firstIndex(where: { !$0.isFinite }) {
                throw SolidXCError.input(field: "dL_drho", message: "value \(bad) is not finite")
            }
        }
        let nk = basis.kpoints.count
        let nbands = state.scf.nbands
        if !gradient.eigenvalues.isEmpty {
            guard gradient.eigenvalues.count == nspin * nk * nbands else {
                throw SolidXCError.input(field: "dL_deig", message: "has \(gradient.eigenvalues.count) values; expected nspin*nk*nband = \(nspin * nk * nbands)")
            }
            if let bad = gradient.eigenvalues.firstIndex(where: { !$0.isFinite }) {
                throw SolidXCError.input(field: "dL_deig", message: "value \(bad) is not finite")
            }
        }
        // Eigenvalue density rho_eps = sum dL/de_n |psi_n|^2 / N (plain partials: de = <psi|dV|psi>).
        var rhoEps = [Double](repeating: 0, count: nspin * n)
        var anyEigen = false
        if !gradient.eigenvalues.isEmpty && gradient.eigenvalues.contains(where: { $0 != 0 }) {
            anyEigen = true
            try checkDegenerateLoss(gradient.eigenvalues, state: state)
            for job in 0..<(nspin * nk) {
                let s = job / nk
                let kb = basis.kpoints[job % nk]
                guard let sphere = try? SphereFFT(grid: basis.fft, fftIndex: kb.fftIndex) else {
                    throw SolidXCError.numerical(message: "backward: no FFT plan for k-point \(job % nk)")
                }
                let workspace = SphereFFT.Workspace(basis.fft)
                let real = basis.fft.makeBuffer()
                let rp = real.pointer
                state.orbitals[job].withUnsafeBufferPointer { pp in
                    for band in 0..<nbands {
                        let d = gradient.eigenvalues[job * nbands + band]
                        if d == 0 { continue }
                        sphere.backward(pp.baseAddress! + band * kb.count, into: rp, workspace: workspace)
                        let f = d / Double(n)
                        for i in 0..<n { rhoEps[s * n + i] += f * rp[i].norm2 }
                    }
                }
            }
            rhoEps = basis.symmetry.symmetrise(spins: rhoEps, nspin: nspin, fft: basis.fft)
        }
        // g = dL/drho + K rho_eps, symmetrised; then (1 - chi0 K) w = chi0 g (`dysonSolve`).
        var g = gradient.density.isEmpty ? [Double](repeating: 0, count: nspin * n) : gradient.density
        if anyEigen {
            let k = try kernel(rhoEps, state: state)
            for i in 0..<g.count { g[i] += k[i] }
        }
        g = basis.symmetry.symmetrise(spins: g, nspin: nspin, fft: basis.fft)
        // chi0 maps a potential that is constant in space and the same for both spins to zero
        // (the electron count is fixed: the Fermi level, or the gap, absorbs it), so that part of
        // g changes nothing and is removed. What is left may be nothing but rounding (the
        // symmetrisation's FFTs leave ~4e-14 of a constant), as for a loss on the electron count:
        // below 1e-12 of g, w = 0, without a solve that would chase the noise.
        let largest = g.reduce(0) { max($0, abs($1)) }
        let mean = g.reduce(0, +) / Double(g.count)
        for i in 0..<g.count { g[i] -= mean }
        var w = [Double](repeating: 0, count: nspin * n)
        var residual = 0.0, iterations = 0, sternheimer = 0.0
        var history: [Double] = []
        if g.contains(where: { abs($0) > 1e-12 * largest }) {
            let tight = max(1e-14, 0.1 * options.tol)
            let chi0 = Chi0(state: state, tolerance: tight, maxIterations: 1000)
            let solved = try dysonSolve(g: g, chi0: chi0, tol: options.tol, maxiter: options.maxiter, deadline: deadline,
                                        state: state)
            w = solved.w
            residual = solved.residual
            iterations = solved.iterations
            history = solved.history
            sternheimer = chi0.stats.worstResidual
            guard residual <= options.tol else {
                throw SolidXCError.convergence(message: "backward: the response (Dyson) solve reached \(iterations) GMRES iterations with relative residual \(residual), above the tolerance \(options.tol); raise maxiter or loosen tol", history: history)
            }
        }
        // W = w + rho_eps; adjoints of vrho (W) and vsigma (c_st grad W_s . grad rho_t).
        var bigW = w
        for i in 0..<bigW.count { bigW[i] += rhoEps[i] }
        let adjE = [Double](repeating: gradient.energy * basis.dv, count: n)
        var adjVsigma: [Double] = []
        if xc.functional.family == .gga {
            let gradRho = xc.spinGradients(state.density, nspin: nspin)
            let gradW = xc.spinGradients(bigW, nspin: nspin)
            let pairs = nspin == 1 ? [(0, 0)] : [(0, 0), (0, 1), (1, 1)]
            adjVsigma = [Double](repeating: 0, count: pairs.count * n)
            for (p, (s, t)) in pairs.enumerated() {
                for i in 0..<n {
                    var a = 0.0
                    for c in 0..<3 {
                        a += s == t ? 2 * gradW[s][c][i] * gradRho[s][c][i]
                                    : gradW[s][c][i] * gradRho[t][c][i] + gradW[t][c][i] * gradRho[s][c][i]
                    }
                    adjVsigma[p * n + i] = a
                }
            }
        }
        return BackwardResult(adjE: adjE, adjVrho: bigW, adjVsigma: adjVsigma, residual: residual, iterations: iterations,
                              sternheimerResidual: sternheimer, history: history)
    }
}

/// The Dyson solve (1 - chi0 K) w = chi0 g, to relative residual `tol` (relative to |chi0 g|).
///
/// GMRES runs on the pushed-through form (1 - K chi0) v = g, so the right-hand side needs no chi0
/// application, and keeps every c_j = chi0 v_j of its Krylov vectors: w = chi0 v = sum_j y_j c_j
/// needs no further application either. Each c_j is computed less accurately as the residual
/// falls (inexact GMRES, Simoncini and Szyld 2003; DFTK does the same): its Sternheimer tolerance
/// is tol / (current relative residual), the relaxation of Bouras and Fraysse (2005), capped at
/// 0.1; c_0 and the certification below get 0.1 tol. (On the bench's Si, Al and graphene the
/// certified residual is then 2-3e-11 for tol 1e-10, and the backward pass takes 10 % less time
/// than with 0.1 tol / residual capped at 1e-3.) The residual
/// that decides is the Dyson form's, b - (1 - chi0 K) w = sum_i s_i c_i with s the small GMRES
/// residual vector (Arnoldi: K c_j = v_j - sum_i H_ij v_i), which chi0 filters: a kernel with huge
/// values at a few points (DeepChem's NNPBE where grad rho = 0) leaves the pushed-through residual
/// a floor that the Dyson residual does not have. Its estimate adds |s_j| |c_{j-1}| for the Krylov
/// vector v_j not yet applied, and the certification below is tried once the estimate is below tol.
///
/// The result is then certified with one full-accuracy application: r = chi0 (g + K w) - w is
/// the Dyson residual of w. g + K w = sum_i (s_i + y_i) v_i, so its Sternheimer solves start from
/// that combination of the kept solutions and take a few iterations. If r is above `tol`, the
/// Dyson form is solved for the correction (`gmres`, with its own true-residual checks), as it
/// is when `krylov` iterations (no restarts here) did not get there.
func dysonSolve(g: [Double], chi0: Chi0, tol: Double, maxiter: Int, deadline: Deadline, state: ConvergedState,
                krylov: Int = 30) throws -> (w: [Double], residual: Double, iterations: Int, history: [Double]) {
    let n = g.count
    func dot(_ u: [Double], _ v: [Double]) -> Double { var s = 0.0; for i in 0..<n { s += u[i] * v[i] }; return s }
    let tight = chi0.tolerance
    let beta = dot(g, g).squareRoot()
    var cycle = KrylovCycle(g, norm: beta)
    var c: [[Double]] = []
    var kept: [[[Complex]]] = []
    var keeping = true
    var bnorm = 0.0, relative = 1.0
    var y: [Double] = [], s: [Double] = []
    var history: [Double] = []
    let limit = min(maxiter, krylov)
    // w = sum_i y_i c_i and its certified residual r = chi0 (g + K w) - w.
    func certify(_ j: Int) throws -> (w: [Double], r: [Double], rnorm: Double) {
        var w = [Double](repeating: 0, count: n)
        for i in 0..<j { for t in 0..<n { w[t] += y[i] * c[i][t] } }
        let kw = try kernel(w, state: state)
        var u = g
        for t in 0..<n { u[t] += kw[t] }
        var start: [[Complex]]? = nil
        if keeping && kept.count == j {
            var combined = kept[0].map { [Complex](repeating: .zero, count: $0.count) }
            for i in 0..<j {
                let f = s[i] + y[i]
                for job in 0..<kept[i].count {
                    kept[i][job].withUnsafeBufferPointer { src in
                        combined[job].withUnsafeMutableBufferPointer { dst in
                            for q in 0..<src.count { dst[q] = dst[q] + f * src[q] }
                        }
                    }
                }
            }
            start = combined
        }
        let cu = try chi0.apply(u, tolerance: tight, keep: false, start: start).drho
        var r = [Double](repeating: 0, count: n)
        for t in 0..<n { r[t] = cu[t] - w[t] }
        return (w, r, dot(r, r).squareRoot())
    }
    var j = 0
    var certified: (w: [Double], r: [Double], rnorm: Double)? = nil
    while j < limit {
        try deadline.check("backward: the response (Dyson) solve stopped after \(j) GMRES iterations, not converged", history: history)
        let tolerance = j == 0 ? tight : min(0.1, max(tight, tol / max(relative, 1e-300)))
        let applied = try chi0.apply(cycle.v[j], tolerance: tolerance, keep: keeping, start: nil)
        c.append(applied.drho)
        if keeping {
            kept.append(applied.solutions)
            let bytes = applied.solutions.reduce(0) { $0 + $1.count } * MemoryLayout<Complex>.stride * kept.count
            if bytes > Chi0.cacheBytes { keeping = false; kept = [] }
        }
        let cj = c[j]
        if j == 0 { bnorm = beta * dot(cj, cj).squareRoot() }
        guard bnorm > 0 else { return ([Double](repeating: 0, count: n), 0, 0, []) }
        let kc = try kernel(cj, state: state)
        var wv = [Double](repeating: 0, count: n)
        for t in 0..<n { wv[t] = cycle.v[j][t] - kc[t] }
        let hnext = cycle.add(wv)
        j += 1
        // y over the j Krylov vectors applied so far, and s = beta e_1 - H y (j + 1 entries).
        y = cycle.solve()
        s = [Double](repeating: 0, count: j + 1)
        s[0] = beta
        for l in 0..<j { for i in 0...(l + 1) { s[i] -= cycle.raw[l][i] * y[l] } }
        // The Dyson residual: sum_{i<j} s_i c_i is known; s_j c_j is not (v_j is not applied
        // yet), and |c_j| is estimated by |c_{j-1}|.
        var known = [Double](repeating: 0, count: n)
        for i in 0..<j { for t in 0..<n { known[t] += s[i] * c[i][t] } }
        let knownNorm = dot(known, known).squareRoot() / bnorm
        relative = knownNorm + abs(s[j]) * dot(c[j - 1], c[j - 1]).squareRoot() / bnorm
        history.append(relative)
        // Certify once the known part is small (a few Sternheimer iterations from the kept
        // solutions); if the full residual is still above tol, go on.
        if relative <= tol || hnext == 0 || j == limit {
            let attempt = try certify(j)
            certified = attempt
            if attempt.rnorm <= tol * bnorm || hnext == 0 { break }
        }
    }
    kept = []
    guard let done = certified else {
        throw SolidXCError.input(field: "maxiter", message: "must be at least 1, got \(maxiter)")
    }
    var w = done.w
    let r = done.r, rnorm = done.rnorm
    var residual = rnorm / bnorm
    if residual <= tol { return (w, residual, j, history) }
    // Not certified: solve (1 - chi0 K) d = r for the correction, in the Dyson form.
    var applications: [Double] = []
    let correction = try gmres(b: r, tol: tol * bnorm / rnorm, maxiter: max(1, maxiter - j)) { x, rel in
        try deadline.check("backward: the response (Dyson) solve stopped after \(j + applications.count) GMRES operator applications, not converged", history: history + applications)
        if let rel { applications.append(rel * rnorm / bnorm) }
        let kx = try kernel(x, state: state)
        let loose = rel.map { min(1e-3, max(tight, tight * bnorm / rnorm / max($0, 1e-300))) } ?? tight
        let ckx = try chi0.apply(kx, tolerance: loose)
        return zip(x, ckx).map { $0 - $1 }
    }
    for t in 0..<n { w[t] += correction.x[t] }
    residual = correction.residual * rnorm / bnorm
    return (w, residual, j + correction.iterations, history + correction.history.map { $0 * rnorm / bnorm })
}

/// K drho = (Hartree + xc kernels) drho at the converged density.
func kernel(_ drho: [Double], state: ConvergedState) throws -> [Double] {
    var out = [Double](repeating: 0, count: drho.count)
    for term in state.scf.terms {
        let kernel = term is Xc ? try state.xcKernel()?.apply(drho) : nil
        if let dv = try kernel ?? term.applyKernel(rho: state.density, drho: drho, nspin: state.nspin) {
            for i in 0..<out.count { out[i] += dv[i] }
        }
    }
    return out
}

/// A loss on eigenvalues must treat the members of a degenerate level alike (a band sum, a gap
/// between levels): otherwise its derivative is not defined.
func checkDegenerateLoss(_ d: [Double], state: ConvergedState) throws {
    let nbands = state.scf.nbands
    for (job, eps) in state.eigenvalues.enumerated() {
        for band in 1..<max(1, nbands) where abs(eps[band] - eps[band - 1]) < 1e-6 {
            let a = d[job * nbands + band - 1], b = d[job * nbands + band]
            if abs(a - b) > 1e-10 * max(abs(a), abs(b), 1e-300) {
                let nk = state.basis.kpoints.count
                throw SolidXCError.input(field: "dL_deig", message: "bands \(band - 1) and \(band) at k-point \(job % nk), spin \(job / nk) are degenerate (\(eps[band - 1]), \(eps[band]) Ha) but the loss weights them differently (\(a), \(b)); a loss on eigenvalues must be symmetric within a degenerate level")
            }
        }
    }
}

/// One GMRES cycle's Krylov basis v (orthonormal, modified Gram-Schmidt) and its Hessenberg
/// matrix, kept upper triangular by Givens rotations as columns arrive; e is the rotated
/// right-hand side |r| e_1, whose entry `count` is the cycle's residual norm.
struct KrylovCycle {
    private(set) var v: [[Double]]
    /// Hessenberg columns as computed (count + 1 entries each, h_{i,j} = <v_i, A v_j>) ...
    private(set) var raw: [[Double]] = []
    /// ... and after the rotations.
    private var rotated: [[Double]] = []
    private var cs: [Double] = [], sn: [Double] = []
    private(set) var e: [Double]
    var count: Int { raw.count }

    init(_ r: [Double], norm: Double) {
        v = [r.map { $0 / norm }]
        e = [norm]
    }

    /// Takes A v_count; returns h_{count+1,count} (0: the space is invariant, no new vector).
    mutating func add(_ applied: [Double]) -> Double {
        let j = count, n = applied.count
        var wv = applied
        var column = [Double](repeating: 0, count: j + 2)
        for i in 0...j {
            var d = 0.0
            for t in 0..<n { d += wv[t] * v[i][t] }
            column[i] = d
            for t in 0..<n { wv[t] -= d * v[i][t] }
        }
        var norm2 = 0.0
        for t in 0..<n { norm2 += wv[t] * wv[t] }
        let hnext = norm2.squareRoot()
        column[j + 1] = hnext
        raw.append(column)
        for i in 0..<j {
            let temp = cs[i] * column[i] + sn[i] * column[i + 1]
            column[i + 1] = -sn[i] * column[i] + cs[i] * column[i + 1]
            column[i] = temp
        }
        let denom = (column[j] * column[j] + column[j + 1] * column[j + 1]).squareRoot()
        let c = denom > 0 ? column[j] / denom : 1, s = denom > 0 ? column[j + 1] / denom : 0
        cs.append(c)
        sn.append(s)
        column[j] = c * column[j] + s * hnext
        column[j + 1] = 0
        e.append(-s * e[j])
        e[j] = c * e[j]
        rotated.append(column)
        if hnext > 0 { v.append(wv.map { $0 / hnext }) }
        return hnext
    }

    /// y minimising |norm e_1 - H y| over the `count` vectors added.
    func solve() -> [Double] {
        let j = count
        var y = [Double](repeating: 0, count: j)
        for i in stride(from: j - 1, through: 0, by: -1) {
            var acc = e[i]
            for l in (i + 1)..<j { acc -= rotated[l][i] * y[l] }
            y[i] = acc / rotated[i][i]
        }
        return y
    }
}

/// Restarted GMRES(30) with modified Gram-Schmidt and Givens rotations, from x = 0. `apply`
/// receives the current relative residual inside the Krylov iteration (it may then be applied
/// less accurately) and nil for the true-residual checks, which open every restart cycle; the
/// returned residual is the last true one.
func gmres(b: [Double], tol: Double, maxiter: Int, restart: Int = 30,
           apply: ([Double], Double?) throws -> [Double]) throws -> (x: [Double], residual: Double, iterations: Int, history: [Double]) {
    let n = b.count
    func dot(_ u: [Double], _ v: [Double]) -> Double { var s = 0.0; for i in 0..<n { s += u[i] * v[i] }; return s }
    let bnorm = dot(b, b).squareRoot()
    var x = [Double](repeating: 0, count: n)
    guard bnorm > 0 else { return (x, 0, 0, []) }
    var history: [Double] = []
    var total = 0
    var trueResidual = 1.0
    while true {
        let ax = total == 0 ? [Double](repeating: 0, count: n) : try apply(x, nil)
        var r = [Double](repeating: 0, count: n)
        for i in 0..<n { r[i] = b[i] - ax[i] }
        let beta = dot(r, r).squareRoot()
        trueResidual = beta / bnorm
        if trueResidual <= tol || total >= maxiter { break }
        var cycle = KrylovCycle(r, norm: beta)
        var relative = trueResidual
        while cycle.count < restart && total < maxiter {
            let hnext = cycle.add(try apply(cycle.v[cycle.count], relative))
            total += 1
            relative = abs(cycle.e[cycle.count]) / bnorm
            history.append(relative)
            if relative <= tol || hnext == 0 { break }
        }
        let y = cycle.solve()
        for i in 0..<y.count { for t in 0..<n { x[t] += y[i] * cycle.v[i][t] } }
    }
    return (x, trueResidual, total, history)
}
