/// The G = 0 ("psp core") energy N_el * sum_a alpha_a / Omega, where alpha_a is the integral of
/// the non-Coulomb part of atom a's local pseudopotential. ABINIT reports it as "psp_core".
public final class PspCorrection: Term {
    public let name = "psp_correction"
    public let energy: Double
    public init(model: Model) {
        let alpha = model.atoms.reduce(0.0) { $0 + $1.pseudo.localFourierNonCoulombAtZero }
        energy = model.nelectrons * alpha / model.lattice.volume
    }
    public func evaluate(_ state: SCFState) throws -> TermEvaluation { TermEvaluation(energy: energy, potential: nil) }
    public func strainDerivative(_ state: SCFState) throws -> [[Double]]? { isotropicStrainDerivative(energy) }
}
