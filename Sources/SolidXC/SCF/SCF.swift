#if canImport(Glibc)
import Glibc
#endif
import CSolidXCDeps

/// Thrown by `SelfConsistentField.run` when the default band count left electrons in the top
/// band; `runSCF` then retries with more bands.
struct TopBandOccupied: Error {
    let nbands: Int
    let electrons: Double
}

/// The self-consistent field: diagonalise H[rho_in] per k, build rho_out, mix, repeat until
/// both the energy change and the density residual are below tolerance.
public final class SelfConsistentField {
    public let basis: PlaneWaveBasis
    public let terms: [Term]
    public let options: SCFOptions
    public let nspin: Int
    public let nbands: Int
    public let smearing: Smearing?
    let threads: Int

    /// Default band count: the occupied bands of the majority spin plus a buffer (larger for
    /// metals, whose top bands must be empty to machine precision).
    public static func defaultBands(model: Model, smearing: Bool) -> Int {
        let majority = model.nelectrons / 2 + model.magmoms.reduce(0) { $0 + abs($1) } / 2
        let nocc = Int(majority.rounded(.up))
        return smearing ? nocc + max(4, Int((0.3 * Double(nocc)).rounded(.up))) : nocc + max(4, nocc / 5)
    }

    /// `extraBands` adds to the default band count (used when `options.nbands` is nil).
    public init(basis: PlaneWaveBasis, functional: Functional, options: SCFOptions, smearing: Smearing? = nil, extraBands: Int = 0) throws {
        self.basis = basis
        self.options = options
        self.smearing = smearing
        nspin = basis.model.nspin
        if let nb = options.nbands {
            guard nb >= 1 else { throw SolidXCError.input(field: "nbands", message: "must be positive, got \(nb)") }
            nbands = nb
        } else {
            // A warm start that needed more bands (see runSCF) keeps them.
            nbands = max(SelfConsistentField.defaultBands(model: basis.model, smearing: smearing != nil) + extraBands,
                         options.start.map { $0.nbands } ?? 0)
        }
        let minNpw = basis.kpoints.map { $0.count }.min() ?? 0
        guard nbands <= minNpw else {
            throw SolidXCError.input(field: "ecut", message: "ecut \(basis.ecut) Ha gives only \(minNpw) plane waves at some k-point, fewer than the \(nbands) bands needed; raise ecut")
        }
        var terms: [Term] = [Kinetic(basis: basis), LocalPseudo(basis: basis), NonlocalPseudo(basis: basis),
                             Hartree(basis: basis), Xc(basis: basis, functional: functional),
                             EwaldTerm(model: basis.model), PspCorrection(model: basis.model)]
        if let smearing { terms.append(Entropy(basis: basis, smearing: smearing)) }
        self.terms = terms
        threads = max(1, min(options.threads ?? SelfConsistentField.processorCount(), basis.kpoints.count))
        for case let xc as Xc in terms { xc.threads = threads }
    }

    static func processorCount() -> Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// Superposition of atomic Gaussians holding Z_ion electrons each, split between the spins
    /// by the initial moments ((Z + m)/2 up, (Z - m)/2 down), normalised to N_el.
    func initialDensity() -> [Double] {
        let model = basis.model
        let n = basis.gridCount
        var out = [Double](repeating: 0, count: nspin * n)
        for s in 0..<nspin {
            var rhoG = [Complex](repeating: .zero, count: n)
            for (a, atom) in model.atoms.enumerated() {
                let width = max(0.5, 3 * atom.pseudo.rloc)
                let charge = nspin == 1 ? atom.pseudo.zion : 0.5 * (atom.pseudo.zion + (s == 0 ? 1 : -1) * model.magmoms[a])
                if charge <= 0 { continue }
                for i in 0..<n {
                    let g2 = basis.gNorm2[i]
                    let amp = charge * exp(-0.5 * g2 * width * width) / model.lattice.volume
                    if amp < 1e-14 * charge { continue }
                    rhoG[i] += amp * basis.structureFactor(basis.gVectors[i], atom.position)
                }
            }
            let rho = basis.fft.backwardReal(rhoG)
            for i in 0..<n { out[s * n + i] = max(rho[i], 0) }
        }
        normalise(&out)
        return out
    }

    /// Orbitals of a previous run mapped onto this basis by Miller index (plane waves absent from
    /// the old sphere start at zero), when the k-points, spins and band count match; else none.
    func startingOrbitals(_ start: SCFStart) -> [[Complex]] {
        let nk = basis.kpoints.count
        guard start.nspin == nspin, start.nbands == nbands, start.kpoints.count == nk, start.orbitals.count == nspin * nk,
              zip(start.kpoints, basis.kpoints).allSatisfy({ norm($0 - $1.k) < 1e-10 }) else { return [] }
        var out: [[Complex]] = []
        for job in 0..<(nspin * nk) {
            let kb = basis.kpoints[job % nk]
            var position: [SIMD3<Int32>: Int] = [:]
            for (g, m) in kb.millerIndices.enumerated() { position[m] = g }
            let old = start.millerIndices[job % nk]
            let npwOld = old.count
            var psi = [Complex](repeating: .zero, count: kb.count * nbands)
            for (gOld, m) in old.enumerated() {
                guard let g = position[m] else { continue }
                for band in 0..<nbands { psi[band * kb.count + g] = start.orbitals[job][band * npwOld + gOld] }
            }
            out.append(psi)
        }
        return out
    }

    /// Integrals of rho_up - rho_down and of its modulus (Bohr magnetons); zero without spin.
    func magnetization(_ rho: [Double]) -> (total: Double, absolute: Double) {
        guard nspin == 2 else { return (0, 0) }
        let n = basis.gridCount
        var total = 0.0, absolute = 0.0
        for i in 0..<n {
            let m = rho[i] - rho[n + i]
            total += m
            absolute += abs(m)
        }
        return (total * basis.dv, absolute * basis.dv)
    }

    /// Scales all spin channels together so the density holds N_el electrons.
    func normalise(_ rho: inout [Double]) {
        let total = rho.reduce(0, +) * basis.dv
        if total > 0 {
            let scale = basis.model.nelectrons / total
            for i in rho.indices { rho[i] *= scale }
        }
    }

    /// Total local potential [nspin][N] at density rho, from every term that has one.
    func localPotential(rho: [Double], state: SCFState) throws -> [Double] {
        var v = [Double](repeating: 0, count: nspin * basis.gridCount)
        var s = state
        s.rho = rho
        for term in terms {
            if let p = try term.localPotential(s) {
                for i in 0..<v.count { v[i] += p[i] }
            }
        }
        return v
    }

    /// Plane-wave counts up to this are diagonalised densely (Jacobi); larger bases use LOBPCG.
    static let denseLimit = 150
    /// Bands the iterative eigensolver carries above the `nbands` it converges. Without them the SCF
    /// returned, converged, a higher level in place of members of a degenerate one on bcc Fe at Gamma
    /// (tests/test_bands.py: 4x4x4 k-points, the SCF's top eigenvalues 9e-3 Ha above the
    /// non-self-consistent ones). The likely mechanism: the level rose above the top band in an early
    /// SCF step and left the warm-started block, and the other bands' search directions have no
    /// component in its symmetry class, so it could not come back. They only ride along (no
    /// search directions of their own, no convergence test), which keeps their cost small; giving
    /// them search directions cost 12-28 % more time on the benchmark cases.
    static let bufferBands = 3
    /// The buffer bands' vectors between eigensolver calls, per (spin, k) block.
    let buffer = OrbitalHandoff([])

    /// The lowest `nbands` eigenpairs of H(k, spin) for every (spin, k), in parallel over k.
    /// Large bases use LOBPCG warm-started from `previous`; small ones a dense pure-Swift Jacobi
    /// solve. LAPACK's zheevr is not used here: Debian's OpenBLAS 0.3.21 crashes inside it
    /// (zlatrd -> zgemv_n) for some matrix sizes on AVX-512 CPUs (reproduced in C for n = 300
    /// and 389), and a crash would take the user's process down.
    func diagonalise(potential: [Double], previous: [[Complex]], tol: Double) throws -> (orbitals: [[Complex]], eigenvalues: [[Double]], iterations: Int) {
        try diagonalise(potential: potential, previous: OrbitalHandoff(previous), tol: tol)
    }

    /// The same, taking the warm-start orbitals from `previous` block by block: each block is
    /// released once its solve starts, so the old and new orbitals are not both held in full
    /// (for spin-polarised Ni at Ecut 120, 8 k-points and 14 bands that is 16 MiB).
    func diagonalise(potential: [Double], previous: OrbitalHandoff, tol: Double) throws -> (orbitals: [[Complex]], eigenvalues: [[Double]], iterations: Int) {
        let nk = basis.kpoints.count
        let n = basis.gridCount
        let jobs = nspin * nk
        var orbitals = [[Complex]](repeating: [], count: jobs)
        var eigenvalues = [[Double]](repeating: [], count: jobs)
        var iterations = [Int](repeating: 0, count: jobs)
        let lock = Lock()
        openblas_set_num_threads(1)
        // LOBPCG carries nbands + bufferBands columns and needs a basis several times wider.
        let width = nbands + SelfConsistentField.bufferBands
        let denseUpTo = max(SelfConsistentField.denseLimit, 3 * width)
        let needDense = (0..<jobs).contains { basis.kpoints[$0 % nk].count <= denseUpTo }
        let vG: [[Complex]] = needDense ? (0..<nspin).map { sp in basis.fft.forward(real: Array(potential[(sp * n)..<((sp + 1) * n)])) } : []
        forEachBlock(potential: potential) { [self] job, h in
            let s = job / nk
            let kb = basis.kpoints[job % nk]
            var values: [Double]
            var vectors: [Complex]
            var count = 0
            if kb.count <= denseUpTo {
                let (allValues, allVectors) = SmallEigen.hermitian(h.denseMatrix(potentialG: vG[s]), n: kb.count)
                values = Array(allValues.prefix(nbands))
                vectors = Array(allVectors.prefix(kb.count * nbands))
            } else {
                // nbands required bands plus `bufferBands` that need not converge (kept between
                // calls in `buffer`; they start from noise the first time).
                let solver = LOBPCG(n: kb.count, m: width, apply: { h.apply($0, nvec: $1) }, kinetic: kb.kinetic,
                                    converge: nbands)
                let taken = previous.take(job, of: jobs)
                var start = taken.count == kb.count * nbands ? taken : [Complex](repeating: .zero, count: kb.count * nbands)
                let kept = buffer.take(job, of: jobs)
                start += kept.count == kb.count * SelfConsistentField.bufferBands
                    ? kept : [Complex](repeating: .zero, count: kb.count * SelfConsistentField.bufferBands)
                let result = solver.run(initial: start, tol: tol, maxiter: 200)
                let found = min(nbands, result.values.count)
                buffer.put(job, of: jobs, result.values.count == width ? Array(result.vectors.suffix(kb.count * SelfConsistentField.bufferBands)) : [])
                // Copied, not trimmed in place: an array trimmed with removeLast keeps its capacity,
                // and these blocks are kept until the next SCF step, so every block would hold the
                // buffer bands twice (27 % more orbital memory for graphene's 8 + 3 bands).
                values = Array(result.values.prefix(found))
                vectors = Array(result.vectors.prefix(kb.count * found))
                count = result.iterations
            }
            lock.withLock {
                orbitals[job] = vectors
                eigenvalues[job] = values
                iterations[job] = count
            }
        }
        for job in 0..<jobs where eigenvalues[job].count != nbands {
            throw SolidXCError.numerical(message: "eigensolver: found \(eigenvalues[job].count) of \(nbands) bands at k-point \(job % nk)")
        }
        return (orbitals, eigenvalues, iterations.max() ?? 0)
    }

    /// rho_s(r) = sum_k w_k sum_n f_n |psi_nk(r)|^2 / Omega, symmetrised. The (spin, k) blocks run
    /// from the shared job queue, `window` blocks at a time, and their partial densities are added
    /// to rho in block order, so the result does not depend on the thread count. Bands holding
    /// less than `Chi0.emptyThreshold` of their capacity, in magnitude (a smearing's far tail), are
    /// left out.
    func density(orbitals: [[Complex]], occupations: [[Double]]) -> [Double] {
        let nk = basis.kpoints.count
        let n = basis.gridCount
        var rho = [Double](repeating: 0, count: nspin * n)
        let omega = basis.model.lattice.volume
        let jobs = nspin * nk
        let capacity: Double = nspin == 1 ? 2 : 1
        // A few blocks per thread keep every thread busy (blocks differ in cost) while holding
        // only `window` partial densities (one with one thread: no more memory than that needs).
        let window = threads == 1 ? 1 : 4 * threads
        let workspaces = (0..<threads).map { _ in (SphereFFT.Workspace(basis.fft), basis.fft.makeBuffer()) }
        var start = 0
        while start < jobs {
            let batch = min(window, jobs - start)
            var partial = [[Double]](repeating: [], count: batch)
            let lock = Lock()
            parallelJobs(batch, threads: threads) { [self] b, worker in
                let job = start + b
                let kb = basis.kpoints[job % nk]
                let npw = kb.count
                var acc = [Double](repeating: 0, count: n)
                let (workspace, real) = workspaces[worker]
                let sphere = try? SphereFFT(grid: basis.fft, fftIndex: kb.fftIndex)
                let box = workspace.box
                let bp = box.pointer
                let rp = real.pointer
                let psi = orbitals[job]
                let occ = occupations[job]
                psi.withUnsafeBufferPointer { pp in
                    acc.withUnsafeMutableBufferPointer { ap in
                        for band in 0..<nbands where abs(occ[band]) > Chi0.emptyThreshold * capacity {
                            if let sphere {
                                sphere.backward(pp.baseAddress! + band * npw, into: rp, workspace: workspace)
                            } else {
                                box.zero()
                                for g in 0..<npw { bp[Int(kb.fftIndex[g])] = pp[band * npw + g] }
                                basis.fft.backward(box, into: real)
                            }
                            let f = kb.weight * occ[band] / omega
                            for i in 0..<n { ap[i] += f * rp[i].norm2 }
                        }
                    }
                }
                lock.withLock { partial[b] = acc }
            }
            for b in 0..<batch {
                let s = (start + b) / nk
                partial[b].withUnsafeBufferPointer { pp in
                    for i in 0..<n { rho[s * n + i] += pp[i] }
                }
            }
            start += batch
        }
        // The irreducible k-points alone give a density without the crystal's symmetry; averaging
        // over the operations restores the full-grid density.
        return basis.symmetry.symmetrise(spins: rho, nspin: nspin, fft: basis.fft)
    }

    public func run() throws -> SCFResult {
        let nk = basis.kpoints.count
        let mixer = AndersonKerkerMixer(basis: basis, beta: options.mixingBeta ?? (nspin == 2 ? 0.7 : 1.0), q0: options.kerkerQ0)
        var rhoIn = initialDensity()
        var state = SCFState(rho: rhoIn, nspin: nspin, orbitals: [], occupations: [], nbands: nbands)
        if let start = options.start {
            if start.nspin == nspin && start.fftSize == basis.fftSize && start.density.count == rhoIn.count {
                rhoIn = start.density
                normalise(&rhoIn)
                state.rho = rhoIn
            }
            state.orbitals = startingOrbitals(start)
        }
        var energyHistory: [Double] = []
        var residualHistory: [Double] = []
        var lastEnergy = Double.nan
        var converged = false
        var iterations = 0
        var energies: [(name: String, value: Double)] = []
        var eigenvalues: [[Double]] = []
        var fermi = 0.0
        var rhoOut = rhoIn
        var lastPotential: [Double] = []
        var jointSpin = false
        let densityTolerance = options.densityTol ?? max(options.tol.squareRoot(), 1e-12) * basis.model.nelectrons
        let blockWeights = (0..<(nspin * nk)).map { basis.kpoints[$0 % nk].weight }
        let deadline = Deadline(seconds: options.timeLimit)
        while iterations < options.maxiter {
            try deadline.check("scf: stopped at iteration \(iterations + 1) of \(options.maxiter), not converged (last density residual \(residualHistory.last ?? .nan) electrons)", history: residualHistory)
            iterations += 1
            MallocTuning.releaseFreePages()
            let v = try localPotential(rho: rhoIn, state: state)
            lastPotential = v
            // Eigenpairs only as accurate as the density they feed: the residual tolerance follows
            // the density residual (DFTK ties it to the density change the same way), capped at
            // 1e-3 while far from self-consistency. The factor 0.03 was chosen on the benchmark inputs:
            // against 0.003 the SCF takes the same number of iterations (Si 6, Al 7; graphene 13
            // instead of 12; Ni 16 instead of 17) in 20-30 % less time; 0.1 adds iterations.
            let diagTolerance = min(1e-3, max(1e-11, 0.03 * (residualHistory.last ?? 1) / basis.model.nelectrons))
            let handoff = OrbitalHandoff(state.orbitals)
            state.orbitals = []
            let (orbitals, eps, eigenIterations) = try diagonalise(potential: v, previous: handoff, tol: diagTolerance)
            let (occ, ef) = try Occupation.compute(eigenvalues: eps, weights: blockWeights, nelectrons: basis.model.nelectrons,
                                                   nspin: nspin, nbands: nbands, smearing: smearing)
            rhoOut = density(orbitals: orbitals, occupations: occ)
            state = SCFState(rho: rhoOut, nspin: nspin, orbitals: orbitals, occupations: occ, nbands: nbands,
                             eigenvalues: eps, fermiLevel: ef)
            energies = try terms.map { ($0.name, try $0.energy(state)) }
            let energy = energies.reduce(0) { $0 + $1.value }
            var residual = 0.0
            for i in 0..<rhoIn.count { residual += abs(rhoOut[i] - rhoIn[i]) }
            residual *= basis.dv
            guard energy.isFinite, residual.isFinite else {
                throw SolidXCError.convergence(message: "scf: energy or density became non-finite at iteration \(iterations)", history: residualHistory)
            }
            let change = abs(energy - lastEnergy)
            energyHistory.append(energy - (lastEnergy.isNaN ? 0 : lastEnergy))
            residualHistory.append(residual)
            if options.verbose {
                var line = "scf \(iterations): E = \(energy) Ha, dE = \(change), |drho| = \(residual), eigensolver iterations \(eigenIterations)"
                if nspin == 2 { line += ", magnetization = \(magnetization(rhoOut).total)" }
                fputs(line + "\n", stderr)
            }
            lastEnergy = energy
            eigenvalues = eps
            fermi = ef
            if change < options.tol && residual < densityTolerance {
                converged = true
                break
            }
            // The first step starts from the atomic guess, far from the fixed point: no history.
            // The magnetisation joins Anderson once the density residual is below 1e-3 electrons
            // per valence electron, and stays in (see AndersonKerkerMixer.next).
            jointSpin = jointSpin || (nspin == 2 && residual < 1e-3 * basis.model.nelectrons)
            rhoIn = mixer.next(rhoIn: rhoIn, rhoOut: rhoOut, nspin: nspin, plain: iterations == 1, joint: jointSpin)
            normalise(&rhoIn)
        }
        if !converged && options.raiseOnNonconvergence {
            throw SolidXCError.convergence(message: "scf: not converged after \(iterations) iterations (maxiter \(options.maxiter), tol \(options.tol) Ha; last energy change \(energyHistory.last.map { abs($0) } ?? .nan) Ha, density residual \(residualHistory.last ?? .nan) electrons)", history: residualHistory)
        }
        let occupations = state.occupations
        if smearing != nil {
            // The top band must be empty, or the band count truncated the occupations.
            let g: Double = nspin == 1 ? 2 : 1
            let top = occupations.map { $0.last ?? 0 }.max() ?? 0
            guard top < 1e-6 * g else {
                if options.nbands == nil { throw TopBandOccupied(nbands: nbands, electrons: top) }
                throw SolidXCError.input(field: "nbands", message: "the highest of the \(nbands) bands holds \(top) electrons at some k-point; raise nbands so the top bands are empty")
            }
        }
        let entropyTerm = energies.first { $0.name == "entropy" }?.value ?? 0
        let zeroWidth = smearing.map { $0.zeroWidthEnergy(free: lastEnergy, internal: lastEnergy - entropyTerm) } ?? lastEnergy
        return SCFResult(energy: lastEnergy, energies: energies, nspin: nspin, nkpoints: nk, nbands: nbands,
                         eigenvalues: Array(eigenvalues.joined()), occupations: Array(occupations.joined()),
                         kpoints: basis.kpoints.flatMap { [$0.k.x, $0.k.y, $0.k.z] }, kweights: basis.kpoints.map { $0.weight },
                         fermiLevel: fermi, density: rhoOut, fftSize: basis.fftSize, converged: converged, iterations: iterations,
                         energyHistory: energyHistory, residualHistory: residualHistory, volume: basis.model.lattice.volume,
                         nelectrons: basis.model.nelectrons, energyZeroWidth: zeroWidth,
                         magnetization: magnetization(rhoOut),
                         start: SCFStart(density: rhoOut, fftSize: basis.fftSize, nspin: nspin, nbands: nbands,
                                         orbitals: state.orbitals, millerIndices: basis.kpoints.map { $0.millerIndices },
                                         kpoints: basis.kpoints.map { $0.k }),
                         convergedState: ConvergedState(scf: self, potential: lastPotential, orbitals: state.orbitals,
                                                   eigenvalues: eigenvalues, occupations: occupations, fermiLevel: fermi,
                                                   density: rhoOut))
    }
}

/// Warm-start orbitals for `diagonalise`, handed out (and dropped here) one block at a time.
final class OrbitalHandoff {
    private var blocks: [[Complex]]
    private let lock = Lock()
    init(_ blocks: [[Complex]]) { self.blocks = blocks }
    /// Block `job`, or [] if there is none (or the count of blocks is not `jobs`); this object
    /// keeps no reference to it afterwards.
    func take(_ job: Int, of jobs: Int) -> [Complex] {
        lock.withLock {
            guard blocks.count == jobs else { return [] }
            let block = blocks[job]
            blocks[job] = []
            return block
        }
    }
    /// Stores block `job` of `jobs` (resizing the store when the count of blocks changes).
    func put(_ job: Int, of jobs: Int, _ block: [Complex]) {
        lock.withLock {
            if blocks.count != jobs { blocks = [[Complex]](repeating: [], count: jobs) }
            blocks[job] = block
        }
    }
}
