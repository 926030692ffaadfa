// swift-tools-version:5.9
import PackageDescription

let package = Package(
    name: "SolidXC",
    products: [
        // libsolidxc.so: the C ABI (include/solidxc.h) that Python loads with ctypes.
        .library(name: "solidxc", type: .dynamic, targets: ["SolidXCABI"]),
        .library(name: "SolidXC", targets: ["SolidXC"]),
    ],
    targets: [
        .systemLibrary(name: "CSolidXCDeps", path: "Sources/CSolidXCDeps"),
        .target(
            name: "SolidXC",
            dependencies: ["CSolidXCDeps"],
            exclude: ["README.md", "Crystal/README.md", "Pseudo/README.md", "Basis/README.md",
                      "Terms/README.md", "XC/README.md", "SCF/README.md", "LinearAlgebra/README.md",
                      "Response/README.md", "Postprocess/README.md", "Pseudo/tools"],
            swiftSettings: [.unsafeFlags(["-O"])]
        ),
        .target(name: "SolidXCABI", dependencies: ["SolidXC"]),
        .testTarget(name: "SolidXCTests", dependencies: ["SolidXC"], exclude: ["Resources"]),
    ]
)
