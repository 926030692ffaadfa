@testable import SolidXC

/// Shared crystals for the tests.
enum Fixtures {
    static let bohrPerAngstrom = 1 / 0.52917721092

    /// Diamond-structure silicon, a = 5.431 A, fcc primitive cell.
    static func silicon(ecut: Double = 8, kpts: [Int] = [1, 1, 1], pseudo: String = "gth-pade",
                        displacement: [Double] = [0, 0, 0]) -> SystemSpec {
        let a = 5.431 * bohrPerAngstrom
        return SystemSpec(lattice: [[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]],
                          atoms: [AtomSpec(element: "Si", position: [0, 0, 0]),
                                  AtomSpec(element: "Si", position: [a / 4 + displacement[0], a / 4 + displacement[1], a / 4 + displacement[2]])],
                          pseudo: .table(pseudo), ecut: ecut, kpts: kpts)
    }

    static func basis(_ spec: SystemSpec) throws -> PlaneWaveBasis {
        let model = try Model(spec)
        return try PlaneWaveBasis(model: model, ecut: spec.ecut, kgrid: try KGrid(size: spec.kpts, shift: spec.kshift), fftSize: spec.fftSize)
    }

    /// A deterministic pseudo-random sequence in [-1, 1) (no global RNG state in tests).
    struct Noise {
        var state: UInt64
        mutating func next() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53) * 2 - 1
        }
    }
}
