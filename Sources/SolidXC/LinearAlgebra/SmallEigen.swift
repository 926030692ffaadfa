#if canImport(Glibc)
import Glibc
#endif

/// Eigen-decomposition of small Hermitian matrices (the Rayleigh-Ritz and overlap problems of
/// the iterative eigensolver and the dense solve of tiny bases), in pure Swift, so it is safe on
/// any thread (Debian's OpenBLAS LAPACK is not, see `SelfConsistentField.diagonalise`).
enum SmallEigen {
    /// Eigenvalues (ascending) and eigenvectors (columns, column-major n x n) of the Hermitian
    /// matrix `a` (column-major n x n; both triangles read as Hermitian): Householder reduction
    /// to a real symmetric tridiagonal matrix, then implicit QL with Wilkinson shifts (EISPACK's
    /// htridi/tql2). O(n^3) with a small constant, about ten times cheaper than Jacobi sweeps at
    /// the sizes of the LOBPCG Rayleigh-Ritz problems. Falls back to Jacobi if QL does not
    /// converge.
    static func hermitian(_ input: [Complex], n: Int) -> (values: [Double], vectors: [Complex]) {
        if n <= 2 { return jacobi(input, n: n) }
        var a = symmetrised(input, n: n)
        var q = [Complex](repeating: .zero, count: n * n)
        for i in 0..<n { q[i * n + i] = Complex(1, 0) }
        // sub[k] = T[k+1, k] of the complex tridiagonal T = Q^H A Q.
        var sub = [Complex](repeating: .zero, count: n)
        var v = [Complex](repeating: .zero, count: n)
        var w = [Complex](repeating: .zero, count: n)
        a.withUnsafeMutableBufferPointer { a in
            q.withUnsafeMutableBufferPointer { q in
                for k in 0..<(n - 2) {
                    let m = k + 1
                    var rest = 0.0
                    for i in (m + 1)..<n { rest += a[k * n + i].norm2 }
                    let x0 = a[k * n + m]
                    if rest == 0 {
                        sub[k] = x0
                        continue
                    }
                    // H = I - 2 v v^H with H x = alpha e1, alpha = -phase(x0) |x|.
                    let x0abs = x0.norm2.squareRoot()
                    let xnorm = (rest + x0.norm2).squareRoot()
                    let phase = x0abs > 0 ? Complex(x0.re / x0abs, x0.im / x0abs) : Complex(1, 0)
                    let alpha = (-xnorm) * phase
                    for i in m..<n { v[i] = a[k * n + i] }
                    v[m] = (x0abs + xnorm) * phase
                    var vnorm2 = 0.0
                    for i in m..<n { vnorm2 += v[i].norm2 }
                    let inv = 1 / vnorm2.squareRoot()
                    for i in m..<n { v[i] = inv * v[i] }
                    // p = A v, w = p - (v^H p) v; A <- H A H = A - 2 (v w^H + w v^H).
                    for i in m..<n { w[i] = .zero }
                    for j in m..<n {
                        let vj = v[j]
                        for i in m..<n { w[i] += a[j * n + i] * vj }
                    }
                    var kappa = 0.0
                    for i in m..<n { kappa += v[i].re * w[i].re + v[i].im * w[i].im }
                    for i in m..<n { w[i] -= kappa * v[i] }
                    for j in m..<n {
                        let wj = 2 * w[j].conjugate, vj = 2 * v[j].conjugate
                        for i in m..<n { a[j * n + i] -= v[i] * wj + w[i] * vj }
                    }
                    sub[k] = alpha
                    // Q <- Q H.
                    for r in 0..<n {
                        var t = Complex.zero
                        for j in m..<n { t += q[j * n + r] * v[j] }
                        let t2 = 2 * t
                        for j in m..<n { q[j * n + r] -= t2 * v[j].conjugate }
                    }
                }
            }
        }
        sub[n - 2] = a[(n - 2) * n + (n - 1)]
        // T = D R D^H with R real (subdiagonal |sub|) and D = diag(phi) unitary.
        var d = (0..<n).map { a[$0 * n + $0].re }
        var e = [Double](repeating: 0, count: n)
        var phi = [Complex](repeating: Complex(1, 0), count: n)
        for k in 0..<(n - 1) {
            let mag = sub[k].norm2.squareRoot()
            e[k] = mag
            phi[k + 1] = mag > 0 ? phi[k] * Complex(sub[k].re / mag, sub[k].im / mag) : phi[k]
        }
        var z = [Double](repeating: 0, count: n * n)
        for i in 0..<n { z[i * n + i] = 1 }
        guard tridiagonalQL(&d, &e, &z, n: n) else { return jacobi(input, n: n) }
        // Eigenvectors (Q D) Z, in ascending order of the eigenvalues.
        let order = (0..<n).sorted { d[$0] < d[$1] }
        var values = [Double](repeating: 0, count: n)
        var vectors = [Complex](repeating: .zero, count: n * n)
        for j in 0..<n { for r in 0..<n { q[j * n + r] = q[j * n + r] * phi[j] } }
        for (col, src) in order.enumerated() {
            values[col] = d[src]
            for j in 0..<n {
                let zj = z[src * n + j]
                if zj == 0 { continue }
                for r in 0..<n { vectors[col * n + r] += zj * q[j * n + r] }
            }
        }
        return (values, vectors)
    }

    /// Eigen-decomposition of the real symmetric tridiagonal matrix with diagonal `d` and
    /// subdiagonal `e` (e[i] = T[i+1, i], e[n-1] unused) by implicit QL (Numerical Recipes'
    /// tqli), accumulating the rotations into the columns of `z` (column-major n x n).
    /// On return `d` holds the eigenvalues (unsorted). False if an eigenvalue needs more than
    /// 60 iterations.
    static func tridiagonalQL(_ d: inout [Double], _ e: inout [Double], _ z: inout [Double], n: Int) -> Bool {
        e[n - 1] = 0
        for l in 0..<n {
            var iterations = 0
            var m = l
            repeat {
                m = l
                while m < n - 1 {
                    let dd = abs(d[m]) + abs(d[m + 1])
                    if abs(e[m]) + dd == dd { break }
                    m += 1
                }
                if m != l {
                    iterations += 1
                    if iterations > 60 { return false }
                    var g = (d[l + 1] - d[l]) / (2 * e[l])
                    var r = (g * g + 1).squareRoot()
                    g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r))
                    var s = 1.0, c = 1.0, p = 0.0
                    var i = m - 1
                    var deflated = false
                    while i >= l {
                        var f = s * e[i]
                        let b = c * e[i]
                        r = hypot(f, g)
                        e[i + 1] = r
                        if r == 0 {
                            d[i + 1] -= p
                            e[m] = 0
                            deflated = true
                            break
                        }
                        s = f / r
                        c = g / r
                        g = d[i + 1] - p
                        r = (d[i] - g) * s + 2 * c * b
                        p = s * r
                        d[i + 1] = g + p
                        g = c * r - b
                        for k in 0..<n {
                            f = z[(i + 1) * n + k]
                            z[(i + 1) * n + k] = s * z[i * n + k] + c * f
                            z[i * n + k] = c * z[i * n + k] - s * f
                        }
                        i -= 1
                    }
                    if deflated { continue }
                    d[l] -= p
                    e[l] = g
                    e[m] = 0
                }
            } while m != l
        }
        return true
    }

    /// The Hermitian part (A + A^H)/2, removing round-off asymmetry.
    static func symmetrised(_ input: [Complex], n: Int) -> [Complex] {
        var a = input
        for j in 0..<n {
            a[j * n + j].im = 0
            for i in 0..<j {
                let x = a[j * n + i], y = a[i * n + j].conjugate
                let m = Complex(0.5 * (x.re + y.re), 0.5 * (x.im + y.im))
                a[j * n + i] = m
                a[i * n + j] = m.conjugate
            }
        }
        return a
    }

    /// The same decomposition by cyclic complex Jacobi rotations: slower, kept as the fallback
    /// and as an independent check in the tests.
    /// Eigenvalues (ascending) and eigenvectors (columns, column-major n x n) of the Hermitian
    /// matrix `a` (column-major n x n; both triangles read as Hermitian).
    static func jacobi(_ input: [Complex], n: Int) -> (values: [Double], vectors: [Complex]) {
        var a = symmetrised(input, n: n)
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
