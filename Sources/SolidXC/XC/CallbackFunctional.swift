#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `sxc_eval_cb` of include/solidxc.h: fills e[np], vrho[nspin*np] and (GGA) vsigma[nsigma*np]
/// from rho[nspin*np] and (GGA) sigma[nsigma*np], in the layouts of `Functional`. LDA callbacks
/// receive NULL sigma and vsigma. Returns 0 on success, anything else on failure.
public typealias XCEvalCallback = @convention(c) (
    _ userData: UnsafeMutableRawPointer?, _ npoints: Int64, _ nspin: Int32,
    _ rho: UnsafePointer<Double>?, _ sigma: UnsafePointer<Double>?,
    _ e: UnsafeMutablePointer<Double>?, _ vrho: UnsafeMutablePointer<Double>?, _ vsigma: UnsafeMutablePointer<Double>?
) -> Int32

/// `sxc_kernel_cb` of include/solidxc.h: the second derivatives of e applied to a perturbation
/// (drho, dsigma), written to dvrho and (GGA) dvsigma, as `Functional.applyKernel` defines them.
/// LDA callbacks receive NULL sigma, dsigma and dvsigma. Returns 0 on success.
public typealias XCKernelCallback = @convention(c) (
    _ userData: UnsafeMutableRawPointer?, _ npoints: Int64, _ nspin: Int32,
    _ rho: UnsafePointer<Double>?, _ sigma: UnsafePointer<Double>?,
    _ drho: UnsafePointer<Double>?, _ dsigma: UnsafePointer<Double>?,
    _ dvrho: UnsafeMutablePointer<Double>?, _ dvsigma: UnsafeMutablePointer<Double>?
) -> Int32

/// A user functional (for example a neural one living in Python) evaluated through C function
/// pointers. The core checks what comes back: a nonzero status or a non-finite output is a
/// `SolidXCError.callback` naming the functional, never a wrong number.
///
/// Once unregistered (`FunctionalRegistry.unregister(id:)`), the functional refuses every further
/// call without calling back, and the unregistration waits for calls already inside a callback
/// to return, so the caller may free `userData` afterwards. A callback that unregisters its own
/// functional is not waited for (it would wait for itself).
public final class CallbackFunctional: Functional, @unchecked Sendable {
    public let name: String
    public let family: FunctionalFamily
    /// A callback functional's parameters live with its owner (a torch module, say), not here.
    public var parameters: [FunctionalParameter] { [] }

    private let eval: XCEvalCallback
    private let kernel: XCKernelCallback?
    private let userData: UnsafeMutableRawPointer?

    private let monitor = XCMonitor()
    private var registeredID: Int32?
    private var retired = false
    /// The threads currently inside a callback of this functional (one entry per call).
    private var callers: [pthread_t] = []

    public init(name: String, family: FunctionalFamily, eval: @escaping XCEvalCallback,
                kernel: XCKernelCallback?, userData: UnsafeMutableRawPointer?) {
        self.name = name
        self.family = family
        self.eval = eval
        self.kernel = kernel
        self.userData = userData
    }

    /// The registry id, once registered.
    public var id: Int32? { monitor.withLock { registeredID } }

    /// Whether the functional still accepts calls (false after unregistration).
    public var isActive: Bool { monitor.withLock { !retired } }

    /// How messages name this functional: "functional 'nn' (id 1000)".
    private var label: String { monitor.withLock { lockedLabel } }

    /// `label`, for use while holding the (non-recursive) lock.
    private var lockedLabel: String {
        "functional '\(name)'" + (registeredID.map { " (id \($0))" } ?? "")
    }

    // MARK: - Registry hooks

    /// Called by the registry when it hands out the id.
    func didRegister(id: Int32) {
        monitor.withLock { registeredID = id }
    }

    /// Called by the registry on unregistration: refuse new calls, then wait until no other
    /// thread is inside a callback.
    func retire() {
        let me = pthread_self()
        monitor.withLock {
            retired = true
            while callers.contains(where: { pthread_equal($0, me) == 0 }) { monitor.wait() }
        }
    }

    /// Runs `body` (which calls back) as one call in flight, or throws if the functional is retired.
    private func inFlight<R>(_ body: () throws -> R) throws -> R {
        let me = pthread_self()
        try monitor.withLock {
            if retired {
                throw SolidXCError.callback(message: "\(lockedLabel) was unregistered while in use; register it again to use it")
            }
            callers.append(me)
        }
        defer {
            monitor.withLock {
                if let k = callers.firstIndex(where: { pthread_equal($0, me) != 0 }) { callers.remove(at: k) }
                monitor.broadcast()
            }
        }
        return try body()
    }

    // MARK: - Functional

    public func evaluate(nspin: Int, npoints: Int,
                         rho: UnsafePointer<Double>, sigma: UnsafePointer<Double>?,
                         e: UnsafeMutablePointer<Double>, vrho: UnsafeMutablePointer<Double>,
                         vsigma: UnsafeMutablePointer<Double>?) throws {
        let gga = try validate(nspin: nspin, npoints: npoints, sigma: sigma, output: vsigma, outputField: "vsigma")
        let outputs: [(String, UnsafeMutablePointer<Double>?, Int)] =
            [("e", e, 1), ("vrho", vrho, nspin), ("vsigma", gga ? vsigma : nil, nspin == 1 ? 1 : 3)]
        let status = try inFlight {
            // NaN in every output first: a callback that leaves a value unwritten is caught below.
            for (_, p, blocks) in outputs { p?.update(repeating: .nan, count: blocks * npoints) }
            return eval(userData, Int64(npoints), Int32(nspin), rho, gga ? sigma : nil, e, vrho, gga ? vsigma : nil)
        }
        try check(status, callback: "eval")
        for (field, p, blocks) in outputs { try checkFinite(p, blocks: blocks, npoints: npoints, field: field) }
    }

    public func applyKernel(nspin: Int, npoints: Int,
                            rho: UnsafePointer<Double>, sigma: UnsafePointer<Double>?,
                            drho: UnsafePointer<Double>, dsigma: UnsafePointer<Double>?,
                            dvrho: UnsafeMutablePointer<Double>, dvsigma: UnsafeMutablePointer<Double>?) throws {
        let gga = try validate(nspin: nspin, npoints: npoints, sigma: sigma, output: dvsigma, outputField: "dvsigma")
        if gga && dsigma == nil {
            throw SolidXCError.input(field: "dsigma", message: "\(label) is a GGA; the kernel needs the sigma perturbation")
        }
        guard let kernel else {
            throw SolidXCError.callback(message: "\(label) has no kernel callback; response/backward needs one "
                                        + "(register it with a kernel, for example a Hessian-vector product)")
        }
        let outputs: [(String, UnsafeMutablePointer<Double>?, Int)] =
            [("dvrho", dvrho, nspin), ("dvsigma", gga ? dvsigma : nil, nspin == 1 ? 1 : 3)]
        let status = try inFlight {
            for (_, p, blocks) in outputs { p?.update(repeating: .nan, count: blocks * npoints) }
            return kernel(userData, Int64(npoints), Int32(nspin), rho, gga ? sigma : nil, drho, gga ? dsigma : nil,
                          dvrho, gga ? dvsigma : nil)
        }
        try check(status, callback: "kernel")
        for (field, p, blocks) in outputs { try checkFinite(p, blocks: blocks, npoints: npoints, field: field) }
    }

    // MARK: - Checks

    /// Checks the shape arguments; returns whether sigma and vsigma take part (GGA).
    private func validate(nspin: Int, npoints: Int, sigma: UnsafePointer<Double>?,
                          output: UnsafeMutablePointer<Double>?, outputField: String) throws -> Bool {
        guard nspin == 1 || nspin == 2 else {
            throw SolidXCError.input(field: "nspin", message: "nspin is \(nspin); expected 1 or 2")
        }
        guard npoints >= 0 else {
            throw SolidXCError.input(field: "npoints", message: "npoints is \(npoints); expected >= 0")
        }
        guard family == .gga else { return false }
        if sigma == nil {
            throw SolidXCError.input(field: "sigma", message: "\(label) is a GGA; sigma must be given")
        }
        if output == nil {
            throw SolidXCError.input(field: outputField, message: "\(label) is a GGA; \(outputField) must be given")
        }
        return true
    }

    private func check(_ status: Int32, callback: String) throws {
        guard status == 0 else {
            throw SolidXCError.callback(message: "\(label): the \(callback) callback failed with status \(status)")
        }
    }

    /// The first non-finite value of an output, reported with its index, spin/sigma block and point.
    private func checkFinite(_ p: UnsafeMutablePointer<Double>?, blocks: Int, npoints: Int, field: String) throws {
        guard let p else { return }
        for k in 0..<(blocks * npoints) where !p[k].isFinite {
            let position = blocks == 1 ? "point \(k)" : "index \(k) (block \(k / npoints) of \(blocks), point \(k % npoints))"
            throw SolidXCError.callback(message: "\(label) returned a non-finite \(field) (\(p[k])) at \(position) of \(npoints) points")
        }
    }
}

/// A pthread mutex with a condition variable: the registry's lock, and the gate that lets
/// unregistration wait for callbacks in flight. The core may not use Foundation.
final class XCMonitor: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deinitialize(count: 1)
        condition.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Inside `withLock` only: releases the lock until `broadcast`, then holds it again.
    func wait() { pthread_cond_wait(condition, mutex) }

    /// Inside `withLock` only: wakes every `wait`.
    func broadcast() { pthread_cond_broadcast(condition) }
}
