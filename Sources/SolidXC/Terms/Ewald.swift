/// Ion-ion electrostatics of the pseudo-ion charges Z_ion (a constant of the geometry).
public final class EwaldTerm: Term {
    public let name = "ewald"
    public let energy: Double
    public init(model: Model) {
        energy = ewaldEnergy(lattice: model.lattice, charges: model.atoms.map { $0.pseudo.zion },
                             positions: model.atoms.map { $0.position })
    }
    public func evaluate(_ state: SCFState) throws -> TermEvaluation { TermEvaluation(energy: energy, potential: nil) }
}
