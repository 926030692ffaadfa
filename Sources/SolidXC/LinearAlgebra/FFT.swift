#if canImport(Glibc)
import Glibc
#endif
import CSolidXCDeps

/// FFTW plans for one real-space grid (n1, n2, n3), n3 fastest. Made once per basis with
/// FFTW_ESTIMATE (deterministic results run to run) and executed through the new-array
/// interface, which is thread-safe, so k-points can transform in parallel.
public final class FFTGrid {
    public let size: (Int, Int, Int)
    public let count: Int
    private let forwardPlan: fftw_plan
    private let backwardPlan: fftw_plan
    private static let plannerLock = Lock()

    public init(_ n1: Int, _ n2: Int, _ n3: Int) throws {
        size = (n1, n2, n3)
        count = n1 * n2 * n3
        let a = fftw_malloc(MemoryLayout<Complex>.stride * count)
        let b = fftw_malloc(MemoryLayout<Complex>.stride * count)
        defer { fftw_free(a); fftw_free(b) }
        guard let a, let b else { throw SolidXCError.memory(message: "fft: cannot allocate a \(n1)x\(n2)x\(n3) grid") }
        let pa = a.assumingMemoryBound(to: fftw_complex.self)
        let pb = b.assumingMemoryBound(to: fftw_complex.self)
        let flags = UInt32(FFTW_ESTIMATE) | UInt32(FFTW_UNALIGNED)
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

    /// f(G) = (1/N) sum_r f(r) e^{-iG.r}: Fourier coefficients of a periodic function.
    public func forward(_ input: UnsafePointer<Complex>, _ output: UnsafeMutablePointer<Complex>) {
        input.withMemoryRebound(to: fftw_complex.self, capacity: count) { i in
            output.withMemoryRebound(to: fftw_complex.self, capacity: count) { o in
                fftw_execute_dft(forwardPlan, UnsafeMutablePointer(mutating: i), o)
            }
        }
        let scale = 1.0 / Double(count)
        for j in 0..<count {
            output[j].re *= scale
            output[j].im *= scale
        }
    }

    /// f(r) = sum_G f(G) e^{iG.r}.
    public func backward(_ input: UnsafePointer<Complex>, _ output: UnsafeMutablePointer<Complex>) {
        input.withMemoryRebound(to: fftw_complex.self, capacity: count) { i in
            output.withMemoryRebound(to: fftw_complex.self, capacity: count) { o in
                fftw_execute_dft(backwardPlan, UnsafeMutablePointer(mutating: i), o)
            }
        }
    }

    /// Convenience: real array on the grid -> Fourier coefficients.
    public func forward(real: [Double]) -> [Complex] {
        var input = [Complex](repeating: .zero, count: count)
        for j in 0..<count { input[j].re = real[j] }
        var out = [Complex](repeating: .zero, count: count)
        input.withUnsafeBufferPointer { i in out.withUnsafeMutableBufferPointer { o in forward(i.baseAddress!, o.baseAddress!) } }
        return out
    }

    /// Convenience: Fourier coefficients -> real part on the grid.
    public func backwardReal(_ coefficients: [Complex]) -> [Double] {
        var out = [Complex](repeating: .zero, count: count)
        coefficients.withUnsafeBufferPointer { i in out.withUnsafeMutableBufferPointer { o in backward(i.baseAddress!, o.baseAddress!) } }
        return out.map { $0.re }
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
