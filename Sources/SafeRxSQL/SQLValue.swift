import Foundation

/// One value as a SQL engine stores it: the five storage classes SQLite and the PostgreSQL columns SafeRx uses
/// (`BIGINT`, `DOUBLE PRECISION`, `TEXT`, `BYTEA`) have in common.
public enum SQLValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob(Data)

    /// Whether the value is SQL `NULL`.
    public var isNull: Bool { if case .null = self { true } else { false } }
}

/// A Swift value that can be bound as a statement argument and read back from a column.
///
/// Conversions follow GRDB's: an integer column reads as `Double` or `Bool`, text reads as `Data` (UTF-8) and the
/// other way round; anything else is `nil`, and ``SQLRow`` reports a column that does not convert as a programming
/// error.
public protocol SQLValueConvertible {
    /// The value to bind.
    var sqlValue: SQLValue { get }
    /// The value read from a column, or nil when it does not convert.
    static func fromSQLValue(_ value: SQLValue) -> Self?
}

extension SQLValue: SQLValueConvertible {
    public var sqlValue: SQLValue { self }
    public static func fromSQLValue(_ value: SQLValue) -> SQLValue? { value }
}

extension String: SQLValueConvertible {
    public var sqlValue: SQLValue { .text(self) }
    public static func fromSQLValue(_ value: SQLValue) -> String? {
        switch value {
        case .text(let s): s
        case .blob(let d): String(data: d, encoding: .utf8)
        default: nil
        }
    }
}

extension Substring: SQLValueConvertible {
    public var sqlValue: SQLValue { .text(String(self)) }
    public static func fromSQLValue(_ value: SQLValue) -> Substring? { String.fromSQLValue(value).map { Substring($0) } }
}

extension Data: SQLValueConvertible {
    public var sqlValue: SQLValue { .blob(self) }
    public static func fromSQLValue(_ value: SQLValue) -> Data? {
        switch value {
        case .blob(let d): d
        case .text(let s): Data(s.utf8)
        default: nil
        }
    }
}

extension Int64: SQLValueConvertible {
    public var sqlValue: SQLValue { .integer(self) }
    public static func fromSQLValue(_ value: SQLValue) -> Int64? {
        switch value {
        case .integer(let i): i
        case .real(let d): Int64(exactly: d.rounded(.towardZero))
        default: nil
        }
    }
}

extension Int: SQLValueConvertible {
    public var sqlValue: SQLValue { .integer(Int64(self)) }
    public static func fromSQLValue(_ value: SQLValue) -> Int? { Int64.fromSQLValue(value).flatMap { Int(exactly: $0) } }
}

extension Int32: SQLValueConvertible {
    public var sqlValue: SQLValue { .integer(Int64(self)) }
    public static func fromSQLValue(_ value: SQLValue) -> Int32? { Int64.fromSQLValue(value).flatMap { Int32(exactly: $0) } }
}

extension UInt32: SQLValueConvertible {
    public var sqlValue: SQLValue { .integer(Int64(self)) }
    public static func fromSQLValue(_ value: SQLValue) -> UInt32? { Int64.fromSQLValue(value).flatMap { UInt32(exactly: $0) } }
}

extension Double: SQLValueConvertible {
    public var sqlValue: SQLValue { .real(self) }
    public static func fromSQLValue(_ value: SQLValue) -> Double? {
        switch value {
        case .real(let d): d
        case .integer(let i): Double(i)
        default: nil
        }
    }
}

/// Booleans are stored as the integers 0 and 1 on every engine, so that the same SQL (`active = 1`) reads them.
extension Bool: SQLValueConvertible {
    public var sqlValue: SQLValue { .integer(self ? 1 : 0) }
    public static func fromSQLValue(_ value: SQLValue) -> Bool? {
        switch value {
        case .integer(let i): i != 0
        case .real(let d): d != 0
        default: nil
        }
    }
}

extension Optional: SQLValueConvertible where Wrapped: SQLValueConvertible {
    public var sqlValue: SQLValue { self?.sqlValue ?? .null }
    public static func fromSQLValue(_ value: SQLValue) -> Wrapped?? {
        if case .null = value { return .some(nil) }
        return Wrapped.fromSQLValue(value).map { .some($0) }
    }
}
