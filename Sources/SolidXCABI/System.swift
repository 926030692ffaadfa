import SolidXC

/// A validated system held by handle: the decoded spec and what Python needs to know about
/// it before any SCF (volume, electron count, FFT grid).
final class SystemBox {
    let spec: SystemSpec
    let volume: Double
    let nelectrons: Double
    let fftSize: [Int]

    init(_ spec: SystemSpec) throws {
        try Preflight.check(spec)
        let model = try Model(spec)
        _ = try KGrid(size: spec.kpts, shift: spec.kshift)
        try Preflight.check(model)
        self.spec = spec
        volume = model.lattice.volume
        nelectrons = model.nelectrons
        fftSize = spec.fftSize ?? PlaneWaveBasis.defaultFFTSize(lattice: model.lattice, ecut: spec.ecut)
    }
}

/// Checks that keep inputs away from integer overflows in the core (which would trap rather
/// than throw) until the core validates these itself. Each one reports the field as the core
/// does; none of them is physics. Remove each when the core covers it:
/// - fft_size has 3 positive entries (the ABI reports the grid before any SCF);
/// - ecut finite and positive before `PlaneWaveBasis.defaultFFTSize` (the core checks it in
///   `runSCF`, but not in `Model` or `defaultFFTSize`);
/// - `KGrid` multiplies the k-grid sizes in `Int` and `PlaneWaveBasis` the FFT sizes;
/// - `defaultFFTSize` converts a Double to `Int` without a range check (huge ecut or cell);
/// - `runSCF` converts the electron count to `Int` (a huge negative charge).
enum Preflight {
    static func check(_ spec: SystemSpec) throws {
        guard spec.ecut.isFinite, spec.ecut > 0 else {
            throw SolidXCError.input(field: "ecut", message: "must be a positive number of Hartree, got \(spec.ecut)")
        }
        if spec.kpts.count == 3, spec.kpts.allSatisfy({ $0 > 0 }) {
            let points = spec.kpts.reduce(1.0) { $0 * Double($1) }
            guard points <= 1e6 else {
                throw SolidXCError.input(field: "kpts", message: "\(spec.kpts) has more than 10^6 points")
            }
        }
        if let f = spec.fftSize {
            guard f.count == 3, f.allSatisfy({ $0 > 0 }) else {
                throw SolidXCError.input(field: "fft_size", message: "expected 3 positive integers, got \(f)")
            }
            let points = f.reduce(1.0) { $0 * Double($1) }
            guard points <= 400 * 400 * 400 else {
                throw SolidXCError.input(field: "fft_size", message: "grid \(f) has \(points) points, more than this build supports (6.4e7)")
            }
        }
    }

    static func check(_ model: Model) throws {
        let gmaxDensity = 2 * (2 * model.spec.ecut).squareRoot()
        let longest = model.lattice.vectors.map { ($0 * $0).sum().squareRoot() }.max() ?? 0
        let perDirection = 2 * gmaxDensity * longest / (2 * Double.pi)
        guard perDirection.isFinite, perDirection < 1e6 else {
            throw SolidXCError.memory(message: "ecut: ecut \(model.spec.ecut) Ha on this cell needs an FFT grid of more than 10^6 points per direction; lower ecut")
        }
        guard model.nelectrons <= 1e6 else {
            throw SolidXCError.input(field: "charge", message: "charge \(model.spec.charge) leaves \(model.nelectrons) electrons; at most 10^6 are supported")
        }
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
