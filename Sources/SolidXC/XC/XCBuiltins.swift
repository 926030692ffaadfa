#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Everything on the per-point path of the built-ins lives in this one file: the number types,
// libxc's spin conventions, the energy densities, and the loops. SwiftPM's debug builds compile
// each file on its own, and generic code (the energies over `XCScalar`, the dual numbers over
// SIMD vectors) is specialised only within a file; split across files, the same code runs about
// 100 times slower there. Each energy density is still written once, and the MARK sections
// below keep the physics apart from the machinery.

// MARK: - Number types

/// The number type every built-in energy density is written in, once.
///
/// `XCDual` carries the gradient with respect to the point's inputs (rho_s, sigma_ab) and so
/// gives vrho and vsigma; `XCHyperDual` also carries one directional derivative of that gradient,
/// which is the kernel applied to a perturbation. Every derivative comes from the same source
/// line as the energy, so there is no hand-derived derivative to get wrong.
///
/// Branches (thresholds, piecewise definitions) test `primal` and differentiate the branch taken,
/// as libxc's `my_piecewise3` does.
protocol XCScalar {
    init(_ constant: Double)
    var primal: Double { get }

    /// Highest derivative order carried (1 or 2); a compile-time constant after specialisation
    /// that lets the elementary functions skip the second derivative when no one needs it.
    static var derivativeOrder: Int { get }

    /// Applies the chain rule for a scalar function f at `primal`, given f, f' and f'' there.
    func chain(_ f: Double, _ df: Double, _ d2f: Double) -> Self

    static func + (a: Self, b: Self) -> Self
    static func - (a: Self, b: Self) -> Self
    static func * (a: Self, b: Self) -> Self
    static func / (a: Self, b: Self) -> Self
    static prefix func - (a: Self) -> Self

    static func + (a: Self, b: Double) -> Self
    static func + (a: Double, b: Self) -> Self
    static func - (a: Self, b: Double) -> Self
    static func - (a: Double, b: Self) -> Self
    static func * (a: Self, b: Double) -> Self
    static func * (a: Double, b: Self) -> Self
    static func / (a: Self, b: Double) -> Self
    static func / (a: Double, b: Self) -> Self
}

// The C library's functions under names that the methods below do not shadow.
@inline(__always) private func libmLog(_ x: Double) -> Double { log(x) }
@inline(__always) private func libmExp(_ x: Double) -> Double { exp(x) }
@inline(__always) private func libmSqrt(_ x: Double) -> Double { x.squareRoot() }
/// glibc's cbrt, except at exactly 1, where it returns exactly 1 too: (1 +- zeta)^(1/3) of an
/// unpolarised point, in the components that do not skip the spin terms there (Slater exchange),
/// then costs a comparison.
@inline(__always) private func libmCbrt(_ x: Double) -> Double { x == 1 ? 1 : cbrt(x) }
@inline(__always) private func libmAtan(_ x: Double) -> Double { atan(x) }

extension XCScalar {
    @inline(__always) func squared() -> Self { self * self }

    @inline(__always) func reciprocal() -> Self {
        let x = primal
        let r = 1 / x
        return chain(r, -r * r, Self.derivativeOrder > 1 ? 2 * r * r * r : 0)
    }

    @inline(__always) func log() -> Self {
        let x = primal
        return chain(libmLog(x), 1 / x, Self.derivativeOrder > 1 ? -1 / (x * x) : 0)
    }

    @inline(__always) func exp() -> Self {
        let f = libmExp(primal)
        return chain(f, f, f)
    }

    @inline(__always) func sqrt() -> Self {
        let x = primal
        let f = libmSqrt(x)
        let d = 0.5 / f
        return chain(f, d, Self.derivativeOrder > 1 ? -0.5 * d / x : 0)
    }

    /// x^(1/3), with glibc's cbrt as libxc's POW_1_3 uses it.
    @inline(__always) func cbrt() -> Self {
        let x = primal
        let f = libmCbrt(x)
        let d = f / (3 * x)
        return chain(f, d, Self.derivativeOrder > 1 ? -2 * d / (3 * x) : 0)
    }

    @inline(__always) func atan() -> Self {
        let x = primal
        let d = 1 / (1 + x * x)
        return chain(libmAtan(x), d, Self.derivativeOrder > 1 ? -2 * x * d * d : 0)
    }
}

/// Forward-mode dual number: a value and its gradient with respect to up to `G.scalarCount` inputs.
struct XCDual<G: SIMD>: XCScalar where G.Scalar == Double {
    var primal: Double
    var grad: G

    @inline(__always) init(_ constant: Double) {
        primal = constant
        grad = G()
    }

    @inline(__always) init(primal: Double, grad: G) {
        self.primal = primal
        self.grad = grad
    }

    @inline(__always) static var derivativeOrder: Int { 1 }

    @inline(__always) func chain(_ f: Double, _ df: Double, _ d2f: Double) -> XCDual {
        XCDual(primal: f, grad: df * grad)
    }

    @inline(__always) static func + (a: XCDual, b: XCDual) -> XCDual { XCDual(primal: a.primal + b.primal, grad: a.grad + b.grad) }
    @inline(__always) static func - (a: XCDual, b: XCDual) -> XCDual { XCDual(primal: a.primal - b.primal, grad: a.grad - b.grad) }
    @inline(__always) static func * (a: XCDual, b: XCDual) -> XCDual {
        XCDual(primal: a.primal * b.primal, grad: b.primal * a.grad + a.primal * b.grad)
    }
    @inline(__always) static func / (a: XCDual, b: XCDual) -> XCDual {
        let r = 1 / b.primal
        let q = a.primal * r
        return XCDual(primal: q, grad: r * (a.grad - q * b.grad))
    }
    @inline(__always) static prefix func - (a: XCDual) -> XCDual { XCDual(primal: -a.primal, grad: -a.grad) }

    @inline(__always) static func + (a: XCDual, b: Double) -> XCDual { XCDual(primal: a.primal + b, grad: a.grad) }
    @inline(__always) static func + (a: Double, b: XCDual) -> XCDual { XCDual(primal: a + b.primal, grad: b.grad) }
    @inline(__always) static func - (a: XCDual, b: Double) -> XCDual { XCDual(primal: a.primal - b, grad: a.grad) }
    @inline(__always) static func - (a: Double, b: XCDual) -> XCDual { XCDual(primal: a - b.primal, grad: -b.grad) }
    @inline(__always) static func * (a: XCDual, b: Double) -> XCDual { XCDual(primal: a.primal * b, grad: b * a.grad) }
    @inline(__always) static func * (a: Double, b: XCDual) -> XCDual { XCDual(primal: a * b.primal, grad: a * b.grad) }
    @inline(__always) static func / (a: XCDual, b: Double) -> XCDual {
        let r = 1 / b
        return XCDual(primal: a.primal / b, grad: r * a.grad)
    }
    @inline(__always) static func / (a: Double, b: XCDual) -> XCDual {
        let r = 1 / b.primal
        let q = a * r
        return XCDual(primal: q, grad: (-q * r) * b.grad)
    }
}

/// A value without derivatives, for energy-only evaluation. Every operation computes its value
/// exactly as `XCDual` computes its primal part (a / b as a * (1 / b), and so on), so the energy
/// comes out bit for bit the same, at a fraction of the cost.
struct XCValue: XCScalar {
    var primal: Double

    @inline(__always) init(_ constant: Double) { primal = constant }

    @inline(__always) static var derivativeOrder: Int { 0 }

    @inline(__always) func chain(_ f: Double, _ df: Double, _ d2f: Double) -> XCValue { XCValue(f) }

    @inline(__always) static func + (a: XCValue, b: XCValue) -> XCValue { XCValue(a.primal + b.primal) }
    @inline(__always) static func - (a: XCValue, b: XCValue) -> XCValue { XCValue(a.primal - b.primal) }
    @inline(__always) static func * (a: XCValue, b: XCValue) -> XCValue { XCValue(a.primal * b.primal) }
    @inline(__always) static func / (a: XCValue, b: XCValue) -> XCValue { XCValue(a.primal * (1 / b.primal)) }
    @inline(__always) static prefix func - (a: XCValue) -> XCValue { XCValue(-a.primal) }

    @inline(__always) static func + (a: XCValue, b: Double) -> XCValue { XCValue(a.primal + b) }
    @inline(__always) static func + (a: Double, b: XCValue) -> XCValue { XCValue(a + b.primal) }
    @inline(__always) static func - (a: XCValue, b: Double) -> XCValue { XCValue(a.primal - b) }
    @inline(__always) static func - (a: Double, b: XCValue) -> XCValue { XCValue(a - b.primal) }
    @inline(__always) static func * (a: XCValue, b: Double) -> XCValue { XCValue(a.primal * b) }
    @inline(__always) static func * (a: Double, b: XCValue) -> XCValue { XCValue(a * b.primal) }
    @inline(__always) static func / (a: XCValue, b: Double) -> XCValue { XCValue(a.primal / b) }
    @inline(__always) static func / (a: Double, b: XCValue) -> XCValue { XCValue(a * (1 / b.primal)) }
}

extension XCValue: XCDifferentiable {
    @inline(__always) static func variable(_ x: Double, lane: Int, weight: Double, perturbation: Double) -> XCValue { XCValue(x) }
    @inline(__always) func derivative(lane: Int) -> Double { 0 }
    @inline(__always) var directionalDerivative: Double { 0 }
}

/// Second-order forward mode along one direction: f, its gradient g, the directional derivative
/// t = g . d, and the directional derivative of the gradient h = H d, for a fixed direction d that
/// is seeded in the inputs' `tangent`. `h` of the energy is exactly the kernel applied to d.
struct XCHyperDual<G: SIMD>: XCScalar where G.Scalar == Double {
    var primal: Double
    var grad: G
    var tangent: Double
    var hess: G

    @inline(__always) init(_ constant: Double) {
        primal = constant
        grad = G()
        tangent = 0
        hess = G()
    }

    @inline(__always) init(primal: Double, grad: G, tangent: Double, hess: G) {
        self.primal = primal
        self.grad = grad
        self.tangent = tangent
        self.hess = hess
    }

    @inline(__always) static var derivativeOrder: Int { 2 }

    @inline(__always) func chain(_ f: Double, _ df: Double, _ d2f: Double) -> XCHyperDual {
        XCHyperDual(primal: f, grad: df * grad, tangent: df * tangent, hess: df * hess + (d2f * tangent) * grad)
    }

    @inline(__always) static func + (a: XCHyperDual, b: XCHyperDual) -> XCHyperDual {
        XCHyperDual(primal: a.primal + b.primal, grad: a.grad + b.grad, tangent: a.tangent + b.tangent, hess: a.hess + b.hess)
    }
    @inline(__always) static func - (a: XCHyperDual, b: XCHyperDual) -> XCHyperDual {
        XCHyperDual(primal: a.primal - b.primal, grad: a.grad - b.grad, tangent: a.tangent - b.tangent, hess: a.hess - b.hess)
    }
    @inline(__always) static func * (a: XCHyperDual, b: XCHyperDual) -> XCHyperDual {
        let hess = b.primal * a.hess + a.primal * b.hess + b.tangent * a.grad + a.tangent * b.grad
        return XCHyperDual(primal: a.primal * b.primal, grad: b.primal * a.grad + a.primal * b.grad,
                           tangent: b.primal * a.tangent + a.primal * b.tangent, hess: hess)
    }
    @inline(__always) static func / (a: XCHyperDual, b: XCHyperDual) -> XCHyperDual { a * b.reciprocal() }
    @inline(__always) static prefix func - (a: XCHyperDual) -> XCHyperDual {
        XCHyperDual(primal: -a.primal, grad: -a.grad, tangent: -a.tangent, hess: -a.hess)
    }

    @inline(__always) static func + (a: XCHyperDual, b: Double) -> XCHyperDual {
        XCHyperDual(primal: a.primal + b, grad: a.grad, tangent: a.tangent, hess: a.hess)
    }
    @inline(__always) static func + (a: Double, b: XCHyperDual) -> XCHyperDual { b + a }
    @inline(__always) static func - (a: XCHyperDual, b: Double) -> XCHyperDual { a + (-b) }
    @inline(__always) static func - (a: Double, b: XCHyperDual) -> XCHyperDual { (-b) + a }
    @inline(__always) static func * (a: XCHyperDual, b: Double) -> XCHyperDual {
        XCHyperDual(primal: a.primal * b, grad: b * a.grad, tangent: b * a.tangent, hess: b * a.hess)
    }
    @inline(__always) static func * (a: Double, b: XCHyperDual) -> XCHyperDual { b * a }
    @inline(__always) static func / (a: XCHyperDual, b: Double) -> XCHyperDual {
        XCHyperDual(primal: a.primal / b, grad: a.grad / b, tangent: a.tangent / b, hess: a.hess / b)
    }
    @inline(__always) static func / (a: Double, b: XCHyperDual) -> XCHyperDual { a * b.reciprocal() }
}

// MARK: - Points, components and libxc's spin conventions

/// The inputs of an energy density at one grid point, always in spin-resolved form.
/// An unpolarised point enters as rho_up = rho_down = rho/2 and sigma_ab = sigma/4, so one
/// formula serves both spin cases.
struct XCPoint<T: XCScalar> {
    var rhoUp: T
    var rhoDown: T
    var sigmaUpUp: T
    var sigmaUpDown: T
    var sigmaDownDown: T
    /// The two spins are the same number (value and every derivative part): an unpolarised point.
    /// Then zeta = 0 exactly, with no derivative, and the spin-interpolation terms are exact
    /// zeros (f(0) = 0) and ones (phi(0) = 1) that a component may skip: the result is the same,
    /// bit for bit, without the two extra PW92 fits and the cube roots of 1 +- zeta.
    var unpolarised = false
}

/// One piece of a functional as libxc defines it (LDA_X, LDA_C_PW, GGA_C_PBE, ...): an energy
/// per volume and the thresholds libxc applies to it. A functional is a sum of components, each
/// screened with its own thresholds, exactly as libxc evaluates a sum of functionals.
protocol XCComponent {
    /// libxc's `dens_threshold`: points whose total density is below it contribute nothing, and
    /// each spin density is raised to at least this value before evaluation.
    var densityThreshold: Double { get }
    /// Whether the energy depends on sigma.
    static var isGGA: Bool { get }
    /// Energy per volume (Ha/bohr^3) at one point whose inputs are already screened.
    func energy<T: XCScalar>(_ p: XCPoint<T>) -> T
    /// The component's named parameters and their values (libxc's ext_params, under the names
    /// the registry uses), in the order `energy(_:parameter:value:)` numbers them.
    var parameters: [(name: String, value: Double)] { get }
    /// The energy with parameter number `index` replaced by `value`, a number that may carry
    /// derivatives with respect to that parameter.
    func energy<T: XCScalar>(_ p: XCPoint<T>, parameter index: Int, value: T) -> T
}

extension XCComponent {
    /// Most components have no parameters.
    var parameters: [(name: String, value: Double)] { [] }

    func energy<T: XCScalar>(_ p: XCPoint<T>, parameter index: Int, value: T) -> T { energy(p) }

    /// libxc's `sigma_threshold` is dens_threshold^(4/3), and sigma_ss is raised to at least its square.
    var sigmaFloor: Double {
        let t = pow(densityThreshold, 4.0 / 3.0)
        return t * t
    }
}

/// libxc's conventions shared by the built-ins: zeta screening and the spin-scaling functions.
enum XCSpinScaling {
    /// libxc's default `zeta_threshold` (DBL_EPSILON): 1 +- zeta is never taken below it.
    static let zetaThreshold = 2.220446049250313e-16
    /// zeta_threshold^(4/3) and zeta_threshold^(2/3).
    static let zetaThresholdPow43 = 1.3445809915232009e-21
    static let zetaThresholdPow23 = 3.666852862501032e-11
    /// 1 / (2^(4/3) - 2), the normalisation of f(zeta).
    static let fZetaNormalisation = 1.9236610509315344
    /// (3 / (4 pi))^(1/3): rs = rsFactor / n^(1/3).
    static let rsFactor = 0.6203504908994

    /// (1+z)^(4/3) given 1+z, replaced by zeta_threshold^(4/3) when 1+z <= zeta_threshold (libxc's opz_pow_n).
    @inline(__always) static func pow43<T: XCScalar>(onePlusZeta opz: T) -> T {
        if opz.primal <= zetaThreshold { return T(zetaThresholdPow43) }
        return opz.cbrt() * opz
    }

    /// (1+z)^(2/3) given 1+z, replaced by zeta_threshold^(2/3) when 1+z <= zeta_threshold.
    @inline(__always) static func pow23<T: XCScalar>(onePlusZeta opz: T) -> T {
        if opz.primal <= zetaThreshold { return T(zetaThresholdPow23) }
        return opz.cbrt().squared()
    }

    /// The Wigner-Seitz radius rs = (3 / (4 pi n))^(1/3).
    @inline(__always) static func wignerSeitzRadius<T: XCScalar>(_ n: T) -> T {
        rsFactor * n.cbrt().reciprocal()
    }
}

/// Total density and spin polarisation of a point, computed in libxc's operation order:
/// zeta = (rho_up - rho_down) * (1/n). Near full polarisation 1 - zeta is a difference of nearly
/// equal numbers and libxc's derivatives contain (1 - zeta)^(-1/3); reproducing them needs the
/// same rounding.
struct XCSpinPolarisation<T: XCScalar> {
    var n: T
    var zeta: T
    var onePlusZeta: T
    var oneMinusZeta: T
    /// `XCPoint.unpolarised`.
    var unpolarised: Bool

    @inline(__always) init(_ p: XCPoint<T>) {
        unpolarised = p.unpolarised
        n = p.rhoUp + p.rhoDown
        zeta = (p.rhoUp - p.rhoDown) * n.reciprocal()
        onePlusZeta = 1 + zeta
        oneMinusZeta = 1 - zeta
    }

    /// PW92's f(zeta) = ((1+z)^(4/3) + (1-z)^(4/3) - 2) / (2^(4/3) - 2); exactly 0 unpolarised.
    @inline(__always) var fZeta: T {
        if unpolarised { return T(0) }
        let sum = XCSpinScaling.pow43(onePlusZeta: onePlusZeta) + XCSpinScaling.pow43(onePlusZeta: oneMinusZeta)
        return (sum - 2) * XCSpinScaling.fZetaNormalisation
    }

    /// PBE's phi(zeta) = ((1+z)^(2/3) + (1-z)^(2/3)) / 2; exactly 1 unpolarised.
    @inline(__always) var phi: T {
        if unpolarised { return T(1) }
        return 0.5 * (XCSpinScaling.pow23(onePlusZeta: onePlusZeta) + XCSpinScaling.pow23(onePlusZeta: oneMinusZeta))
    }

    /// zeta^4
    @inline(__always) var zeta4: T {
        zeta.squared().squared()
    }
}

// MARK: - LDA energy densities

// Slater exchange, PW92 and VWN5 correlation, Teter93 exchange-correlation: each is libxc's Maple
// definition (maple/lda_exc/*.mpl, libxc 7.0.0) written once over `XCScalar`, with its screening.

/// Slater (Dirac-Bloch) exchange, libxc LDA_X:
/// e_x = sum_s -(3/8) (3/pi)^(1/3) (1 + zeta_s)^(4/3) n^(4/3), zero for a spin channel with
/// rho_s <= dens_threshold.
struct SlaterExchange: XCComponent {
    var densityThreshold: Double { 1e-15 }
    static var isGGA: Bool { false }

    /// (3/8) (3/pi)^(1/3)
    static let prefactor = 0.3692793831910112

    @inline(__always) func energy<T: XCScalar>(_ p: XCPoint<T>) -> T {
        let n = p.rhoUp + p.rhoDown
        let nInverse = n.reciprocal()
        let n43 = n.cbrt() * n
        // libxc forms 1 + zeta_s as 2 rho_s / n here, and screens each channel on its own density.
        var spinScaling = T(0)
        if p.rhoUp.primal > densityThreshold {
            spinScaling = spinScaling + XCSpinScaling.pow43(onePlusZeta: 2 * (p.rhoUp * nInverse))
        }
        if p.rhoDown.primal > densityThreshold {
            spinScaling = spinScaling + XCSpinScaling.pow43(onePlusZeta: 2 * (p.rhoDown * nInverse))
        }
        return -SlaterExchange.prefactor * spinScaling * n43
    }
}

/// Perdew-Wang 1992 correlation (PRB 45, 13244), libxc LDA_C_PW or, with `modified` constants,
/// LDA_C_PW_MOD (the extra digits of the original PBE code, also used inside GGA_C_PBE).
struct PW92Correlation: XCComponent {
    /// The fit G(rs; A, alpha1, beta1..4) of Eq. (10), with p = 1, for one of
    /// eps_c(rs, 0), eps_c(rs, 1) and -alpha_c(rs).
    struct Fit {
        var a: Double
        var alpha1: Double
        var beta1: Double
        var beta2: Double
        var beta3: Double
        var beta4: Double

        @inline(__always) func callAsFunction<T: XCScalar>(rs: T, sqrtRs: T) -> T {
            let q = beta1 * sqrtRs + beta2 * rs + beta3 * (rs * sqrtRs) + beta4 * rs.squared()
            // log(1 + x), not log1p, because libxc writes it so: at n ~ 1e-15, x ~ 1e-8 and the
            // two forms differ by 1e-9 relative; in the same form the results agree to rounding.
            let logTerm = (1 + 1 / (2 * a) * q.reciprocal()).log()
            return -2 * a * (1 + alpha1 * rs) * logTerm
        }
    }

    var paramagnetic: Fit
    var ferromagnetic: Fit
    var minusSpinStiffness: Fit
    /// f''(0) = 1.709921 (1.709920934161365617563962776245 in the modified set).
    var fz20: Double

    var densityThreshold: Double { 1e-15 }
    static var isGGA: Bool { false }

    /// libxc's LDA_C_PW: the constants as printed in the paper.
    static let original = PW92Correlation(
        paramagnetic: Fit(a: 0.031091, alpha1: 0.21370, beta1: 7.5957, beta2: 3.5876, beta3: 1.6382, beta4: 0.49294),
        ferromagnetic: Fit(a: 0.015545, alpha1: 0.20548, beta1: 14.1189, beta2: 6.1977, beta3: 3.3662, beta4: 0.62517),
        minusSpinStiffness: Fit(a: 0.016887, alpha1: 0.11125, beta1: 10.357, beta2: 3.6231, beta3: 0.88026, beta4: 0.49671),
        fz20: 1.709921)

    /// libxc's LDA_C_PW_MOD: the same fit with the extra digits of the PBE reference code.
    static let modified = PW92Correlation(
        paramagnetic: Fit(a: 0.0310907, alpha1: 0.21370, beta1: 7.5957, beta2: 3.5876, beta3: 1.6382, beta4: 0.49294),
        ferromagnetic: Fit(a: 0.01554535, alpha1: 0.20548, beta1: 14.1189, beta2: 6.1977, beta3: 3.3662, beta4: 0.62517),
        minusSpinStiffness: Fit(a: 0.0168869, alpha1: 0.11125, beta1: 10.357, beta2: 3.6231, beta3: 0.88026, beta4: 0.49671),
        fz20: 1.709920934161365617563962776245)

    /// Correlation energy per particle, Eq. (8):
    /// eps_c = eps_c(rs,0) + alpha_c f(z)/f''(0) (1 - z^4) + [eps_c(rs,1) - eps_c(rs,0)] f(z) z^4.
    @inline(__always) func energyPerParticle<T: XCScalar>(rs: T, spin s: XCSpinPolarisation<T>) -> T {
        let sqrtRs = rs.sqrt()
        let ec0 = paramagnetic(rs: rs, sqrtRs: sqrtRs)
        // f(0) = 0 and zeta^4 = 0: the other terms add exact zeros.
        if s.unpolarised { return ec0 }
        let ec1 = ferromagnetic(rs: rs, sqrtRs: sqrtRs)
        let alphaTerm = minusSpinStiffness(rs: rs, sqrtRs: sqrtRs) * (1 / fz20)
        let fz = s.fZeta
        return ec0 + s.zeta4 * fz * (ec1 - ec0 + alphaTerm) - fz * alphaTerm
    }

    @inline(__always) func energy<T: XCScalar>(_ p: XCPoint<T>) -> T {
        let s = XCSpinPolarisation(p)
        let rs = XCSpinScaling.wignerSeitzRadius(s.n)
        return s.n * energyPerParticle(rs: rs, spin: s)
    }
}

/// Vosko-Wilk-Nusair correlation, parametrisation 5 (Can. J. Phys. 58, 1200 (1980)), libxc LDA_C_VWN.
struct VWN5Correlation: XCComponent {
    /// The interpolation formula of VWN Eq. (4.4) in x = sqrt(rs), in Hartree.
    struct Fit {
        let a: Double
        let b: Double
        let c: Double
        let x0: Double
        let q: Double
        let f2: Double
        /// f1 - f2 f3 in libxc's notation.
        let atanCoefficient: Double

        init(a: Double, b: Double, c: Double, x0: Double) {
            self.a = a
            self.b = b
            self.c = c
            self.x0 = x0
            q = (4 * c - b * b).squareRoot()
            f2 = b * x0 / (x0 * x0 + b * x0 + c)
            atanCoefficient = 2 * b / q - f2 * (2 * (2 * x0 + b) / q)
        }

        @inline(__always) func callAsFunction<T: XCScalar>(rs: T, sqrtRs: T) -> T {
            let bigX = rs + b * sqrtRs + c
            let bigXInverse = bigX.reciprocal()
            let logTerm = (rs * bigXInverse).log()
            let atanTerm = (q * (2 * sqrtRs + b).reciprocal()).atan()
            let logX0Term = ((sqrtRs - x0).squared() * bigXInverse).log()
            return a * (logTerm + atanCoefficient * atanTerm - f2 * logX0Term)
        }
    }

    var paramagnetic = Fit(a: 0.0310907, b: 3.72744, c: 12.9352, x0: -0.10498)
    var ferromagnetic = Fit(a: 0.01554535, b: 7.06042, c: 18.0578, x0: -0.32500)
    /// The spin stiffness fit; a = -1/(6 pi^2).
    var spinStiffness = Fit(a: -0.01688686394038963, b: 1.13107, c: 13.0045, x0: -0.0047584)
    /// 1 / f''(0) = 9 (2^(1/3) - 1) / 4
    static let inverseFpp = 0.5848223622634652

    var densityThreshold: Double { 1e-15 }
    static var isGGA: Bool { false }

    /// eps_c = eps_P + alpha_c f(z) (1 - z^4) / f''(0) + (eps_F - eps_P) f(z) z^4
    @inline(__always) func energy<T: XCScalar>(_ p: XCPoint<T>) -> T {
        let s = XCSpinPolarisation(p)
        let rs = XCSpinScaling.wignerSeitzRadius(s.n)
        let sqrtRs = rs.sqrt()
        let ecP = paramagnetic(rs: rs, sqrtRs: sqrtRs)
        // f(0) = 0 and zeta^4 = 0: the other terms add exact zeros.
        if s.unpolarised { return s.n * ecP }
        let ecF = ferromagnetic(rs: rs, sqrtRs: sqrtRs)
        let alpha = spinStiffness(rs: rs, sqrtRs: sqrtRs)
        let fz = s.fZeta
        let z4 = s.zeta4
        let eps = ecP + alpha * fz * (1 - z4) * VWN5Correlation.inverseFpp + (ecF - ecP) * fz * z4
        return s.n * eps
    }
}

/// Teter's 1993 Pade fit of exchange-correlation (Goedecker, Teter, Hutter, PRB 54, 1703 (1996)),
/// libxc LDA_XC_TETER93: eps_xc = -sum_i (a_i + f(z) a'_i) rs^(i-1) / sum_i (b_i + f(z) b'_i) rs^i.
struct Teter93: XCComponent {
    static let a = (0.4581652932831429, 2.217058676663745, 0.7405551735357053, 0.01968227878617998)
    static let ap = (0.119086804055547, 0.6157402568883345, 0.1574201515892867, 0.003532336663397157)
    static let b = (1.0000000000000000, 4.504130959426697, 1.110667363742916, 0.02359291751427506)
    static let bp = (0.000000000000000, 0.2673612973836267, 0.2052004607777787, 0.004200005045691381)

    var densityThreshold: Double { 1e-15 }
    static var isGGA: Bool { false }

    @inline(__always) func energy<T: XCScalar>(_ p: XCPoint<T>) -> T {
        let s = XCSpinPolarisation(p)
        let rs = XCSpinScaling.wignerSeitzRadius(s.n)
        let rs2 = rs.squared()
        let rs3 = rs2 * rs
        let fz = s.fZeta
        let (a, ap, b, bp) = (Teter93.a, Teter93.ap, Teter93.b, Teter93.bp)
        let numerator = (a.0 + ap.0 * fz) + (a.1 + ap.1 * fz) * rs + (a.2 + ap.2 * fz) * rs2 + (a.3 + ap.3 * fz) * rs3
        let denominator = (b.0 + bp.0 * fz) * rs + (b.1 + bp.1 * fz) * rs2 + (b.2 + bp.2 * fz) * rs3
            + (b.3 + bp.3 * fz) * (rs2 * rs2)
        return -s.n * numerator / denominator
    }
}

// MARK: - PBE energy densities

// Perdew, Burke, Ernzerhof, PRL 77, 3865 (1996); 78, 1396 (1997): libxc's GGA_X_PBE and
// GGA_C_PBE (maple/gga_exc/gga_{x,c}_pbe.mpl), with libxc's parameter names and screening.

/// PBE exchange, by spin scaling: e_x = sum_s e_x^LDA[2 rho_s] F(s_s) / 2 with
/// F(s) = 1 + kappa (1 - kappa / (kappa + mu s^2)) and s_s = |grad rho_s| / (2 (6 pi^2)^(1/3) rho_s^(4/3)).
struct PBEExchange: XCComponent {
    /// Asymptotic value of the enhancement factor minus one (libxc "_kappa").
    var kappa: Double
    /// Coefficient of s^2 in the small-s expansion (libxc "_mu").
    var mu: Double

    static let defaultKappa = 0.8040
    /// beta pi^2 / 3 with PBE's beta.
    static let defaultMu = 0.2195149727645171

    var densityThreshold: Double { 1e-15 }
    static var isGGA: Bool { true }

    /// 1 / (4 (6 pi^2)^(2/3)): s^2 = this * sigma_ss / rho_s^(8/3).
    static let reducedGradientFactor = 0.01645530784602056

    var parameters: [(name: String, value: Double)] { [("kappa", kappa), ("mu", mu)] }

    @inline(__always) func energy<T: XCScalar>(_ p: XCPoint<T>) -> T {
        energy(p, kappa: T(kappa), mu: T(mu))
    }

    func energy<T: XCScalar>(_ p: XCPoint<T>, parameter index: Int, value: T) -> T {
        index == 0 ? energy(p, kappa: value, mu: T(mu)) : energy(p, kappa: T(kappa), mu: value)
    }

    /// The energy with kappa and mu as numbers of the evaluation type, so that the same line
    /// also gives derivatives with respect to them.
    @inline(__always) func energy<T: XCScalar>(_ p: XCPoint<T>, kappa: T, mu: T) -> T {
        let n = p.rhoUp + p.rhoDown
        let nInverse = n.reciprocal()
        let lda = -SlaterExchange.prefactor * n.cbrt() * n
        var sum = T(0)
        if p.unpolarised {
            // Both channels give the same number, with (1 + zeta)^(4/3) = 1 exactly.
            if p.rhoUp.primal > densityThreshold {
                let one = channel(rho: p.rhoUp, other: p.rhoDown, sigma: p.sigmaUpUp, nInverse: nInverse, kappa: kappa, mu: mu,
                                  unpolarised: true)
                sum = one + one
            }
            return lda * sum
        }
        if p.rhoUp.primal > densityThreshold {
            sum = sum + channel(rho: p.rhoUp, other: p.rhoDown, sigma: p.sigmaUpUp, nInverse: nInverse, kappa: kappa, mu: mu)
        }
        if p.rhoDown.primal > densityThreshold {
            sum = sum + channel(rho: p.rhoDown, other: p.rhoUp, sigma: p.sigmaDownDown, nInverse: nInverse, kappa: kappa, mu: mu)
        }
        return lda * sum
    }

    /// (1 + zeta_s)^(4/3) F(s_s) for one spin channel, with libxc's clamp of zeta_s into
    /// [zeta_threshold - 1, 1 - zeta_threshold] (z_thr in libxc's util.mpl).
    @inline(__always) func channel<T: XCScalar>(rho: T, other: T, sigma: T, nInverse: T, kappa: T, mu: T,
                                               unpolarised: Bool = false) -> T {
        let rho43 = rho.cbrt() * rho
        let s2 = PBEExchange.reducedGradientFactor * sigma / rho43.squared()
        let enhancement = 1 + kappa * (1 - kappa / (kappa + mu * s2))
        if unpolarised { return enhancement }
        let zeta: T
        if 2 * rho.primal * nInverse.primal <= XCSpinScaling.zetaThreshold {
            zeta = T(XCSpinScaling.zetaThreshold - 1)
        } else if 2 * other.primal * nInverse.primal <= XCSpinScaling.zetaThreshold {
            zeta = T(1 - XCSpinScaling.zetaThreshold)
        } else {
            zeta = (rho - other) * nInverse
        }
        let spinScaling = XCSpinScaling.pow43(onePlusZeta: 1 + zeta)
        return spinScaling * enhancement
    }
}

/// PBE correlation: e_c = n [eps_c^PW92(rs, zeta) + H(rs, zeta, t)] with
/// H = gamma phi^3 ln(1 + beta/gamma t^2 (1 + A t^2) / (1 + A t^2 + A^2 t^4)),
/// A = beta/gamma / (exp(-eps_c / (gamma phi^3)) - 1), and PW92 with the modified constants as in
/// libxc (LDA_C_PW_MOD).
struct PBECorrelation: XCComponent {
    /// libxc "_beta".
    var beta: Double
    var pw92 = PW92Correlation.modified

    static let defaultBeta = 0.06672455060314922
    /// (1 - ln 2) / pi^2, libxc's "_gamma", fixed here.
    static let gamma = 0.031090690869654895034
    /// 1 / (16 2^(2/3)): t^2 = this * sigma / (phi^2 rs n^(8/3)).
    static let tFactor = 0.03937253280921477

    var densityThreshold: Double { 1e-12 }
    static var isGGA: Bool { true }

    var parameters: [(name: String, value: Double)] { [("beta", beta)] }

    @inline(__always) func energy<T: XCScalar>(_ p: XCPoint<T>) -> T {
        energy(p, beta: T(beta))
    }

    func energy<T: XCScalar>(_ p: XCPoint<T>, parameter index: Int, value: T) -> T {
        energy(p, beta: value)
    }

    /// The energy with beta as a number of the evaluation type (see `PBEExchange.energy(_:kappa:mu:)`).
    @inline(__always) func energy<T: XCScalar>(_ p: XCPoint<T>, beta: T) -> T {
        let s = XCSpinPolarisation(p)
        // n^(1/3) once for rs and n^(4/3): the same operations as XCSpinScaling.wignerSeitzRadius.
        let n13 = s.n.cbrt()
        let rs = XCSpinScaling.rsFactor * n13.reciprocal()
        let ec = pw92.energyPerParticle(rs: rs, spin: s)
        let gamma = PBECorrelation.gamma
        let phi = s.phi
        let phi2 = phi.squared()
        let gammaPhi3 = gamma * (phi2 * phi)
        let sigma = p.sigmaUpUp + 2 * p.sigmaUpDown + p.sigmaDownDown
        let n43 = n13 * s.n
        let t2 = PBECorrelation.tFactor * sigma / (phi2 * rs * n43.squared())
        let betaOverGamma = beta / gamma
        // exp(x) - 1 and log(1 + x) as libxc writes them (see PW92Correlation.Fit).
        let a = betaOverGamma * ((-ec / gammaPhi3).exp() - 1).reciprocal()
        let f1 = t2 * (1 + a * t2)
        let h = gammaPhi3 * (1 + betaOverGamma * f1 / (1 + a * f1)).log()
        return s.n * (ec + h)
    }
}

// MARK: - Evaluation loops

// The loops that turn an energy density into the `Functional` outputs: screening as libxc does
// it (src/work_lda_inc.c, src/work_gga_inc.c), seeding the dual numbers, and scattering the
// derivatives into the spin-major arrays.

/// A number type that can seed the inputs of a point and report one derivative per input lane:
/// the gradient (`XCDual`, for vrho/vsigma) or the Hessian applied to a perturbation
/// (`XCHyperDual`, for the kernel).
protocol XCDifferentiable: XCScalar {
    /// An input of value `x` that depends on the independent variable `lane` with slope
    /// `weight`; `perturbation` is its change along the kernel's direction (ignored by `XCDual`).
    static func variable(_ x: Double, lane: Int, weight: Double, perturbation: Double) -> Self
    /// d(output)/d(variable `lane`), or (H d)_lane for the kernel.
    func derivative(lane: Int) -> Double
    /// The derivative along the seeded direction (g . d); zero for `XCDual`, which has none.
    var directionalDerivative: Double { get }
}

extension XCDual: XCDifferentiable {
    @inline(__always) static func variable(_ x: Double, lane: Int, weight: Double, perturbation: Double) -> XCDual {
        var g = G()
        g[lane] = weight
        return XCDual(primal: x, grad: g)
    }

    @inline(__always) func derivative(lane: Int) -> Double { grad[lane] }

    @inline(__always) var directionalDerivative: Double { 0 }
}

extension XCHyperDual: XCDifferentiable {
    @inline(__always) static func variable(_ x: Double, lane: Int, weight: Double, perturbation: Double) -> XCHyperDual {
        var g = G()
        g[lane] = weight
        return XCHyperDual(primal: x, grad: g, tangent: perturbation, hess: G())
    }

    @inline(__always) func derivative(lane: Int) -> Double { hess[lane] }

    @inline(__always) var directionalDerivative: Double { tangent }
}

/// Raw input and output buffers of one batch, in the layouts of the `Functional` contract.
/// `drho`/`dsigma` are nil when evaluating, `energy` is nil for the kernel. For a parameter
/// derivative the outputs receive d(e, vrho, vsigma)/d(parameter).
struct XCBuffers {
    var nspin: Int
    var npoints: Int
    var rho: UnsafePointer<Double>
    var sigma: UnsafePointer<Double>?
    var drho: UnsafePointer<Double>?
    var dsigma: UnsafePointer<Double>?
    var energy: UnsafeMutablePointer<Double>?
    var vrho: UnsafeMutablePointer<Double>
    var vsigma: UnsafeMutablePointer<Double>?
}

enum XCEvaluation {
    /// What a pass over the points computes.
    enum Mode {
        /// e, vrho, vsigma.
        case evaluate
        /// e alone (vrho and vsigma receive zeros).
        case energy
        /// The second derivatives applied to the buffers' (drho, dsigma).
        case kernel
        /// d(e, vrho, vsigma)/d(parameter) for the named parameter at fixed (rho, sigma).
        /// The parameter is a hyper-dual input with no gradient lane and a unit tangent, so the
        /// result's tangent is de/dparameter and its `hess` lanes are d(vrho, vsigma)/dparameter.
        case parameter(String)
    }

    /// Sets the outputs (energy, vrho, vsigma) of a batch to zero before the components accumulate.
    static func zeroOutputs(_ b: XCBuffers, isGGA: Bool) {
        if let e = b.energy { e.update(repeating: 0, count: b.npoints) }
        b.vrho.update(repeating: 0, count: b.nspin * b.npoints)
        if isGGA, let vs = b.vsigma { vs.update(repeating: 0, count: (b.nspin == 1 ? 1 : 3) * b.npoints) }
    }

    /// Adds one component's energy and derivatives (T = XCDual) or kernel (T = XCHyperDual) to the outputs,
    /// or, with `parameter` (the index of one of the component's parameters, T = XCHyperDual), the
    /// derivatives of those outputs with respect to that parameter.
    /// Unpolarised points are evaluated as rho_s = rho/2, sigma_ab = sigma/4 with the chain rule
    /// folded into the seeds, so d/drho = (d/drho_up + d/drho_down)/2 and so on.
    @inline(__always)
    static func accumulate<C: XCComponent, T: XCDifferentiable>(_ c: C, _: T.Type, _ b: XCBuffers, parameter: Int? = nil) {
        let seed = parameter.map { T.variable(c.parameters[$0].value, lane: 0, weight: 0, perturbation: 1) }
        @inline(__always) func energy(_ p: XCPoint<T>) -> (value: Double, derivatives: T) {
            guard let parameter, let seed else {
                let r = c.energy(p)
                return (r.primal, r)
            }
            let r = c.energy(p, parameter: parameter, value: seed)
            return (r.directionalDerivative, r)
        }
        let threshold = c.densityThreshold
        let sigmaFloor = c.sigmaFloor
        let np = b.npoints
        if b.nspin == 1 {
            for i in 0..<np {
                let n = b.rho[i]
                if n < threshold { continue }
                let dn = b.drho?[i] ?? 0
                let half = T.variable(0.5 * n, lane: 0, weight: 0.5, perturbation: 0.5 * dn)
                var p = XCPoint(rhoUp: half, rhoDown: half, sigmaUpUp: T(0), sigmaUpDown: T(0), sigmaDownDown: T(0),
                                unpolarised: true)
                if C.isGGA, let sigma = b.sigma {
                    // libxc raises sigma to sigma_threshold^2, as it raises rho to dens_threshold.
                    let s = sigmaFloor > sigma[i] ? sigmaFloor : sigma[i]
                    let ds = b.dsigma?[i] ?? 0
                    let quarter = T.variable(0.25 * s, lane: 1, weight: 0.25, perturbation: 0.25 * ds)
                    p.sigmaUpUp = quarter
                    p.sigmaUpDown = quarter
                    p.sigmaDownDown = quarter
                }
                let (value, r) = energy(p)
                b.energy?[i] += value
                b.vrho[i] += r.derivative(lane: 0)
                if C.isGGA, let vsigma = b.vsigma { vsigma[i] += r.derivative(lane: 1) }
            }
            return
        }
        for i in 0..<np {
            let up = b.rho[i]
            let down = b.rho[np + i]
            if up + down < threshold { continue }
            let u = threshold > up ? threshold : up
            let d = threshold > down ? threshold : down
            var p = XCPoint(rhoUp: T.variable(u, lane: 0, weight: 1, perturbation: b.drho?[i] ?? 0),
                            rhoDown: T.variable(d, lane: 1, weight: 1, perturbation: b.drho?[np + i] ?? 0),
                            sigmaUpUp: T(0), sigmaUpDown: T(0), sigmaDownDown: T(0))
            if C.isGGA, let sigma = b.sigma {
                let uu = sigmaFloor > sigma[i] ? sigmaFloor : sigma[i]
                let dd = sigmaFloor > sigma[2 * np + i] ? sigmaFloor : sigma[2 * np + i]
                // |grad n|^2 >= 0 and |grad n_up - grad n_down|^2 >= 0 bound sigma_ud by the average.
                let average = 0.5 * (uu + dd)
                var ud = sigma[np + i]
                ud = ud >= -average ? ud : -average
                ud = ud <= average ? ud : average
                p.sigmaUpUp = T.variable(uu, lane: 2, weight: 1, perturbation: b.dsigma?[i] ?? 0)
                p.sigmaUpDown = T.variable(ud, lane: 3, weight: 1, perturbation: b.dsigma?[np + i] ?? 0)
                p.sigmaDownDown = T.variable(dd, lane: 4, weight: 1, perturbation: b.dsigma?[2 * np + i] ?? 0)
            }
            let (value, r) = energy(p)
            // libxc returns the energy per particle at the raised densities; PySCF and every libxc
            // user multiply it by the density they passed in. Do the same.
            b.energy?[i] += up + down == u + d ? value : value * ((up + down) / (u + d))
            b.vrho[i] += r.derivative(lane: 0)
            b.vrho[np + i] += r.derivative(lane: 1)
            if C.isGGA, let vsigma = b.vsigma {
                vsigma[i] += r.derivative(lane: 2)
                vsigma[np + i] += r.derivative(lane: 3)
                vsigma[2 * np + i] += r.derivative(lane: 4)
            }
        }
    }

    /// Evaluates one component into `b`, picking the narrowest dual number that holds the inputs:
    /// 2 lanes for unpolarised points and for polarised LDA, 8 (5 used) for polarised GGA.
    /// For a parameter the component does not have, it adds nothing.
    @inline(__always)
    static func add<C: XCComponent>(_ c: C, _ mode: Mode, _ b: XCBuffers) {
        let wide = b.nspin == 2 && C.isGGA
        switch mode {
        case .evaluate:
            wide ? accumulate(c, XCDual<SIMD8<Double>>.self, b) : accumulate(c, XCDual<SIMD2<Double>>.self, b)
        case .energy:
            accumulate(c, XCValue.self, b)
        case .kernel:
            wide ? accumulate(c, XCHyperDual<SIMD8<Double>>.self, b) : accumulate(c, XCHyperDual<SIMD2<Double>>.self, b)
        case let .parameter(name):
            guard let index = c.parameters.firstIndex(where: { $0.name == name }) else { return }
            wide ? accumulate(c, XCHyperDual<SIMD8<Double>>.self, b, parameter: index)
                : accumulate(c, XCHyperDual<SIMD2<Double>>.self, b, parameter: index)
        }
    }
}

extension BuiltinFunctional {
    /// Evaluates every component into the (zeroed) buffers; the concrete types fixed here are
    /// what lets the compiler specialise the loops and energies above.
    func run(_ mode: XCEvaluation.Mode, _ b: XCBuffers) {
        switch components {
        case let .slaterPW92(x, c):
            XCEvaluation.add(x, mode, b)
            XCEvaluation.add(c, mode, b)
        case let .slaterVWN5(x, c):
            XCEvaluation.add(x, mode, b)
            XCEvaluation.add(c, mode, b)
        case let .teter93(xc):
            XCEvaluation.add(xc, mode, b)
        case let .pbe(x, c):
            XCEvaluation.add(x, mode, b)
            XCEvaluation.add(c, mode, b)
        case let .slater(x):
            XCEvaluation.add(x, mode, b)
        case let .pbeExchange(x):
            XCEvaluation.add(x, mode, b)
        }
    }
}
