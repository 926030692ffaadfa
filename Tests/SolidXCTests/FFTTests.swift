import XCTest
@testable import SolidXC

final class FFTTests: XCTestCase {
    /// The pruned sphere transforms (1D FFTW plans over the occupied columns and planes) give the
    /// plain full 3D transform to round-off, on random data, at every k-point of a shifted grid,
    /// for the default cubic grid and for an anisotropic odd-sized one.
    func testSphereTransformsMatchFull3DTransform() throws {
        for fftSize in [nil, [20, 25, 27]] as [[Int]?] {
            var spec = Fixtures.silicon(ecut: 8, kpts: [2, 2, 2], displacement: [0.1, 0, -0.05])
            spec.kshift = [0.5, 0.5, 0.5]
            spec.fftSize = fftSize
            let basis = try Fixtures.basis(spec)
            let fft = basis.fft
            let n = fft.count
            var noise = Fixtures.Noise(state: 11)
            for kb in basis.kpoints {
                let sphere = try SphereFFT(grid: fft, fftIndex: kb.fftIndex)
                let workspace = SphereFFT.Workspace(fft)
                let npw = kb.count
                // G -> r
                let c = (0..<npw).map { _ in Complex(noise.next(), noise.next()) }
                var full = [Complex](repeating: .zero, count: n)
                for g in 0..<npw { full[Int(kb.fftIndex[g])] = c[g] }
                let expected = fft.backwardReal(full)
                var expectedComplex = [Complex](repeating: .zero, count: n)
                full.withUnsafeBufferPointer { i in expectedComplex.withUnsafeMutableBufferPointer { o in fft.backward(i.baseAddress!, o.baseAddress!) } }
                var pruned = [Complex](repeating: Complex(7, 7), count: n)
                c.withUnsafeBufferPointer { cp in pruned.withUnsafeMutableBufferPointer { rp in
                    sphere.backward(cp.baseAddress!, into: rp.baseAddress!, workspace: workspace)
                } }
                let scaleR = expectedComplex.map { $0.norm2 }.max()!.squareRoot()
                var err = 0.0
                for i in 0..<n { err = max(err, (pruned[i] - expectedComplex[i]).norm2.squareRoot()) }
                XCTAssertLessThan(err / scaleR, 1e-14, "backward, grid \(fft.size), k \(kb.k)")
                XCTAssertEqual(expected[5], expectedComplex[5].re)
                // r -> G
                let f = (0..<n).map { _ in Complex(noise.next(), noise.next()) }
                var fullG = [Complex](repeating: .zero, count: n)
                f.withUnsafeBufferPointer { i in fullG.withUnsafeMutableBufferPointer { o in fft.forward(i.baseAddress!, o.baseAddress!) } }
                var coefficients = [Complex](repeating: .zero, count: npw)
                f.withUnsafeBufferPointer { fp in coefficients.withUnsafeMutableBufferPointer { cp in
                    sphere.forward(fp.baseAddress!, into: cp.baseAddress!, scale: 1 / Double(n), workspace: workspace)
                } }
                let scaleG = fullG.map { $0.norm2 }.max()!.squareRoot()
                err = 0
                for g in 0..<npw { err = max(err, (coefficients[g] - fullG[Int(kb.fftIndex[g])]).norm2.squareRoot()) }
                XCTAssertLessThan(err / scaleG, 1e-14, "forward, grid \(fft.size), k \(kb.k)")
                // The workspace is reused: a second transform of the same data gives the same bits.
                var again = [Complex](repeating: .zero, count: npw)
                f.withUnsafeBufferPointer { fp in again.withUnsafeMutableBufferPointer { cp in
                    sphere.forward(fp.baseAddress!, into: cp.baseAddress!, scale: 1 / Double(n), workspace: workspace)
                } }
                XCTAssertEqual(again, coefficients)
            }
        }
    }
}
