#if canImport(Glibc)
import Glibc
#endif

/// Hartree energy (Omega/2) sum_{G != 0} 4 pi |rho(G)|^2 / G^2 of the spin-summed density; the
/// potential is 4 pi rho(G)/G^2 for both spins, and the kernel is the same map applied to drho.
public final class Hartree: Term {
    public let name = "hartree"
    let basis: PlaneWaveBasis
    public init(basis: PlaneWaveBasis) { self.basis = basis }

    func potential(ofTotal rho: [Double], nspin: Int) -> (energy: Double, potential: [Double]) {
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
        energy *= 0.5 * basis.model.lattice.volume
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

    public func applyKernel(rho: [Double], drho: [Double], nspin: Int) throws -> [Double]? {
        potential(ofTotal: drho, nspin: nspin).potential
    }
}
