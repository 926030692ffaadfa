#if canImport(Glibc)
import Glibc
#endif

// Smeared occupations for metals: the occupation function f(x), its derivative, the generalised
// entropy s(x), the Fermi level for a fixed electron count, and the smearing term of the free energy.
//
// Convention: x = (ε − μ)/σ with σ the width in Ha, so f(−∞) = 1 and f(+∞) = 0.
// ABINIT 9.6.2 (src/61_occeig/m_occ.F90, init_occ_ent and getnel) uses the opposite argument,
// t = (μ − ε)/tsmear = −x, and tabulates
//     occ(t) = ∫_{−∞}^{t} δ̃(τ) dτ,        ent(t) = ∫_{−∞}^{t} (−τ) δ̃(τ) dτ,
// with the smeared delta δ̃ of each occopt. With δ(x) = δ̃(−x) these become
//     f(x) = ∫_x^∞ δ(u) du,                s(x) = ∫_x^∞ u δ(u) du,
// so f' = −δ and s' = x f' for every kind. The last identity is what makes the free energy
//     F = E − σ Σ_nk w_k g s(x_nk)
// stationary with respect to the occupations at fixed electron count (Mermin functional).
// ABINIT books −tsmear·entropy as "-kT*entropy" and its "Etotal" is F (m_occ.F90 getnel:
// entropy = Σ wtk·maxocc·ent; m_dft_energy.F90 energy: etotal = … − tsmear·entropy).
// ABINIT's f and s are cubic splines of these integrals on a 6000-point half grid, clamped beyond
// |t| = 6 (|t| = 30 for Fermi–Dirac); ours are the closed forms below, which agree with ABINIT 9.6.2's
// occupations to ≤ 1e-12 (Fermi–Dirac) and ≤ 1e-13 (others) on fcc Al (SmearingTests).
//
// The four kinds, in our x (√π ≈ 1.7725, a = −0.5634):
//   fermi-dirac        (occopt 3)  δ = 1/(4 cosh²(x/2))            f = 1/(1+eˣ)
//                                  s = −f ln f − (1−f) ln(1−f)
//   gaussian           (occopt 7)  δ = e^{−x²}/√π                  f = erfc(x)/2
//                                  s = e^{−x²}/(2√π)
//   methfessel-paxton  (occopt 6)  δ = (3/2 − x²) e^{−x²}/√π       f = erfc(x)/2 − x e^{−x²}/(2√π)
//   (first order)                  s = (1 − 2x²) e^{−x²}/(4√π)
//   marzari-vanderbilt (occopt 4)  δ = (3/2 − x²)(1 + a x) e^{−x²}/√π
//   (ABINIT's cold                 f = f_MP1 + a (1 − 2x²) e^{−x²}/(4√π)
//    smearing, a = −0.5634)        s = s_MP1 − a x³ e^{−x²}/(2√π)
// ABINIT's occopt 4 is the polynomial "cold smearing" of Marzari's thesis with the bump-minimising
// a = −0.5634 (occopt 5 is a = −0.8165). It is not the shifted-Gaussian form
// e^{−(x+1/√2)²}(2 + √2 x)/√π that Quantum ESPRESSO (and DFTK) call Marzari–Vanderbilt; the two give
// different occupations and energies at the same width, so decks for comparison must use occopt 4.

/// A smearing scheme: the shape of the occupation function. The width lives in `Smearing`.
public enum SmearingKind: String, CaseIterable {
    case fermiDirac = "fermi-dirac"
    case gaussian
    case methfesselPaxton = "methfessel-paxton"
    case marzariVanderbilt = "marzari-vanderbilt"

    /// Parses a user-facing name. Case, spaces, '-' and '_' are ignored, so "Fermi-Dirac",
    /// "fermi_dirac" and "FD" all work. Accepted: fermi-dirac (fd, fermi), gaussian (gauss),
    /// methfessel-paxton (mp, mp1), marzari-vanderbilt (mv, cold).
    public init(parsing name: String) throws {
        let key = String(name.lowercased().filter { $0.isLetter || $0.isNumber })
        switch key {
        case "fermidirac", "fd", "fermi": self = .fermiDirac
        case "gaussian", "gauss": self = .gaussian
        case "methfesselpaxton", "methfesselpaxton1", "mp", "mp1": self = .methfesselPaxton
        case "marzarivanderbilt", "mv", "cold", "coldsmearing": self = .marzariVanderbilt
        default:
            throw SolidXCError.input(field: "smearing", message: "unknown smearing \"\(name)\"; known: fermi-dirac (fd), gaussian (gauss), methfessel-paxton (mp, mp1), marzari-vanderbilt (mv, cold)")
        }
    }

    /// ABINIT's `occopt` for this kind (with `tsmear` = width in Ha).
    public var abinitOccopt: Int {
        switch self {
        case .fermiDirac: return 3
        case .marzariVanderbilt: return 4
        case .methfesselPaxton: return 6
        case .gaussian: return 7
        }
    }

    /// The power m of the leading width error of the free energy, F(σ) = E₀ + c σᵐ + …:
    /// 2 for Fermi–Dirac and Gaussian (second moment of δ ≠ 0), 4 for first-order Methfessel–Paxton
    /// (moments 1–3 vanish), 3 for ABINIT's cold smearing (moments 1–2 vanish, third = −3a/4).
    public var leadingErrorOrder: Int {
        switch self {
        case .fermiDirac, .gaussian: return 2
        case .marzariVanderbilt: return 3
        case .methfesselPaxton: return 4
        }
    }

    /// Occupation f(x) of one state, x = (ε − μ)/σ; 1 far below μ, 0 far above.
    /// Methfessel–Paxton and cold smearing overshoot [0, 1] slightly near |x| ≈ 1–2.
    @inline(__always)
    public func occupation(_ x: Double) -> Double {
        switch self {
        case .fermiDirac:
            // 1/(1+eˣ) written with e^{−|x|} so that nothing overflows.
            let t = exp(-abs(x))
            return x > 0 ? t / (1 + t) : 1 / (1 + t)
        case .gaussian, .methfesselPaxton, .marzariVanderbilt:
            if abs(x) > gaussianTailCut { return x > 0 ? 0 : 1 }
            let g = exp(-x * x) * invSqrtPi
            let base = 0.5 * erfc(x)
            switch self {
            case .gaussian: return base
            case .methfesselPaxton: return base - 0.5 * x * g
            default: return base - 0.5 * x * g + coldA * 0.25 * (1 - 2 * x * x) * g
            }
        }
    }

    /// df/dx = −δ(x). Multiply by 1/σ for the derivative with respect to ε (ABINIT's doccde/maxocc).
    @inline(__always)
    public func derivative(_ x: Double) -> Double {
        switch self {
        case .fermiDirac:
            let t = exp(-abs(x))
            return -t / ((1 + t) * (1 + t))
        case .gaussian, .methfesselPaxton, .marzariVanderbilt:
            if abs(x) > gaussianTailCut { return 0 }
            let g = exp(-x * x) * invSqrtPi
            switch self {
            case .gaussian: return -g
            case .methfesselPaxton: return -(1.5 - x * x) * g
            default: return -(1.5 - x * x) * (1 + coldA * x) * g
            }
        }
    }

    /// Generalised entropy s(x) of one state (dimensionless), with ds/dx = x·df/dx and s(±∞) = 0.
    /// Fermi–Dirac: s = −f ln f − (1−f) ln(1−f) ≥ 0. Methfessel–Paxton and cold smearing can be < 0.
    @inline(__always)
    public func entropy(_ x: Double) -> Double {
        switch self {
        case .fermiDirac:
            let ax = abs(x)
            // Past 700 the exact value is below 1e-300; the clamp keeps ∞·0 out.
            if ax > 700 { return 0 }
            let t = exp(-ax)
            return log1p(t) + ax * t / (1 + t)
        case .gaussian, .methfesselPaxton, .marzariVanderbilt:
            if abs(x) > gaussianTailCut { return 0 }
            let g = exp(-x * x) * invSqrtPi
            switch self {
            case .gaussian: return 0.5 * g
            case .methfesselPaxton: return 0.25 * (1 - 2 * x * x) * g
            default: return 0.25 * (1 - 2 * x * x) * g - 0.5 * coldA * x * x * x * g
            }
        }
    }
}

/// 1/√π.
private let invSqrtPi = 0.56418958354775628695
/// ABINIT's cold-smearing parameter for occopt 4 ("minimisation of the bump"). ABINIT writes
/// `aa=-.5634`, a default-kind (single precision) Fortran literal, so the value it uses is
/// Float(−0.5634) = −0.563399970531463623046875. Using it makes our occupations agree with ABINIT's to
/// ~1e-11 instead of ~4e-9 (tested on fcc Al).
private let coldA = Double(Float(-0.5634))
/// Beyond |x| = 40, e^{−x²} < 1e-690: the Gaussian-type functions are exactly 0 or 1 in Double.
/// Cutting here also keeps x³·e^{−x²} from becoming ∞·0 for huge |x|.
private let gaussianTailCut = 40.0

/// A smearing scheme with its width.
///
/// `width` is σ in Ha: kT for Fermi–Dirac, ABINIT's `tsmear` for every kind.
public struct Smearing: Equatable {
    public let kind: SmearingKind
    /// σ (Ha), finite and > 0.
    public let width: Double

    /// Throws an input error on the field "temperature" unless `width` is finite and > 0.
    public init(kind: SmearingKind, width: Double) throws {
        guard width.isFinite, width > 0 else {
            throw SolidXCError.input(field: "temperature", message: "the smearing width must be a finite number > 0 (Ha), got \(width)")
        }
        self.kind = kind
        self.width = width
    }

    /// `kind` parsed with `SmearingKind(parsing:)`; errors name "smearing" or "temperature".
    public init(name: String, width: Double) throws {
        try self.init(kind: SmearingKind(parsing: name), width: width)
    }

    /// f(x), x = (ε − μ)/width.
    public func occupation(_ x: Double) -> Double { kind.occupation(x) }
    /// df/dx.
    public func derivative(_ x: Double) -> Double { kind.derivative(x) }
    /// s(x), with ds/dx = x·df/dx.
    public func entropy(_ x: Double) -> Double { kind.entropy(x) }

    /// The energy extrapolated to zero width, E₀ ≈ F + (E − F)/m, from the free energy F (ABINIT's
    /// "Etotal") and the internal energy E = F + σS (ABINIT's "Internal E"), both in Ha.
    ///
    /// ABINIT 9.6.2 prints no such quantity; this is the standard extrapolation. Because F is
    /// variational, dF/dσ = −S, so E = F − σ dF/dσ. If F = E₀ + c σᵐ then E = E₀ + (1 − m) c σᵐ and
    /// E₀ = F + (E − F)/m, with m = `kind.leadingErrorOrder`: (E + F)/2 for Fermi–Dirac and
    /// Gaussian, (3F + E)/4 for Methfessel–Paxton, (2F + E)/3 for ABINIT's cold smearing.
    public func zeroWidthEnergy(free: Double, internal internalEnergy: Double) -> Double {
        free + (internalEnergy - free) / Double(kind.leadingErrorOrder)
    }

    /// Occupations per (spin, k) block, each f((ε − μ)/width) times `spinFactor` (2 without spin,
    /// 1 with). Same shape as `eigenvalues` (Ha).
    public func occupations(eigenvalues: [[Double]], fermiLevel: Double, spinFactor: Double) -> [[Double]] {
        let inv = 1 / width
        return eigenvalues.map { block in block.map { spinFactor * kind.occupation(($0 - fermiLevel) * inv) } }
    }

    /// d(occupation)/dε per (spin, k) block (1/Ha), including `spinFactor`; ≤ 0 for Fermi–Dirac and
    /// Gaussian. This is ABINIT's `doccde`, used by response and by Newton steps on μ.
    public func occupationDerivatives(eigenvalues: [[Double]], fermiLevel: Double, spinFactor: Double) -> [[Double]] {
        let inv = 1 / width
        return eigenvalues.map { block in block.map { spinFactor * inv * kind.derivative(($0 - fermiLevel) * inv) } }
    }

    /// Σ_blocks w · g · Σ_n f((ε_n − μ)/width): the electron count at Fermi level μ.
    public func electronCount(eigenvalues: [[Double]], weights: [Double], spinFactor: Double, fermiLevel: Double) -> Double {
        precondition(eigenvalues.count == weights.count, "one weight per (spin, k) block")
        let inv = 1 / width
        var total = 0.0
        for (block, w) in zip(eigenvalues, weights) {
            var sum = 0.0
            for e in block { sum += kind.occupation((e - fermiLevel) * inv) }
            total += w * spinFactor * sum
        }
        return total
    }

    /// −T·S in Ha: −width · Σ_blocks w · g · Σ_n s((ε_n − μ)/width), the term added to the internal
    /// energy E to give the free energy F = E − T·S (ABINIT's "-kT*entropy"). It is ≤ 0 for
    /// Fermi–Dirac and Gaussian; it can have either sign for Methfessel–Paxton and cold smearing.
    public func entropyTerm(eigenvalues: [[Double]], weights: [Double], spinFactor: Double, fermiLevel: Double) -> Double {
        precondition(eigenvalues.count == weights.count, "one weight per (spin, k) block")
        let inv = 1 / width
        var total = 0.0
        for (block, w) in zip(eigenvalues, weights) {
            var sum = 0.0
            for e in block { sum += kind.entropy((e - fermiLevel) * inv) }
            total += w * spinFactor * sum
        }
        return -width * total
    }

    /// The Fermi level μ (Ha) at which Σ_blocks w · g · Σ_n f((ε_n − μ)/width) = `nelectrons`.
    ///
    /// - Parameters:
    ///   - eigenvalues: per (spin, k) block, the band energies (Ha). Blocks may differ in length.
    ///   - weights: per block, the k-point weight (the weights of one spin channel sum to 1).
    ///   - spinFactor: g, the electrons one state holds: 2 without spin, 1 with.
    ///   - nelectrons: the electron count per cell, > 0.
    ///
    /// The algorithm is ABINIT's (m_occ.F90, newocc): bisection between μ_lo = min ε − 6.001 σ and
    /// μ_hi = max ε + 6.001 σ. For Fermi–Dirac ABINIT widens this to ± 30.001 σ, where its tabulated
    /// occupation is clamped to 0 and 1; we use ± 40.001 σ, where 1/(1+eˣ) is 0 or 1 in Double (the
    /// count is monotonic, so the bracket cannot change the root).
    ///
    /// Bisection needs only a sign change, so it also works for Methfessel–Paxton and cold smearing,
    /// whose electron count is not monotonic in μ (their δ is negative beyond |x| ≈ 1.2) and can have
    /// several roots when μ falls in a gap a few σ wide. Starting from ABINIT's bracket with ABINIT's
    /// midpoints makes us pick the same root as ABINIT. A Fermi–Dirac or Gaussian first guess followed
    /// by a local search could land on a different root, so we do not use one.
    ///
    /// Unlike ABINIT, which stops at 1e-14 relative in N or μ, we bisect until the bracket is one or two
    /// ulps wide (≤ ~60 steps unless μ ≈ 0), so the count matches `nelectrons` to rounding (≈1e-15
    /// relative), or to the change of N across one ulp of μ where that is larger: for a very small
    /// width, or when μ lies in the far tail of the smearing because N_el is tiny next to the bands.
    /// No Newton polish is needed.
    ///
    /// Throws input errors: "nbands" if the bands cannot hold the electrons (with the number needed),
    /// "nelectrons", "weights", "eigenvalues" or "spinFactor" for malformed arguments.
    public static func fermiLevel(eigenvalues: [[Double]], weights: [Double], spinFactor: Double, nelectrons: Double, smearing: Smearing) throws -> Double {
        guard spinFactor == 1 || spinFactor == 2 else {
            throw SolidXCError.input(field: "spinFactor", message: "electrons per state must be 2 (no spin) or 1 (spin-polarised), got \(spinFactor)")
        }
        guard nelectrons.isFinite, nelectrons > 0 else {
            throw SolidXCError.input(field: "nelectrons", message: "the electron count must be a finite number > 0, got \(nelectrons)")
        }
        guard !eigenvalues.isEmpty, eigenvalues.count == weights.count else {
            throw SolidXCError.input(field: "weights", message: "need one weight per (spin, k) block: \(eigenvalues.count) blocks of eigenvalues, \(weights.count) weights")
        }
        // Flatten once: state energies and g·w per state, contiguous for the bisection loop.
        var energies: [Double] = []
        var stateWeights: [Double] = []
        energies.reserveCapacity(eigenvalues.reduce(0) { $0 + $1.count })
        stateWeights.reserveCapacity(energies.capacity)
        var weightSum = 0.0
        for (b, (block, w)) in zip(eigenvalues, weights).enumerated() {
            guard w.isFinite, w >= 0 else {
                throw SolidXCError.input(field: "weights", message: "weight of block \(b) must be finite and ≥ 0, got \(w)")
            }
            weightSum += w
            for (n, e) in block.enumerated() {
                guard e.isFinite else {
                    throw SolidXCError.input(field: "eigenvalues", message: "eigenvalue \(n) of block \(b) is \(e); eigenvalues must be finite")
                }
                energies.append(e)
                stateWeights.append(spinFactor * w)
            }
        }
        guard weightSum > 0 else {
            throw SolidXCError.input(field: "weights", message: "the block weights sum to \(weightSum); they must sum to > 0")
        }
        let capacity = stateWeights.reduce(0, +)
        // Bands needed if every block had the same count: the smallest n with g·n·Σw > N_el.
        let bandsNeeded = Int((nelectrons / (spinFactor * weightSum)).rounded(.down)) + 1
        guard nelectrons <= capacity * (1 + 1e-14) else {
            throw SolidXCError.input(field: "nbands", message: "the bands hold at most \(capacity) electrons, fewer than the \(nelectrons) valence electrons; smeared occupations need at least \(bandsNeeded) bands per k-point (a few more for metals)")
        }

        let width = smearing.width
        let kind = smearing.kind
        let inv = 1 / width
        let (levels, levelWeights) = (energies, stateWeights)
        let count: (Double) -> Double = { mu in
            levels.withUnsafeBufferPointer { e in
                levelWeights.withUnsafeBufferPointer { w in
                    var sum = 0.0
                    for i in 0..<e.count { sum += w[i] * kind.occupation((e[i] - mu) * inv) }
                    return sum
                }
            }
        }

        let span = kind == .fermiDirac ? 40.001 : 6.001
        var lo = (energies.min() ?? 0) - span * width
        var hi = (energies.max() ?? 0) + span * width
        var nLo = count(lo)
        var nHi = count(hi)
        // N(lo) = 0 and N(hi) = capacity up to rounding and the O(1e-16) tails beyond the bracket.
        if nelectrons >= nHi {
            if nelectrons - nHi <= 1e-12 * nelectrons { return hi }
            throw SolidXCError.input(field: "nbands", message: "\(nelectrons) electrons nearly fill all the bands (\(capacity)): with smearing the Fermi level would lie above every band; use at least \(bandsNeeded) bands per k-point (a few more for metals)")
        }
        if nelectrons <= nLo { return lo }

        for _ in 0..<300 {
            let mid = (lo + hi) * 0.5
            if mid <= lo || mid >= hi { break }
            let n = count(mid)
            if n == nelectrons { return mid }
            if n > nelectrons { hi = mid; nHi = n } else { lo = mid; nLo = n }
            if hi - lo <= 2 * Double.ulpOfOne * max(abs(lo), abs(hi), width) { break }
        }
        return nHi - nelectrons <= nelectrons - nLo ? hi : lo
    }
}
