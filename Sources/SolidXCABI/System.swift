import SolidXC

/// A validated system held by handle: the decoded spec and what Python needs to know about
/// it before any SCF (volume, electron count, FFT grid).
final class SystemBox {
    let prepared: PreparedSystem
    var spec: SystemSpec { prepared.spec }
    var volume: Double { prepared.model.lattice.volume }
    var nelectrons: Double { prepared.model.nelectrons }
    var fftSize: [Int] { prepared.fftSize }

    init(_ spec: SystemSpec) throws {
        prepared = try PreparedSystem(spec)
    }
}

@_cdecl("sxc_system_create")
public func sxc_system_create(_ json: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    out?.pointee = nil
    return guarded("sxc_system_create") {
        let text = try readCString(json, "json")
        guard let out else { throw ABIError.buffer("out is NULL") }
        let spec = try Decode.systemSpec(try JSONParser.parse(text))
        let box = try SystemBox(spec)
        out.pointee = HandleTable.shared.insert(.system(box))
    }
}

@_cdecl("sxc_system_free")
public func sxc_system_free(_ sys: OpaquePointer?) -> Int32 {
    guarded("sxc_system_free") { try HandleTable.shared.remove(sys, kind: "system") }
}

@_cdecl("sxc_system_volume")
public func sxc_system_volume(_ sys: OpaquePointer?, _ volume: UnsafeMutablePointer<Double>?) -> Int32 {
    guarded("sxc_system_volume") { try store(try HandleTable.shared.system(sys).volume, volume, "volume") }
}

@_cdecl("sxc_system_nelectrons")
public func sxc_system_nelectrons(_ sys: OpaquePointer?, _ nelectrons: UnsafeMutablePointer<Double>?) -> Int32 {
    guarded("sxc_system_nelectrons") { try store(try HandleTable.shared.system(sys).nelectrons, nelectrons, "nelectrons") }
}

@_cdecl("sxc_system_fft_size")
public func sxc_system_fft_size(_ sys: OpaquePointer?, _ fft: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded("sxc_system_fft_size") {
        let box = try HandleTable.shared.system(sys)
        guard let fft else { throw ABIError.buffer("fft is NULL") }
        for i in 0..<3 { fft[i] = Int32(clamping: box.fftSize[i]) }
    }
}

@_cdecl("sxc_system_symmetry")
public func sxc_system_symmetry(_ sys: OpaquePointer?, _ noperations: UnsafeMutablePointer<Int32>?, _ nkpoints: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded("sxc_system_symmetry") {
        let box = try HandleTable.shared.system(sys)
        guard let noperations else { throw ABIError.buffer("noperations is NULL") }
        guard let nkpoints else { throw ABIError.buffer("nkpoints is NULL") }
        noperations.pointee = Int32(clamping: box.prepared.symmetry.operations.count)
        nkpoints.pointee = Int32(clamping: box.prepared.kgrid.kpoints.count)
    }
}
