import XCTest
@testable import SolidXC

/// The derivatives the analytic stress is built from, against central differences of the
/// functions they differentiate. The stress itself is checked end to end against finite
/// differences of SCF energies and against ABINIT in python/tests/test_stress.py and
/// test_abinit_forces.py.
final class StressTests: XCTestCase {
    func central(_ f: (Double) -> Double, at x: Double, h: Double = 1e-5) -> Double {
        (f(x + h) - f(x - h)) / (2 * h)
    }

    func testFormFactorDerivativesMatchCentralDifferences() throws {
        // W q14: s (three projectors), p and d channels; Si: two local coefficients; Ni q18.
        for (element, table) in [("W", "gth-pbe-q14"), ("Si", "gth-pade"), ("Ni", "gth-pbe-q18")] {
            let pp = try GTHPseudopotential.load(element: element, table: table)
            for q in [0.3, 1.1, 2.7, 5.0] {
                let numeric = central({ pp.localFourier($0) }, at: q)
                XCTAssertEqual(pp.localFourierDerivative(q), numeric, accuracy: 1e-7 * max(1, abs(numeric)), "\(element) local q=\(q)")
                for l in 0...max(0, pp.maxAngularMomentum) where pp.projectorCount(l: l) > 0 {
                    for i in 0..<pp.projectorCount(l: l) {
                        let numeric = central({ pp.projectorFourier(l: l, i: i, q: $0) }, at: q)
                        XCTAssertEqual(pp.projectorFourierDerivative(l: l, i: i, q: q), numeric, accuracy: 1e-8 * max(1, abs(numeric)),
                                       "\(element) l=\(l) i=\(i) q=\(q)")
                    }
                }
            }
        }
    }

    func testSphericalHarmonicGradientsMatchCentralDifferences() {
        let q = (0.7, -1.3, 0.4)
        for l in 0...3 {
            var grad = [Double](repeating: 0, count: 3 * (2 * l + 1))
            grad.withUnsafeMutableBufferPointer { GTHPseudopotential.realSphericalHarmonicsGradient(l: l, direction: q, into: $0.baseAddress!) }
            for c in 0..<3 {
                func y(_ shift: Double) -> [Double] {
                    var p = [q.0, q.1, q.2]
                    p[c] += shift
                    var out = [Double](repeating: 0, count: 2 * l + 1)
                    out.withUnsafeMutableBufferPointer { GTHPseudopotential.realSphericalHarmonics(l: l, direction: (p[0], p[1], p[2]), into: $0.baseAddress!) }
                    return out
                }
                let h = 1e-6
                let (plus, minus) = (y(h), y(-h))
                for m in 0..<(2 * l + 1) {
                    XCTAssertEqual(grad[3 * m + c], (plus[m] - minus[m]) / (2 * h), accuracy: 1e-8, "l=\(l) m=\(m) c=\(c)")
                }
            }
        }
    }

    func testEwaldStrainDerivativeMatchesCentralDifferences() throws {
        let rows = [[0.1, 5.1, 5.2], [5.0, 0.2, 5.1], [5.3, 4.9, -0.1]]
        let base = try Lattice(rows: rows)
        let positions = [Vec3(0, 0, 0), Vec3(2.4, 2.7, 2.5)]
        let charges = [4.0, 3.0]
        let analytic = ewaldSum(lattice: base, charges: charges, positions: positions).strainDerivative
        let h = 1e-5
        for a in 0..<3 {
            for b in 0..<3 {
                func energy(_ t: Double) throws -> Double {
                    var f = [[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]
                    f[a][b] += t
                    func strain(_ v: Vec3) -> Vec3 { Vec3((0..<3).map { i in (0..<3).reduce(0.0) { $0 + f[i][$1] * v[$1] } }) }
                    let lattice = try Lattice(rows: base.vectors.map { let s = strain($0); return [s.x, s.y, s.z] })
                    return ewaldEnergy(lattice: lattice, charges: charges, positions: positions.map(strain))
                }
                let numeric = (try energy(h) - energy(-h)) / (2 * h)
                XCTAssertEqual(analytic[a][b], numeric, accuracy: 1e-7 * max(1, abs(numeric)), "component \(a)\(b)")
            }
        }
    }
}
