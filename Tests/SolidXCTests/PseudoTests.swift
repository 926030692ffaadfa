import Foundation
import XCTest
import SolidXC

/// Tests for Sources/SolidXC/Pseudo. Reference values: the published GTH tables (GTH 1996,
/// HGH 1998) and PySCF 2.14.0 (`pyscf.pbc.gto.pseudo.pp`, `pyscf.gto.basis.load_pseudo`).
/// Closed-form Fourier transforms are checked against direct radial quadrature written here.
final class PseudoTests: XCTestCase {

    // MARK: Bundled tables

    func test_every_bundled_entry_parses_and_is_reachable_by_valence() throws {
        // Entry counts of gth-pade.dat / gth-pbe.dat as distributed with PySCF 2.14.0.
        let expectedCounts = ["gth-pade": 131, "gth-pbe": 106]
        for table in GTHPseudopotential.bundledTableNames {
            let text = try XCTUnwrap(GTHPseudopotential.bundledTableText(table))
            let all = try GTHPseudopotential.parseAll(cp2kText: text)
            XCTAssertEqual(all.count, expectedCounts[table], table)
            var seen = Set<String>()
            for pp in all {
                let key = "\(pp.element) q\(Int(pp.zion))"
                XCTAssertTrue(seen.insert(key).inserted, "\(table): two entries for \(key)")
                // The header name "GTH-XXX-qN" carries the valence; it must match n_elec.
                let first = try XCTUnwrap(pp.names.first)
                XCTAssertTrue(first.hasSuffix("-q\(Int(pp.zion))"), "\(table) \(pp.element) \(first)")
                for l in 0..<pp.channels.count {
                    let h = pp.h(l: l)
                    for i in 0..<h.count { for j in 0..<h.count { XCTAssertEqual(h[i][j], h[j][i]) } }
                }
                let loaded = try GTHPseudopotential.load(element: pp.element,
                                                         table: "\(table)-q\(Int(pp.zion))")
                XCTAssertEqual(loaded, pp)
            }
        }
    }

    func test_si_gth_pade_parameters_match_goedecker_teter_hutter_1996() throws {
        let si = try GTHPseudopotential.load(element: "Si", table: "gth-pade")
        XCTAssertEqual(si.element, "Si")
        XCTAssertEqual(si.zion, 4)
        XCTAssertEqual(si.valenceConfiguration, [2, 2])
        XCTAssertEqual(si.rloc, 0.44)
        XCTAssertEqual(si.cloc, [-7.33610297])
        XCTAssertEqual(si.maxAngularMomentum, 1)
        XCTAssertEqual(si.projectorCount(l: 0), 2)
        XCTAssertEqual(si.projectorCount(l: 1), 1)
        XCTAssertEqual(si.projectorCount(l: 2), 0)
        XCTAssertEqual(si.projectorRadius(l: 0), 0.42273813)
        XCTAssertEqual(si.h(l: 0), [[5.90692831, -1.26189397], [-1.26189397, 3.25819622]])
        XCTAssertEqual(si.projectorRadius(l: 1), 0.48427842)
        XCTAssertEqual(si.h(l: 1), [[2.72701346]])
        XCTAssertEqual(si.h(l: 2), [])
    }

    /// Default valence for `cell.pseudo = 'gth-pade'` / 'gth-pbe' with the bare element symbol:
    /// PySCF 2.14.0, `sum(pyscf.gto.basis.load_pseudo(table, symbol)[0])` for every element.
    func test_default_valence_matches_pyscf_for_every_element() throws {
        let pyscf = """
            H:1 He:2 Li:3 Be:4 B:3 C:4 N:5 O:6 F:7 Ne:8 Na:9 Mg:10 Al:3 Si:4 P:5 S:6 Cl:7 Ar:8 K:9 \
            Ca:10 Sc:11 Ti:12 V:13 Cr:14 Mn:15 Fe:16 Co:17 Ni:18 Cu:11 Zn:12 Ga:13 Ge:4 As:5 Se:6 \
            Br:7 Kr:8 Rb:9 Sr:10 Y:11 Zr:12 Nb:13 Mo:14 Tc:15 Ru:16 Rh:17 Pd:18 Ag:11 Cd:12 In:13 \
            Sn:4 Sb:5 Te:6 I:7 Xe:8 Cs:9 Ba:10 La:11 Ce:12 Pr:13 Nd:14 Pm:15 Sm:16 Eu:17 Gd:18 \
            Tb:19 Dy:20 Ho:21 Er:22 Tm:23 Yb:24 Lu:25 Hf:12 Ta:13 W:14 Re:15 Os:16 Ir:17 Pt:18 \
            Au:11 Hg:12 Tl:13 Pb:4 Bi:5 Po:6 At:7 Rn:8
            """
        let pairs = pyscf.split(separator: " ").map { $0.split(separator: ":") }
        XCTAssertEqual(pairs.count, 86)
        for table in ["gth-pade", "gth-pbe"] {  // PySCF gives the same list for both tables
            for pair in pairs {
                let pp = try GTHPseudopotential.load(element: String(pair[0]), table: table)
                XCTAssertEqual(pp.zion, Double(pair[1]), "\(table) \(pair[0])")
            }
        }
        // The elements named in the design brief, spelled out.
        let brief: [(String, Double)] = [("Si", 4), ("C", 4), ("Al", 3), ("Mg", 10), ("O", 6),
                                         ("Ca", 10), ("Ni", 18), ("Na", 9)]
        for (el, z) in brief {
            XCTAssertEqual(try GTHPseudopotential.load(element: el, table: "gth-pade").zion, z, el)
            XCTAssertEqual(try GTHPseudopotential.load(element: el, table: "gth-pbe").zion, z, el)
        }
    }

    func test_explicit_valence_and_name_spellings() throws {
        XCTAssertEqual(try GTHPseudopotential.load(element: "Mg", table: "gth-pade-q2").zion, 2)
        XCTAssertEqual(try GTHPseudopotential.load(element: "Mg", table: "gth-pade-q10").zion, 10)
        XCTAssertEqual(try GTHPseudopotential.load(element: "Mg", table: "GTH-PBE-q2").zion, 2)
        XCTAssertEqual(try GTHPseudopotential.load(element: "Ni", table: "gth-pade-q10").zion, 10)
        XCTAssertEqual(try GTHPseudopotential.load(element: "Na", table: "gth-lda-q1").zion, 1)
        let si = try GTHPseudopotential.load(element: "Si", table: "gth-pade")
        XCTAssertEqual(try GTHPseudopotential.load(element: "si1", table: "GTH_PADE"), si)
        XCTAssertEqual(try GTHPseudopotential.load(element: "Si", table: "gth-lda-q4"), si)
    }

    func test_load_from_file_path_and_parse_from_text() throws {
        let entry = """
            # a comment line
            #PSEUDOPOTENTIAL
            Si GTH-PADE-q4 GTH-LDA-q4 GTH-PADE GTH-LDA   # trailing comment
                2    2
                 0.44000000    1    -7.33610297
                2
                 0.42273813    2     5.90692831    -1.26189397
                                                    3.25819622
                 0.48427842    1     2.72701346
            END
            """
        let path = NSTemporaryDirectory() + "solidxc-si-\(getpid()).gth"
        try entry.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let bundled = try GTHPseudopotential.load(element: "Si", table: "gth-pade")
        XCTAssertEqual(try GTHPseudopotential.load(element: "Si", table: path), bundled)
        XCTAssertEqual(try GTHPseudopotential.parse(cp2kText: entry, element: "Si"), bundled)
        XCTAssertEqual(try GTHPseudopotential.parse(cp2kText: entry.replacingOccurrences(
            of: "\n", with: "\r\n"), element: "Si"), bundled)
    }

    func test_spin_orbit_rows_are_skipped() throws {
        let plain = """
            Xe GTH-TEST-q8
                2    6
                 0.5   1   -1.0
                3
                 0.4   2   1.0   0.5
                             2.0
                 0.45  2   3.0   0.25
                             4.0
                 0.6   1   5.0
            """
        let soc = """
            Xe GTH-TEST-q8
                2    6
                 0.5   1   -1.0
                3
                 0.4   2   1.0   0.5
                             2.0
                 0.45  2   3.0   0.25
                             4.0
                       0.01  0.02
                             0.03
                 0.6   1   5.0
                       0.04
            """
        let a = try GTHPseudopotential.parse(cp2kText: plain, element: "Xe")
        XCTAssertEqual(try GTHPseudopotential.parse(cp2kText: soc, element: "Xe"), a)
        XCTAssertEqual(a.h(l: 1), [[3.0, 0.25], [0.25, 4.0]])
        XCTAssertEqual(a.maxAngularMomentum, 2)
    }

    // MARK: Errors

    func test_unknown_element_error_names_element_and_table() {
        assertInputError(try GTHPseudopotential.load(element: "Xx", table: "gth-pade"),
                         contains: ["Xx", "gth-pade"])
        assertInputError(try GTHPseudopotential.load(element: "", table: "gth-pbe"), contains: ["element"])
        assertInputError(try GTHPseudopotential.load(element: "Mg", table: "gth-pade-q3"),
                         contains: ["Mg", "3", "q10", "q2"])
        assertInputError(try GTHPseudopotential.load(element: "Si", table: "gth-nonsense"),
                         contains: ["gth-nonsense", "Si"])
        assertInputError(try GTHPseudopotential.load(element: "Si", table: "/nonexistent/dir/Si.gth"),
                         contains: ["/nonexistent/dir/Si.gth", "Si"])
    }

    func test_malformed_entries_name_element_field_and_line() throws {
        let badRloc = """
            Si GTH-PADE-q4
                2    2
                 abc    1    -7.33610297
                0
            """
        assertInputError(try GTHPseudopotential.parse(cp2kText: badRloc, element: "Si"),
                         contains: ["Si", "r_loc", "line 3", "abc"])
        let missingRow = """
            Si GTH-PADE-q4
                2    2
                 0.44    1    -7.33610297
                1
                 0.42273813    2     5.90692831    -1.26189397
            """
        assertInputError(try GTHPseudopotential.parse(cp2kText: missingRow, element: "Si"),
                         contains: ["Si", "row 2 of h^0"])
        let wrongCoefficientCount = """
            C GTH-TEST-q4
                2    2
                 0.34    2    -8.5
                0
            """
        assertInputError(try GTHPseudopotential.parse(cp2kText: wrongCoefficientCount, element: "C"),
                         contains: ["C GTH-TEST-q4", "coefficients", "line 3"])
        let tooManyProjectors = """
            C GTH-TEST-q4
                2    2
                 0.34    1    -8.5
                1
                 0.3    4    1 2 3 4
            """
        assertInputError(try GTHPseudopotential.parse(cp2kText: tooManyProjectors, element: "C"),
                         contains: ["C GTH-TEST-q4", "n_0", "0...3"])
        let twoUnmarked = """
            Mg GTH-X-q2
                2
                 0.5    1    -1.0
                0
            Mg GTH-X-q10
                4 6
                 0.2    1    -1.0
                0
            """
        assertInputError(try GTHPseudopotential.parse(cp2kText: twoUnmarked, element: "Mg"),
                         contains: ["Mg", "q2", "q10", "valence"])
        XCTAssertEqual(try GTHPseudopotential.parse(cp2kText: twoUnmarked, element: "Mg", valence: 10).zion, 10)

        let path = NSTemporaryDirectory() + "solidxc-bad-\(getpid()).gth"
        try badRloc.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        assertInputError(try GTHPseudopotential.load(element: "Si", table: path),
                         contains: [path, "Si", "r_loc"])
    }

    // MARK: Reciprocal-space form factors

    /// PySCF 2.14.0: `-pp.get_vlocG(cell, Gv)` and `pp.projG_li(q, l, i, r_l)` for a cell with one
    /// atom and `cell.pseudo = 'gth-pade'`, at q = 0.5, 1.3, 2.7, 5.0 1/bohr; alpha from `pp.get_alphas`.
    func test_form_factors_match_pyscf() throws {
        let qs = [0.5, 1.3, 2.7, 5.0]
        let reference: [(element: String, vloc: [Double], alpha: Double, proj: [[[Double]]])] = [
            ("Si", [-205.86153521036968, -33.61125957091997, -8.264513530986711, -1.0539740087212077],
             -4.976525423443414,
             [[[6.359427219091884, 5.591619138234883, 3.3901962817194216, 0.6965836951018494],
               [9.705263668908165, 7.790428817697738, 2.9713095279813824, -0.5279483814285231]],
              [[1.5308859977235476, 3.361877752858268, 3.6208743680825446, 0.8404461407590597]]]),
            ("Ni", [-887.7410499760504, -117.71870755895173, -17.884244294730873, -1.433589055767387],
             17.203212782560215,
             [[[2.849567423161685, 2.7289370879262993, 2.3064239430311404, 1.3548918877738196],
               [4.392430106713384, 4.084574579239715, 3.0514757085821844, 1.048158262588254]],
              [[0.2561057635710593, 0.6399739156651303, 1.1391357162679019, 1.2950048291284093],
               [0.4317050422907866, 1.0616057153949099, 1.770795108365069, 1.5858614674808584]],
              [[0.013983182087853997, 0.09143349259250852, 0.346546726733343, 0.7893894753052604]]]),
        ]
        for ref in reference {
            let pp = try GTHPseudopotential.load(element: ref.element, table: "gth-pade")
            for (k, q) in qs.enumerated() {
                XCTAssertEqual(pp.localFourier(q), ref.vloc[k], accuracy: 1e-12 * abs(ref.vloc[k]))
                for l in 0..<ref.proj.count {
                    for i in 0..<ref.proj[l].count {
                        let want = ref.proj[l][i][k]
                        XCTAssertEqual(pp.projectorFourier(l: l, i: i, q: q), want,
                                       accuracy: 1e-12 * abs(want), "\(ref.element) l=\(l) i=\(i) q=\(q)")
                    }
                }
            }
            XCTAssertEqual(pp.localFourierNonCoulombAtZero, ref.alpha, accuracy: 1e-12 * abs(ref.alpha))
        }
    }

    /// Every (l, i) for l ≤ 3, i ≤ 3: bundled Si and both Ni entries plus a synthetic full entry.
    func test_projector_fourier_matches_radial_quadrature() throws {
        var pps = [try GTHPseudopotential.load(element: "Si", table: "gth-pade"),
                   try GTHPseudopotential.load(element: "Ni", table: "gth-pade"),
                   try GTHPseudopotential.load(element: "Ni", table: "gth-pade-q10"),
                   try GTHPseudopotential.load(element: "Ni", table: "gth-pbe")]
        pps.append(try GTHPseudopotential.parse(cp2kText: Self.fullChannels, element: "Xx"))
        var checked = Set<String>()
        for pp in pps {
            for l in 0...pp.maxAngularMomentum {
                let rl = pp.projectorRadius(l: l)
                for i in 0..<pp.projectorCount(l: l) {
                    for q in [0.0, 0.3, 1.1, 2.9, 6.5, 12.0] {
                        let f = { (r: Double) in r * r * sphericalBessel(l, q * r) * projector(l, i + 1, rl, r) }
                        let (value, scale) = radialIntegral(f, upTo: 16 * rl)
                        let closed = pp.projectorFourier(l: l, i: i, q: q)
                        XCTAssertEqual(closed, 4 * .pi * value, accuracy: 1e-10 * 4 * .pi * scale,
                                       "\(pp.element) \(pp.names[0]) l=\(l) i=\(i) q=\(q)")
                    }
                    checked.insert("\(l)\(i)")
                }
            }
        }
        XCTAssertEqual(checked.count, 12, "all (l, i) with l ≤ 3, i ≤ 3 covered")
    }

    /// Parseval: (2π)^-3 ∫ |β(q)|² d³q = ∫ |β(r)|² d³r = 1 for the normalised projectors, which
    /// checks the 4π and (2π)³ conventions without the real-space formula.
    func test_projector_fourier_is_normalised_by_parseval() throws {
        let pp = try GTHPseudopotential.parse(cp2kText: Self.fullChannels, element: "Xx")
        for l in 0...3 {
            for i in 0..<3 {
                let (integral, _) = radialIntegral({ q in
                    let p = pp.projectorFourier(l: l, i: i, q: q)
                    return q * q * p * p
                }, upTo: 20 / pp.projectorRadius(l: l))
                XCTAssertEqual(integral / pow(2 * .pi, 3), 1, accuracy: 1e-12, "l=\(l) i=\(i)")
            }
        }
    }

    /// localFourier(q) + 4πZ/q² is the transform of the short-range part V_loc(r) + Z/r
    /// = Z erfc(r/(√2 rloc))/r + exp(-x²/2) Σ C_k x^{2k-2}; compare with radial quadrature.
    func test_local_fourier_matches_radial_quadrature() throws {
        let pps = [try GTHPseudopotential.load(element: "Si", table: "gth-pade"),
                   try GTHPseudopotential.load(element: "Li", table: "gth-pade"),  // C1..C4
                   try GTHPseudopotential.load(element: "Ni", table: "gth-pade-q10"),  // no C
                   try GTHPseudopotential.load(element: "O", table: "gth-pbe")]
        XCTAssertEqual(pps[1].cloc.count, 4)
        XCTAssertEqual(pps[2].cloc.count, 0)
        for pp in pps {
            let shortRange = { (r: Double) in Self.localShortRange(pp, r) }
            for q in [0.2, 0.7, 1.9, 4.4, 9.0, 15.0] {
                let (value, scale) = radialIntegral({ r in r * r * sphericalBessel(0, q * r) * shortRange(r) },
                                                    upTo: 16 * pp.rloc)
                let closed = pp.localFourier(q) + 4 * .pi * pp.zion / (q * q)
                XCTAssertEqual(closed, 4 * .pi * value, accuracy: 1e-10 * 4 * .pi * scale,
                               "\(pp.element) \(pp.names[0]) q=\(q)")
            }
            // alpha = ∫ (V_loc + Z/r) d³r, and the numerical q → 0 limit of localFourier + 4πZ/q²
            // (Richardson on the q² term; the remaining error is O(q⁴ rloc⁴)).
            let (integral, scale) = radialIntegral({ r in r * r * shortRange(r) }, upTo: 16 * pp.rloc)
            XCTAssertEqual(pp.localFourierNonCoulombAtZero, 4 * .pi * integral,
                           accuracy: 1e-10 * 4 * .pi * scale, pp.element)
            let g = { (q: Double) in pp.localFourier(q) + 4 * .pi * pp.zion / (q * q) }
            let q = 1e-2
            let limit = (4 * g(q / 2) - g(q)) / 3
            XCTAssertEqual(pp.localFourierNonCoulombAtZero, limit, accuracy: 1e-7 * 4 * .pi * scale, pp.element)
        }
    }

    // MARK: Real spherical harmonics

    func test_real_spherical_harmonics_are_orthonormal_on_the_sphere() {
        // Product rule: 8-point Gauss-Legendre in cos θ times 16 equispaced φ, exact for the
        // polynomials of degree ≤ 6 formed by two harmonics with l ≤ 3.
        let (z, w) = gaussLegendre(8)
        let nphi = 16
        var gram = [[Double]](repeating: [Double](repeating: 0, count: 16), count: 16)
        var y = [Double](repeating: 0, count: 16)
        for a in 0..<z.count {
            for b in 0..<nphi {
                let phi = 2 * Double.pi * Double(b) / Double(nphi)
                let s = (1 - z[a] * z[a]).squareRoot()
                let dir = (s * cos(phi), s * sin(phi), z[a])
                allHarmonics(dir, into: &y)
                let weight = w[a] * 2 * Double.pi / Double(nphi)
                for m in 0..<16 { for n in 0..<16 { gram[m][n] += weight * y[m] * y[n] } }
            }
        }
        for m in 0..<16 { for n in 0..<16 {
            XCTAssertEqual(gram[m][n], m == n ? 1 : 0, accuracy: 1e-14, "Gram[\(m)][\(n)]")
        } }
    }

    func test_real_spherical_harmonics_addition_theorem() {
        var generator = SplitMix(seed: 7)
        var ya = [Double](repeating: 0, count: 7), yb = [Double](repeating: 0, count: 7)
        for _ in 0..<50 {
            let a = generator.direction(), b = generator.direction()
            let scale = 0.1 + 3 * generator.next()  // the direction need not be normalised
            let cosine = a.0 * b.0 + a.1 * b.1 + a.2 * b.2
            for l in 0...3 {
                ya.withUnsafeMutableBufferPointer {
                    GTHPseudopotential.realSphericalHarmonics(l: l, direction: (scale * a.0, scale * a.1, scale * a.2),
                                                              into: $0.baseAddress!)
                }
                yb.withUnsafeMutableBufferPointer {
                    GTHPseudopotential.realSphericalHarmonics(l: l, direction: b, into: $0.baseAddress!)
                }
                let sum = (0...(2 * l)).reduce(0.0) { $0 + ya[$1] * yb[$1] }
                XCTAssertEqual(sum, Double(2 * l + 1) / (4 * .pi) * legendre(l, cosine), accuracy: 1e-14)
            }
        }
    }

    func test_real_spherical_harmonics_at_zero_vector_and_axes() {
        var y = [Double](repeating: 9, count: 7)
        for l in 0...3 {
            y.withUnsafeMutableBufferPointer {
                GTHPseudopotential.realSphericalHarmonics(l: l, direction: (0, 0, 0), into: $0.baseAddress!)
            }
            for m in 0...(2 * l) { XCTAssertEqual(y[m], l == 0 ? 1 / (4 * .pi).squareRoot() : 0) }
        }
        // l = 1 is √(3/4π) (y, z, x).
        y.withUnsafeMutableBufferPointer {
            GTHPseudopotential.realSphericalHarmonics(l: 1, direction: (0, 0, 2), into: $0.baseAddress!)
        }
        XCTAssertEqual(y[0], 0)
        XCTAssertEqual(y[1], (3 / (4 * .pi)).squareRoot(), accuracy: 1e-15)
        XCTAssertEqual(y[2], 0)
    }

    // MARK: Helpers (independent of the library's formulas)

    /// A synthetic entry with three projectors in every channel l = 0...3.
    static let fullChannels = """
        Xx GTH-TEST-q6
            2    4
             0.40    4   -5.0   1.0   -0.3   0.05
            4
             0.35    3   1.0  0.1  0.01
                          2.0  0.2
                               3.0
             0.42    3   1.0  0.1  0.01
                          2.0  0.2
                               3.0
             0.50    3   1.0  0.1  0.01
                          2.0  0.2
                               3.0
             0.61    3   1.0  0.1  0.01
                          2.0  0.2
                               3.0
        """

    static func localShortRange(_ pp: GTHPseudopotential, _ r: Double) -> Double {
        let x = r / pp.rloc
        var poly = 0.0
        for (k, c) in pp.cloc.enumerated() { poly += c * pow(x, Double(2 * k)) }
        let coulomb = r > 0 ? pp.zion * erfc(x / 2.0.squareRoot()) / r
            : pp.zion * (2 / Double.pi).squareRoot() / pp.rloc
        return coulomb + exp(-x * x / 2) * poly
    }
}

/// GTH projector p_i^l(r), i 1-based, as printed in HGH 1998, eq. (3).
private func projector(_ l: Int, _ i: Int, _ rl: Double, _ r: Double) -> Double {
    let e = Double(l) + Double(4 * i - 1) / 2
    return 2.0.squareRoot() * pow(r, Double(l + 2 * (i - 1))) * exp(-r * r / (2 * rl * rl))
        / (pow(rl, e) * tgamma(e).squareRoot())
}

/// Spherical Bessel j_l(x), l ≤ 3: power series for x < 2, closed forms otherwise.
private func sphericalBessel(_ l: Int, _ x: Double) -> Double {
    if x < 2 {
        var doubleFactorial = 1.0
        for k in stride(from: 1, through: 2 * l + 1, by: 2) { doubleFactorial *= Double(k) }
        var term = pow(x, Double(l)) / doubleFactorial, sum = term
        for k in 1..<40 {
            term *= -x * x / (2 * Double(k) * Double(2 * l + 2 * k + 1))
            sum += term
        }
        return sum
    }
    let s = sin(x), c = cos(x)
    switch l {
    case 0: return s / x
    case 1: return s / (x * x) - c / x
    case 2: return (3 / (x * x * x) - 1 / x) * s - 3 * c / (x * x)
    default: return (15 / pow(x, 4) - 6 / (x * x)) * s - (15 / pow(x, 3) - 1 / x) * c
    }
}

private func legendre(_ l: Int, _ x: Double) -> Double {
    switch l {
    case 0: return 1
    case 1: return x
    case 2: return (3 * x * x - 1) / 2
    default: return (5 * x * x * x - 3 * x) / 2
    }
}

/// Gauss-Legendre nodes and weights on [-1, 1] (Newton on P_n).
private func gaussLegendre(_ n: Int) -> ([Double], [Double]) {
    var x = [Double](repeating: 0, count: n), w = x
    for k in 0..<n {
        var z = cos(Double.pi * (Double(k) + 0.75) / (Double(n) + 0.5))
        var dp = 0.0
        for _ in 0..<100 {
            var p0 = 1.0, p1 = z
            for j in 2...n { (p0, p1) = (p1, (Double(2 * j - 1) * z * p1 - Double(j - 1) * p0) / Double(j)) }
            dp = Double(n) * (z * p1 - p0) / (z * z - 1)
            let dz = p1 / dp
            z -= dz
            if abs(dz) < 1e-16 { break }
        }
        x[k] = z
        w[k] = 2 / ((1 - z * z) * dp * dp)
    }
    return (x, w)
}

/// ∫_0^R f(r) dr by 60 panels of 24-point Gauss-Legendre; also returns ∫|f| for tolerances.
private func radialIntegral(_ f: (Double) -> Double, upTo rmax: Double) -> (Double, Double) {
    let (x, w) = gaussLegendre(24)
    let panels = 60
    let h = rmax / Double(panels)
    var sum = 0.0, absSum = 0.0
    for p in 0..<panels {
        let a = Double(p) * h
        for k in 0..<x.count {
            let v = f(a + (x[k] + 1) * h / 2) * w[k] * h / 2
            sum += v
            absSum += abs(v)
        }
    }
    return (sum, absSum)
}

/// All 16 real harmonics for l = 0...3 at a direction, in order l, then m.
private func allHarmonics(_ dir: (Double, Double, Double), into y: inout [Double]) {
    var tmp = [Double](repeating: 0, count: 7)
    var offset = 0
    for l in 0...3 {
        tmp.withUnsafeMutableBufferPointer {
            GTHPseudopotential.realSphericalHarmonics(l: l, direction: dir, into: $0.baseAddress!)
        }
        for m in 0...(2 * l) { y[offset + m] = tmp[m] }
        offset += 2 * l + 1
    }
}

private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / Double(1 << 53)
    }
    mutating func direction() -> (Double, Double, Double) {
        let z = 2 * next() - 1, phi = 2 * Double.pi * next(), s = (1 - z * z).squareRoot()
        return (s * cos(phi), s * sin(phi), z)
    }
}

private func assertInputError<T>(_ body: @autoclosure () throws -> T, contains needles: [String],
                                 file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected SolidXCError.input", file: file, line: line)
    } catch let SolidXCError.input(field, message) {
        XCTAssertEqual(field, "pseudo", file: file, line: line)
        for needle in needles {
            XCTAssertTrue(message.contains(needle), "'\(needle)' not in: \(message)", file: file, line: line)
        }
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
    }
}
