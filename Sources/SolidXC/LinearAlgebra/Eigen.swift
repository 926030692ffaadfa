import CSolidXCDeps

/// Dense Hermitian eigenproblems through LAPACK.
public enum DenseEigen {
    /// The lowest `count` eigenpairs of a Hermitian n x n matrix (column-major, upper triangle used).
    /// The matrix is destroyed. Returns eigenvalues (ascending) and eigenvectors (n x count, column-major).
    public static func lowest(_ matrix: inout [Complex], n: Int, count: Int) throws -> (values: [Double], vectors: [Complex]) {
        guard n > 0, count > 0, count <= n else {
            throw SolidXCError.input(field: "nbands", message: "asked for \(count) bands of a basis of size \(n); nbands must be between 1 and the number of plane waves")
        }
        guard n < Int(Int32.max) / max(n, 1) else {
            throw SolidXCError.memory(message: "eigensolver: basis of \(n) plane waves is too large for 32-bit LAPACK sizes")
        }
        var values = [Double](repeating: 0, count: n)
        var vectors = [Complex](repeating: .zero, count: n * count)
        var isuppz = [Int32](repeating: 0, count: 2 * n)
        var found: Int32 = 0
        let info = matrix.withUnsafeMutableBytes { a in
            vectors.withUnsafeMutableBytes { z in
                LAPACKE_zheevr(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "V")), CChar(UInt8(ascii: "I")), CChar(UInt8(ascii: "U")),
                               Int32(n), a.baseAddress!.assumingMemoryBound(to: sxc_lapack_complex_double.self), Int32(n),
                               0, 0, 1, Int32(count), 0, &found, &values,
                               z.baseAddress!.assumingMemoryBound(to: sxc_lapack_complex_double.self), Int32(n), &isuppz)
            }
        }
        guard info == 0, Int(found) == count else {
            throw SolidXCError.numerical(message: "eigensolver: LAPACK zheevr failed (info \(info), found \(found) of \(count) eigenpairs)")
        }
        return (Array(values[0..<count]), vectors)
    }
}

/// C = A^H B for column-major complex matrices A (m x p), B (m x q); C is p x q.
func gemmAdjointA(_ a: UnsafePointer<Complex>, _ b: UnsafePointer<Complex>, m: Int, p: Int, q: Int, _ c: UnsafeMutablePointer<Complex>) {
    var one = Complex(1, 0)
    var zero = Complex(0, 0)
    cblas_zgemm(CblasColMajor, CblasConjTrans, CblasNoTrans, Int32(p), Int32(q), Int32(m),
                &one, a, Int32(m), b, Int32(m), &zero, c, Int32(p))
}

/// C = alpha A B + beta C for column-major complex matrices A (m x k), B (k x n), C (m x n).
func gemm(_ a: UnsafePointer<Complex>, _ b: UnsafePointer<Complex>, m: Int, k: Int, n: Int,
          _ c: UnsafeMutablePointer<Complex>, alpha: Complex = Complex(1, 0), beta: Complex = Complex(0, 0),
          transB: Bool = false) {
    var al = alpha
    var be = beta
    cblas_zgemm(CblasColMajor, CblasNoTrans, transB ? CblasConjTrans : CblasNoTrans, Int32(m), Int32(n), Int32(k),
                &al, a, Int32(m), b, Int32(transB ? n : k), &be, c, Int32(m))
}
