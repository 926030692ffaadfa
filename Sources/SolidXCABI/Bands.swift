import SolidXC

/// Non-self-consistent band energies at caller-given k-points (include/solidxc.h).
@_cdecl("sxc_result_bands")
public func sxc_result_bands(_ res: OpaquePointer?, _ kfrac: UnsafePointer<Double>?, _ nk: UInt, _ nbands: Int32,
                             _ out: UnsafeMutablePointer<Double>?, _ n: UInt) -> Int32 {
    guarded("sxc_result_bands") {
        let r = try HandleTable.shared.result(res).result
        guard let kfrac else { throw SolidXCError.input(field: "kfrac", message: "is NULL") }
        guard nk >= 1, nk <= 1_000_000 else {
            throw SolidXCError.input(field: "nk", message: "must be between 1 and 1000000 k-points, got \(nk)")
        }
        guard nbands >= 1, nbands <= 100_000 else {
            throw SolidXCError.input(field: "nbands", message: "must be between 1 and 100000, got \(nbands)")
        }
        let count = r.nspin * Int(nk) * Int(nbands)
        guard let out else { throw ABIError.buffer("out is NULL") }
        guard n >= UInt(count) else {
            throw ABIError.buffer("out: bands [nspin][nk][nbands] = [\(r.nspin)][\(nk)][\(nbands)] need \(count) elements, buffer holds \(n)")
        }
        var kpoints: [Vec3] = []
        kpoints.reserveCapacity(Int(nk))
        for i in 0..<Int(nk) {
            let k = Vec3(kfrac[3 * i], kfrac[3 * i + 1], kfrac[3 * i + 2])
            guard k.x.isFinite, k.y.isFinite, k.z.isFinite else {
                throw SolidXCError.input(field: "kfrac", message: "k-point \(i) is (\(k.x), \(k.y), \(k.z)); reduced coordinates must be finite")
            }
            kpoints.append(k)
        }
        var options = BandOptions()
        options.nbands = Int(nbands)
        let values = try r.bands(kpoints: kpoints, options: options)
        try copyOut(values, out, n, "out")
    }
}
