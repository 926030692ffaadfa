import Foundation
import XCTest
@testable import SolidXC

// Tests of Sources/SolidXC/XC: the built-in functionals against libxc, their kernels against
// libxc and against finite differences, and the registry.

// MARK: - libxc reference data

/// One case of Resources/libxc_reference.json, written by
/// python/tests/reference/make_libxc_reference.py from libxc through pyscf.dft.libxc.eval_xc.
/// Decoded with JSONDecoder, which reads doubles exactly (JSONSerialization on Linux can be one
/// ulp off, and inputs near full polarisation are sensitive to that).
private struct LibxcCase: Decodable {
    var name: String
    var parameters: [String: Double]
    var family: String
    var nspin: Int
    var npoints: Int
    var rho: [Double]
    var sigma: [Double]?
    var exc: [Double]
    var vrho: [Double]
    var vsigma: [Double]?
    var drho: [Double]
    var dsigma: [Double]?
    var dvrho: [Double]
    var dvsigma: [Double]?

    var nsigma: Int { nspin == 1 ? 1 : 3 }

    var label: String {
        let p = parameters.keys.sorted().map { "\($0)=\(parameters[$0]!)" }.joined(separator: ",")
        return "\(name)\(p.isEmpty ? "" : "[\(p)]") nspin=\(nspin)"
    }

    /// Total density per point.
    var n: [Double] {
        (0..<npoints).map { i in nspin == 1 ? rho[i] : rho[i] + rho[npoints + i] }
    }

    /// libxc's energy per volume: its energy per particle times the density passed in.
    var e: [Double] {
        zip(n, exc).map { $0 * $1 }
    }
}

private struct LibxcReference: Decodable {
    var libxcVersion: String
    var cases: [LibxcCase]

    enum CodingKeys: String, CodingKey {
        case libxcVersion = "libxc_version"
        case cases
    }

    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Resources/libxc_reference.json").path

    static func load() throws -> LibxcReference {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SolidXCError.input(field: "libxc_reference.json",
                                     message: "missing at \(path); run python/tests/reference/make_libxc_reference.py")
        }
        return try JSONDecoder().decode(LibxcReference.self, from: data)
    }
}

// MARK: - Error measures

/// The size of the exchange part of vsigma, mu |e| / (4 (3 pi^2)^(2/3) n^(8/3)) with mu ~ 0.2.
/// In PBE, mu = beta pi^2 / 3 makes the s^2 terms of exchange and correlation cancel, so the
/// unpolarised vsigma at sigma = 0 (and its density derivative) is zero up to the rounding of
/// two terms of this size; it is judged against that size.
private func vsigmaScale(e: [Double], n: [Double]) -> [Double] {
    let c = 0.2 / (4 * pow(3 * Double.pi * Double.pi, 2.0 / 3.0))
    return zip(e, n).map { e, n in n > 0 ? c * abs(e) / pow(n, 8.0 / 3.0) : 0 }
}

/// Per-point relative errors of spin-major arrays. Each value is measured against the largest
/// reference value of its kind at that point (vrho_up and vrho_down, or the three vsigma) and
/// against `floor`, so a component that is zero up to rounding (for example vsigma_ud of pure
/// exchange) is judged on the scale of its siblings. Returns the worst error and a description
/// of the worst points for failure messages.
private func compare(_ mine: [Double], _ reference: [Double], blocks: Int, npoints: Int,
                     floor: [Double]? = nil, describe: (Int) -> String) -> (worst: Double, report: String) {
    var rows: [(error: Double, index: Int, block: Int)] = []
    for i in 0..<npoints {
        var scale = floor?[i] ?? 0
        for b in 0..<blocks { scale = max(scale, abs(reference[b * npoints + i])) }
        for b in 0..<blocks {
            let k = b * npoints + i
            let diff = abs(mine[k] - reference[k])
            let error = diff == 0 ? 0 : (scale == 0 ? .infinity : diff / scale)
            rows.append((error, i, b))
        }
    }
    rows.sort { $0.error > $1.error }
    let report = rows.prefix(4).map { r in
        String(format: "%.1e", r.error) + " at point \(r.index) (\(describe(r.index))), block \(r.block): "
            + "\(mine[r.block * npoints + r.index]) vs \(reference[r.block * npoints + r.index])"
    }.joined(separator: "\n")
    return (rows.first?.error ?? 0, report)
}

// MARK: - Calling a functional on arrays

private struct Outputs {
    var e: [Double]
    var vrho: [Double]
    var vsigma: [Double]
}

private func evaluate(_ f: Functional, nspin: Int, rho: [Double], sigma: [Double]) throws -> Outputs {
    let np = rho.count / nspin
    let isGGA = f.family == .gga
    var e = [Double](repeating: .nan, count: np)
    var vrho = [Double](repeating: .nan, count: nspin * np)
    var vsigma = [Double](repeating: .nan, count: isGGA ? (nspin == 1 ? 1 : 3) * np : 0)
    try rho.withUnsafeBufferPointer { r in
        try sigma.withUnsafeBufferPointer { s in
            try e.withUnsafeMutableBufferPointer { eb in
                try vrho.withUnsafeMutableBufferPointer { vr in
                    try vsigma.withUnsafeMutableBufferPointer { vs in
                        try f.evaluate(nspin: nspin, npoints: np, rho: r.baseAddress!, sigma: s.baseAddress,
                                       e: eb.baseAddress!, vrho: vr.baseAddress!, vsigma: vs.baseAddress)
                    }
                }
            }
        }
    }
    return Outputs(e: e, vrho: vrho, vsigma: vsigma)
}

private func applyKernel(_ f: Functional, nspin: Int, rho: [Double], sigma: [Double],
                         drho: [Double], dsigma: [Double]) throws -> (dvrho: [Double], dvsigma: [Double]) {
    let np = rho.count / nspin
    let isGGA = f.family == .gga
    var dvrho = [Double](repeating: .nan, count: nspin * np)
    var dvsigma = [Double](repeating: .nan, count: isGGA ? (nspin == 1 ? 1 : 3) * np : 0)
    try rho.withUnsafeBufferPointer { r in
        try sigma.withUnsafeBufferPointer { s in
            try drho.withUnsafeBufferPointer { dr in
                try dsigma.withUnsafeBufferPointer { ds in
                    try dvrho.withUnsafeMutableBufferPointer { vr in
                        try dvsigma.withUnsafeMutableBufferPointer { vs in
                            try f.applyKernel(nspin: nspin, npoints: np, rho: r.baseAddress!, sigma: s.baseAddress,
                                              drho: dr.baseAddress!, dsigma: ds.baseAddress,
                                              dvrho: vr.baseAddress!, dvsigma: vs.baseAddress)
                        }
                    }
                }
            }
        }
    }
    return (dvrho, dvsigma)
}

/// Smooth points away from every threshold and from full polarisation, spin-major:
/// densities 1e-4 to 200, zeta in {-0.6, 0, 0.35, 0.8}, reduced gradients 0.3 and 1.7, and
/// up/down gradients at an angle. For nspin = 1 the zeta = 0 points.
private func smoothPoints(nspin: Int) -> (rho: [Double], sigma: [Double]) {
    var up: [Double] = [], down: [Double] = [], uu: [Double] = [], ud: [Double] = [], dd: [Double] = []
    for n in [1e-4, 3e-3, 0.08, 1.1, 14.0, 200.0] {
        for zeta in nspin == 1 ? [0.0] : [-0.6, 0.0, 0.35, 0.8] {
            for (s, angle) in [(0.3, 0.4), (1.7, 2.5)] {
                let ru = 0.5 * n * (1 + zeta), rd = 0.5 * n * (1 - zeta)
                let c = 2 * pow(6 * Double.pi * Double.pi, 1.0 / 3.0) * s
                let gu = c * pow(ru, 4.0 / 3.0), gd = 0.7 * c * pow(rd, 4.0 / 3.0)
                up.append(ru); down.append(rd)
                uu.append(gu * gu); ud.append(gu * gd * cos(angle)); dd.append(gd * gd)
            }
        }
    }
    if nspin == 1 {
        return (zip(up, down).map { $0 + $1 }, (0..<up.count).map { uu[$0] + 2 * ud[$0] + dd[$0] })
    }
    return (up + down, uu + ud + dd)
}

private let builtinNames = ["lda,pw", "lda,pw_mod", "lda,vwn", "teter", "pbe", "lda_x", "gga_x_pbe"]

final class XCTests: XCTestCase {
    // MARK: - Against libxc

    /// e, vrho and vsigma of every built-in, unpolarised and polarised, against libxc 7.0.0 through
    /// PySCF's eval_xc: total densities 1e-16 to 1e3 (including points just above and below libxc's
    /// thresholds), zeta in {-1, -0.5, 0, 0.3, 1}, reduced gradients 0 to 5 with up/down gradients
    /// at random angles, and PBE with overridden kappa, mu and beta (libxc ext_params).
    func test_builtins_match_libxc_energy_and_potentials_to_1e10_relative() throws {
        let reference = try LibxcReference.load()
        XCTAssertEqual(reference.libxcVersion, "7.0.0")
        XCTAssertEqual(Set(reference.cases.map(\.name)), Set(builtinNames))
        var report = ["max relative error against libxc \(reference.libxcVersion) (e, vrho, vsigma):"]
        for c in reference.cases {
            let f = try FunctionalRegistry.shared.make(c.name, parameters: c.parameters)
            XCTAssertEqual(f.family.rawValue, c.family)
            let out = try evaluate(f, nspin: c.nspin, rho: c.rho, sigma: c.sigma ?? [])
            let describe = { (i: Int) in
                "rho \((0..<c.nspin).map { c.rho[$0 * c.npoints + i] }) sigma \(c.sigma.map { s in (0..<c.nsigma).map { s[$0 * c.npoints + i] } } ?? [])"
            }
            let e = compare(out.e, c.e, blocks: 1, npoints: c.npoints, describe: describe)
            let vrho = compare(out.vrho, c.vrho, blocks: c.nspin, npoints: c.npoints, describe: describe)
            XCTAssertLessThan(e.worst, 1e-10, "e of \(c.label):\n\(e.report)")
            XCTAssertLessThan(vrho.worst, 1e-10, "vrho of \(c.label):\n\(vrho.report)")
            var vsigmaWorst = 0.0
            if let vsigmaReference = c.vsigma {
                let vsigma = compare(out.vsigma, vsigmaReference, blocks: c.nsigma, npoints: c.npoints,
                                     floor: vsigmaScale(e: c.e, n: c.n), describe: describe)
                XCTAssertLessThan(vsigma.worst, 1e-10, "vsigma of \(c.label):\n\(vsigma.report)")
                vsigmaWorst = vsigma.worst
            }
            report.append(String(format: "  %-44@ %4d points  e %.1e  vrho %.1e  vsigma %.1e",
                                 c.label as NSString, c.npoints, e.worst, vrho.worst, vsigmaWorst))
        }
        print(report.joined(separator: "\n"))
    }

    /// The kernel against libxc's second derivatives (v2rho2, v2rhosigma, v2sigma2) contracted in
    /// the generator script with the same perturbation, on the same points as above.
    func test_builtin_kernels_match_libxc_second_derivatives_to_1e10_relative() throws {
        let reference = try LibxcReference.load()
        var report = ["max relative error of the kernel against libxc \(reference.libxcVersion) (dvrho, dvsigma):"]
        for c in reference.cases {
            let f = try FunctionalRegistry.shared.make(c.name, parameters: c.parameters)
            let out = try applyKernel(f, nspin: c.nspin, rho: c.rho, sigma: c.sigma ?? [],
                                      drho: c.drho, dsigma: c.dsigma ?? [])
            let describe = { (i: Int) in "rho \((0..<c.nspin).map { c.rho[$0 * c.npoints + i] })" }
            let dvrho = compare(out.dvrho, c.dvrho, blocks: c.nspin, npoints: c.npoints, describe: describe)
            XCTAssertLessThan(dvrho.worst, 1e-10, "dvrho of \(c.label):\n\(dvrho.report)")
            var dvsigmaWorst = 0.0
            if let dvsigmaReference = c.dvsigma {
                // At sigma = 0 the exchange and correlation parts of d(vsigma)/drho cancel as those
                // of vsigma do: judge against vsigma's scale times |drho| / n.
                let n = c.n
                let dn = (0..<c.npoints).map { i in (0..<c.nspin).map { abs(c.drho[$0 * c.npoints + i]) }.reduce(0, +) }
                let floor = zip(vsigmaScale(e: c.e, n: n), zip(dn, n)).map { $0 * ($1.1 > 0 ? $1.0 / $1.1 : 0) }
                let dvsigma = compare(out.dvsigma, dvsigmaReference, blocks: c.nsigma, npoints: c.npoints,
                                      floor: floor, describe: describe)
                XCTAssertLessThan(dvsigma.worst, 1e-10, "dvsigma of \(c.label):\n\(dvsigma.report)")
                dvsigmaWorst = dvsigma.worst
            }
            report.append(String(format: "  %-44@ dvrho %.1e  dvsigma %.1e", c.label as NSString, dvrho.worst, dvsigmaWorst))
        }
        print(report.joined(separator: "\n"))
    }

    func test_missing_libxc_reference_file_is_an_error_not_a_skip() throws {
        XCTAssertTrue(FileManager.default.fileExists(atPath: LibxcReference.path),
                      "\(LibxcReference.path) is missing; run python/tests/reference/make_libxc_reference.py")
    }

    // MARK: - Self-consistency of the derivatives

    /// vrho and vsigma are the derivatives of e: central differences with relative step 1e-5.
    func test_potentials_are_central_finite_differences_of_the_energy() throws {
        for name in builtinNames {
            let f = try FunctionalRegistry.shared.make(name)
            for nspin in [1, 2] {
                let (rho, sigma) = smoothPoints(nspin: nspin)
                let np = rho.count / nspin
                let out = try evaluate(f, nspin: nspin, rho: rho, sigma: sigma)
                let inputs = f.family == .gga ? [(rho, true), (sigma, false)] : [(rho, true)]
                for (values, isRho) in inputs {
                    for k in 0..<values.count {
                        let h = 1e-5 * max(abs(values[k]), 1e-3 * (isRho ? values[k % np] : abs(values[k])))
                        var plus = values, minus = values
                        plus[k] += h
                        minus[k] -= h
                        let ePlus = try evaluate(f, nspin: nspin, rho: isRho ? plus : rho, sigma: isRho ? sigma : plus).e
                        let eMinus = try evaluate(f, nspin: nspin, rho: isRho ? minus : rho, sigma: isRho ? sigma : minus).e
                        let i = k % np
                        let fd = (ePlus[i] - eMinus[i]) / (2 * h)
                        let analytic = isRho ? out.vrho[k] : out.vsigma[k]
                        // Judge vsigma_ud, which can vanish, on the scale of its siblings.
                        let siblings = isRho ? out.vrho : out.vsigma
                        let scale = stride(from: i, to: siblings.count, by: np).map { abs(siblings[$0]) }.max() ?? 0
                        XCTAssertEqual(analytic, fd, accuracy: 1e-6 * scale,
                                       "\(name) nspin=\(nspin) \(isRho ? "vrho" : "vsigma")[\(k)]")
                    }
                }
            }
        }
    }

    /// The kernel applied to a perturbation d equals the central difference of the potentials
    /// along d, relative step 1e-4.
    func test_kernel_matches_central_finite_differences_of_the_potentials() throws {
        for name in builtinNames {
            let f = try FunctionalRegistry.shared.make(name)
            let isGGA = f.family == .gga
            for nspin in [1, 2] {
                let (rho, sigma) = smoothPoints(nspin: nspin)
                let np = rho.count / nspin
                // A perturbation of the size of each input, with both signs.
                let drho = rho.indices.map { k in rho[k] * (0.3 + 0.5 * sin(Double(3 * k + 1))) }
                let dsigma = sigma.indices.map { k in (abs(sigma[k]) + 1e-3 * pow(rho[k % np], 8.0 / 3.0)) * cos(Double(5 * k + 2)) }
                let h = 1e-4
                let plus = try evaluate(f, nspin: nspin, rho: zip(rho, drho).map { $0 + h * $1 },
                                        sigma: isGGA ? zip(sigma, dsigma).map { $0 + h * $1 } : sigma)
                let minus = try evaluate(f, nspin: nspin, rho: zip(rho, drho).map { $0 - h * $1 },
                                         sigma: isGGA ? zip(sigma, dsigma).map { $0 - h * $1 } : sigma)
                let k = try applyKernel(f, nspin: nspin, rho: rho, sigma: sigma, drho: drho, dsigma: dsigma)
                let fdRho = zip(plus.vrho, minus.vrho).map { ($0 - $1) / (2 * h) }
                let dvrho = compare(k.dvrho, fdRho, blocks: nspin, npoints: np) { "rho \(rho[$0])" }
                XCTAssertLessThan(dvrho.worst, 1e-6, "dvrho of \(name) nspin=\(nspin):\n\(dvrho.report)")
                if isGGA {
                    let fdSigma = zip(plus.vsigma, minus.vsigma).map { ($0 - $1) / (2 * h) }
                    let dvsigma = compare(k.dvsigma, fdSigma, blocks: nspin == 1 ? 1 : 3, npoints: np) { "rho \(rho[$0])" }
                    XCTAssertLessThan(dvsigma.worst, 1e-6, "dvsigma of \(name) nspin=\(nspin):\n\(dvsigma.report)")
                }
            }
        }
    }

    /// An unpolarised density evaluated as nspin = 2 with rho_up = rho_down = rho/2 and
    /// sigma_ab = sigma/4 gives the same e, vrho_s = vrho, and vsigma = (2 vsigma_uu + vsigma_ud)/4.
    func test_polarised_evaluation_at_zero_polarisation_equals_unpolarised() throws {
        let (rho, sigma) = smoothPoints(nspin: 1)
        let np = rho.count
        for name in builtinNames {
            let f = try FunctionalRegistry.shared.make(name)
            let unpolarised = try evaluate(f, nspin: 1, rho: rho, sigma: sigma)
            let quarter = sigma.map { $0 / 4 }
            let polarised = try evaluate(f, nspin: 2, rho: rho.map { $0 / 2 } + rho.map { $0 / 2 },
                                         sigma: quarter + quarter + quarter)
            for i in 0..<np {
                XCTAssertEqual(polarised.e[i], unpolarised.e[i], accuracy: 1e-14 * abs(unpolarised.e[i]), name)
                XCTAssertEqual(polarised.vrho[i], unpolarised.vrho[i], accuracy: 1e-14 * abs(unpolarised.vrho[i]), name)
                XCTAssertEqual(polarised.vrho[np + i], unpolarised.vrho[i], accuracy: 1e-14 * abs(unpolarised.vrho[i]), name)
                if f.family == .gga {
                    let combined = (2 * polarised.vsigma[i] + polarised.vsigma[np + i]) / 4
                    let scale = abs(polarised.vsigma[i]) + abs(polarised.vsigma[np + i])
                    XCTAssertEqual(combined, unpolarised.vsigma[i], accuracy: 1e-14 * scale, name)
                }
            }
        }
    }

    // MARK: - Physical limits

    /// At sigma = 0 the PBE enhancement factor is 1 and H = 0, so PBE is Slater exchange plus
    /// PW92 with the modified constants: libxc's GGA_X_PBE + GGA_C_PBE versus LDA_X + LDA_C_PW_MOD.
    func test_pbe_at_zero_gradient_equals_slater_plus_modified_pw92() throws {
        let pbe = try FunctionalRegistry.shared.make("pbe")
        let lda = try FunctionalRegistry.shared.make("lda,pw_mod")
        for nspin in [1, 2] {
            let (rho, sigma) = smoothPoints(nspin: nspin)
            let zero = [Double](repeating: 0, count: sigma.count)
            let a = try evaluate(pbe, nspin: nspin, rho: rho, sigma: zero)
            let b = try evaluate(lda, nspin: nspin, rho: rho, sigma: [])
            for k in a.e.indices { XCTAssertEqual(a.e[k], b.e[k], accuracy: 1e-13 * abs(b.e[k])) }
            for k in a.vrho.indices { XCTAssertEqual(a.vrho[k], b.vrho[k], accuracy: 1e-13 * abs(b.vrho[k])) }
        }
    }

    /// For |grad n| -> infinity PBE's F(s) -> 1 + kappa and H -> -eps_c, so e -> (1 + kappa) e_x^LDA
    /// with e_x^LDA = -(3/4) (3/pi)^(1/3) n^(4/3) (PBE paper, Eqs. 7 and 14). Checks the kappa override.
    func test_pbe_large_gradient_limit_is_one_plus_kappa_times_slater_exchange() throws {
        for kappa in [0.804, 0.5, 1.245] {
            let f = try FunctionalRegistry.shared.make("pbe", parameters: ["kappa": kappa])
            for n in [0.01, 1.0, 50.0] {
                let s = 1e5
                let sigma = pow(2 * pow(3 * Double.pi * Double.pi, 1.0 / 3.0) * s * pow(n, 4.0 / 3.0), 2)
                let e = try evaluate(f, nspin: 1, rho: [n], sigma: [sigma]).e[0]
                let slater = -0.75 * pow(3 / Double.pi, 1.0 / 3.0) * pow(n, 4.0 / 3.0)
                XCTAssertEqual(e, (1 + kappa) * slater, accuracy: 1e-6 * abs(slater), "kappa \(kappa) n \(n)")
            }
        }
    }

    /// Below the density threshold everything is zero; negative densities are screened like libxc.
    func test_points_below_the_density_threshold_give_zero() throws {
        for name in builtinNames {
            let f = try FunctionalRegistry.shared.make(name)
            let out = try evaluate(f, nspin: 2, rho: [1e-17, -1.0, 0, 3e-16, 0, 0], sigma: [1, 0, 0, 0, 0, 0, 1, 0, 0])
            XCTAssertEqual(out.e, [0, 0, 0], name)
            XCTAssertEqual(out.vrho, [0, 0, 0, 0, 0, 0], name)
            if f.family == .gga { XCTAssertEqual(out.vsigma, [Double](repeating: 0, count: 9), name) }
        }
    }

    // MARK: - Registry

    func test_registry_accepts_canonical_names_case_insensitively_and_libxc_aliases() throws {
        let registry = FunctionalRegistry()
        let spellings = [
            ("lda,pw", ["LDA,PW", "lda_x+lda_c_pw", "LDA_X + LDA_C_PW", "lda_x,lda_c_pw"]),
            ("lda,vwn", ["Lda,Vwn", "lda_x + lda_c_vwn", "lda_x+lda_c_vwn"]),
            ("teter", ["TETER", "lda_xc_teter93", "teter93"]),
            ("pbe", ["PBE", "gga_x_pbe + gga_c_pbe", "gga_x_pbe,gga_c_pbe"]),
            ("lda,pw_mod", ["lda_x+lda_c_pw_mod"]),
        ]
        let (rho, sigma) = smoothPoints(nspin: 1)
        for (canonical, aliases) in spellings {
            let reference = try evaluate(try registry.make(canonical), nspin: 1, rho: rho, sigma: sigma)
            for alias in aliases {
                let f = try registry.make(alias)
                XCTAssertEqual(f.name, canonical, alias)
                XCTAssertEqual(try evaluate(f, nspin: 1, rho: rho, sigma: sigma).e, reference.e, alias)
                XCTAssertEqual(registry.record(named: alias)?.name, canonical, alias)
            }
        }
    }

    func test_unknown_functional_name_is_an_input_error_listing_the_known_names() {
        XCTAssertThrowsError(try FunctionalRegistry.shared.make("b3lyp")) { error in
            guard case let .input(field, message)? = error as? SolidXCError else {
                return XCTFail("expected SolidXCError.input, got \(error)")
            }
            XCTAssertEqual(field, "xc")
            XCTAssertTrue(message.contains("unknown functional 'b3lyp'"), message)
            for name in builtinNames + ["lda_x+lda_c_pw", "gga_x_pbe+gga_c_pbe", "lda_xc_teter93"] {
                XCTAssertTrue(message.contains(name), "\(name) missing from: \(message)")
            }
        }
    }

    func test_unknown_or_out_of_range_parameter_is_an_input_error_naming_it() {
        func inputError(_ body: () throws -> Functional) -> String? {
            do {
                _ = try body()
                return nil
            } catch let SolidXCError.input(field, message) {
                XCTAssertEqual(field, "xc")
                return message
            } catch {
                XCTFail("unexpected \(error)")
                return nil
            }
        }
        let typo = inputError { try FunctionalRegistry.shared.make("pbe", parameters: ["kapa": 0.5]) }
        XCTAssertEqual(typo, "functional 'pbe' has no parameter 'kapa'; its parameters are: kappa, mu, beta")
        let none = inputError { try FunctionalRegistry.shared.make("lda,pw", parameters: ["kappa": 0.5]) }
        XCTAssertEqual(none, "functional 'lda,pw' has no parameter 'kappa'; it has no parameters")
        let negative = inputError { try FunctionalRegistry.shared.make("pbe", parameters: ["kappa": -1]) }
        XCTAssertEqual(negative, "parameter 'kappa' of 'pbe' is -1.0; expected a finite value > 0")
        let nan = inputError { try FunctionalRegistry.shared.make("pbe", parameters: ["beta": .nan]) }
        XCTAssertEqual(nan, "parameter 'beta' of 'pbe' is nan; expected a finite value >= 0")
    }

    /// PBE records libxc's parameters (GGA_X_PBE _kappa, _mu; GGA_C_PBE _beta) with libxc's
    /// defaults, and an instance reports the values it was made with.
    func test_pbe_exposes_kappa_mu_beta_with_libxc_defaults_and_overrides() throws {
        let record = try XCTUnwrap(FunctionalRegistry.shared.record(named: "pbe"))
        XCTAssertEqual(record.family, .gga)
        XCTAssertEqual(record.parameters.map(\.name), ["kappa", "mu", "beta"])
        XCTAssertEqual(record.parameters.map(\.value), [0.804, 0.2195149727645171, 0.06672455060314922])
        XCTAssertFalse(record.references.isEmpty)
        let f = try FunctionalRegistry.shared.make("pbe", parameters: ["MU": 10.0 / 81.0, "beta": 0.046])
        XCTAssertEqual(f.parameters.map(\.value), [0.804, 10.0 / 81.0, 0.046])
        XCTAssertEqual(try FunctionalRegistry.shared.make("lda,vwn").parameters, [])
    }

    func test_register_lookup_and_unregister_a_user_functional() throws {
        let registry = FunctionalRegistry()
        let user = ScaledFunctional(name: "half-teter", base: try registry.make("teter"), factor: 0.5)
        let id = registry.register(user)
        XCTAssertGreaterThanOrEqual(id, FunctionalRegistry.firstUserID)
        XCTAssertTrue(try registry.functional(id: id) === user)
        XCTAssertTrue(try registry.make("HALF-TETER") === user)
        let record = try XCTUnwrap(registry.record(id: id))
        XCTAssertEqual(record.name, "half-teter")
        XCTAssertFalse(record.isBuiltin)
        XCTAssertTrue(registry.records.contains(record))
        XCTAssertThrowsError(try registry.make("half-teter", parameters: ["factor": 1]))
        let second = registry.register(ScaledFunctional(name: "other", base: user, factor: 2))
        XCTAssertNotEqual(second, id)

        try registry.unregister(id: id)
        XCTAssertNil(registry.record(id: id))
        XCTAssertThrowsError(try registry.functional(id: id))
        XCTAssertThrowsError(try registry.make("half-teter"))
        XCTAssertThrowsError(try registry.unregister(id: id)) { error in
            XCTAssertEqual((error as? SolidXCError)?.description.hasPrefix("xc: no registered functional has id \(id)"), true)
        }
        // Ids are not reused.
        XCTAssertGreaterThan(registry.register(user), second)
    }

    func test_builtins_have_ids_and_cannot_be_unregistered() throws {
        let registry = FunctionalRegistry()
        let builtins = registry.records.filter(\.isBuiltin)
        XCTAssertEqual(Set(builtins.map(\.name)), Set(builtinNames))
        XCTAssertEqual(Set(builtins.map(\.id)).count, builtins.count)
        for record in builtins {
            XCTAssertLessThan(record.id, FunctionalRegistry.firstUserID)
            XCTAssertEqual(try registry.functional(id: record.id).name, record.name)
            XCTAssertThrowsError(try registry.unregister(id: record.id)) { error in
                guard case .input(field: "xc", message: _)? = error as? SolidXCError else {
                    return XCTFail("expected an xc input error, got \(error)")
                }
            }
        }
    }

    func test_registry_is_safe_under_concurrent_registration_and_lookup() throws {
        let registry = FunctionalRegistry()
        let base = try registry.make("lda,pw")
        let ids = UnsafeMutableBufferPointer<Int32>.allocate(capacity: 64)
        defer { ids.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 64) { k in
            ids[k] = registry.register(ScaledFunctional(name: "user\(k)", base: base, factor: Double(k)))
            _ = try? registry.make("pbe")
            _ = registry.records
        }
        XCTAssertEqual(Set(ids).count, 64)
        let found = UnsafeMutableBufferPointer<Bool>.allocate(capacity: 64)
        defer { found.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 64) { k in
            let name = (try? registry.functional(id: ids[k]))?.name
            let removed: Bool
            do {
                try registry.unregister(id: ids[k])
                removed = true
            } catch {
                removed = false
            }
            found[k] = name == "user\(k)" && removed
        }
        XCTAssertTrue(found.allSatisfy { $0 })
        XCTAssertEqual(registry.records.filter { !$0.isBuiltin }.count, 0)
    }

    // MARK: - Input validation

    func test_evaluate_rejects_bad_nspin_and_missing_gga_arrays() throws {
        let pbe = try FunctionalRegistry.shared.make("pbe")
        var e = [0.0], v = [0.0, 0.0], vs = [0.0, 0.0, 0.0]
        XCTAssertThrowsError(try pbe.evaluate(nspin: 3, npoints: 1, rho: [1.0], sigma: [0.0], e: &e, vrho: &v, vsigma: &vs)) {
            XCTAssertEqual($0 as? SolidXCError, .input(field: "nspin", message: "nspin is 3; expected 1 or 2"))
        }
        XCTAssertThrowsError(try pbe.evaluate(nspin: 1, npoints: 1, rho: [1.0], sigma: nil, e: &e, vrho: &v, vsigma: &vs)) {
            guard case .input(field: "sigma", message: _)? = $0 as? SolidXCError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try pbe.evaluate(nspin: 1, npoints: 1, rho: [1.0], sigma: [0.0], e: &e, vrho: &v, vsigma: nil)) {
            guard case .input(field: "vsigma", message: _)? = $0 as? SolidXCError else { return XCTFail("\($0)") }
        }
        var dv = [0.0], dvs = [0.0]
        XCTAssertThrowsError(try pbe.applyKernel(nspin: 1, npoints: 1, rho: [1.0], sigma: [0.0], drho: [1.0], dsigma: nil,
                                                 dvrho: &dv, dvsigma: &dvs)) {
            guard case .input(field: "dsigma", message: _)? = $0 as? SolidXCError else { return XCTFail("\($0)") }
        }
        // An LDA needs no sigma.
        let lda = try FunctionalRegistry.shared.make("lda,pw")
        XCTAssertNoThrow(try lda.evaluate(nspin: 1, npoints: 1, rho: [1.0], sigma: nil, e: &e, vrho: &v, vsigma: nil))
    }
}

/// A user functional for the registry tests: another functional times a constant.
private final class ScaledFunctional: Functional {
    let name: String
    let base: Functional
    let factor: Double
    var family: FunctionalFamily { base.family }
    var parameters: [FunctionalParameter] { [FunctionalParameter(name: "factor", value: factor, description: "scale")] }

    init(name: String, base: Functional, factor: Double) {
        self.name = name
        self.base = base
        self.factor = factor
    }

    func evaluate(nspin: Int, npoints: Int, rho: UnsafePointer<Double>, sigma: UnsafePointer<Double>?,
                  e: UnsafeMutablePointer<Double>, vrho: UnsafeMutablePointer<Double>,
                  vsigma: UnsafeMutablePointer<Double>?) throws {
        try base.evaluate(nspin: nspin, npoints: npoints, rho: rho, sigma: sigma, e: e, vrho: vrho, vsigma: vsigma)
        for i in 0..<npoints { e[i] *= factor }
        for i in 0..<nspin * npoints { vrho[i] *= factor }
        if let vsigma { for i in 0..<(nspin == 1 ? 1 : 3) * npoints { vsigma[i] *= factor } }
    }

    func applyKernel(nspin: Int, npoints: Int, rho: UnsafePointer<Double>, sigma: UnsafePointer<Double>?,
                     drho: UnsafePointer<Double>, dsigma: UnsafePointer<Double>?,
                     dvrho: UnsafeMutablePointer<Double>, dvsigma: UnsafeMutablePointer<Double>?) throws {
        try base.applyKernel(nspin: nspin, npoints: npoints, rho: rho, sigma: sigma, drho: drho, dsigma: dsigma,
                             dvrho: dvrho, dvsigma: dvsigma)
        for i in 0..<nspin * npoints { dvrho[i] *= factor }
        if let dvsigma { for i in 0..<(nspin == 1 ? 1 : 3) * npoints { dvsigma[i] *= factor } }
    }
}
