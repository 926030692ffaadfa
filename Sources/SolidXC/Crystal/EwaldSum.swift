#if canImport(Glibc)
import Glibc
#endif

/// Ewald energy (Ha per cell) of point charges `charges` at Cartesian `positions` (bohr) in a
/// neutralising background.
public func ewaldEnergy(lattice: Lattice, charges: [Double], positions: [Vec3]) -> Double {
    ewaldSum(lattice: lattice, charges: charges, positions: positions).energy
}

/// Ewald energy (Ha per cell) of point charges `charges` at Cartesian `positions` (bohr) in a
/// neutralising background, the forces on the charges, -dE/dR_a (Ha/bohr), and the strain
/// derivative dE/d(eps_ab) (Ha, 3x3) under r -> (1 + eps) r, with the standard split erfc/erf at
/// width eta chosen from the cell (the sum does not depend on eta, so eta is held fixed when
/// differentiating). Converged to ~1e-14 relative by choosing real and reciprocal cutoffs from eta.
public func ewaldSum(lattice: Lattice, charges: [Double], positions: [Vec3]) -> (energy: Double, forces: [Vec3], strainDerivative: [[Double]]) {
    let n = charges.count
    let volume = lattice.volume
    // eta balances the two sums; both tails decay like exp(-x^2) with x ~ 6.
    let eta = sqrt(Double.pi) / pow(volume, 1.0 / 3.0)
    let cutoff = 6.0
    let rmax = cutoff / eta
    let gmax = 2 * eta * cutoff
    let totalCharge = charges.reduce(0, +)
    let sumSquares = charges.reduce(0) { $0 + $1 * $1 }

    var forces = [Vec3](repeating: .zero, count: n)
    var strain = [[Double]](repeating: [0, 0, 0], count: 3)
    // Reciprocal-space sum over G != 0: E = (2 pi/Omega) sum_G f(G) |S(G)|^2, S = sum_a Z_a e^{iG.R_a},
    // so F_a = (4 pi/Omega) Z_a sum_G f(G) G Im[e^{iG.R_a} S(G)^*].
    var recip = 0.0
    var phases = [Complex](repeating: .zero, count: n)
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
                    phases[a] = Complex.phase(dot(g, positions[a]))
                    sre += charges[a] * phases[a].re
                    sim += charges[a] * phases[a].im
                }
                let f = exp(-g2 / (4 * eta * eta)) / g2
                let s2 = sre * sre + sim * sim
                recip += f * s2
                // dG^2/d(eps_ab) = -2 G_a G_b and df/dG^2 = -f (1/(4 eta^2) + 1/G^2); the 1/Omega is added below.
                let slope = 2 * Double.pi / volume * s2 * f * (1 / (4 * eta * eta) + 1 / g2) * 2
                for a in 0..<3 { for b in 0..<3 { strain[a][b] += slope * g[a] * g[b] } }
                for a in 0..<n {
                    // Im[e^{iG.R_a} (sre - i sim)]
                    let im = phases[a].im * sre - phases[a].re * sim
                    forces[a] += (4 * Double.pi / volume * charges[a] * f * im) * g
                }
            }
        }
    }
    recip *= 2 * Double.pi / volume
    for a in 0..<3 { strain[a][a] -= recip }

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
                        let pair = charges[a] * charges[b] * erfc(eta * dist) / dist
                        real += pair
                        // -d/dR_a of Z_a Z_b erfc(eta d)/d, which appears twice (a, b and b, a) in the sum.
                        let slope = (pair + charges[a] * charges[b] * 2 * eta / sqrt(Double.pi) * exp(-eta * eta * dist * dist)) / (dist * dist)
                        forces[a] += slope * r
                        // d(dist)/d(eps_ab) = r_a r_b / dist; the pair enters with the factor 1/2.
                        for c in 0..<3 { for e in 0..<3 { strain[c][e] -= 0.5 * slope * r[c] * r[e] } }
                    }
                }
            }
        }
    }
    real *= 0.5
    let selfTerm = -eta / sqrt(Double.pi) * sumSquares
    let background = -Double.pi * totalCharge * totalCharge / (2 * volume * eta * eta)
    for a in 0..<3 { strain[a][a] -= background }
    return (recip + real + selfTerm + background, forces, strain)
}
