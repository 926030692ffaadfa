import XCTest
@testable import SolidXC

final class SymmetryTests: XCTestCase {
    func prepared(_ spec: SystemSpec) throws -> PreparedSystem { try PreparedSystem(spec) }

    /// Diamond Si has the 48 operations of Fd-3m (24 of them with the (1/4,1/4,1/4) translation in
    /// the primitive cell); ABINIT reduces the Gamma-centred 4x4x4 grid to 8 k-points (the [perf] issue).
    func testDiamondSpaceGroupAndIrreducibleKPoints() throws {
        var spec = Fixtures.silicon(ecut: 10, kpts: [4, 4, 4])
        let p = try prepared(spec)
        XCTAssertEqual(p.symmetry.operations.count, 48)
        XCTAssertEqual(p.symmetry.operations.filter { $0.translation != .zero }.count, 24)
        XCTAssertEqual(p.kgrid.kpoints.count, 8)
        XCTAssertEqual(p.kgrid.weights.reduce(0, +), 1, accuracy: 1e-14)
        spec.symmetry = false
        XCTAssertEqual(try prepared(spec).kgrid.kpoints.count, 36)
    }

    /// fcc Al, Gamma-centred 8x8x8: 29 irreducible points, as ABINIT (the [perf] issue).
    func testFccAluminium8x8x8Has29IrreduciblePoints() throws {
        let a = 4.05 * Fixtures.bohrPerAngstrom
        let spec = SystemSpec(lattice: [[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]],
                              atoms: [AtomSpec(element: "Al", position: [0, 0, 0])], ecut: 10, kpts: [8, 8, 8],
                              smearing: "fermi-dirac")
        let p = try prepared(spec)
        XCTAssertEqual(p.symmetry.operations.count, 48)
        XCTAssertEqual(p.kgrid.kpoints.count, 29)
    }

    /// A translation that falls between FFT grid points is no symmetry of the discretised energy:
    /// Si's 24 operations with the (1/4,1/4,1/4) translation are kept on a 24^3 grid and dropped on
    /// 27^3 (ABINIT's grid at ecut 15), where the k-points are still reduced to 8 with time reversal.
    func testTranslationsMustMoveFFTGridPointsOntoGridPoints() throws {
        var spec = Fixtures.silicon(ecut: 10, kpts: [4, 4, 4])
        spec.fftSize = [24, 24, 24]
        XCTAssertEqual(try prepared(spec).symmetry.operations.count, 48)
        spec.fftSize = [27, 27, 27]
        let p = try prepared(spec)
        XCTAssertEqual(p.symmetry.operations.count, 24)
        XCTAssertTrue(p.symmetry.operations.allSatisfy { $0.translation == .zero })
        XCTAssertEqual(p.kgrid.kpoints.count, 8)
    }

    /// The operations form a group: closed under composition, with inverses.
    func testOperationsFormAGroup() throws {
        let ops = try prepared(Fixtures.silicon(ecut: 10, kpts: [2, 2, 2])).symmetry.operations
        func same(_ a: SymmetryOperation, _ w: [[Int]], _ t: Vec3) -> Bool {
            let d = a.translation - t
            return a.rotation == w && norm(d - d.rounded(.toNearestOrEven)) < 1e-9
        }
        for a in ops {
            for b in ops {
                // (a b) x = Wa (Wb x + tb) + ta
                let w = (0..<3).map { i in (0..<3).map { j in (0..<3).reduce(0) { $0 + a.rotation[i][$1] * b.rotation[$1][j] } } }
                let t = SymmetryOperation.times(a.rotation, b.translation) + a.translation
                XCTAssertTrue(ops.contains { same($0, w, t) }, "product not in the group")
            }
        }
    }

    /// Moving one atom off its site, or giving equivalent atoms different moments, lowers the group.
    func testDisplacementAndMomentsLowerTheSymmetry() throws {
        let displaced = try prepared(Fixtures.silicon(ecut: 10, kpts: [2, 2, 2], displacement: [0.1, 0.05, 0]))
        XCTAssertLessThan(displaced.symmetry.operations.count, 48)
        var afm = Fixtures.silicon(ecut: 10, kpts: [2, 2, 2])
        afm.magmoms = [1, -1]
        afm.smearing = "fermi-dirac"
        let p = try prepared(afm)
        XCTAssertEqual(p.symmetry.operations.count, 24, "only the operations that keep each site")
        XCTAssertTrue(p.symmetry.operations.allSatisfy { $0.translation == .zero })
    }

    /// Symmetrising is a projection: idempotent, integral-preserving, and it leaves a density
    /// built from symmetric atoms unchanged.
    func testSymmetriseIsAProjection() throws {
        let p = try prepared(Fixtures.silicon(ecut: 10, kpts: [2, 2, 2]))
        let basis = try PlaneWaveBasis(model: p.model, ecut: 10, kgrid: p.kgrid, fftSize: p.fftSize, symmetry: p.symmetry)
        var noise = Fixtures.Noise(state: 7)
        let f = (0..<basis.gridCount).map { _ in 1 + 0.5 * noise.next() }
        let once = p.symmetry.symmetrise(f, fft: basis.fft)
        let twice = p.symmetry.symmetrise(once, fft: basis.fft)
        XCTAssertEqual(f.reduce(0, +), once.reduce(0, +), accuracy: 1e-9 * Double(f.count))
        XCTAssertLessThan(zip(once, twice).map { abs($0 - $1) }.max()!, 1e-12)
        XCTAssertGreaterThan(zip(f, once).map { abs($0 - $1) }.max()!, 1e-2, "random data is not symmetric")
        let scf = try SelfConsistentField(basis: basis, functional: try FunctionalRegistry.shared.make("lda,pw"), options: SCFOptions())
        let atoms = scf.initialDensity()
        XCTAssertLessThan(zip(atoms, p.symmetry.symmetrise(atoms, fft: basis.fft)).map { abs($0 - $1) }.max()!, 1e-12)
    }

    /// On a band-limited function the G-space symmetrisation is the real-space average
    /// (1/N_op) sum_op f(W x + t), evaluated here exactly from the function's analytic form. Si has
    /// 24 operations with a fractional translation, graphene's hexagonal operations mix Miller
    /// indices.
    func testSymmetriseIsTheRealSpaceAverage() throws {
        let a = 2.46 * Fixtures.bohrPerAngstrom, c = 12 * Fixtures.bohrPerAngstrom
        let graphene = SystemSpec(lattice: [[a, 0, 0], [-a / 2, a * 3.0.squareRoot() / 2, 0], [0, 0, c]],
                                  atoms: [AtomSpec(element: "C", position: [0, a / 3.0.squareRoot(), c / 2]),
                                          AtomSpec(element: "C", position: [a / 2, a / (2 * 3.0.squareRoot()), c / 2])],
                                  pseudo: .table("gth-pade"), ecut: 10, kpts: [3, 3, 1])
        for spec in [Fixtures.silicon(ecut: 10, kpts: [2, 2, 2]), graphene] {
            let p = try prepared(spec)
            XCTAssertGreaterThan(p.symmetry.operations.count, 1)
            let basis = try PlaneWaveBasis(model: p.model, ecut: spec.ecut, kgrid: p.kgrid, fftSize: p.fftSize, symmetry: p.symmetry)
            let (n1, n2, n3) = basis.fft.size
            var noise = Fixtures.Noise(state: 11)
            let waves: [(h: [Double], amplitude: Double, phase: Double)] = (0..<12).map { _ in
                ((0..<3).map { _ in (2.5 * noise.next()).rounded() }, noise.next(), 3 * noise.next())
            }
            func f(_ x: Vec3) -> Double {
                waves.reduce(0) { $0 + $1.amplitude * cos(2 * Double.pi * ($1.h[0] * x.x + $1.h[1] * x.y + $1.h[2] * x.z) + $1.phase) }
            }
            func point(_ i: Int) -> Vec3 {
                Vec3(Double(i / (n2 * n3)) / Double(n1), Double((i / n3) % n2) / Double(n2), Double(i % n3) / Double(n3))
            }
            let grid = (0..<basis.gridCount).map { f(point($0)) }
            let symmetric = p.symmetry.symmetrise(grid, fft: basis.fft)
            var worst = 0.0, change = 0.0
            for i in stride(from: 0, to: basis.gridCount, by: 37) {
                let x = point(i)
                let average = p.symmetry.operations.reduce(0) { $0 + f($1.apply(x)) } / Double(p.symmetry.operations.count)
                worst = max(worst, abs(symmetric[i] - average))
                change = max(change, abs(grid[i] - average))
            }
            XCTAssertLessThan(worst, 1e-12)
            XCTAssertGreaterThan(change, 1e-2, "the test function is not symmetric already")
        }
    }
}
