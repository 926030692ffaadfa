#if canImport(Glibc)
import Glibc
#endif

/// A complex number laid out as two Doubles, the layout of FFTW's fftw_complex and LAPACK's
/// double complex, so buffers pass to C without copies.
@frozen
public struct Complex: Equatable {
    public var re: Double
    public var im: Double
    @inlinable public init(_ re: Double, _ im: Double = 0) {
        self.re = re
        self.im = im
    }
    public static let zero = Complex(0, 0)
    @inlinable public var conjugate: Complex { Complex(re, -im) }
    @inlinable public var norm2: Double { re * re + im * im }
    @inlinable public static func + (a: Complex, b: Complex) -> Complex { Complex(a.re + b.re, a.im + b.im) }
    @inlinable public static func - (a: Complex, b: Complex) -> Complex { Complex(a.re - b.re, a.im - b.im) }
    @inlinable public static func * (a: Complex, b: Complex) -> Complex {
        Complex(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re)
    }
    @inlinable public static func * (a: Double, b: Complex) -> Complex { Complex(a * b.re, a * b.im) }
    @inlinable public static func += (a: inout Complex, b: Complex) { a.re += b.re; a.im += b.im }
    @inlinable public static func -= (a: inout Complex, b: Complex) { a.re -= b.re; a.im -= b.im }
    /// e^{i phase}
    @inlinable public static func phase(_ angle: Double) -> Complex { Complex(cos(angle), sin(angle)) }
}
