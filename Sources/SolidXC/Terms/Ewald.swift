/// Ion-ion electrostatics of the pseudo-ion charges Z_ion (a constant of the geometry).
public final class EwaldTerm: Term {
    public let name = "ewald"
    public let energy: Double
    /// -dE/dR per atom (Ha/bohr).
    let ionForces: [Vec3]
    /// dE/d(eps_ab) (Ha).
    let ionStrainDerivative: [[Double]]
    public init(model: Model) {
        (energy, ionForces, ionStrainDerivative) = ewaldSum(lattice: model.lattice, charges: model.atoms.map { $0.pseudo.zion },
                                       positions: model.atoms.map { $0.position })
    }
    public func evaluate(_ state: SCFState) throws -> TermEvaluation { TermEvaluation(energy: energy, potential: nil) }
    public func forces(_ state: SCFState) throws -> [Vec3]? { ionForces }
    public func strainDerivative(_ state: SCFState) throws -> [[Double]]? { ionStrainDerivative }
}
