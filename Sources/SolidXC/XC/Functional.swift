/// The functional contract. Arrays are spin-major over a batch of `npoints` grid points:
///
/// - nspin = 1: rho[np] (total density), sigma[np] = |grad rho|^2.
/// - nspin = 2: rho[2*np] (up block, then down block),
///   sigma[3*np] (up.up block, up.down block, down.down block).
/// - Outputs: e[np] = energy per volume (Ha/bohr^3, that is rho*eps_xc),
///   vrho[nspin*np] = de/drho_s, vsigma[nsigma*np] = de/dsigma_ab (nsigma = 1 or 3; GGA only).
/// Densities are electrons/bohr^3.
public enum FunctionalFamily: String {
    case lda
    case gga
}

/// A named, documented parameter of a functional (for example PBE's "kappa"), as libxc records it.
public struct FunctionalParameter: Equatable {
    public var name: String
    public var value: Double
    public var description: String
    public init(name: String, value: Double, description: String) {
        self.name = name
        self.value = value
        self.description = description
    }
}

public protocol Functional: AnyObject {
    var name: String { get }
    var family: FunctionalFamily { get }
    var parameters: [FunctionalParameter] { get }

    /// Fills e, vrho and (GGA) vsigma. Throws `SolidXCError.callback` for a user functional that fails.
    func evaluate(nspin: Int, npoints: Int,
                  rho: UnsafePointer<Double>, sigma: UnsafePointer<Double>?,
                  e: UnsafeMutablePointer<Double>, vrho: UnsafeMutablePointer<Double>,
                  vsigma: UnsafeMutablePointer<Double>?) throws

    /// Second derivatives applied to a perturbation (drho, dsigma):
    /// dvrho_s = sum_t d2e/drho_s drho_t drho_t + sum_ab d2e/drho_s dsigma_ab dsigma_ab, and
    /// dvsigma_ab likewise. Same layouts as `evaluate`. LDA ignores dsigma/dvsigma.
    func applyKernel(nspin: Int, npoints: Int,
                     rho: UnsafePointer<Double>, sigma: UnsafePointer<Double>?,
                     drho: UnsafePointer<Double>, dsigma: UnsafePointer<Double>?,
                     dvrho: UnsafeMutablePointer<Double>, dvsigma: UnsafeMutablePointer<Double>?) throws

    /// d(e, vrho, vsigma)/d(parameter) at fixed (rho, sigma) for one of `parameters` (for example
    /// PBE's "kappa"); same layouts as `evaluate`. This is what the adjoint contracts with the grid
    /// adjoints to get dL/dparameter.
    /// - Throws: `SolidXCError.input(field: "parameter", ...)` for a functional without that parameter.
    func parameterDerivative(_ parameter: String, nspin: Int, npoints: Int,
                             rho: UnsafePointer<Double>, sigma: UnsafePointer<Double>?,
                             de: UnsafeMutablePointer<Double>, dvrho: UnsafeMutablePointer<Double>,
                             dvsigma: UnsafeMutablePointer<Double>?) throws
}

extension Functional {
    /// Functionals whose parameters the core does not differentiate (user and neural functionals
    /// keep theirs with the caller, for example in a torch module).
    public func parameterDerivative(_ parameter: String, nspin: Int, npoints: Int,
                                    rho: UnsafePointer<Double>, sigma: UnsafePointer<Double>?,
                                    de: UnsafeMutablePointer<Double>, dvrho: UnsafeMutablePointer<Double>,
                                    dvsigma: UnsafeMutablePointer<Double>?) throws {
        throw SolidXCError.input(field: "parameter", message:
            "functional '\(name)' has no parameter '\(parameter)' that the core can differentiate; "
                + "parameter derivatives exist for the built-ins' named parameters (for example pbe's kappa, mu, beta)")
    }
}
