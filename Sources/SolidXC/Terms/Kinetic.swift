/// Kinetic energy sum_k w_k sum_n f_n sum_G |k+G|^2/2 |c_nG|^2; its operator is diagonal.
public final class Kinetic: Term {
    public let name = "kinetic"
    let basis: PlaneWaveBasis
    public init(basis: PlaneWaveBasis) { self.basis = basis }

    public func evaluate(_ state: SCFState) throws -> TermEvaluation {
        let nk = basis.kpoints.count
        var energy = 0.0
        for s in 0..<state.nspin {
            for (k, kb) in basis.kpoints.enumerated() {
                let psi = state.orbitals[s * nk + k]
                let occ = state.occupations[s * nk + k]
                let npw = kb.count
                var ek = 0.0
                for n in 0..<state.nbands where occ[n] != 0 {
                    var t = 0.0
                    for g in 0..<npw { t += kb.kinetic[g] * psi[n * npw + g].norm2 }
                    ek += occ[n] * t
                }
                energy += kb.weight * ek
            }
        }
        return TermEvaluation(energy: energy, potential: nil)
    }

    /// |k+G|^2 goes to |(1 - eps^T)(k+G)|^2 under strain, so dE/d(eps_ab) = -sum w f |c|^2 q_a q_b.
    public func strainDerivative(_ state: SCFState) throws -> [[Double]]? {
        let nk = basis.kpoints.count
        var d = [[Double]](repeating: [0, 0, 0], count: 3)
        for s in 0..<state.nspin {
            for (k, kb) in basis.kpoints.enumerated() {
                let psi = state.orbitals[s * nk + k]
                let occ = state.occupations[s * nk + k]
                let npw = kb.count
                var density = [Double](repeating: 0, count: npw)
                for n in 0..<state.nbands where occ[n] != 0 {
                    for g in 0..<npw { density[g] += occ[n] * psi[n * npw + g].norm2 }
                }
                for g in 0..<npw {
                    let q = kb.kPlusG[g]
                    let w = kb.weight * density[g]
                    for a in 0..<3 { for b in 0..<3 { d[a][b] -= w * q[a] * q[b] } }
                }
            }
        }
        return d
    }

    public func addDenseOperator(k: Int, spin: Int, matrix: UnsafeMutablePointer<Complex>, npw: Int) {
        let kin = basis.kpoints[k].kinetic
        for g in 0..<npw { matrix[g * npw + g].re += kin[g] }
    }

    public func applyOperator(k: Int, spin: Int, input: UnsafePointer<Complex>, output: UnsafeMutablePointer<Complex>, npw: Int, nvec: Int) {
        basis.kpoints[k].kinetic.withUnsafeBufferPointer { kin in
            for v in 0..<nvec {
                let offset = v * npw
                for g in 0..<npw {
                    output[offset + g].re += kin[g] * input[offset + g].re
                    output[offset + g].im += kin[g] * input[offset + g].im
                }
            }
        }
    }
}
