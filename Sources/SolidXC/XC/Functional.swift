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
}
