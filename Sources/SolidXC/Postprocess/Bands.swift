#if canImport(Glibc)
import Glibc
#endif

/// How a non-self-consistent band calculation is converged.
public struct BandOptions {
    /// Bands per k-point; nil: the SCF's band count.
    public var nbands: Int? = nil
    /// Every band's residual |H psi - eps psi| (Ha, psi normalised) must end below this. The
    /// eigenvalue error is about residual^2 / (gap to the next band).
    public var tolerance: Double = 1e-8
    /// Warm restarts of the eigensolver (200 LOBPCG iterations each) before a convergence error.
    public var restarts: Int = 5
    public init() {}
}

public extension SCFResult {
    /// Kohn-Sham eigenvalues (Ha) at arbitrary k-points (reduced coordinates of the reciprocal
    /// vectors), `[nspin][nk][nbands]` flattened: the non-self-consistent band structure of the
    /// converged potential. Every band is converged to `options.tolerance` or the call throws
    /// `SolidXCError.convergence`.
    func bands(kpoints: [Vec3], options: BandOptions = BandOptions()) throws -> [Double] {
        try convergedState.bands(kpoints: kpoints, options: options)
    }
}

extension KGrid {
    /// An explicit list of k-points (reduced coordinates) with equal weights: the k-set of a band
    /// calculation, which is no Monkhorst-Pack grid (`size` records only the count).
    init(explicit points: [Vec3]) {
        size = [points.count, 1, 1]
        shift = [0, 0, 0]
        kpoints = points
        weights = [Double](repeating: 1 / Double(max(points.count, 1)), count: points.count)
    }
}

extension ConvergedState {
    /// The k-points are solved in chunks: each chunk gets its own plane-wave basis (same ecut and
    /// FFT grid as the SCF, so the converged local potential applies unchanged) and its own
    /// `SelfConsistentField`, whose terms are built exactly as the SCF's were. So every
    /// k-dependent operator (kinetic, nonlocal, and any later term) enters the band Hamiltonian,
    /// and the SCF's diagonaliser (dense or LOBPCG, threaded over k) does the work. Only the
    /// diagonaliser of that object is used; it runs no SCF.
    func bands(kpoints: [Vec3], options: BandOptions) throws -> [Double] {
        guard !kpoints.isEmpty else {
            throw SolidXCError.input(field: "kpoints", message: "no k-points given; pass at least one")
        }
        // Eigenvalues are periodic in k and the sphere {k+G} at k+G0 is the same set of vectors,
        // so folding is exact; the bound keeps the folding itself exact.
        var folded: [Vec3] = []
        for (i, k) in kpoints.enumerated() {
            guard (0..<3).allSatisfy({ k[$0].isFinite && abs(k[$0]) <= 1e6 }) else {
                throw SolidXCError.input(field: "kpoints[\(i)]", message: "must be 3 finite reduced coordinates of size at most 1e6, got (\(k.x), \(k.y), \(k.z))")
            }
            folded.append(KGrid.fold(k))
        }
        let nbands = options.nbands ?? scf.nbands
        guard nbands >= 1, nbands <= 100_000 else {
            throw SolidXCError.input(field: "nbands", message: "must be between 1 and 100000, got \(nbands)")
        }
        guard options.tolerance.isFinite, options.tolerance > 0 else {
            throw SolidXCError.input(field: "tolerance", message: "must be a positive residual (Ha), got \(options.tolerance)")
        }
        guard options.restarts >= 0, options.restarts <= 1000 else {
            throw SolidXCError.input(field: "restarts", message: "must be between 0 and 1000, got \(options.restarts)")
        }
        guard let functional = xc?.functional else {
            throw SolidXCError.numerical(message: "bands: the converged SCF has no xc term")
        }
        var solverOptions = scf.options
        solverOptions.nbands = nbands
        solverOptions.start = nil
        let nk = folded.count
        let chunk = max(16, 4 * scf.threads)
        // Allocated once the first chunk has shown that nbands fits the basis.
        var out: [Double] = []
        var first = 0
        while first < nk {
            let points = Array(folded[first..<min(nk, first + chunk)])
            let basis = try PlaneWaveBasis(model: scf.basis.model, ecut: scf.basis.ecut, kgrid: KGrid(explicit: points),
                                           fftSize: scf.basis.fftSize, sphereLattice: scf.basis.sphereLattice)
            if let (k, kb) = basis.kpoints.enumerated().min(by: { $0.1.count < $1.1.count }), kb.count < nbands {
                throw SolidXCError.input(field: "nbands", message: "\(nbands) bands asked, but k-point \(first + k) (\(kpoints[first + k].x), \(kpoints[first + k].y), \(kpoints[first + k].z)) has only \(kb.count) plane waves at ecut \(scf.basis.ecut) Ha")
            }
            if out.isEmpty { out = [Double](repeating: 0, count: nspin * nk * nbands) }
            let solver = try SelfConsistentField(basis: basis, functional: functional, options: solverOptions, smearing: scf.smearing)
            let eigenvalues = try solver.convergedEigenvalues(potential: potential, tolerance: options.tolerance,
                                                              restarts: options.restarts, firstK: first)
            for s in 0..<nspin {
                for k in 0..<points.count {
                    let row = (s * nk + first + k) * nbands
                    for n in 0..<nbands { out[row + n] = eigenvalues[s * points.count + k][n] }
                }
            }
            first += points.count
        }
        return out
    }
}

extension SelfConsistentField {
    /// The lowest `nbands` eigenvalues of every (spin, k) block at a fixed local potential, each
    /// band's residual checked independently of the eigensolver after every pass. Passes that
    /// leave a residual above `tolerance` are continued from their vectors (warm start); after
    /// `restarts` continuations the call throws, naming the worst k-point, spin and band.
    /// `firstK` only offsets the k-point numbers in messages.
    func convergedEigenvalues(potential: [Double], tolerance: Double, restarts: Int, firstK: Int) throws -> [[Double]] {
        var previous: [[Complex]] = []
        var history: [Double] = []
        var worst = (value: Double.nan, job: 0, band: 0)
        for _ in 0...restarts {
            // LOBPCG's own stopping test uses the same residual; a margin keeps the check below from
            // rejecting bands that stopped exactly at the threshold.
            let (orbitals, eigenvalues, _) = try diagonalise(potential: potential, previous: previous, tol: 0.5 * tolerance)
            let residuals = eigenResiduals(potential: potential, orbitals: orbitals, eigenvalues: eigenvalues)
            worst = (0, 0, 0)
            for (job, r) in residuals.enumerated() {
                for (n, value) in r.enumerated() where !(value <= worst.value) { worst = (value, job, n) }
            }
            history.append(worst.value)
            if worst.value <= tolerance { return eigenvalues }
            guard worst.value.isFinite else { break }
            previous = orbitals
        }
        let nk = basis.kpoints.count
        let k = basis.kpoints[worst.job % nk].k
        throw SolidXCError.convergence(message: "bands: the eigensolver did not converge: residual |H psi - eps psi| = \(worst.value) Ha of band \(worst.band) at k-point \(firstK + worst.job % nk) (\(k.x), \(k.y), \(k.z)), spin \(worst.job / nk), is above the tolerance \(tolerance) Ha after \(history.count) passes of up to 200 LOBPCG iterations; raise the tolerance or change nbands (a band count that splits a degenerate level converges slowly)", history: history)
    }

    /// |H psi_n - eps_n psi_n| per (spin, k) block and band, threaded over the blocks.
    func eigenResiduals(potential: [Double], orbitals: [[Complex]], eigenvalues: [[Double]]) -> [[Double]] {
        let nk = basis.kpoints.count
        var residuals = [[Double]](repeating: [], count: nspin * nk)
        let lock = Lock()
        forEachBlock(potential: potential) { [self] job, h in
            let npw = basis.kpoints[job % nk].count
            let psi = orbitals[job]
            let eps = eigenvalues[job]
            let count = min(eps.count, psi.count / max(npw, 1))
            let hpsi = h.apply(psi, nvec: count)
            var r = [Double](repeating: .infinity, count: eps.count)
            for band in 0..<count {
                var sum = 0.0
                for g in 0..<npw {
                    let i = band * npw + g
                    sum += (hpsi[i] - eps[band] * psi[i]).norm2
                }
                r[band] = sum.squareRoot()
            }
            lock.withLock { residuals[job] = r }
        }
        return residuals
    }
}
