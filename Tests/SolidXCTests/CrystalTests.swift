import XCTest
@testable import SolidXC

final class CrystalTests: XCTestCase {
    /// Rock salt with charges +-1: E per ion pair = -M / r0, Madelung constant M = 1.747564594633
    /// (Kittel; Glasser and Zucker 1980).
    func testEwaldReproducesRockSaltMadelungConstant() throws {
        let a = 10.0
        let lattice = try Lattice(rows: [[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]])
        let e = ewaldEnergy(lattice: lattice, charges: [1, -1], positions: [Vec3(0, 0, 0), Vec3(a / 2, 0, 0)])
        XCTAssertEqual(e, -1.747564594633 / (a / 2), accuracy: 1e-11)
    }

    /// CsCl with charges +-1: M = 1.762674773070 referred to the nearest-neighbour distance sqrt(3) a / 2.
    func testEwaldReproducesCesiumChlorideMadelungConstant() throws {
        let a = 7.0
        let lattice = try Lattice(rows: [[a, 0, 0], [0, a, 0], [0, 0, a]])
        let e = ewaldEnergy(lattice: lattice, charges: [1, -1], positions: [Vec3(0, 0, 0), Vec3(a / 2, a / 2, a / 2)])
        XCTAssertEqual(e, -1.762674773070 / (3.0.squareRoot() * a / 2), accuracy: 1e-11)
    }

    /// Si diamond, Z_ion = 4, a = 5.431 A: ABINIT 9.6.2 prints "Ewald energy -8.39792528753673"
    /// (../shared/reference/abinit_same_gth_pp.json, si_a5.4310_*).
    func testEwaldSiliconMatchesAbinit() throws {
        let a = 10.263102582513
        let lattice = try Lattice(rows: [[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]])
        let e = ewaldEnergy(lattice: lattice, charges: [4, 4], positions: [Vec3(0, 0, 0), Vec3(a / 4, a / 4, a / 4)])
        XCTAssertEqual(e, -8.39792528753673, accuracy: 1e-10)
    }

    func testEwaldIsInvariantUnderTranslationAndReordering() throws {
        let lattice = try Lattice(rows: [[6.1, 0.3, -0.2], [0.4, 5.7, 0.1], [-0.3, 0.2, 6.6]])
        let pos = [Vec3(0.1, 0.2, 0.3), Vec3(2.9, 3.1, 2.5), Vec3(1.0, 4.0, 5.0)]
        let q = [3.0, 4.0, 5.0]
        let e0 = ewaldEnergy(lattice: lattice, charges: q, positions: pos)
        let shifted = pos.map { $0 + Vec3(0.37, -1.2, 2.9) }
        XCTAssertEqual(ewaldEnergy(lattice: lattice, charges: q, positions: shifted), e0, accuracy: 1e-10)
        XCTAssertEqual(ewaldEnergy(lattice: lattice, charges: q.reversed(), positions: pos.reversed()), e0, accuracy: 1e-10)
    }

    func testReciprocalVectorsAreDual() throws {
        let lattice = try Lattice(rows: [[6.1, 0.3, -0.2], [0.4, 5.7, 0.1], [-0.3, 0.2, 6.6]])
        for i in 0..<3 {
            for j in 0..<3 {
                XCTAssertEqual(dot(lattice.vectors[i], lattice.reciprocal[j]), i == j ? 2 * Double.pi : 0, accuracy: 1e-12)
            }
        }
    }

    func testSingularLatticeIsRejectedNamingTheField() {
        XCTAssertThrowsError(try Lattice(rows: [[1, 0, 0], [2, 0, 0], [0, 0, 1]])) { error in
            guard case let SolidXCError.input(field, message) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(field, "lattice")
            XCTAssertTrue(message.contains("volume"))
        }
    }

    /// Gamma-centred 4x4x4: time reversal leaves 36 points (ABINIT kptopt 2 gives 36 too); 2x2x2 keeps all 8.
    func testMonkhorstPackTimeReversalCounts() throws {
        let g4 = try KGrid(size: [4, 4, 4], shift: [0, 0, 0])
        XCTAssertEqual(g4.kpoints.count, 36)
        XCTAssertEqual(g4.weights.reduce(0, +), 1, accuracy: 1e-14)
        let g2 = try KGrid(size: [2, 2, 2], shift: [0, 0, 0])
        XCTAssertEqual(g2.kpoints.count, 8)
        let shifted = try KGrid(size: [2, 2, 2], shift: [0.5, 0.5, 0.5])
        XCTAssertEqual(shifted.kpoints.count, 4)
        // k = (n + 1/2)/2: components +-1/4
        XCTAssertTrue(shifted.kpoints.allSatisfy { abs(abs($0.x) - 0.25) < 1e-14 })
    }

    func testKGridRejectsNonPositiveEntries() {
        XCTAssertThrowsError(try KGrid(size: [2, 0, 2], shift: [0, 0, 0])) { error in
            guard case let SolidXCError.input(field, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(field, "kpts")
        }
    }

    /// ABINIT 9.6.2's ngfft for Si (a = 5.431 A) at boxcutmin 2: ecut 20 -> 30, 30 -> 36, 40 -> 45,
    /// 50 -> 48, 60 -> 54; Al (a = 4.05 A) ecut 20 -> 24, 40 -> 32; Ni (3.52 A) ecut 120 -> 48, 250 -> 72
    /// (../shared/reference/abinit_same_gth_pp.json).
    func testDefaultFFTGridMatchesAbinit() throws {
        func fcc(_ aAngstrom: Double) throws -> Lattice {
            let a = aAngstrom / 0.52917721092
            return try Lattice(rows: [[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]])
        }
        let cases: [(Double, Double, Int)] = [(5.431, 20, 30), (5.431, 30, 36), (5.431, 40, 45), (5.431, 50, 48), (5.431, 60, 54),
                                              (4.05, 20, 24), (4.05, 40, 32), (3.52, 120, 48), (3.52, 250, 72)]
        for (a, ecut, n) in cases {
            XCTAssertEqual(PlaneWaveBasis.defaultFFTSize(lattice: try fcc(a), ecut: ecut), [n, n, n], "a \(a) ecut \(ecut)")
        }
    }
}
