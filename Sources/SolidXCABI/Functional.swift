import SolidXC

// The functional entry points of include/solidxc.h: registering user (neural) functionals
// through C callbacks, and evaluating any registry functional on caller arrays.

/// SXC_LDA and SXC_GGA.
private func familyCode(_ family: FunctionalFamily) -> Int32 {
    family == .lda ? 1 : 2
}

/// A UTF-8 string argument that must not be NULL.
private func readString(_ pointer: UnsafePointer<CChar>?, _ field: String) throws -> String {
    guard let text = String(validatingCString: try readCString(pointer, field)) else {
        throw SolidXCError.input(field: field, message: "is not valid UTF-8")
    }
    return text
}

/// `params_json`: NULL, "" or an object of numbers, {"kappa": 0.9}.
private func decodeParameters(_ json: UnsafePointer<CChar>?) throws -> [String: Double] {
    guard let json, json.pointee != 0 else { return [:] }
    guard case let .object(members) = try JSONParser.parse(json) else {
        throw SolidXCError.input(field: "params", message: "expected an object of parameter values, e.g. {\"kappa\": 0.9}")
    }
    var values: [String: Double] = [:]
    for (key, value) in members { values[key] = try Decode.number(value, "params.\(key)") }
    return values
}

/// The functional named `name`, or with id `id` when `name` is NULL, with parameter overrides
/// (built-ins only: the registry refuses them for a registered instance).
private func lookup(_ name: UnsafePointer<CChar>?, _ id: Int32, _ paramsJSON: UnsafePointer<CChar>?) throws -> Functional {
    let parameters = try decodeParameters(paramsJSON)
    let registry = FunctionalRegistry.shared
    if name != nil {
        return try registry.make(try readString(name, "name"), parameters: parameters)
    }
    if let record = registry.record(id: id), record.isBuiltin {
        return try registry.make(record.name, parameters: parameters)
    }
    let f = try registry.functional(id: id)
    guard parameters.isEmpty else {
        throw SolidXCError.input(field: "params", message: "'\(f.name)' (id \(id)) is a registered functional instance; "
                                 + "its parameters cannot be overridden (got \(parameters.keys.sorted().joined(separator: ", ")))")
    }
    return f
}

/// The array arguments of one batch: shapes checked, NULL inputs and outputs refused by name.
private struct Batch {
    let nspin: Int
    let npoints: Int
    let gga: Bool

    init(_ npoints: Int64, _ nspin: Int32, _ functional: Functional) throws {
        // The largest count whose sigma block (3 * npoints doubles) has a byte size that fits.
        let limit = Int64(Int.max / 32)
        guard npoints >= 0, npoints <= limit else {
            throw SolidXCError.input(field: "npoints", message: "npoints is \(npoints); expected 0 to \(limit)")
        }
        guard nspin == 1 || nspin == 2 else {
            throw SolidXCError.input(field: "nspin", message: "nspin is \(nspin); expected 1 or 2")
        }
        self.npoints = Int(npoints)
        self.nspin = Int(nspin)
        gga = functional.family == .gga
    }

    /// A required input array.
    func input(_ p: UnsafePointer<Double>?, _ field: String) throws -> UnsafePointer<Double> {
        guard let p else { throw SolidXCError.input(field: field, message: "is NULL") }
        return p
    }

    /// A GGA-only input array (sigma, dsigma): required for a GGA, ignored (nil) for an LDA.
    func ggaInput(_ p: UnsafePointer<Double>?, _ field: String) throws -> UnsafePointer<Double>? {
        gga ? try input(p, field) : nil
    }

    /// A required output array.
    func output(_ p: UnsafeMutablePointer<Double>?, _ field: String) throws -> UnsafeMutablePointer<Double> {
        guard let p else { throw ABIError.buffer("\(field) is NULL") }
        return p
    }

    /// A GGA-only output array (vsigma, dvsigma): required for a GGA, ignored (nil) for an LDA.
    func ggaOutput(_ p: UnsafeMutablePointer<Double>?, _ field: String) throws -> UnsafeMutablePointer<Double>? {
        gga ? try output(p, field) : nil
    }
}

// MARK: - Registration

@_cdecl("sxc_functional_register")
public func sxc_functional_register(_ name: UnsafePointer<CChar>?, _ family: Int32, _ eval: XCEvalCallback?,
                                    _ kernel: XCKernelCallback?, _ userData: UnsafeMutableRawPointer?,
                                    _ id: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded("sxc_functional_register") {
        let text = try readString(name, "name")
        let kind: FunctionalFamily
        switch family {
        case 1: kind = .lda
        case 2: kind = .gga
        default: throw SolidXCError.input(field: "family", message: "is \(family); expected SXC_LDA (1) or SXC_GGA (2)")
        }
        guard let eval else { throw SolidXCError.input(field: "eval", message: "is NULL; an eval callback is required") }
        guard let id else { throw ABIError.buffer("id is NULL") }
        let f = CallbackFunctional(name: text, family: kind, eval: eval, kernel: kernel, userData: userData)
        id.pointee = try FunctionalRegistry.shared.register(checkingName: f)
    }
}

@_cdecl("sxc_functional_register_builtin")
public func sxc_functional_register_builtin(_ name: UnsafePointer<CChar>?, _ builtin: UnsafePointer<CChar>?,
                                            _ paramsJSON: UnsafePointer<CChar>?, _ id: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded("sxc_functional_register_builtin") {
        let text = try readString(name, "name")
        let base = try readString(builtin, "builtin")
        let parameters = try decodeParameters(paramsJSON)
        guard let id else { throw ABIError.buffer("id is NULL") }
        id.pointee = try FunctionalRegistry.shared.registerBuiltin(base, parameters: parameters, as: text)
    }
}

@_cdecl("sxc_functional_unregister")
public func sxc_functional_unregister(_ id: Int32) -> Int32 {
    guarded("sxc_functional_unregister") { try FunctionalRegistry.shared.unregister(id: id) }
}

// MARK: - Introspection

@_cdecl("sxc_functional_info")
public func sxc_functional_info(_ name: UnsafePointer<CChar>?, _ id: Int32, _ idOut: UnsafeMutablePointer<Int32>?,
                                _ family: UnsafeMutablePointer<Int32>?, _ nparams: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded("sxc_functional_info") {
        let record = try functionalRecord(name, id)
        try store(record.id, idOut, "id_out")
        try store(familyCode(record.family), family, "family")
        try store(Int32(clamping: record.parameters.count), nparams, "nparams")
    }
}

@_cdecl("sxc_functional_parameter")
public func sxc_functional_parameter(_ name: UnsafePointer<CChar>?, _ id: Int32, _ index: Int32,
                                     _ nameBuffer: UnsafeMutablePointer<CChar>?, _ capacity: UInt,
                                     _ value: UnsafeMutablePointer<Double>?) -> Int32 {
    guarded("sxc_functional_parameter") {
        let record = try functionalRecord(name, id)
        guard index >= 0, Int(index) < record.parameters.count else {
            throw SolidXCError.input(field: "index", message:
                "is \(index); '\(record.name)' has \(record.parameters.count) parameters (0 to \(record.parameters.count - 1))")
        }
        let parameter = record.parameters[Int(index)]
        let utf8 = Array(parameter.name.utf8)
        guard let nameBuffer, capacity > UInt(utf8.count) else {
            throw ABIError.buffer("name_buffer needs \(utf8.count + 1) bytes, holds \(capacity)")
        }
        try store(parameter.value, value, "value")
        for (i, b) in utf8.enumerated() { nameBuffer[i] = CChar(bitPattern: b) }
        nameBuffer[utf8.count] = 0
    }
}

/// The record of the functional named `name`, or with id `id` when `name` is NULL.
private func functionalRecord(_ name: UnsafePointer<CChar>?, _ id: Int32) throws -> FunctionalRecord {
    let registry = FunctionalRegistry.shared
    let record = try name.map { registry.record(named: try readString($0, "name")) } ?? registry.record(id: id)
    if let record { return record }
    // Not found: the registry's own lookup throws its message, which lists what is known.
    let missing = try name.map { try registry.make(try readString($0, "name")) } ?? registry.functional(id: id)
    throw SolidXCError.input(field: "name", message: "no record for functional '\(missing.name)'")
}

// MARK: - Evaluation on caller arrays

/// The shared body of the evaluation entry points: looks the functional up, checks the batch
/// shape, and runs `body` with both.
private func onBatch(_ function: String, _ name: UnsafePointer<CChar>?, _ id: Int32, _ paramsJSON: UnsafePointer<CChar>?,
                     _ npoints: Int64, _ nspin: Int32, _ body: (Functional, Batch) throws -> Void) -> Int32 {
    guarded(function) {
        let f = try lookup(name, id, paramsJSON)
        try body(f, try Batch(npoints, nspin, f))
    }
}

@_cdecl("sxc_functional_eval")
public func sxc_functional_eval(_ name: UnsafePointer<CChar>?, _ id: Int32, _ paramsJSON: UnsafePointer<CChar>?,
                                _ npoints: Int64, _ nspin: Int32,
                                _ rho: UnsafePointer<Double>?, _ sigma: UnsafePointer<Double>?,
                                _ e: UnsafeMutablePointer<Double>?, _ vrho: UnsafeMutablePointer<Double>?,
                                _ vsigma: UnsafeMutablePointer<Double>?) -> Int32 {
    onBatch("sxc_functional_eval", name, id, paramsJSON, npoints, nspin) { f, b in
        try f.evaluate(nspin: b.nspin, npoints: b.npoints, rho: try b.input(rho, "rho"),
                       sigma: try b.ggaInput(sigma, "sigma"),
                       e: try b.output(e, "e"), vrho: try b.output(vrho, "vrho"),
                       vsigma: try b.ggaOutput(vsigma, "vsigma"))
    }
}

@_cdecl("sxc_functional_kernel")
public func sxc_functional_kernel(_ name: UnsafePointer<CChar>?, _ id: Int32, _ paramsJSON: UnsafePointer<CChar>?,
                                  _ npoints: Int64, _ nspin: Int32,
                                  _ rho: UnsafePointer<Double>?, _ sigma: UnsafePointer<Double>?,
                                  _ drho: UnsafePointer<Double>?, _ dsigma: UnsafePointer<Double>?,
                                  _ dvrho: UnsafeMutablePointer<Double>?, _ dvsigma: UnsafeMutablePointer<Double>?) -> Int32 {
    onBatch("sxc_functional_kernel", name, id, paramsJSON, npoints, nspin) { f, b in
        try f.applyKernel(nspin: b.nspin, npoints: b.npoints, rho: try b.input(rho, "rho"),
                          sigma: try b.ggaInput(sigma, "sigma"),
                          drho: try b.input(drho, "drho"), dsigma: try b.ggaInput(dsigma, "dsigma"),
                          dvrho: try b.output(dvrho, "dvrho"), dvsigma: try b.ggaOutput(dvsigma, "dvsigma"))
    }
}

@_cdecl("sxc_functional_param_derivative")
public func sxc_functional_param_derivative(_ name: UnsafePointer<CChar>?, _ paramsJSON: UnsafePointer<CChar>?,
                                            _ parameter: UnsafePointer<CChar>?, _ npoints: Int64, _ nspin: Int32,
                                            _ rho: UnsafePointer<Double>?, _ sigma: UnsafePointer<Double>?,
                                            _ de: UnsafeMutablePointer<Double>?, _ dvrho: UnsafeMutablePointer<Double>?,
                                            _ dvsigma: UnsafeMutablePointer<Double>?) -> Int32 {
    // By name only (the parameters are a built-in's): a NULL name is an error, not a lookup by id.
    guard name != nil else {
        return guarded("sxc_functional_param_derivative") { _ = try readString(name, "name") }
    }
    return onBatch("sxc_functional_param_derivative", name, -1, paramsJSON, npoints, nspin) { f, b in
        let parameterName = try readString(parameter, "param")
        try f.parameterDerivative(parameterName, nspin: b.nspin, npoints: b.npoints, rho: try b.input(rho, "rho"),
                                  sigma: try b.ggaInput(sigma, "sigma"),
                                  de: try b.output(de, "de"), dvrho: try b.output(dvrho, "dvrho"),
                                  dvsigma: try b.ggaOutput(dvsigma, "dvsigma"))
    }
}
