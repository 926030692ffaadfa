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

    public init(basis: PlaneWaveBasis) {
        self.basis = basis
        let model = basis.model
        let omega = model.lattice.volume
        // Enumerate projector channels (atom, l, m, i) and the couplings between them.
        struct Channel { let atom: Int; let l: Int; let m: Int; let i: Int }
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
        let npw = basis.kpoints[k].count
        var c = [Complex](repeating: .zero, count: nproj * nbands)
        if nproj == 0 { return c }
        projectors[k].withUnsafeBufferPointer { p in
            psi.withUnsafeBufferPointer { s in
                c.withUnsafeMutableBufferPointer { out in
                    gemmAdjointA(p.baseAddress!, s.baseAddress!, m: npw, p: nproj, q: nbands, out.baseAddress!)
                }
            }
        }
        return c
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
        let nk = basis.kpoints.count
        let nbands = state.nbands
        for s in 0..<state.nspin {
            for k in 0..<nk {
                let occ = state.occupations[s * nk + k]
                let kb = basis.kpoints[k]
                let npw = kb.count
                let psi = state.orbitals[s * nk + k]
                let c = projections(k: k, psi: psi, nbands: nbands)
                let dc = coupled(c, nvec: nbands)
                var scaled = [Complex](repeating: .zero, count: npw * nproj)
                var derived = [Complex](repeating: .zero, count: nproj * nbands)
                for direction in 0..<3 {
                    // (-i q_direction) beta_p, column by column.
                    for p in 0..<nproj {
                        for g in 0..<npw {
                            let b = projectors[k][p * npw + g]
                            let q = kb.kPlusG[g][direction]
                            scaled[p * npw + g] = Complex(q * b.im, -q * b.re)
                        }
                    }
                    scaled.withUnsafeBufferPointer { pp in
                        psi.withUnsafeBufferPointer { sp in
                            derived.withUnsafeMutableBufferPointer { out in
                                gemmAdjointA(pp.baseAddress!, sp.baseAddress!, m: npw, p: nproj, q: nbands, out.baseAddress!)
                            }
                        }
                    }
                    for n in 0..<nbands where occ[n] != 0 {
                        let factor = 2 * kb.weight * occ[n]
                        for p in 0..<nproj {
                            let a = derived[n * nproj + p], b = dc[n * nproj + p]
                            derivative[channelAtom[p]][direction] += factor * (a.re * b.re + a.im * b.im)
                        }
                    }
                }
            }
        }
        return derivative.map { -$0 }
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
