import SolidXC

/// Turns parsed JSON into the core's input types. It checks types and keys only; every
/// physical check (volume, distances, elements, ranges) is the core's. Messages name the
/// field as a path: "atoms[1].position[2]: expected a number, got null".
enum Decode {
    static let systemKeys = ["lattice", "atoms", "pseudo", "ecut", "kpts", "kshift", "fft_size", "charge",
                             "smearing", "temperature", "magmoms", "symmetry", "basis_lattice"]
    static let atomKeys = ["element", "position"]
    static let optionKeys = ["tol", "maxiter", "nbands", "mixing_beta", "kerker_q0", "raise_on_nonconvergence",
                             "memory_limit_bytes", "verbose", "threads", "xc_parameters", "density_tol", "time_limit"]

    /// Largest integer accepted anywhere (C int range, so every count fits the ABI's ints).
    static let intLimit = Double(Int32.max)

    static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    static func members(_ value: JSONValue, _ path: String, allowed: [String], what: String) throws -> [String: JSONValue] {
        guard case let .object(list) = value else {
            throw SolidXCError.input(field: path.isEmpty ? "json" : path, message: "expected \(what), got \(value.kindDescription)")
        }
        var out: [String: JSONValue] = [:]
        for (key, v) in list {
            guard allowed.contains(key) else {
                throw SolidXCError.input(field: join(path, key), message: "unknown key; known keys are \(allowed.joined(separator: ", "))")
            }
            out[key] = v
        }
        return out
    }

    static func required(_ m: [String: JSONValue], _ key: String, _ path: String) throws -> JSONValue {
        guard let v = m[key] else { throw SolidXCError.input(field: join(path, key), message: "required key is missing") }
        return v
    }

    static func number(_ value: JSONValue, _ field: String) throws -> Double {
        guard case let .number(x) = value else {
            throw SolidXCError.input(field: field, message: "expected a number, got \(value.kindDescription)")
        }
        return x
    }

    static func integer(_ value: JSONValue, _ field: String) throws -> Int {
        guard case let .number(x) = value, x.isFinite, x == x.rounded() else {
            throw SolidXCError.input(field: field, message: "expected an integer, got \(value.kindDescription)")
        }
        guard abs(x) <= intLimit else {
            throw SolidXCError.input(field: field, message: "integer \(x) is out of range (|n| <= \(Int32.max))")
        }
        return Int(x)
    }

    static func bool(_ value: JSONValue, _ field: String) throws -> Bool {
        guard case let .bool(b) = value else {
            throw SolidXCError.input(field: field, message: "expected true or false, got \(value.kindDescription)")
        }
        return b
    }

    static func string(_ value: JSONValue, _ field: String) throws -> String {
        guard case let .string(s) = value else {
            throw SolidXCError.input(field: field, message: "expected a string, got \(value.kindDescription)")
        }
        return s
    }

    static func array(_ value: JSONValue, _ field: String, of what: String) throws -> [JSONValue] {
        guard case let .array(items) = value else {
            throw SolidXCError.input(field: field, message: "expected \(what), got \(value.kindDescription)")
        }
        return items
    }

    static func numbers(_ value: JSONValue, _ field: String, of what: String) throws -> [Double] {
        try array(value, field, of: what).enumerated().map { try number($1, "\(field)[\($0)]") }
    }

    static func integers(_ value: JSONValue, _ field: String, of what: String) throws -> [Int] {
        try array(value, field, of: what).enumerated().map { try integer($1, "\(field)[\($0)]") }
    }

    /// nil for a missing key or an explicit null.
    static func nonNull(_ value: JSONValue?) -> JSONValue? {
        if let value, case .null = value { return nil }
        return value
    }

    static func systemSpec(_ json: JSONValue) throws -> SystemSpec {
        let m = try members(json, "", allowed: systemKeys, what: "an object with keys \(systemKeys.joined(separator: ", "))")
        let lattice = try array(try required(m, "lattice", ""), "lattice", of: "3 rows of 3 numbers (bohr)")
            .enumerated().map { try numbers($1, "lattice[\($0)]", of: "a row of 3 numbers (bohr)") }
        let atoms = try array(try required(m, "atoms", ""), "atoms", of: "a list of {\"element\", \"position\"} objects")
            .enumerated().map { i, item -> AtomSpec in
                let path = "atoms[\(i)]"
                let a = try members(item, path, allowed: atomKeys, what: "an object {\"element\": symbol, \"position\": [x, y, z]}")
                let element = try string(try required(a, "element", path), "\(path).element")
                let position = try numbers(try required(a, "position", path), "\(path).position", of: "3 Cartesian coordinates (bohr)")
                return AtomSpec(element: element, position: position)
            }
        var pseudo = PseudoSpec.table("gth-pade")
        if let p = m["pseudo"] {
            switch p {
            case let .string(name):
                pseudo = .table(name)
            case let .object(list):
                var map: [String: String] = [:]
                for (element, v) in list { map[element] = try string(v, "pseudo.\(element)") }
                pseudo = .perElement(map)
            default:
                throw SolidXCError.input(field: "pseudo", message: "expected a table name, a file path or an object {element: table}, got \(p.kindDescription)")
            }
        }
        let ecut = try number(try required(m, "ecut", ""), "ecut")
        let kpts = try m["kpts"].map { try integers($0, "kpts", of: "3 positive integers") } ?? [1, 1, 1]
        let kshift = try m["kshift"].map { try numbers($0, "kshift", of: "3 numbers") } ?? [0, 0, 0]
        var fftSize: [Int]? = nil
        if let f = m["fft_size"], case .null = f {
            fftSize = nil
        } else if let f = m["fft_size"] {
            fftSize = try integers(f, "fft_size", of: "null or 3 positive integers")
        }
        let charge = try m["charge"].map { try number($0, "charge") } ?? 0
        let smearing = try nonNull(m["smearing"]).map { try string($0, "smearing") }
        let temperature = try nonNull(m["temperature"]).map { try number($0, "temperature") }
        let magmoms = try nonNull(m["magmoms"]).map { try numbers($0, "magmoms", of: "one number per atom (Bohr magnetons)") }
        let symmetry = try m["symmetry"].map { try bool($0, "symmetry") } ?? true
        let basisLattice = try nonNull(m["basis_lattice"]).map {
            try array($0, "basis_lattice", of: "null or 3 rows of 3 numbers (bohr)")
                .enumerated().map { try numbers($1, "basis_lattice[\($0)]", of: "a row of 3 numbers (bohr)") }
        }
        return SystemSpec(lattice: lattice, atoms: atoms, pseudo: pseudo, ecut: ecut, kpts: kpts, kshift: kshift,
                          fftSize: fftSize, charge: charge, smearing: smearing, temperature: temperature, magmoms: magmoms,
                          symmetry: symmetry, basisLattice: basisLattice)
    }

    /// Options of `sxc_scf_forward`; absent keys keep the core's defaults, null means "automatic".
    static func scfOptions(_ json: JSONValue, xc: String) throws -> SCFOptions {
        let m = try members(json, "", allowed: optionKeys, what: "an object with keys \(optionKeys.joined(separator: ", "))")
        var o = SCFOptions()
        o.xc = xc
        func optionalValue(_ key: String) -> JSONValue? {
            guard let v = m[key] else { return nil }
            if case .null = v { return nil }
            return v
        }
        if let v = m["tol"] { o.tol = try number(v, "tol") }
        if let v = m["maxiter"] { o.maxiter = try integer(v, "maxiter") }
        o.nbands = try optionalValue("nbands").map { try integer($0, "nbands") }
        if let v = m["mixing_beta"] { o.mixingBeta = try number(v, "mixing_beta") }
        if let v = m["kerker_q0"] { o.kerkerQ0 = try number(v, "kerker_q0") }
        if let v = nonNull(m["xc_parameters"]) {
            guard case let .object(list) = v else {
                throw SolidXCError.input(field: "xc_parameters", message: "expected an object {name: value}, got \(v.kindDescription)")
            }
            for (name, value) in list { o.xcParameters[name] = try number(value, "xc_parameters.\(name)") }
        }
        if let v = nonNull(m["density_tol"]) { o.densityTol = try number(v, "density_tol") }
        if let v = m["raise_on_nonconvergence"] { o.raiseOnNonconvergence = try bool(v, "raise_on_nonconvergence") }
        if let v = optionalValue("memory_limit_bytes") {
            let x = try number(v, "memory_limit_bytes")
            guard x.isFinite, x > 0 else {
                throw SolidXCError.input(field: "memory_limit_bytes", message: "must be a positive number of bytes or null, got \(x)")
            }
            o.memoryLimitBytes = x
        }
        if let v = m["verbose"] { o.verbose = try bool(v, "verbose") }
        o.timeLimit = try optionalValue("time_limit").map { try number($0, "time_limit") }
        o.threads = try optionalValue("threads").map { try integer($0, "threads") }
        return o
    }
}
