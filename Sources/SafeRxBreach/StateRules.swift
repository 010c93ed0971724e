import Foundation
import SafeRxModel

/// The state breach-notification rules, as data (`Resources/state-rules.csv`): one row per state and DC, each with
/// its source, confidence and the date someone verified it against the statute (empty: never — every obligation
/// drawn from such a row says "unverified").
public struct StateRules: Sendable {
    /// When a regulator must be told.
    public enum Timing: Sendable, Equatable {
        /// No fixed timing in the table: without unreasonable delay.
        case unspecified
        /// Within `n` calendar days of the state's clock start (discovery or determination).
        case days(Int)
        /// Within `n` business days of discovery.
        case businessDays(Int)
        /// Before the individuals are notified.
        case beforeIndividuals
        /// No later than the individual notice.
        case withIndividuals
        /// Within `n` days after the individual notice.
        case afterIndividualsDays(Int)
        /// Within `n` business days after the individual notice.
        case afterIndividualsBusinessDays(Int)
        /// Within `n` business days after notifying HHS.
        case afterHHSBusinessDays(Int)
        /// The earliest of several.
        case firstOf([Timing])
    }

    public struct Row: Sendable {
        public var state: String
        /// Calendar days for individual notice; `nil` for "expedient", "without unreasonable delay".
        public var individualDays: Int?
        /// `discovery` or `determination`.
        public var clock: String
        public var individualText: String
        /// `Y`, `N`, `partial` or `?`: whether medical information is personal information under the law.
        public var medicalCovered: String
        public var regulator: String
        /// Residents affected at which the regulator must be told (`nil`: no regulator notice).
        public var regulatorMinimum: Int?
        public var regulatorTiming: Timing
        public var regulatorText: String
        /// `Y`, `N` or `partial`: whether a HIPAA-compliant notice satisfies the state's individual notice.
        public var hipaaDeemedCompliant: String
        public var source: String
        public var confidence: String
        public var lastVerified: String
        public var notes: String

        public var verified: Bool { !lastVerified.isEmpty }
        /// "source BL, confidence med, not verified" — what a privacy officer must know before relying on the row.
        public var provenance: String {
            "source \(Self.sourceName(source)), confidence \(confidence), " + (verified ? "verified \(lastVerified)" : "not verified against the statute")
        }

        /// The table's source codes in words (`BL` is a Bloomberg Law 50-state summary of about 2021–22).
        static func sourceName(_ code: String) -> String {
            code.replacingOccurrences(of: "BL", with: "Bloomberg Law 50-state summary (2021–22)")
        }
    }

    public var rows: [String: Row]

    public static func bundled() throws -> StateRules {
        guard let url = Bundle.module.url(forResource: "state-rules", withExtension: "csv"), let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw BreachError("the bundled state-rules.csv is missing from the build")
        }
        return try parse(text, source: "state-rules.csv")
    }

    public static func load(_ path: String) throws -> StateRules {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw BreachError("\(path): cannot read the file") }
        return try parse(text, source: path)
    }

    static let header = [
        "state", "individual_days", "individual_clock", "individual_text", "medical_covered", "regulator", "regulator_min_affected",
        "regulator_timing", "regulator_text", "hipaa_deemed_compliant", "source", "confidence", "last_verified", "notes",
    ]

    /// Parses and validates the table; an error names the line and the column.
    public static func parse(_ text: String, source: String) throws -> StateRules {
        let lines = CSV.rows(text)
        guard let first = lines.first, first == header else {
            throw BreachError("\(source): the first line must be the header \(header.joined(separator: ","))")
        }
        var rows: [String: Row] = [:]
        for (n, f) in lines.dropFirst().enumerated() where !(f.count == 1 && f[0].isEmpty) {
            let at = "\(source), line \(n + 2)"
            guard f.count == header.count else { throw BreachError("\(at): \(f.count) columns, expected \(header.count)") }
            let state = f[0]
            guard state.count == 2, state.allSatisfy({ $0.isUppercase }) else { throw BreachError("\(at): state '\(state)' is not a two-letter code") }
            guard rows[state] == nil else { throw BreachError("\(at): \(state) appears twice") }
            var days: Int? = nil
            if !f[1].isEmpty {
                guard let d = Int(f[1]), (1...365).contains(d) else { throw BreachError("\(at): individual_days must be empty or 1-365") }
                days = d
            }
            guard ["", "discovery", "determination"].contains(f[2]) else { throw BreachError("\(at): individual_clock must be discovery or determination") }
            guard ["Y", "N", "partial", "?"].contains(f[4]) else { throw BreachError("\(at): medical_covered must be Y, N, partial or ?") }
            var minimum: Int? = nil
            if !f[6].isEmpty {
                guard let m = Int(f[6]), m >= 1 else { throw BreachError("\(at): regulator_min_affected must be empty or a whole number") }
                guard !f[5].isEmpty else { throw BreachError("\(at): regulator_min_affected without a regulator") }
                minimum = m
            }
            let timing: Timing
            do { timing = try parseTiming(f[7]) } catch { throw BreachError("\(at): regulator_timing: \(error)") }
            guard ["Y", "N", "partial"].contains(f[9]) else { throw BreachError("\(at): hipaa_deemed_compliant must be Y, N or partial") }
            if !f[12].isEmpty, CivilDate(f[12]) == nil { throw BreachError("\(at): last_verified must be empty or YYYY-MM-DD") }
            rows[state] = Row(
                state: state, individualDays: days, clock: f[2].isEmpty ? "discovery" : f[2], individualText: f[3], medicalCovered: f[4],
                regulator: f[5], regulatorMinimum: minimum, regulatorTiming: timing, regulatorText: f[8], hipaaDeemedCompliant: f[9],
                source: f[10], confidence: f[11], lastVerified: f[12], notes: f[13])
        }
        return StateRules(rows: rows)
    }

    static func parseTiming(_ s: String) throws -> Timing {
        if s.isEmpty { return .unspecified }
        if s.hasPrefix("first-of:") { return .firstOf(try s.dropFirst(9).split(separator: "|").map { try parseTiming(String($0)) }) }
        if s == "before-individual" { return .beforeIndividuals }
        if s == "with-individual" { return .withIndividuals }
        let parts = s.split(separator: ":")
        guard parts.count == 2, let n = Int(parts[1]), n > 0 else { throw BreachError("'\(s)' is not a timing") }
        switch parts[0] {
        case "days": return .days(n)
        case "business-days": return .businessDays(n)
        case "after-individual-days": return .afterIndividualsDays(n)
        case "after-individual-business-days": return .afterIndividualsBusinessDays(n)
        case "after-hhs-business-days": return .afterHHSBusinessDays(n)
        default: throw BreachError("'\(s)' is not a timing")
        }
    }
}

/// A breach-response error with its message.
public struct BreachError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}

/// RFC 4180 CSV: quoted fields, doubled quotes, CRLF or LF.
public enum CSV {
    public static func rows(_ text: String) -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var field = ""
        var quoted = false
        var chars = Array(text)
        if chars.last != "\n", chars.last != "\r\n" { chars.append("\n") }
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if quoted {
                if c == "\"" {
                    if i + 1 < chars.count, chars[i + 1] == "\"" {
                        field.append("\"")
                        i += 1
                    } else {
                        quoted = false
                    }
                } else {
                    field.append(c)
                }
            } else if c == "\"" {
                quoted = true
            } else if c == "," {
                row.append(field)
                field = ""
            } else if c == "\n" || c == "\r\n" {
                row.append(field)
                rows.append(row)
                row = []
                field = ""
            } else if c != "\r" {
                field.append(c)
            }
            i += 1
        }
        return rows
    }

    /// One field, quoted when needed; spreadsheet formulas neutralised.
    public static func field(_ s: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count + 3)
        append(field: s, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends ``field(_:)`` of `s` as UTF-8 (the mail-merge file is written this way, a row at a time, without
    /// intermediate strings).
    public static func append(field s: String, to out: inout [UInt8]) {
        var s = s
        s.withUTF8 { bytes in
            // A leading = + - @ (or tab, CR) makes a spreadsheet evaluate the cell: prefix an apostrophe.
            let formula = bytes.first.map { $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "@") } ?? false
            let quote = bytes.contains { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }
            if quote { out.append(UInt8(ascii: "\"")) }
            if formula { out.append(UInt8(ascii: "'")) }
            if quote {
                for b in bytes {
                    out.append(b)
                    if b == UInt8(ascii: "\"") { out.append(b) }
                }
                out.append(UInt8(ascii: "\""))
            } else {
                out.append(contentsOf: bytes)
            }
        }
    }
}
