import SolidXC

/// The library version reported by `sxc_version`. Bump with every release of include/solidxc.h.
let solidxcVersion = "0.1.0"

/// NUL-terminated copy made once; static storage for the life of the process.
private let versionCString: UnsafeMutablePointer<CChar> = makeCString(solidxcVersion)

@_cdecl("sxc_version")
public func sxc_version() -> UnsafePointer<CChar>? {
    UnsafePointer(versionCString)
}
