import XCTest
@testable import SolidXC

/// Whole-SCF consistency: translations, atom order and supercells must not change the physics.
final class SCFInvarianceTests: XCTestCase {
    func options(_ xc: String = "lda,pw") -> SCFOptions {
        var o = SCFOptions()
        o.xc = xc
        o.tol = 1e-11
        return o
    }

    /// A translation by a whole number of grid steps maps the FFT grid onto itself: the energy is
    /// unchanged to SCF precision. An arbitrary translation moves atoms relative to the grid; that
    /// "egg-box" change must stay small (below 1e-5 Ha here at ecut 10).
    func testEnergyIsInvariantUnderTranslation() throws {
        var spec = Fixtures.silicon(ecut: 10, kpts: [2, 2, 2], displacement: [0.1, -0.05, 0.03])
        spec.fftSize = [24, 24, 24]
        let e0 = try runSCF(system: spec, options: options()).energy
        let lattice = try Lattice(rows: spec.lattice)
        let step = lattice.cartesian(Vec3(3.0 / 24, 5.0 / 24, -7.0 / 24))
        var moved = spec
        moved.atoms = spec.atoms.map { AtomSpec(element: $0.element, position: [$0.position[0] + step.x, $0.position[1] + step.y, $0.position[2] + step.z]) }
        XCTAssertEqual(try runSCF(system: moved, options: options()).energy, e0, accuracy: 1e-9)
        var offGrid = spec
        offGrid.atoms = spec.atoms.map { AtomSpec(element: $0.element, position: [$0.position[0] + 0.137, $0.position[1] - 0.291, $0.position[2] + 0.05]) }
        XCTAssertEqual(try runSCF(system: offGrid, options: options()).energy, e0, accuracy: 1e-5)
    }

    func testEnergyIsInvariantUnderAtomReordering() throws {
        let spec = Fixtures.silicon(ecut: 10, kpts: [2, 2, 2], displacement: [0.1, -0.05, 0.03])
        var swapped = spec
        swapped.atoms.reverse()
        XCTAssertEqual(try runSCF(system: swapped, options: options("pbe")).energy,
                       try runSCF(system: spec, options: options("pbe")).energy, accuracy: 1e-9)
    }

    /// Doubling the cell along a1 and halving the k-grid along b1 samples the same Bloch states:
    /// the energy doubles.
    func testDoubledSupercellWithMatchingKGridGivesTwiceTheEnergy() throws {
        var spec = Fixtures.silicon(ecut: 10, kpts: [2, 2, 2], displacement: [0.08, 0.02, -0.04])
        spec.fftSize = [24, 24, 24]
        let primitive = try runSCF(system: spec, options: options())
        let a1 = spec.lattice[0]
        var doubled = spec
        doubled.lattice[0] = a1.map { 2 * $0 }
        doubled.atoms += spec.atoms.map { AtomSpec(element: $0.element, position: zip($0.position, a1).map { $0 + $1 }) }
        doubled.kpts = [1, 2, 2]
        doubled.fftSize = [48, 24, 24]
        let super2 = try runSCF(system: doubled, options: options())
        XCTAssertEqual(super2.energy, 2 * primitive.energy, accuracy: 2e-8)
        XCTAssertEqual(super2.energies.first { $0.name == "ewald" }!.value, 2 * primitive.energies.first { $0.name == "ewald" }!.value, accuracy: 1e-9)
    }

    func testDensityIntegratesToElectronCountAndEnergiesSum() throws {
        let result = try runSCF(system: Fixtures.silicon(ecut: 10, kpts: [2, 2, 2]), options: options())
        XCTAssertTrue(result.converged)
        let dv = result.volume / Double(result.fftSize.reduce(1, *))
        XCTAssertEqual(result.density.reduce(0, +) * dv, 8, accuracy: 1e-9)
        XCTAssertEqual(result.energies.reduce(0) { $0 + $1.value }, result.energy, accuracy: 1e-12)
        XCTAssertEqual(result.kweights.reduce(0, +), 1, accuracy: 1e-14)
    }

    func testNonConvergenceIsReportedWithHistory() throws {
        var o = options()
        o.maxiter = 2
        XCTAssertThrowsError(try runSCF(system: Fixtures.silicon(ecut: 8), options: o)) { error in
            guard case let SolidXCError.convergence(message, history) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(history.count, 2)
            XCTAssertTrue(message.contains("not converged"))
        }
        o.raiseOnNonconvergence = false
        let result = try runSCF(system: Fixtures.silicon(ecut: 8), options: o)
        XCTAssertFalse(result.converged)
        XCTAssertEqual(result.iterations, 2)
    }

    func testResultsDoNotDependOnThreadCount() throws {
        var one = options()
        one.threads = 1
        var two = options()
        two.threads = 2
        let spec = Fixtures.silicon(ecut: 8, kpts: [2, 2, 2], displacement: [0.1, 0, 0])
        let a = try runSCF(system: spec, options: one)
        let b = try runSCF(system: spec, options: two)
        XCTAssertEqual(a.energy, b.energy)
        XCTAssertEqual(a.density, b.density)
    }
}
