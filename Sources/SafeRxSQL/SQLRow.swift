/// The names of a result's columns, shared by its rows.
public final class SQLColumns: Sendable {
    /// The names, in select-list order.
    public let names: [String]
    let lowercased: [String]

    public init(_ names: [String]) {
        self.names = names
        self.lowercased = names.map { $0.lowercased() }
    }

    /// The position of `name` (case-insensitive, the first of equal names), or nil.
    public func index(of name: String) -> Int? {
        if let i = names.firstIndex(of: name) { return i }
        let l = name.lowercased()
        return lowercased.firstIndex(of: l)
    }
}

/// One row of a result, read by position or by column name.
///
/// Reading a column as a type it does not convert to (a `NULL` into a non-optional, text into an integer) is a
/// programming error, as in GRDB: the schema decides what a column holds, and a query that reads it otherwise is
/// wrong. Read optional types where a column may be `NULL`.
public struct SQLRow: Sendable {
    /// The columns' names.
    public let columns: SQLColumns
    /// The values, in the order of ``columns``.
    public let values: [SQLValue]

    public init(columns: SQLColumns, values: [SQLValue]) {
        self.columns = columns
        self.values = values
    }

    /// The number of columns.
    public var count: Int { values.count }

    /// The value at `index`, converted.
    public subscript<T: SQLValueConvertible>(_ index: Int) -> T {
        Self.convert(values[index], column: columns.names[index])
    }

    /// The value of the column named `name` (case-insensitive), converted.
    public subscript<T: SQLValueConvertible>(_ name: String) -> T {
        guard let i = columns.index(of: name) else {
            // A missing column reads as NULL, as in GRDB: an optional is nil, anything else a programming error.
            return Self.convert(.null, column: name)
        }
        return Self.convert(values[i], column: name)
    }

    static func convert<T: SQLValueConvertible>(_ value: SQLValue, column: String) -> T {
        guard let v = T.fromSQLValue(value) else {
            fatalError("column \(column) holds \(value.storageClass), which does not convert to \(T.self)")
        }
        return v
    }
}

extension SQLValue {
    /// The storage class's name, for error messages (never the value: it may be PHI ciphertext or an id).
    public var storageClass: String {
        switch self {
        case .null: "NULL"
        case .integer: "an integer"
        case .real: "a real"
        case .text: "text"
        case .blob: "a blob"
        }
    }
}

/// A statement's positional arguments (`?` placeholders, in order).
public struct SQLArguments: Sendable, ExpressibleByArrayLiteral {
    /// The values, in placeholder order.
    public var values: [SQLValue]

    public init() { values = [] }

    public init(values: [SQLValue]) { self.values = values }

    public init(_ values: [any SQLValueConvertible]) { self.values = values.map(\.sqlValue) }

    public init(_ values: some Sequence<some SQLValueConvertible>) { self.values = values.map(\.sqlValue) }

    public init(arrayLiteral elements: (any SQLValueConvertible)?...) {
        values = elements.map { $0?.sqlValue ?? .null }
    }

    public var isEmpty: Bool { values.isEmpty }

    public static func + (lhs: SQLArguments, rhs: SQLArguments) -> SQLArguments { SQLArguments(values: lhs.values + rhs.values) }

    public static func += (lhs: inout SQLArguments, rhs: SQLArguments) { lhs.values += rhs.values }

    public mutating func append(_ value: (any SQLValueConvertible)?) { values.append(value?.sqlValue ?? .null) }
}

/// A statement of one connection, by its SQL (engines cache the prepared statement by its text).
///
/// Valid only inside the read or write that made it, like the connection.
public struct SQLStatement {
    public let connection: any SQLConnection
    public let sql: String

    /// Runs the statement with `arguments`.
    /// - throws: the engine's error.
    public func execute(arguments: SQLArguments = []) throws {
        try connection.execute(sql: sql, arguments: arguments)
    }
}

extension SQLRow {
    /// Every row the query returns.
    public static func fetchAll(_ db: any SQLConnection, sql: String, arguments: SQLArguments = []) throws -> [SQLRow] {
        let cursor = try db.makeCursor(sql: sql, arguments: arguments)
        var rows: [SQLRow] = []
        while let row = try cursor.next() { rows.append(row) }
        return rows
    }

    /// The first row the query returns, or nil.
    public static func fetchOne(_ db: any SQLConnection, sql: String, arguments: SQLArguments = []) throws -> SQLRow? {
        try db.makeCursor(sql: sql, arguments: arguments).next()
    }

    /// The rows one at a time, without holding them all (for scans over whole tables).
    public static func fetchCursor(_ db: any SQLConnection, sql: String, arguments: SQLArguments = []) throws -> any SQLCursor {
        try db.makeCursor(sql: sql, arguments: arguments)
    }

    public static func fetchAll(_ statement: SQLStatement, arguments: SQLArguments = []) throws -> [SQLRow] {
        try fetchAll(statement.connection, sql: statement.sql, arguments: arguments)
    }

    public static func fetchOne(_ statement: SQLStatement, arguments: SQLArguments = []) throws -> SQLRow? {
        try fetchOne(statement.connection, sql: statement.sql, arguments: arguments)
    }

    public static func fetchCursor(_ statement: SQLStatement, arguments: SQLArguments = []) throws -> any SQLCursor {
        try fetchCursor(statement.connection, sql: statement.sql, arguments: arguments)
    }
}

extension SQLValueConvertible {
    /// The first column of every row, converted; rows whose value does not convert (`NULL` into a non-optional) are
    /// skipped, as in GRDB.
    public static func fetchAll(_ db: any SQLConnection, sql: String, arguments: SQLArguments = []) throws -> [Self] {
        let cursor = try db.makeCursor(sql: sql, arguments: arguments)
        var values: [Self] = []
        while let row = try cursor.next() {
            if let v = Self.fromSQLValue(row.values.first ?? .null) { values.append(v) }
        }
        return values
    }

    /// The first column of the first row, converted; nil when there is no row or the value is `NULL`.
    public static func fetchOne(_ db: any SQLConnection, sql: String, arguments: SQLArguments = []) throws -> Self? {
        guard let row = try db.makeCursor(sql: sql, arguments: arguments).next() else { return nil }
        return Self.fromSQLValue(row.values.first ?? .null)
    }

    public static func fetchSet(_ db: any SQLConnection, sql: String, arguments: SQLArguments = []) throws -> Set<Self> where Self: Hashable {
        Set(try fetchAll(db, sql: sql, arguments: arguments))
    }

    public static func fetchAll(_ statement: SQLStatement, arguments: SQLArguments = []) throws -> [Self] {
        try fetchAll(statement.connection, sql: statement.sql, arguments: arguments)
    }

    public static func fetchOne(_ statement: SQLStatement, arguments: SQLArguments = []) throws -> Self? {
        try fetchOne(statement.connection, sql: statement.sql, arguments: arguments)
    }
}
