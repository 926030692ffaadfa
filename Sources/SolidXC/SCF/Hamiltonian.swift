/// The Kohn-Sham Hamiltonian at one k-point and spin, applied matrix-free: the local potential
/// through FFTs (psi(G) -> psi(r), multiply by V(r), back), the k-dependent terms (kinetic,
/// nonlocal) through their own `applyOperator`.
struct HamiltonianBlock {
    let basis: PlaneWaveBasis
    let k: Int
    let spin: Int
    /// Total local potential of this spin on the real-space grid (N values).
    let potential: UnsafeBufferPointer<Double>
    let terms: [Term]
    /// Pruned sphere <-> grid transforms of this k-point (nil: FFTW could not plan them, so the
    /// full 3D transform is used), and scratch grids for them. A block serves one thread.
    let sphere: SphereFFT?
    let workspace: SphereFFT.Workspace
    let real: FFTBuffer

    init(basis: PlaneWaveBasis, k: Int, spin: Int, potential: UnsafeBufferPointer<Double>, terms: [Term],
         sphere: SphereFFT? = nil) {
        self.basis = basis
        self.k = k
        self.spin = spin
        self.potential = potential
        self.terms = terms
        self.sphere = sphere ?? (try? SphereFFT(grid: basis.fft, fftIndex: basis.kpoints[k].fftIndex))
        workspace = SphereFFT.Workspace(basis.fft)
        real = basis.fft.makeBuffer()
    }

    /// H X for X npw x nvec (column-major).
    func apply(_ x: [Complex], nvec: Int) -> [Complex] {
        let count = basis.kpoints[k].count * nvec
        return [Complex](unsafeUninitializedCapacity: count) { buffer, initialized in
            x.withUnsafeBufferPointer { xp in apply(xp.baseAddress!, nvec: nvec, into: buffer.baseAddress!) }
            initialized = count
        }
    }

    /// H X into `output` (npw x nvec, every value written; distinct from `x`).
    func apply(_ x: UnsafePointer<Complex>, nvec: Int, into output: UnsafeMutablePointer<Complex>) {
        let kb = basis.kpoints[k]
        let npw = kb.count
        let n = basis.gridCount
        let rp = real.pointer
        let scale = 1.0 / Double(n)
        // The local potential's part writes every coefficient, so the output is not zeroed first.
        if let sphere {
            for v in 0..<nvec {
                sphere.backward(x + v * npw, into: rp, workspace: workspace)
                for i in 0..<n {
                    rp[i].re *= potential[i]
                    rp[i].im *= potential[i]
                }
                sphere.forward(rp, into: output + v * npw, scale: scale, workspace: workspace)
            }
        } else {
            let box = workspace.box
            let bp = box.pointer
            kb.fftIndex.withUnsafeBufferPointer { idx in
                for v in 0..<nvec {
                    box.zero()
                    for g in 0..<npw { bp[Int(idx[g])] = x[v * npw + g] }
                    basis.fft.backward(box, into: real)
                    for i in 0..<n {
                        rp[i].re *= potential[i]
                        rp[i].im *= potential[i]
                    }
                    basis.fft.forward(real, into: box)
                    for g in 0..<npw { output[v * npw + g] = bp[Int(idx[g])] }
                }
            }
        }
        for term in terms {
            term.applyOperator(k: k, spin: spin, input: x, output: output, npw: npw, nvec: nvec)
        }
    }

    /// The dense matrix (npw x npw, column-major) for small bases and for tests.
    func denseMatrix(potentialG: [Complex]) -> [Complex] {
        let kb = basis.kpoints[k]
        let npw = kb.count
        let (n1, n2, n3) = basis.fft.size
        var h = [Complex](repeating: .zero, count: npw * npw)
        let miller = kb.millerIndices
        potentialG.withUnsafeBufferPointer { v in
            h.withUnsafeMutableBufferPointer { hp in
                for col in 0..<npw {
                    let gc = miller[col]
                    for row in 0..<npw {
                        let d = miller[row] &- gc
                        let i = (Int(d.x) % n1 + n1) % n1
                        let j = (Int(d.y) % n2 + n2) % n2
                        let l = (Int(d.z) % n3 + n3) % n3
                        hp[col * npw + row] = v[(i * n2 + j) * n3 + l]
                    }
                }
                for term in terms { term.addDenseOperator(k: k, spin: spin, matrix: hp.baseAddress!, npw: npw) }
            }
        }
        return h
    }
}
