/// Occupations and the Fermi level over the weighted k-points, per (spin, k) block.
/// With smearing they come from `Smearing`; without, every state below the Fermi level holds
/// g electrons (g = 2 without spin, 1 with), which needs a gap in the spectrum at the Fermi level.
public enum Occupation {
    public static func compute(eigenvalues: [[Double]], weights: [Double], nelectrons: Double, nspin: Int,
                               nbands: Int, smearing: Smearing?) throws -> (occupations: [[Double]], fermiLevel: Double) {
        let g: Double = nspin == 1 ? 2 : 1
        if let smearing {
            let mu = try Smearing.fermiLevel(eigenvalues: eigenvalues, weights: weights, spinFactor: g,
                                             nelectrons: nelectrons, smearing: smearing)
            return (smearing.occupations(eigenvalues: eigenvalues, fermiLevel: mu, spinFactor: g), mu)
        }
        return try integer(eigenvalues: eigenvalues, weights: weights, nelectrons: nelectrons, g: g, nbands: nbands)
    }

    /// Step-function occupations: the Fermi level is put in the first gap of the spectrum below
    /// which the weighted states hold exactly N_el electrons.
    static func integer(eigenvalues: [[Double]], weights: [Double], nelectrons: Double, g: Double,
                        nbands: Int) throws -> (occupations: [[Double]], fermiLevel: Double) {
        var levels: [(energy: Double, weight: Double)] = []
        for (b, eps) in eigenvalues.enumerated() { for e in eps { levels.append((e, weights[b] * g)) } }
        levels.sort { $0.energy < $1.energy }
        var count = 0.0
        var fermi: Double? = nil
        for (i, level) in levels.enumerated() {
            count += level.weight
            if abs(count - nelectrons) < 1e-8 * max(1, nelectrons) {
                // The next level must lie strictly above: otherwise states at the Fermi level are
                // partly filled and integer occupations are ambiguous.
                if i + 1 < levels.count && levels[i + 1].energy - level.energy < 1e-6 { break }
                fermi = level.energy
                break
            }
            if count > nelectrons + 1e-8 * max(1, nelectrons) { break }
        }
        let capacity = weights.reduce(0, +) * g * Double(nbands)
        guard let mu = fermi else {
            if count < nelectrons - 1e-8 && levels.count > 0 && capacity < nelectrons {
                throw SolidXCError.input(field: "nbands", message: "\(nbands) bands cannot hold \(nelectrons) electrons")
            }
            throw SolidXCError.input(field: "smearing", message: "the cell has \(nelectrons) valence electrons and no gap at the Fermi level, so whole bands cannot be filled; set smearing (for example smearing=\"fermi-dirac\", temperature=0.01)")
        }
        let occupations = eigenvalues.map { eps in eps.map { $0 <= mu ? g : 0 } }
        return (occupations, mu)
    }
}
