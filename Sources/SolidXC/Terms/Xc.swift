/// Exchange-correlation energy integral e_xc(rho, sigma) dr on the FFT grid. GGA gradients and
/// the divergence in the potential V_s = vrho_s - div(sum_t c_st vsigma_st grad rho_t) are taken
/// by FFT.
public final class Xc: Term {
    public let name = "xc"
    let basis: PlaneWaveBasis
    public let functional: Functional
    /// Threads for evaluating a built-in functional (the SCF sets its k-point thread count).
    /// The evaluation is pointwise, so the result does not depend on it, bit for bit.
    var threads = 1

    public init(basis: PlaneWaveBasis, functional: Functional) {
        self.basis = basis
        self.functional = functional
    }

    /// Cartesian gradient of a real grid function: 3 arrays of N.
    func gradient(_ f: UnsafeBufferPointer<Double>) -> [[Double]] {
        let n = basis.gridCount
        var fr = [Complex](repeating: .zero, count: n)
        for i in 0..<n { fr[i].re = f[i] }
        var fg = [Complex](repeating: .zero, count: n)
        fr.withUnsafeBufferPointer { a in fg.withUnsafeMutableBufferPointer { b in basis.fft.forward(a.baseAddress!, b.baseAddress!) } }
        var out: [[Double]] = []
        var tmp = [Complex](repeating: .zero, count: n)
        for c in 0..<3 {
            for i in 0..<n {
                let g = basis.gVectors[i][c]
                tmp[i] = Complex(-g * fg[i].im, g * fg[i].re)  // i G f(G)
            }
            out.append(basis.fft.backwardReal(tmp))
        }
        return out
    }

    /// Divergence of a real vector field given as 3 arrays of N.
    func divergence(_ field: [[Double]]) -> [Double] {
        let n = basis.gridCount
        var acc = [Complex](repeating: .zero, count: n)
        for c in 0..<3 {
            let fg = basis.fft.forward(real: field[c])
            for i in 0..<n {
                let g = basis.gVectors[i][c]
                acc[i].re += -g * fg[i].im
                acc[i].im += g * fg[i].re
            }
        }
        return basis.fft.backwardReal(acc)
    }

    /// The (s, t) spin pairs of the sigma blocks: (0, 0) unpolarised; uu, ud, dd polarised.
    static func spinPairs(_ nspin: Int) -> [(Int, Int)] { nspin == 1 ? [(0, 0)] : [(0, 0), (0, 1), (1, 1)] }

    /// sigma blocks (1 or 3 of N) from the gradients of each spin density.
    func sigmas(_ grads: [[[Double]]], nspin: Int) -> [Double] {
        let n = basis.gridCount
        let pairs = Xc.spinPairs(nspin)
        var sigma = [Double](repeating: 0, count: pairs.count * n)
        for (p, (s, t)) in pairs.enumerated() {
            for i in 0..<n {
                sigma[p * n + i] = grads[s][0][i] * grads[t][0][i] + grads[s][1][i] * grads[t][1][i] + grads[s][2][i] * grads[t][2][i]
            }
        }
        return sigma
    }

    func spinGradients(_ rho: [Double], nspin: Int) -> [[[Double]]] {
        let n = basis.gridCount
        return (0..<nspin).map { s in rho.withUnsafeBufferPointer { gradient(UnsafeBufferPointer(rebasing: $0[(s * n)..<((s + 1) * n)])) } }
    }

    /// Adds -div(sum_t c_st w_st grad rho_t) to v_s, where w are vsigma-like blocks
    /// (c = 2 on the diagonal, 1 off it) and `grads` the density gradients; with several
    /// (w, grads) pairs, their fields are summed under one divergence.
    func addGradientCorrection(_ v: inout [Double], terms: [(w: [Double], grads: [[[Double]]])], nspin: Int) {
        let n = basis.gridCount
        for s in 0..<nspin {
            var field = [[Double]](repeating: [Double](repeating: 0, count: n), count: 3)
            for t in 0..<nspin {
                let (block, factor): (Int, Double) = nspin == 1 ? (0, 2) : (s == t ? (s == 0 ? 0 : 2, 2) : (1, 1))
                for (w, grads) in terms {
                    for c in 0..<3 { for i in 0..<n { field[c][i] += factor * w[block * n + i] * grads[t][c][i] } }
                }
            }
            let div = divergence(field)
            for i in 0..<n { v[s * n + i] -= div[i] }
        }
    }

    /// e, vrho and vsigma of the functional at (rho, sigma); sigma empty for LDA.
    func evaluateFunctional(rho: [Double], sigma: [Double], nspin: Int) throws -> (e: [Double], vrho: [Double], vsigma: [Double]) {
        let n = basis.gridCount
        let gga = functional.family == .gga
        if threads > 1, n >= 4096, let builtin = functional as? BuiltinFunctional {
            return try evaluateInChunks(builtin, rho: rho, sigma: sigma, nspin: nspin)
        }
        var e = [Double](repeating: 0, count: n)
        var vrho = [Double](repeating: 0, count: nspin * n)
        var vsigma = [Double](repeating: 0, count: gga ? sigma.count : 0)
        try rho.withUnsafeBufferPointer { r in
            try sigma.withUnsafeBufferPointer { sg in
                try e.withUnsafeMutableBufferPointer { ep in
                    try vrho.withUnsafeMutableBufferPointer { vr in
                        try vsigma.withUnsafeMutableBufferPointer { vs in
                            try functional.evaluate(nspin: nspin, npoints: n, rho: r.baseAddress!, sigma: gga ? sg.baseAddress : nil,
                                                    e: ep.baseAddress!, vrho: vr.baseAddress!, vsigma: gga ? vs.baseAddress : nil)
                        }
                    }
                }
            }
        }
        return (e, vrho, vsigma)
    }

    /// A built-in functional on `threads` contiguous ranges of grid points at once. Arrays are
    /// blocked by spin (and sigma component), so each range is gathered into its own compact
    /// buffers and the outputs are scattered back. (Callback functionals run whole, on the caller's
    /// thread: a Python callback must not be entered from several threads.)
    /// With `energyOnly`, e alone (vrho and vsigma come back empty).
    private func evaluateInChunks(_ builtin: BuiltinFunctional, rho: [Double], sigma: [Double], nspin: Int,
                                  energyOnly: Bool = false) throws -> (e: [Double], vrho: [Double], vsigma: [Double]) {
        let n = basis.gridCount
        let gga = builtin.family == .gga
        let nsigma = gga ? sigma.count / n : 0
        let nout = energyOnly ? 0 : nspin, nsout = energyOnly ? 0 : nsigma
        var e = [Double](repeating: 0, count: n)
        var vrho = [Double](repeating: 0, count: nout * n)
        var vsigma = [Double](repeating: 0, count: gga ? nsout * n : 0)
        let chunks = threads
        var failure: Error?
        let lock = Lock()
        e.withUnsafeMutableBufferPointer { ep in vrho.withUnsafeMutableBufferPointer { vp in vsigma.withUnsafeMutableBufferPointer { sp in
            rho.withUnsafeBufferPointer { rp in sigma.withUnsafeBufferPointer { gp in
                // Sendable wrappers are not needed: each worker writes a disjoint range.
                let eOut = ep.baseAddress!, vOut = vp.baseAddress, sOut = sp.baseAddress
                let rIn = rp.baseAddress!, gIn = gp.baseAddress
                parallelWorkers(chunks) { chunk in
                    let start = n * chunk / chunks, end = n * (chunk + 1) / chunks, m = end - start
                    if m == 0 { return }
                    var r = [Double](repeating: 0, count: nspin * m)
                    var g = [Double](repeating: 0, count: nsigma * m)
                    for s in 0..<nspin { for i in 0..<m { r[s * m + i] = rIn[s * n + start + i] } }
                    for c in 0..<nsigma { for i in 0..<m { g[c * m + i] = gIn![c * n + start + i] } }
                    var ce = [Double](repeating: 0, count: m)
                    var cv = [Double](repeating: 0, count: nout * m)
                    var cs = [Double](repeating: 0, count: nsout * m)
                    do {
                        try r.withUnsafeBufferPointer { rb in try g.withUnsafeBufferPointer { gb in
                            try ce.withUnsafeMutableBufferPointer { eb in try cv.withUnsafeMutableBufferPointer { vb in
                                try cs.withUnsafeMutableBufferPointer { sb in
                                    if energyOnly {
                                        try builtin.energyDensity(nspin: nspin, npoints: m, rho: rb.baseAddress!,
                                                                  sigma: gga ? gb.baseAddress : nil, e: eb.baseAddress!)
                                    } else {
                                        try builtin.evaluate(nspin: nspin, npoints: m, rho: rb.baseAddress!, sigma: gga ? gb.baseAddress : nil,
                                                             e: eb.baseAddress!, vrho: vb.baseAddress!, vsigma: gga ? sb.baseAddress : nil)
                                    }
                                }
                            } }
                        } }
                    } catch {
                        lock.withLock { if failure == nil { failure = error } }
                        return
                    }
                    for i in 0..<m { eOut[start + i] = ce[i] }
                    for s in 0..<nout { for i in 0..<m { vOut![s * n + start + i] = cv[s * m + i] } }
                    for c in 0..<nsout { for i in 0..<m { sOut![c * n + start + i] = cs[c * m + i] } }
                }
            } }
        } } }
        if let failure { throw failure }
        return (e, vrho, vsigma)
    }

    /// The functional at a density: the spin densities' gradients and sigma (GGA), e, vrho, vsigma.
    func evaluateFunctional(rho: [Double], nspin: Int) throws
        -> (grads: [[[Double]]], sigma: [Double], e: [Double], vrho: [Double], vsigma: [Double]) {
        let gga = functional.family == .gga
        let grads = gga ? spinGradients(rho, nspin: nspin) : []
        let sigma = gga ? sigmas(grads, nspin: nspin) : []
        let (e, vrho, vsigma) = try evaluateFunctional(rho: rho, sigma: sigma, nspin: nspin)
        return (grads, sigma, e, vrho, vsigma)
    }

    public func localPotential(_ state: SCFState) throws -> [Double]? { try evaluate(state).potential }

    /// The energy without the potential's gradient correction (four FFTs for a GGA), and for a
    /// built-in functional without its derivatives.
    public func energy(_ state: SCFState) throws -> Double {
        let e: [Double]
        if let builtin = functional as? BuiltinFunctional {
            let nspin = state.nspin, n = basis.gridCount
            let sigma = builtin.family == .gga ? sigmas(spinGradients(state.rho, nspin: nspin), nspin: nspin) : []
            if threads > 1, n >= 4096 {
                return try checkedIntegral(evaluateInChunks(builtin, rho: state.rho, sigma: sigma, nspin: nspin, energyOnly: true).e)
            }
            var out = [Double](repeating: 0, count: n)
            try state.rho.withUnsafeBufferPointer { r in try sigma.withUnsafeBufferPointer { g in
                try out.withUnsafeMutableBufferPointer { ep in
                    try builtin.energyDensity(nspin: nspin, npoints: n, rho: r.baseAddress!,
                                              sigma: builtin.family == .gga ? g.baseAddress : nil, e: ep.baseAddress!)
                }
            } }
            e = out
        } else {
            e = try evaluateFunctional(rho: state.rho, nspin: state.nspin).e
        }
        return try checkedIntegral(e)
    }

    private func checkedIntegral(_ e: [Double]) throws -> Double {
        let energy = integrate(e)
        guard energy.isFinite else {
            throw SolidXCError.callback(message: "xc: functional '\(functional.name)' returned a non-finite energy")
        }
        return energy
    }

    private func integrate(_ e: [Double]) -> Double {
        var energy = 0.0
        for i in 0..<basis.gridCount { energy += e[i] }
        return energy * basis.dv
    }

    public func evaluate(_ state: SCFState) throws -> TermEvaluation {
        let nspin = state.nspin
        let gga = functional.family == .gga
        let (grads, _, e, vrho, vsigma) = try evaluateFunctional(rho: state.rho, nspin: nspin)
        let energy = integrate(e)
        for x in vrho where !x.isFinite {
            throw SolidXCError.callback(message: "xc: functional '\(functional.name)' returned a non-finite potential")
        }
        guard energy.isFinite else {
            throw SolidXCError.callback(message: "xc: functional '\(functional.name)' returned a non-finite energy")
        }
        var v = vrho
        if gga { addGradientCorrection(&v, terms: [(vsigma, grads)], nspin: nspin) }
        return TermEvaluation(energy: energy, potential: v)
    }

    public func applyKernel(rho: [Double], drho: [Double], nspin: Int) throws -> [Double]? {
        try XcKernel(xc: self, rho: rho, nspin: nspin).apply(drho)
    }

    /// E = int e(rho_s, sigma_st) dr with rho -> rho/J and grad -> (1 - eps^T) grad / J under
    /// strain, so dE/d(eps_ab) = delta_ab int (e - sum_s vrho_s rho_s - 2 sum_p vsigma_p sigma_p)
    ///  - int sum_p vsigma_p (d_a rho_s d_b rho_t + d_b rho_s d_a rho_t) for the pairs p = (s, t).
    public func strainDerivative(_ state: SCFState) throws -> [[Double]]? {
        let n = basis.gridCount
        let nspin = state.nspin
        let gga = functional.family == .gga
        let (grads, sigma, e, vrho, vsigma) = try evaluateFunctional(rho: state.rho, nspin: nspin)
        var trace = 0.0
        for i in 0..<n { trace += e[i] }
        for i in 0..<(nspin * n) { trace -= vrho[i] * state.rho[i] }
        for i in 0..<sigma.count { trace -= 2 * vsigma[i] * sigma[i] }
        var d = [[Double]](repeating: [0, 0, 0], count: 3)
        let pairs = Xc.spinPairs(nspin)
        for (p, (s, t)) in pairs.enumerated() where gga {
            for a in 0..<3 {
                for b in a..<3 {
                    var sum = 0.0
                    for i in 0..<n {
                        sum += vsigma[p * n + i] * (grads[s][a][i] * grads[t][b][i] + grads[s][b][i] * grads[t][a][i])
                    }
                    d[a][b] -= sum * basis.dv
                    if a != b { d[b][a] -= sum * basis.dv }
                }
            }
        }
        for a in 0..<3 { d[a][a] += trace * basis.dv }
        guard d.joined().allSatisfy({ $0.isFinite }) else {
            throw SolidXCError.callback(message: "xc: functional '\(functional.name)' gave a non-finite stress")
        }
        return d
    }
}

/// The xc kernel at one density, prepared for many perturbations (the response solve applies it
/// once per GMRES step). The functional's kernel is linear in (drho, dsigma) at every point, so it
/// is applied once per input channel (unpolarised LDA 1, GGA 2; polarised 2 and 5) to tabulate
/// its matrix; the density's gradients and vsigma are kept too.
final class XcKernel {
    let xc: Xc
    let nspin: Int
    let gga: Bool
    /// GGA: gradients of each spin density and vsigma at the density.
    let grads: [[[Double]]]
    let vsigma: [Double]
    /// Inputs (drho_s, then dsigma_p) and outputs (dvrho_s, then dvsigma_p).
    let channels: Int
    /// [out][in][N].
    let matrix: [Double]

    init(xc: Xc, rho: [Double], nspin: Int) throws {
        let n = xc.basis.gridCount
        self.xc = xc
        self.nspin = nspin
        gga = xc.functional.family == .gga
        grads = gga ? xc.spinGradients(rho, nspin: nspin) : []
        let sigma = gga ? xc.sigmas(grads, nspin: nspin) : []
        vsigma = gga ? try xc.evaluateFunctional(rho: rho, sigma: sigma, nspin: nspin).vsigma : []
        let nsigma = sigma.count / n
        let channels = nspin + nsigma
        let gga = self.gga
        let functional = xc.functional
        self.channels = channels
        var matrix = [Double](repeating: 0, count: channels * channels * n)
        var drho = [Double](repeating: 0, count: nspin * n)
        var dsigma = [Double](repeating: 0, count: sigma.count)
        var dvrho = [Double](repeating: 0, count: nspin * n)
        var dvsigma = [Double](repeating: 0, count: sigma.count)
        for input in 0..<channels {
            for i in 0..<drho.count { drho[i] = 0 }
            for i in 0..<dsigma.count { dsigma[i] = 0 }
            if input < nspin {
                for i in 0..<n { drho[input * n + i] = 1 }
            } else {
                for i in 0..<n { dsigma[(input - nspin) * n + i] = 1 }
            }
            try rho.withUnsafeBufferPointer { r in
                try sigma.withUnsafeBufferPointer { sg in
                    try drho.withUnsafeBufferPointer { dr in
                        try dsigma.withUnsafeBufferPointer { ds in
                            try dvrho.withUnsafeMutableBufferPointer { dv in
                                try dvsigma.withUnsafeMutableBufferPointer { dvs in
                                    try functional.applyKernel(nspin: nspin, npoints: n, rho: r.baseAddress!, sigma: gga ? sg.baseAddress : nil,
                                                                  drho: dr.baseAddress!, dsigma: gga ? ds.baseAddress : nil,
                                                                  dvrho: dv.baseAddress!, dvsigma: gga ? dvs.baseAddress : nil)
                                }
                            }
                        }
                    }
                }
            }
            for output in 0..<channels {
                let base = (output * channels + input) * n
                for i in 0..<n {
                    let value = output < nspin ? dvrho[output * n + i] : dvsigma[(output - nspin) * n + i]
                    guard value.isFinite else {
                        throw SolidXCError.callback(message: "xc: functional '\(functional.name)' returned a non-finite kernel")
                    }
                    matrix[base + i] = value
                }
            }
        }
        self.matrix = matrix
    }

    /// K_xc drho: the change of the xc potential for a density change drho ([nspin][N]).
    func apply(_ drho: [Double]) -> [Double] {
        let n = xc.basis.gridCount
        let dgrads = gga ? xc.spinGradients(drho, nspin: nspin) : []
        // Inputs: drho_s, and dsigma_st = grad rho_s . grad drho_t + grad drho_s . grad rho_t.
        var inputs = drho
        if gga {
            let pairs = Xc.spinPairs(nspin)
            for (s, t) in pairs {
                for i in 0..<n {
                    var x = 0.0
                    for c in 0..<3 { x += grads[s][c][i] * dgrads[t][c][i] + dgrads[s][c][i] * grads[t][c][i] }
                    inputs.append(x)
                }
            }
        }
        var outputs = [Double](repeating: 0, count: channels * n)
        matrix.withUnsafeBufferPointer { m in
            inputs.withUnsafeBufferPointer { x in
                outputs.withUnsafeMutableBufferPointer { y in
                    for output in 0..<channels {
                        for input in 0..<channels {
                            let base = (output * channels + input) * n
                            for i in 0..<n { y[output * n + i] += m[base + i] * x[input * n + i] }
                        }
                    }
                }
            }
        }
        guard gga else { return outputs }
        // d[vrho_s - div(sum_t c_st vsigma_st grad rho_t)]
        //   = dvrho_s - div(sum_t c_st (dvsigma_st grad rho_t + vsigma_st grad drho_t)).
        var dv = Array(outputs[0..<(nspin * n)])
        xc.addGradientCorrection(&dv, terms: [(Array(outputs[(nspin * n)...]), grads), (vsigma, dgrads)], nspin: nspin)
        return dv
    }
}
