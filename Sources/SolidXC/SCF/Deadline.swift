#if canImport(Glibc)
import Glibc
#endif

/// A wall-clock budget for an iterative loop (the SCF, the response solve): `time_limit` seconds
/// from its creation, measured on the monotonic clock. nil limit: no budget.
struct Deadline {
    let limit: Double?
    let start: Double

    init(seconds limit: Double?) {
        self.limit = limit
        start = Deadline.now()
    }

    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + 1e-9 * Double(t.tv_nsec)
    }

    var elapsed: Double { Deadline.now() - start }

    /// Throws `SolidXCError.convergence` naming `time_limit` once the budget is spent.
    /// `what` says which loop stopped and where ("scf: stopped at iteration 12").
    func check(_ what: @autoclosure () -> String, history: [Double]) throws {
        guard let limit else { return }
        let spent = elapsed
        if spent > limit {
            throw SolidXCError.convergence(message: "time_limit: \(what()) after \((spent * 1e6).rounded() / 1e6) s, over the limit of \(limit) s; raise time_limit or loosen tol", history: history)
        }
    }

    /// Validates a user's `time_limit`: nil, or a positive finite number of seconds.
    static func validate(_ limit: Double?) throws {
        if let limit, !(limit.isFinite && limit > 0) {
            throw SolidXCError.input(field: "time_limit", message: "must be a positive number of seconds or null, got \(limit)")
        }
    }
}
