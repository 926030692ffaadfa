#if canImport(Glibc)
import Glibc
#endif

/// A space-group operation in reduced coordinates, x -> W x + t (W integer, det W = +-1).
public struct SymmetryOperation: Equatable {
    /// W, row-major: rotation[i][j] multiplies x_j in component i.
    public let rotation: [[Int]]
    /// t, reduced coordinates in [0, 1).
    public let translation: Vec3

    /// W x + t (no folding).
    public func apply(_ x: Vec3) -> Vec3 { SymmetryOperation.times(rotation, x) + translation }

    static func times(_ w: [[Int]], _ x: Vec3) -> Vec3 {
        Vec3((0..<3).map { i in Double(w[i][0]) * x.x + Double(w[i][1]) * x.y + Double(w[i][2]) * x.z })
    }

    static func times(_ w: [[Int]], _ m: SIMD3<Int>) -> SIMD3<Int> {
        SIMD3<Int>((0..<3).map { i in w[i][0] * m.x + w[i][1] * m.y + w[i][2] * m.z })
    }

    static func transpose(_ w: [[Int]]) -> [[Int]] { (0..<3).map { i in (0..<3).map { j in w[j][i] } } }

    static func determinant(_ w: [[Int]]) -> Int {
        w[0][0] * (w[1][1] * w[2][2] - w[1][2] * w[2][1]) - w[0][1] * (w[1][0] * w[2][2] - w[1][2] * w[2][0])
            + w[0][2] * (w[1][0] * w[2][1] - w[1][1] * w[2][0])
    }

    /// The inverse of a unimodular integer matrix (the adjugate divided by det = +-1).
    static func inverse(_ w: [[Int]]) -> [[Int]] {
        let d = determinant(w)
        func cofactor(_ r: Int, _ c: Int) -> Int {
            let rows = (0..<3).filter { $0 != r }, cols = (0..<3).filter { $0 != c }
            let minor = w[rows[0]][cols[0]] * w[rows[1]][cols[1]] - w[rows[0]][cols[1]] * w[rows[1]][cols[0]]
            return (r + c) % 2 == 0 ? minor : -minor
        }
        return (0..<3).map { i in (0..<3).map { j in cofactor(j, i) * d } }
    }
}

/// The symmetry of a crystal that a calculation uses: the space-group operations that map the
/// atoms (with their element and initial magnetic moment) onto themselves, restricted to those
/// that also map the Monkhorst-Pack grid and the FFT grid onto themselves, so that reducing the
/// k-points and symmetrising the density give exactly the result of the full grid. The
/// restriction keeps a subgroup (each condition is closed under composition).
public struct CrystalSymmetry {
    public let operations: [SymmetryOperation]

    /// Identity only: what `symmetry: false` uses.
    public static let identity = CrystalSymmetry(operations: [SymmetryOperation(rotation: [[1, 0, 0], [0, 1, 0], [0, 0, 1]], translation: .zero)])

    init(operations: [SymmetryOperation]) { self.operations = operations }

    /// The lattice's point group: integer W (entries -1, 0, 1) with W^T M W = M for the metric
    /// M_ij = a_i . a_j, within a relative tolerance.
    static func latticeRotations(_ lattice: Lattice, tolerance: Double) -> [[[Int]]] {
        let a = lattice.vectors
        let metric = (0..<3).map { i in (0..<3).map { j in dot(a[i], a[j]) } }
        let scale = (0..<3).map { metric[$0][$0] }.max() ?? 1
        var found: [[[Int]]] = []
        var w = [[Int]](repeating: [0, 0, 0], count: 3)
        for code in 0..<19683 {
            var c = code
            for i in 0..<3 { for j in 0..<3 { w[i][j] = c % 3 - 1; c /= 3 } }
            let d = SymmetryOperation.determinant(w)
            guard d == 1 || d == -1 else { continue }
            var ok = true
            outer: for i in 0..<3 {
                for j in i..<3 {
                    var s = 0.0
                    for k in 0..<3 { for l in 0..<3 where w[k][i] != 0 && w[l][j] != 0 { s += Double(w[k][i] * w[l][j]) * metric[k][l] } }
                    if abs(s - metric[i][j]) > tolerance * scale { ok = false; break outer }
                }
            }
            if ok { found.append(w) }
        }
        return found
    }

    /// The space group of the atoms: for each lattice rotation W, the translations t = x_j - W x_0
    /// (atom 0 onto each atom of its kind) that carry every atom onto an atom of the same kind.
    /// `kinds` distinguishes atoms that may not map onto each other (element, moment).
    public static func find(lattice: Lattice, positions: [Vec3], kinds: [Int], tolerance: Double = 1e-5) -> CrystalSymmetry {
        precondition(positions.count == kinds.count && !positions.isEmpty)
        let reduced = positions.map { lattice.reduced($0) }
        func sameModLattice(_ x: Vec3, _ y: Vec3) -> Bool {
            let d = x - y
            return norm(lattice.cartesian(d - d.rounded(.toNearestOrEven))) < tolerance
        }
        var operations: [SymmetryOperation] = []
        for w in latticeRotations(lattice, tolerance: 1e-8) {
            var translations: [Vec3] = []
            for j in 0..<reduced.count where kinds[j] == kinds[0] {
                var t = reduced[j] - SymmetryOperation.times(w, reduced[0])
                t = t - t.rounded(.down)
                for c in 0..<3 where t[c] > 1 - 1e-9 { t[c] = 0 }
                if translations.contains(where: { sameModLattice($0, t) }) { continue }
                let maps = (0..<reduced.count).allSatisfy { a in
                    let image = SymmetryOperation.times(w, reduced[a]) + t
                    return (0..<reduced.count).contains { b in kinds[b] == kinds[a] && sameModLattice(image, reduced[b]) }
                }
                if maps { translations.append(t) }
            }
            for t in translations { operations.append(SymmetryOperation(rotation: w, translation: t)) }
        }
        // Identity first, then a fixed order, so that results do not depend on the search order.
        operations.sort { a, b in
            let ka = a.rotation.joined().map { $0 } + [Int((a.translation.x * 1e6).rounded()), Int((a.translation.y * 1e6).rounded()), Int((a.translation.z * 1e6).rounded())]
            let kb = b.rotation.joined().map { $0 } + [Int((b.translation.x * 1e6).rounded()), Int((b.translation.y * 1e6).rounded()), Int((b.translation.z * 1e6).rounded())]
            let ia = a.rotation == CrystalSymmetry.identity.operations[0].rotation && a.translation == .zero
            let ib = b.rotation == CrystalSymmetry.identity.operations[0].rotation && b.translation == .zero
            if ia != ib { return ia }
            return ka.lexicographicallyPrecedes(kb)
        }
        return CrystalSymmetry(operations: operations)
    }

    /// The operations that keep the Monkhorst-Pack grid k = (n + shift)/N (as a set, modulo
    /// reciprocal-lattice vectors) and the FFT grid of size `fft` (W^T may only mix directions of
    /// equal length) invariant.
    public func restricted(kgridSize n: [Int], shift: [Double], fftSize fft: [Int]) -> CrystalSymmetry {
        let kept = operations.filter { op in
            let wt = SymmetryOperation.transpose(op.rotation)
            for i in 0..<3 { for j in 0..<3 where wt[i][j] != 0 && (fft[i] != fft[j]) { return false } }
            // k' = W^T k; k = (m + s)/N lies on the grid when k N - s is an integer vector.
            for i in 0..<n[0] {
                for j in 0..<n[1] {
                    for l in 0..<n[2] {
                        let k = Vec3((Double(i) + shift[0]) / Double(n[0]), (Double(j) + shift[1]) / Double(n[1]), (Double(l) + shift[2]) / Double(n[2]))
                        let image = SymmetryOperation.times(wt, k)
                        for c in 0..<3 {
                            let m = image[c] * Double(n[c]) - shift[c]
                            if abs(m - m.rounded()) > 1e-8 { return false }
                        }
                    }
                }
            }
            return true
        }
        return CrystalSymmetry(operations: kept)
    }

    /// Symmetrises a function on the FFT grid: f(x) -> (1/N_op) sum_op f(W x + t), done on its
    /// Fourier coefficients, f(G') -> (1/N_op) sum_op f(W^{-T} G') e^{2 pi i (W^{-T} G') . t},
    /// with Miller indices taken modulo the grid (the grid is invariant, see `restricted`).
    /// Each of `nspin` spin blocks of `values` ([nspin][N]) symmetrised; unchanged with the identity alone.
    public func symmetrise(spins values: [Double], nspin: Int, fft: FFTGrid) -> [Double] {
        guard operations.count > 1 else { return values }
        let n = fft.count
        var out = values
        for s in 0..<nspin {
            out.replaceSubrange((s * n)..<((s + 1) * n), with: symmetrise(Array(values[(s * n)..<((s + 1) * n)]), fft: fft))
        }
        return out
    }

    public func symmetrise(_ values: [Double], fft: FFTGrid) -> [Double] {
        guard operations.count > 1 else { return values }
        let (n1, n2, n3) = fft.size
        let coefficients = fft.forward(real: values)
        var out = [Complex](repeating: .zero, count: coefficients.count)
        // W^{-T} per operation as 9 flat integers, and e^{2 pi i h_c t_c} tabulated per axis for
        // |h_c| <= reach (|h_c| <= |g_1| + |g_2| + |g_3| <= 3 max(n) / 2).
        let reach = 3 * max(n1, n2, n3) / 2 + 2
        let span = 2 * reach + 1
        let inverse = operations.flatMap { SymmetryOperation.transpose(SymmetryOperation.inverse($0.rotation)).joined() }
        var phases = [Complex](repeating: Complex(1, 0), count: operations.count * 3 * span)
        for (o, op) in operations.enumerated() where op.translation != .zero {
            for c in 0..<3 {
                for h in -reach...reach {
                    phases[(o * 3 + c) * span + h + reach] = Complex.phase(2 * Double.pi * Double(h) * op.translation[c])
                }
            }
        }
        let translated = operations.map { $0.translation != .zero }
        let nops = operations.count
        let scale = 1.0 / Double(nops)
        coefficients.withUnsafeBufferPointer { cp in
            phases.withUnsafeBufferPointer { pp in
                inverse.withUnsafeBufferPointer { w in
                    for i in 0..<n1 {
                        let mi = i <= n1 / 2 ? i : i - n1
                        for j in 0..<n2 {
                            let mj = j <= n2 / 2 ? j : j - n2
                            for l in 0..<n3 {
                                let ml = l <= n3 / 2 ? l : l - n3
                                var sum = Complex.zero
                                for o in 0..<nops {
                                    let r = 9 * o
                                    let hx = w[r] * mi + w[r + 1] * mj + w[r + 2] * ml
                                    let hy = w[r + 3] * mi + w[r + 4] * mj + w[r + 5] * ml
                                    let hz = w[r + 6] * mi + w[r + 7] * mj + w[r + 8] * ml
                                    let a = (hx % n1 + n1) % n1, b = (hy % n2 + n2) % n2, c = (hz % n3 + n3) % n3
                                    var value = cp[(a * n2 + b) * n3 + c]
                                    if translated[o] {
                                        let base = o * 3 * span + reach
                                        value = value * pp[base + hx] * pp[base + span + hy] * pp[base + 2 * span + hz]
                                    }
                                    sum += value
                                }
                                out[(i * n2 + j) * n3 + l] = scale * sum
                            }
                        }
                    }
                }
            }
        }
        return fft.backwardReal(out)
    }
}
