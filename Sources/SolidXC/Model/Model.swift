#if canImport(Glibc)
import Glibc
#endif

/// One atom of the model: its element, pseudopotential and Cartesian position (bohr).
public struct Atom {
    public let element: String
    public let position: Vec3
    public let pseudo: GTHPseudopotential
}

/// The physics of a calculation, validated: lattice, atoms and their pseudopotentials, electron
/// count. No numerics (those live in `PlaneWaveBasis`).
public struct Model {
    public let lattice: Lattice
    public let atoms: [Atom]
    public let charge: Double
    /// Number of valence electrons in the cell.
    public let nelectrons: Double
    /// 1 (spin-restricted) or 2 (collinear spin, when `magmoms` is given).
    public let nspin: Int
    /// Initial moment per atom (Bohr magnetons); zeros without spin.
    public let magmoms: [Double]
    public let spec: SystemSpec

    public init(_ spec: SystemSpec) throws {
        self.spec = spec
        lattice = try Lattice(rows: spec.lattice)
        guard !spec.atoms.isEmpty else {
            throw SolidXCError.input(field: "atoms", message: "no atoms given; a cell needs at least one atom")
        }
        guard spec.atoms.count <= 2000 else {
            throw SolidXCError.input(field: "atoms", message: "\(spec.atoms.count) atoms exceeds the limit of 2000")
        }
        var cache: [String: GTHPseudopotential] = [:]
        var atoms: [Atom] = []
        for (i, a) in spec.atoms.enumerated() {
            guard Elements.atomicNumber(a.element) != nil else {
                throw SolidXCError.input(field: "atoms[\(i)].element", message: "unknown element '\(a.element)'")
            }
            guard a.position.count == 3 else {
                throw SolidXCError.input(field: "atoms[\(i)].position", message: "expected 3 Cartesian coordinates (bohr), got \(a.position.count)")
            }
            guard a.position.allSatisfy({ $0.isFinite }) else {
                throw SolidXCError.input(field: "atoms[\(i)].position", message: "contains NaN or infinite values")
            }
            let table: String
            switch spec.pseudo {
            case let .table(name): table = name
            case let .perElement(map):
                guard let name = map[a.element] else {
                    throw SolidXCError.input(field: "pseudo", message: "no pseudopotential given for element '\(a.element)' (known: \(map.keys.sorted()))")
                }
                table = name
            }
            let pseudo: GTHPseudopotential
            if let cached = cache[a.element] {
                pseudo = cached
            } else {
                pseudo = try GTHPseudopotential.load(element: a.element, table: table)
                cache[a.element] = pseudo
            }
            atoms.append(Atom(element: a.element, position: Vec3(a.position[0], a.position[1], a.position[2]), pseudo: pseudo))
        }
        // Atoms closer than 0.1 bohr (including periodic images) are an input error.
        for i in 0..<atoms.count {
            for j in i..<atoms.count {
                let d = Model.minimumImageDistance(lattice, atoms[i].position - atoms[j].position, sameAtom: i == j)
                if d < 0.1 {
                    let what = i == j ? "atom \(i) and its periodic image" : "atoms \(i) and \(j)"
                    throw SolidXCError.input(field: "atoms", message: "\(what) are \(d) bohr apart; atoms must be at least 0.1 bohr apart")
                }
            }
        }
        self.atoms = atoms
        guard spec.charge.isFinite else {
            throw SolidXCError.input(field: "charge", message: "must be a finite number")
        }
        charge = spec.charge
        let zsum = atoms.reduce(0.0) { $0 + $1.pseudo.zion }
        nelectrons = zsum - spec.charge
        guard nelectrons > 0 else {
            throw SolidXCError.input(field: "charge", message: "charge \(spec.charge) leaves \(nelectrons) electrons; the cell has \(zsum) valence electrons")
        }
        if let moments = spec.magmoms {
            guard moments.count == atoms.count else {
                throw SolidXCError.input(field: "magmoms", message: "has \(moments.count) entries for \(atoms.count) atoms; give one initial moment (Bohr magnetons) per atom")
            }
            for (i, m) in moments.enumerated() {
                guard m.isFinite else { throw SolidXCError.input(field: "magmoms[\(i)]", message: "must be a finite number, got \(m)") }
                guard abs(m) <= atoms[i].pseudo.zion else {
                    throw SolidXCError.input(field: "magmoms[\(i)]", message: "\(m) Bohr magnetons exceeds the \(atoms[i].pseudo.zion) valence electrons of \(atoms[i].element)")
                }
            }
            // The moments set the initial spin split: more net moment than electrons cannot be.
            let total = moments.reduce(0, +)
            guard abs(total) <= nelectrons + 1e-9 else {
                throw SolidXCError.input(field: "magmoms", message: "the initial moments add up to \(total) Bohr magnetons, more than the \(nelectrons) valence electrons of the cell (after charge \(spec.charge)); lower the moments or the charge")
            }
            nspin = 2
            magmoms = moments
        } else {
            nspin = 1
            magmoms = [Double](repeating: 0, count: atoms.count)
        }
    }

    static func minimumImageDistance(_ lattice: Lattice, _ d: Vec3, sameAtom: Bool) -> Double {
        let x = lattice.reduced(d)
        let centred = x - x.rounded(.toNearestOrEven)
        var best = Double.infinity
        for i in -1...1 {
            for j in -1...1 {
                for l in -1...1 {
                    if sameAtom && i == 0 && j == 0 && l == 0 { continue }
                    let r = lattice.cartesian(centred + Vec3(Double(i), Double(j), Double(l)))
                    best = min(best, norm(r))
                }
            }
        }
        return best
    }
}
