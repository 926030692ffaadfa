#if canImport(Glibc)
import Glibc
#endif

/// Memory available to this process (bytes), from /proc/meminfo's MemAvailable.
func availableMemoryBytes() -> Double? {
    guard let file = fopen("/proc/meminfo", "r") else { return nil }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, 256, file) != nil {
        let text = String(cString: line)
        if text.hasPrefix("MemAvailable:") {
            let digits = text.split(separator: " ").compactMap { Double($0) }
            if let kb = digits.first { return kb * 1024 }
        }
    }
    return nil
}

/// A system whose input has passed every check that does not need the SCF options: the model,
/// the k-grid and the FFT grid. Building it is cheap (no plane-wave sets, no FFT plans), so the
/// ABI does it when a system is created, and bad input fails there, naming the field.
public struct PreparedSystem {
    public let spec: SystemSpec
    public let model: Model
    public let kgrid: KGrid
    public let fftSize: [Int]
    /// The occupation smearing, or nil for integer occupations.
    public let smearing: Smearing?
    /// The space-group operations in use (identity only with `symmetry: false`).
    public let symmetry: CrystalSymmetry
    /// The cell whose metric selects the plane waves (`SystemSpec.basisLattice`), or nil for the model's lattice.
    public let basisLattice: Lattice?

    /// Largest supported values: they keep every size computation far from integer overflow.
    static let maxEcut = 1e5
    static let maxGridPoints = 400.0 * 400.0 * 400.0

    public init(_ spec: SystemSpec) throws {
        guard spec.ecut.isFinite, spec.ecut > 0 else {
            throw SolidXCError.input(field: "ecut", message: "must be a positive number of Hartree, got \(spec.ecut)")
        }
        guard spec.ecut <= PreparedSystem.maxEcut else {
            throw SolidXCError.input(field: "ecut", message: "\(spec.ecut) Ha is above the supported maximum of \(PreparedSystem.maxEcut) Ha")
        }
        self.spec = spec
        let model = try Model(spec)
        self.model = model
        basisLattice = try spec.basisLattice.map { try PreparedSystem.basisLattice($0, of: model.lattice) }
        let sphereLattice = basisLattice ?? model.lattice
        _ = try KGrid(size: spec.kpts, shift: spec.kshift, timeReversal: false, rotations: [])
        // FFT grid: checked in Double before any Int conversion. The box must hold the density
        // sphere of the cell and the plane waves' Miller range doubled.
        let gmaxDensity = 2 * (2 * spec.ecut).squareRoot()
        let needed = (0..<3).map { i in
            [model.lattice, sphereLattice].map { 2 * (gmaxDensity * norm($0.vectors[i]) / (2 * Double.pi)).rounded(.down) + 1 }.max()!
        }
        let neededPoints = needed.reduce(1.0, *)
        if let requested = spec.fftSize {
            guard requested.count == 3, requested.allSatisfy({ $0 > 0 }) else {
                throw SolidXCError.input(field: "fft_size", message: "expected 3 positive integers, got \(requested)")
            }
            guard requested.reduce(1.0, { $0 * Double($1) }) <= PreparedSystem.maxGridPoints else {
                throw SolidXCError.input(field: "fft_size", message: "grid \(requested) has more than \(Int(PreparedSystem.maxGridPoints)) points, the most this build supports")
            }
            for i in 0..<3 where Double(requested[i]) < needed[i] - 1 {
                throw SolidXCError.input(field: "fft_size", message: "\(requested) is too small for ecut \(spec.ecut) Ha: direction \(i + 1) needs at least \(Int(needed[i])) points to hold the density sphere")
            }
            fftSize = requested
        } else {
            guard neededPoints <= PreparedSystem.maxGridPoints else {
                throw SolidXCError.memory(message: "ecut: ecut \(spec.ecut) Ha on this cell needs an FFT grid of about \(megabytes(needed[0], scale: 1))x\(megabytes(needed[1], scale: 1))x\(megabytes(needed[2], scale: 1)) points (about \(megabytes(neededPoints * 16 * 40)) MB for the grids alone), more than this build supports (6.4e7 points); lower ecut")
            }
            let sizes = [model.lattice, sphereLattice].map { PlaneWaveBasis.defaultFFTSize(lattice: $0, ecut: spec.ecut) }
            fftSize = (0..<3).map { i in max(sizes[0][i], sizes[1][i]) }
        }
        // Atoms may map onto each other only with the same element, pseudopotential and moment.
        if spec.symmetry {
            var kindOf: [String: Int] = [:]
            let kinds = model.atoms.enumerated().map { i, atom in
                let label = "\(atom.element)|\(atom.pseudo.names)|\(atom.pseudo.rloc)|\(model.magmoms[i])"
                if let k = kindOf[label] { return k }
                kindOf[label] = kindOf.count
                return kindOf[label]!
            }
            symmetry = CrystalSymmetry.find(lattice: model.lattice, positions: model.atoms.map { $0.position }, kinds: kinds)
                .restricted(kgridSize: spec.kpts, shift: spec.kshift, fftSize: fftSize)
                .restricted(preservingMetricOf: sphereLattice)
        } else {
            symmetry = .identity
        }
        kgrid = try KGrid(size: spec.kpts, shift: spec.kshift, rotations: symmetry.operations.map { $0.rotation })
        if let name = spec.smearing {
            smearing = try Smearing(name: name, width: spec.temperature ?? 0.01)
        } else {
            if let t = spec.temperature {
                throw SolidXCError.input(field: "temperature", message: "\(t) Ha is given but no smearing; set smearing (for example \"fermi-dirac\") or drop temperature")
            }
            smearing = nil
        }
        guard model.nelectrons <= 1e6 else {
            throw SolidXCError.input(field: "charge", message: "\(model.nelectrons) electrons; at most 10^6 are supported")
        }
        // Integer occupations need whole bands: pairs without spin, single electrons with it.
        let units = model.nspin == 1 ? model.nelectrons / 2 : model.nelectrons
        guard smearing != nil || abs(units - units.rounded()) < 1e-8 else {
            throw SolidXCError.input(field: "smearing", message: "the cell has \(model.nelectrons) valence electrons, which cannot fill whole bands of two electrons; set smearing (for example smearing=\"fermi-dirac\", temperature=0.01) or spin polarisation (magmoms)")
        }
    }
}

extension PreparedSystem {
    /// Validates `basis_lattice`: a cell, and close enough to the lattice (each vector within 20 %)
    /// that its plane-wave set is a sensible basis for the strained cell.
    static func basisLattice(_ rows: [[Double]], of lattice: Lattice) throws -> Lattice {
        let cell: Lattice
        do {
            cell = try Lattice(rows: rows)
        } catch SolidXCError.input(_, let message) {
            throw SolidXCError.input(field: "basis_lattice", message: message)
        }
        for i in 0..<3 where norm(cell.vectors[i] - lattice.vectors[i]) > 0.2 * norm(lattice.vectors[i]) {
            throw SolidXCError.input(field: "basis_lattice", message: "vector \(i + 1) differs from the lattice's by more than 20 %; it is meant to be the reference cell of a small strain")
        }
        return cell
    }
}

/// Validates the input, refuses calculations that would not fit in memory, and runs the SCF.
public func runSCF(system: SystemSpec, options: SCFOptions) throws -> SCFResult {
    try runSCF(system: PreparedSystem(system), options: options)
}

/// Runs the SCF of a prepared system.
public func runSCF(system prepared: PreparedSystem, options: SCFOptions) throws -> SCFResult {
    _ = MallocTuning.applied
    guard options.tol.isFinite, options.tol > 0 else {
        throw SolidXCError.input(field: "tol", message: "must be a positive number, got \(options.tol)")
    }
    if let d = options.densityTol, !(d.isFinite && d > 0) {
        throw SolidXCError.input(field: "density_tol", message: "must be a positive number of electrons, got \(d)")
    }
    guard options.maxiter >= 1, options.maxiter <= 100_000 else {
        throw SolidXCError.input(field: "maxiter", message: "must be between 1 and 100000, got \(options.maxiter)")
    }
    try Deadline.validate(options.timeLimit)
    if let beta = options.mixingBeta, !(beta.isFinite && beta > 0 && beta <= 1) {
        throw SolidXCError.input(field: "mixing_beta", message: "must be in (0, 1], got \(beta)")
    }
    guard options.kerkerQ0.isFinite, options.kerkerQ0 >= 0 else {
        throw SolidXCError.input(field: "kerker_q0", message: "must be a finite number >= 0 (1/bohr), got \(options.kerkerQ0)")
    }
    if let threads = options.threads, threads < 1 || threads > 1024 {
        throw SolidXCError.input(field: "threads", message: "must be between 1 and 1024, got \(threads)")
    }
    if let nb = options.nbands, nb < 1 || nb > 100_000 {
        throw SolidXCError.input(field: "nbands", message: "must be between 1 and 100000, got \(nb)")
    }
    if let limit = options.memoryLimitBytes, !(limit.isFinite && limit > 0) {
        throw SolidXCError.input(field: "memory_limit_bytes", message: "must be a positive number of bytes, got \(limit)")
    }
    let functional = try FunctionalRegistry.shared.make(options.xc, parameters: options.xcParameters)
    let model = prepared.model
    let system = prepared.spec
    let nbands = Double(options.nbands ?? SelfConsistentField.defaultBands(model: model, smearing: prepared.smearing != nil))
    let threads = max(1, min(options.threads ?? SelfConsistentField.processorCount(), prepared.kgrid.kpoints.count))
    let need = PlaneWaveBasis.memoryEstimate(lattice: model.lattice, ecut: system.ecut, nk: prepared.kgrid.kpoints.count, nspin: model.nspin,
                                             nbands: nbands, fftSize: prepared.fftSize, threads: threads)
    let limit = options.memoryLimitBytes ?? availableMemoryBytes() ?? 8e9
    guard need <= limit else {
        throw SolidXCError.memory(message: "ecut: this calculation needs about \(megabytes(need)) MB but only \(megabytes(limit)) MB are available; lower ecut or the k-grid")
    }
    let basis = try PlaneWaveBasis(model: model, ecut: system.ecut, kgrid: prepared.kgrid, fftSize: prepared.fftSize, symmetry: prepared.symmetry,
                                   sphereLattice: prepared.basisLattice)
    // With the default band count, a metal whose top band still holds electrons is rerun with
    // half as many bands again (at least 4 more), up to three times.
    var extra = 0
    for retry in 0... {
        do {
            let scf = try SelfConsistentField(basis: basis, functional: functional, options: options, smearing: prepared.smearing,
                                              extraBands: extra)
            return try scf.run()
        } catch let full as TopBandOccupied {
            guard retry < 3 else {
                throw SolidXCError.input(field: "nbands", message: "the highest of the \(full.nbands) bands holds \(full.electrons) electrons at some k-point; raise nbands so the top bands are empty")
            }
            extra += max(4, full.nbands / 2)
            if options.verbose { fputs("scf: the top band of \(full.nbands) holds \(full.electrons) electrons; rerunning with \(full.nbands + max(4, full.nbands / 2)) bands\n", stderr) }
        }
    }
    fatalError("unreachable")
}

/// A byte count in MB as text, safe for any finite or infinite value.
func megabytes(_ bytes: Double, scale: Double = 1e6) -> String {
    let mb = bytes / scale
    return mb.isFinite && mb < 1e15 ? String(Int(mb.rounded())) : "\(mb)"
}
