#if canImport(Glibc)
import Glibc
#endif

/// Hartree energy (Omega/2) sum_{G != 0} 4 pi |rho(G)|^2 / G^2 of the spin-summed density; the
/// potential is 4 pi rho(G)/G^2 for both spins, and the kernel is the same map applied to drho.
public final class Hartree: Term {
    public let name = "hartree"
    let basis: PlaneWaveBasis
    public init(basis: PlaneWaveBasis) { self.basis = basis }

    /// The energy and 4 pi rho(G)/G^2 (G = 0 set to 0) of the spin-summed density.
    private func energyAndPotentialG(ofTotal rho: [Double], nspin: Int) -> (energy: Double, vG: [Complex]) {
        let n = basis.gridCount
        var total = [Double](repeating: 0, count: n)
        for s in 0..<nspin { for i in 0..<n { total[i] += rho[s * n + i] } }
        var rhoG = basis.fft.forward(real: total)
        var energy = 0.0
        for i in 0..<n {
            let g2 = basis.gNorm2[i]
            if g2 == 0 { rhoG[i] = .zero; continue }
            let factor = 4 * Double.pi / g2
            energy += factor * rhoG[i].norm2
            rhoG[i] = factor * rhoG[i]
        }
        return (energy * 0.5 * basis.model.lattice.volume, rhoG)
    }

    public func energy(_ state: SCFState) throws -> Double { energyAndPotentialG(ofTotal: state.rho, nspin: state.nspin).energy }

    func potential(ofTotal rho: [Double], nspin: Int) -> (energy: Double, potential: [Double]) {
        let n = basis.gridCount
        let (energy, rhoG) = energyAndPotentialG(ofTotal: rho, nspin: nspin)
        let v = basis.fft.backwardReal(rhoG)
        var potential = [Double](repeating: 0, count: nspin * n)
        for s in 0..<nspin { for i in 0..<n { potential[s * n + i] = v[i] } }
        return (energy, potential)
    }

    public func localPotential(_ state: SCFState) throws -> [Double]? { try evaluate(state).potential }

    public func evaluate(_ state: SCFState) throws -> TermEvaluation {
        let (e, v) = potential(ofTotal: state.rho, nspin: state.nspin)
        return TermEvaluation(energy: e, potential: v)
    }

    /// E = (1/(2 Omega)) sum 4 pi |Omega rho(G)|^2 / G^2 with Omega rho(G) fixed, and
    /// dG^2/d(eps_ab) = -2 G_a G_b: dE/d(eps_ab) = -E delta_ab + (Omega/2) sum 4 pi |rho(G)|^2 2 G_a G_b / G^4.
    public func strainDerivative(_ state: SCFState) throws -> [[Double]]? {
        let n = basis.gridCount
        var total = [Double](repeating: 0, count: n)
        for s in 0..<state.nspin { for i in 0..<n { total[i] += state.rho[s * n + i] } }
        let rhoG = basis.fft.forward(real: total)
        let omega = basis.model.lattice.volume
        var energy = 0.0
        var d = [[Double]](repeating: [0, 0, 0], count: 3)
        for i in 0..<n {
            let g2 = basis.gNorm2[i]
            if g2 == 0 { continue }
            let e = 0.5 * omega * 4 * Double.pi * rhoG[i].norm2 / g2
            energy += e
            let g = basis.gVectors[i]
            for a in 0..<3 { for b in 0..<3 { d[a][b] += 2 * e * g[a] * g[b] / g2 } }
        }
        for a in 0..<3 { d[a][a] -= energy }
        return d
    }

    public func applyKernel(rho: [Double], drho: [Double], nspin: Int) throws -> [Double]? {
        potential(ofTotal: drho, nspin: nspin).potential
    }
}
