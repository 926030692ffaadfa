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
