#if canImport(Glibc)
import Glibc
#endif

/// The objects that C callers hold by handle.
enum HandleObject {
    case system(SystemBox)
    case result(ResultBox)

    var kind: String {
        switch self {
        case .system: return "system"
        case .result: return "result"
        }
    }
}

/// The opaque handles of the C ABI. A handle is an integer id disguised as a pointer; it is
/// looked up here and never dereferenced, so a freed, double-freed or foreign handle is an
/// error rather than a crash. Ids are never reused. Lookups return a strong reference, so an
/// object freed by one thread while another uses it lives until that use ends.
final class HandleTable {
    static let shared = HandleTable()

    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var objects: [UInt: HandleObject] = [:]
    /// Ids start well above small integers and step by 16, so that stray small values and
    /// off-by-one pointers are not live handles.
    private var nextId: UInt = 0x5C00_0000

    private init() {
        mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Stores `object` and returns its handle.
    func insert(_ object: HandleObject) -> OpaquePointer? {
        locked {
            nextId += 16
            objects[nextId] = object
            return OpaquePointer(bitPattern: nextId)
        }
    }

    private static func key(_ handle: OpaquePointer?) -> UInt? {
        handle.map { UInt(bitPattern: Int(bitPattern: UnsafeRawPointer($0))) }
    }

    private static func describe(_ handle: OpaquePointer?) -> String {
        guard let k = key(handle) else { return "NULL" }
        return "0x" + String(k, radix: 16)
    }

    func system(_ handle: OpaquePointer?) throws -> SystemBox {
        switch try lookup(handle, expecting: "system") {
        case let .system(box): return box
        case let other: throw ABIError.handle("handle \(HandleTable.describe(handle)) is a \(other.kind) handle, not a system")
        }
    }

    func result(_ handle: OpaquePointer?) throws -> ResultBox {
        switch try lookup(handle, expecting: "result") {
        case let .result(box): return box
        case let other: throw ABIError.handle("handle \(HandleTable.describe(handle)) is a \(other.kind) handle, not a result")
        }
    }

    private func lookup(_ handle: OpaquePointer?, expecting kind: String) throws -> HandleObject {
        guard let k = HandleTable.key(handle) else { throw ABIError.handle("\(kind) handle is NULL") }
        guard let object = locked({ objects[k] }) else {
            throw ABIError.handle("\(HandleTable.describe(handle)) is not a live \(kind) handle (already freed, or never created by sxc_)")
        }
        return object
    }

    /// Removes a handle of the given kind; a second free of the same handle is an error.
    func remove(_ handle: OpaquePointer?, kind: String) throws {
        guard let k = HandleTable.key(handle) else { throw ABIError.handle("\(kind) handle is NULL") }
        let removed: HandleObject? = locked {
            guard let object = objects[k], object.kind == kind else { return nil }
            objects[k] = nil
            return object
        }
        guard removed != nil else {
            if let object = locked({ objects[k] }) {
                throw ABIError.handle("handle \(HandleTable.describe(handle)) is a \(object.kind) handle, not a \(kind)")
            }
            throw ABIError.handle("\(HandleTable.describe(handle)) is not a live \(kind) handle (already freed, or never created by sxc_)")
        }
        // The object is released here, outside the lock.
    }

    /// Number of live handles (for tests and leak checks).
    var count: Int { locked { objects.count } }
}
