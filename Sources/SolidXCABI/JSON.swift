#if canImport(Glibc)
import Glibc
#endif
import SolidXC

/// A parsed JSON value. Objects keep their keys in input order.
enum JSONValue {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    /// How the value reads in a message: "a string", "an array", "null", ...
    var kindDescription: String {
        switch self {
        case .null: return "null"
        case let .bool(b): return b ? "true" : "false"
        case let .number(x):
            if x.isFinite, x == x.rounded(), abs(x) < 1e15 { return "\(Int(x))" }
            return "\(x)"
        case let .string(s): return "the string \"\(s.count > 40 ? String(s.prefix(40)) + "..." : s)\""
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// A small strict JSON reader (RFC 8259) with a size limit, a nesting limit and messages that
/// name the byte offset. One extension, as in Python's json module: the literals NaN,
/// Infinity and -Infinity are numbers, so that non-finite input reaches the core's
/// validation and is reported by field rather than as a syntax error.
struct JSONParser {
    static let maxBytes = 4 << 20
    static let maxDepth = 64

    private let bytes: UnsafeBufferPointer<UInt8>
    private var offset = 0
    private var depth = 0

    private init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// Parses a NUL-terminated UTF-8 document.
    static func parse(_ text: UnsafePointer<CChar>) throws -> JSONValue {
        let length = strnlen(text, maxBytes + 1)
        guard length <= maxBytes else {
            throw SolidXCError.input(field: "json", message: "input is longer than the limit of \(maxBytes) bytes")
        }
        return try text.withMemoryRebound(to: UInt8.self, capacity: length) { p in
            var parser = JSONParser(UnsafeBufferPointer(start: p, count: length))
            return try parser.document()
        }
    }

    /// Parses a Swift string (tests and internal use).
    static func parse(_ text: String) throws -> JSONValue {
        var copy = Array(text.utf8)
        guard copy.count <= maxBytes else {
            throw SolidXCError.input(field: "json", message: "input is longer than the limit of \(maxBytes) bytes")
        }
        copy.append(0)
        return try copy.withUnsafeBufferPointer { b in
            var parser = JSONParser(UnsafeBufferPointer(rebasing: b[0..<(b.count - 1)]))
            return try parser.document()
        }
    }

    private func error(_ message: String) -> SolidXCError {
        .input(field: "json", message: message)
    }

    private func unexpected() -> SolidXCError {
        guard offset < bytes.count else { return error("unexpected end of input at offset \(offset)") }
        let b = bytes[offset]
        if b >= 0x20 && b < 0x7F {
            return error("unexpected character '\(Character(Unicode.Scalar(b)))' at offset \(offset)")
        }
        return error("unexpected byte 0x\(String(b, radix: 16)) at offset \(offset)")
    }

    private mutating func document() throws -> JSONValue {
        skipWhitespace()
        if offset >= bytes.count { throw error("empty input; expected a JSON value") }
        let value = try parseValue()
        skipWhitespace()
        if offset < bytes.count {
            let b = bytes[offset]
            let shown = b >= 0x20 && b < 0x7F ? "'\(Character(Unicode.Scalar(b)))'" : "byte 0x\(String(b, radix: 16))"
            throw error("unexpected \(shown) after the end of the value at offset \(offset)")
        }
        return value
    }

    private mutating func skipWhitespace() {
        while offset < bytes.count {
            switch bytes[offset] {
            case 0x20, 0x09, 0x0A, 0x0D: offset += 1
            default: return
            }
        }
    }

    private func peek() -> UInt8? { offset < bytes.count ? bytes[offset] : nil }

    private mutating func parseValue() throws -> JSONValue {
        guard let b = peek() else { throw unexpected() }
        switch b {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "N"): try literal("NaN"); return .number(.nan)
        case UInt8(ascii: "I"): try literal("Infinity"); return .number(.infinity)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw unexpected()
        }
    }

    private mutating func literal(_ word: StaticString) throws {
        let text = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        for c in text {
            guard offset < bytes.count, bytes[offset] == c else { throw unexpected() }
            offset += 1
        }
    }

    private mutating func enter() throws {
        depth += 1
        guard depth <= JSONParser.maxDepth else {
            throw error("nesting deeper than \(JSONParser.maxDepth) levels at offset \(offset)")
        }
    }

    private mutating func parseObject() throws -> JSONValue {
        try enter()
        defer { depth -= 1 }
        offset += 1  // {
        var members: [(key: String, value: JSONValue)] = []
        var seen = Set<String>()
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            offset += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw unexpected() }
            let keyOffset = offset
            let key = try parseString()
            guard !seen.contains(key) else { throw error("duplicate key \"\(key)\" at offset \(keyOffset)") }
            seen.insert(key)
            skipWhitespace()
            guard peek() == UInt8(ascii: ":") else { throw unexpected() }
            offset += 1
            skipWhitespace()
            let value = try parseValue()
            members.append((key, value))
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","): offset += 1
            case UInt8(ascii: "}"): offset += 1; return .object(members)
            default: throw unexpected()
            }
        }
    }

    private mutating func parseArray() throws -> JSONValue {
        try enter()
        defer { depth -= 1 }
        offset += 1  // [
        var items: [JSONValue] = []
        skipWhitespace()
        if peek() == UInt8(ascii: "]") {
            offset += 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            items.append(try parseValue())
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","): offset += 1
            case UInt8(ascii: "]"): offset += 1; return .array(items)
            default: throw unexpected()
            }
        }
    }

    private static func isDigit(_ b: UInt8?) -> Bool {
        guard let b else { return false }
        return b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")
    }

    private mutating func parseNumber() throws -> Double {
        let start = offset
        if peek() == UInt8(ascii: "-") {
            offset += 1
            if peek() == UInt8(ascii: "I") {
                try literal("Infinity")
                return -.infinity
            }
        }
        guard JSONParser.isDigit(peek()) else { throw unexpected() }
        if peek() == UInt8(ascii: "0") {
            offset += 1
        } else {
            while JSONParser.isDigit(peek()) { offset += 1 }
        }
        if peek() == UInt8(ascii: ".") {
            offset += 1
            guard JSONParser.isDigit(peek()) else { throw unexpected() }
            while JSONParser.isDigit(peek()) { offset += 1 }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            offset += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { offset += 1 }
            guard JSONParser.isDigit(peek()) else { throw unexpected() }
            while JSONParser.isDigit(peek()) { offset += 1 }
        }
        // The grammar above admits only what strtod reads exactly; out-of-range values
        // become +-inf or 0 as IEEE rounding says, and the core reports them by field.
        var text = [CChar](repeating: 0, count: offset - start + 1)
        for i in start..<offset { text[i - start] = CChar(bitPattern: bytes[i]) }
        return text.withUnsafeBufferPointer { p in p.baseAddress.map { strtod($0, nil) } ?? .nan }
    }

    private mutating func hex4() throws -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard let b = peek() else { throw unexpected() }
            let d: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(b - UInt8(ascii: "A") + 10)
            default: throw error("invalid \\u escape: expected a hex digit at offset \(offset)")
            }
            v = v * 16 + d
            offset += 1
        }
        return v
    }

    private mutating func parseString() throws -> String {
        let start = offset
        offset += 1  // opening quote
        var out: [UInt8] = []
        while true {
            guard let b = peek() else {
                throw error("unterminated string starting at offset \(start)")
            }
            switch b {
            case UInt8(ascii: "\""):
                offset += 1
                guard let s = String(validating: out, as: UTF8.self) else {
                    throw error("invalid UTF-8 in the string starting at offset \(start)")
                }
                return s
            case UInt8(ascii: "\\"):
                let escape = offset
                offset += 1
                guard let e = peek() else { throw unexpected() }
                offset += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if scalar >= 0xD800 && scalar < 0xDC00 {
                        guard peek() == UInt8(ascii: "\\"), offset + 1 < bytes.count, bytes[offset + 1] == UInt8(ascii: "u") else {
                            throw error("unpaired surrogate \\u escape at offset \(escape)")
                        }
                        offset += 2
                        let low = try hex4()
                        guard low >= 0xDC00 && low < 0xE000 else {
                            throw error("unpaired surrogate \\u escape at offset \(escape)")
                        }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if scalar >= 0xDC00 && scalar < 0xE000 {
                        throw error("unpaired surrogate \\u escape at offset \(escape)")
                    }
                    guard let u = Unicode.Scalar(scalar) else {
                        throw error("invalid \\u escape at offset \(escape)")
                    }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default:
                    let shown = e >= 0x20 && e < 0x7F ? "\\\(Character(Unicode.Scalar(e)))" : "byte 0x\(String(e, radix: 16))"
                    throw error("invalid escape '\(shown)' at offset \(escape)")
                }
            default:
                guard b >= 0x20 else {
                    throw error("control character 0x\(String(b, radix: 16)) in a string at offset \(offset); escape it")
                }
                out.append(b)
                offset += 1
            }
        }
    }
}
