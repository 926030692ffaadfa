#if canImport(Glibc)
import Glibc
#endif

/// Block LOBPCG for the lowest `m` eigenpairs of a Hermitian operator (Knyazev 2001), with the
/// Teter-Payne-Allan kinetic preconditioner, soft locking of converged bands (no W for them),
/// a Rayleigh-Ritz step rejected when a Ritz value rises (lost accuracy), and a canonical
/// (eigenvalue-thresholded) orthonormalisation of the search space [X, W, P], which tolerates
/// linearly dependent directions without Cholesky breakdowns. Pure BLAS-3 plus small Jacobi
/// problems, so it runs on any thread.
struct LOBPCG {
    let n: Int
    let m: Int
    let apply: ([Complex], Int) -> [Complex]
    /// |k+G|^2/2 per plane wave, for the preconditioner.
    let kinetic: [Double]
    /// How many of the lowest bands must reach the tolerance (nil: all m). The others are buffer
    /// bands: they get no search direction of their own and stay in the block through the
    /// Rayleigh-Ritz steps, so that a level just above the required ones is not lost; see
    /// `SelfConsistentField.bufferBands`.
    var converge: Int? = nil

    struct Result {
        var values: [Double]
        var vectors: [Complex]
        var residuals: [Double]
        var iterations: Int
    }

    /// An array of `count` values written in full by `fill` (no zeroing first: the long arrays
    /// here are large, and zeroing and page-faulting them was a tenth of the eigensolver's time).
    @inline(__always) func filled(_ count: Int, _ fill: (UnsafeMutablePointer<Complex>) -> Void) -> [Complex] {
        [Complex](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 { fill(buffer.baseAddress!) }
            initialized = count
        }
    }

    /// The columns of `blocks` side by side, in one allocation.
    func concatenated(_ blocks: [Complex]...) -> [Complex] {
        filled(blocks.reduce(0) { $0 + $1.count }) { out in
            var offset = 0
            for block in blocks {
                block.withUnsafeBufferPointer { (out + offset).update(from: $0.baseAddress!, count: $0.count) }
                offset += block.count
            }
        }
    }

    /// A^H B for A n x p, B n x q.
    func adjointProduct(_ a: [Complex], _ p: Int, _ b: [Complex], _ q: Int) -> [Complex] {
        if p == 0 || q == 0 { return [Complex](repeating: .zero, count: p * q) }
        return a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
            filled(p * q) { gemmAdjointA(ap.baseAddress!, bp.baseAddress!, m: n, p: p, q: q, $0) }
        } }
    }

    /// A C for A n x p, C p x q.
    func product(_ a: [Complex], _ p: Int, _ c: [Complex], _ q: Int) -> [Complex] {
        if p == 0 || q == 0 { return [Complex](repeating: .zero, count: n * q) }
        return a.withUnsafeBufferPointer { ap in c.withUnsafeBufferPointer { cp in
            filled(n * q) { gemm(ap.baseAddress!, cp.baseAddress!, m: n, k: p, n: q, $0) }
        } }
    }

    /// The largest residual among the `required` lowest bands.
    func worstRequired(_ residuals: [Double], _ required: Int) -> Double {
        residuals.prefix(required).max() ?? .infinity
    }

    /// Returns T (p x r) with (S T)^H (S T) = I over the well-conditioned part of span(S).
    func orthonormaliser(_ s: [Complex], _ p: Int) -> (t: [Complex], rank: Int) {
        let gram = adjointProduct(s, p, s, p)
        let (values, vectors) = SmallEigen.hermitian(gram, n: p)
        let top = values.last ?? 0
        var keep: [Int] = []
        for i in 0..<p where values[i] > 1e-13 * top && values[i] > 0 { keep.append(i) }
        var t = [Complex](repeating: .zero, count: p * keep.count)
        for (col, i) in keep.enumerated() {
            let f = 1 / values[i].squareRoot()
            for r in 0..<p { t[col * p + r] = f * vectors[i * p + r] }
        }
        return (t, keep.count)
    }

    func run(initial: [Complex], tol: Double, maxiter: Int) -> Result {
        var x = initial
        // Orthonormalise the start and do a first Rayleigh-Ritz.
        let required = min(converge ?? m, m)
        // Columns left zero (buffer bands with no warm start) start from deterministic noise damped
        // by the kinetic energy; the warm-started columns are kept as they are.
        var seed: UInt64 = 0x9E3779B97F4A7C15 &+ UInt64(n)
        func noise() -> Complex {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            let a = Double(seed >> 11) / Double(1 << 53) - 0.5
            return Complex(a, 0.5 * a)
        }
        for v in 0..<m where !(0..<n).contains(where: { x[v * n + $0].norm2 > 0 }) {
            for g in 0..<n { x[v * n + g] = (1 / (1 + kinetic[g])) * noise() }
        }
        var (t, rank) = orthonormaliser(x, m)
        if rank < m {
            // Complete a rank-deficient start with deterministic noise damped by the kinetic energy.
            for v in 0..<m {
                for g in 0..<n { x[v * n + g] += (1e-3 / (1 + kinetic[g])) * noise() }
            }
            (t, rank) = orthonormaliser(x, m)
        }
        x = product(x, m, t, rank)
        var ax = apply(x, rank)
        var width = rank
        var (values, c) = SmallEigen.hermitian(adjointProduct(x, width, ax, width), n: width)
        let keep = min(m, width)
        x = product(x, width, Array(c[0..<(width * keep)]), keep)
        ax = product(ax, width, Array(c[0..<(width * keep)]), keep)
        values = Array(values[0..<keep])
        width = keep
        var p: [Complex] = []
        var ap: [Complex] = []
        var pWidth = 0
        var residuals = [Double](repeating: .infinity, count: m)
        var iteration = 0
        // The best iterate so far (smallest largest residual), returned if the iteration ends
        // worse than it, and the count of consecutive Rayleigh-Ritz steps that had to be rejected.
        var best: (values: [Double], vectors: [Complex], residuals: [Double])? = nil
        var rejected = 0
        while iteration < maxiter {
            // Residuals R = AX - X Lambda.
            var r = ax
            for v in 0..<width {
                var norm = 0.0
                for g in 0..<n {
                    let idx = v * n + g
                    r[idx] = r[idx] - values[v] * x[idx]
                    norm += r[idx].norm2
                }
                residuals[v] = norm.squareRoot()
            }
            if best == nil || worstRequired(residuals, required) < worstRequired(best!.residuals, required) {
                best = (values, x, residuals)
            }
            // Only required bands get a search direction; buffer bands ride along in X, where the
            // Rayleigh-Ritz step can exchange them with required ones.
            let active = (0..<min(width, required)).filter { residuals[$0] > tol }
            if active.isEmpty { break }
            iteration += 1
            // Preconditioned residuals of the active bands.
            var w = [Complex](repeating: .zero, count: n * active.count)
            for (col, v) in active.enumerated() {
                var ek = 0.0
                for g in 0..<n { ek += kinetic[g] * x[v * n + g].norm2 }
                ek = max(ek, 1e-2)
                var norm = 0.0
                for g in 0..<n {
                    let y = kinetic[g] / ek
                    let num = 27 + y * (18 + y * (12 + 8 * y))
                    let factor = num / (num + 16 * y * y * y * y)
                    let value = factor * r[v * n + g]
                    w[col * n + g] = value
                    norm += value.norm2
                }
                let inv = 1 / max(norm.squareRoot(), 1e-300)
                for g in 0..<n { w[col * n + g] = inv * w[col * n + g] }
            }
            // Block-sized arrays are released as soon as they are used up (here and below), not at
            // the end of the iteration: the peak of the eigensolver's memory is where the search
            // space is formed, and these would otherwise all be alive there.
            r = []
            // Project W (and P) out of X twice for a well-conditioned Gram matrix.
            for _ in 0..<2 {
                let xw = adjointProduct(x, width, w, active.count)
                let corr = product(x, width, xw, active.count)
                for i in 0..<w.count { w[i] -= corr[i] }
            }
            var aw = apply(w, active.count)
            // Search space S = [X, W, P] and AS, orthonormalised as So = S T. (Working on the Gram
            // matrices T^H (S^H AS) T instead, without forming So and ASo, saved 15 % of the time on
            // the graphene benchmark but lost accuracy: rounding in S^H AS is amplified by |T|^2, and
            // the finite-difference checks of BackwardTests then failed at 1e-5.)
            let sWidth = width + active.count + pWidth
            var s = concatenated(x, w, p)
            var asp = concatenated(ax, aw, ap)
            (w, aw, p, ap) = ([], [], [], [])
            let (tt, r2) = orthonormaliser(s, sWidth)
            let so = product(s, sWidth, tt, r2)
            s = []
            let aso = product(asp, sWidth, tt, r2)
            asp = []
            let hs = adjointProduct(so, r2, aso, r2)
            let (vals, vecs) = SmallEigen.hermitian(hs, n: r2)
            let newWidth = min(m, r2)
            // The search space contains X, so no Ritz value may rise (Cauchy interlacing). One that
            // does beyond rounding means the orthonormalised basis lost accuracy (nearly dependent
            // directions, late in a tight solve): the step is rejected and the iteration restarts
            // from X without P; a second failure in a row ends it with the best iterate.
            if newWidth < width || (0..<width).contains(where: { vals[$0] > values[$0] + 1e-9 * max(1, abs(values[$0])) }) {
                rejected += 1
                if rejected >= 2 || pWidth == 0 { break }
                p = []
                ap = []
                pWidth = 0
                continue
            }
            rejected = 0
            let cm = Array(vecs[0..<(r2 * newWidth)])
            let xNew = product(so, r2, cm, newWidth)
            let axNew = product(aso, r2, cm, newWidth)
            // P = X_new - X (X^H X_new): the step, orthogonal to the old X. The difference is
            // taken on the small coefficient matrix in the orthonormal basis So = S T (where
            // X = So Q, Q = So^H X), P = So (C - Q Q^H C), so no cancellation happens between
            // long vectors, and AP = ASo (C - Q Q^H C) is A applied to exactly the same
            // combination: P and AP stay consistent without a new application of A.
            let q = adjointProduct(so, r2, x, width)
            var step = cm
            q.withUnsafeBufferPointer { qp in
                var qhc = [Complex](repeating: .zero, count: width * newWidth)
                cm.withUnsafeBufferPointer { cp in qhc.withUnsafeMutableBufferPointer { hp in
                    gemmAdjointA(qp.baseAddress!, cp.baseAddress!, m: r2, p: width, q: newWidth, hp.baseAddress!)
                } }
                qhc.withUnsafeBufferPointer { hp in step.withUnsafeMutableBufferPointer { sp in
                    gemm(qp.baseAddress!, hp.baseAddress!, m: r2, k: width, n: newWidth, sp.baseAddress!,
                         alpha: Complex(-1, 0), beta: Complex(1, 0))
                } }
            }
            // Columns normalised (in the orthonormal basis, |P_v| = |step_v|). Converged bands keep
            // their P: dropping it (their step is mostly rounding) cost 10-30 % more iterations on the
            // benchmark cases; the Ritz-value check above catches the rare step that noise spoils.
            // Buffer bands get no P (with it, the larger search space cost more than it saved).
            var kept: [Complex] = []
            kept.reserveCapacity(newWidth * r2)
            for v in 0..<min(newWidth, required) {
                var norm = 0.0
                for g in 0..<r2 { norm += step[v * r2 + g].norm2 }
                guard norm > 1e-300 else { continue }
                let inv = 1 / norm.squareRoot()
                for g in 0..<r2 { kept.append(inv * step[v * r2 + g]) }
            }
            pWidth = kept.count / r2
            p = product(so, r2, kept, pWidth)
            ap = product(aso, r2, kept, pWidth)
            x = xNew
            ax = axNew
            values = Array(vals[0..<newWidth])
            width = newWidth
        }
        if let best, worstRequired(best.residuals, required) < worstRequired(residuals, required) {
            return Result(values: best.values, vectors: best.vectors, residuals: best.residuals, iterations: iteration)
        }
        return Result(values: values, vectors: x, residuals: residuals, iterations: iteration)
    }
}
