/// What the registry knows about a functional, in the manner of libxc's `xc_func_info_type`:
/// id, name, family, description, references and named parameters with their defaults.
public struct FunctionalRecord: Equatable {
    /// Built-ins have ids 1..<`FunctionalRegistry.firstUserID`; registered functionals get ids from
    /// `firstUserID` upward, never reused.
    public let id: Int32
    /// The canonical name accepted by `FunctionalRegistry.make`.
    public let name: String
    /// Other accepted spellings (libxc and DeepChem names); matching ignores case and whitespace.
    public let aliases: [String]
    public let family: FunctionalFamily
    public let description: String
    public let references: [String]
    /// The parameters and their default values.
    public let parameters: [FunctionalParameter]
    public let isBuiltin: Bool
}

/// The table of functionals: the built-ins, plus user (for example neural) functionals
/// registered at run time. All methods are thread-safe.
public final class FunctionalRegistry: @unchecked Sendable {
    public static let shared = FunctionalRegistry()

    /// The first id handed out by `register(_:)`.
    public static let firstUserID: Int32 = 1000

    private struct Builtin {
        var record: FunctionalRecord
        /// Builds an instance from a complete, validated set of parameter values (keyed by name).
        var build: ([String: Double]) -> BuiltinFunctional
        /// Checks one parameter value; returns a description of the allowed range if it is outside it.
        var check: (String, Double) -> String?
    }

    private let builtins: [Builtin]
    private let lock = XCMonitor()
    private var user: [(id: Int32, functional: Functional)] = []
    private var nextUserID = FunctionalRegistry.firstUserID

    /// A registry holding only the built-ins. Most code uses `shared`; tests may make their own.
    public init() {
        builtins = FunctionalRegistry.makeBuiltins()
    }

    /// Every functional, built-ins first, then registered ones in registration order.
    public var records: [FunctionalRecord] {
        builtins.map(\.record) + lock.withLock { user.map { FunctionalRegistry.userRecord(id: $0.id, $0.functional) } }
    }

    /// The record of the functional with this name or alias (case and whitespace ignored), if any.
    public func record(named name: String) -> FunctionalRecord? {
        if let b = builtin(named: name) { return b.record }
        let key = FunctionalRegistry.normalise(name)
        return lock.withLock {
            user.last { FunctionalRegistry.normalise($0.functional.name) == key }
                .map { FunctionalRegistry.userRecord(id: $0.id, $0.functional) }
        }
    }

    /// The record of the functional with this id, if any.
    public func record(id: Int32) -> FunctionalRecord? {
        if let b = builtins.first(where: { $0.record.id == id }) { return b.record }
        return lock.withLock {
            user.first { $0.id == id }.map { FunctionalRegistry.userRecord(id: $0.id, $0.functional) }
        }
    }

    /// A functional by name. Built-in names and aliases are matched ignoring case and whitespace
    /// ("PBE", "gga_x_pbe + gga_c_pbe"); then registered functionals by their `name` (the most
    /// recent registration wins). `parameters` overrides a built-in's defaults by parameter name.
    /// - Throws: `SolidXCError.input(field: "xc", ...)` for an unknown name, an unknown parameter
    ///   name, a value outside its range, or parameters given for a registered instance.
    public func make(_ name: String, parameters: [String: Double] = [:]) throws -> Functional {
        if let b = builtin(named: name) {
            return try instantiate(b, overrides: parameters)
        }
        let key = FunctionalRegistry.normalise(name)
        if let f = lock.withLock({ user.last { FunctionalRegistry.normalise($0.functional.name) == key }?.functional }) {
            if !parameters.isEmpty {
                let names = parameters.keys.sorted().joined(separator: ", ")
                throw SolidXCError.input(field: "xc", message:
                    "'\(name)' is a registered functional instance; its parameters cannot be overridden (got \(names))")
            }
            return f
        }
        throw SolidXCError.input(field: "xc", message: "unknown functional '\(name)'; known names: \(knownNames())")
    }

    /// The functional with this id: a default-parameter instance for a built-in, the registered
    /// instance otherwise.
    /// - Throws: `SolidXCError.input(field: "xc", ...)` if no functional has this id.
    public func functional(id: Int32) throws -> Functional {
        if let b = builtins.first(where: { $0.record.id == id }) {
            return try instantiate(b, overrides: [:])
        }
        if let f = lock.withLock({ user.first { $0.id == id }?.functional }) {
            return f
        }
        throw SolidXCError.input(field: "xc", message: "no functional has id \(id); known ids: \(knownIDs())")
    }

    /// Registers a user functional (for example a neural functional evaluated through a callback)
    /// and returns its new id.
    @discardableResult
    public func register(_ f: Functional) -> Int32 {
        lock.withLock {
            let id = nextUserID
            nextUserID += 1
            user.append((id, f))
            (f as? CallbackFunctional)?.didRegister(id: id)
            return id
        }
    }

    /// Registers a user functional whose name is checked first, as the C ABI does: it must not be
    /// empty and must not be a built-in's name or alias, which `make` would find first.
    /// - Throws: `SolidXCError.input(field: "name", ...)`.
    @discardableResult
    public func register(checkingName f: Functional) throws -> Int32 {
        let trimmed = FunctionalRegistry.normalise(f.name)
        guard !trimmed.isEmpty else {
            throw SolidXCError.input(field: "name", message: "must not be empty or blank")
        }
        if let b = builtin(named: f.name) {
            throw SolidXCError.input(field: "name", message:
                "'\(f.name)' is a name of the built-in functional '\(b.record.name)'; choose a name that shadows no built-in")
        }
        return register(f)
    }

    /// Registers the built-in `builtin` with parameter overrides under a new `name`, so that an
    /// SCF can use a parameterised built-in by name.
    /// - Throws: `SolidXCError.input` for an unknown built-in, a bad parameter or a bad name.
    @discardableResult
    public func registerBuiltin(_ builtin: String, parameters: [String: Double], as name: String) throws -> Int32 {
        guard let b = self.builtin(named: builtin) else {
            throw SolidXCError.input(field: "builtin", message: "unknown built-in functional '\(builtin)'; known names: \(knownNames())")
        }
        return try register(checkingName: try instantiate(b, overrides: parameters).renamed(name))
    }

    /// Removes a registered functional. A `CallbackFunctional` refuses every later call, and this
    /// returns only once no other thread is inside one of its callbacks.
    /// - Throws: `SolidXCError.input(field: "xc", ...)` for a built-in id or an id that is not registered.
    public func unregister(id: Int32) throws {
        if let b = builtins.first(where: { $0.record.id == id }) {
            throw SolidXCError.input(field: "xc", message:
                "id \(id) is the built-in functional '\(b.record.name)'; only registered functionals can be unregistered")
        }
        let removed: Functional? = lock.withLock {
            guard let index = user.firstIndex(where: { $0.id == id }) else { return nil }
            return user.remove(at: index).functional
        }
        guard let removed else {
            throw SolidXCError.input(field: "xc", message: "no registered functional has id \(id); known ids: \(knownIDs())")
        }
        // Outside the registry's lock: the wait must not block other lookups.
        (removed as? CallbackFunctional)?.retire()
    }

    // MARK: - Lookup helpers

    /// Lower case, whitespace removed: "LDA_X + LDA_C_PW" and "lda_x+lda_c_pw" are the same name.
    static func normalise(_ name: String) -> String {
        String(name.lowercased().filter { !$0.isWhitespace })
    }

    private func builtin(named name: String) -> Builtin? {
        let key = FunctionalRegistry.normalise(name)
        return builtins.first { b in
            FunctionalRegistry.normalise(b.record.name) == key
                || b.record.aliases.contains { FunctionalRegistry.normalise($0) == key }
        }
    }

    private func knownNames() -> String {
        var parts = builtins.map { b in
            b.record.aliases.isEmpty ? b.record.name : "\(b.record.name) (also \(b.record.aliases.joined(separator: ", ")))"
        }
        let registered = lock.withLock { user.map { "\($0.functional.name) (registered, id \($0.id))" } }
        parts += registered
        return parts.joined(separator: "; ")
    }

    private func knownIDs() -> String {
        let ids = builtins.map { "\($0.record.id) (\($0.record.name))" }
            + lock.withLock { user.map { "\($0.id) (\($0.functional.name))" } }
        return ids.joined(separator: ", ")
    }

    private static func userRecord(id: Int32, _ f: Functional) -> FunctionalRecord {
        FunctionalRecord(id: id, name: f.name, aliases: [], family: f.family,
                         description: "user-registered functional", references: [],
                         parameters: f.parameters, isBuiltin: false)
    }

    private func instantiate(_ b: Builtin, overrides: [String: Double]) throws -> BuiltinFunctional {
        var values: [String: Double] = [:]
        for p in b.record.parameters { values[p.name] = p.value }
        for (rawName, value) in overrides {
            let key = rawName.lowercased()
            guard values[key] != nil else {
                let known = b.record.parameters.isEmpty
                    ? "it has no parameters"
                    : "its parameters are: " + b.record.parameters.map(\.name).joined(separator: ", ")
                throw SolidXCError.input(field: "xc", message:
                    "functional '\(b.record.name)' has no parameter '\(rawName)'; \(known)")
            }
            if let range = b.check(key, value) {
                throw SolidXCError.input(field: "xc", message:
                    "parameter '\(key)' of '\(b.record.name)' is \(value); expected \(range)")
            }
            values[key] = value
        }
        return b.build(values)
    }

    // MARK: - The built-ins

    private static func makeBuiltins() -> [Builtin] {
        let slaterReferences = [
            "P. A. M. Dirac, Math. Proc. Cambridge Philos. Soc. 26, 376 (1930)",
            "F. Bloch, Z. Phys. 57, 545 (1929)",
        ]
        let pw92Reference = "J. P. Perdew and Y. Wang, Phys. Rev. B 45, 13244 (1992)"
        let pbeReferences = [
            "J. P. Perdew, K. Burke, and M. Ernzerhof, Phys. Rev. Lett. 77, 3865 (1996)",
            "J. P. Perdew, K. Burke, and M. Ernzerhof, Phys. Rev. Lett. 78, 1396 (1997)",
        ]
        let noParameters: (String, Double) -> String? = { _, _ in nil }

        func lda(_ id: Int32, _ name: String, _ aliases: [String], _ description: String, _ references: [String],
                 _ components: BuiltinFunctional.Components) -> Builtin {
            let record = FunctionalRecord(id: id, name: name, aliases: aliases, family: .lda,
                                          description: description, references: references,
                                          parameters: [], isBuiltin: true)
            return Builtin(record: record,
                           build: { _ in BuiltinFunctional(name: name, family: .lda, parameters: [], components: components) },
                           check: noParameters)
        }

        let pbeParameters = [
            FunctionalParameter(name: "kappa", value: PBEExchange.defaultKappa,
                                description: "Asymptotic value of the enhancement function (GGA_X_PBE _kappa)"),
            FunctionalParameter(name: "mu", value: PBEExchange.defaultMu,
                                description: "Coefficient of the 2nd order expansion (GGA_X_PBE _mu)"),
            FunctionalParameter(name: "beta", value: PBECorrelation.defaultBeta,
                                description: "beta constant (GGA_C_PBE _beta); gamma is fixed at (1 - ln 2)/pi^2"),
        ]
        let pbe = Builtin(
            record: FunctionalRecord(
                id: 4, name: "pbe", aliases: ["gga_x_pbe+gga_c_pbe", "gga_x_pbe,gga_c_pbe", "pbe,pbe"], family: .gga,
                description: "Perdew-Burke-Ernzerhof exchange and correlation (libxc GGA_X_PBE + GGA_C_PBE)",
                references: pbeReferences, parameters: pbeParameters, isBuiltin: true),
            build: { v in
                let kappa = v["kappa"] ?? PBEExchange.defaultKappa
                let mu = v["mu"] ?? PBEExchange.defaultMu
                let beta = v["beta"] ?? PBECorrelation.defaultBeta
                let parameters = pbeParameters.map { p in
                    FunctionalParameter(name: p.name, value: v[p.name] ?? p.value, description: p.description)
                }
                return BuiltinFunctional(name: "pbe", family: .gga, parameters: parameters,
                                         components: .pbe(PBEExchange(kappa: kappa, mu: mu), PBECorrelation(beta: beta)))
            },
            check: { name, value in
                switch name {
                case "kappa": return value.isFinite && value > 0 ? nil : "a finite value > 0"
                default: return value.isFinite && value >= 0 ? nil : "a finite value >= 0"
                }
            })

        let exchangeParameters = Array(pbeParameters.prefix(2))
        let pbeExchangeOnly = Builtin(
            record: FunctionalRecord(
                id: 7, name: "gga_x_pbe", aliases: ["pbe_x", "pbe,"], family: .gga,
                description: "PBE exchange only (libxc GGA_X_PBE; DeepChem's \"gga_x_pbe\")",
                references: pbeReferences, parameters: exchangeParameters, isBuiltin: true),
            build: { v in
                let kappa = v["kappa"] ?? PBEExchange.defaultKappa
                let mu = v["mu"] ?? PBEExchange.defaultMu
                let parameters = exchangeParameters.map { p in
                    FunctionalParameter(name: p.name, value: v[p.name] ?? p.value, description: p.description)
                }
                return BuiltinFunctional(name: "gga_x_pbe", family: .gga, parameters: parameters,
                                         components: .pbeExchange(PBEExchange(kappa: kappa, mu: mu)))
            },
            check: { name, value in
                name == "kappa" ? (value.isFinite && value > 0 ? nil : "a finite value > 0")
                                : (value.isFinite && value >= 0 ? nil : "a finite value >= 0")
            })

        return [
            lda(1, "lda,pw", ["lda_x+lda_c_pw", "lda_x,lda_c_pw"],
                "Slater exchange + Perdew-Wang 92 correlation (libxc LDA_X + LDA_C_PW)",
                slaterReferences + [pw92Reference], .slaterPW92(SlaterExchange(), .original)),
            lda(2, "lda,vwn", ["lda_x+lda_c_vwn", "lda_x,lda_c_vwn"],
                "Slater exchange + Vosko-Wilk-Nusair 5 correlation (libxc LDA_X + LDA_C_VWN)",
                slaterReferences + ["S. H. Vosko, L. Wilk, and M. Nusair, Can. J. Phys. 58, 1200 (1980)"],
                .slaterVWN5(SlaterExchange(), VWN5Correlation())),
            lda(3, "teter", ["teter93", "lda_xc_teter93"],
                "Teter 1993 Pade fit of LDA exchange-correlation (libxc LDA_XC_TETER93)",
                ["S. Goedecker, M. Teter, and J. Hutter, Phys. Rev. B 54, 1703 (1996)"], .teter93(Teter93())),
            pbe,
            lda(5, "lda,pw_mod", ["lda_x+lda_c_pw_mod", "lda_x,lda_c_pw_mod"],
                "Slater exchange + Perdew-Wang 92 correlation with the PBE code's digits (libxc LDA_X + LDA_C_PW_MOD)",
                slaterReferences + [pw92Reference], .slaterPW92(SlaterExchange(), .modified)),
            lda(6, "lda_x", ["slater", "lda,"], "Slater exchange only (libxc LDA_X; DeepChem's \"lda_x\")",
                slaterReferences, .slater(SlaterExchange())),
            pbeExchangeOnly,
        ]
    }
}
