/// Ion-ion electrostatics of the pseudo-ion charges Z_ion (a constant of the geometry).
public final class EwaldTerm: Term {
    public let name = "ewald"
    public let energy: Double
    /// -dE/dR per atom (Ha/bohr).
    let ionForces: [Vec3]
    public init(model: Model) {
        (energy, ionForces) = ewaldSum(lattice: model.lattice, charges: model.atoms.map { $0.pseudo.zion },
                                       positions: model.atoms.map { $0.position })
    }
    public func evaluate(_ state: SCFState) throws -> TermEvaluation { TermEvaluation(energy: energy, potential: nil) }
    public func forces(_ state: SCFState) throws -> [Vec3]? { ionForces }
}
