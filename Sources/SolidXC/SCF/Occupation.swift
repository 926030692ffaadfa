/// Occupations without smearing: the lowest N/2 bands at every k hold 2 electrons (nspin = 1).
/// Smeared and spin-polarised occupations plug in here (see the [metals] issue).
public enum Occupation {
    /// Returns occupations per (spin, k) and the Fermi level (the highest occupied eigenvalue).
    public static func insulating(eigenvalues: [[Double]], nelectrons: Double, nspin: Int, nbands: Int) throws -> (occupations: [[Double]], fermiLevel: Double) {
        let perState = nspin == 1 ? 2.0 : 1.0
        let occupied = nelectrons / perState
        let nocc = Int(occupied.rounded())
        guard abs(occupied - Double(nocc)) < 1e-8, nspin == 1 else {
            throw SolidXCError.input(field: "smearing", message: "the cell has \(nelectrons) valence electrons, which cannot fill whole bands without smearing; set smearing (for example smearing=\"fermi-dirac\", temperature=0.01) or spin polarisation (magmoms)")
        }
        guard nocc <= nbands else {
            throw SolidXCError.input(field: "nbands", message: "\(nbands) bands cannot hold \(nelectrons) electrons; nbands must be at least \(nocc)")
        }
        var fermi = -Double.infinity
        let occ = eigenvalues.map { eps -> [Double] in
            fermi = max(fermi, eps[nocc - 1])
            return (0..<nbands).map { $0 < nocc ? perState : 0 }
        }
        return (occ, fermi)
    }
}
