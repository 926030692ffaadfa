import XCTest
@testable import SolidXC

/// Non-self-consistent bands (Postprocess/Bands.swift): they reproduce the SCF's eigenvalues at its
/// own k-points, a tolerance the eigensolver cannot reach is a convergence error (never a silent
/// result), and bad input names its field. The comparison with ABINIT is python/tests/test_bands.py.
final class BandTests: XCTestCase {
    static let result: Result<SCFResult, Error> = Result {
        var options = SCFOptions()
        options.tol = 1e-11
        options.nbands = 8
        return try runSCF(system: Fixtures.silicon(ecut: 8, kpts: [2, 2, 2]), options: options)
    }

    func testBandsAtTheSCFKpointsReproduceTheSCFEigenvalues() throws {
        let scf = try BandTests.result.get()
        let kpoints = (0..<scf.nkpoints).map { Vec3(scf.kpoints[3 * $0], scf.kpoints[3 * $0 + 1], scf.kpoints[3 * $0 + 2]) }
        XCTAssertGreaterThan(scf.convergedState.basis.kpoints.map { $0.count }.min() ?? 0, SelfConsistentField.denseLimit,
                             "the LOBPCG path is the one under test")
        let bands = try scf.bands(kpoints: kpoints)
        XCTAssertEqual(bands.count, scf.eigenvalues.count)
        for (a, b) in zip(bands, scf.eigenvalues) { XCTAssertEqual(a, b, accuracy: 1e-9) }
        // A k-point shifted by a reciprocal-lattice vector has the same bands.
        let shifted = try scf.bands(kpoints: kpoints.map { $0 + Vec3(1, -2, 0) })
        for (a, b) in zip(shifted, bands) { XCTAssertEqual(a, b, accuracy: 1e-9) }
    }

    func testAnUnreachableToleranceIsAConvergenceError() throws {
        let scf = try BandTests.result.get()
        var options = BandOptions()
        options.tolerance = 1e-18
        options.restarts = 0
        XCTAssertThrowsError(try scf.bands(kpoints: [Vec3(0.1, 0.2, 0.3)], options: options)) { error in
            guard case let SolidXCError.convergence(message, history) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.hasPrefix("bands: the eigensolver did not converge"), message)
            XCTAssertEqual(history.count, 1)
        }
    }

    func testBadInputNamesTheField() throws {
        let scf = try BandTests.result.get()
        func field(_ kpoints: [Vec3], nbands: Int? = nil) -> String? {
            var options = BandOptions()
            options.nbands = nbands
            do { _ = try scf.bands(kpoints: kpoints, options: options) } catch let SolidXCError.input(field, _) { return field } catch { return "\(error)" }
            return nil
        }
        XCTAssertEqual(field([]), "kpoints")
        XCTAssertEqual(field([Vec3(0, .nan, 0)]), "kpoints[0]")
        XCTAssertEqual(field([Vec3(0, 0, 0), Vec3(1e300, 0, 0)]), "kpoints[1]")
        XCTAssertEqual(field([Vec3(0, 0, 0)], nbands: 0), "nbands")
        XCTAssertEqual(field([Vec3(0, 0, 0)], nbands: 5000), "nbands")
    }
}
