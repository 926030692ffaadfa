#if canImport(Glibc)
import Glibc
#endif
import SolidXC

/// Status codes of include/solidxc.h.
enum Status: Int32 {
    case ok = 0
    case input = 1
    case convergence = 2
    case callback = 3
    case memory = 4
    case numerical = 5
    case handle = 6
    case buffer = 7
    case `internal` = 8
}

/// Failures that belong to the ABI itself rather than to the core's physics.
enum ABIError: Error {
    /// A NULL, freed, foreign or wrong-kind handle.
    case handle(String)
    /// An output buffer that is NULL or too small.
    case buffer(String)
}

/// A heap copy of `text` with a NUL terminator; the caller owns it (free with `free`).
func makeCString(_ text: String) -> UnsafeMutablePointer<CChar> {
    let utf8 = Array(text.utf8)
    let p = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count + 1)
    for (i, b) in utf8.enumerated() { p[i] = CChar(bitPattern: b) }
    p[utf8.count] = 0
    return p
}

// MARK: - Thread-local last error

/// The calling thread's last failure: message (owned C string) and attached history.
final class ErrorState {
    var message: UnsafeMutablePointer<CChar>
    var history: [Double] = []
    init() { message = makeCString("") }
    deinit { message.deallocate() }
    func set(_ text: String, history: [Double]) {
        let old = message
        message = makeCString(text)
        old.deallocate()
        self.history = history
    }
}

private let errorKey: pthread_key_t = {
    var key = pthread_key_t()
    // The destructor runs when a thread exits and releases that thread's state.
    pthread_key_create(&key) { raw in
        if let raw { Unmanaged<ErrorState>.fromOpaque(raw).release() }
    }
    return key
}()

/// This thread's error state, created on first use.
func threadErrorState() -> ErrorState {
    if let raw = pthread_getspecific(errorKey) {
        return Unmanaged<ErrorState>.fromOpaque(raw).takeUnretainedValue()
    }
    let state = ErrorState()
    pthread_setspecific(errorKey, Unmanaged.passRetained(state).toOpaque())
    return state
}

/// Records `error` as this thread's last error and returns its status code.
func fail(_ function: String, _ error: Error) -> Int32 {
    let state = threadErrorState()
    let status: Status
    var history: [Double] = []
    var text: String
    switch error {
    case let e as SolidXCError:
        text = e.description
        switch e {
        case .input: status = .input
        case let .convergence(_, h):
            status = .convergence
            history = h
            text += "; residual history (electrons): [" + h.map { "\($0)" }.joined(separator: ", ") + "]"
        case .callback: status = .callback
        case .memory: status = .memory
        case .numerical: status = .numerical
        }
    case let ABIError.handle(message):
        status = .handle
        text = "\(function): \(message)"
    case let ABIError.buffer(message):
        status = .buffer
        text = "\(function): \(message)"
    default:
        status = .internal
        text = "\(function): internal error: \(error)"
    }
    state.set(text, history: history)
    return status.rawValue
}

/// Runs `body`, turning a thrown error into a status code and this thread's last error.
@inline(__always)
func guarded(_ function: String, _ body: () throws -> Void) -> Int32 {
    do {
        try body()
        return Status.ok.rawValue
    } catch {
        return fail(function, error)
    }
}

@_cdecl("sxc_last_error")
public func sxc_last_error() -> UnsafePointer<CChar>? {
    UnsafePointer(threadErrorState().message)
}

@_cdecl("sxc_last_error_history")
public func sxc_last_error_history(_ values: UnsafeMutablePointer<Double>?, _ count: UInt, _ written: UnsafeMutablePointer<UInt>?) -> Int32 {
    // Deliberately leaves the stored message alone, so it can be read after the history.
    let history = threadErrorState().history
    written?.pointee = UInt(history.count)
    if history.isEmpty { return Status.ok.rawValue }
    guard let values, count >= UInt(history.count) else { return Status.buffer.rawValue }
    for (i, v) in history.enumerated() { values[i] = v }
    return Status.ok.rawValue
}

// MARK: - Output helpers

/// Writes a scalar through a caller pointer, or throws a buffer error naming the argument.
func store<T>(_ value: T, _ pointer: UnsafeMutablePointer<T>?, _ name: String) throws {
    guard let pointer else { throw ABIError.buffer("\(name) is NULL") }
    pointer.pointee = value
}

/// Copies `values` into a caller buffer of capacity `count` elements.
func copyOut(_ values: [Double], _ buffer: UnsafeMutablePointer<Double>?, _ count: UInt, _ what: String) throws {
    guard count >= UInt(values.count) else {
        throw ABIError.buffer("\(what) needs \(values.count) elements, buffer holds \(count)")
    }
    if values.isEmpty { return }
    guard let buffer else { throw ABIError.buffer("\(what) buffer is NULL") }
    values.withUnsafeBufferPointer { src in
        if let base = src.baseAddress { buffer.update(from: base, count: src.count) }
    }
}

/// Reads a NUL-terminated string argument, or throws an input error naming it.
func readCString(_ pointer: UnsafePointer<CChar>?, _ name: String) throws -> UnsafePointer<CChar> {
    guard let pointer else { throw SolidXCError.input(field: name, message: "is NULL") }
    return pointer
}
