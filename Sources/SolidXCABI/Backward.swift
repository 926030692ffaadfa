import SolidXC

/// Reads an optional input array of exactly `expected` values (or none: NULL with count 0).
private func inputArray(_ pointer: UnsafePointer<Double>?, _ count: UInt, expected: Int, _ field: String, _ layout: String) throws -> [Double] {
    guard let pointer else {
        guard count == 0 else { throw SolidXCError.input(field: field, message: "is NULL but its count is \(count)") }
        return []
    }
    guard count == UInt(expected) else {
        throw SolidXCError.input(field: field, message: "has \(count) values; expected \(layout) = \(expected)")
    }
    return Array(UnsafeBufferPointer(start: pointer, count: Int(count)))
}

@_cdecl("sxc_result_xc_dims")
public func sxc_result_xc_dims(_ res: OpaquePointer?, _ family: UnsafeMutablePointer<Int32>?, _ nsigma: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded("sxc_result_xc_dims") {
        let r = try HandleTable.shared.result(res).result
        let (_, sigma) = try r.xcInputs()
        let n = r.density.count / max(r.nspin, 1)
        try store(sigma.isEmpty ? 1 : 2, family, "family")
        try store(Int32(sigma.count / max(n, 1)), nsigma, "nsigma")
    }
}

@_cdecl("sxc_result_xc_inputs")
public func sxc_result_xc_inputs(_ res: OpaquePointer?, _ rho: UnsafeMutablePointer<Double>?, _ nrho: UInt,
                                 _ sigma: UnsafeMutablePointer<Double>?, _ nsigma: UInt) -> Int32 {
    guarded("sxc_result_xc_inputs") {
        let (r, s) = try HandleTable.shared.result(res).result.xcInputs()
        try copyOut(r, rho, nrho, "rho [nspin][n1][n2][n3]")
        if !s.isEmpty { try copyOut(s, sigma, nsigma, "sigma [nsigma][n1][n2][n3]") }
    }
}

@_cdecl("sxc_scf_backward")
public func sxc_scf_backward(_ res: OpaquePointer?, _ dLdE: Double,
                             _ dLdRho: UnsafePointer<Double>?, _ nrho: UInt,
                             _ dLdEig: UnsafePointer<Double>?, _ neig: UInt,
                             _ optionsJSON: UnsafePointer<CChar>?,
                             _ adjE: UnsafeMutablePointer<Double>?, _ ne: UInt,
                             _ adjVrho: UnsafeMutablePointer<Double>?, _ nvrho: UInt,
                             _ adjVsigma: UnsafeMutablePointer<Double>?, _ nvsigma: UInt,
                             _ residual: UnsafeMutablePointer<Double>?, _ iterations: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded("sxc_scf_backward") {
        let r = try HandleTable.shared.result(res).result
        let n = r.density.count / max(r.nspin, 1)
        var gradient = LossGradient(energy: dLdE)
        gradient.density = try inputArray(dLdRho, nrho, expected: r.density.count, "dL_drho", "nspin*n1*n2*n3")
        gradient.eigenvalues = try inputArray(dLdEig, neig, expected: r.eigenvalues.count, "dL_deig", "nspin*nk*nband")
        var options = BackwardOptions()
        if let optionsJSON, optionsJSON.pointee != 0 {
            let m = try Decode.members(try JSONParser.parse(optionsJSON), "", allowed: ["tol", "maxiter", "time_limit"],
                                       what: "an object with keys tol, maxiter, time_limit")
            if let v = m["tol"] { options.tol = try Decode.number(v, "tol") }
            if let v = m["maxiter"] { options.maxiter = try Decode.integer(v, "maxiter") }
            if let v = Decode.nonNull(m["time_limit"]) { options.timeLimit = try Decode.number(v, "time_limit") }
        }
        let out = try r.backward(gradient, options: options)
        try copyOut(out.adjE, adjE, ne, "adj_e [n1][n2][n3] (\(n) values)")
        try copyOut(out.adjVrho, adjVrho, nvrho, "adj_vrho [nspin][n1][n2][n3]")
        if !out.adjVsigma.isEmpty { try copyOut(out.adjVsigma, adjVsigma, nvsigma, "adj_vsigma [nsigma][n1][n2][n3]") }
        residual?.pointee = out.residual
        iterations?.pointee = Int32(clamping: out.iterations)
    }
}
