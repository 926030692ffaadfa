#if canImport(Glibc)
import Glibc
#endif

/// The separable GTH projectors: V_nl = sum_{a,l,m,i,j} |beta_{almi}> h^l_ij <beta_{almj}|, with
/// beta(k+G) = (1/sqrt(Omega)) (-i)^l Y_lm(q^) p_i^l(|q|) e^{-i q.tau_a}, q = k+G.
/// Per k the projectors form P (npw x nproj) and the couplings a block-diagonal D, so
/// V_nl = P D P^H.
public final class NonlocalPseudo: Term {
    public let name = "nonlocal"
    let basis: PlaneWaveBasis
    /// Per k: P, column-major npw x nproj.
    let projectors: [[Complex]]
    /// nproj x nproj, column-major (real symmetric, stored complex for BLAS).
    let coupling: [Complex]
    public let nproj: Int
    /// The atom of each projector channel.
    let channelAtom: [Int]
    /// Projector channel (atom, l, m index 0...2l, projector i), in column order of P.
    struct Channel { let atom: Int; let l: Int; let m: Int; let i: Int }
    let channels: [Channel]

    public init(basis: PlaneWaveBasis) {
        self.basis = basis
        let model = basis.model
        let omega = model.lattice.volume
        // Enumerate projector channels (atom, l, m, i) and the couplings between them.
        var channels: [Channel] = []
        for (a, atom) in model.atoms.enumerated() {
            let ps = atom.pseudo
            if ps.maxAngularMomentum < 0 { continue }
            for l in 0...ps.maxAngularMomentum {
                let count = ps.projectorCount(l: l)
                for m in 0..<(2 * l + 1) { for i in 0..<count { channels.append(Channel(atom: a, l: l, m: m, i: i)) } }
            }
        }
        nproj = channels.count
        self.channels = channels
        channelAtom = channels.map { $0.atom }
        var d = [Complex](repeating: .zero, count: nproj * nproj)
        for (p, cp) in channels.enumerated() {
            for (q, cq) in channels.enumerated() where cp.atom == cq.atom && cp.l == cq.l && cp.m == cq.m {
                d[q * nproj + p] = Complex(model.atoms[cp.atom].pseudo.h(l: cp.l)[cp.i][cq.i], 0)
            }
        }
        coupling = d
        var all: [[Complex]] = []
        let invSqrtOmega = 1 / omega.squareRoot()
        var ylm = [Double](repeating: 0, count: 7)
        for kb in basis.kpoints {
            let npw = kb.count
            var p = [Complex](repeating: .zero, count: npw * nproj)
            for g in 0..<npw {
                let q = kb.kPlusG[g]
                let qn = norm(q)
                let dir = qn > 0 ? q / qn : Vec3(0, 0, 0)
                var lastL = -1, lastAtom = -1
                for (c, ch) in channels.enumerated() {
                    let atom = model.atoms[ch.atom]
                    if ch.l != lastL || ch.atom != lastAtom {
                        ylm.withUnsafeMutableBufferPointer { GTHPseudopotential.realSphericalHarmonics(l: ch.l, direction: (dir.x, dir.y, dir.z), into: $0.baseAddress!) }
                        lastL = ch.l
                        lastAtom = ch.atom
                    }
                    let radial = atom.pseudo.projectorFourier(l: ch.l, i: ch.i, q: qn)
                    // (-i)^l
                    let il: Complex = [Complex(1, 0), Complex(0, -1), Complex(-1, 0), Complex(0, 1)][ch.l % 4]
                    let value = invSqrtOmega * ylm[ch.m] * radial
                    p[c * npw + g] = value * (il * Complex.phase(-dot(q, atom.position)))
                }
            }
            all.append(p)
        }
        projectors = all
    }

    /// c = P^H psi for nbands orbitals (nproj x nbands).
    func projections(k: Int, psi: [Complex], nbands: Int) -> [Complex] {
        projections(projectors[k], psi: psi, npw: basis.kpoints[k].count, nbands: nbands)
    }

    /// a^H psi for an npw x nproj matrix `a` (projectors or their derivatives), nproj x nbands.
    func projections(_ a: [Complex], psi: [Complex], npw: Int, nbands: Int) -> [Complex] {
        var c = [Complex](repeating: .zero, count: nproj * nbands)
        if nproj == 0 { return c }
        a.withUnsafeBufferPointer { p in
            psi.withUnsafeBufferPointer { s in
                c.withUnsafeMutableBufferPointer { out in
                    gemmAdjointA(p.baseAddress!, s.baseAddress!, m: npw, p: nproj, q: nbands, out.baseAddress!)
                }
            }
        }
        return c
    }

    /// Calls `body` for each (spin, k) block of the state with its k index, orbitals,
    /// occupations, projections c = P^H psi and D c.
    func forEachBlock(_ state: SCFState, _ body: (Int, [Complex], _ occupations: [Double], [Complex], [Complex]) -> Void) {
        let nk = basis.kpoints.count
        for s in 0..<state.nspin {
            for k in 0..<nk {
                let psi = state.orbitals[s * nk + k]
                let c = projections(k: k, psi: psi, nbands: state.nbands)
                body(k, psi, state.occupations[s * nk + k], c, coupled(c, nvec: state.nbands))
            }
        }
    }

    /// sum_n f_n 2 Re[conj(x_pn) y_pn] over the occupied bands, for nproj x nbands x and y.
    func occupiedOverlap(_ x: [Complex], _ y: [Complex], occupations occ: [Double], nbands: Int) -> Double {
        var sum = 0.0
        for n in 0..<nbands where occ[n] != 0 {
            var e = 0.0
            for p in 0..<nproj { e += x[n * nproj + p].re * y[n * nproj + p].re + x[n * nproj + p].im * y[n * nproj + p].im }
            sum += 2 * occ[n] * e
        }
        return sum
    }

    /// D c for nvec projection vectors (nproj x nvec).
    func coupled(_ c: [Complex], nvec: Int) -> [Complex] {
        var dc = [Complex](repeating: .zero, count: nproj * nvec)
        coupling.withUnsafeBufferPointer { d in
            c.withUnsafeBufferPointer { cp in
                dc.withUnsafeMutableBufferPointer { out in
                    gemm(d.baseAddress!, cp.baseAddress!, m: nproj, k: nproj, n: nvec, out.baseAddress!)
                }
            }
        }
        return dc
    }

    public func evaluate(_ state: SCFState) throws -> TermEvaluation {
        let nk = basis.kpoints.count
        var energy = 0.0
        guard nproj > 0 else { return TermEvaluation(energy: 0, potential: nil) }
        for s in 0..<state.nspin {
            for k in 0..<nk {
                let occ = state.occupations[s * nk + k]
                let c = projections(k: k, psi: state.orbitals[s * nk + k], nbands: state.nbands)
                var ek = 0.0
                for n in 0..<state.nbands where occ[n] != 0 {
                    var e = 0.0
                    for q in 0..<nproj {
                        let cq = c[n * nproj + q]
                        for p in 0..<nproj {
                            let dpq = coupling[q * nproj + p].re
                            if dpq == 0 { continue }
                            let cp = c[n * nproj + p]
                            e += dpq * (cp.re * cq.re + cp.im * cq.im)
                        }
                    }
                    ek += occ[n] * e
                }
                energy += basis.kpoints[k].weight * ek
            }
        }
        return TermEvaluation(energy: energy, potential: nil)
    }

    /// beta_p(q) carries e^{-iq.tau_a}, so d<beta_p|psi>/dtau_a = <-iq beta_p|psi> and, with D real
    /// symmetric, dE/dtau_a = sum_k w_k sum_n f_n sum_{p in a} 2 Re[conj(d c_p) (D c)_p].
    public func forces(_ state: SCFState) throws -> [Vec3]? {
        let natom = basis.model.atoms.count
        var derivative = [Vec3](repeating: .zero, count: natom)
        guard nproj > 0 else { return derivative }
        let nbands = state.nbands
        forEachBlock(state) { k, psi, occ, _, dc in
            let kb = basis.kpoints[k]
            let npw = kb.count
            var scaled = [Complex](repeating: .zero, count: npw * nproj)
            for direction in 0..<3 {
                // (-i q_direction) beta_p, column by column.
                for p in 0..<nproj {
                    for g in 0..<npw {
                        let b = projectors[k][p * npw + g]
                        let q = kb.kPlusG[g][direction]
                        scaled[p * npw + g] = Complex(q * b.im, -q * b.re)
                    }
                }
                let derived = projections(scaled, psi: psi, npw: npw, nbands: nbands)
                for n in 0..<nbands where occ[n] != 0 {
                    let factor = 2 * kb.weight * occ[n]
                    for p in 0..<nproj {
                        let a = derived[n * nproj + p], b = dc[n * nproj + p]
                        derivative[channelAtom[p]][direction] += factor * (a.re * b.re + a.im * b.im)
                    }
                }
            }
        }
        return derivative.map { -$0 }
    }

    /// Per Cartesian direction c, the matrix (npw x nproj) of d beta_p / d q_c at k, with beta's
    /// phase e^{-iq.tau} held fixed (it is invariant under strain at fixed Miller indices):
    /// (1/sqrt(Omega)) (-i)^l e^{-iq.tau} [p'(|q|) q^_c Y_lm + p(|q|) d_c Y_lm].
    func projectorGradients(k: Int) -> [[Complex]] {
        let model = basis.model
        let kb = basis.kpoints[k]
        let npw = kb.count
        let invSqrtOmega = 1 / model.lattice.volume.squareRoot()
        var out = [[Complex]](repeating: [Complex](repeating: .zero, count: npw * nproj), count: 3)
        var ylm = [Double](repeating: 0, count: 7)
        var dylm = [Double](repeating: 0, count: 21)
        let powers: [Complex] = [Complex(1, 0), Complex(0, -1), Complex(-1, 0), Complex(0, 1)]
        for g in 0..<npw {
            let q = kb.kPlusG[g]
            let qn = norm(q)
            let dir = qn > 0 ? q / qn : Vec3(0, 0, 0)
            for (c, ch) in channels.enumerated() {
                let pseudo = model.atoms[ch.atom].pseudo
                ylm.withUnsafeMutableBufferPointer { GTHPseudopotential.realSphericalHarmonics(l: ch.l, direction: (q.x, q.y, q.z), into: $0.baseAddress!) }
                dylm.withUnsafeMutableBufferPointer { GTHPseudopotential.realSphericalHarmonicsGradient(l: ch.l, direction: (q.x, q.y, q.z), into: $0.baseAddress!) }
                let radial = pseudo.projectorFourier(l: ch.l, i: ch.i, q: qn)
                let slope = pseudo.projectorFourierDerivative(l: ch.l, i: ch.i, q: qn)
                let factor = invSqrtOmega * (powers[ch.l % 4] * Complex.phase(-dot(q, model.atoms[ch.atom].position)))
                for d in 0..<3 {
                    out[d][c * npw + g] = (slope * dir[d] * ylm[ch.m] + radial * dylm[3 * ch.m + d]) * factor
                }
            }
        }
        return out
    }

    /// beta ~ Omega^{-1/2} f(q) with q -> (1 - eps^T) q, so at fixed Miller indices
    /// d beta/d(eps_ab) = -beta delta_ab / 2 - (q_b d_a f + q_a d_b f)/2 (symmetrised), and
    /// dE/d(eps_ab) = -E delta_ab + sum_k w_k sum_n f_n 2 Re[<d_ab beta|psi>^* (D c)].
    public func strainDerivative(_ state: SCFState) throws -> [[Double]]? {
        var d = [[Double]](repeating: [0, 0, 0], count: 3)
        guard nproj > 0 else { return d }
        let nbands = state.nbands
        var energy = 0.0
        forEachBlock(state) { k, psi, occ, c, dc in
            let kb = basis.kpoints[k]
            let npw = kb.count
            energy += 0.5 * kb.weight * occupiedOverlap(c, dc, occupations: occ, nbands: nbands)
            let grads = projectorGradients(k: k)
            var scaled = [Complex](repeating: .zero, count: npw * nproj)
            for a in 0..<3 {
                for b in a..<3 {
                    for p in 0..<nproj {
                        for g in 0..<npw {
                            let q = kb.kPlusG[g]
                            scaled[p * npw + g] = -0.5 * (q[b] * grads[a][p * npw + g] + q[a] * grads[b][p * npw + g])
                        }
                    }
                    let derived = projections(scaled, psi: psi, npw: npw, nbands: nbands)
                    let sum = kb.weight * occupiedOverlap(derived, dc, occupations: occ, nbands: nbands)
                    d[a][b] += sum
                    if a != b { d[b][a] += sum }
                }
            }
        }
        for a in 0..<3 { d[a][a] -= energy }
        return d
    }

    public func addDenseOperator(k: Int, spin: Int, matrix: UnsafeMutablePointer<Complex>, npw: Int) {
        guard nproj > 0 else { return }
        var pd = [Complex](repeating: .zero, count: npw * nproj)
        projectors[k].withUnsafeBufferPointer { p in
            coupling.withUnsafeBufferPointer { d in
                pd.withUnsafeMutableBufferPointer { out in
                    gemm(p.baseAddress!, d.baseAddress!, m: npw, k: nproj, n: nproj, out.baseAddress!)
                }
            }
        }
        pd.withUnsafeBufferPointer { a in
            projectors[k].withUnsafeBufferPointer { p in
                gemm(a.baseAddress!, p.baseAddress!, m: npw, k: nproj, n: npw, matrix, beta: Complex(1, 0), transB: true)
            }
        }
    }

    public func applyOperator(k: Int, spin: Int, input: UnsafePointer<Complex>, output: UnsafeMutablePointer<Complex>, npw: Int, nvec: Int) {
        guard nproj > 0, nvec > 0 else { return }
        var c = [Complex](repeating: .zero, count: nproj * nvec)
        projectors[k].withUnsafeBufferPointer { p in
            c.withUnsafeMutableBufferPointer { cp in
                gemmAdjointA(p.baseAddress!, input, m: npw, p: nproj, q: nvec, cp.baseAddress!)
            }
            let dc = coupled(c, nvec: nvec)
            dc.withUnsafeBufferPointer { dcp in
                gemm(p.baseAddress!, dcp.baseAddress!, m: npw, k: nproj, n: nvec, output, beta: Complex(1, 0))
            }
        }
    }
}
