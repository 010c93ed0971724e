/// The SQL a statement is written in: SafeRx writes SQL both engines accept, and asks the dialect where they
/// differ (types in DDL, upserts).
public enum SQLDialect: String, Sendable {
    case sqlite
    case postgres
}

/// Rows of a query one at a time. Valid only inside the read or write that made it.
public protocol SQLCursor: AnyObject {
    /// The next row, or nil after the last.
    func next() throws -> SQLRow?
}

extension SQLCursor {
    /// Calls `body` with every remaining row.
    public func forEach(_ body: (SQLRow) throws -> Void) throws {
        while let row = try next() { try body(row) }
    }
}

/// One engine connection inside a read or a write (a transaction unless the write said otherwise).
///
/// Only valid inside the closure it was passed to; it must not escape. Statements take `?` placeholders.
public protocol SQLConnection: AnyObject {
    /// The engine's SQL dialect.
    var dialect: SQLDialect { get }

    /// Runs one statement, or with no arguments, a script of several (migrations). A statement with arguments is one
    /// statement (engines prepare it once and keep it).
    /// - throws: the engine's error; in a write, the whole transaction then rolls back when the error leaves it.
    func execute(sql: String, arguments: SQLArguments) throws

    /// Prepares (or takes from the cache) a query and starts it.
    /// - throws: the engine's error.
    func makeCursor(sql: String, arguments: SQLArguments) throws -> any SQLCursor

    /// The number of rows the last `INSERT`, `UPDATE` or `DELETE` changed.
    var changesCount: Int { get }

    /// Runs `action` once the current transaction has committed (never if it rolls back).
    func afterCommit(_ action: @escaping @Sendable () -> Void)

    /// Runs `action` if the current transaction rolls back (never if it commits).
    func afterRollback(_ action: @escaping @Sendable () -> Void)
}

extension SQLConnection {
    /// Runs one statement (or a script, without arguments).
    public func execute(sql: String) throws { try execute(sql: sql, arguments: []) }

    /// The statement for `sql`; engines keep it prepared.
    public func cachedStatement(sql: String) throws -> SQLStatement { SQLStatement(connection: self, sql: sql) }
}

/// A database: reads on a pool of connections, writes serialised in transactions.
///
/// Synchronous reads run on the calling thread (SafeRx's hot path reads synchronously; see ARCHITECTURE.md). Writes
/// come in both forms: the asynchronous one is what request handlers use; the synchronous one is for work that is
/// itself synchronous (opening the key ring).
public protocol SQLDatabase: Sendable {
    /// The engine's SQL dialect.
    var dialect: SQLDialect { get }

    /// Runs `body` in a read-only transaction that sees one snapshot.
    /// - throws: what `body` throws, or the engine's error.
    func read<T>(_ body: (any SQLConnection) throws -> T) throws -> T

    /// Runs `body` in one write transaction, on the calling thread.
    /// - throws: what `body` throws (the transaction is rolled back), or the engine's error.
    func write<T>(_ body: (any SQLConnection) throws -> T) throws -> T

    /// Runs `body` in one write transaction; writes are serialised.
    /// - throws: what `body` throws (the transaction is rolled back), `CancellationError` when the task was
    ///   cancelled before the write began, or the engine's error.
    func write<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) throws -> T) async throws -> T

    /// Runs `body` on the writer connection outside any transaction (maintenance statements such as SQLite's
    /// `PRAGMA wal_checkpoint`).
    func writeWithoutTransaction<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) throws -> T) async throws -> T

    /// Closes every connection; later calls fail.
    func close() throws
}

/// An engine's error that can say what failed without any value of a row: SQLite's result code and message,
/// PostgreSQL's SQLSTATE, and the statement's text (SafeRx's SQL carries values only as arguments). What the store
/// logs when a statement fails.
public protocol SQLEngineError: Error {
    /// What failed, safe for logs.
    var logDescription: String { get }
    /// The database could not be reached (a restart, a failover in progress), as opposed to a statement it refused:
    /// the request may succeed if tried again shortly.
    var isUnavailable: Bool { get }
}

extension SQLEngineError {
    public var isUnavailable: Bool { false }
}
