#if canImport(Glibc)
import Glibc
#endif

/// What the response and the backward pass need from a converged SCF: the Hamiltonian the final
/// orbitals diagonalise (its local potential and terms), the orbitals, eigenvalues, occupations
/// and Fermi level, and the converged density.
public final class ConvergedState {
    let scf: SelfConsistentField
    /// [nspin][N], Ha: the local potential of the last diagonalisation.
    let potential: [Double]
    /// Per (spin, k): npw x nbands, orthonormal.
    let orbitals: [[Complex]]
    let eigenvalues: [[Double]]
    let occupations: [[Double]]
    let fermiLevel: Double
    /// [nspin][N], electrons/bohr^3.
    let density: [Double]

    init(scf: SelfConsistentField, potential: [Double], orbitals: [[Complex]], eigenvalues: [[Double]],
         occupations: [[Double]], fermiLevel: Double, density: [Double]) {
        self.scf = scf
        self.potential = potential
        self.orbitals = orbitals
        self.eigenvalues = eigenvalues
        self.occupations = occupations
        self.fermiLevel = fermiLevel
        self.density = density
    }

    private let lock = Lock()
    private var preparedXcKernel: XcKernel? = nil

    /// The xc kernel at the converged density, prepared on first use.
    func xcKernel() throws -> XcKernel? {
        guard let xc else { return nil }
        return try lock.withLock {
            if let preparedXcKernel { return preparedXcKernel }
            let kernel = try XcKernel(xc: xc, rho: density, nspin: nspin)
            preparedXcKernel = kernel
            return kernel
        }
    }

    var basis: PlaneWaveBasis { scf.basis }
    var nspin: Int { scf.nspin }
    var xc: Xc? { scf.terms.lazy.compactMap { $0 as? Xc }.first }
}

/// The independent-particle response at fixed electron number, chi0: dV ([nspin][N], a local
/// potential perturbation with the crystal's symmetry) -> drho ([nspin][N]). ADJOINT.md, after
/// Herbst and Levitt (2022):
///
/// - pairs of computed bands: (f_n - f_m)/(e_n - e_m) psi_n* psi_m <psi_m|dV|psi_n>, the ratio
///   replaced by the mean of f'(e_n), f'(e_m) when the two levels are closer than 1e-9 Ha, so
///   degenerate states never divide by a small number;
/// - the bands beyond those computed, through the Sternheimer equation
///   (H - e_n) dpsi_n = -P dV psi_n on the complement of the computed bands (P projects onto it),
///   solved by preconditioned conjugate gradients for every state holding electrons;
/// - the Fermi-level shift dmu = sum w f' de / sum w f' that keeps N fixed (smearing only).
///
/// Only the irreducible k-points are computed; the result is symmetrised, which is exact for a
/// symmetric dV.
struct Chi0 {
    let state: ConvergedState
    /// Relative residual at which each Sternheimer solve stops (`apply` may be given another).
    let tolerance: Double
    let maxIterations: Int
    /// Per (spin, k) block: its orbitals on the real-space grid, kept between applications when
    /// all blocks together fit in `cacheBytes`.
    private let blocks: [BlockCache]
    static let cacheBytes = 512 << 20

    final class BlockCache {
        var psiR: [Complex]? = nil
        var fermiWeight: [Double]? = nil
    }

    init(state: ConvergedState, tolerance: Double, maxIterations: Int) {
        self.state = state
        self.tolerance = tolerance
        self.maxIterations = maxIterations
        blocks = state.orbitals.map { _ in BlockCache() }
    }

    private var cacheOrbitals: Bool {
        let n = state.basis.gridCount
        let values = state.eigenvalues.reduce(0) { $0 + $1.count * n }
        return values * MemoryLayout<Complex>.stride <= Chi0.cacheBytes
    }

    /// Statistics of the last applications.
    final class Stats {
        var worstResidual = 0.0
        var iterations = 0
        var applications = 0
    }
    let stats = Stats()

    /// One (spin, k) block's contribution.
    struct Partial {
        var drho: [Double] = []
        var fermiWeight: [Double] = []
        var sumFpDe = 0.0
        var sumFp = 0.0
        var worst = 0.0
        var iterations = 0
        /// The Sternheimer solutions (npw x occupied), when asked to keep them.
        var solution: [Complex] = []
        var error: Error? = nil
    }

    /// States with fewer electrons than this (relative to the spin factor) need no Sternheimer solve.
    static let emptyThreshold = 1e-12
    /// Levels closer than this (Ha) are treated as degenerate.
    static let degenerate = 1e-9
    /// Ha: the Sternheimer preconditioner is 1/(T_G + shift).
    static let preconditionerShift = 0.1

    func apply(_ dv: [Double], tolerance requested: Double? = nil) throws -> [Double] {
        try apply(dv, tolerance: requested, keep: false, start: nil).drho
    }

    /// `apply`, also returning every (spin, k) block's Sternheimer solutions (npw x occupied
    /// bands, empty for a block without occupied states) when `keep` is true. `start`, if given,
    /// holds such solutions (for example a linear combination of earlier ones, for a dV that is
    /// the same combination of earlier dVs) from which the solves start.
    func apply(_ dv: [Double], tolerance requested: Double?, keep: Bool, start: [[Complex]]?) throws
        -> (drho: [Double], solutions: [[Complex]]) {
        let tolerance = requested ?? self.tolerance
        let basis = state.basis
        let nk = basis.kpoints.count
        let nspin = state.nspin
        let n = basis.gridCount
        let jobs = nspin * nk
        let omega = basis.model.lattice.volume
        let smearing = state.scf.smearing
        let spinFactor: Double = nspin == 1 ? 2 : 1
        var partials = [Partial](repeating: Partial(), count: jobs)
        let lock = Lock()
        let threads = max(1, min(state.scf.threads, jobs))
        state.potential.withUnsafeBufferPointer { vp in
            parallelJobs(jobs, threads: threads) { [self] job, _ in
                var partial = Partial()
                do {
                    partial = try applyBlock(job: job, dv: dv, potential: vp, smearing: smearing, spinFactor: spinFactor,
                                             tolerance: tolerance, keep: keep, start: start?[job])
                } catch {
                    partial.error = error
                }
                lock.withLock { partials[job] = partial }
            }
        }
        if let error = partials.lazy.compactMap({ $0.error }).first { throw error }
        var drho = [Double](repeating: 0, count: nspin * n)
        var fermiWeight = [Double](repeating: 0, count: nspin * n)
        var sumFpDe = 0.0, sumFp = 0.0
        for job in 0..<jobs {
            let s = job / nk
            let w = basis.kpoints[job % nk].weight / omega
            let p = partials[job]
            for i in 0..<n { drho[s * n + i] += w * p.drho[i] }
            if !p.fermiWeight.isEmpty { for i in 0..<n { fermiWeight[s * n + i] += w * p.fermiWeight[i] } }
            sumFpDe += basis.kpoints[job % nk].weight * p.sumFpDe
            sumFp += basis.kpoints[job % nk].weight * p.sumFp
            stats.worstResidual = max(stats.worstResidual, p.worst)
            stats.iterations = max(stats.iterations, p.iterations)
        }
        stats.applications += 1
        // The Fermi level moves so that the electron count stays fixed: dmu = sum w f' de / sum w f'.
        if smearing != nil && sumFp != 0 {
            let dmu = sumFpDe / sumFp
            for i in 0..<(nspin * n) { drho[i] -= dmu * fermiWeight[i] }
        }
        return (basis.symmetry.symmetrise(spins: drho, nspin: nspin, fft: basis.fft), keep ? partials.map { $0.solution } : [])
    }

    /// One (spin, k) block's contribution, before the k weight and 1/Omega.
    private func applyBlock(job: Int, dv: [Double], potential: UnsafeBufferPointer<Double>, smearing: Smearing?,
                            spinFactor: Double, tolerance: Double, keep: Bool, start: [Complex]?) throws -> Partial {
        let basis = state.basis
        let nk = basis.kpoints.count
        let n = basis.gridCount
        let s = job / nk
        let k = job % nk
        let kb = basis.kpoints[k]
        let npw = kb.count
        let psi = state.orbitals[job]
        let eps = state.eigenvalues[job]
        let occ = state.occupations[job]
        let nb = eps.count
        let h = HamiltonianBlock(basis: basis, k: k, spin: s,
                                 potential: UnsafeBufferPointer(rebasing: potential[(s * n)..<((s + 1) * n)]), terms: state.scf.terms)
        guard let sphere = h.sphere else { throw SolidXCError.numerical(message: "response: no FFT plan for k-point \(k)") }
        let workspace = h.workspace
        // Orbitals on the grid (cached), and dV psi_n back on the sphere.
        let cached = blocks[job].psiR
        var psiR = cached ?? [Complex](repeating: .zero, count: nb * n)
        if cached == nil {
            psi.withUnsafeBufferPointer { pp in
                psiR.withUnsafeMutableBufferPointer { rr in
                    for band in 0..<nb {
                        sphere.backward(pp.baseAddress! + band * npw, into: rr.baseAddress! + band * n, workspace: workspace)
                    }
                }
            }
            if cacheOrbitals { blocks[job].psiR = psiR }
        }
        // Occupation derivatives df/de (electrons per Ha), zero without smearing.
        var fp = [Double](repeating: 0, count: nb)
        if let smearing {
            for i in 0..<nb { fp[i] = spinFactor * smearing.derivative((eps[i] - state.fermiLevel) / smearing.width) / smearing.width }
        }
        // Only the bands that hold electrons or lie near the Fermi level (f' not negligible) take
        // part: between two others A_nm vanishes (to ~1e-12 of their occupations), and for one of
        // each, <psi_m|dV|psi_n> is the conjugate of <psi_n|dV|psi_m>. So dV psi is formed (one
        // FFT each) for those bands alone: half the bands for the bench's Si.
        let width = smearing?.width ?? 0
        let taking = (0..<nb).filter { abs(occ[$0]) > Chi0.emptyThreshold * spinFactor || abs(fp[$0]) * width > Chi0.emptyThreshold * spinFactor }
        var slot = [Int](repeating: -1, count: nb)
        for (j, band) in taking.enumerated() { slot[band] = j }
        let q = taking.count
        var dvPsi = [Complex](repeating: .zero, count: q * npw)
        let real = basis.fft.makeBuffer()
        let rp = real.pointer
        dv.withUnsafeBufferPointer { dvp in
            psiR.withUnsafeBufferPointer { rr in
                dvPsi.withUnsafeMutableBufferPointer { dp in
                    let v = dvp.baseAddress! + s * n
                    for (j, band) in taking.enumerated() {
                        let orbital = rr.baseAddress! + band * n
                        for i in 0..<n { rp[i] = Complex(v[i] * orbital[i].re, v[i] * orbital[i].im) }
                        sphere.forward(rp, into: dp.baseAddress! + j * npw, scale: 1.0 / Double(n), workspace: workspace)
                    }
                }
            }
        }
        // M_mn = <psi_m|dV|psi_n> for n taking part (column slot[n]).
        var m = [Complex](repeating: .zero, count: nb * max(q, 1))
        if q > 0 {
            psi.withUnsafeBufferPointer { a in dvPsi.withUnsafeBufferPointer { b in m.withUnsafeMutableBufferPointer { c in
                gemmAdjointA(a.baseAddress!, b.baseAddress!, m: npw, p: nb, q: q, c.baseAddress!)
            } } }
        }
        // B_mn = A_nm M_mn with A_nm = (f_n - f_m)/(e_n - e_m), or the mean f' for degenerate levels.
        // A is symmetric and M Hermitian, so B_nm = conj(B_mn), and the pairs' sum
        // sum_{n,m} Re(psi_n^* psi_m B_mn) needs only the columns n that take part (B vanishes
        // between two others): a pair of one such band and one other appears once, weighted 2.
        var b = [Complex](repeating: .zero, count: nb * max(q, 1))
        var sumFpDe = 0.0, sumFp = 0.0
        for (j, col) in taking.enumerated() {
            for row in 0..<nb {
                let de = eps[col] - eps[row]
                let a = abs(de) > Chi0.degenerate ? (occ[col] - occ[row]) / de : 0.5 * (fp[col] + fp[row])
                b[j * nb + row] = (slot[row] >= 0 ? a : 2 * a) * m[j * nb + row]
            }
            sumFpDe += fp[col] * m[j * nb + col].re
        }
        for col in 0..<nb { sumFp += fp[col] }
        // drho = sum_{n taking part} Re(psi_n^* chi_n) with chi_n = sum_m psi_m B_mn + 2 f_n dpsi_n
        // (the second term for occupied n), formed on the sphere (Psi B: npw x nb x q) and taken to
        // the grid with one FFT per band taking part.
        var chi = [Complex](repeating: .zero, count: npw * max(q, 1))
        if q > 0 {
            psi.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { bp in chi.withUnsafeMutableBufferPointer { c in
                gemm(a.baseAddress!, bp.baseAddress!, m: npw, k: nb, n: q, c.baseAddress!)
            } } }
        }
        // Sternheimer for the occupied states.
        // (Methfessel-Paxton and cold smearing give some states small negative occupations; they
        // count as holding electrons.)
        let occupied = (0..<nb).filter { abs(occ[$0]) > Chi0.emptyThreshold * spinFactor }
        var worst = 0.0, iterations = 0
        var kept: [Complex] = []
        if !occupied.isEmpty {
            var rhs = [Complex](repeating: .zero, count: npw * occupied.count)
            for (c, band) in occupied.enumerated() {
                let from = slot[band] * npw  // occupied bands take part
                for g in 0..<npw { rhs[c * npw + g] = Complex(-dvPsi[from + g].re, -dvPsi[from + g].im) }
            }
            let solved = try sternheimer(h: h, psi: psi, npw: npw, nb: nb, kinetic: kb.kinetic,
                                         shifts: occupied.map { eps[$0] }, rhs: rhs, k: k, spin: job / nk,
                                         tolerance: tolerance, weights: occupied.map { min(1, abs(occ[$0]) / spinFactor) },
                                         start: start.flatMap { $0.count == rhs.count ? $0 : nil })
            worst = solved.worst
            iterations = solved.iterations
            if keep { kept = solved.x }
            for (c, band) in occupied.enumerated() {
                let f = 2 * occ[band]
                let to = slot[band] * npw
                for g in 0..<npw { chi[to + g] = chi[to + g] + f * solved.x[c * npw + g] }
            }
        }
        var drho = [Double](repeating: 0, count: n)
        if q > 0 {
            let chiR = basis.fft.makeBuffer()
            let cr = chiR.pointer
            chi.withUnsafeBufferPointer { cp in psiR.withUnsafeBufferPointer { rr in drho.withUnsafeMutableBufferPointer { d in
                for (j, band) in taking.enumerated() {
                    sphere.backward(cp.baseAddress! + j * npw, into: cr, workspace: workspace)
                    let orbital = rr.baseAddress! + band * n
                    for i in 0..<n { d[i] += orbital[i].re * cr[i].re + orbital[i].im * cr[i].im }
                }
            } } }
        }
        // sum_n f'_n |psi_n|^2, for the Fermi-level shift.
        var fermiWeight = blocks[job].fermiWeight ?? []
        if smearing != nil && fermiWeight.isEmpty {
            fermiWeight = [Double](repeating: 0, count: n)
            psiR.withUnsafeBufferPointer { rr in fermiWeight.withUnsafeMutableBufferPointer { fw in
                for band in 0..<nb where fp[band] != 0 {
                    let orbital = rr.baseAddress! + band * n
                    for i in 0..<n { fw[i] += fp[band] * orbital[i].norm2 }
                }
            } }
            if cacheOrbitals { blocks[job].fermiWeight = fermiWeight }
        }
        return Partial(drho: drho, fermiWeight: fermiWeight, sumFpDe: sumFpDe, sumFp: sumFp, worst: worst, iterations: iterations,
                       solution: kept)
    }

    /// Solves (H - e_c) x_c = rhs_c on the complement of the computed bands, for every column c,
    /// by preconditioned conjugate gradients run in lockstep (one batched H application per step),
    /// from x = 0 or from `start` (projected onto the complement first; one more H application).
    /// The work vectors are made once, before the iterations.
    private func sternheimer(h: HamiltonianBlock, psi: [Complex], npw: Int, nb: Int, kinetic: [Double], shifts: [Double],
                             rhs: [Complex], k: Int, spin: Int, tolerance: Double,
                             weights: [Double], start: [Complex]? = nil) throws -> (x: [Complex], worst: Double, iterations: Int) {
        let ncol = shifts.count
        // A state holding a fraction f of its capacity enters drho as f dpsi, so its solve may
        // stop at tolerance / f (at most 1e-2): partly filled states near the Fermi level,
        // the slowest to converge, need less.
        let columnTolerance = weights.map { min(max(tolerance, 1e-2), tolerance / max($0, 1e-300)) }
        var coefficients = [Complex](repeating: .zero, count: nb * ncol)
        // v <- v - Psi (Psi^H v), for `count` columns.
        func project(_ v: UnsafeMutablePointer<Complex>, _ count: Int) {
            psi.withUnsafeBufferPointer { a in coefficients.withUnsafeMutableBufferPointer { cp in
                gemmAdjointA(a.baseAddress!, v, m: npw, p: nb, q: count, cp.baseAddress!)
                gemm(a.baseAddress!, cp.baseAddress!, m: npw, k: nb, n: count, v, alpha: Complex(-1, 0), beta: Complex(1, 0))
            } }
        }
        // Kinetic preconditioner 1/(T_G + shift). The shift only keeps it finite at k + G = 0: on
        // Si and Al any value from 0.01 to 0.2 Ha needs half the CG iterations of a shift equal
        // to the right-hand side's kinetic energy (the common choice for eigensolvers), because the
        // low end of H - e_n on the complement lies near the band gap, not near the kinetic energy.
        // Residuals are measured against |dV psi_n| before the projection: when the computed bands
        // nearly span the basis, the projected right-hand side is rounding noise that no solver
        // can reduce further, and it contributes nothing.
        let shift = Chi0.preconditionerShift
        var norms = [Double](repeating: 0, count: ncol)
        for c in 0..<ncol {
            var w = 0.0
            for g in 0..<npw { w += rhs[c * npw + g].norm2 }
            norms[c] = w.squareRoot()
        }
        var b = rhs
        b.withUnsafeMutableBufferPointer { project($0.baseAddress!, ncol) }
        for c in 0..<ncol {
            var w = 0.0
            for g in 0..<npw { w += b[c * npw + g].norm2 }
            if w.squareRoot() <= columnTolerance[c] * norms[c] { norms[c] = 0 }
        }
        let inverseKinetic = kinetic.map { 1 / ($0 + shift) }
        // z <- Q P z in place, for `count` columns.
        func precondition(_ z: UnsafeMutablePointer<Complex>, _ count: Int) {
            inverseKinetic.withUnsafeBufferPointer { pk in
                for j in 0..<count {
                    let column = z + j * npw
                    for g in 0..<npw { column[g] = pk[g] * column[g] }
                }
            }
            project(z, count)
        }
        // out = Q (H - e_c) input for the columns `columns` (gathered in `input`, in that order).
        func operate(_ input: UnsafeMutablePointer<Complex>, _ columns: [Int], into out: UnsafeMutablePointer<Complex>) {
            h.apply(input, nvec: columns.count, into: out)
            for (j, c) in columns.enumerated() {
                let e = shifts[c]
                for g in 0..<npw { out[j * npw + g] = out[j * npw + g] - e * input[j * npw + g] }
            }
            project(out, columns.count)
        }
        var x = [Complex](repeating: .zero, count: npw * ncol)
        var r = b
        var active = (0..<ncol).filter { norms[$0] > 0 }
        // Gathered active columns of p, their images, and the residuals to precondition.
        var gathered = [Complex](repeating: .zero, count: npw * ncol)
        var image = [Complex](repeating: .zero, count: npw * ncol)
        var work = [Complex](repeating: .zero, count: npw * ncol)
        // Columns already converged start (and stay) at x = 0.
        var residual = norms
        if var x0 = start {
            // r = b - Q (H - e) Q x0 for the columns still to solve; a column the start already
            // solves to its tolerance keeps it.
            for c in 0..<ncol where norms[c] == 0 { for g in 0..<npw { x0[c * npw + g] = .zero } }
            x0.withUnsafeMutableBufferPointer { xp in
                project(xp.baseAddress!, ncol)
                image.withUnsafeMutableBufferPointer { operate(xp.baseAddress!, Array(0..<ncol), into: $0.baseAddress!) }
            }
            x = x0
            var still: [Int] = []
            for c in active {
                var norm = 0.0
                for g in 0..<npw {
                    r[c * npw + g] = b[c * npw + g] - image[c * npw + g]
                    norm += r[c * npw + g].norm2
                }
                residual[c] = norm.squareRoot()
                if residual[c] > columnTolerance[c] * norms[c] { still.append(c) }
            }
            active = still
        }
        var p = r
        p.withUnsafeMutableBufferPointer { precondition($0.baseAddress!, ncol) }
        var rz = (0..<ncol).map { c in realDot(r, p, c, npw) }
        var iteration = 0
        while !active.isEmpty && iteration < maxIterations {
            iteration += 1
            var still: [Int] = []
            var failed = false
            x.withUnsafeMutableBufferPointer { xb in r.withUnsafeMutableBufferPointer { rb in p.withUnsafeMutableBufferPointer { pb in
            gathered.withUnsafeMutableBufferPointer { gb in image.withUnsafeMutableBufferPointer { ib in work.withUnsafeMutableBufferPointer { wb in
                let xp = xb.baseAddress!, rp = rb.baseAddress!, pp = pb.baseAddress!
                let pa = gb.baseAddress!, ap = ib.baseAddress!, z = wb.baseAddress!
                // A p for the active columns.
                for (j, c) in active.enumerated() { (pa + j * npw).update(from: pp + c * npw, count: npw) }
                operate(pa, active, into: ap)
                for (j, c) in active.enumerated() {
                    var pap = 0.0
                    for g in 0..<npw { pap += pa[j * npw + g].re * ap[j * npw + g].re + pa[j * npw + g].im * ap[j * npw + g].im }
                    guard pap > 0, pap.isFinite else { failed = true; return }
                    let alpha = rz[c] / pap
                    var norm = 0.0
                    for g in 0..<npw {
                        let idx = c * npw + g
                        xp[idx] += alpha * pp[idx]
                        rp[idx] = rp[idx] - alpha * ap[j * npw + g]
                        norm += rp[idx].norm2
                    }
                    residual[c] = norm.squareRoot()
                    if residual[c] > columnTolerance[c] * norms[c] {
                        (z + still.count * npw).update(from: rp + c * npw, count: npw)
                        still.append(c)
                    }
                }
                if still.isEmpty { return }
                precondition(z, still.count)
                for (j, c) in still.enumerated() {
                    var rzNew = 0.0
                    for g in 0..<npw { rzNew += rp[c * npw + g].re * z[j * npw + g].re + rp[c * npw + g].im * z[j * npw + g].im }
                    let beta = rzNew / rz[c]
                    rz[c] = rzNew
                    for g in 0..<npw {
                        let idx = c * npw + g
                        pp[idx] = z[j * npw + g] + beta * pp[idx]
                    }
                }
            } } } } } }
            guard !failed else {
                throw SolidXCError.numerical(message: "response: the Sternheimer operator H - e is not positive on the unoccupied space at k-point \(k), spin \(spin) (computed bands too few? raise nbands)")
            }
            active = still
        }
        var worst = 0.0
        for c in 0..<ncol where norms[c] > 0 { worst = max(worst, residual[c] / norms[c] * weights[c]) }
        if !active.isEmpty {
            throw SolidXCError.convergence(message: "response: Sternheimer solve at k-point \(k), spin \(spin) reached \(maxIterations) iterations with relative residual \(worst) (tolerance \(tolerance))", history: [worst])
        }
        return (x, worst, iteration)
    }

    private func realDot(_ a: [Complex], _ b: [Complex], _ c: Int, _ npw: Int) -> Double {
        var s = 0.0
        for g in 0..<npw { s += a[c * npw + g].re * b[c * npw + g].re + a[c * npw + g].im * b[c * npw + g].im }
        return s
    }
}
