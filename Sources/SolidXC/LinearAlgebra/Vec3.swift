#if canImport(Glibc)
import Glibc
#endif

/// Small 3-vector and 3x3 helpers; matrices are row-major [[Double]] with rows as vectors.
public typealias Vec3 = SIMD3<Double>

@inlinable func dot(_ a: Vec3, _ b: Vec3) -> Double { (a * b).sum() }
@inlinable func norm(_ a: Vec3) -> Double { sqrt(dot(a, a)) }
@inlinable func cross(_ a: Vec3, _ b: Vec3) -> Vec3 {
    Vec3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
}

/// A finite double (not NaN, not infinite).
@inlinable func isFiniteValue(_ x: Double) -> Bool { x.isFinite }
