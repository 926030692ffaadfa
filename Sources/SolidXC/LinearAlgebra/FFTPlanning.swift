#if canImport(Glibc)
import Glibc
#endif
import CSolidXCDeps

/// How FFTW plans are chosen, and the wisdom file that makes the choice repeatable.
///
/// FFTW_ESTIMATE picks a plan from a cost model, the same on every run, but for the grid sizes
/// DFT uses (30, 45, 48, ...) its plans run 1.5-2.5 times slower than those FFTW_MEASURE finds by
/// timing candidates. A measured plan depends on the timings, so two processes may pick different
/// plans, and different plans round differently. The measured choices are therefore kept as FFTW
/// wisdom in a file: a process plans under an exclusive lock on it, first reading what other
/// processes measured, then writing back what it measured. Every process that finds a plan there
/// uses the same plan, so results are the same bits run to run and for any thread count, as with
/// FFTW_ESTIMATE.
///
/// - `SOLIDXC_FFT_PLANNING`: `measure` (the default), `patient` (FFTW_PATIENT: longer planning,
///   sometimes faster plans) or `estimate` (no timing and no wisdom file: the same plans on every
///   machine with the same FFTW).
/// - `SOLIDXC_FFTW_WISDOM`: the wisdom file (default `$XDG_CACHE_HOME/solidxc/fftw-wisdom-HOST`,
///   or `~/.cache/solidxc/...`; HOST is the machine's name, since measured plans suit the machine
///   that measured them). An empty value keeps wisdom in memory only. When the file cannot be
///   read or written, planning goes on without it.
enum FFTPlanning {
    /// The FFTW planner flag, from `SOLIDXC_FFT_PLANNING`.
    static var flags: UInt32 { planner.flags }

    /// The planner flag and the mode's name; an unknown mode is an input error (`check`).
    private static let planner: (flags: UInt32, name: String?) = {
        guard let raw = getenv("SOLIDXC_FFT_PLANNING") else { return (UInt32(FFTW_MEASURE), "measure") }
        let name = String(cString: raw)
        switch name.lowercased() {
        case "", "measure": return (UInt32(FFTW_MEASURE), "measure")
        case "estimate": return (UInt32(FFTW_ESTIMATE), "estimate")
        case "patient": return (UInt32(FFTW_PATIENT), "patient")
        default: return (UInt32(FFTW_MEASURE), nil)
        }
    }()

    /// Throws when `SOLIDXC_FFT_PLANNING` names no mode.
    static func check() throws {
        guard planner.name == nil else { return }
        let value = getenv("SOLIDXC_FFT_PLANNING").map { String(cString: $0) } ?? ""
        throw SolidXCError.input(field: "SOLIDXC_FFT_PLANNING", message: "is '\(value)'; expected measure, patient or estimate")
    }

    /// FFTW's planner is not thread-safe: every planner call (and plan destruction) holds this.
    private static let lock = Lock()

    static let wisdomPath: String? = {
        if flags == UInt32(FFTW_ESTIMATE) { return nil }
        if let explicit = getenv("SOLIDXC_FFTW_WISDOM") {
            let path = String(cString: explicit)
            return path.isEmpty ? nil : path
        }
        let cache: String
        if let xdg = getenv("XDG_CACHE_HOME"), xdg.pointee != 0 {
            cache = String(cString: xdg)
        } else if let home = getenv("HOME"), home.pointee != 0 {
            cache = String(cString: home) + "/.cache"
        } else {
            return nil
        }
        var host = [CChar](repeating: 0, count: 256)
        let name = gethostname(&host, host.count - 1) == 0 ? String(cString: host) : "host"
        let safe = String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." ? $0 : "_" })
        return cache + "/solidxc/fftw-wisdom-" + safe
    }()

    /// The wisdom file's identity, size and modification time when this process last read or wrote it.
    nonisolated(unsafe) private static var seen: [Int]? = nil

    private static func stamp(_ path: String) -> [Int]? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return [Int(info.st_ino), Int(info.st_size), Int(info.st_mtim.tv_sec), info.st_mtim.tv_nsec]
    }

    /// Runs `body` (which makes or destroys plans) holding the planner lock and, when there is a
    /// wisdom file, an exclusive lock on it: the file's wisdom is read first, and any wisdom the
    /// body adds is written back before the lock is released.
    static func withPlanner<T>(_ body: () throws -> T) rethrows -> T {
        try lock.withLock {
            guard let path = wisdomPath, let fd = openLockFile(path) else { return try body() }
            defer { flock(fd, LOCK_UN); close(fd) }
            // Read the file when it changed since this process last read or wrote it.
            if let stamp = stamp(path), stamp != seen {
                _ = fftw_import_wisdom_from_filename(path)
                seen = stamp
            }
            let before = exportedWisdom()
            let result = try body()
            let after = exportedWisdom()
            if after != before {
                // Written whole, then renamed over the old file: a reader never sees half of it.
                let temporary = path + ".\(getpid()).tmp"
                if fftw_export_wisdom_to_filename(temporary) != 0 && rename(temporary, path) == 0 {
                    seen = stamp(path)
                } else {
                    unlink(temporary)
                }
            }
            return result
        }
    }

    /// Plan destruction, and reading plans already made, need only the in-process lock.
    static func withPlansLocked<T>(_ body: () throws -> T) rethrows -> T { try lock.withLock(body) }

    private static func exportedWisdom() -> String {
        guard let text = fftw_export_wisdom_to_string() else { return "" }
        defer { free(text) }
        return String(cString: text)
    }

    /// The lock file beside the wisdom file (its directory made if missing), locked exclusively.
    private static func openLockFile(_ path: String) -> Int32? {
        if let slash = path.lastIndex(of: "/") {
            var prefix = path.hasPrefix("/") ? "" : "."
            for part in path[..<slash].split(separator: "/") {
                prefix += "/" + part
                _ = mkdir(prefix, 0o755)
            }
        }
        let fd = open(path + ".lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return nil }
        guard flock(fd, LOCK_EX) == 0 else { close(fd); return nil }
        return fd
    }
}
