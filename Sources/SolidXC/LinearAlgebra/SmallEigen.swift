#if canImport(Glibc)
import Glibc
#endif

/// Eigen-decomposition of small Hermitian matrices (the Rayleigh-Ritz and overlap problems of
/// the iterative eigensolver) by cyclic complex Jacobi rotations, in pure Swift, so it is safe on
/// any thread (Debian's OpenBLAS LAPACK is not, see `SelfConsistentField.diagonalise`).
enum SmallEigen {
    /// Eigenvalues (ascending) and eigenvectors (columns, column-major n x n) of the Hermitian
    /// matrix `a` (column-major n x n; both triangles read as Hermitian).
    static func hermitian(_ input: [Complex], n: Int) -> (values: [Double], vectors: [Complex]) {
        var a = input
        // Symmetrise to remove round-off asymmetry.
        for j in 0..<n {
            a[j * n + j].im = 0
            for i in 0..<j {
                let x = a[j * n + i], y = a[i * n + j].conjugate
                let m = Complex(0.5 * (x.re + y.re), 0.5 * (x.im + y.im))
                a[j * n + i] = m
                a[i * n + j] = m.conjugate
            }
        }
        var v = [Complex](repeating: .zero, count: n * n)
        for i in 0..<n { v[i * n + i] = Complex(1, 0) }
        var scale = 0.0
        for x in a { scale = max(scale, x.norm2) }
        scale = scale.squareRoot()
        if n > 1 && scale > 0 {
            for _ in 0..<100 {
                var off = 0.0
                for j in 0..<n { for i in 0..<j { off += a[j * n + i].norm2 } }
                if off.squareRoot() <= 1e-15 * scale { break }
                for p in 0..<(n - 1) {
                    for q in (p + 1)..<n {
                        let apq = a[q * n + p]  // row p, column q
                        let mag = apq.norm2.squareRoot()
                        if mag <= 1e-300 { continue }
                        let app = a[p * n + p].re, aqq = a[q * n + q].re
                        // Phase making the (p, q) element real: apq = mag e^{i phi}.
                        let phase = Complex(apq.re / mag, apq.im / mag)
                        let theta = 0.5 * (aqq - app) / mag
                        let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                        let c = 1 / (t * t + 1).squareRoot()
                        let s = t * c
                        // Rotation J acting on columns p, q: J_pp = c, J_qq = c, J_pq = s*phase, J_qp = -s*conj(phase).
                        let sp = s * phase
                        let spc = sp.conjugate
                        // A <- A J (columns)
                        for k in 0..<n {
                            let akp = a[p * n + k], akq = a[q * n + k]
                            a[p * n + k] = c * akp - spc * akq
                            a[q * n + k] = sp * akp + c * akq
                        }
                        // A <- J^H A (rows)
                        for k in 0..<n {
                            let apk = a[k * n + p], aqk = a[k * n + q]
                            a[k * n + p] = c * apk - sp * aqk
                            a[k * n + q] = spc * apk + c * aqk
                        }
                        a[q * n + p] = .zero
                        a[p * n + q] = .zero
                        for k in 0..<n {
                            let vkp = v[p * n + k], vkq = v[q * n + k]
                            v[p * n + k] = c * vkp - spc * vkq
                            v[q * n + k] = sp * vkp + c * vkq
                        }
                    }
                }
            }
        }
        let order = (0..<n).sorted { a[$0 * n + $0].re < a[$1 * n + $1].re }
        var values = [Double](repeating: 0, count: n)
        var vectors = [Complex](repeating: .zero, count: n * n)
        for (col, j) in order.enumerated() {
            values[col] = a[j * n + j].re
            for i in 0..<n { vectors[col * n + i] = v[j * n + i] }
        }
        return (values, vectors)
    }
}
