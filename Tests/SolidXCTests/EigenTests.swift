import XCTest
@testable import SolidXC

final class EigenTests: XCTestCase {
    func randomHermitian(_ n: Int, seed: UInt64) -> [Complex] {
        var noise = Fixtures.Noise(state: seed)
        var a = [Complex](repeating: .zero, count: n * n)
        for j in 0..<n {
            for i in 0...j {
                let x = i == j ? Complex(noise.next() * 3, 0) : Complex(noise.next(), noise.next())
                a[j * n + i] = x
                a[i * n + j] = x.conjugate
            }
        }
        return a
    }

    /// The Householder-QL solver handles what the Rayleigh-Ritz and Gram problems of LOBPCG
    /// produce: degenerate eigenvalues, rank-deficient Gram matrices, diagonal and zero matrices.
    /// Eigenvalues agree with the independent Jacobi solver, eigenpairs satisfy A v = lambda v
    /// and the eigenvectors are orthonormal.
    func testHouseholderQLMatchesJacobiOnDegenerateAndRankDeficientMatrices() {
        var noise = Fixtures.Noise(state: 21)
        var cases: [(String, [Complex], Int)] = []
        // U diag(1, 1, 1, 2, 2, 3, -1, -1) U^H with U unitary (eigenvectors of a random matrix).
        let n = 8
        let u = SmallEigen.jacobi(randomHermitian(n, seed: 9), n: n).vectors
        let lambda: [Double] = [1, 1, 1, 2, 2, 3, -1, -1]
        var degenerate = [Complex](repeating: .zero, count: n * n)
        for j in 0..<n { for i in 0..<n { for k in 0..<n { degenerate[j * n + i] += lambda[k] * u[k * n + i] * u[k * n + j].conjugate } } }
        cases.append(("degenerate", degenerate, n))
        // Gram matrix of 12 vectors spanning 7 dimensions.
        let m = 30, p = 12
        let basis = (0..<(m * 7)).map { _ in Complex(noise.next(), noise.next()) }
        var vectors = [Complex](repeating: .zero, count: m * p)
        for v in 0..<p { for r in 0..<7 { let c = Complex(noise.next(), noise.next()); for i in 0..<m { vectors[v * m + i] += c * basis[r * m + i] } } }
        var gram = [Complex](repeating: .zero, count: p * p)
        for a in 0..<p { for b in 0..<p { for i in 0..<m { gram[b * p + a] += vectors[a * m + i].conjugate * vectors[b * m + i] } } }
        cases.append(("rank-deficient gram", gram, p))
        var diagonal = [Complex](repeating: .zero, count: 6 * 6)
        for i in 0..<6 { diagonal[i * 6 + i] = Complex(Double(5 - i), 0) }
        cases.append(("diagonal", diagonal, 6))
        cases.append(("zero", [Complex](repeating: .zero, count: 25), 5))
        cases.append(("random 24", randomHermitian(24, seed: 77), 24))
        for (name, a, n) in cases {
            let (values, vectors) = SmallEigen.hermitian(a, n: n)
            let reference = SmallEigen.jacobi(a, n: n).values
            var scale = 1.0
            for x in a { scale = max(scale, x.norm2.squareRoot()) }
            for i in 0..<n { XCTAssertEqual(values[i], reference[i], accuracy: 1e-12 * scale, "\(name) value \(i)") }
            for i in 1..<n { XCTAssertLessThanOrEqual(values[i - 1], values[i], name) }
            for col in 0..<n {
                for row in 0..<n {
                    var av = Complex.zero
                    for k in 0..<n { av += a[k * n + row] * vectors[col * n + k] }
                    XCTAssertLessThan((av - values[col] * vectors[col * n + row]).norm2.squareRoot(), 1e-12 * scale, name)
                }
                for other in 0..<n {
                    var s = Complex.zero
                    for k in 0..<n { s += vectors[col * n + k].conjugate * vectors[other * n + k] }
                    XCTAssertEqual(s.re, col == other ? 1 : 0, accuracy: 1e-12, name)
                    XCTAssertEqual(s.im, 0, accuracy: 1e-12, name)
                }
            }
        }
    }

    /// Jacobi eigenpairs satisfy A v = lambda v, are orthonormal, and match LAPACK's eigenvalues.
    func testJacobiMatchesLapack() throws {
        for (n, seed) in [(1, 1), (2, 2), (5, 3), (17, 4), (40, 5)] as [(Int, UInt64)] {
            let a = randomHermitian(n, seed: seed)
            let (values, vectors) = SmallEigen.hermitian(a, n: n)
            var copy = a
            let reference = try DenseEigen.lowest(&copy, n: n, count: n).values
            for i in 0..<n { XCTAssertEqual(values[i], reference[i], accuracy: 1e-12, "n \(n)") }
            for col in 0..<n {
                for row in 0..<n {
                    var av = Complex.zero
                    for k in 0..<n { av += a[k * n + row] * vectors[col * n + k] }
                    let lv = values[col] * vectors[col * n + row]
                    XCTAssertLessThan((av - lv).norm2.squareRoot(), 1e-11)
                }
                for other in 0..<n {
                    var s = Complex.zero
                    for k in 0..<n { s += vectors[col * n + k].conjugate * vectors[other * n + k] }
                    XCTAssertEqual(s.re, col == other ? 1 : 0, accuracy: 1e-12)
                    XCTAssertEqual(s.im, 0, accuracy: 1e-12)
                }
            }
        }
    }
}

final class LOBPCGTests: XCTestCase {
    /// LOBPCG's eigenpairs of a silicon Kohn-Sham Hamiltonian agree with the dense Jacobi ones (themselves checked against LAPACK above), from
    /// a cold start and from a perturbed warm start.
    func testLOBPCGMatchesDenseOnSiliconHamiltonian() throws {
        let basis = try Fixtures.basis(Fixtures.silicon(ecut: 6, kpts: [2, 2, 2], displacement: [0.1, 0, -0.05]))
        let terms: [Term] = [Kinetic(basis: basis), NonlocalPseudo(basis: basis)]
        let local = LocalPseudo(basis: basis).potentialReal
        let k = 3
        let npw = basis.kpoints[k].count
        let nb = 8
        try local.withUnsafeBufferPointer { vp in
            let h = HamiltonianBlock(basis: basis, k: k, spin: 0, potential: vp, terms: terms)
            let dense = h.denseMatrix(potentialG: basis.fft.forward(real: local))
            // matrix-free and dense agree on a vector
            var noise = Fixtures.Noise(state: 3)
            let x = (0..<npw).map { _ in Complex(noise.next(), noise.next()) }
            let hx = h.apply(x, nvec: 1)
            for r in 0..<npw {
                var s = Complex.zero
                for c in 0..<npw { s += dense[c * npw + r] * x[c] }
                XCTAssertLessThan((s - hx[r]).norm2.squareRoot(), 1e-10)
            }
            let reference = SmallEigen.hermitian(dense, n: npw)
            let solver = LOBPCG(n: npw, m: nb, apply: { h.apply($0, nvec: $1) }, kinetic: basis.kpoints[k].kinetic)
            let cold = solver.run(initial: [Complex](repeating: .zero, count: npw * nb), tol: 1e-9, maxiter: 300)
            for i in 0..<nb { XCTAssertEqual(cold.values[i], reference.values[i], accuracy: 1e-10, "cold band \(i)") }
            var warmStart = Array(reference.vectors[0..<(npw * nb)])
            for i in 0..<warmStart.count { warmStart[i] += 1e-3 * Complex(noise.next(), noise.next()) }
            let warm = solver.run(initial: warmStart, tol: 1e-9, maxiter: 300)
            for i in 0..<nb { XCTAssertEqual(warm.values[i], reference.values[i], accuracy: 1e-10, "warm band \(i)") }
            print("LOBPCG iterations cold \(cold.iterations) warm \(warm.iterations)")
        }
    }
}
