public extension SCFResult {
    /// The stress tensor sigma_ab = (1/Omega) dE/d(eps_ab) of the (free) energy under the
    /// homogeneous strain r -> (1 + eps) r, at a fixed plane-wave set (Miller indices), Ha/bohr^3,
    /// 3x3 row-major. ABINIT's and ASE's sign: a compressed cell has negative stress, and the
    /// pressure is -trace/3. At self-consistency only explicit dependences on the cell count
    /// (kinetic, Hartree, xc with its gradient term, local and nonlocal pseudopotential, Ewald, psp
    /// correction); the smeared free energy is variational in the occupations, so the entropy adds
    /// nothing. Computed on each call from the converged density and orbitals.
    var stress: [[Double]] {
        get throws { try convergedState.stress() }
    }
}

extension ConvergedState {
    /// The terms' strain derivatives summed, symmetrised (the orbitals cover the irreducible
    /// k-points only) and divided by the volume.
    func stress() throws -> [[Double]] {
        let model = basis.model
        let state = SCFState(rho: density, nspin: nspin, orbitals: orbitals, occupations: occupations,
                             nbands: scf.nbands, eigenvalues: eigenvalues, fermiLevel: fermiLevel)
        var total = [[Double]](repeating: [0, 0, 0], count: 3)
        for term in scf.terms {
            guard let d = try term.strainDerivative(state) else { continue }
            for a in 0..<3 { for b in 0..<3 { total[a][b] += 0.5 * (d[a][b] + d[b][a]) } }
        }
        let omega = model.lattice.volume
        return basis.symmetry.symmetrise(tensor: total, lattice: model.lattice).map { $0.map { $0 / omega } }
    }
}
