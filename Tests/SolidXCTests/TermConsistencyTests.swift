import XCTest
@testable import SolidXC

/// Each term's potential is the derivative of its energy, and each kernel the derivative of its
/// potential, checked by central finite differences on a silicon cell.
final class TermConsistencyTests: XCTestCase {
    /// A smooth positive density with N_el electrons per spin channel split (1 + zeta)/2, (1 - zeta)/2.
    func density(_ basis: PlaneWaveBasis, nspin: Int, zeta: Double) -> [Double] {
        let n = basis.gridCount
        var base = [Double](repeating: 0, count: n)
        let (n1, n2, n3) = basis.fft.size
        for i in 0..<n1 {
            for j in 0..<n2 {
                for l in 0..<n3 {
                    let x = 2 * Double.pi * (Double(i) / Double(n1)), y = 2 * Double.pi * Double(j) / Double(n2), z = 2 * Double.pi * Double(l) / Double(n3)
                    base[(i * n2 + j) * n3 + l] = 0.03 * (2.0 + cos(x) * 0.5 + sin(y + 0.3) * 0.4 + cos(x + z) * 0.3 + cos(2 * y - z) * 0.2)
                }
            }
        }
        if nspin == 1 { return base }
        return base.map { $0 * (1 + zeta) / 2 } + base.map { $0 * (1 - zeta) / 2 }
    }

    func perturbation(_ basis: PlaneWaveBasis, count: Int) -> [Double] {
        let (n1, n2, n3) = basis.fft.size
        let n = n1 * n2 * n3
        var out = [Double](repeating: 0, count: count)
        for idx in 0..<count {
            let p = idx % n
            let s = idx / n
            let i = p / (n2 * n3), j = (p / n3) % n2, l = p % n3
            let x = 2 * Double.pi * Double(i) / Double(n1), y = 2 * Double.pi * Double(j) / Double(n2), z = 2 * Double.pi * Double(l) / Double(n3)
            out[idx] = 0.01 * (sin(x + 2 * y + Double(s)) + 0.5 * cos(3 * z - y))
        }
        return out
    }

    func state(_ rho: [Double], nspin: Int) -> SCFState {
        SCFState(rho: rho, nspin: nspin, orbitals: [], occupations: [], nbands: 0)
    }

    func checkPotentialIsEnergyDerivative(_ term: Term, basis: PlaneWaveBasis, nspin: Int, zeta: Double = 0, file: StaticString = #filePath, line: UInt = #line) throws {
        let rho = density(basis, nspin: nspin, zeta: zeta)
        let drho = perturbation(basis, count: rho.count)
        let v = try XCTUnwrap(term.evaluate(state(rho, nspin: nspin)).potential)
        var analytic = 0.0
        for i in 0..<rho.count { analytic += v[i] * drho[i] }
        analytic *= basis.dv
        let h = 1e-4
        let plus = try term.evaluate(state(zip(rho, drho).map { $0 + h * $1 }, nspin: nspin)).energy
        let minus = try term.evaluate(state(zip(rho, drho).map { $0 - h * $1 }, nspin: nspin)).energy
        let numeric = (plus - minus) / (2 * h)
        XCTAssertEqual(analytic, numeric, accuracy: 1e-8 * max(1, abs(numeric)), "\(term.name) nspin \(nspin)", file: file, line: line)
    }

    func checkKernelIsPotentialDerivative(_ term: Term, basis: PlaneWaveBasis, nspin: Int, zeta: Double = 0, file: StaticString = #filePath, line: UInt = #line) throws {
        let rho = density(basis, nspin: nspin, zeta: zeta)
        let drho = perturbation(basis, count: rho.count)
        let dv = try XCTUnwrap(term.applyKernel(rho: rho, drho: drho, nspin: nspin))
        let h = 1e-4
        let plus = try XCTUnwrap(term.evaluate(state(zip(rho, drho).map { $0 + h * $1 }, nspin: nspin)).potential)
        let minus = try XCTUnwrap(term.evaluate(state(zip(rho, drho).map { $0 - h * $1 }, nspin: nspin)).potential)
        var err = 0.0, scale = 0.0
        for i in 0..<rho.count {
            let numeric = (plus[i] - minus[i]) / (2 * h)
            err = max(err, abs(numeric - dv[i]))
            scale = max(scale, abs(numeric))
        }
        XCTAssertLessThan(err, 1e-6 * scale, "\(term.name) kernel nspin \(nspin)", file: file, line: line)
    }

    func testHartreePotentialAndKernelAreDerivatives() throws {
        let basis = try Fixtures.basis(Fixtures.silicon())
        let term = Hartree(basis: basis)
        try checkPotentialIsEnergyDerivative(term, basis: basis, nspin: 1)
        try checkPotentialIsEnergyDerivative(term, basis: basis, nspin: 2, zeta: 0.3)
        try checkKernelIsPotentialDerivative(term, basis: basis, nspin: 1)
    }

    func testLocalPseudoPotentialIsEnergyDerivative() throws {
        let basis = try Fixtures.basis(Fixtures.silicon(displacement: [0.1, -0.05, 0.02]))
        // The energy excludes the G = 0 constant (reported as psp_correction), so compare with a
        // perturbation that keeps the electron number.
        let term = LocalPseudo(basis: basis)
        let rho = density(basis, nspin: 1, zeta: 0)
        var drho = perturbation(basis, count: rho.count)
        let mean = drho.reduce(0, +) / Double(drho.count)
        drho = drho.map { $0 - mean }
        let v = try XCTUnwrap(term.evaluate(state(rho, nspin: 1)).potential)
        var analytic = 0.0
        for i in 0..<rho.count { analytic += v[i] * drho[i] }
        analytic *= basis.dv
        let e1 = try term.evaluate(state(zip(rho, drho).map { $0 + $1 }, nspin: 1)).energy
        let e0 = try term.evaluate(state(rho, nspin: 1)).energy
        XCTAssertEqual(e1 - e0, analytic, accuracy: 1e-10)
    }

    func testXcPotentialsAndKernelsAreDerivatives() throws {
        let basis = try Fixtures.basis(Fixtures.silicon())
        for name in ["lda,pw", "lda,vwn", "teter", "pbe"] {
            let term = Xc(basis: basis, functional: try FunctionalRegistry.shared.make(name))
            try checkPotentialIsEnergyDerivative(term, basis: basis, nspin: 1)
            try checkPotentialIsEnergyDerivative(term, basis: basis, nspin: 2, zeta: 0.4)
            try checkKernelIsPotentialDerivative(term, basis: basis, nspin: 1)
            try checkKernelIsPotentialDerivative(term, basis: basis, nspin: 2, zeta: 0.4)
        }
    }

    /// The SCF asks terms for `energy(state)` alone; it must equal `evaluate(state).energy` bit for
    /// bit (Xc, Hartree and LocalPseudo skip the potential there). Xc evaluated in chunks on
    /// several threads must give the same bits as on one.
    func testEnergyAloneAndThreadedXcEqualTheFullEvaluation() throws {
        let basis = try Fixtures.basis(Fixtures.silicon(displacement: [0.1, -0.05, 0.02]))
        XCTAssertGreaterThanOrEqual(basis.gridCount, 4096, "the chunked XC path needs a grid of at least 4096 points")
        var terms: [Term] = [Hartree(basis: basis), LocalPseudo(basis: basis)]
        for name in ["lda,pw", "pbe"] { terms.append(Xc(basis: basis, functional: try FunctionalRegistry.shared.make(name))) }
        for nspin in [1, 2] {
            let s = state(density(basis, nspin: nspin, zeta: 0.3), nspin: nspin)
            for term in terms {
                let full = try term.evaluate(s)
                XCTAssertEqual(try term.energy(s).bitPattern, full.energy.bitPattern, "\(term.name) nspin \(nspin)")
                guard let xc = term as? Xc else { continue }
                for threads in [2, 3] {
                    xc.threads = threads
                    let threaded = try xc.evaluate(s)
                    xc.threads = 1
                    XCTAssertEqual(threaded.energy.bitPattern, full.energy.bitPattern, "\(xc.functional.name) threads \(threads)")
                    XCTAssertEqual(threaded.potential, full.potential, "\(xc.functional.name) threads \(threads)")
                }
            }
        }
    }

    /// For orbital terms, dE/dh along psi + h dpsi equals 2 w f Re<dpsi|H_term|psi>, with H_term the
    /// dense operator the term adds to the Hamiltonian.
    func testOrbitalTermOperatorsAreEnergyDerivatives() throws {
        let basis = try Fixtures.basis(Fixtures.silicon(kpts: [2, 2, 2], displacement: [0.1, 0.0, -0.07]))
        let terms: [Term] = [Kinetic(basis: basis), NonlocalPseudo(basis: basis)]
        let nk = basis.kpoints.count
        var noise = Fixtures.Noise(state: 7)
        let k = 3
        let npw = basis.kpoints[k].count
        var psi = [[Complex]]()
        var dpsi = [[Complex]]()
        for kk in 0..<nk {
            let m = basis.kpoints[kk].count
            psi.append((0..<m).map { g in exp(-basis.kpoints[kk].kinetic[g]) * Complex(noise.next(), noise.next()) })
            dpsi.append((0..<m).map { _ in Complex(noise.next(), noise.next()) })
        }
        let occ = [[Double]](repeating: [2], count: nk)
        for term in terms {
            var matrix = [Complex](repeating: .zero, count: npw * npw)
            matrix.withUnsafeMutableBufferPointer { term.addDenseOperator(k: k, spin: 0, matrix: $0.baseAddress!, npw: npw) }
            var hpsi = [Complex](repeating: .zero, count: npw)
            for c in 0..<npw { for r in 0..<npw { hpsi[r] += matrix[c * npw + r] * psi[k][c] } }
            var analytic = 0.0
            for g in 0..<npw { analytic += (dpsi[k][g].conjugate * hpsi[g]).re }
            analytic *= 2 * basis.kpoints[k].weight * 2
            func energy(_ h: Double) throws -> Double {
                var p = psi
                for g in 0..<npw { p[k][g] += h * dpsi[k][g] }
                // other k-points unchanged: subtract their contribution by differencing
                return try term.evaluate(SCFState(rho: [], nspin: 1, orbitals: p, occupations: occ, nbands: 1)).energy
            }
            let h = 1e-5
            let numeric = (try energy(h) - energy(-h)) / (2 * h)
            XCTAssertEqual(analytic, numeric, accuracy: 1e-7 * max(1, abs(numeric)), term.name)
        }
    }
}
