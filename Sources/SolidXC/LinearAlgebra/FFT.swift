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
/// SIMD-aligned buffers (FFTW's in-place 3D plans allocate scratch memory on every call), made once per basis with FFTW_ESTIMATE (deterministic: the same plan, hence the same
/// bits, run to run) and executed through the new-array interface, which is thread-safe, so
/// k-points can transform in parallel.
public final class FFTGrid {
    public let size: (Int, Int, Int)
    public let count: Int
    private let forwardPlan: fftw_plan
    private let backwardPlan: fftw_plan
    private static let plannerLock = Lock()

    public init(_ n1: Int, _ n2: Int, _ n3: Int) throws {
        size = (n1, n2, n3)
        count = n1 * n2 * n3
        guard let a = fftw_malloc(MemoryLayout<Complex>.stride * count), let b = fftw_malloc(MemoryLayout<Complex>.stride * count) else {
            throw SolidXCError.memory(message: "fft: cannot allocate a \(n1)x\(n2)x\(n3) grid")
        }
        defer { fftw_free(a); fftw_free(b) }
        let pa = a.bindMemory(to: fftw_complex.self, capacity: count)
        let pb = b.bindMemory(to: fftw_complex.self, capacity: count)
        let flags = UInt32(FFTW_ESTIMATE)
        FFTGrid.plannerLock.lock()
        let f = fftw_plan_dft_3d(Int32(n1), Int32(n2), Int32(n3), pa, pb, FFTW_FORWARD, flags)
        let g = fftw_plan_dft_3d(Int32(n1), Int32(n2), Int32(n3), pa, pb, FFTW_BACKWARD, flags)
        FFTGrid.plannerLock.unlock()
        guard let f, let g else { throw SolidXCError.numerical(message: "fft: FFTW could not plan a \(n1)x\(n2)x\(n3) grid") }
        forwardPlan = f
        backwardPlan = g
    }

    deinit {
        FFTGrid.plannerLock.lock()
        fftw_destroy_plan(forwardPlan)
        fftw_destroy_plan(backwardPlan)
        FFTGrid.plannerLock.unlock()
    }

    public func makeBuffer() -> FFTBuffer { FFTBuffer(count: count) }

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
