#if canImport(Glibc)
import Glibc
#endif

// Reading CP2K-format GTH files and choosing an entry. The format, per entry:
//
//     El  NAME  [ALIAS ...]                      header: element symbol, then names
//     n_elec(s) n_elec(p) ...                    valence configuration
//     r_loc  nexp  C1 ... C_nexp                 local part, nexp ≤ 4
//     nprj                                       number of channels, l = 0..<nprj
//     r_l  n_l  h_11 ... h_1n                    per channel: radius, projector count, row 1
//                h_22 ... h_2n                   ... then the rest of the upper triangle,
//                         h_nn                       one row per line
//
// '#' starts a comment; blank lines and lines starting with END are skipped. Spin-orbit
// (k) rows that follow the h rows of an l > 0 channel in SOC files are recognised and skipped.

extension GTHPseudopotential {
    /// The names of the bundled tables accepted by `load(element:table:)`.
    public static let bundledTableNames = ["gth-pade", "gth-pbe"]

    /// The raw CP2K text of a bundled table ("gth-pade"/"gth-lda" or "gth-pbe", any case,
    /// '-' and '_' optional), or nil.
    public static func bundledTableText(_ table: String) -> String? {
        switch normalizedTableName(table).base {
        case "gthpade", "gthlda": return GTHTables.gthPade
        case "gthpbe": return GTHTables.gthPBE
        default: return nil
        }
    }

    /// Loads the pseudopotential of `element` (e.g. "Si"; non-letters are dropped, so "Si1"
    /// also works) from `table`:
    ///
    /// - "gth-pade" (alias "gth-lda") or "gth-pbe": the bundled CP2K tables (from PySCF). The
    ///   entry is the one PySCF picks for `cell.pseudo = 'gth-pade'`: the first entry of the
    ///   element whose last header name has no "-qN" suffix (the table's default marker), e.g.
    ///   Na q9, Mg q10, Ca q10, Ni q18, Cu q11 (semicore states in valence where offered).
    /// - "gth-pade-qN" / "gth-pbe-qN": the entry with N valence electrons, e.g. "gth-pade-q2" for Mg.
    /// - anything else: the path of a CP2K-format file, read with the same default rule (or the
    ///   only entry of the element, if there is just one).
    ///
    /// Throws `SolidXCError.input(field: "pseudo", ...)` if the table or the element's entry does
    /// not exist or the entry is malformed.
    public static func load(element: String, table: String) throws -> GTHPseudopotential {
        let symbol = try normalizedElement(element)
        let name = normalizedTableName(table)
        switch name.base {
        case "gthpade", "gthlda":
            return try select(from: bundledPadeEntries, element: symbol, valence: name.valence,
                              source: "table '\(table)'")
        case "gthpbe":
            return try select(from: bundledPBEEntries, element: symbol, valence: name.valence,
                              source: "table '\(table)'")
        default:
            guard let text = readTextFile(table) else {
                throw SolidXCError.input(
                    field: "pseudo",
                    message: "unknown pseudopotential table '\(table)' for element \(symbol): expected "
                        + "gth-pade, gth-pbe, gth-pade-qN, gth-pbe-qN or the path of a readable "
                        + "CP2K-format file (a regular file of at most 16 MiB)")
            }
            return try select(from: splitEntries(text, source: "file '\(table)'"), element: symbol,
                              valence: nil, source: "file '\(table)'")
        }
    }

    /// Parses the entry for `element` from CP2K-format text (one or several entries, see the
    /// format above). `valence` chooses among several entries by electron count; nil picks the
    /// entry without a "-qN" suffix on its last header name, or the only entry of the element.
    public static func parse(cp2kText: String, element: String, valence: Int? = nil) throws
        -> GTHPseudopotential
    {
        let symbol = try normalizedElement(element)
        if let valence, valence <= 0 {
            throw SolidXCError.input(field: "pseudo", message: "valence for \(symbol) must be "
                + "a positive number of electrons, got \(valence)")
        }
        return try select(from: splitEntries(cp2kText, source: "CP2K text"), element: symbol,
                          valence: valence, source: "CP2K text")
    }

    /// Parses every entry of CP2K-format text, in file order.
    public static func parseAll(cp2kText: String) throws -> [GTHPseudopotential] {
        try splitEntries(cp2kText, source: "CP2K text").map { try parseEntry($0, source: "CP2K text") }
    }
}

// MARK: - Entries

/// One non-empty line, comment stripped and split into whitespace-separated tokens.
struct CP2KLine: Sendable {
    let number: Int  // 1-based line number in the source text
    let tokens: [Substring]
}

/// The lines of one entry: its header, then its data lines.
struct CP2KEntry: Sendable {
    let element: String
    let names: [String]
    let header: CP2KLine
    let data: [CP2KLine]
}

extension GTHPseudopotential {
    static let bundledPadeEntries = (try? splitEntries(GTHTables.gthPade, source: "gth-pade")) ?? []
    static let bundledPBEEntries = (try? splitEntries(GTHTables.gthPBE, source: "gth-pbe")) ?? []

    static func splitEntries(_ text: String, source: String) throws -> [CP2KEntry] {
        var entries: [CP2KEntry] = []
        var header: CP2KLine?
        var data: [CP2KLine] = []
        func close() {
            guard let h = header else { return }
            entries.append(CP2KEntry(element: normalizedSymbol(h.tokens[0]),
                                     names: h.tokens.dropFirst().map(String.init), header: h, data: data))
        }
        for (index, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
            .enumerated()
        {
            let content = raw.firstIndex(of: "#").map { raw[..<$0] } ?? raw
            let tokens = content.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let first = tokens.first, first.uppercased() != "END" else { continue }
            let line = CP2KLine(number: index + 1, tokens: tokens)
            // A header starts with the element symbol and is not followed by a number, so a
            // data line with a garbled first value ("abc 1 -7.3") is reported, not taken as a header.
            if let c = first.first, c.isLetter, tokens.count == 1 || parseReal(tokens[1]) == nil {
                close()
                header = line
                data = []
            } else if header == nil {
                throw SolidXCError.input(
                    field: "pseudo", message: "\(source), line \(line.number): numeric data "
                        + "'\(tokens.joined(separator: " "))' before the first 'Element NAME' header line")
            } else {
                data.append(line)
            }
        }
        close()
        return entries
    }

    /// Chooses the entry of `element` (PySCF's rule, see `load`) and parses it.
    static func select(from entries: [CP2KEntry], element: String, valence: Int?, source: String)
        throws -> GTHPseudopotential
    {
        let mine = entries.filter { $0.element == element }
        if mine.isEmpty {
            var symbols: [String] = []
            for e in entries where !symbols.contains(e.element) { symbols.append(e.element) }
            let covered = symbols.isEmpty ? "no entries at all"
                : "entries for " + symbols.joined(separator: " ")
            throw SolidXCError.input(field: "pseudo",
                                     message: "no GTH pseudopotential for element \(element) in "
                                         + "\(source), which has \(covered)")
        }
        func valences() -> String {
            mine.map { "q\(electronCount($0))" }.joined(separator: ", ")
        }
        if let valence {
            guard let entry = mine.first(where: { electronCount($0) == valence }) else {
                throw SolidXCError.input(field: "pseudo",
                                         message: "\(source) has no entry for \(element) with "
                                             + "\(valence) valence electrons; available: \(valences())")
            }
            return try parseEntry(entry, source: source)
        }
        if let entry = mine.first(where: { !hasValenceSuffix($0.names.last ?? "") }) {
            return try parseEntry(entry, source: source)
        }
        if mine.count == 1 { return try parseEntry(mine[0], source: source) }
        throw SolidXCError.input(field: "pseudo",
                                 message: "\(source) has several entries for \(element) (\(valences())) "
                                     + "and none is marked as the default; give the valence, e.g. "
                                     + "'gth-pade-q\(electronCount(mine[0]))'")
    }

    /// Sum of the configuration line, or -1 if it is unreadable (parsing reports that later).
    static func electronCount(_ entry: CP2KEntry) -> Int {
        guard let line = entry.data.first else { return -1 }
        var sum = 0
        for t in line.tokens {
            guard let n = Int(t) else { return -1 }
            sum += n
        }
        return sum
    }

    /// True for names ending in "-q<digits>", such as "GTH-PADE-q4".
    static func hasValenceSuffix(_ name: String) -> Bool {
        guard let dash = name.lastIndex(of: "-") else { return false }
        let suffix = name[name.index(after: dash)...]
        guard let q = suffix.first, q == "q" || q == "Q" else { return false }
        let digits = suffix.dropFirst()
        return !digits.isEmpty && digits.allSatisfy { $0.isASCII && $0.isNumber }
    }

    // MARK: - One entry

    static func parseEntry(_ entry: CP2KEntry, source: String) throws -> GTHPseudopotential {
        let label = "\(source), \(entry.element) \(entry.names.first ?? "")"
        var cursor = 0

        func fail(_ line: CP2KLine?, _ message: String) -> SolidXCError {
            let at = line.map { " (line \($0.number): '\($0.tokens.joined(separator: " "))')" }
                ?? " (entry ends at line \(entry.data.last?.number ?? entry.header.number))"
            return .input(field: "pseudo", message: "\(label)\(at): \(message)")
        }
        func nextLine(_ what: String) throws -> CP2KLine {
            guard cursor < entry.data.count else { throw fail(nil, "missing \(what)") }
            cursor += 1
            return entry.data[cursor - 1]
        }
        func integer(_ line: CP2KLine, _ k: Int, _ what: String, _ range: ClosedRange<Int>) throws -> Int {
            guard k < line.tokens.count else { throw fail(line, "missing \(what)") }
            guard let n = Int(line.tokens[k]), range.contains(n) else {
                throw fail(line, "\(what) must be an integer in \(range.lowerBound)...\(range.upperBound), "
                    + "found '\(line.tokens[k])'")
            }
            return n
        }
        func real(_ line: CP2KLine, _ k: Int, _ what: String) throws -> Double {
            guard k < line.tokens.count else { throw fail(line, "missing \(what)") }
            guard let x = parseReal(line.tokens[k]) else {
                throw fail(line, "\(what) must be a finite number, found '\(line.tokens[k])'")
            }
            return x
        }
        func expectCount(_ line: CP2KLine, _ n: Int, _ what: String) throws {
            if line.tokens.count != n {
                throw fail(line, "expected \(n) values (\(what)), found \(line.tokens.count)")
            }
        }

        // Valence configuration.
        let configLine = try nextLine("valence configuration line (n_elec per l)")
        let configuration = try (0..<configLine.tokens.count).map {
            try integer(configLine, $0, "n_elec (electrons for l = \($0))", 0...64)
        }
        guard configuration.reduce(0, +) > 0 else {
            throw fail(configLine, "n_elec must add up to a positive valence charge")
        }

        // Local part.
        let localLine = try nextLine("local line (r_loc nexp C1 ... Cnexp)")
        let rloc = try real(localLine, 0, "r_loc")
        guard rloc > 0 else { throw fail(localLine, "r_loc must be positive, found \(rloc)") }
        let nexp = try integer(localLine, 1, "nexp (number of local coefficients)", 0...4)
        try expectCount(localLine, 2 + nexp, "r_loc, nexp and \(nexp) coefficients C_i")
        let cloc = try (0..<nexp).map { try real(localLine, 2 + $0, "C\($0 + 1)") }

        // Nonlocal channels.
        let nprjLine = try nextLine("nprj line (number of nonlocal channels)")
        let nprj = try integer(nprjLine, 0, "nprj (number of nonlocal channels, l = 0..<nprj)", 0...4)
        try expectCount(nprjLine, 1, "nprj")
        var channels: [(radius: Double, h: [[Double]])] = []
        for l in 0..<nprj {
            let line = try nextLine("nonlocal channel l = \(l) (r_l n_l h_11 ... h_1n)")
            let radius = try real(line, 0, "r_\(l) (projector radius)")
            let n = try integer(line, 1, "n_\(l) (number of l = \(l) projectors)", 0...3)
            if n > 0 && radius <= 0 {
                throw fail(line, "r_\(l) must be positive, found \(radius)")
            }
            try expectCount(line, 2 + n, "r_\(l), n_\(l) and the first row of h^\(l)")
            var h = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
            for i in 0..<n {
                let row = i == 0 ? line : try nextLine("row \(i + 1) of h^\(l)")
                let first = i == 0 ? 2 : 0
                try expectCount(row, first + n - i, "row \(i + 1) of h^\(l)")
                for j in i..<n {
                    let x = try real(row, first + j - i, "h^\(l)_\(i + 1)\(j + 1)")
                    h[i][j] = x
                    h[j][i] = x
                }
            }
            // Spin-orbit rows k^l (SOC files): n lines of n, n-1, ... reals. A channel line
            // instead has an integer second token, so the two cannot be confused.
            if l > 0 && n > 0 && cursor < entry.data.count && !isChannelLine(entry.data[cursor]) {
                for i in 0..<n {
                    let row = try nextLine("row \(i + 1) of the spin-orbit matrix k^\(l)")
                    try expectCount(row, n - i, "row \(i + 1) of the spin-orbit matrix k^\(l)")
                    for j in 0..<(n - i) { _ = try real(row, j, "k^\(l)_\(i + 1)\(i + j + 1)") }
                }
            }
            channels.append((radius, h))
        }
        if cursor < entry.data.count {
            throw fail(entry.data[cursor], "unexpected line after the \(nprj) nonlocal channel(s) "
                + "(malformed or unsupported entry)")
        }
        return GTHPseudopotential(element: entry.element, names: entry.names,
                                  valenceConfiguration: configuration, rloc: rloc, cloc: cloc,
                                  channels: channels)
    }

    static func isChannelLine(_ line: CP2KLine) -> Bool {
        guard line.tokens.count >= 2, let n = Int(line.tokens[1]) else { return false }
        return line.tokens.count == 2 + n
    }

    /// A finite real; Fortran 'D' exponents are accepted.
    static func parseReal(_ token: Substring) -> Double? {
        let x: Double?
        if token.contains(where: { $0 == "D" || $0 == "d" }) {
            x = Double(String(token.map { $0 == "D" || $0 == "d" ? "E" : $0 }))
        } else {
            x = Double(token)
        }
        guard let x, x.isFinite else { return nil }
        return x
    }

    // MARK: - Names and files

    /// "Si", "si", "SI1" -> "Si"; throws if no letters are left.
    static func normalizedElement(_ element: String) throws -> String {
        let symbol = normalizedSymbol(Substring(element))
        guard !symbol.isEmpty, symbol.count <= 3 else {
            throw SolidXCError.input(field: "pseudo",
                                     message: "element '\(element)' is not an element symbol such as \"Si\"")
        }
        return symbol
    }

    static func normalizedSymbol(_ s: Substring) -> String {
        let letters = s.filter { $0.isLetter }
        guard let first = letters.first else { return "" }
        return first.uppercased() + letters.dropFirst().lowercased()
    }

    /// "GTH-PADE-q10" -> ("gthpade", 10); "gth-pbe" -> ("gthpbe", nil), as PySCF normalises names.
    static func normalizedTableName(_ table: String) -> (base: String, valence: Int?) {
        let s = String(table.lowercased().filter { $0 != "-" && $0 != "_" && $0 != " " })
        guard let q = s.lastIndex(of: "q") else { return (s, nil) }
        let digits = s[s.index(after: q)...]
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
              let n = Int(digits), n > 0
        else { return (s, nil) }
        return (String(s[..<q]), n)
    }

    /// Largest pseudopotential file read (bytes); CP2K's whole GTH_POTENTIALS is under 1 MiB.
    static let maxFileBytes = 16 << 20

    /// The whole file as UTF-8 text, or nil if it cannot be opened or read, is not a regular file
    /// (a FIFO, /dev/stdin or /dev/zero would block or never end) or is larger than `maxFileBytes`.
    static func readTextFile(_ path: String) -> String? {
        guard !path.isEmpty else { return nil }
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, Int(info.st_size) <= maxFileBytes,
              let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while bytes.count <= maxFileBytes {
            let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            bytes.append(contentsOf: buffer[0..<n])
            if n < buffer.count { break }
        }
        guard bytes.count <= maxFileBytes else { return nil }
        guard ferror(file) == 0 else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }
}
