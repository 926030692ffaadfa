#if canImport(Glibc)
import Glibc
#endif

/// A Monkhorst-Pack grid in ABINIT's convention, k = (n + shift)/N in reduced coordinates,
/// reduced by time reversal (k ~ -k modulo a reciprocal-lattice vector) and by the crystal's
/// rotations W (k ~ W^T k; `CrystalSymmetry.restricted` keeps only those that map the grid onto
/// itself). Each irreducible point stands for its star; weights are star sizes and sum to 1.
public struct KGrid: Equatable {
    public let size: [Int]
    public let shift: [Double]
    /// Irreducible k-points (reduced coordinates, each component in (-1/2, 1/2]).
    public let kpoints: [Vec3]
    public let weights: [Double]

    public init(size: [Int], shift: [Double], timeReversal: Bool = true, rotations: [[[Int]]] = []) throws {
        guard size.count == 3, size.allSatisfy({ $0 > 0 }) else {
            throw SolidXCError.input(field: "kpts", message: "expected 3 positive integers, got \(size)")
        }
        guard size.reduce(1.0, { $0 * Double($1) }) <= 1_000_000 else {
            throw SolidXCError.input(field: "kpts", message: "\(size) has more than 10^6 points")
        }
        guard shift.count == 3, shift.allSatisfy({ $0.isFinite }) else {
            throw SolidXCError.input(field: "kshift", message: "expected 3 finite numbers, got \(shift)")
        }
        self.size = size
        self.shift = shift
        var points: [Vec3] = []
        var counts: [Int] = []
        var index: [SIMD3<Int>: Int] = [:]
        let transposes = rotations.map(SymmetryOperation.transpose)
        // Exact integer keys: k * 2N is an integer for shifts in multiples of 1/2; use a fine lattice otherwise.
        func key(_ k: Vec3) -> SIMD3<Int> {
            let scale = Vec3(Double(2 * size[0]), Double(2 * size[1]), Double(2 * size[2])) * 1000
            let v = (k * scale).rounded(.toNearestOrEven)
            return SIMD3<Int>(Int(v.x), Int(v.y), Int(v.z))
        }
        for i in 0..<size[0] {
            for j in 0..<size[1] {
                for l in 0..<size[2] {
                    let k = KGrid.fold(Vec3((Double(i) + shift[0]) / Double(size[0]),
                                            (Double(j) + shift[1]) / Double(size[1]),
                                            (Double(l) + shift[2]) / Double(size[2])))
                    // The images of k under the group; one of them is already a representative
                    // if k's star has been met before (stars are closed under the group).
                    var images = [k]
                    for w in transposes { images.append(KGrid.fold(SymmetryOperation.times(w, k))) }
                    if timeReversal { images += images.map { KGrid.fold(-$0) } }
                    if let found = images.lazy.compactMap({ index[key($0)] }).first {
                        counts[found] += 1
                        continue
                    }
                    index[key(k)] = points.count
                    points.append(k)
                    counts.append(1)
                }
            }
        }
        kpoints = points
        let total = Double(counts.reduce(0, +))
        weights = counts.map { Double($0) / total }
    }

    /// Folds each component into (-1/2, 1/2].
    static func fold(_ k: Vec3) -> Vec3 {
        var r = k - (k + 0.5).rounded(.down)
        // (-1/2, 1/2]: map -1/2 to +1/2
        for c in 0..<3 where abs(r[c] + 0.5) < 1e-12 { r[c] = 0.5 }
        for c in 0..<3 where abs(r[c]) < 1e-14 { r[c] = 0 }
        return r
    }
}
