import XCTest
@testable import SolidXC

/// Each term's force is minus the derivative of its energy with respect to an atom's position,
/// checked by central finite differences at fixed density and orbitals on a strained cell without
/// symmetry; the symmetrised forces of a reduced k-set equal those of the full grid.
final class ForceTests: XCTestCase {
    /// A strained two-atom cell, Si and Ni (GTH-PBE: s, p and d projectors), no symmetry.
    func lowSymmetrySpec(displacement: (atom: Int, direction: Int, step: Double)? = nil) -> SystemSpec {
        let lattice = [[0.1, 4.9, 5.2], [5.0, -0.05, 4.8], [5.3, 5.1, 0.2]]
        var positions = [[0.0, 0.0, 0.0], [2.6, 2.4, 2.55]]
        if let d = displacement { positions[d.atom][d.direction] += d.step }
        return SystemSpec(lattice: lattice, atoms: [AtomSpec(element: "Si", position: positions[0]), AtomSpec(element: "Ni", position: positions[1])],
                          pseudo: .perElement(["Si": "gth-pbe", "Ni": "gth-pbe"]), ecut: 12, kpts: [2, 1, 1], symmetry: false)
    }

    /// A smooth positive spin density [nspin][N] and, per (spin, k), nbands pseudo-random orbitals
    /// with occupations: the state is arbitrary, as each term's force is a derivative at a fixed state.
    func arbitraryState(_ basis: PlaneWaveBasis, nspin: Int, nbands: Int) -> SCFState {
        let n = basis.gridCount
        let (n1, n2, n3) = basis.fft.size
        var rho = [Double](repeating: 0, count: nspin * n)
        for s in 0..<nspin {
            for i in 0..<n1 { for j in 0..<n2 { for l in 0..<n3 {
                let x = 2 * Double.pi * Double(i) / Double(n1), y = 2 * Double.pi * Double(j) / Double(n2), z = 2 * Double.pi * Double(l) / Double(n3)
                rho[s * n + (i * n2 + j) * n3 + l] = 0.02 * (2 + cos(x + Double(s)) * 0.5 + sin(y - z) * 0.4 + cos(2 * x + y) * 0.3)
            } } }
        }
        var noise = Fixtures.Noise(state: 7)
        var orbitals: [[Complex]] = []
        var occupations: [[Double]] = []
        for _ in 0..<nspin {
            for kb in basis.kpoints {
                // Smooth in |k+G| so that every projector channel sees the orbitals.
                orbitals.append((0..<(kb.count * nbands)).map { idx in
                    let damping = exp(-0.3 * kb.kinetic[idx % kb.count])
                    return Complex(damping * noise.next(), damping * noise.next())
                })
                occupations.append((0..<nbands).map { 2 / Double(nspin) * (1 - Double($0) / Double(nbands)) })
            }
        }
        return SCFState(rho: rho, nspin: nspin, orbitals: orbitals, occupations: occupations, nbands: nbands)
    }

    /// Fourth-order central differences of `energy(basis of the displaced atoms)` against `term(basis).forces(state)`.
    func checkForces(_ name: String, nspin: Int, make: (PlaneWaveBasis) -> Term, file: StaticString = #filePath, line: UInt = #line) throws {
        let basis = try Fixtures.basis(lowSymmetrySpec())
        let state = arbitraryState(basis, nspin: nspin, nbands: 3)
        let forces = try XCTUnwrap(try make(basis).forces(state), name, file: file, line: line)
        XCTAssertEqual(forces.count, 2)
        let h = 1e-3
        var worst = 0.0, scale = 0.0
        for atom in 0..<2 {
            for direction in 0..<3 {
                func energy(_ step: Double) throws -> Double {
                    try make(try Fixtures.basis(lowSymmetrySpec(displacement: (atom, direction, step)))).evaluate(state).energy
                }
                // Fourth-order central difference.
                let numeric = -(8 * (try energy(h) - energy(-h)) - (try energy(2 * h) - energy(-2 * h))) / (12 * h)
                worst = max(worst, abs(numeric - forces[atom][direction]))
                scale = max(scale, abs(numeric))
            }
        }
        XCTAssertGreaterThan(scale, 1e-3, "\(name): the test needs forces that are not small", file: file, line: line)
        XCTAssertLessThan(worst, 1e-8 * max(1, scale), "\(name) nspin \(nspin): worst |F - F_fd| \(worst) Ha/bohr", file: file, line: line)
    }

    func testLocalPseudoForceIsEnergyDerivative() throws {
        try checkForces("local", nspin: 1) { LocalPseudo(basis: $0) }
        try checkForces("local", nspin: 2) { LocalPseudo(basis: $0) }
    }

    func testNonlocalPseudoForceIsEnergyDerivative() throws {
        try checkForces("nonlocal", nspin: 1) { NonlocalPseudo(basis: $0) }
        try checkForces("nonlocal", nspin: 2) { NonlocalPseudo(basis: $0) }
    }

    func testEwaldTermForceIsEnergyDerivative() throws {
        try checkForces("ewald", nspin: 1) { EwaldTerm(model: $0.model) }
    }

    func testTermsWithoutExplicitPositionDependenceHaveNoForce() throws {
        let basis = try Fixtures.basis(lowSymmetrySpec())
        let state = arbitraryState(basis, nspin: 1, nbands: 3)
        let terms: [Term] = [Kinetic(basis: basis), Hartree(basis: basis), Xc(basis: basis, functional: try FunctionalRegistry.shared.make("pbe")),
                             PspCorrection(model: basis.model), Entropy(basis: basis, smearing: try Smearing(name: "fermi-dirac", width: 0.01))]
        for term in terms { XCTAssertNil(try term.forces(state), term.name) }
    }

    /// Ewald forces of three unequal charges in a triclinic cell against central differences of the
    /// Ewald energy, and zero net force.
    func testEwaldForcesAreEnergyDerivatives() throws {
        let lattice = try Lattice(rows: [[6.0, 0.3, -0.2], [0.5, 7.0, 0.4], [-0.3, 0.6, 5.5]])
        let charges = [3.0, -1.0, 2.0]
        let positions = [Vec3(0.1, 0.2, 0.3), Vec3(2.9, 3.1, 1.2), Vec3(4.0, 0.7, 4.1)]
        let (_, forces, _) = ewaldSum(lattice: lattice, charges: charges, positions: positions)
        let h = 1e-5
        var net = Vec3.zero
        for a in 0..<3 {
            net += forces[a]
            for c in 0..<3 {
                var plus = positions, minus = positions
                plus[a][c] += h
                minus[a][c] -= h
                let numeric = -(ewaldEnergy(lattice: lattice, charges: charges, positions: plus)
                    - ewaldEnergy(lattice: lattice, charges: charges, positions: minus)) / (2 * h)
                XCTAssertEqual(forces[a][c], numeric, accuracy: 1e-8, "atom \(a) direction \(c)")
            }
        }
        XCTAssertLessThan(norm(net), 1e-10)
    }

    /// Si with its atoms moved apart along x keeps inversion through their midpoint (which swaps them),
    /// the twofold axis along x and two mirrors, all mapping the FFT grid onto itself: forces from the
    /// irreducible k-points, symmetrised, equal those of the full k-grid without symmetry, for LDA and PBE.
    func testSymmetrisedForcesEqualFullGridForces() throws {
        for (xc, pseudo) in [("lda,pw", "gth-pade"), ("pbe", "gth-pbe")] {
            var spec = Fixtures.silicon(ecut: 10, kpts: [2, 2, 2], pseudo: pseudo, displacement: [0.05, 0, 0])
            spec.atoms[0].position = [-0.05, 0, 0]
            var options = SCFOptions()
            options.xc = xc
            options.tol = 1e-12
            options.densityTol = 1e-10
            let reduced = try runSCF(system: spec, options: options)
            spec.symmetry = false
            let full = try runSCF(system: spec, options: options)
            XCTAssertLessThan(reduced.nkpoints, full.nkpoints)
            let a = try reduced.forces, b = try full.forces
            XCTAssertGreaterThan(norm(b[1]), 1e-3)
            for atom in 0..<2 {
                XCTAssertLessThan(norm(a[atom] - b[atom]), 1e-10, "\(xc) atom \(atom): \(a[atom]) vs \(b[atom])")
            }
            // Along x by symmetry, and equal and opposite (inversion).
            XCTAssertLessThan(abs(a[1].y) + abs(a[1].z), 1e-12)
            XCTAssertLessThan(norm(a[0] + a[1]), 1e-12)
        }
    }
}
