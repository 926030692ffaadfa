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
/// that also map the Monkhorst-Pack grid and the FFT grid's points onto themselves, so that reducing the
/// k-points and symmetrising the density give exactly the result of the full grid. The
/// restriction keeps a subgroup (each condition is closed under composition).
public struct CrystalSymmetry {
    public let operations: [SymmetryOperation]
    /// Orbit tables of `symmetrise`, built on first use for each FFT grid.
    let orbits = OrbitCache()

    /// Identity only: what `symmetry: false` uses.
    public static let identity = CrystalSymmetry(operations: [SymmetryOperation(rotation: [[1, 0, 0], [0, 1, 0], [0, 0, 1]], translation: .zero)])

    init(operations: [SymmetryOperation]) { self.operations = operations }

    /// The lattice's point group: integer W (entries -1, 0, 1) with W^T M W = M for the metric
    /// M_ij = a_i . a_j, within a relative tolerance.
    static func latticeRotations(_ lattice: Lattice, tolerance: Double) -> [[[Int]]] {
        var found: [[[Int]]] = []
        var w = [[Int]](repeating: [0, 0, 0], count: 3)
        for code in 0..<19683 {
            var c = code
            for i in 0..<3 { for j in 0..<3 { w[i][j] = c % 3 - 1; c /= 3 } }
            let d = SymmetryOperation.determinant(w)
            guard d == 1 || d == -1 else { continue }
            if preservesMetric(w, of: lattice, tolerance: tolerance) { found.append(w) }
        }
        return found
    }

    /// W^T M W = M for the metric M_ij = a_i . a_j, within `tolerance` relative to the largest M_ii.
    static func preservesMetric(_ w: [[Int]], of lattice: Lattice, tolerance: Double) -> Bool {
        let a = lattice.vectors
        let metric = (0..<3).map { i in (0..<3).map { j in dot(a[i], a[j]) } }
        let scale = (0..<3).map { metric[$0][$0] }.max() ?? 1
        for i in 0..<3 {
            for j in i..<3 {
                var s = 0.0
                for k in 0..<3 { for l in 0..<3 where w[k][i] != 0 && w[l][j] != 0 { s += Double(w[k][i] * w[l][j]) * metric[k][l] } }
                if abs(s - metric[i][j]) > tolerance * scale { return false }
            }
        }
        return true
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
    /// reciprocal-lattice vectors) and the points of the FFT grid of size `fft` invariant: W^T may
    /// only mix directions of equal length, and the translation must move grid points onto grid
    /// points (t_i fft_i an integer). An operation whose translation falls between grid points is
    /// not a symmetry of the discretised energy (the xc energy on the grid changes under it: the
    /// egg-box effect), so using it would change the energy at second order and the forces at first.
    public func restricted(kgridSize n: [Int], shift: [Double], fftSize fft: [Int]) -> CrystalSymmetry {
        let kept = operations.filter { op in
            let wt = SymmetryOperation.transpose(op.rotation)
            for i in 0..<3 { for j in 0..<3 where wt[i][j] != 0 && (fft[i] != fft[j]) { return false } }
            for i in 0..<3 {
                let steps = op.translation[i] * Double(fft[i])
                if abs(steps - steps.rounded()) > 1e-6 { return false }
            }
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

    /// The operations whose rotation also keeps `lattice`'s metric (W^T M W = M, relative 1e-10):
    /// with a separate basis lattice the plane-wave spheres must map onto themselves.
    public func restricted(preservingMetricOf lattice: Lattice) -> CrystalSymmetry {
        CrystalSymmetry(operations: operations.filter { CrystalSymmetry.preservesMetric($0.rotation, of: lattice, tolerance: 1e-10) })
    }

    /// The Cartesian rotation matrix (row-major) of an operation: R v = A^T W A^{-T} v, built by
    /// applying W to the reduced coordinates of the Cartesian unit vectors.
    func cartesianRotation(_ op: SymmetryOperation, lattice: Lattice) -> [[Double]] {
        let columns = (0..<3).map { c -> Vec3 in
            var e = Vec3.zero
            e[c] = 1
            return lattice.cartesian(SymmetryOperation.times(op.rotation, lattice.reduced(e)))
        }
        return (0..<3).map { r in (0..<3).map { c in columns[c][r] } }
    }

    /// Symmetrises a rank-2 Cartesian tensor (stress): sigma -> (1/N_op) sum_op R sigma R^T.
    public func symmetrise(tensor: [[Double]], lattice: Lattice) -> [[Double]] {
        guard operations.count > 1 else { return tensor }
        var out = [[Double]](repeating: [0, 0, 0], count: 3)
        for op in operations {
            let r = cartesianRotation(op, lattice: lattice)
            for i in 0..<3 {
                for j in 0..<3 {
                    var s = 0.0
                    for k in 0..<3 { for l in 0..<3 { s += r[i][k] * tensor[k][l] * r[j][l] } }
                    out[i][j] += s
                }
            }
        }
        return out.map { $0.map { $0 / Double(operations.count) } }
    }

    /// Symmetrises a function on the FFT grid: f(x) -> (1/N_op) sum_op f(W x + t), done on its
    /// Fourier coefficients, f(G') -> (1/N_op) sum_op f(W^{-T} G') e^{2 pi i (W^{-T} G') . t},
    /// one sum per orbit of Miller indices (`OrbitTable`); coefficients whose orbit leaves the
    /// grid's Miller range become zero. Each of `nspin` spin blocks of `values` ([nspin][N]) symmetrised; unchanged with the identity alone.
    public func symmetrise(spins values: [Double], nspin: Int, fft: FFTGrid) -> [Double] {
        guard operations.count > 1 else { return values }
        let n = fft.count
        var out = values
        for s in 0..<nspin {
            out.replaceSubrange((s * n)..<((s + 1) * n), with: symmetrise(Array(values[(s * n)..<((s + 1) * n)]), fft: fft))
        }
        return out
    }

    /// Symmetrises one Cartesian vector per atom (forces): F_J = (1/N_op) sum_op R_op F_I, where the
    /// operation carries atom I onto atom J and R_op = L W L^{-1} is its rotation in Cartesian
    /// coordinates (L holds the lattice vectors as columns). Unchanged with the identity alone.
    public func symmetrise(forces: [Vec3], positions: [Vec3], lattice: Lattice) -> [Vec3] {
        guard operations.count > 1 else { return forces }
        let reduced = positions.map { lattice.reduced($0) }
        var out = [Vec3](repeating: .zero, count: forces.count)
        for op in operations {
            for (i, x) in reduced.enumerated() {
                // The operations were found for these positions: the image is an atom, the nearest one.
                let image = op.apply(x)
                let distances = reduced.map { y -> Double in
                    let d = image - y
                    return norm(lattice.cartesian(d - d.rounded(.toNearestOrEven)))
                }
                let j = distances.indices.min { distances[$0] < distances[$1] } ?? i
                out[j] += lattice.cartesian(SymmetryOperation.times(op.rotation, lattice.reduced(forces[i])))
            }
        }
        return out.map { $0 / Double(operations.count) }
    }

    public func symmetrise(_ values: [Double], fft: FFTGrid) -> [Double] {
        guard operations.count > 1 else { return values }
        let table = orbits.table(for: self, fft: fft)
        let coefficients = fft.forward(real: values)
        var out = [Complex](repeating: .zero, count: coefficients.count)
        let nops = operations.count
        let scale = 1.0 / Double(nops)
        coefficients.withUnsafeBufferPointer { cp in
            out.withUnsafeMutableBufferPointer { op in
                table.index.withUnsafeBufferPointer { idx in
                    if table.phase.isEmpty {
                        for orbit in 0..<table.count {
                            let base = orbit * nops
                            var sum = 0.0 as Double, sumIm = 0.0 as Double
                            for o in 0..<nops { let c = cp[Int(idx[base + o])]; sum += c.re; sumIm += c.im }
                            let value = Complex(scale * sum, scale * sumIm)
                            for o in 0..<nops { op[Int(idx[base + o])] = value }
                        }
                    } else {
                        table.phase.withUnsafeBufferPointer { ph in
                            for orbit in 0..<table.count {
                                let base = orbit * nops
                                var sum = Complex.zero
                                for o in 0..<nops { sum += cp[Int(idx[base + o])] * ph[base + o] }
                                let value = scale * sum
                                for o in 0..<nops { op[Int(idx[base + o])] = value * ph[base + o].conjugate }
                            }
                        }
                    }
                }
            }
        }
        return fft.backwardReal(out)
    }

    /// The orbits of the operations on the Fourier coefficients of a grid, tabulated once per grid
    /// size. With A_o = W_o^{-T} and P_o(h) = e^{2 pi i h . t_o}, the symmetrised coefficient is
    /// f'(h) = (1/N_op) sum_o f(A_o h) P_o(A_o h); a symmetric f' obeys f'(A_o h) = f'(h) P_o(A_o h)^*,
    /// so one sum per orbit (from its first member h) gives every member. Entry (orbit, o) holds the
    /// grid index of A_o h and P_o(A_o h). Orbits that reach beyond the grid's Miller range (corners
    /// and Nyquist planes, beyond the density's cutoff sphere) are not tabulated.
    struct OrbitTable {
        var count = 0
        var index: [Int32] = []
        /// Empty when no operation has a translation (every phase is 1).
        var phase: [Complex] = []
    }

    final class OrbitCache {
        private let lock = Lock()
        private var tables: [[Int]: OrbitTable] = [:]

        func table(for symmetry: CrystalSymmetry, fft: FFTGrid) -> OrbitTable {
            let (n1, n2, n3) = fft.size
            return lock.withLock {
                if let table = tables[[n1, n2, n3]] { return table }
                let table = symmetry.makeOrbitTable(n1, n2, n3)
                tables[[n1, n2, n3]] = table
                return table
            }
        }
    }

    private func makeOrbitTable(_ n1: Int, _ n2: Int, _ n3: Int) -> OrbitTable {
        let nops = operations.count
        let inverse = operations.map { SymmetryOperation.transpose(SymmetryOperation.inverse($0.rotation)) }
        let translated = operations.contains { $0.translation != .zero }
        var visited = [Bool](repeating: false, count: n1 * n2 * n3)
        var table = OrbitTable()
        func miller(_ i: Int, _ n: Int) -> Int { i <= n / 2 ? i : i - n }
        func slot(_ m: Int, _ n: Int) -> Int? { m > n / 2 || m < n / 2 - n + 1 ? nil : (m + n) % n }
        var members = [Int](repeating: 0, count: nops)
        for i in 0..<n1 {
            for j in 0..<n2 {
                for l in 0..<n3 where !visited[(i * n2 + j) * n3 + l] {
                    let h = SIMD3<Int>(miller(i, n1), miller(j, n2), miller(l, n3))
                    let images = inverse.map { SymmetryOperation.times($0, h) }
                    // An orbit that leaves the grid's Miller range has no symmetric function on the
                    // grid but zero: its members are left out of the table (set to zero).
                    var inside = true
                    for (o, image) in images.enumerated() {
                        if let a = slot(image.x, n1), let b = slot(image.y, n2), let c = slot(image.z, n3) {
                            members[o] = (a * n2 + b) * n3 + c
                            visited[members[o]] = true
                        } else {
                            inside = false
                        }
                    }
                    guard inside else { continue }
                    for (o, image) in images.enumerated() {
                        table.index.append(Int32(members[o]))
                        if translated {
                            let t = operations[o].translation
                            table.phase.append(Complex.phase(2 * Double.pi * (Double(image.x) * t.x + Double(image.y) * t.y + Double(image.z) * t.z)))
                        }
                    }
                    table.count += 1
                }
            }
        }
        return table
    }
}
