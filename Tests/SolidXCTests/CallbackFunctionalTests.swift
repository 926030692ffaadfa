import Dispatch
import XCTest
@testable import SolidXC
#if canImport(Glibc)
import Glibc
#endif

// Tests of Sources/SolidXC/XC/CallbackFunctional.swift (user functionals evaluated through C
// function pointers, registered by name and used by the SCF) and of the built-ins' exact
// parameter derivatives.

// MARK: - An independent LDA, written out by hand

/// Slater exchange + Perdew-Wang 92 correlation for an unpolarised density, with the derivative
/// worked out on paper rather than by the built-ins' dual numbers:
/// e_x = -(3/4)(3/pi)^(1/3) n^(4/3), v_x = (4/3) e_x / n;
/// e_c = n G(rs), v_c = G - (rs/3) G'(rs), with PW92's G and constants (PRB 45, 13244, Table I,
/// row eps_c(rs, 0), as libxc's LDA_C_PW prints them). Points below 1e-15 give zero, as libxc does.
private enum HandWrittenLDA {
    static let a = 0.031091, alpha1 = 0.21370
    static let beta = (7.5957, 3.5876, 1.6382, 0.49294)

    static func point(_ n: Double) -> (e: Double, v: Double) {
        guard n >= 1e-15 else { return (0, 0) }
        let cx = 0.75 * cbrt(3 / Double.pi)
        let ex = -cx * pow(n, 4.0 / 3.0)
        let vx = 4.0 / 3.0 * ex / n
        let rs = cbrt(3 / (4 * Double.pi * n))
        let sq = rs.squareRoot()
        let q = beta.0 * sq + beta.1 * rs + beta.2 * rs * sq + beta.3 * rs * rs
        let dq = beta.0 / (2 * sq) + beta.1 + 1.5 * beta.2 * sq + 2 * beta.3 * rs
        let x = 1 / (2 * a * q)
        let g = -2 * a * (1 + alpha1 * rs) * log(1 + x)
        let dg = -2 * a * alpha1 * log(1 + x) + (1 + alpha1 * rs) * dq / (q * q * (1 + x))
        return (ex + n * g, vx + g - rs / 3 * dg)
    }
}

/// An `sxc_eval_cb` made of the hand-written LDA (unpolarised only).
private let handWrittenLDA: XCEvalCallback = { _, npoints, nspin, rho, _, e, vrho, _ in
    guard nspin == 1, let rho, let e, let vrho else { return 2 }
    for i in 0..<Int(npoints) {
        (e[i], vrho[i]) = HandWrittenLDA.point(rho[i])
    }
    return 0
}

// MARK: - Callbacks that misbehave

private let failingEval: XCEvalCallback = { _, _, _, _, _, _, _, _ in 7 }

/// Correct values except a NaN in vrho at point 5.
private let nanEval: XCEvalCallback = { userData, npoints, nspin, rho, sigma, e, vrho, vsigma in
    let status = handWrittenLDA(userData, npoints, nspin, rho, sigma, e, vrho, vsigma)
    if npoints > 5 { vrho?[5] = .nan }
    return status
}

/// Writes vrho but forgets e.
private let forgetfulEval: XCEvalCallback = { _, npoints, _, rho, _, _, vrho, _ in
    for i in 0..<Int(npoints) { vrho?[i] = HandWrittenLDA.point(rho?[i] ?? 0).v }
    return 0
}

/// The state a callback reaches through user_data.
private final class CallbackState {
    var calls = 0
    var id: Int32 = -1
    /// Unregister the functional from inside its own callback at this call (0: never).
    var unregisterAtCall = 0
    var finished = false
    let entered = DispatchSemaphore(value: 0)
    var unregisterError: Error?
    /// What a call made on another thread returned.
    var result: Result<[Double], Error>?
}

private func state(_ userData: UnsafeMutableRawPointer?) -> CallbackState? {
    userData.map { Unmanaged<CallbackState>.fromOpaque($0).takeUnretainedValue() }
}

/// The hand-written LDA that counts its calls and, at call `unregisterAtCall`, unregisters itself.
private let selfUnregisteringEval: XCEvalCallback = { userData, npoints, nspin, rho, sigma, e, vrho, vsigma in
    guard let s = state(userData) else { return 3 }
    s.calls += 1
    if s.calls == s.unregisterAtCall {
        do { try FunctionalRegistry.shared.unregister(id: s.id) } catch { s.unregisterError = error }
    }
    return handWrittenLDA(userData, npoints, nspin, rho, sigma, e, vrho, vsigma)
}

/// The hand-written LDA that announces it has started, then takes 0.3 s.
private let slowEval: XCEvalCallback = { userData, npoints, nspin, rho, sigma, e, vrho, vsigma in
    guard let s = state(userData) else { return 3 }
    s.entered.signal()
    usleep(300_000)
    let status = handWrittenLDA(userData, npoints, nspin, rho, sigma, e, vrho, vsigma)
    s.finished = true
    return status
}

/// The exact LDA exchange kernel, d2e_x/dn2 = (4/9) e_x / n^2, applied to drho.
private let slaterKernel: XCKernelCallback = { _, npoints, _, rho, _, drho, _, dvrho, _ in
    guard let rho, let drho, let dvrho else { return 2 }
    let cx = 0.75 * cbrt(3 / Double.pi)
    for i in 0..<Int(npoints) { dvrho[i] = -(4.0 / 9.0) * cx * pow(rho[i], -2.0 / 3.0) * drho[i] }
    return 0
}

// MARK: - Helpers

/// Densities from 1e-6 to 50 electrons/bohr^3 and two below libxc's threshold.
private let densities: [Double] = [1e-16, 5e-16, 1e-6, 3e-4, 0.01, 0.08, 0.5, 2.0, 50.0]

private func evaluate(_ f: Functional, rho: [Double]) throws -> (e: [Double], vrho: [Double]) {
    var e = [Double](repeating: 0, count: rho.count), v = e
    try f.evaluate(nspin: 1, npoints: rho.count, rho: rho, sigma: nil, e: &e, vrho: &v, vsigma: nil)
    return (e, v)
}

private func siliconOptions(_ xc: String) -> SCFOptions {
    var o = SCFOptions()
    o.xc = xc
    o.tol = 1e-12
    return o
}

private func expectCallbackError(_ expression: @autoclosure () throws -> Any, containing parts: [String],
                                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try expression(), file: file, line: line) { error in
        guard case let .callback(message)? = error as? SolidXCError else {
            return XCTFail("expected a callback error, got \(error)", file: file, line: line)
        }
        for part in parts {
            XCTAssertTrue(message.contains(part), "'\(part)' not in: \(message)", file: file, line: line)
        }
    }
}

/// Smooth GGA points, unpolarised (zeta = 0) or polarised, away from every threshold, spin-major.
private func ggaPoints(nspin: Int) -> (rho: [Double], sigma: [Double]) {
    var up: [Double] = [], down: [Double] = [], uu: [Double] = [], ud: [Double] = [], dd: [Double] = []
    for n in [2e-3, 0.05, 0.7, 9.0] {
        for zeta in nspin == 1 ? [0.0] : [-0.4, 0.0, 0.6] {
            for s in [0.2, 1.3] {
                let ru = 0.5 * n * (1 + zeta), rd = 0.5 * n * (1 - zeta)
                let c = 2 * pow(6 * Double.pi * Double.pi, 1.0 / 3.0) * s
                let gu = c * pow(ru, 4.0 / 3.0), gd = 0.8 * c * pow(rd, 4.0 / 3.0)
                up.append(ru); down.append(rd)
                uu.append(gu * gu); ud.append(0.3 * gu * gd); dd.append(gd * gd)
            }
        }
    }
    if nspin == 1 { return (zip(up, down).map { $0 + $1 }, (0..<up.count).map { uu[$0] + 2 * ud[$0] + dd[$0] }) }
    return (up + down, uu + ud + dd)
}

private struct GGAOutputs {
    var e: [Double], vrho: [Double], vsigma: [Double]
}

private func evaluateGGA(_ f: Functional, nspin: Int, rho: [Double], sigma: [Double]) throws -> GGAOutputs {
    let np = rho.count / nspin
    var out = GGAOutputs(e: .init(repeating: 0, count: np), vrho: .init(repeating: 0, count: nspin * np),
                         vsigma: .init(repeating: 0, count: (nspin == 1 ? 1 : 3) * np))
    try f.evaluate(nspin: nspin, npoints: np, rho: rho, sigma: sigma, e: &out.e, vrho: &out.vrho, vsigma: &out.vsigma)
    return out
}

private func parameterDerivative(_ f: Functional, _ name: String, nspin: Int, rho: [Double], sigma: [Double]) throws -> GGAOutputs {
    let np = rho.count / nspin
    var out = GGAOutputs(e: .init(repeating: 0, count: np), vrho: .init(repeating: 0, count: nspin * np),
                         vsigma: .init(repeating: 0, count: (nspin == 1 ? 1 : 3) * np))
    try f.parameterDerivative(name, nspin: nspin, npoints: np, rho: rho, sigma: sigma,
                              de: &out.e, dvrho: &out.vrho, dvsigma: &out.vsigma)
    return out
}

final class CallbackFunctionalTests: XCTestCase {
    // MARK: - The SCF through a callback

    /// The hand-written Slater + PW92 agrees point by point with the built-in "lda,pw" (which libxc
    /// checks), so the comparison below tests the callback path, not the formula.
    func test_hand_written_lda_matches_builtin_lda_pw_point_by_point() throws {
        let builtin = try evaluate(try FunctionalRegistry.shared.make("lda,pw"), rho: densities)
        let callback = CallbackFunctional(name: "hand-lda", family: .lda, eval: handWrittenLDA, kernel: nil, userData: nil)
        let mine = try evaluate(callback, rho: densities)
        for i in densities.indices {
            XCTAssertEqual(mine.e[i], builtin.e[i], accuracy: 1e-13 * abs(builtin.e[i]), "e at n = \(densities[i])")
            XCTAssertEqual(mine.vrho[i], builtin.vrho[i], accuracy: 1e-13 * abs(builtin.vrho[i]), "vrho at n = \(densities[i])")
        }
    }

    /// A functional registered by name runs the SCF exactly as the built-in does: silicon, ecut 10,
    /// 2x2x2 k-points, the same total energy to 1e-10 Ha.
    func test_registered_callback_lda_gives_the_builtin_lda_pw_scf_energy() throws {
        let f = CallbackFunctional(name: "hand-lda-scf", family: .lda, eval: handWrittenLDA, kernel: nil, userData: nil)
        let id = try FunctionalRegistry.shared.register(checkingName: f)
        defer { try? FunctionalRegistry.shared.unregister(id: id) }
        XCTAssertEqual(f.id, id)
        let spec = Fixtures.silicon(ecut: 10, kpts: [2, 2, 2])
        let reference = try runSCF(system: spec, options: siliconOptions("lda,pw"))
        let result = try runSCF(system: spec, options: siliconOptions("HAND-LDA-SCF"))
        XCTAssertTrue(result.converged)
        XCTAssertEqual(result.energy, reference.energy, accuracy: 1e-10)
        print(String(format: "Si ecut 10 k222: lda,pw %.12f Ha, callback %.12f Ha, difference %.1e Ha",
                     reference.energy, result.energy, result.energy - reference.energy))
    }

    // MARK: - Failures are errors that name the functional

    func test_nonzero_status_is_a_callback_error_naming_functional_id_and_status() throws {
        let f = CallbackFunctional(name: "failing", family: .lda, eval: failingEval, kernel: nil, userData: nil)
        let id = try FunctionalRegistry.shared.register(checkingName: f)
        defer { try? FunctionalRegistry.shared.unregister(id: id) }
        expectCallbackError(try evaluate(f, rho: densities), containing: ["'failing'", "(id \(id))", "status 7", "eval"])
        expectCallbackError(try runSCF(system: Fixtures.silicon(ecut: 6), options: siliconOptions("failing")),
                            containing: ["'failing'", "status 7"])
    }

    func test_nan_output_is_a_callback_error_naming_output_and_point() throws {
        let f = CallbackFunctional(name: "nan-at-5", family: .lda, eval: nanEval, kernel: nil, userData: nil)
        expectCallbackError(try evaluate(f, rho: densities), containing: ["'nan-at-5'", "non-finite vrho", "point 5"])
        let g = CallbackFunctional(name: "forgets-e", family: .lda, eval: forgetfulEval, kernel: nil, userData: nil)
        expectCallbackError(try evaluate(g, rho: densities), containing: ["'forgets-e'", "non-finite e", "point 0"])
    }

    func test_missing_kernel_is_a_clear_error_and_a_kernel_callback_is_checked() throws {
        let f = CallbackFunctional(name: "no-kernel", family: .lda, eval: handWrittenLDA, kernel: nil, userData: nil)
        var dv = [Double](repeating: 0, count: densities.count)
        expectCallbackError(try f.applyKernel(nspin: 1, npoints: densities.count, rho: densities, sigma: nil,
                                              drho: densities, dsigma: nil, dvrho: &dv, dvsigma: nil),
                            containing: ["'no-kernel'", "has no kernel callback", "response/backward needs one"])

        // Exchange only: the kernel callback against the built-in's second derivative is not available
        // separately, so check it against central differences of the exchange potential.
        let g = CallbackFunctional(name: "slater-kernel", family: .lda, eval: handWrittenLDA, kernel: slaterKernel, userData: nil)
        let rho = [0.01, 0.3, 4.0], drho = [1.0, -2.0, 0.5]
        var dvrho = [Double](repeating: 0, count: 3)
        try g.applyKernel(nspin: 1, npoints: 3, rho: rho, sigma: nil, drho: drho, dsigma: nil, dvrho: &dvrho, dvsigma: nil)
        let cx = 0.75 * cbrt(3 / Double.pi)
        for i in 0..<3 {
            let h = 1e-5 * rho[i]
            let vx = { (n: Double) in -4.0 / 3.0 * cx * cbrt(n) }
            let fd = (vx(rho[i] + h) - vx(rho[i] - h)) / (2 * h) * drho[i]
            XCTAssertEqual(dvrho[i], fd, accuracy: 1e-8 * abs(fd))
        }
    }

    func test_names_must_be_nonempty_and_must_not_shadow_a_builtin() {
        for name in ["", "  ", "PBE", "gga_x_pbe + gga_c_pbe", "lda_x,lda_c_pw"] {
            let f = CallbackFunctional(name: name, family: .lda, eval: handWrittenLDA, kernel: nil, userData: nil)
            XCTAssertThrowsError(try FunctionalRegistry.shared.register(checkingName: f), "'\(name)'") { error in
                guard case .input(field: "name", message: _)? = error as? SolidXCError else {
                    return XCTFail("expected a name input error, got \(error)")
                }
            }
        }
    }

    // MARK: - Unregistering

    /// The callback unregisters its own functional at its third call (as a user might, from another
    /// thread, in the middle of an SCF): the SCF stops at the next evaluation with an error naming the
    /// functional, and the callback is not called again.
    func test_unregistering_while_in_use_stops_the_scf_with_a_clear_error() throws {
        let s = CallbackState()
        s.unregisterAtCall = 3
        let userData = Unmanaged.passRetained(s).toOpaque()
        defer { Unmanaged<CallbackState>.fromOpaque(userData).release() }
        let f = CallbackFunctional(name: "vanishing", family: .lda, eval: selfUnregisteringEval, kernel: nil, userData: userData)
        s.id = try FunctionalRegistry.shared.register(checkingName: f)
        expectCallbackError(try runSCF(system: Fixtures.silicon(ecut: 6), options: siliconOptions("vanishing")),
                            containing: ["'vanishing'", "(id \(s.id))", "was unregistered while in use"])
        XCTAssertNil(s.unregisterError)
        XCTAssertEqual(s.calls, 3)
        XCTAssertFalse(f.isActive)
        expectCallbackError(try evaluate(f, rho: densities), containing: ["was unregistered while in use"])
        XCTAssertEqual(s.calls, 3)
        XCTAssertThrowsError(try FunctionalRegistry.shared.make("vanishing"))
    }

    /// Unregistering from another thread waits until the call in flight has returned, so the
    /// caller may free user_data afterwards.
    func test_unregister_waits_for_a_callback_in_flight() throws {
        let s = CallbackState()
        let userData = Unmanaged.passRetained(s).toOpaque()
        defer { Unmanaged<CallbackState>.fromOpaque(userData).release() }
        let f = CallbackFunctional(name: "slow", family: .lda, eval: slowEval, kernel: nil, userData: userData)
        let id = try FunctionalRegistry.shared.register(checkingName: f)
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            s.result = Result { try evaluate(f, rho: densities).e }
            done.signal()
        }
        s.entered.wait()
        try FunctionalRegistry.shared.unregister(id: id)
        XCTAssertTrue(s.finished, "unregister returned while the callback was still running")
        done.wait()
        XCTAssertNoThrow(try XCTUnwrap(s.result).get())
        expectCallbackError(try evaluate(f, rho: densities), containing: ["'slow'", "was unregistered while in use"])
    }

    // MARK: - Parameterised built-ins

    /// d(e, vrho, vsigma)/d(kappa, mu, beta) of PBE, unpolarised and polarised, at default and at
    /// overridden values, against central differences of `evaluate` (step 1e-4 relative; the
    /// truncation error is ~1e-8 relative).
    func test_pbe_parameter_derivatives_match_central_differences() throws {
        let registry = FunctionalRegistry.shared
        for base in [[String: Double](), ["kappa": 0.6, "mu": 0.25, "beta": 0.05]] {
            for nspin in [1, 2] {
                let (rho, sigma) = ggaPoints(nspin: nspin)
                let f = try registry.make("pbe", parameters: base)
                for p in f.parameters {
                    let exact = try parameterDerivative(f, p.name, nspin: nspin, rho: rho, sigma: sigma)
                    let h = 1e-4 * p.value
                    var plus = base, minus = base
                    plus[p.name] = p.value + h
                    minus[p.name] = p.value - h
                    let a = try evaluateGGA(try registry.make("pbe", parameters: plus), nspin: nspin, rho: rho, sigma: sigma)
                    let b = try evaluateGGA(try registry.make("pbe", parameters: minus), nspin: nspin, rho: rho, sigma: sigma)
                    let pairs = [("e", exact.e, a.e, b.e), ("vrho", exact.vrho, a.vrho, b.vrho),
                                 ("vsigma", exact.vsigma, a.vsigma, b.vsigma)]
                    for (field, d, up, down) in pairs {
                        let fd = zip(up, down).map { ($0 - $1) / (2 * h) }
                        let scale = fd.map(abs).max() ?? 0
                        XCTAssertGreaterThan(scale, 0, "\(field) does not depend on \(p.name)?")
                        for k in fd.indices {
                            XCTAssertEqual(d[k], fd[k], accuracy: 1e-6 * max(abs(fd[k]), 1e-3 * scale),
                                           "d\(field)/d\(p.name) [\(k)], nspin \(nspin), parameters \(base)")
                        }
                    }
                }
            }
        }
    }

    func test_parameter_derivative_of_an_unknown_parameter_or_a_callback_is_an_input_error() throws {
        let (rho, sigma) = ggaPoints(nspin: 1)
        let cases: [(Functional, String)] = [
            (try FunctionalRegistry.shared.make("pbe"), "gamma"),
            (try FunctionalRegistry.shared.make("lda,pw"), "kappa"),
            (CallbackFunctional(name: "nn", family: .lda, eval: handWrittenLDA, kernel: nil, userData: nil), "kappa"),
        ]
        for (f, name) in cases {
            XCTAssertThrowsError(try parameterDerivative(f, name, nspin: 1, rho: rho, sigma: sigma)) { error in
                guard case let .input(field, message)? = error as? SolidXCError else { return XCTFail("\(error)") }
                XCTAssertEqual(field, "parameter")
                XCTAssertTrue(message.contains("'\(f.name)'") && message.contains("'\(name)'"), message)
            }
        }
    }

    /// A parameterised built-in registered under a new name runs the SCF like the overridden built-in.
    func test_registered_parameterised_builtin_evaluates_like_the_override() throws {
        let registry = FunctionalRegistry.shared
        let id = try registry.registerBuiltin("pbe", parameters: ["kappa": 0.9], as: "pbe-kappa-0.9")
        defer { try? registry.unregister(id: id) }
        let (rho, sigma) = ggaPoints(nspin: 2)
        let registered = try evaluateGGA(try registry.make("pbe-kappa-0.9"), nspin: 2, rho: rho, sigma: sigma)
        let direct = try evaluateGGA(try registry.make("pbe", parameters: ["kappa": 0.9]), nspin: 2, rho: rho, sigma: sigma)
        let plain = try evaluateGGA(try registry.make("pbe"), nspin: 2, rho: rho, sigma: sigma)
        XCTAssertEqual(registered.e, direct.e)
        XCTAssertEqual(registered.vsigma, direct.vsigma)
        XCTAssertNotEqual(registered.e, plain.e)
        XCTAssertThrowsError(try registry.registerBuiltin("pbe", parameters: ["kappa": -1], as: "bad-kappa"))
        XCTAssertThrowsError(try registry.registerBuiltin("nope", parameters: [:], as: "bad-base"))
    }
}
