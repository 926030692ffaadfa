/// The smearing entropy term -T S (Ha per cell) that turns the internal energy into the Mermin
/// free energy F = E - T S, with S = sum_k w_k g sum_n s((eps_nk - mu)/sigma) for the smearing's
/// entropy function s (see `Smearing`). It has no potential: F is variational in the occupations.
public final class Entropy: Term {
    public let name = "entropy"
    let basis: PlaneWaveBasis
    public let smearing: Smearing
    public init(basis: PlaneWaveBasis, smearing: Smearing) {
        self.basis = basis
        self.smearing = smearing
    }

    public func evaluate(_ state: SCFState) throws -> TermEvaluation {
        guard !state.eigenvalues.isEmpty else { return TermEvaluation(energy: 0, potential: nil) }
        let nk = basis.kpoints.count
        let weights = (0..<state.eigenvalues.count).map { basis.kpoints[$0 % nk].weight }
        let term = smearing.entropyTerm(eigenvalues: state.eigenvalues, weights: weights,
                                        spinFactor: state.nspin == 1 ? 2 : 1, fermiLevel: state.fermiLevel)
        return TermEvaluation(energy: term, potential: nil)
    }
}
