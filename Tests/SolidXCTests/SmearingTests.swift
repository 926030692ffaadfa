import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import SolidXC

// Tests of Sources/SolidXC/SCF/Smearing.swift: the occupation, derivative and entropy functions of
// every kind (identities, closed forms, ABINIT's definitions), the Fermi level, the variational
// property of the free energy, the zero-width extrapolation, input errors, and ABINIT 9.6.2's own
// newocc results (Fermi level, occupations, -kT*entropy) for fcc Al with occopt 3, 4, 6, 7.

// MARK: - Helpers

/// Deterministic SplitMix64, so the random band structures are the same on every run.
private struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [a, b).
    mutating func uniform(_ a: Double, _ b: Double) -> Double {
        a + (b - a) * Double(next() >> 11) / Double(UInt64(1) << 53)
    }
}

/// Gauss–Legendre nodes and weights on [−1, 1] (Newton on P_n).
private func gaussLegendre(_ n: Int) -> (nodes: [Double], weights: [Double]) {
    var nodes = [Double](repeating: 0, count: n)
    var weights = [Double](repeating: 0, count: n)
    for i in 0..<n {
        var x = cos(Double.pi * (Double(i) + 0.75) / (Double(n) + 0.5))
        var dp = 0.0
        for _ in 0..<100 {
            var p0 = 1.0, p1 = x
            for k in 2...n {
                let p2 = ((2 * Double(k) - 1) * x * p1 - (Double(k) - 1) * p0) / Double(k)
                p0 = p1; p1 = p2
            }
            dp = Double(n) * (x * p1 - p0) / (x * x - 1)
            let dx = p1 / dp
            x -= dx
            if abs(dx) < 1e-16 { break }
        }
        nodes[i] = x
        weights[i] = 2 / ((1 - x * x) * dp * dp)
    }
    return (nodes, weights)
}

private let gl10 = gaussLegendre(10)

/// ∫_a^b f by composite 10-point Gauss–Legendre on `panels` equal panels.
private func integrate(_ a: Double, _ b: Double, panels: Int, _ f: (Double) -> Double) -> Double {
    let h = (b - a) / Double(panels)
    var sum = 0.0
    for p in 0..<panels {
        let mid = a + (Double(p) + 0.5) * h
        for (x, w) in zip(gl10.nodes, gl10.weights) { sum += w * f(mid + 0.5 * h * x) }
    }
    return 0.5 * h * sum
}

/// Where the Gaussian-type functions are non-zero to 1e-17; Fermi–Dirac needs a wider window.
private func window(_ kind: SmearingKind) -> Double { kind == .fermiDirac ? 45 : 9 }

private let allKinds = SmearingKind.allCases

/// ABINIT's `aa=-.5634` (m_occ.F90) is a single-precision Fortran literal promoted to double.
private let abinitColdA = Double(Float(-0.5634))

private func assertInputError(_ body: () throws -> Void, field expected: String, mentions: [String] = [],
                              file: StaticString = #filePath, line: UInt = #line) {
    do {
        try body()
        XCTFail("expected an input error on \(expected)", file: file, line: line)
    } catch let SolidXCError.input(field, message) {
        XCTAssertEqual(field, expected, file: file, line: line)
        for word in mentions { XCTAssertTrue(message.contains(word), "\"\(message)\" should mention \(word)", file: file, line: line) }
    } catch {
        XCTFail("expected an input error, got \(error)", file: file, line: line)
    }
}

/// One ABINIT 9.6.2 run of fcc Al (see `abinitCases`). Blocks are (spin, k), spin-major, like ABINIT.
/// Decks, runner and raw data: python/tests/reference/abinit/smearing/ (run_smearing_refs.py writes
/// smearing_refs.json; emit_swift.py prints the literals below).
private struct AbinitSmearingCase {
    var tag: String
    var occopt: Int
    var nsppol: Int
    var nelect: Double
    var weights: [Double]
    var eigenvalues: [[Double]]
    var occupations: [[Double]]
    var fermie: Double
    var minusKTEntropy: Double
    var internalEnergy: Double
    var totalEnergy: Double
}

final class SmearingTests: XCTestCase {
    // MARK: - The functions of one state

    /// s'(x) = x·f'(x) for every kind: the identity that makes F = E − σΣ w g s variational.
    func test_entropy_slope_equals_x_times_occupation_slope_for_every_kind() {
        for kind in allKinds {
            let w = kind == .fermiDirac ? 40.0 : 8.0
            let h = 1e-5
            for x in stride(from: -w, through: w, by: w / 397) {
                let numeric = (kind.entropy(x + h) - kind.entropy(x - h)) / (2 * h)
                let exact = x * kind.derivative(x)
                XCTAssertEqual(numeric, exact, accuracy: 1e-9 * (1 + abs(exact)), "\(kind) x=\(x)")
            }
        }
    }

    func test_derivative_matches_central_difference_of_occupation_for_every_kind() {
        for kind in allKinds {
            let w = kind == .fermiDirac ? 40.0 : 8.0
            let h = 1e-5
            for x in stride(from: -w, through: w, by: w / 397) {
                let numeric = (kind.occupation(x + h) - kind.occupation(x - h)) / (2 * h)
                XCTAssertEqual(numeric, kind.derivative(x), accuracy: 1e-9, "\(kind) x=\(x)")
            }
        }
    }

    func test_limits_are_exact_and_huge_or_infinite_arguments_give_no_nan() {
        let huge: [Double] = [800, 1e10, 1e300, .greatestFiniteMagnitude, .infinity]
        for kind in allKinds {
            // Past 40 the Gaussian-type functions are 0 or 1 in Double; Fermi–Dirac only past ~745.
            for big in (kind == .fermiDirac ? huge : [41] + huge) {
                XCTAssertEqual(kind.occupation(-big), 1, "\(kind) f(-\(big))")
                XCTAssertEqual(kind.occupation(big), 0, "\(kind) f(\(big))")
                for x in [big, -big] {
                    XCTAssertEqual(kind.derivative(x), 0, "\(kind) f'(\(x))")
                    XCTAssertEqual(kind.entropy(x), 0, "\(kind) s(\(x))")
                }
            }
            for x in stride(from: -60.0, through: 60.0, by: 0.01) {
                XCTAssertTrue(kind.occupation(x).isFinite && kind.derivative(x).isFinite && kind.entropy(x).isFinite, "\(kind) x=\(x)")
            }
        }
        // f(0): 1/2 for the symmetric kinds; cold smearing is shifted by a/(4√π) (a = −0.5634).
        XCTAssertEqual(SmearingKind.fermiDirac.occupation(0), 0.5)
        XCTAssertEqual(SmearingKind.gaussian.occupation(0), 0.5)
        XCTAssertEqual(SmearingKind.methfesselPaxton.occupation(0), 0.5)
        XCTAssertEqual(SmearingKind.marzariVanderbilt.occupation(0), 0.5 + abinitColdA / (4 * 1.7724538509055159), accuracy: 1e-15)
        // Methfessel–Paxton and cold smearing leave [0, 1]; Fermi–Dirac and Gaussian do not.
        XCTAssertGreaterThan(SmearingKind.methfesselPaxton.occupation(-1.2247), 1.03)
        XCTAssertLessThan(SmearingKind.methfesselPaxton.occupation(1.2247), -0.03)
        XCTAssertLessThan(SmearingKind.methfesselPaxton.entropy(1.5), 0)
        XCTAssertLessThan(SmearingKind.marzariVanderbilt.entropy(-1.5), 0)
    }

    /// ∫ −f' = 1, and the moments m_j = ∫ xʲ δ(x) dx (δ = −f') that set the width error of each kind:
    /// m1 = 0 for all; m2 = π²/3, 1/2, 0, 0; m3 = 0 except cold smearing (−3a/4); m4 = −3/4 for
    /// first-order Methfessel–Paxton. Also ∫ s = m2, because ∫ s dx = ∫ x² δ dx by parts.
    func test_smeared_delta_is_normalised_and_moments_match_leading_error_orders() {
        let a = abinitColdA
        let m2: [SmearingKind: Double] = [.fermiDirac: Double.pi * Double.pi / 3, .gaussian: 0.5, .methfesselPaxton: 0, .marzariVanderbilt: 0]
        let m3: [SmearingKind: Double] = [.fermiDirac: 0, .gaussian: 0, .methfesselPaxton: 0, .marzariVanderbilt: -0.75 * a]
        for kind in allKinds {
            let w = window(kind)
            let delta = { (x: Double) in -kind.derivative(x) }
            XCTAssertEqual(integrate(-w, w, panels: 400, delta), 1, accuracy: 1e-13, "\(kind) norm")
            XCTAssertEqual(integrate(-w, w, panels: 400) { x in x * delta(x) }, 0, accuracy: 1e-13, "\(kind) m1")
            XCTAssertEqual(integrate(-w, w, panels: 400) { x in x * x * delta(x) }, m2[kind]!, accuracy: 1e-12, "\(kind) m2")
            XCTAssertEqual(integrate(-w, w, panels: 400) { x in x * x * x * delta(x) }, m3[kind]!, accuracy: 1e-12, "\(kind) m3")
            XCTAssertEqual(integrate(-w, w, panels: 400) { x in kind.entropy(x) }, m2[kind]!, accuracy: 1e-12, "\(kind) ∫s")
        }
        let m4 = integrate(-9, 9, panels: 400) { x in x * x * x * x * -SmearingKind.methfesselPaxton.derivative(x) }
        XCTAssertEqual(m4, -0.75, accuracy: 1e-12)
    }

    func test_fermi_dirac_matches_closed_forms() {
        let fd = SmearingKind.fermiDirac
        for x in stride(from: -30.0, through: 30.0, by: 0.01) {
            let f = 1 / (1 + exp(x))
            let g = 1 / (1 + exp(-x)) // 1 − f without cancellation
            XCTAssertEqual(fd.occupation(x), f, accuracy: 1e-15 * f, "f x=\(x)")
            XCTAssertEqual(fd.derivative(x), -f * g, accuracy: 1e-15 * f * g, "f' x=\(x)")
            let s = f * log1p(exp(x)) + g * log1p(exp(-x)) // −f ln f − (1−f) ln(1−f), logs without cancellation
            XCTAssertEqual(fd.entropy(x), s, accuracy: 1e-14 * s, "s x=\(x)")
        }
        XCTAssertEqual(fd.entropy(0), log(2.0), accuracy: 1e-16)
    }

    /// Our f(x) and s(x) against ABINIT 9.6.2's definitions (src/61_occeig/m_occ.F90, init_occ_ent):
    /// ABINIT tabulates occ(t) = ∫_{−∞}^t δ̃ and ent(t) = ∫_{−∞}^t (−τ) δ̃(τ) dτ with t = (μ − ε)/tsmear
    /// and the δ̃ below, copied from its source. Here they are integrated by quadrature at t = −x.
    func test_functions_equal_abinit_init_occ_ent_integrals_at_t_equal_minus_x() {
        let dsqrpi = 1 / (Double.pi).squareRoot()
        func abinitDelta(_ occopt: Int, _ xx: Double) -> Double {
            switch occopt {
            case 3: return 0.25 / pow(cosh(xx / 2), 2)
            case 4:
                let aa = abinitColdA
                let gauss = dsqrpi * exp(-xx * xx)
                return gauss * (1.5 + xx * (-aa * 1.5 + xx * (-1.0 + aa * xx)))
            case 6: return dsqrpi * (1.5 - xx * xx) * exp(-xx * xx)
            default: return dsqrpi * exp(-xx * xx)
            }
        }
        for kind in allKinds {
            let occopt = kind.abinitOccopt
            let lower = -window(kind)
            for x in stride(from: -6.0, through: 6.0, by: 0.125) {
                let t = -x
                let panels = 40 + Int((t - lower) * 20)
                let occ = integrate(lower, t, panels: panels) { abinitDelta(occopt, $0) }
                let ent = integrate(lower, t, panels: panels) { tau in -tau * abinitDelta(occopt, tau) }
                XCTAssertEqual(kind.occupation(x), occ, accuracy: 1e-13, "\(kind) occ x=\(x)")
                XCTAssertEqual(kind.entropy(x), ent, accuracy: 1e-13, "\(kind) ent x=\(x)")
            }
        }
        XCTAssertEqual(allKinds.map(\.abinitOccopt), [3, 7, 6, 4])
    }

    // MARK: - Fermi level

    func test_fermi_level_reproduces_electron_count_of_random_bands_for_every_kind_width_and_spin() throws {
        var rng = SplitMix64(state: 20240917)
        let nk = 16, nb = 10
        for spinFactor in [2.0, 1.0] {
            let nspin = spinFactor == 2 ? 1 : 2
            var eigenvalues: [[Double]] = []
            var weights: [Double] = []
            var kw = (0..<nk).map { _ in rng.uniform(0.1, 1) }
            let total = kw.reduce(0, +)
            kw = kw.map { $0 / total }
            for _ in 0..<nspin {
                for k in 0..<nk {
                    eigenvalues.append((0..<nb).map { _ in rng.uniform(-0.4, 0.9) }.sorted())
                    weights.append(kw[k])
                }
            }
            for nelectrons in [7.3, 11.0, 1e-3, 19.5] {
                for kind in allKinds {
                    for width in [0.002, 0.01, 0.05] {
                        let smearing = try Smearing(kind: kind, width: width)
                        let mu = try Smearing.fermiLevel(eigenvalues: eigenvalues, weights: weights, spinFactor: spinFactor,
                                                         nelectrons: nelectrons, smearing: smearing)
                        let count = { smearing.electronCount(eigenvalues: eigenvalues, weights: weights, spinFactor: spinFactor, fermiLevel: $0) }
                        let n = count(mu)
                        // 1e-14 relative, or, when μ sits in the far tail of the smearing (N_el = 1e-3
                        // here), the change of N across one ulp of μ: nothing in Double can do better.
                        let resolution = abs(count(mu.nextUp) - count(mu.nextDown))
                        let tolerance = nelectrons >= 1 ? 1e-14 * nelectrons : max(1e-14 * nelectrons, resolution)
                        XCTAssertEqual(n, nelectrons, accuracy: tolerance, "\(kind) σ=\(width) g=\(spinFactor) N=\(nelectrons)")
                        let occ = smearing.occupations(eigenvalues: eigenvalues, fermiLevel: mu, spinFactor: spinFactor)
                        var sum = 0.0
                        for (block, w) in zip(occ, weights) { sum += w * block.reduce(0, +) }
                        XCTAssertEqual(sum, nelectrons, accuracy: tolerance + 1e-16)
                    }
                }
            }
        }
    }

    /// With a gap 4.7σ wide, the Methfessel–Paxton and cold-smearing counts N(μ) overshoot and fall
    /// back, so N(μ) = 4.02 has three roots. We must return one of them, and the one ABINIT's newocc
    /// returns: its bisection (m_occ.F90) is re-implemented here literally, tolerances included.
    func test_fermi_level_with_non_monotonic_count_picks_abinits_root_for_mp_and_cold_smearing() throws {
        let eigenvalues = [[-0.3, 0.0, 0.047]]
        let weights = [1.0]
        let nelect = 4.02
        for kind in [SmearingKind.methfesselPaxton, .marzariVanderbilt] {
            let smearing = try Smearing(kind: kind, width: 0.01)
            let count = { (mu: Double) in smearing.electronCount(eigenvalues: eigenvalues, weights: weights, spinFactor: 2, fermiLevel: mu) }
            // The count is not monotonic between the two upper levels.
            let samples = stride(from: -0.02, through: 0.067, by: 0.0001).map(count)
            XCTAssertTrue(zip(samples, samples.dropFirst()).contains { $0 > $1 }, "\(kind): expected a falling N(μ)")
            var crossings = 0
            for (n0, n1) in zip(samples, samples.dropFirst()) where (n0 - nelect) * (n1 - nelect) < 0 { crossings += 1 }
            XCTAssertEqual(crossings, 3, "\(kind): expected three roots")

            let mu = try Smearing.fermiLevel(eigenvalues: eigenvalues, weights: weights, spinFactor: 2, nelectrons: nelect, smearing: smearing)
            XCTAssertEqual(count(mu), nelect, accuracy: 1e-14 * nelect)

            // ABINIT newocc, occopt 4/6: bracket ±6.001 tsmear, tol14 rules, up to 120 bisections.
            let tol14 = 1e-14
            var lo = -0.3 - 6.001 * 0.01, hi = 0.047 + 6.001 * 0.01
            var nlo = count(lo), nhi = count(hi)
            var mid = 0.0
            for _ in 0..<120 {
                mid = (hi + lo) * 0.5
                let nmid = count(mid)
                if nmid > nelect * (1 - tol14) { hi = mid; nhi = nmid }
                if nmid < nelect * (1 + tol14) { lo = mid; nlo = nmid }
                if abs(nhi - nlo) <= nelect * 2 * tol14 || abs(hi - lo) <= tol14 * abs(hi + lo) { break }
            }
            XCTAssertEqual(mu, mid, accuracy: 1e-13, "\(kind): not ABINIT's root")
        }
    }

    /// Mermin: at the Fermi level, F = Σ W (ε f(x) − σ s(x)) is stationary under any change of the
    /// x_i (hence of the occupations) that keeps the electron count, for every kind.
    func test_free_energy_is_stationary_under_occupation_changes_at_fixed_electron_count() throws {
        var rng = SplitMix64(state: 7)
        let energies = (0..<60).map { _ in rng.uniform(-0.3, 0.5) }
        let weights = (0..<60).map { _ in rng.uniform(0.5, 1.5) }
        let width = 0.03
        for kind in allKinds {
            let smearing = try Smearing(kind: kind, width: width)
            let mu = try Smearing.fermiLevel(eigenvalues: energies.map { [$0] }, weights: weights, spinFactor: 2, nelectrons: 40.3, smearing: smearing)
            let x0 = energies.map { ($0 - mu) / width }
            let c = zip(weights, x0).map { 2 * $0 * kind.derivative($1) } // ∂N/∂x_i
            func free(_ x: [Double]) -> Double {
                var F = 0.0
                for i in x.indices { F += 2 * weights[i] * (energies[i] * kind.occupation(x[i]) - width * kind.entropy(x[i])) }
                return F
            }
            for _ in 0..<5 {
                var eta = x0.map { _ in rng.uniform(-1, 1) }
                let unconstrained = zip(c, eta).reduce(0) { $0 + abs($1.0 * $1.1) } * (abs(mu) + 0.3)
                let proj = zip(c, eta).reduce(0) { $0 + $1.0 * $1.1 } / c.reduce(0) { $0 + $1 * $1 }
                eta = zip(eta, c).map { $0 - proj * $1 }
                let h = 1e-4
                let plus = free(zip(x0, eta).map { $0 + h * $1 })
                let minus = free(zip(x0, eta).map { $0 - h * $1 })
                XCTAssertLessThan(abs(plus - minus) / (2 * h), 1e-7 * unconstrained, "\(kind)")
            }
        }
    }

    // MARK: - Zero-width energy

    /// A smooth model DOS g(ε) = 1 + 0.3 cos 2ε on [−2, 2], filled to μ₀ = 0.1 at σ = 0 and sampled by
    /// Gauss–Legendre levels, so every sum is the integral to ~1e-14. E₀ and μ₀ are exact. The free
    /// energy converges as σᵐ (m = kind.leadingErrorOrder); the extrapolation removes that term.
    func test_zero_width_energy_removes_the_leading_width_error_of_a_smooth_model_dos() throws {
        let g = { (e: Double) in 1 + 0.3 * cos(2 * e) }
        let nInt = { (e: Double) in e + 0.15 * sin(2 * e) }
        let eInt = { (e: Double) in e * e / 2 + 0.3 * (e * sin(2 * e) / 2 + cos(2 * e) / 4) }
        let mu0 = 0.1
        let nelectrons = nInt(mu0) - nInt(-2)
        let exactE0 = eInt(mu0) - eInt(-2)
        var levels: [[Double]] = []
        var weights: [Double] = []
        let panels = 1600, h = 4.0 / Double(panels)
        for p in 0..<panels {
            let mid = -2 + (Double(p) + 0.5) * h
            for (x, w) in zip(gl10.nodes, gl10.weights) {
                let e = mid + 0.5 * h * x
                levels.append([e]); weights.append(0.5 * h * w * g(e))
            }
        }
        for kind in allKinds {
            var errF: [Double] = [], errZ: [Double] = []
            // Cold smearing reaches its asymptotic σ³ only below σ ≈ 0.02 for this DOS; first-order
            // Methfessel–Paxton's extrapolated error (σ⁶) hits rounding below σ ≈ 0.02.
            for width in kind == .marzariVanderbilt ? [0.04, 0.02, 0.01] : [0.08, 0.04, 0.02] {
                let s = try Smearing(kind: kind, width: width)
                let mu = try Smearing.fermiLevel(eigenvalues: levels, weights: weights, spinFactor: 1, nelectrons: nelectrons, smearing: s)
                let occ = s.occupations(eigenvalues: levels, fermiLevel: mu, spinFactor: 1)
                var internalEnergy = 0.0
                for i in levels.indices { internalEnergy += weights[i] * levels[i][0] * occ[i][0] }
                let free = internalEnergy + s.entropyTerm(eigenvalues: levels, weights: weights, spinFactor: 1, fermiLevel: mu)
                errF.append(free - exactE0)
                errZ.append(s.zeroWidthEnergy(free: free, internal: internalEnergy) - exactE0)
            }
            let m = Double(kind.leadingErrorOrder)
            for i in 0..<2 {
                XCTAssertEqual(log2(errF[i] / errF[i + 1]), m, accuracy: 0.25, "\(kind): F error order, errors \(errF)")
                XCTAssertGreaterThan(log2(abs(errZ[i] / errZ[i + 1])), m + 0.7, "\(kind): extrapolated error order, errors \(errZ)")
                XCTAssertLessThan(abs(errZ[i + 1]), 0.1 * abs(errF[i + 1]), "\(kind)")
            }
        }
    }

    func test_zero_width_energy_formulas_per_kind() throws {
        let (free, internalEnergy) = (-2.0, -1.9)
        XCTAssertEqual(try Smearing(kind: .fermiDirac, width: 0.01).zeroWidthEnergy(free: free, internal: internalEnergy), (free + internalEnergy) / 2, accuracy: 1e-15)
        XCTAssertEqual(try Smearing(kind: .gaussian, width: 0.01).zeroWidthEnergy(free: free, internal: internalEnergy), (free + internalEnergy) / 2, accuracy: 1e-15)
        XCTAssertEqual(try Smearing(kind: .methfesselPaxton, width: 0.01).zeroWidthEnergy(free: free, internal: internalEnergy), (3 * free + internalEnergy) / 4, accuracy: 1e-15)
        XCTAssertEqual(try Smearing(kind: .marzariVanderbilt, width: 0.01).zeroWidthEnergy(free: free, internal: internalEnergy), (2 * free + internalEnergy) / 3, accuracy: 1e-15)
    }

    // MARK: - ABINIT 9.6.2, fcc Al

    /// ABINIT's newocc on ABINIT's own final eigenvalues: our Fermi level, occupations and −kT·S
    /// must reproduce its fermie, occupations and '-kT*entropy'. ABINIT evaluates f and s from cubic
    /// splines of numerically integrated tables (6000-point half grids) and stops its bisection at
    /// 1e-14 relative, which sets the tolerances. Seen: |Δμ| ≤ 2e-14 Ha, occupations ≤ 1.1e-12 (FD) and
    /// ≤ 7e-14 (others), −kT·S ≤ 7e-13 Ha (FD) and ≤ 1e-15 Ha (others).
    func test_al_fcc_fermi_level_occupations_and_entropy_match_abinit_962_occopt_3_4_6_7() throws {
        let kinds: [Int: SmearingKind] = [3: .fermiDirac, 4: .marzariVanderbilt, 6: .methfesselPaxton, 7: .gaussian]
        for c in abinitCases {
            let kind = try XCTUnwrap(kinds[c.occopt])
            XCTAssertEqual(kind.abinitOccopt, c.occopt)
            let smearing = try Smearing(kind: kind, width: abinitTsmear)
            let g = c.nsppol == 1 ? 2.0 : 1.0
            // The reference data are self-consistent: Etotal − Internal E = −kT·S.
            XCTAssertEqual(c.totalEnergy - c.internalEnergy, c.minusKTEntropy, accuracy: 2e-14, c.tag)

            let mu = try Smearing.fermiLevel(eigenvalues: c.eigenvalues, weights: c.weights, spinFactor: g, nelectrons: c.nelect, smearing: smearing)
            XCTAssertEqual(mu, c.fermie, accuracy: 1e-13, "\(c.tag) Fermi level")

            // ABINIT's Fermi–Dirac table stops at |t| = 30 (e^{-30} ≈ 1e-13) on a 0.005 grid, so its
            // occupations and entropy are good to ~1e-12; the Gaussian-type tables to ~1e-14.
            let tolerance = kind == .fermiDirac ? 5e-12 : 2e-13
            for fermi in [c.fermie, mu] {
                let occ = smearing.occupations(eigenvalues: c.eigenvalues, fermiLevel: fermi, spinFactor: g)
                for (mine, theirs) in zip(occ.joined(), c.occupations.joined()) {
                    XCTAssertEqual(mine, theirs, accuracy: tolerance, "\(c.tag) occupation")
                }
                let ts = smearing.entropyTerm(eigenvalues: c.eigenvalues, weights: c.weights, spinFactor: g, fermiLevel: fermi)
                XCTAssertEqual(ts, c.minusKTEntropy, accuracy: kind == .fermiDirac ? 5e-12 : 1e-14, "\(c.tag) -kT*entropy (Ha)")
            }
        }
    }

    // MARK: - Input

    func test_kind_parser_accepts_common_spellings_case_insensitively() throws {
        let spellings: [(String, SmearingKind)] = [
            ("fermi-dirac", .fermiDirac), ("Fermi-Dirac", .fermiDirac), ("fermi_dirac", .fermiDirac), ("fermi dirac", .fermiDirac),
            ("FD", .fermiDirac), ("fermi", .fermiDirac),
            ("gaussian", .gaussian), ("Gauss", .gaussian),
            ("methfessel-paxton", .methfesselPaxton), ("Methfessel_Paxton", .methfesselPaxton), ("mp", .methfesselPaxton), ("MP1", .methfesselPaxton),
            ("marzari-vanderbilt", .marzariVanderbilt), ("Marzari_Vanderbilt", .marzariVanderbilt), ("cold", .marzariVanderbilt), ("MV", .marzariVanderbilt),
        ]
        for (name, kind) in spellings { XCTAssertEqual(try SmearingKind(parsing: name), kind, name) }
        for kind in allKinds { XCTAssertEqual(try SmearingKind(parsing: kind.rawValue), kind) }
        XCTAssertEqual(try Smearing(name: "cold", width: 0.01).kind, .marzariVanderbilt)
    }

    func test_unknown_smearing_name_is_an_input_error_listing_the_known_names() {
        assertInputError({ _ = try SmearingKind(parsing: "fermi-dirak") }, field: "smearing",
                         mentions: ["fermi-dirak", "fermi-dirac", "gaussian", "methfessel-paxton", "marzari-vanderbilt"])
        assertInputError({ _ = try Smearing(name: "tetrahedron", width: 0.01) }, field: "smearing", mentions: ["tetrahedron"])
        assertInputError({ _ = try SmearingKind(parsing: "") }, field: "smearing")
    }

    func test_bad_width_is_an_input_error_on_temperature_naming_the_value() {
        for (width, shown) in [(0.0, "0.0"), (-0.01, "-0.01"), (Double.nan, "nan"), (Double.infinity, "inf")] {
            assertInputError({ _ = try Smearing(kind: .gaussian, width: width) }, field: "temperature", mentions: [shown])
        }
        assertInputError({ _ = try Smearing(name: "fd", width: -1) }, field: "temperature", mentions: ["-1.0"])
    }

    func test_too_few_bands_is_an_input_error_on_nbands_saying_how_many_are_needed() throws {
        let s = try Smearing(kind: .fermiDirac, width: 0.01)
        let eig = [[0.0, 0.1], [0.05, 0.2]]
        // 2 bands × 2 electrons hold 4; 5 electrons need 3 bands.
        assertInputError({ _ = try Smearing.fermiLevel(eigenvalues: eig, weights: [0.5, 0.5], spinFactor: 2, nelectrons: 5, smearing: s) },
                         field: "nbands", mentions: ["3 bands"])
        // Spin-polarised: 2 bands × 1 electron × 2 spins hold 4; 4.5 electrons need 3 bands.
        assertInputError({ _ = try Smearing.fermiLevel(eigenvalues: eig, weights: [1, 1], spinFactor: 1, nelectrons: 4.5, smearing: s) },
                         field: "nbands", mentions: ["3 bands"])
        // Exactly full bands are allowed (as in ABINIT): every state holds g electrons.
        let mu = try Smearing.fermiLevel(eigenvalues: eig, weights: [0.5, 0.5], spinFactor: 2, nelectrons: 4, smearing: s)
        for o in s.occupations(eigenvalues: eig, fermiLevel: mu, spinFactor: 2).joined() { XCTAssertEqual(o, 2, accuracy: 1e-14) }
    }

    func test_malformed_fermi_level_arguments_are_input_errors() throws {
        let s = try Smearing(kind: .gaussian, width: 0.01)
        let eig = [[0.0, 0.1]]
        assertInputError({ _ = try Smearing.fermiLevel(eigenvalues: eig, weights: [1, 1], spinFactor: 2, nelectrons: 1, smearing: s) }, field: "weights")
        assertInputError({ _ = try Smearing.fermiLevel(eigenvalues: eig, weights: [-1], spinFactor: 2, nelectrons: 1, smearing: s) }, field: "weights")
        assertInputError({ _ = try Smearing.fermiLevel(eigenvalues: eig, weights: [1], spinFactor: 3, nelectrons: 1, smearing: s) }, field: "spinFactor")
        assertInputError({ _ = try Smearing.fermiLevel(eigenvalues: eig, weights: [1], spinFactor: 2, nelectrons: 0, smearing: s) }, field: "nelectrons")
        assertInputError({ _ = try Smearing.fermiLevel(eigenvalues: [[0.0, .nan]], weights: [1], spinFactor: 2, nelectrons: 1, smearing: s) }, field: "eigenvalues")
    }
}

// MARK: - ABINIT 9.6.2 reference data

/// tsmear of every case (Ha).
private let abinitTsmear = 0.02

/// ABINIT 9.6.2 (Debian), fcc Al, a = 4.05 Å, GTH-Pade q3 (PySCF 2.14 table, pspcod 10), ixc -001012,
/// ecut 8, ngkpt 4 4 4 (shift 0, kptopt 1: 8 k), nband 6, tsmear 0.02, toldfe 1e-12, occopt 3/4/6/7 with
/// nsppol 1 and occopt 3/6 with nsppol 2 (spinat 0 0 0.5; the moment vanishes). Eigenvalues, weights,
/// occupations and fermie from <tag>o_GSR.nc (full precision); minusKTEntropy is the GSR's e_entropy,
/// internal and total energies from the last EnergyTerms YAML block of the .abo. The deck (occopt 4):
///
///     acell 1 1 1
///     rprim 0.0 3.8266954022442503 3.8266954022442503
///           3.8266954022442503 0.0 3.8266954022442503
///           3.8266954022442503 3.8266954022442503 0.0
///     natom 1  ntypat 1  typat 1  znucl 13  xred 0 0 0
///     ecut 8  ixc -001012  occopt 4  tsmear 0.02  nsppol 1  nband 6
///     kptopt 1  ngkpt 4 4 4  nshiftk 1  shiftk 0 0 0  nstep 100  toldfe 1e-12
///     pseudos "Al.gth-pade.psp10"   (zatom 13, zion 3; rloc 0.45, C1 -8.49135116;
///                                    s: r 0.46010427, h 5.08833953 -1.03784325 / 2.67969975;
///                                    p: r 0.53674439, h 2.19343827)
private let abinitCases: [AbinitSmearingCase] = [
        AbinitSmearingCase(
            tag: "al_occopt3_nsppol1", occopt: 3, nsppol: 1, nelect: 3.0,
            weights: [0.015625, 0.125, 0.0625, 0.09375, 0.375, 0.1875, 0.046875, 0.09375],
            eigenvalues: [
                [-0.05053728059296023, 0.8309298389965283, 0.830929839003892, 0.8309298391927801, 0.8579519106042687, 0.8579519106096851],
                [0.010887996318054689, 0.4834282898480943, 0.7549582096772524, 0.7549582096823421, 0.8809027102475419, 0.8985230096327312],
                [0.1889425070913514, 0.19576120865673174, 0.7634028521501748, 0.7634028521555907, 0.7863450849200504, 0.7863450849267037],
                [0.0312812334516772, 0.6295602463604889, 0.6295602463694672, 0.6397643219400354, 0.6598763797826153, 0.7517631409837927],
                [0.17194633026547054, 0.3293217930967571, 0.4905739464144871, 0.6118252842688473, 0.6782519264462309, 0.9429578096888918],
                [0.1122442193499714, 0.4035701859863253, 0.4556664318454042, 0.7014093180789691, 0.7761055392250547, 0.9907761735927246],
                [0.2493729848605448, 0.29836974517035325, 0.557841466434745, 0.5578414664436654, 0.5579519579437546, 0.6833281129610352],
                [0.32650211814321595, 0.326502118147975, 0.36637437745212953, 0.391092592868637, 0.9413466828786625, 0.9418259005530768],
            ],
            occupations: [
                [1.9999999963768442, 7.963436462091249e-11, 7.963436459152261e-11, 7.963436383762906e-11, 2.0480878687188475e-11, 2.0480878681590323e-11],
                [1.999999921847799, 0.0028017334399472772, 3.562994723894153e-09, 3.5629947229873783e-09, 6.371294312453494e-12, 2.5287630906874496e-12],
                [1.9994255898700128, 1.999192323135763, 2.335769225803041e-09, 2.335769225170475e-09, 7.416000628421279e-10, 7.416000625953599e-10],
                [1.9999997833416838, 1.8828688001321006e-06, 1.8828687992868556e-06, 1.1304243592110852e-06, 4.135364064903797e-07, 4.180215134199934e-09],
                [1.9997544012145558, 1.5139119660013183, 0.0019608468131999436, 4.57013795501628e-06, 1.6500365982690304e-07, 1.0478611415631216e-13],
                [1.99998758742227, 0.1413512487632891, 0.011180010118157876, 5.1836556056948236e-08, 1.2375513963110174e-09, 0.0],
                [1.9882773724726686, 1.8721116805118627, 6.794527718265919e-05, 6.794527715235525e-05, 6.757095598820663e-05, 1.2801635312074522e-07],
                [1.5638931389907467, 1.5638931389096025, 0.656298942150397, 0.248566937254276, 1.295140935383317e-13, 1.2194969770025988e-13],
            ],
            fermie: 0.35204304386201046, minusKTEntropy: -0.018927239884285886,
            internalEnergy: -2.07915496967587, totalEnergy: -2.09808220956016),
        AbinitSmearingCase(
            tag: "al_occopt4_nsppol1", occopt: 4, nsppol: 1, nelect: 3.0,
            weights: [0.015625, 0.125, 0.0625, 0.09375, 0.375, 0.1875, 0.046875, 0.09375],
            eigenvalues: [
                [-0.050406563426945376, 0.8311274310953247, 0.831127431102691, 0.8311274312936756, 0.8581354708605556, 0.858135470865975],
                [0.011020330143834554, 0.48359072483851384, 0.7551382398548365, 0.7551382398599277, 0.8810927146250767, 0.8987015225086545],
                [0.18902055210809612, 0.19596478306146173, 0.7636474533250781, 0.763647453330495, 0.786426738764672, 0.786426738771327],
                [0.031414266483388936, 0.6297197337868516, 0.6297197337958303, 0.6400099339996007, 0.6600232841992943, 0.7518154456435039],
                [0.17208450330866076, 0.3294739484552203, 0.49070733578393394, 0.6119825047843565, 0.6784112418415263, 0.9431141384065391],
                [0.11237932993224538, 0.40376432897950915, 0.455763248222564, 0.7015793391652336, 0.7762547575710204, 0.9909863264060357],
                [0.24956356110398925, 0.29843688440240995, 0.5579938762406713, 0.5579938762495926, 0.5582010607181698, 0.6833833933775362],
                [0.3266947345845922, 0.3266947345893511, 0.3663321127427543, 0.39131470099443927, 0.9415706832356887, 0.9420734709994041],
            ],
            occupations: [
                [2.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                [2.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                [2.0, 2.0, 0.0, 0.0, 0.0, 0.0],
                [2.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                [2.0, 1.6592897598281378, 0.0, 0.0, 0.0, 0.0],
                [2.0, 4.475039710710545e-05, 1.1309305055892086e-14, 0.0, 0.0, 0.0],
                [2.0000000162696336, 2.0323115509455896, 0.0, 0.0, 0.0, 0.0],
                [1.8389673858344162, 1.8389673855622133, 0.0011692062008036815, 0.0008250320217814723, 0.0, 0.0],
            ],
            fermie: 0.33920621501712256, minusKTEntropy: -0.0005664321283033372,
            internalEnergy: -2.08571593342537, totalEnergy: -2.08628236555367),
        AbinitSmearingCase(
            tag: "al_occopt6_nsppol1", occopt: 6, nsppol: 1, nelect: 3.0,
            weights: [0.015625, 0.125, 0.0625, 0.09375, 0.375, 0.1875, 0.046875, 0.09375],
            eigenvalues: [
                [-0.05039555778569643, 0.8311464609922743, 0.8311464609996405, 0.8311464611907057, 0.858156962830393, 0.8581569628358127],
                [0.01103154799207379, 0.48360581495306126, 0.7551569115627015, 0.755156911567791, 0.881111288475171, 0.8987200040652578],
                [0.18902520919761728, 0.19598476568251844, 0.7636747782272311, 0.7636747782326472, 0.7864324829641236, 0.7864324829707775],
                [0.0314255719435923, 0.6297356451353452, 0.6297356451443246, 0.6400322456076268, 0.6600374373996662, 0.7518211978066729],
                [0.17209643001116437, 0.3294876200517639, 0.4907196324821671, 0.6119981422788056, 0.6784264267758456, 0.9431307301354571],
                [0.11239091565752128, 0.40378206973186515, 0.4557722034454479, 0.7015967428409199, 0.7762691329044966, 0.9910070719170014],
                [0.2495806465869063, 0.29844215764654947, 0.5580088407711576, 0.5580088407800793, 0.5582235945895919, 0.6833896641303187],
                [0.3267121628866164, 0.3267121628913764, 0.36632382056439755, 0.39133924228400224, 0.941592949808349, 0.9420974425894802],
            ],
            occupations: [
                [2.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                [2.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                [2.0, 2.0, 0.0, 0.0, 0.0, 0.0],
                [2.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                [2.0, 1.6827989347782528, 0.0, 0.0, 0.0, 0.0],
                [2.0, -3.939080810414269e-05, -2.9400020811763065e-15, 0.0, 0.0, 0.0],
                [2.0000000062411045, 2.0158733055077427, 0.0, 0.0, 0.0, 0.0],
                [1.8298046342537866, 1.8298046340347778, -0.06413325532166272, -0.001196293004500991, 0.0, 0.0],
            ],
            fermie: 0.3384871602756706, minusKTEntropy: -0.0009979705070029777,
            internalEnergy: -2.08592571740851, totalEnergy: -2.08692368791551),
        AbinitSmearingCase(
            tag: "al_occopt7_nsppol1", occopt: 7, nsppol: 1, nelect: 3.0,
            weights: [0.015625, 0.125, 0.0625, 0.09375, 0.375, 0.1875, 0.046875, 0.09375],
            eigenvalues: [
                [-0.050432047632843216, 0.8310865931121718, 0.8310865931195401, 0.8310865933103446, 0.858094564851675, 0.8580945648570938],
                [0.010994467805741509, 0.4835578724963188, 0.7551001367692447, 0.7551001367743355, 0.8810531747200573, 0.8986640653916572],
                [0.18900694309990979, 0.1959227177920937, 0.7635939458587807, 0.7635939458641974, 0.7864122013982939, 0.7864122014049478],
                [0.03138824693368416, 0.629686604796363, 0.629686604805342, 0.6399606679675591, 0.6599932150837239, 0.7518036970160235],
                [0.17205734364807068, 0.32944358377759353, 0.4906804308335718, 0.6119499437763108, 0.678378446680958, 0.9430804784549702],
                [0.11235281843677945, 0.4037254513011383, 0.45574353949715296, 0.7015437448503868, 0.7762239411061391, 0.990942302628514],
                [0.24952573895913305, 0.2984239264059387, 0.5579624780017971, 0.5579624780107179, 0.5581511944781417, 0.6833707319405474],
                [0.3266563420919039, 0.3266563420966627, 0.36634415163867584, 0.39126632083081175, 0.9415239187563703, 0.9420217947567474],
            ],
            occupations: [
                [2.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                [2.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                [2.0, 2.0, 0.0, 0.0, 0.0, 0.0],
                [2.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                [2.0, 1.675680341692164, 0.0, 0.0, 0.0, 0.0],
                [2.0, 1.982067938494316e-05, 1.9174656049930122e-15, 0.0, 0.0, 0.0],
                [1.9999999999679205, 1.9985223677536514, 0.0, 0.0, 0.0, 0.0],
                [1.7630749772224739, 1.7630749770890672, 0.10445175472587916, 0.0007094323080766809, 0.0, 0.0],
            ],
            fermie: 0.3433823543857837, minusKTEntropy: -0.00394482109797903,
            internalEnergy: -2.0852711083348, totalEnergy: -2.08921592943278),
        AbinitSmearingCase(
            tag: "al_occopt3_nsppol2", occopt: 3, nsppol: 2, nelect: 3.0,
            weights: [0.015625, 0.125, 0.0625, 0.09375, 0.375, 0.1875, 0.046875, 0.09375, 0.015625, 0.125, 0.0625, 0.09375, 0.375, 0.1875, 0.046875, 0.09375],
            eigenvalues: [
                [-0.05053728043648349, 0.8309298390268974, 0.8309298390339178, 0.8309298390731416, 0.8579519095679704, 0.8579519095733815],
                [0.010887996469397586, 0.4834282899042471, 0.754958209256941, 0.7549582092620313, 0.8809027105816247, 0.8985230091510731],
                [0.1889425074093987, 0.19576120859305224, 0.7634028514135369, 0.7634028514189526, 0.7863450848647947, 0.7863450848714485],
                [0.03128123360260534, 0.6295602460321436, 0.6295602460411207, 0.6397643226944011, 0.6598763795980068, 0.751763140364476],
                [0.17194633041745955, 0.3293217932151566, 0.49057394632639845, 0.6118252839370514, 0.6782519265202035, 0.9429578092533393],
                [0.11224421949585546, 0.4035701862983957, 0.45566643153588265, 0.7014093176622096, 0.7761055392135193, 0.9907363076553166],
                [0.24937298523439919, 0.29836974494028107, 0.5578414661345897, 0.5578414661435103, 0.557951958759188, 0.6833281123206992],
                [0.32650211849019123, 0.32650211849495053, 0.36637437760130975, 0.39109259212381436, 0.941346682933086, 0.9416959550937136],
                [-0.050537280965697, 0.8309298384764736, 0.8309298384836031, 0.83092983851633, 0.8579519108110821, 0.857951910816504],
                [0.010887995945829888, 0.48342828947379135, 0.7549582094840934, 0.7549582094891825, 0.8809027099170712, 0.8985230094759038],
                [0.18894250672654092, 0.19576120827737511, 0.7634028520765803, 0.763402852081997, 0.7863450846223579, 0.7863450846290118],
                [0.03128123307927739, 0.6295602461400659, 0.6295602461490447, 0.6397643211213478, 0.6598763795635109, 0.7517631412488128],
                [0.17194632988538494, 0.32932179271100226, 0.490573946165575, 0.6118252840550937, 0.6782519261489578, 0.9429578096545401],
                [0.11224421897752793, 0.40357018543106554, 0.4556664317674256, 0.7014093178992113, 0.776105538992144, 0.9907354243944273],
                [0.24937298428125057, 0.29836974510431497, 0.5578414662095855, 0.5578414662185065, 0.5579519570993365, 0.6833281132527553],
                [0.32650211757383235, 0.3265021175785914, 0.3663743773653292, 0.39109259281737535, 0.9413466824258299, 0.9416982832608405],
            ],
            occupations: [
                [0.9999999981884221, 3.981718200273241e-11, 3.981718198872234e-11, 3.9817181910447255e-11, 1.0240439815131129e-11, 1.0240439812334806e-11],
                [0.9999999609238991, 0.0014008667073846061, 1.7814973883574018e-09, 1.7814973879039635e-09, 3.1856470811142143e-12, 1.2643815696647089e-12],
                [0.9997127949286627, 0.9995961615666672, 1.1678846486887923e-09, 1.1678846483725219e-09, 3.708000301493449e-10, 3.7080003002595174e-10],
                [0.9999998916708404, 9.414344096928658e-07, 9.414344092702952e-07, 5.652121547871689e-07, 2.067682038735281e-07, 2.090107618883202e-09],
                [0.9998772006055846, 0.7569559807724543, 0.000980423404849538, 2.2850690012687555e-06, 8.2501829097491e-08, 5.2393059375283874e-14],
                [0.9999937937110513, 0.07067562295013054, 0.005590005110689253, 2.5918278408085145e-08, 6.187756946806729e-10, 0.0],
                [0.9941386860913346, 0.9360558405738851, 3.397263889082873e-05, 3.3972638875676584e-05, 3.378547640748149e-05, 6.400817821340086e-08],
                [0.781946565481602, 0.7819465654410275, 0.32814946806569056, 0.12428347200648206, 6.475704534537752e-14, 6.19914961638577e-14],
                [0.9999999981884222, 3.981718310116285e-11, 3.981718308693514e-11, 3.981718302162522e-11, 1.0240439172726391e-11, 1.0240439169924525e-11],
                [0.9999999609239001, 0.0014008667374929241, 1.7814973681227514e-09, 1.7814973676694209e-09, 3.1856471901221846e-12, 1.2643815475864192e-12],
                [0.9997127949384659, 0.9995961615730389, 1.1678846099677345e-09, 1.1678846096514062e-09, 3.7080003464527544e-10, 3.708000345218809e-10],
                [0.9999998916708432, 9.414344046127796e-07, 9.414344041901319e-07, 5.652121992425942e-07, 2.067682042301616e-07, 2.090107526461049e-09],
                [0.9998772006088511, 0.7569559854100092, 0.0009804234127255636, 2.285068987782039e-06, 8.250183062891519e-08, 5.2393056418764366e-14],
                [0.9999937937112121, 0.07067562579846792, 0.005590005046334701, 2.5918278100950174e-08, 6.187757015308085e-10, 0.0],
                [0.9941386863690322, 0.9360558400829703, 3.397263876344281e-05, 3.397263874828987e-05, 3.378547921133055e-05, 6.400817523043615e-08],
                [0.7819465732938423, 0.7819465732532702, 0.32814947066699157, 0.12428346823222412, 6.475704939702226e-14, 6.197322321673235e-14],
            ],
            fermie: 0.3520430437381791, minusKTEntropy: -0.0189272398907321,
            internalEnergy: -2.07915496966943, totalEnergy: -2.09808220956017),
        AbinitSmearingCase(
            tag: "al_occopt6_nsppol2", occopt: 6, nsppol: 2, nelect: 3.0,
            weights: [0.015625, 0.125, 0.0625, 0.09375, 0.375, 0.1875, 0.046875, 0.09375, 0.015625, 0.125, 0.0625, 0.09375, 0.375, 0.1875, 0.046875, 0.09375],
            eigenvalues: [
                [-0.050395558788065835, 0.8311464599488784, 0.8311464599560189, 0.8311464599639867, 0.8581569615358021, 0.8581569615412179],
                [0.011031546988403931, 0.4836058139255752, 0.7551569104138232, 0.7551569104189134, 0.881111287517025, 0.8987200029004159],
                [0.1890252082352388, 0.19598476462564984, 0.763674777001411, 0.763674777006828, 0.786432481903873, 0.7864324819105264],
                [0.03142557093983771, 0.6297356440088479, 0.6297356440178279, 0.6400322447586655, 0.6600374363122417, 0.7518211966150237],
                [0.17209642900778016, 0.3294876190400115, 0.49071963141854313, 0.611998141151493, 0.6784264257570284, 0.9431307289887507],
                [0.11239091465256243, 0.40378206876902123, 0.4557722023257988, 0.7015967416928293, 0.7762691318640961, 0.9909278567744672],
                [0.249580645639647, 0.2984421565468116, 0.5580088396516242, 0.5580088396605464, 0.5582235937567758, 0.6833896629340844],
                [0.3267121619326269, 0.32671216193738645, 0.36632381955829363, 0.3913392410568019, 0.9415929487823299, 0.9417713463927638],
                [-0.05039555681594699, 0.8311464620234196, 0.8311464620305707, 0.831146462038398, 0.8581569634698751, 0.8581569634753003],
                [0.01103154896141766, 0.4836058159228582, 0.7551569124151692, 0.7551569124202607, 0.8811112894733638, 0.8987200048898157],
                [0.18902521016001125, 0.1959847666594451, 0.7636747790329055, 0.763674779038322, 0.7864324838407978, 0.7864324838474517],
                [0.031425572913239726, 0.6297356459986515, 0.6297356460076301, 0.6400322468622643, 0.6600374382748275, 0.7518211984183985],
                [0.1720964309854326, 0.3294876210295406, 0.49071963337588936, 0.6119981431376327, 0.6784264277225192, 0.9431307309250355],
                [0.11239091662733361, 0.4037820708115397, 0.45577220423589043, 0.701596743681488, 0.7762691338116425, 0.9909267803739739],
                [0.24958064768163335, 0.2984421584301788, 0.5580088416366323, 0.5580088416455541, 0.5582235958625068, 0.6833896647331655],
                [0.3267121639751515, 0.3267121639799105, 0.3663238213519939, 0.39133924306927076, 0.9415929508387285, 0.9417995920186605],
            ],
            occupations: [
                [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                [1.0, 1.0, 0.0, 0.0, 0.0, 0.0],
                [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                [1.0, 0.841399497888738, 0.0, 0.0, 0.0, 0.0],
                [1.0, -1.9695409949382418e-05, -1.4700022558791393e-15, 0.0, 0.0, 0.0],
                [1.000000003120551, 1.0079366513300596, 0.0, 0.0, 0.0, 0.0],
                [0.9149023392699147, 0.9149023391604204, -0.0320666294641357, -0.0005981466794784923, 0.0, 0.0],
                [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                [1.0, 1.0, 0.0, 0.0, 0.0, 0.0],
                [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                [1.0, 0.8413994384151683, 0.0, 0.0, 0.0, 0.0],
                [1.0, -1.9695397549050822e-05, -1.4700001983019479e-15, 0.0, 0.0, 0.0],
                [1.0000000031205536, 1.0079366537496548, 0.0, 0.0, 0.0, 0.0],
                [0.9149022922811063, 0.9149022921716249, -0.03206662627620166, -0.0005981463908510826, 0.0, 0.0],
            ],
            fermie: 0.3384871602842011, minusKTEntropy: -0.0009979705072133967,
            internalEnergy: -2.0859257174083, totalEnergy: -2.08692368791551),

]
