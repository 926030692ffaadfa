/// The local part of the pseudopotentials: V_loc(G) = (1/Omega) sum_a e^{-iG.tau_a} v_a(|G|).
/// The G = 0 component is the psp-core constant sum_a alpha_a / Omega. It is kept in the
/// potential (so eigenvalues follow Quantum ESPRESSO's and PySCF's convention) but its energy
/// is reported separately by `PspCorrection`, as ABINIT reports "psp_core".
public final class LocalPseudo: Term {
    public let name = "local"
    let basis: PlaneWaveBasis
    /// V_loc on the real-space grid (Ha), including the G = 0 constant.
    public let potentialReal: [Double]
    /// The G = 0 constant (Ha).
    public let averageShift: Double

    public init(basis: PlaneWaveBasis) {
        self.basis = basis
        let model = basis.model
        let omega = model.lattice.volume
        var vG = [Complex](repeating: .zero, count: basis.gridCount)
        var shift = 0.0
        for atom in model.atoms { shift += atom.pseudo.localFourierNonCoulombAtZero }
        shift /= omega
        // Group atoms by element so each form factor is evaluated once per G.
        var groups: [String: [Atom]] = [:]
        for atom in model.atoms { groups[atom.element, default: []].append(atom) }
        for (_, atoms) in groups.sorted(by: { $0.key < $1.key }) {
            let pseudo = atoms[0].pseudo
            for idx in 0..<basis.gridCount {
                let g2 = basis.gNorm2[idx]
                if g2 == 0 { continue }
                let form = pseudo.localFourier(g2.squareRoot()) / omega
                let g = basis.gVectors[idx]
                var sf = Complex.zero
                for a in atoms { sf += basis.structureFactor(g, a.position) }
                vG[idx] += form * sf
            }
        }
        vG[0] = Complex(shift, 0)
        averageShift = shift
        potentialReal = basis.fft.backwardReal(vG)
    }

    public func localPotential(_ state: SCFState) throws -> [Double]? { try evaluate(state).potential }

    public func evaluate(_ state: SCFState) throws -> TermEvaluation {
        let n = basis.gridCount
        var energy = 0.0
        for s in 0..<state.nspin {
            for i in 0..<n { energy += (potentialReal[i] - averageShift) * state.rho[s * n + i] }
        }
        energy *= basis.dv
        var potential = [Double](repeating: 0, count: state.nspin * n)
        for s in 0..<state.nspin { for i in 0..<n { potential[s * n + i] = potentialReal[i] } }
        return TermEvaluation(energy: energy, potential: potential)
    }
}
