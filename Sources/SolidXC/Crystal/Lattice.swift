#if canImport(Glibc)
import Glibc
#endif

/// A periodic cell. Rows of `vectors` are the lattice vectors a1, a2, a3 in bohr (ASE's
/// convention); rows of `reciprocal` are b1, b2, b3 with a_i . b_j = 2 pi delta_ij (1/bohr).
public struct Lattice: Equatable {
    public let vectors: [Vec3]
    public let reciprocal: [Vec3]
    /// Cell volume, bohr^3.
    public let volume: Double

    /// Validates the rows and throws `SolidXCError.input(field: "lattice", ...)` for a singular,
    /// left-handed-or-not-finite or malformed cell. Left-handed cells are accepted (|det| is the volume).
    public init(rows: [[Double]]) throws {
        guard rows.count == 3, rows.allSatisfy({ $0.count == 3 }) else {
            throw SolidXCError.input(field: "lattice", message: "expected 3 rows of 3 numbers (bohr), got \(rows.map { $0.count })")
        }
        guard rows.joined().allSatisfy({ $0.isFinite }) else {
            throw SolidXCError.input(field: "lattice", message: "contains NaN or infinite values")
        }
        let a = rows.map { Vec3($0[0], $0[1], $0[2]) }
        let det = dot(a[0], cross(a[1], a[2]))
        let scale = norm(a[0]) * norm(a[1]) * norm(a[2])
        guard scale > 0, abs(det) > 1e-8 * scale, abs(det) > 1e-6 else {
            throw SolidXCError.input(field: "lattice", message: "cell volume is \(abs(det)) bohr^3; the lattice vectors must be linearly independent with a positive volume")
        }
        vectors = a
        volume = abs(det)
        let factor = 2 * Double.pi / det
        reciprocal = [cross(a[1], a[2]) * factor, cross(a[2], a[0]) * factor, cross(a[0], a[1]) * factor]
    }

    /// Cartesian (bohr) -> reduced coordinates.
    public func reduced(_ r: Vec3) -> Vec3 {
        Vec3(dot(r, reciprocal[0]), dot(r, reciprocal[1]), dot(r, reciprocal[2])) / (2 * Double.pi)
    }
    /// Reduced -> Cartesian (bohr).
    public func cartesian(_ x: Vec3) -> Vec3 { vectors[0] * x.x + vectors[1] * x.y + vectors[2] * x.z }
    /// Reduced reciprocal coordinates -> Cartesian wavevector (1/bohr).
    public func wavevector(_ g: Vec3) -> Vec3 { reciprocal[0] * g.x + reciprocal[1] * g.y + reciprocal[2] * g.z }
}
