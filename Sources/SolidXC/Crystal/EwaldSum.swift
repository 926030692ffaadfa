#if canImport(Glibc)
import Glibc
#endif

/// Ewald energy (Ha per cell) of point charges `charges` at Cartesian `positions` (bohr) in a
/// neutralising background, with the standard split erfc/erf at width eta chosen from the cell.
/// Converged to ~1e-14 relative by choosing real and reciprocal cutoffs from eta.
public func ewaldEnergy(lattice: Lattice, charges: [Double], positions: [Vec3]) -> Double {
    let n = charges.count
    let volume = lattice.volume
    // eta balances the two sums; both tails decay like exp(-x^2) with x ~ 6.
    let eta = sqrt(Double.pi) / pow(volume, 1.0 / 3.0)
    let cutoff = 6.0
    let rmax = cutoff / eta
    let gmax = 2 * eta * cutoff
    let totalCharge = charges.reduce(0, +)
    let sumSquares = charges.reduce(0) { $0 + $1 * $1 }

    // Reciprocal-space sum over G != 0.
    var recip = 0.0
    let nG = (0..<3).map { Int(ceil(gmax * norm(lattice.vectors[$0]) / (2 * Double.pi))) + 1 }
    for i in -nG[0]...nG[0] {
        for j in -nG[1]...nG[1] {
            for l in -nG[2]...nG[2] where !(i == 0 && j == 0 && l == 0) {
                let g = lattice.wavevector(Vec3(Double(i), Double(j), Double(l)))
                let g2 = dot(g, g)
                if g2 > gmax * gmax { continue }
                var sre = 0.0
                var sim = 0.0
                for a in 0..<n {
                    let phase = dot(g, positions[a])
                    sre += charges[a] * cos(phase)
                    sim += charges[a] * sin(phase)
                }
                recip += exp(-g2 / (4 * eta * eta)) / g2 * (sre * sre + sim * sim)
            }
        }
    }
    recip *= 2 * Double.pi / volume

    // Real-space sum over pairs and images.
    var real = 0.0
    let nR = (0..<3).map { Int(ceil(rmax * norm(lattice.reciprocal[$0]) / (2 * Double.pi))) + 1 }
    for a in 0..<n {
        for b in 0..<n {
            let d0 = positions[a] - positions[b]
            for i in -nR[0]...nR[0] {
                for j in -nR[1]...nR[1] {
                    for l in -nR[2]...nR[2] {
                        let r = d0 + lattice.cartesian(Vec3(Double(i), Double(j), Double(l)))
                        let dist = norm(r)
                        if dist < 1e-12 || dist > rmax { continue }
                        real += charges[a] * charges[b] * erfc(eta * dist) / dist
                    }
                }
            }
        }
    }
    real *= 0.5
    let selfTerm = -eta / sqrt(Double.pi) * sumSquares
    let background = -Double.pi * totalCharge * totalCharge / (2 * volume * eta * eta)
    return recip + real + selfTerm + background
}
