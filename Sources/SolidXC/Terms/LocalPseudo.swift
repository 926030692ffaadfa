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
        for members in LocalPseudo.elementGroups(model.atoms) {
            let atoms = members.map { model.atoms[$0] }
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

    /// Atom indices grouped by element (in element order), so each form factor is evaluated once per G.
    static func elementGroups(_ atoms: [Atom]) -> [[Int]] {
        var groups: [String: [Int]] = [:]
        for (a, atom) in atoms.enumerated() { groups[atom.element, default: []].append(a) }
        return groups.sorted { $0.key < $1.key }.map { $0.value }
    }

    public func localPotential(_ state: SCFState) throws -> [Double]? { try evaluate(state).potential }

    public func energy(_ state: SCFState) throws -> Double {
        let n = basis.gridCount
        var energy = 0.0
        for s in 0..<state.nspin {
            for i in 0..<n { energy += (potentialReal[i] - averageShift) * state.rho[s * n + i] }
        }
        return energy * basis.dv
    }

    public func evaluate(_ state: SCFState) throws -> TermEvaluation {
        let n = basis.gridCount
        let energy = try energy(state)
        var potential = [Double](repeating: 0, count: state.nspin * n)
        for s in 0..<state.nspin { for i in 0..<n { potential[s * n + i] = potentialReal[i] } }
        return TermEvaluation(energy: energy, potential: potential)
    }

    /// E = sum_a sum_{G != 0} v_a(|G|) Re[e^{iG.tau_a} rho(G)] with rho(G) proportional to 1/Omega at fixed
    /// state and d|G|/d(eps_ab) = -G_a G_b/|G|: dE/d(eps_ab) = -E delta_ab - sum v_a'(|G|) G_a G_b/|G| Re[...].
    public func strainDerivative(_ state: SCFState) throws -> [[Double]]? {
        let n = basis.gridCount
        var total = [Double](repeating: 0, count: n)
        for s in 0..<state.nspin { for i in 0..<n { total[i] += state.rho[s * n + i] } }
        let rhoG = basis.fft.forward(real: total)
        let atoms = basis.model.atoms
        var energy = 0.0
        var d = [[Double]](repeating: [0, 0, 0], count: 3)
        for members in LocalPseudo.elementGroups(atoms) {
            let pseudo = atoms[members[0]].pseudo
            for idx in 0..<n {
                let g2 = basis.gNorm2[idx]
                if g2 == 0 { continue }
                let gn = g2.squareRoot()
                let g = basis.gVectors[idx]
                var re = 0.0
                for a in members { re += (basis.structureFactor(g, atoms[a].position).conjugate * rhoG[idx]).re }
                energy += pseudo.localFourier(gn) * re
                let slope = pseudo.localFourierDerivative(gn) * re / gn
                for a in 0..<3 { for b in 0..<3 { d[a][b] -= slope * g[a] * g[b] } }
            }
        }
        for a in 0..<3 { d[a][a] -= energy }
        return d
    }

    /// E = sum_a sum_{G != 0} v_a(|G|) Re[e^{iG.tau_a} rho(G)] with rho(G) the spin-summed density's
    /// coefficients, so F_a = sum_{G != 0} G v_a(|G|) Im[e^{iG.tau_a} rho(G)].
    public func forces(_ state: SCFState) throws -> [Vec3]? {
        let n = basis.gridCount
        var total = [Double](repeating: 0, count: n)
        for s in 0..<state.nspin { for i in 0..<n { total[i] += state.rho[s * n + i] } }
        let rhoG = basis.fft.forward(real: total)
        let atoms = basis.model.atoms
        var forces = [Vec3](repeating: .zero, count: atoms.count)
        for members in LocalPseudo.elementGroups(atoms) {
            let pseudo = atoms[members[0]].pseudo
            for idx in 0..<n {
                let g2 = basis.gNorm2[idx]
                if g2 == 0 { continue }
                let form = pseudo.localFourier(g2.squareRoot())
                let g = basis.gVectors[idx]
                for a in members {
                    let z = basis.structureFactor(g, atoms[a].position).conjugate * rhoG[idx]
                    forces[a] += (form * z.im) * g
                }
            }
        }
        return forces
    }
}
