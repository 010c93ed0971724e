import Foundation
import GRDB
import SafeRxSQL

/// SafeRx's embedded engine: one SQLite file in WAL mode through GRDB's `DatabasePool` (readers beside one writer).
///
/// Every connection is opened with `synchronous = FULL` (an acknowledged commit survives a power cut),
/// `secure_delete = ON` (freed pages are zeroed) and a 256 MiB memory map (readers see pages through the map instead
/// of copying them after every commit).
public final class SQLiteDatabase: SQLDatabase {
    public var dialect: SQLDialect { .sqlite }
    let pool: DatabasePool
    /// The database file.
    public let path: String

    /// Opens (creating if needed) the database at `path`.
    /// - throws: GRDB's error when the file cannot be opened.
    public init(path: String) throws {
        var config = Configuration()
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA secure_delete = ON")
            try db.execute(sql: "PRAGMA mmap_size = 268435456")
        }
        config.busyMode = .timeout(10)
        self.path = path
        self.pool = try DatabasePool(path: path, configuration: config)
    }

    public func read<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try pool.read { db in try body(SQLiteConnection(db)) }
    }

    public func write<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try pool.write { db in try body(SQLiteConnection(db)) }
    }

    public func write<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) throws -> T) async throws -> T {
        try await pool.write { db in try body(SQLiteConnection(db)) }
    }

    public func writeWithoutTransaction<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) throws -> T) async throws -> T {
        try await pool.writeWithoutTransaction { db in try body(SQLiteConnection(db)) }
    }

    public func close() throws { try pool.close() }

    /// Moves everything committed from the WAL into the database file, so that the file alone is the whole database
    /// (a snapshot about to be read as bytes).
    /// - throws: GRDB's error, or a busy checkpoint (a reader still holds an older snapshot).
    public func checkpointIntoFile() throws {
        let busy = try pool.writeWithoutTransaction { db in
            try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)").map { ($0[0] as Int) != 0 } ?? true
        }
        if busy { throw DatabaseError(resultCode: .SQLITE_BUSY, message: "the WAL could not be checkpointed into the file") }
    }

    /// Copies a consistent snapshot of the whole database into a new file at `file` (SQLite's online backup).
    /// - throws: GRDB's error.
    public func backup(to file: URL) throws {
        let target = try DatabaseQueue(path: file.path)
        try pool.backup(to: target)
        try target.close()
    }

    /// Runs `body` on the file at `path` opened read-only, without the pool (a file that is not a store yet, or a
    /// snapshot).
    /// - throws: GRDB's error when the file cannot be opened, or what `body` throws.
    public static func readOnly<T>(path: String, _ body: (any SQLConnection) throws -> T) throws -> T {
        var config = Configuration()
        config.readonly = true
        let q = try DatabaseQueue(path: path, configuration: config)
        defer { try? q.close() }
        return try q.read { db in try body(SQLiteConnection(db)) }
    }

    /// SQLite's `PRAGMA integrity_check` of the file at `path`: `["ok"]` when it is sound.
    /// - throws: GRDB's error when the file cannot be opened.
    public static func integrityCheck(path: String) throws -> [String] {
        let q = try DatabaseQueue(path: path)
        defer { try? q.close() }
        return try q.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
    }
}

/// A GRDB `Database` seen through ``SQLConnection``; valid only inside the GRDB closure that made it.
final class SQLiteConnection: SQLConnection {
    let db: Database
    var dialect: SQLDialect { .sqlite }

    init(_ db: Database) { self.db = db }

    func execute(sql: String, arguments: SQLArguments) throws {
        if arguments.isEmpty {
            // Possibly several statements (migrations): GRDB parses them one by one.
            try db.execute(sql: sql)
        } else {
            try db.cachedStatement(sql: sql).execute(arguments: Self.arguments(arguments))
        }
    }

    func makeCursor(sql: String, arguments: SQLArguments) throws -> any SQLCursor {
        let statement = try db.cachedStatement(sql: sql)
        let columns = SQLColumns(statement.columnNames)
        return SQLiteCursor(try Row.fetchCursor(statement, arguments: Self.arguments(arguments)), columns: columns)
    }

    var changesCount: Int { db.changesCount }

    func afterCommit(_ action: @escaping @Sendable () -> Void) {
        db.afterNextTransaction(onCommit: { _ in action() })
    }

    func afterRollback(_ action: @escaping @Sendable () -> Void) {
        db.afterNextTransaction(onCommit: { _ in }, onRollback: { _ in action() })
    }

    static func arguments(_ a: SQLArguments) -> StatementArguments {
        StatementArguments(a.values.map(\.databaseValue))
    }
}

final class SQLiteCursor: SQLCursor {
    let rows: RowCursor
    let columns: SQLColumns

    init(_ rows: RowCursor, columns: SQLColumns) {
        self.rows = rows
        self.columns = columns
    }

    func next() throws -> SQLRow? {
        guard let row = try rows.next() else { return nil }
        var values: [SQLValue] = []
        values.reserveCapacity(row.count)
        for i in 0..<row.count { values.append(SQLValue(row[i] as DatabaseValue)) }
        return SQLRow(columns: columns, values: values)
    }
}

extension SQLValue {
    init(_ v: DatabaseValue) {
        switch v.storage {
        case .null: self = .null
        case .int64(let i): self = .integer(i)
        case .double(let d): self = .real(d)
        case .string(let s): self = .text(s)
        case .blob(let d): self = .blob(d)
        }
    }

    var databaseValue: DatabaseValue {
        switch self {
        case .null: .null
        case .integer(let i): i.databaseValue
        case .real(let d): d.databaseValue
        case .text(let s): s.databaseValue
        case .blob(let d): d.databaseValue
        }
    }
}

extension DatabaseError: SQLEngineError {
    /// SQLite's result code, its message (which names tables and columns, never values) and the statement.
    public var logDescription: String { "SQLite error \(extendedResultCode.rawValue): \(message ?? "")" + (sql.map { " in: \($0.prefix(600))" } ?? "") }
}
