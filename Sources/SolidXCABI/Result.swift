import SolidXC

/// An SCF result held by handle, with the energy-term names as C strings that live as long
/// as the result.
final class ResultBox {
    let result: SCFResult
    let termNames: [UnsafeMutablePointer<CChar>]

    init(_ result: SCFResult) {
        self.result = result
        termNames = result.energies.map { makeCString($0.name) }
    }

    deinit { for p in termNames { p.deallocate() } }
}

@_cdecl("sxc_scf_forward")
public func sxc_scf_forward(_ sys: OpaquePointer?, _ xc: UnsafePointer<CChar>?, _ optionsJSON: UnsafePointer<CChar>?,
                            _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    out?.pointee = nil
    return guarded("sxc_scf_forward") { try forward(sys, xc, optionsJSON, start: nil, out) }
}

@_cdecl("sxc_scf_forward_from")
public func sxc_scf_forward_from(_ sys: OpaquePointer?, _ xc: UnsafePointer<CChar>?, _ optionsJSON: UnsafePointer<CChar>?,
                                 _ start: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    out?.pointee = nil
    return guarded("sxc_scf_forward_from") {
        let previous = try start.map { try HandleTable.shared.result($0).result.start }
        try forward(sys, xc, optionsJSON, start: previous, out)
    }
}

/// The shared body of the two forward entry points.
private func forward(_ sys: OpaquePointer?, _ xc: UnsafePointer<CChar>?, _ optionsJSON: UnsafePointer<CChar>?,
                     start: SCFStart?, _ out: UnsafeMutablePointer<OpaquePointer?>?) throws {
    let system = try HandleTable.shared.system(sys)
    guard let name = String(validatingCString: try readCString(xc, "xc")) else {
        throw SolidXCError.input(field: "xc", message: "is not valid UTF-8")
    }
    guard let out else { throw ABIError.buffer("out is NULL") }
    var json = JSONValue.object([])
    if let optionsJSON, optionsJSON.pointee != 0 {
        json = try JSONParser.parse(optionsJSON)
    }
    var options = try Decode.scfOptions(json, xc: name)
    options.start = start
    let result = try runSCF(system: system.prepared, options: options)
    out.pointee = HandleTable.shared.insert(.result(ResultBox(result)))
}

@_cdecl("sxc_result_free")
public func sxc_result_free(_ res: OpaquePointer?) -> Int32 {
    guarded("sxc_result_free") { try HandleTable.shared.remove(res, kind: "result") }
}

@_cdecl("sxc_result_dims")
public func sxc_result_dims(_ res: OpaquePointer?, _ nspin: UnsafeMutablePointer<Int32>?, _ nk: UnsafeMutablePointer<Int32>?,
                            _ nband: UnsafeMutablePointer<Int32>?, _ fft: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded("sxc_result_dims") {
        let r = try HandleTable.shared.result(res).result
        guard let fft else { throw ABIError.buffer("fft is NULL") }
        try store(Int32(clamping: r.nspin), nspin, "nspin")
        try store(Int32(clamping: r.nkpoints), nk, "nk")
        try store(Int32(clamping: r.nbands), nband, "nband")
        for i in 0..<3 { fft[i] = i < r.fftSize.count ? Int32(clamping: r.fftSize[i]) : 0 }
    }
}

/// One scalar accessor: looks the result up and stores `value(result)` through `out`.
private func scalar<T>(_ function: String, _ res: OpaquePointer?, _ out: UnsafeMutablePointer<T>?, _ value: (SCFResult) -> T) -> Int32 {
    guarded(function) {
        let r = try HandleTable.shared.result(res).result
        try store(value(r), out, "output pointer")
    }
}

@_cdecl("sxc_result_energy")
public func sxc_result_energy(_ res: OpaquePointer?, _ out: UnsafeMutablePointer<Double>?) -> Int32 {
    scalar("sxc_result_energy", res, out) { $0.energy }
}

@_cdecl("sxc_result_fermi_level")
public func sxc_result_fermi_level(_ res: OpaquePointer?, _ out: UnsafeMutablePointer<Double>?) -> Int32 {
    scalar("sxc_result_fermi_level", res, out) { $0.fermiLevel }
}

@_cdecl("sxc_result_energy_zero_width")
public func sxc_result_energy_zero_width(_ res: OpaquePointer?, _ out: UnsafeMutablePointer<Double>?) -> Int32 {
    scalar("sxc_result_energy_zero_width", res, out) { $0.energyZeroWidth }
}

@_cdecl("sxc_result_magnetization")
public func sxc_result_magnetization(_ res: OpaquePointer?, _ total: UnsafeMutablePointer<Double>?,
                                     _ absolute: UnsafeMutablePointer<Double>?) -> Int32 {
    let status = scalar("sxc_result_magnetization", res, total) { $0.magnetization.total }
    guard status == 0 else { return status }
    return scalar("sxc_result_magnetization", res, absolute) { $0.magnetization.absolute }
}

@_cdecl("sxc_result_converged")
public func sxc_result_converged(_ res: OpaquePointer?, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    scalar("sxc_result_converged", res, out) { $0.converged ? 1 : 0 }
}

@_cdecl("sxc_result_iterations")
public func sxc_result_iterations(_ res: OpaquePointer?, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    scalar("sxc_result_iterations", res, out) { Int32(clamping: $0.iterations) }
}

@_cdecl("sxc_result_volume")
public func sxc_result_volume(_ res: OpaquePointer?, _ out: UnsafeMutablePointer<Double>?) -> Int32 {
    scalar("sxc_result_volume", res, out) { $0.volume }
}

@_cdecl("sxc_result_nelectrons")
public func sxc_result_nelectrons(_ res: OpaquePointer?, _ out: UnsafeMutablePointer<Double>?) -> Int32 {
    scalar("sxc_result_nelectrons", res, out) { $0.nelectrons }
}

@_cdecl("sxc_result_energy_term_count")
public func sxc_result_energy_term_count(_ res: OpaquePointer?, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    scalar("sxc_result_energy_term_count", res, out) { Int32(clamping: $0.energies.count) }
}

@_cdecl("sxc_result_energy_terms")
public func sxc_result_energy_terms(_ res: OpaquePointer?, _ values: UnsafeMutablePointer<Double>?, _ count: UInt) -> Int32 {
    guarded("sxc_result_energy_terms") {
        let r = try HandleTable.shared.result(res).result
        try copyOut(r.energies.map { $0.value }, values, count, "energy terms")
    }
}

@_cdecl("sxc_result_energy_term_name")
public func sxc_result_energy_term_name(_ res: OpaquePointer?, _ i: Int32, _ name: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    guarded("sxc_result_energy_term_name") {
        let box = try HandleTable.shared.result(res)
        guard i >= 0, Int(i) < box.termNames.count else {
            throw SolidXCError.input(field: "i", message: "energy term index \(i) is out of range 0..<\(box.termNames.count)")
        }
        try store(UnsafePointer(box.termNames[Int(i)]), name, "name")
    }
}

/// One array accessor: copies `values(result)` into the caller's buffer.
private func array(_ function: String, _ res: OpaquePointer?, _ buffer: UnsafeMutablePointer<Double>?, _ count: UInt,
                   _ what: String, _ values: (SCFResult) -> [Double]) -> Int32 {
    guarded(function) {
        let r = try HandleTable.shared.result(res).result
        try copyOut(values(r), buffer, count, what)
    }
}

@_cdecl("sxc_result_eigenvalues")
public func sxc_result_eigenvalues(_ res: OpaquePointer?, _ values: UnsafeMutablePointer<Double>?, _ count: UInt) -> Int32 {
    array("sxc_result_eigenvalues", res, values, count, "eigenvalues [nspin][nk][nband]") { $0.eigenvalues }
}

@_cdecl("sxc_result_occupations")
public func sxc_result_occupations(_ res: OpaquePointer?, _ values: UnsafeMutablePointer<Double>?, _ count: UInt) -> Int32 {
    array("sxc_result_occupations", res, values, count, "occupations [nspin][nk][nband]") { $0.occupations }
}

@_cdecl("sxc_result_kpoints")
public func sxc_result_kpoints(_ res: OpaquePointer?, _ values: UnsafeMutablePointer<Double>?, _ count: UInt) -> Int32 {
    array("sxc_result_kpoints", res, values, count, "kpoints [nk][3]") { $0.kpoints }
}

@_cdecl("sxc_result_kweights")
public func sxc_result_kweights(_ res: OpaquePointer?, _ values: UnsafeMutablePointer<Double>?, _ count: UInt) -> Int32 {
    array("sxc_result_kweights", res, values, count, "kweights [nk]") { $0.kweights }
}

@_cdecl("sxc_result_density")
public func sxc_result_density(_ res: OpaquePointer?, _ values: UnsafeMutablePointer<Double>?, _ count: UInt) -> Int32 {
    array("sxc_result_density", res, values, count, "density [nspin][n1][n2][n3]") { $0.density }
}

@_cdecl("sxc_result_forces")
public func sxc_result_forces(_ res: OpaquePointer?, _ values: UnsafeMutablePointer<Double>?, _ count: UInt) -> Int32 {
    guarded("sxc_result_forces") {
        let forces = try HandleTable.shared.result(res).result.forces
        try copyOut(forces.flatMap { [$0.x, $0.y, $0.z] }, values, count, "forces [natom][3]")
    }
}

@_cdecl("sxc_result_stress")
public func sxc_result_stress(_ res: OpaquePointer?, _ values: UnsafeMutablePointer<Double>?, _ count: UInt) -> Int32 {
    guarded("sxc_result_stress") {
        let stress = try HandleTable.shared.result(res).result.stress
        try copyOut(Array(stress.joined()), values, count, "stress [3][3]")
    }
}

/// A history accessor: reports the length through `written`, even when the buffer is too small.
private func history(_ function: String, _ res: OpaquePointer?, _ buffer: UnsafeMutablePointer<Double>?, _ count: UInt,
                     _ written: UnsafeMutablePointer<UInt>?, _ values: (SCFResult) -> [Double]) -> Int32 {
    guarded(function) {
        let h = values(try HandleTable.shared.result(res).result)
        written?.pointee = UInt(h.count)
        try copyOut(h, buffer, count, "history")
    }
}

@_cdecl("sxc_result_residual_history")
public func sxc_result_residual_history(_ res: OpaquePointer?, _ values: UnsafeMutablePointer<Double>?, _ count: UInt,
                                        _ written: UnsafeMutablePointer<UInt>?) -> Int32 {
    history("sxc_result_residual_history", res, values, count, written) { $0.residualHistory }
}

@_cdecl("sxc_result_energy_history")
public func sxc_result_energy_history(_ res: OpaquePointer?, _ values: UnsafeMutablePointer<Double>?, _ count: UInt,
                                      _ written: UnsafeMutablePointer<UInt>?) -> Int32 {
    history("sxc_result_energy_history", res, values, count, written) { $0.energyHistory }
}
