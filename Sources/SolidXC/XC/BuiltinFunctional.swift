/// A built-in functional: a fixed sum of libxc-style components with its parameter values.
/// Instances are immutable, so one instance may evaluate on several threads at once.
/// Make them through `FunctionalRegistry.make(_:parameters:)`.
public final class BuiltinFunctional: Functional {
    public let name: String
    public let family: FunctionalFamily
    /// The parameter values of this instance (defaults overridden by the caller's values).
    public let parameters: [FunctionalParameter]

    /// The components; each is evaluated with its own libxc thresholds and the results are summed.
    enum Components {
        case slaterPW92(SlaterExchange, PW92Correlation)
        case slaterVWN5(SlaterExchange, VWN5Correlation)
        case teter93(Teter93)
        case pbe(PBEExchange, PBECorrelation)
        case slater(SlaterExchange)
        case pbeExchange(PBEExchange)
    }

    let components: Components

    init(name: String, family: FunctionalFamily, parameters: [FunctionalParameter], components: Components) {
        self.name = name
        self.family = family
        self.parameters = parameters
        self.components = components
    }

    public func evaluate(nspin: Int, npoints: Int,
                         rho: UnsafePointer<Double>, sigma: UnsafePointer<Double>?,
                         e: UnsafeMutablePointer<Double>, vrho: UnsafeMutablePointer<Double>,
                         vsigma: UnsafeMutablePointer<Double>?) throws {
        try validate(nspin: nspin, npoints: npoints, sigma: sigma, output: vsigma, outputField: "vsigma")
        let buffers = XCBuffers(nspin: nspin, npoints: npoints, rho: rho, sigma: sigma, drho: nil, dsigma: nil,
                                energy: e, vrho: vrho, vsigma: vsigma)
        XCEvaluation.zeroOutputs(buffers, isGGA: family == .gga)
        run(.evaluate, buffers)
    }

    /// The energy density e alone, equal bit for bit to `evaluate`'s, without the derivatives.
    func energyDensity(nspin: Int, npoints: Int, rho: UnsafePointer<Double>, sigma: UnsafePointer<Double>?,
                       e: UnsafeMutablePointer<Double>) throws {
        let scratch = UnsafeMutablePointer<Double>.allocate(capacity: max(1, (nspin == 1 ? 2 : 5) * npoints))
        defer { scratch.deallocate() }
        let vsigma: UnsafeMutablePointer<Double>? = family == .gga ? scratch + nspin * npoints : nil
        try validate(nspin: nspin, npoints: npoints, sigma: sigma, output: vsigma, outputField: "vsigma")
        let buffers = XCBuffers(nspin: nspin, npoints: npoints, rho: rho, sigma: sigma, drho: nil, dsigma: nil,
                                energy: e, vrho: scratch, vsigma: vsigma)
        XCEvaluation.zeroOutputs(buffers, isGGA: family == .gga)
        run(.energy, buffers)
    }

    public func applyKernel(nspin: Int, npoints: Int,
                            rho: UnsafePointer<Double>, sigma: UnsafePointer<Double>?,
                            drho: UnsafePointer<Double>, dsigma: UnsafePointer<Double>?,
                            dvrho: UnsafeMutablePointer<Double>, dvsigma: UnsafeMutablePointer<Double>?) throws {
        try validate(nspin: nspin, npoints: npoints, sigma: sigma, output: dvsigma, outputField: "dvsigma")
        if family == .gga && dsigma == nil {
            throw SolidXCError.input(field: "dsigma", message: "\(name) is a GGA; the kernel needs the sigma perturbation")
        }
        let buffers = XCBuffers(nspin: nspin, npoints: npoints, rho: rho, sigma: sigma, drho: drho, dsigma: dsigma,
                                energy: nil, vrho: dvrho, vsigma: dvsigma)
        XCEvaluation.zeroOutputs(buffers, isGGA: family == .gga)
        run(.kernel, buffers)
    }

    /// Exact (forward-mode, the parameter seeded as a hyper-dual number) derivatives of e, vrho
    /// and vsigma with respect to one named parameter, at fixed (rho, sigma) and at this
    /// instance's parameter values.
    public func parameterDerivative(_ parameter: String, nspin: Int, npoints: Int,
                                    rho: UnsafePointer<Double>, sigma: UnsafePointer<Double>?,
                                    de: UnsafeMutablePointer<Double>, dvrho: UnsafeMutablePointer<Double>,
                                    dvsigma: UnsafeMutablePointer<Double>?) throws {
        try validate(nspin: nspin, npoints: npoints, sigma: sigma, output: dvsigma, outputField: "dvsigma")
        let key = parameter.lowercased()
        guard parameters.contains(where: { $0.name == key }) else {
            let known = parameters.isEmpty
                ? "it has no parameters"
                : "its parameters are: " + parameters.map(\.name).joined(separator: ", ")
            throw SolidXCError.input(field: "parameter", message: "functional '\(name)' has no parameter '\(parameter)'; \(known)")
        }
        let buffers = XCBuffers(nspin: nspin, npoints: npoints, rho: rho, sigma: sigma, drho: nil, dsigma: nil,
                                energy: de, vrho: dvrho, vsigma: dvsigma)
        XCEvaluation.zeroOutputs(buffers, isGGA: family == .gga)
        run(.parameter(key), buffers)
    }

    /// The same functional under another name (a parameterised built-in registered by a user).
    public func renamed(_ newName: String) -> BuiltinFunctional {
        BuiltinFunctional(name: newName, family: family, parameters: parameters, components: components)
    }

    private func validate(nspin: Int, npoints: Int, sigma: UnsafePointer<Double>?,
                          output: UnsafeMutablePointer<Double>?, outputField: String) throws {
        guard nspin == 1 || nspin == 2 else {
            throw SolidXCError.input(field: "nspin", message: "nspin is \(nspin); expected 1 or 2")
        }
        guard npoints >= 0 else {
            throw SolidXCError.input(field: "npoints", message: "npoints is \(npoints); expected >= 0")
        }
        if family == .gga {
            if sigma == nil {
                throw SolidXCError.input(field: "sigma", message: "\(name) is a GGA; sigma must be given")
            }
            if output == nil {
                throw SolidXCError.input(field: outputField, message: "\(name) is a GGA; \(outputField) must be given")
            }
        }
    }
}
