import Foundation
import SafeRxSQL
import Synchronization

/// Turns the SQL SafeRx writes (SQLite's, kept to what both engines share) into PostgreSQL's.
///
/// The differences are few and mechanical, so they are translated here once rather than written twice at every call
/// site: `?` placeholders become `$1, $2, ...`; `INSERT OR IGNORE` becomes `ON CONFLICT DO NOTHING`; `IS ?` (SQLite's
/// null-safe equality) becomes `IS NOT DISTINCT FROM`; `instr`, `group_concat` and `json_extract` become `strpos`,
/// `string_agg` and `#>>`. Everything else (upserts with `ON CONFLICT (...) DO UPDATE`, `RETURNING`, `EXISTS`,
/// `LIMIT`/`OFFSET`) is already common to both. Statements that only SQLite understands (`PRAGMA`, `INSERT OR
/// REPLACE`) are refused with an error that names them, never sent.
enum PostgreSQLDialect {
    /// A statement this engine cannot run.
    struct Unsupported: Error, CustomStringConvertible {
        let what: String
        var description: String { "PostgreSQL engine: \(what)" }
    }

    static let cache = Mutex<[String: String]>([:])

    /// The PostgreSQL text of `sql` (cached: SafeRx's statements are a few hundred distinct strings).
    static func translate(_ sql: String) throws -> String {
        if let hit = cache.withLock({ $0[sql] }) { return hit }
        let out = try translateUncached(sql)
        cache.withLock { c in
            if c.count > 5_000 { c.removeAll() }
            c[sql] = out
        }
        return out
    }

    static func translateUncached(_ sql: String) throws -> String {
        let trimmed = sql.drop { $0.isWhitespace }
        if trimmed.uppercased().hasPrefix("PRAGMA") { throw Unsupported(what: "SQLite's PRAGMA statements have no PostgreSQL equivalent") }
        var s = placeholders(sql)
        if s.range(of: "INSERT OR REPLACE", options: .caseInsensitive) != nil {
            throw Unsupported(what: "INSERT OR REPLACE (write an upsert with ON CONFLICT (...) DO UPDATE)")
        }
        if let r = s.range(of: "INSERT OR IGNORE", options: .caseInsensitive) {
            s.replaceSubrange(r, with: "INSERT")
            if let ret = s.range(of: " RETURNING ", options: [.caseInsensitive, .backwards]) {
                s.insert(contentsOf: " ON CONFLICT DO NOTHING", at: ret.lowerBound)
            } else {
                while let last = s.last, last.isWhitespace || last == ";" { s.removeLast() }
                s += " ON CONFLICT DO NOTHING"
            }
        }
        s = s.replacingOccurrences(of: #"\bIS (\$\d+)"#, with: "IS NOT DISTINCT FROM $1", options: .regularExpression)
        s = s.replacingOccurrences(of: #"\binstr\("#, with: "strpos(", options: [.regularExpression, .caseInsensitive])
        // group_concat(x, ',') / group_concat(x): one argument expression without parentheses of its own.
        s = s.replacingOccurrences(
            of: #"\bgroup_concat\(([^(),]+),\s*('[^']*')\)"#, with: "string_agg($1, $2)", options: [.regularExpression, .caseInsensitive])
        s = s.replacingOccurrences(of: #"\bgroup_concat\(([^(),]+)\)"#, with: "string_agg($1, ',')", options: [.regularExpression, .caseInsensitive])
        // json_extract(col, '$.a.b') -> (col::jsonb #>> '{a,b}'); the expression index is created with the same text.
        let json = try NSRegularExpression(pattern: #"json_extract\(([A-Za-z_][A-Za-z0-9_.]*),\s*'\$\.([A-Za-z0-9_.]+)'\)"#)
        for m in json.matches(in: s, range: NSRange(s.startIndex..., in: s)).reversed() {
            guard let whole = Range(m.range, in: s), let column = Range(m.range(at: 1), in: s), let path = Range(m.range(at: 2), in: s) else { continue }
            let keys = s[path].split(separator: ".").joined(separator: ",")
            s.replaceSubrange(whole, with: "(\(s[column])::jsonb #>> '{\(keys)}')")
        }
        return s
    }

    /// `?` → `$n`, outside quoted strings and identifiers.
    static func placeholders(_ sql: String) -> String {
        var out = ""
        out.reserveCapacity(sql.utf8.count + 16)
        var n = 0
        var quote: Character? = nil
        for c in sql {
            if let q = quote {
                out.append(c)
                if c == q { quote = nil }
                continue
            }
            switch c {
            case "'", "\"":
                quote = c
                out.append(c)
            case "?":
                n += 1
                out += "$\(n)"
            default:
                out.append(c)
            }
        }
        return out
    }

    /// Splits a script of several statements at the semicolons that end them (outside quotes and `$$` bodies).
    static func statements(_ script: String) -> [String] {
        var out: [String] = []
        var current = ""
        var quote: Character? = nil
        var dollar = false
        var previous: Character = " "
        for c in script {
            current.append(c)
            if dollar {
                if c == "$" && previous == "$" { dollar = false }
            } else if let q = quote {
                if c == q { quote = nil }
            } else if c == "'" || c == "\"" {
                quote = c
            } else if c == "$" && previous == "$" {
                dollar = true
            } else if c == ";" {
                let stmt = current.dropLast().trimmingCharacters(in: .whitespacesAndNewlines)
                if !stmt.isEmpty { out.append(stmt) }
                current = ""
            }
            previous = (c == "$" && previous == "$") ? " " : c
        }
        let last = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !last.isEmpty { out.append(last) }
        return out
    }
}
