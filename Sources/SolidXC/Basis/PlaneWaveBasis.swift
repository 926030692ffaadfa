#if canImport(Glibc)
import Glibc
#endif

/// The plane waves of one k-point: all G with |k+G|^2/2 <= ecut.
public struct KPointBasis {
    /// Reduced coordinates of k.
    public let k: Vec3
    public let weight: Double
    /// Position of each plane wave on the FFT grid (row-major index, n3 fastest).
    public let fftIndex: [Int32]
    /// Reduced integer coordinates of each G.
    public let millerIndices: [SIMD3<Int32>]
    /// Cartesian k+G (1/bohr), computed from k and the Miller indices when asked.
    public let kPlusG: Wavevectors
    /// |k+G|^2/2 (Ha).
    public let kinetic: [Double]
    public var count: Int { fftIndex.count }
}

/// The discretisation: Ecut, k-points and the FFT grid. Holds the FFT plans (made once).
public final class PlaneWaveBasis {
    public let model: Model
    public let ecut: Double
    public let kgrid: KGrid
    public let kpoints: [KPointBasis]
    public let fftSize: [Int]
    public let fft: FFTGrid
    /// Number of grid points, and the volume element Omega/N (bohr^3).
    public let gridCount: Int
    public let dv: Double
    /// |G|^2 and Cartesian G on the FFT grid (G in the centred range of each direction).
    public let gVectors: GridWavevectors
    public let gNorm2: [Double]
    /// The space-group operations the k-points were reduced with; densities are symmetrised with them.
    public let symmetry: CrystalSymmetry
    /// The cell whose metric selected the plane waves, or nil for the model's lattice.
    public let sphereLattice: Lattice?

    /// The smallest FFTW-friendly grid (2^a 3^b 5^c per direction) whose box holds the density
    /// sphere |G| <= 2 sqrt(2 ecut), as ABINIT's boxcutmin 2 does.
    public static func defaultFFTSize(lattice: Lattice, ecut: Double) -> [Int] {
        let gmaxDensity = 2 * sqrt(2 * ecut)
        return (0..<3).map { i in
            let x = gmaxDensity * norm(lattice.vectors[i]) / (2 * Double.pi)
            var n = max(Int(ceil(2 * x - 1e-9)), 2 * Int(floor(x)) + 1)
            while !isFriendly(n) { n += 1 }
            return n
        }
    }

    static func isFriendly(_ n: Int) -> Bool {
        var m = n
        for p in [2, 3, 5] { while m % p == 0 { m /= p } }
        return m == 1
    }

    /// Rough memory need (bytes) for an SCF with `nbands` bands and a dense eigensolver per thread.
    public static func memoryEstimate(lattice: Lattice, ecut: Double, nk: Int, nspin: Int, nbands: Double, fftSize: [Int], threads: Int) -> Double {
        let npw = 4.0 / 3.0 * Double.pi * pow(2 * ecut, 1.5) * lattice.volume / pow(2 * Double.pi, 3) * 1.1 + 50
        let grid = fftSize.reduce(1.0) { $0 * Double($1) }
        // Orbitals, their LOBPCG search space and products (about 8 blocks of npw x nbands per
        // k in flight), projectors and grids (densities, potentials, mixing history).
        let orbitals = Double(nspin * nk) * npw * nbands * 16 * 2
        let dense = Double(threads) * npw * nbands * 16 * 8 + Double(threads) * 3 * nbands * 3 * nbands * 16
        let grids = grid * Double(nspin) * 8 * 40 + grid * 16 * 8
        return orbitals + dense + grids
    }

    /// `sphereLattice` selects the plane waves, |k+G|^2/2 <= ecut in its metric (default: the
    /// model's lattice); kinetic energies and k+G are the model lattice's.
    public init(model: Model, ecut: Double, kgrid: KGrid, fftSize requested: [Int]?, symmetry: CrystalSymmetry = .identity,
                sphereLattice: Lattice? = nil) throws {
        guard ecut.isFinite, ecut > 0 else {
            throw SolidXCError.input(field: "ecut", message: "must be a positive number of Hartree, got \(ecut)")
        }
        self.model = model
        self.ecut = ecut
        self.kgrid = kgrid
        self.symmetry = symmetry
        self.sphereLattice = sphereLattice
        let lattice = model.lattice
        let gmaxDensity = 2 * sqrt(2 * ecut)
        let minimum = (0..<3).map { 2 * Int(floor(gmaxDensity * norm(lattice.vectors[$0]) / (2 * Double.pi))) + 1 }
        if let requested {
            guard requested.count == 3, requested.allSatisfy({ $0 > 0 }) else {
                throw SolidXCError.input(field: "fft_size", message: "expected 3 positive integers, got \(requested)")
            }
            for i in 0..<3 where requested[i] < minimum[i] - 1 {
                throw SolidXCError.input(field: "fft_size", message: "\(requested) is too small for ecut \(ecut) Ha: direction \(i + 1) needs at least \(minimum[i]) points to hold the density sphere")
            }
            fftSize = requested
        } else {
            fftSize = PlaneWaveBasis.defaultFFTSize(lattice: lattice, ecut: ecut)
        }
        let total = fftSize[0] * fftSize[1] * fftSize[2]
        guard total <= 400 * 400 * 400 else {
            throw SolidXCError.input(field: "fft_size", message: "grid \(fftSize) has \(total) points, more than this build supports (6.4e7)")
        }
        fft = try FFTGrid(fftSize[0], fftSize[1], fftSize[2])
        gridCount = total
        dv = lattice.volume / Double(total)

        // G vectors of the full grid, centred: index j -> j if j <= n/2 else j - n.
        let gv = GridWavevectors(n1: fftSize[0], n2: fftSize[1], n3: fftSize[2], reciprocal: lattice.reciprocal)
        let (n1, n2, n3) = (fftSize[0], fftSize[1], fftSize[2])
        var g2 = [Double](repeating: 0, count: total)
        for idx in 0..<total {
            let g = gv[idx]
            g2[idx] = dot(g, g)
        }
        gVectors = gv
        gNorm2 = g2

        // Plane-wave spheres per k.
        let gmax = sqrt(2 * ecut)
        let selector = sphereLattice ?? lattice
        let bound = (0..<3).map { Int(ceil(gmax * norm(selector.vectors[$0]) / (2 * Double.pi))) + 1 }
        var kbases: [KPointBasis] = []
        for (kIndex, k) in kgrid.kpoints.enumerated() {
            var fftIndex: [Int32] = []
            var miller: [SIMD3<Int32>] = []
            var kin: [Double] = []
            for mi in -bound[0]...bound[0] {
                for mj in -bound[1]...bound[1] {
                    for ml in -bound[2]...bound[2] {
                        let m = k + Vec3(Double(mi), Double(mj), Double(ml))
                        let q = lattice.wavevector(m)
                        let e = 0.5 * dot(q, q)
                        if sphereLattice == nil ? e > ecut : 0.5 * dot(selector.wavevector(m), selector.wavevector(m)) > ecut { continue }
                        let i = (mi % n1 + n1) % n1, j = (mj % n2 + n2) % n2, l = (ml % n3 + n3) % n3
                        fftIndex.append(Int32((i * n2 + j) * n3 + l))
                        miller.append(SIMD3<Int32>(Int32(mi), Int32(mj), Int32(ml)))
                        kin.append(e)
                    }
                }
            }
            kbases.append(KPointBasis(k: k, weight: kgrid.weights[kIndex], fftIndex: fftIndex, millerIndices: miller,
                                      kPlusG: Wavevectors(k: k, miller: miller, reciprocal: lattice.reciprocal), kinetic: kin))
        }
        kpoints = kbases
    }

    /// Structure factor of one atom at G: e^{-i G . tau}.
    @inline(__always) func structureFactor(_ g: Vec3, _ tau: Vec3) -> Complex { Complex.phase(-dot(g, tau)) }
}

/// The wavevectors G of the FFT grid by grid index (row-major, centred: index j -> j if j <= n/2,
/// else j - n), computed when asked: a stored table costs 32 bytes a point (3.5 MiB for
/// spin-polarised Ni at Ecut 120), more than the few operations that make one G.
public struct GridWavevectors {
    let n1: Int, n2: Int, n3: Int
    let b0: Vec3, b1: Vec3, b2: Vec3

    init(n1: Int, n2: Int, n3: Int, reciprocal: [Vec3]) {
        (self.n1, self.n2, self.n3) = (n1, n2, n3)
        (b0, b1, b2) = (reciprocal[0], reciprocal[1], reciprocal[2])
    }

    public var count: Int { n1 * n2 * n3 }

    /// The same sum, in the same order, as `Lattice.wavevector`, so the same bits.
    @inline(__always) public subscript(index: Int) -> Vec3 {
        let l = index % n3
        let rest = index / n3
        let j = rest % n2
        let i = rest / n2
        let mi = i <= n1 / 2 ? i : i - n1
        let mj = j <= n2 / 2 ? j : j - n2
        let ml = l <= n3 / 2 ? l : l - n3
        return b0 * Double(mi) + b1 * Double(mj) + b2 * Double(ml)
    }
}

/// Cartesian k+G of a k-point's plane waves, from k and the Miller indices (a stored table costs
/// 32 bytes a plane wave). The same sum, in the same order, as `Lattice.wavevector(k + G)`, so
/// the same bits.
public struct Wavevectors {
    let k: Vec3
    let miller: [SIMD3<Int32>]
    let b0: Vec3, b1: Vec3, b2: Vec3

    init(k: Vec3, miller: [SIMD3<Int32>], reciprocal: [Vec3]) {
        self.k = k
        self.miller = miller
        (b0, b1, b2) = (reciprocal[0], reciprocal[1], reciprocal[2])
    }

    public var count: Int { miller.count }

    @inline(__always) public subscript(g: Int) -> Vec3 {
        let m = k + Vec3(Double(miller[g].x), Double(miller[g].y), Double(miller[g].z))
        return b0 * m.x + b1 * m.y + b2 * m.z
    }
}
