public extension SCFResult {
    /// Hellmann-Feynman forces on the atoms (Ha/bohr), one Cartesian vector per atom in the
    /// model's order: F_I = -dE/dR_I of the (free) energy. At self-consistency only the terms that
    /// depend on the positions explicitly contribute (local and nonlocal pseudopotential, Ewald);
    /// the smeared free energy is variational in the occupations, so smearing adds no term.
    /// Computed on each call from the converged density and orbitals.
    var forces: [Vec3] {
        get throws { try convergedState.forces() }
    }
}

extension ConvergedState {
    /// The sum of the terms' forces at the converged state. The orbitals cover the irreducible
    /// k-points only, so the sum is symmetrised, which gives the full k-grid's forces.
    func forces() throws -> [Vec3] {
        let model = basis.model
        let state = SCFState(rho: density, nspin: nspin, orbitals: orbitals, occupations: occupations,
                             nbands: scf.nbands, eigenvalues: eigenvalues, fermiLevel: fermiLevel)
        var total = [Vec3](repeating: .zero, count: model.atoms.count)
        for term in scf.terms {
            guard let f = try term.forces(state) else { continue }
            for a in total.indices { total[a] += f[a] }
        }
        return basis.symmetry.symmetrise(forces: total, positions: model.atoms.map { $0.position }, lattice: model.lattice)
    }
}
