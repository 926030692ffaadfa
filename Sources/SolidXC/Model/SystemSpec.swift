/// What a user asks to compute, as it arrives from the ABI or from Swift code: plain values,
/// not yet validated. `Model.init(_:)` validates it and throws `SolidXCError.input` naming the field.
public struct AtomSpec: Equatable {
    /// Element symbol, for example "Si".
    public var element: String
    /// Cartesian position in bohr.
    public var position: [Double]
    public init(element: String, position: [Double]) {
        self.element = element
        self.position = position
    }
}

/// Which GTH pseudopotential each element uses.
public enum PseudoSpec: Equatable {
    /// One table for every element: "gth-pade" (LDA), "gth-pbe", or a path to a CP2K-format file.
    case table(String)
    /// Per element: element symbol -> table name or path.
    case perElement([String: String])
}

public struct SystemSpec: Equatable {
    /// Lattice vectors as rows, bohr (3x3).
    public var lattice: [[Double]]
    public var atoms: [AtomSpec]
    public var pseudo: PseudoSpec
    /// Plane-wave cutoff, Ha: |k+G|^2/2 <= ecut.
    public var ecut: Double
    /// Monkhorst-Pack grid sizes (3 positive integers).
    public var kpts: [Int]
    /// Shift in ABINIT's convention, k = (n + shift)/N in reduced coordinates.
    public var kshift: [Double]
    /// Explicit FFT grid (n1, n2, n3), or nil for the smallest FFTW-friendly grid holding the density sphere.
    public var fftSize: [Int]?
    /// Net charge of the cell in electrons' units (+1 removes one electron).
    public var charge: Double
    /// Occupation smearing ("fermi-dirac", "gaussian", "methfessel-paxton", "marzari-vanderbilt"),
    /// or nil for integer occupations (insulators).
    public var smearing: String?
    /// Smearing width (Ha; kT for Fermi-Dirac). nil: 0.01 Ha when smearing is set.
    public var temperature: Double?
    /// Initial magnetic moment per atom (Bohr magnetons). Setting it turns on collinear spin (nspin = 2).
    public var magmoms: [Double]?
    /// Use the crystal's space group: k-points reduced to the irreducible wedge, density
    /// symmetrised. false keeps time reversal only.
    public var symmetry: Bool
    /// The cell whose metric selects the plane waves (|k+G|^2/2 <= ecut measured in it), or nil for
    /// `lattice` itself. Setting it to a reference cell keeps the same plane-wave set (Miller
    /// indices) under strain, which is the set the analytic stress differentiates at.
    public var basisLattice: [[Double]]?

    public init(lattice: [[Double]], atoms: [AtomSpec], pseudo: PseudoSpec = .table("gth-pade"),
                ecut: Double, kpts: [Int] = [1, 1, 1], kshift: [Double] = [0, 0, 0],
                fftSize: [Int]? = nil, charge: Double = 0, smearing: String? = nil, temperature: Double? = nil,
                magmoms: [Double]? = nil, symmetry: Bool = true, basisLattice: [[Double]]? = nil) {
        self.lattice = lattice
        self.atoms = atoms
        self.pseudo = pseudo
        self.ecut = ecut
        self.kpts = kpts
        self.kshift = kshift
        self.fftSize = fftSize
        self.charge = charge
        self.smearing = smearing
        self.temperature = temperature
        self.magmoms = magmoms
        self.symmetry = symmetry
        self.basisLattice = basisLattice
    }
}

/// Options of one SCF run.
public struct SCFOptions {
    /// Functional name understood by `FunctionalRegistry` ("lda,pw", "lda,vwn", "teter", "pbe", or a registered name).
    public var xc: String = "lda,pw"
    /// Overrides of a built-in functional's named parameters (for example ["kappa": 0.9] for PBE).
    public var xcParameters: [String: Double] = [:]
    /// Convergence threshold on the energy change (Ha) between iterations; the density residual
    /// (integrated |rho_out - rho_in|, electrons) must also fall below `sqrt(tol)`-scaled bounds.
    public var tol: Double = 1e-9
    /// Convergence threshold on the density residual (integrated |rho_out - rho_in|, electrons);
    /// nil: sqrt(tol) times the electron count. Finite-difference checks of density losses need it tight.
    public var densityTol: Double? = nil
    /// Largest number of SCF iterations.
    public var maxiter: Int = 100
    /// Wall-clock limit of the SCF loop, seconds (nil: none). Checked after every iteration; an
    /// SCF over it throws `SolidXCError.convergence` naming `time_limit`.
    public var timeLimit: Double? = nil
    /// Number of bands per k-point, or nil for a default (occupied bands + a few).
    public var nbands: Int? = nil
    /// Anderson/Pulay mixing damping; nil: 1.0 without spin (ABINIT's diemix default), 0.7 with
    /// collinear spin, where undamped steps make magnets (Ni) oscillate (24 iterations instead of 17).
    public var mixingBeta: Double? = nil
    /// Kerker wavevector (1/bohr).
    public var kerkerQ0: Double = 0.8
    /// Throw `SolidXCError.convergence` when not converged; otherwise return `converged == false`.
    public var raiseOnNonconvergence: Bool = true
    /// Memory ceiling for the up-front estimate, bytes; nil uses the machine's available memory.
    public var memoryLimitBytes: Double? = nil
    /// Print one line per SCF iteration to stderr.
    public var verbose: Bool = false
    /// Threads over k-points (nil: one per core). Results do not depend on it.
    public var threads: Int? = nil
    /// A previous result to start from (density, and orbitals where the k-points and bands
    /// match), for example the previous point of an equation-of-state scan.
    public var start: SCFStart? = nil
    public init() {}
}

/// What a later SCF can start from: the converged density and orbitals of an earlier run.
public struct SCFStart {
    /// [nspin][n1][n2][n3], electrons/bohr^3.
    public var density: [Double]
    public var fftSize: [Int]
    public var nspin: Int
    public var nbands: Int
    /// Per (spin, k): npw x nbands coefficients, and the Miller indices of the plane waves.
    public var orbitals: [[Complex]]
    public var millerIndices: [[SIMD3<Int32>]]
    /// Reduced k-points of the run.
    public var kpoints: [Vec3]
}

extension SCFOptions: Equatable {
    public static func == (a: SCFOptions, b: SCFOptions) -> Bool {
        a.xc == b.xc && a.xcParameters == b.xcParameters && a.tol == b.tol && a.densityTol == b.densityTol && a.maxiter == b.maxiter && a.nbands == b.nbands && a.mixingBeta == b.mixingBeta
            && a.kerkerQ0 == b.kerkerQ0 && a.raiseOnNonconvergence == b.raiseOnNonconvergence
            && a.memoryLimitBytes == b.memoryLimitBytes && a.verbose == b.verbose && a.threads == b.threads
            && (a.start == nil) == (b.start == nil)
    }
}

/// The converged (or last) state of an SCF run. Arrays are flat, row-major, with the stated shapes.
public struct SCFResult {
    /// Total (free) energy, Ha per cell: with smearing the Mermin free energy E - TS, whose -TS
    /// is the "entropy" term of `energies`.
    public var energy: Double
    /// Energy terms in a fixed order: kinetic, local, nonlocal, hartree, xc, ewald, psp_correction,
    /// and entropy (-TS) with smearing (Ha).
    public var energies: [(name: String, value: Double)]
    public var nspin: Int
    public var nkpoints: Int
    public var nbands: Int
    /// [nspin][nk][nband], Ha. Convention: the G=0 of the local potential includes the psp core
    /// term (alpha * N_el / Omega shifts every eigenvalue), as Quantum ESPRESSO and PySCF do.
    public var eigenvalues: [Double]
    /// [nspin][nk][nband], electrons per state (2 without spin).
    public var occupations: [Double]
    /// [nk][3], reduced coordinates.
    public var kpoints: [Double]
    /// [nk], summing to 1.
    public var kweights: [Double]
    /// Fermi level (Ha): the highest occupied eigenvalue for insulators without smearing.
    public var fermiLevel: Double
    /// [nspin][n1][n2][n3], electrons/bohr^3.
    public var density: [Double]
    public var fftSize: [Int]
    public var converged: Bool
    public var iterations: Int
    /// Energy change per iteration.
    public var energyHistory: [Double]
    /// Density residual per iteration: integral of |rho_out - rho_in| (electrons).
    public var residualHistory: [Double]
    /// Cell volume, bohr^3.
    public var volume: Double
    public var nelectrons: Double
    /// The energy extrapolated to zero smearing width (Ha; equals `energy` without smearing).
    public var energyZeroWidth: Double
    /// Total and absolute magnetisation (Bohr magnetons per cell; zero without spin).
    public var magnetization: (total: Double, absolute: Double)
    /// The state a later SCF can start from (`SCFOptions.start`).
    public var start: SCFStart
    /// What the response and the backward pass need (Hamiltonian, orbitals, occupations).
    public var convergedState: ConvergedState
}
