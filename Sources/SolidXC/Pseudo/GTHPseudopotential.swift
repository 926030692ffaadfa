#if canImport(Glibc)
import Glibc
#endif

/// A Goedecker-Teter-Hutter (GTH) / Hartwigsen-Goedecker-Hutter (HGH) separable,
/// norm-conserving pseudopotential (Phys. Rev. B 54, 1703 (1996); Phys. Rev. B 58, 3641 (1998)).
/// Atomic units throughout: lengths in bohr, energies in Hartree, wave numbers in 1/bohr.
///
/// Local part, with x = r / rloc:
///
///     V_loc(r) = -zion/r erf(x/√2) + exp(-x²/2) (C1 + C2 x² + C3 x⁴ + C4 x⁶)
///
/// Nonlocal part, one channel per angular momentum l ≤ 3 with n_l ≤ 3 projectors,
/// i = 1...n_l in the formulas (the API takes 0-based i):
///
///     p_i^l(r) = √2 r^(l+2(i-1)) exp(-r²/(2 r_l²)) / (r_l^(l+(4i-1)/2) √Γ(l+(4i-1)/2))
///
/// normalised so that ∫ p_i^l(r)² r² dr = 1. Spin-orbit (k) coefficients are not used.
///
/// **Plane-wave conventions** (plane waves ⟨r|k+G⟩ = e^{i(k+G)·r}/√Ω, q = k+G, Ω the cell volume):
///
/// - Local potential: V_loc(G) = (1/Ω) Σ_a `localFourier(|G|)` e^{-iG·τ_a}. The G = 0
///   Coulomb divergence is left to the Hartree/Ewald terms; the finite remainder enters
///   through `localFourierNonCoulombAtZero` (the psp core energy).
/// - Nonlocal potential: V_nl = Σ_{a,l,m,i,j} |β^a_{lmi}⟩ h^l_ij ⟨β^a_{lmj}| with
///
///       β^a_{lmi}(q) = ⟨k+G|β^a_{lmi}⟩ = (1/√Ω) (-i)^l Y_lm(q̂) p̃_i^l(|q|) e^{-i q·τ_a},
///
///   where Y_lm are the real spherical harmonics of `realSphericalHarmonics` and
///   p̃_i^l = `projectorFourier(l:i:q:)`. In real space β^a_{lmi}(r) = p_i^l(|r-τ_a|) Y_lm(r-τ_a).
public struct GTHPseudopotential: Equatable, Sendable {
    /// One nonlocal channel: angular momentum `l`, projector radius `radius` (bohr) and the
    /// symmetric coupling matrix `h` (Hartree), n × n with n = number of projectors (0...3).
    public struct Channel: Equatable, Sendable {
        public let l: Int
        public let radius: Double
        public let h: [[Double]]
        /// 4π^{3/2} 2^k Γ(l+3/2+k)/Γ(l+3/2) / √Γ(l+3/2+2k) · r_l^{3/2}, k = 0..<n: the value of
        /// p̃_{k+1}^l(q) / ((q r_l)^l e^{-(q r_l)²/2}) at q = 0.
        let fourierPrefactor: [Double]
    }

    /// Element symbol as written in the table, e.g. "Si".
    public let element: String
    /// The names on the entry's header line, e.g. ["GTH-PADE-q4", "GTH-LDA-q4", "GTH-PADE", "GTH-LDA"].
    public let names: [String]
    /// Valence electrons per angular momentum of the reference configuration (s, p, d, f).
    public let valenceConfiguration: [Int]
    /// Ionic (valence) charge Z, the sum of `valenceConfiguration`.
    public let zion: Double
    /// Radius of the local part (bohr).
    public let rloc: Double
    /// Coefficients C1...Cn of the local Gaussian polynomial (Hartree), n ≤ 4.
    public let cloc: [Double]
    /// Nonlocal channels, `channels[l]` for l = 0..<channels.count. A channel may have no projectors.
    public let channels: [Channel]

    /// Highest l that carries at least one projector; -1 for a purely local potential (e.g. H).
    public var maxAngularMomentum: Int {
        channels.lastIndex { !$0.h.isEmpty } ?? -1
    }

    /// Number of projectors of channel l (0 if the channel is absent).
    public func projectorCount(l: Int) -> Int {
        l >= 0 && l < channels.count ? channels[l].h.count : 0
    }

    /// The symmetric coupling matrix h^l (Hartree), n × n with n = `projectorCount(l:)`; empty if absent.
    public func h(l: Int) -> [[Double]] {
        l >= 0 && l < channels.count ? channels[l].h : []
    }

    /// Projector radius r_l (bohr) of channel l; 0 if the channel is absent.
    public func projectorRadius(l: Int) -> Double {
        l >= 0 && l < channels.count ? channels[l].radius : 0
    }

    // MARK: Reciprocal space

    /// ∫ V_loc(r) e^{-iq·r} d³r (Hartree·bohr³) at wave number q > 0 (1/bohr), with t = q·rloc:
    ///
    ///     -4π Z/q² e^{-t²/2} + (2π)^{3/2} rloc³ e^{-t²/2} (C1 + C2 (3 - t²) + C3 (15 - 10t² + t⁴)
    ///                                                     + C4 (105 - 105t² + 21t⁴ - t⁶))
    ///
    /// At q = 0 the Coulomb tail makes this -infinity; use `localFourierNonCoulombAtZero` there.
    public func localFourier(_ q: Double) -> Double {
        let t2 = (q * rloc) * (q * rloc)
        let gauss = exp(-0.5 * t2)
        let (c1, c2, c3, c4) = paddedCloc
        let poly = c1 + c2 * (3 - t2) + c3 * (15 - t2 * (10 - t2))
            + c4 * (105 - t2 * (105 - t2 * (21 - t2)))
        return -4 * Double.pi * zion / (q * q) * gauss
            + GTHPseudopotential.twoPiToThreeHalves * rloc * rloc * rloc * gauss * poly
    }

    /// d`localFourier`/dq at q > 0 (Hartree·bohr⁴), for the stress.
    public func localFourierDerivative(_ q: Double) -> Double {
        let r2 = rloc * rloc
        let t2 = q * q * r2
        let gauss = exp(-0.5 * t2)
        let (c1, c2, c3, c4) = paddedCloc
        let poly = c1 + c2 * (3 - t2) + c3 * (15 - t2 * (10 - t2))
            + c4 * (105 - t2 * (105 - t2 * (21 - t2)))
        let slope = -c2 + c3 * (-10 + 2 * t2) + c4 * (-105 + t2 * (42 - 3 * t2))  // d poly / d(t²)
        return 4 * Double.pi * zion * gauss * (2 / (q * q * q) + r2 / q)
            + GTHPseudopotential.twoPiToThreeHalves * rloc * r2 * gauss * q * r2 * (2 * slope - poly)
    }

    /// lim_{q→0} [`localFourier(q)` + 4πZ/q²] = 2πZ rloc² + (2π)^{3/2} rloc³ (C1 + 3C2 + 15C3 + 105C4)
    /// (Hartree·bohr³), i.e. ∫ (V_loc(r) + Z/r) d³r. This is the "alpha" of the psp core
    /// energy, E = (Σ_atoms alpha) · N_electrons / Ω.
    public var localFourierNonCoulombAtZero: Double {
        let (c1, c2, c3, c4) = paddedCloc
        return 2 * Double.pi * zion * rloc * rloc
            + GTHPseudopotential.twoPiToThreeHalves * rloc * rloc * rloc
            * (c1 + 3 * c2 + 15 * c3 + 105 * c4)
    }

    /// Radial form factor p̃_i^l(q) = 4π ∫ r² j_l(qr) p_i^l(r) dr (bohr^{3/2}) of projector i
    /// (0-based, i < `projectorCount(l:)`) of channel l at wave number q ≥ 0 (1/bohr).
    /// Closed form (HGH 1998, appendix; derived from ∫ r^{l+2} j_l(qr) e^{-βr²} dr), t = q r_l:
    ///
    ///     p̃_i^l(q) = P_{l,i} t^l e^{-t²/2} × { 1,  1 - t²/(2l+3),  1 - 2t²/(2l+3) + t⁴/((2l+3)(2l+5)) }
    ///
    /// with P_{l,i} = 4π^{3/2} 2^k Γ(l+3/2+k) / (Γ(l+3/2) √Γ(l+3/2+2k)) r_l^{3/2}, k = i (0-based).
    public func projectorFourier(l: Int, i: Int, q: Double) -> Double {
        precondition(l >= 0 && l < channels.count && i >= 0 && i < channels[l].h.count,
                     "GTH projector (l=\(l), i=\(i)) does not exist for \(element)")
        let channel = channels[l]
        let t = q * channel.radius
        let t2 = t * t
        var tl = 1.0
        for _ in 0..<l { tl *= t }
        let a = 1 / Double(2 * l + 3)
        let poly: Double
        switch i {
        case 0: poly = 1
        case 1: poly = 1 - t2 * a
        default: poly = 1 - 2 * t2 * a + t2 * t2 * a / Double(2 * l + 5)
        }
        return channel.fourierPrefactor[i] * tl * exp(-0.5 * t2) * poly
    }

    /// d`projectorFourier(l:i:q:)`/dq (bohr^{5/2}), for the stress.
    public func projectorFourierDerivative(l: Int, i: Int, q: Double) -> Double {
        precondition(l >= 0 && l < channels.count && i >= 0 && i < channels[l].h.count,
                     "GTH projector (l=\(l), i=\(i)) does not exist for \(element)")
        let channel = channels[l]
        let t = q * channel.radius
        let t2 = t * t
        var tlm1 = 1.0  // t^(l-1) for l ≥ 1
        for _ in 1..<max(l, 1) { tlm1 *= t }
        let tl = l == 0 ? 1 : tlm1 * t
        let dtl = l == 0 ? 0 : Double(l) * tlm1  // d t^l / dt
        let a = 1 / Double(2 * l + 3)
        let poly: Double, slope: Double  // poly(t²) and its derivative in t²
        switch i {
        case 0: (poly, slope) = (1, 0)
        case 1: (poly, slope) = (1 - t2 * a, -a)
        default: (poly, slope) = (1 - 2 * t2 * a + t2 * t2 * a / Double(2 * l + 5), -2 * a + 2 * t2 * a / Double(2 * l + 5))
        }
        let dt = exp(-0.5 * t2) * (dtl * poly - tl * t * poly + tl * 2 * t * slope)
        return channel.fourierPrefactor[i] * channel.radius * dt
    }

    /// Writes the gradients ∇_q Y_{l,m}(q̂) (1/bohr) of the real spherical harmonics at q =
    /// `direction` (not normalised) into `into[3(m+l) ..< 3(m+l)+3]`, m = -l...l. Zeros at q = 0.
    /// With Y = H(q̂) for the homogeneous polynomial H of degree l, ∇Y = (∇H(u) - l H(u) u)/|q|.
    public static func realSphericalHarmonicsGradient(l: Int, direction: (Double, Double, Double),
                                                      into grad: UnsafeMutablePointer<Double>) {
        precondition(l >= 0 && l <= 3, "real spherical harmonics implemented for l ≤ 3, got \(l)")
        let r2 = direction.0 * direction.0 + direction.1 * direction.1 + direction.2 * direction.2
        let count = 2 * l + 1
        guard l > 0, r2 > 0 else {
            for c in 0..<(3 * count) { grad[c] = 0 }
            return
        }
        let invr = 1 / r2.squareRoot()
        let x = direction.0 * invr, y = direction.1 * invr, z = direction.2 * invr
        var h: [(Double, Double, Double)]  // ∇H(u) per m
        switch l {
        case 1:
            let c = 0.4886025119029199
            h = [(0, c, 0), (0, 0, c), (c, 0, 0)]
        case 2:
            let c1 = 1.0925484305920792, c0 = 0.31539156525252005, c2 = 0.5462742152960396
            h = [(c1 * y, c1 * x, 0), (0, c1 * z, c1 * y), (-2 * c0 * x, -2 * c0 * y, 4 * c0 * z),
                 (c1 * z, 0, c1 * x), (2 * c2 * x, -2 * c2 * y, 0)]
        default:
            let c3 = 0.5900435899266435, c2a = 2.890611442640554, c1 = 0.4570457994644658
            let c0 = 0.3731763325901154, c2b = 1.445305721320277
            h = [(6 * c3 * x * y, 3 * c3 * (x * x - y * y), 0),
                 (c2a * y * z, c2a * x * z, c2a * x * y),
                 (-2 * c1 * x * y, c1 * (4 * z * z - x * x - 3 * y * y), 8 * c1 * y * z),
                 (-6 * c0 * x * z, -6 * c0 * y * z, c0 * (6 * z * z - 3 * x * x - 3 * y * y)),
                 (c1 * (4 * z * z - 3 * x * x - y * y), -2 * c1 * x * y, 8 * c1 * x * z),
                 (2 * c2b * x * z, -2 * c2b * y * z, c2b * (x * x - y * y)),
                 (3 * c3 * (x * x - y * y), -6 * c3 * x * y, 0)]
        }
        var values = [Double](repeating: 0, count: count)
        values.withUnsafeMutableBufferPointer { realSphericalHarmonics(l: l, direction: direction, into: $0.baseAddress!) }
        let fl = Double(l)
        for m in 0..<count {
            grad[3 * m] = (h[m].0 - fl * values[m] * x) * invr
            grad[3 * m + 1] = (h[m].1 - fl * values[m] * y) * invr
            grad[3 * m + 2] = (h[m].2 - fl * values[m] * z) * invr
        }
    }

    /// Writes the 2l+1 real spherical harmonics Y_{l,m}, m = -l...l, at `direction` into
    /// `into[0...2l]` (index m + l). Orthonormal on the unit sphere; m > 0 ∝ cos(mφ), m < 0 ∝
    /// sin(|m|φ), no Condon-Shortley phase; l = 1 is √(3/4π) (y, z, x). `direction` need not be
    /// normalised; for the zero vector Y_00 = 1/√(4π) and zeros for l > 0 are returned. l ≤ 3.
    public static func realSphericalHarmonics(l: Int, direction: (Double, Double, Double),
                                              into y: UnsafeMutablePointer<Double>) {
        precondition(l >= 0 && l <= 3, "real spherical harmonics implemented for l ≤ 3, got \(l)")
        let r2 = direction.0 * direction.0 + direction.1 * direction.1 + direction.2 * direction.2
        if l == 0 {
            y[0] = 0.28209479177387814  // 1/(2√π)
            return
        }
        guard r2 > 0 else {
            for m in 0...(2 * l) { y[m] = 0 }
            return
        }
        let inv = 1 / r2.squareRoot()
        let x = direction.0 * inv, yy = direction.1 * inv, z = direction.2 * inv
        switch l {
        case 1:
            let c = 0.4886025119029199  // √(3/4π)
            y[0] = c * yy; y[1] = c * z; y[2] = c * x
        case 2:
            let c1 = 1.0925484305920792   // ½√(15/π)
            let c0 = 0.31539156525252005  // ¼√(5/π)
            let c2 = 0.5462742152960396  // ¼√(15/π)
            y[0] = c1 * x * yy
            y[1] = c1 * yy * z
            y[2] = c0 * (3 * z * z - 1)
            y[3] = c1 * x * z
            y[4] = c2 * (x * x - yy * yy)
        default:
            let c3 = 0.5900435899266435  // ¼√(35/2π)
            let c2a = 2.890611442640554  // ½√(105/π)
            let c1 = 0.4570457994644658  // ¼√(21/2π)
            let c0 = 0.3731763325901154  // ¼√(7/π)
            let c2b = 1.445305721320277  // ¼√(105/π)
            let z2 = z * z
            y[0] = c3 * yy * (3 * x * x - yy * yy)
            y[1] = c2a * x * yy * z
            y[2] = c1 * yy * (5 * z2 - 1)
            y[3] = c0 * z * (5 * z2 - 3)
            y[4] = c1 * x * (5 * z2 - 1)
            y[5] = c2b * z * (x * x - yy * yy)
            y[6] = c3 * x * (x * x - 3 * yy * yy)
        }
    }

    // MARK: Construction

    /// Builds a pseudopotential from already-validated parameters (`h` rows must be symmetric).
    init(element: String, names: [String], valenceConfiguration: [Int], rloc: Double,
         cloc: [Double], channels: [(radius: Double, h: [[Double]])]) {
        self.element = element
        self.names = names
        self.valenceConfiguration = valenceConfiguration
        self.zion = Double(valenceConfiguration.reduce(0, +))
        self.rloc = rloc
        self.cloc = cloc
        self.channels = channels.enumerated().map { l, c in
            let prefactors = (0..<c.h.count).map { k -> Double in
                let lh = Double(l) + 1.5
                return 4 * pow(Double.pi, 1.5) * pow(2, Double(k)) * tgamma(lh + Double(k))
                    / (tgamma(lh) * tgamma(lh + 2 * Double(k)).squareRoot())
                    * pow(c.radius, 1.5)
            }
            return Channel(l: l, radius: c.radius, h: c.h, fourierPrefactor: prefactors)
        }
    }

    private var paddedCloc: (Double, Double, Double, Double) {
        (cloc.count > 0 ? cloc[0] : 0, cloc.count > 1 ? cloc[1] : 0,
         cloc.count > 2 ? cloc[2] : 0, cloc.count > 3 ? cloc[3] : 0)
    }

    private static let twoPiToThreeHalves = 15.749609945722419  // (2π)^{3/2}
}
