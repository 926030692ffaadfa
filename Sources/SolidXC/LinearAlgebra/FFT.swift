#if canImport(Glibc)
import Glibc
#endif
import CSolidXCDeps

/// A complex work array allocated by FFTW (SIMD-aligned), as the in-place plans require.
public final class FFTBuffer {
    public let pointer: UnsafeMutablePointer<Complex>
    public let count: Int
    public init(count: Int) {
        let raw = fftw_malloc(MemoryLayout<Complex>.stride * max(count, 1))
        precondition(raw != nil, "fft: out of memory allocating \(count) complex values")
        pointer = raw!.bindMemory(to: Complex.self, capacity: max(count, 1))
        pointer.initialize(repeating: .zero, count: max(count, 1))
        self.count = count
    }
    deinit { fftw_free(pointer) }
    public func zero() { pointer.update(repeating: .zero, count: count) }
}

/// FFTW plans for one real-space grid (n1, n2, n3), n3 fastest. Out-of-place plans on
/// SIMD-aligned buffers (FFTW's in-place 3D plans allocate scratch memory on every call), made once
/// per basis as `FFTPlanning` says (measured, and repeatable through the wisdom file) and executed
/// through the new-array interface, which is thread-safe, so k-points can transform in parallel.
public final class FFTGrid {
    public let size: (Int, Int, Int)
    public let count: Int
    private let forwardPlan: fftw_plan
    private let backwardPlan: fftw_plan

    public init(_ n1: Int, _ n2: Int, _ n3: Int) throws {
        size = (n1, n2, n3)
        count = n1 * n2 * n3
        guard let a = fftw_malloc(MemoryLayout<Complex>.stride * count), let b = fftw_malloc(MemoryLayout<Complex>.stride * count) else {
            throw SolidXCError.memory(message: "fft: cannot allocate a \(n1)x\(n2)x\(n3) grid")
        }
        defer { fftw_free(a); fftw_free(b) }
        let pa = a.bindMemory(to: fftw_complex.self, capacity: count)
        let pb = b.bindMemory(to: fftw_complex.self, capacity: count)
        try FFTPlanning.check()
        let flags = FFTPlanning.flags
        var made: (fftw_plan?, fftw_plan?) = (nil, nil)
        var lines: [[fftw_plan]] = []
        var failed = false
        FFTPlanning.withPlanner {
            made = (fftw_plan_dft_3d(Int32(n1), Int32(n2), Int32(n3), pa, pb, FFTW_FORWARD, flags),
                    fftw_plan_dft_3d(Int32(n1), Int32(n2), Int32(n3), pa, pb, FFTW_BACKWARD, flags))
            var len2 = Int32(n2), len1 = Int32(n1)
            let block = Int32(FFTGrid.slabBlock)
            for sign in [FFTW_FORWARD, FFTW_BACKWARD] {
                let plane = fftw_plan_many_dft(1, &len2, Int32(n3), pa, nil, Int32(n3), 1, pb, nil, Int32(n3), 1, sign, flags)
                let slab = fftw_plan_many_dft(1, &len1, Int32(n2 * n3), pa, nil, Int32(n2 * n3), 1, pb, nil, Int32(n2 * n3), 1, sign, flags)
                let gathered = fftw_plan_many_dft(1, &len1, block, pa, nil, block, 1, pa, nil, block, 1, sign, flags)
                guard let plane, let slab, let gathered else { failed = true; return }
                lines.append([plane, slab, gathered])
            }
        }
        guard let f = made.0, let g = made.1, !failed else { throw SolidXCError.numerical(message: "fft: FFTW could not plan a \(n1)x\(n2)x\(n3) grid") }
        forwardPlan = f
        backwardPlan = g
        planePlans = lines.map { $0[0] }
        slabPlans = lines.map { $0[1] }
        slabBlockPlans = lines.map { $0[2] }
    }

    deinit {
        FFTPlanning.withPlansLocked {
            fftw_destroy_plan(forwardPlan)
            fftw_destroy_plan(backwardPlan)
            for plan in planePlans + slabPlans + slabBlockPlans { fftw_destroy_plan(plan) }
            for plans in columnPlans { for plan in plans.values { fftw_destroy_plan(plan) } }
        }
    }

    public func makeBuffer() -> FFTBuffer { FFTBuffer(count: count) }

    // 1D plans for the pruned sphere transforms (`SphereFFT`), indexed by direction (0 forward,
    // 1 backward).
    /// Along n2 for one plane (n3 lines, stride n3), out of place.
    fileprivate var planePlans: [fftw_plan] = []
    /// Along n1 for the whole grid (n2 n3 lines, stride n2 n3), out of place.
    fileprivate var slabPlans: [fftw_plan] = []
    /// When a plane (n2 n3 complex values) spans a multiple of 4 KiB, the n1 lines of the whole
    /// grid alias in the cache and FFTW_ESTIMATE's strided plan runs 4-8 times slower than a full
    /// 3D transform (measured for 48^3, 80^3, 96^3). Those grids instead copy `slabBlock` columns
    /// at a time into a contiguous scratch (`Workspace.lines`) and transform them there, with
    /// these in-place plans. The choice depends on the grid size only, so it is deterministic.
    fileprivate static let slabBlock = 32
    fileprivate var slabBlockPlans: [fftw_plan] = []
    fileprivate var gatherSlab: Bool { (size.1 * size.2) % 256 == 0 }
    /// Along n3 for `count` consecutive columns, in place; made on first use, by the planner.
    private var columnPlans: [[Int: fftw_plan]] = [[:], [:]]

    /// The n1-direction transforms of the whole grid (sign 0 forward, 1 backward), from `input`
    /// into `output` (distinct); `lines` is scratch of `n1 * slabBlock` values.
    fileprivate func slab(sign: Int, _ input: UnsafeMutablePointer<fftw_complex>, _ output: UnsafeMutablePointer<fftw_complex>,
                          lines: UnsafeMutablePointer<fftw_complex>) {
        guard gatherSlab else {
            fftw_execute_dft(slabPlans[sign], input, output)
            return
        }
        let n1 = size.0
        let plane = size.1 * size.2
        let block = FFTGrid.slabBlock
        let bytes = MemoryLayout<fftw_complex>.stride * block
        var c = 0
        while c < plane {
            for i in 0..<n1 { memcpy(lines + i * block, input + i * plane + c, bytes) }
            fftw_execute_dft(slabBlockPlans[sign], lines, lines)
            for i in 0..<n1 { memcpy(output + i * plane + c, lines + i * block, bytes) }
            c += block
        }
    }

    /// The in-place plans along n3 for runs of `lengths` consecutive columns (per length, forward
    /// and backward), made when first asked for; nil if FFTW cannot plan one.
    fileprivate func columnPlans(_ lengths: Set<Int>) -> [Int: [fftw_plan]]? {
        let n3 = size.2
        var result: [Int: [fftw_plan]] = [:]
        var failed = false
        // Made already (the usual case: every Hamiltonian block asks): no planner, no wisdom file.
        let made: [Int: [fftw_plan]]? = FFTPlanning.withPlansLocked {
            var found: [Int: [fftw_plan]] = [:]
            for columns in lengths {
                guard let f = columnPlans[0][columns], let b = columnPlans[1][columns] else { return nil }
                found[columns] = [f, b]
            }
            return found
        }
        if let made { return made }
        FFTPlanning.withPlanner {
            for columns in lengths.sorted() {
                for sign in 0..<2 where columnPlans[sign][columns] == nil {
                    guard let a = fftw_malloc(MemoryLayout<Complex>.stride * n3 * columns) else { failed = true; return }
                    defer { fftw_free(a) }
                    let pa = a.bindMemory(to: fftw_complex.self, capacity: n3 * columns)
                    var len3 = Int32(n3)
                    guard let plan = fftw_plan_many_dft(1, &len3, Int32(columns), pa, nil, 1, Int32(n3), pa, nil, 1, Int32(n3),
                                                        sign == 0 ? FFTW_FORWARD : FFTW_BACKWARD, FFTPlanning.flags) else {
                        failed = true
                        return
                    }
                    columnPlans[sign][columns] = plan
                }
                result[columns] = [columnPlans[0][columns]!, columnPlans[1][columns]!]
            }
        }
        return failed ? nil : result
    }

    /// f(G) = (1/N) sum_r f(r) e^{-iG.r}, from `input` into `output` (both from `makeBuffer()`,
    /// distinct; `input` is overwritten).
    public func forward(_ input: FFTBuffer, into output: FFTBuffer) {
        input.pointer.withMemoryRebound(to: fftw_complex.self, capacity: count) { i in
            output.pointer.withMemoryRebound(to: fftw_complex.self, capacity: count) { o in
                fftw_execute_dft(forwardPlan, i, o)
            }
        }
        let scale = 1.0 / Double(count)
        let p = output.pointer
        for j in 0..<count {
            p[j].re *= scale
            p[j].im *= scale
        }
    }

    /// f(r) = sum_G f(G) e^{iG.r}, from `input` into `output` (both from `makeBuffer()`, distinct;
    /// `input` is overwritten).
    public func backward(_ input: FFTBuffer, into output: FFTBuffer) {
        input.pointer.withMemoryRebound(to: fftw_complex.self, capacity: count) { i in
            output.pointer.withMemoryRebound(to: fftw_complex.self, capacity: count) { o in
                fftw_execute_dft(backwardPlan, i, o)
            }
        }
    }

    /// Fourier coefficients of a periodic function given on the grid (out of place, any memory).
    public func forward(_ input: UnsafePointer<Complex>, _ output: UnsafeMutablePointer<Complex>) {
        let work = makeBuffer(), result = makeBuffer()
        work.pointer.update(from: input, count: count)
        forward(work, into: result)
        output.update(from: result.pointer, count: count)
    }

    /// Values on the grid from Fourier coefficients (out of place, any memory).
    public func backward(_ input: UnsafePointer<Complex>, _ output: UnsafeMutablePointer<Complex>) {
        let work = makeBuffer(), result = makeBuffer()
        work.pointer.update(from: input, count: count)
        backward(work, into: result)
        output.update(from: result.pointer, count: count)
    }

    /// Convenience: real array on the grid -> Fourier coefficients.
    public func forward(real: [Double]) -> [Complex] {
        let work = makeBuffer(), result = makeBuffer()
        for j in 0..<count { work.pointer[j] = Complex(real[j], 0) }
        forward(work, into: result)
        return Array(UnsafeBufferPointer(start: result.pointer, count: count))
    }

    /// Convenience: Fourier coefficients -> real part on the grid.
    public func backwardReal(_ coefficients: [Complex]) -> [Double] {
        let work = makeBuffer(), result = makeBuffer()
        coefficients.withUnsafeBufferPointer { work.pointer.update(from: $0.baseAddress!, count: count) }
        backward(work, into: result)
        return (0..<count).map { result.pointer[$0].re }
    }
}

/// Transforms between the plane-wave sphere of one k-point and the real-space grid, pruned as
/// ABINIT and Quantum ESPRESSO do: G -> r transforms along n3 only the columns (i, j) that hold a
/// plane wave (about a fifth), then along n2 only the planes i that hold one, then along n1
/// everything; r -> G runs the same steps in reverse and computes only what the sphere needs.
/// Made from 1D plans of the grid's `FFTGrid`, so the same input gives the same bits on every
/// thread. Immutable after init, so one instance may serve several threads, each with its own
/// `Workspace`.
public final class SphereFFT {
    public let grid: FFTGrid
    /// Grid position of each plane wave (row-major, n3 fastest), as `KPointBasis.fftIndex`.
    public let fftIndex: [Int32]
    /// Runs of consecutive non-empty columns (column c = i n2 + j) and their n3 plans per sign.
    private let runs: [(start: Int, columns: Int, plans: [fftw_plan])]
    /// Planes i that hold a plane wave, and whether each plane does.
    private let planes: [Int]
    private let planeUsed: [Bool]

    /// Two scratch grids for the intermediate steps; one per thread.
    public final class Workspace {
        let box: FFTBuffer
        let work: FFTBuffer
        let lines: FFTBuffer
        public init(_ grid: FFTGrid) {
            box = grid.makeBuffer()
            work = grid.makeBuffer()
            lines = FFTBuffer(count: grid.size.0 * FFTGrid.slabBlock)
        }
    }

    public init(grid: FFTGrid, fftIndex: [Int32]) throws {
        self.grid = grid
        self.fftIndex = fftIndex
        let (n1, n2, n3) = grid.size
        var used = [Bool](repeating: false, count: n1 * n2)
        var inPlane = [Bool](repeating: false, count: n1)
        for idx in fftIndex {
            precondition(idx >= 0 && Int(idx) < grid.count, "fft: plane-wave index \(idx) outside the grid")
            let column = Int(idx) / n3
            used[column] = true
            inPlane[column / n2] = true
        }
        var found: [(start: Int, columns: Int)] = []
        var c = 0
        while c < n1 * n2 {
            guard used[c] else { c += 1; continue }
            let start = c
            // A run stays inside one plane so that all its columns share that plane's fate.
            while c < n1 * n2 && used[c] && (c == start || c % n2 != 0) { c += 1 }
            found.append((start, c - start))
        }
        guard let plans = grid.columnPlans(Set(found.map { $0.columns })) else {
            throw SolidXCError.numerical(message: "fft: FFTW could not plan columns of \(n3) points")
        }
        runs = found.map { ($0.start, $0.columns, plans[$0.columns]!) }
        planeUsed = inPlane
        planes = (0..<n1).filter { inPlane[$0] }
    }

    /// psi(r) = sum_G c(G) e^{iG.r} on the full grid, from the sphere coefficients (`fftIndex.count`
    /// values). `real` holds `grid.count` values, 16-byte aligned (any Swift array or FFTBuffer).
    public func backward(_ coefficients: UnsafePointer<Complex>, into real: UnsafeMutablePointer<Complex>, workspace: Workspace) {
        let (_, n2, n3) = grid.size
        let planeSize = n2 * n3
        let box = workspace.box.pointer, work = workspace.work.pointer
        for i in planes { (box + i * planeSize).update(repeating: .zero, count: planeSize) }
        fftIndex.withUnsafeBufferPointer { idx in
            for g in 0..<idx.count { box[Int(idx[g])] = coefficients[g] }
        }
        box.withMemoryRebound(to: fftw_complex.self, capacity: grid.count) { b in
            work.withMemoryRebound(to: fftw_complex.self, capacity: grid.count) { w in
                for run in runs {
                    let p = b + run.start * n3
                    fftw_execute_dft(run.plans[1], p, p)
                }
                for i in 0..<planeUsed.count {
                    if planeUsed[i] {
                        fftw_execute_dft(grid.planePlans[1], b + i * planeSize, w + i * planeSize)
                    } else {
                        (work + i * planeSize).update(repeating: .zero, count: planeSize)
                    }
                }
                real.withMemoryRebound(to: fftw_complex.self, capacity: grid.count) { r in
                    workspace.lines.pointer.withMemoryRebound(to: fftw_complex.self, capacity: workspace.lines.count) { l in
                        grid.slab(sign: 1, w, r, lines: l)
                    }
                }
            }
        }
    }

    /// c(G) = scale * sum_r f(r) e^{-iG.r} for the plane waves of the sphere (`scale` 1/N gives
    /// Fourier coefficients). `real` (`grid.count` values) is left unchanged.
    public func forward(_ real: UnsafePointer<Complex>, into coefficients: UnsafeMutablePointer<Complex>, scale: Double, workspace: Workspace) {
        let (_, n2, n3) = grid.size
        let planeSize = n2 * n3
        let box = workspace.box.pointer, work = workspace.work.pointer
        box.withMemoryRebound(to: fftw_complex.self, capacity: grid.count) { b in
            work.withMemoryRebound(to: fftw_complex.self, capacity: grid.count) { w in
                real.withMemoryRebound(to: fftw_complex.self, capacity: grid.count) { r in
                    // The out-of-place plan does not write its input (FFTW_PRESERVE_INPUT is
                    // the default for out-of-place 1D transforms).
                    workspace.lines.pointer.withMemoryRebound(to: fftw_complex.self, capacity: workspace.lines.count) { l in
                        grid.slab(sign: 0, UnsafeMutablePointer(mutating: r), w, lines: l)
                    }
                }
                for i in planes {
                    fftw_execute_dft(grid.planePlans[0], w + i * planeSize, b + i * planeSize)
                }
                for run in runs {
                    let p = b + run.start * n3
                    fftw_execute_dft(run.plans[0], p, p)
                }
            }
        }
        fftIndex.withUnsafeBufferPointer { idx in
            for g in 0..<idx.count {
                let v = box[Int(idx[g])]
                coefficients[g] = Complex(scale * v.re, scale * v.im)
            }
        }
    }
}

/// A pthread mutex with a Swift face. The mutex lives in its own allocation: `&property` on a
/// class property may hand C a temporary copy, which would make the lock a no-op.
final class Lock {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    init() {
        mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }
    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }
    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}
