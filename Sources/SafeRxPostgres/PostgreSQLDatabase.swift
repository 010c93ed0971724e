import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import SafeRxSQL
import Synchronization

/// SafeRx's server engine: a PostgreSQL database through postgres-nio, shared by any number of SafeRx processes.
///
/// - Reads run on the calling thread, like SQLite's, in a `REPEATABLE READ READ ONLY` transaction (one snapshot per
///   read, as a GRDB read sees), on a connection from a small pool.
/// - Writes are serialised as SQLite serialises them, but across every process on the database: each write
///   transaction first takes one transaction-scoped advisory lock (``writeLockKey``), so the gate's
///   check-then-write steps, the audit chain's head and the outbox behave exactly as on the embedded engine however
///   many servers write. Asynchronous writes run on a thread pool of their own, never blocking the cooperative pool.
/// - Values: `BIGINT` (also booleans, as 0 and 1), `DOUBLE PRECISION`, `TEXT`, `BYTEA`; see ``SafeRxSQL/SQLValue``.
public final class PostgreSQLDatabase: SQLDatabase {
    public var dialect: SQLDialect { .postgres }

    /// The advisory lock every write transaction takes first (an arbitrary constant: "SafeRx" in ASCII).
    public static let writeLockKey: Int64 = 0x5361_6665_5278

    let configuration: PostgresConnection.Configuration
    let logger: Logger
    let group: any EventLoopGroup
    let threads: NIOThreadPool
    let idle = Mutex<[PostgresConnection]>([])
    let slots: DispatchSemaphore
    let nextID = Atomic<Int>(1)
    let closed = Atomic<Bool>(false)
    /// This process's writers queue here first, so that they do not each hold a pooled connection while they wait
    /// for the database's lock.
    let writer = NSLock()
    /// Where the database is, without its password (for messages and logs).
    public let location: String

    /// Connects to the database that `url` names (`postgres://user:password@host:port/database`).
    ///
    /// - parameter url: a `postgres://` or `postgresql://` URL; the password may also come from `PGPASSWORD`.
    /// - parameter connections: the most connections this process opens.
    /// - throws: ``PostgreSQLError`` when the URL is malformed or the first connection fails.
    public init(url: String, connections: Int = 8, logger: Logger = Logger(label: "saferx.postgres")) throws {
        let parsed = try PostgreSQLURL(url)
        self.location = parsed.redacted
        var config = PostgresConnection.Configuration(
            host: parsed.host, port: parsed.port, username: parsed.user, password: parsed.password, database: parsed.database, tls: .disable)
        config.options.connectTimeout = .seconds(10)
        self.configuration = config
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup.singleton
        self.threads = NIOThreadPool(numberOfThreads: 2)
        self.threads.start()
        self.slots = DispatchSemaphore(value: max(2, connections))
        // Fail now, with a clear message, rather than on the first request.
        let first: PostgresConnection
        do {
            first = try connect()
        } catch {
            try? threads.syncShutdownGracefully()
            throw error
        }
        idle.withLock { $0.append(first) }
    }

    deinit {
        try? close()
    }

    func connect() throws -> PostgresConnection {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        do {
            return try PostgresConnection.connect(on: group.next(), configuration: configuration, id: id, logger: logger).wait()
        } catch {
            throw PostgreSQLError.connection("cannot connect to \(location): \(PostgreSQLError.describe(error))")
        }
    }

    /// Runs `body` with a pooled connection (opened when none is idle); a connection that failed is not reused.
    func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        guard !closed.load(ordering: .relaxed) else { throw PostgreSQLError.connection("the database connection pool is closed") }
        slots.wait()
        defer { slots.signal() }
        let conn = try idle.withLock { $0.popLast() } ?? connect()
        do {
            let result = try body(conn)
            release(conn)
            return result
        } catch {
            release(conn)
            throw error
        }
    }

    func release(_ conn: PostgresConnection) {
        if conn.isClosed || closed.load(ordering: .relaxed) {
            if !conn.isClosed { let closing: EventLoopFuture<Void> = conn.close(); _ = closing }
            return
        }
        idle.withLock { $0.append(conn) }
    }

    public func read<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try withConnection { conn in
            let c = PostgreSQLConnection(conn, logger: logger)
            try c.run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            do {
                let result = try body(c)
                try c.run("COMMIT")
                return result
            } catch {
                try? c.run("ROLLBACK")
                throw error
            }
        }
    }

    public func write<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        writer.lock()
        defer { writer.unlock() }
        return try withConnection { conn in
            let c = PostgreSQLConnection(conn, logger: logger)
            try c.run("BEGIN")
            do {
                try c.run("SELECT pg_advisory_xact_lock(\(Self.writeLockKey))")
                let result = try body(c)
                try c.run("COMMIT")
                for hook in c.onCommit { hook() }
                return result
            } catch {
                try? c.run("ROLLBACK")
                for hook in c.onRollback { hook() }
                throw error
            }
        }
    }

    public func write<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) throws -> T) async throws -> T {
        try Task.checkCancellation()
        return try await threads.runIfActive { [self] in try self.write(body) }
    }

    public func writeWithoutTransaction<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) throws -> T) async throws -> T {
        try Task.checkCancellation()
        return try await threads.runIfActive { [self] in
            writer.lock()
            defer { writer.unlock() }
            return try withConnection { conn in try body(PostgreSQLConnection(conn, logger: logger)) }
        }
    }

    public func close() throws {
        guard !closed.exchange(true, ordering: .relaxed) else { return }
        let conns = idle.withLock { c in
            defer { c.removeAll() }
            return c
        }
        for conn in conns { try? conn.close().wait() }
        try? threads.syncShutdownGracefully()
    }
}

/// What went wrong talking to PostgreSQL, in words an operator can act on (never a value of a row).
public enum PostgreSQLError: SQLEngineError, CustomStringConvertible {
    /// The URL does not name a database SafeRx can connect to.
    case badURL(String)
    /// The server could not be reached or refused the connection.
    case connection(String)
    /// The server refused a statement (its text: SafeRx's SQL carries values only as `$n` arguments).
    case statement(sqlState: String, message: String, sql: String)

    public var description: String {
        switch self {
        case .badURL(let m), .connection(let m): m
        case .statement(let state, let message, let sql): "PostgreSQL error \(state): \(message), in: \(sql.prefix(600))"
        }
    }

    public var logDescription: String {
        switch self {
        case .badURL, .connection: description
        // The server's message may quote a value (`invalid input syntax ...: "..."`): the code and the statement only.
        case .statement(let state, _, let sql): "PostgreSQL error \(state) in: \(sql.prefix(600))"
        }
    }

    /// PostgreSQL's SQLSTATE class 23 (a constraint refused the row: unique, foreign key, not null, check).
    public var isConstraintViolation: Bool {
        if case .statement(let state, _, _) = self { return state.hasPrefix("23") }
        return false
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? PSQLError {
            if let message = e.serverInfo?[.message] { return message }
            return "\(e.code)"
        }
        return "\(error)"
    }

    static func from(_ error: any Error, sql: String = "") -> PostgreSQLError {
        if let e = error as? PSQLError, let info = e.serverInfo {
            return .statement(sqlState: info[.sqlState] ?? "?????", message: info[.message] ?? "\(e.code)", sql: sql)
        }
        if let e = error as? PostgreSQLError { return e }
        return .connection("PostgreSQL connection failed: \(describe(error))")
    }
}

/// A `postgres://user:password@host:port/database` URL, parsed.
struct PostgreSQLURL {
    var host: String
    var port: Int
    var user: String
    var password: String?
    var database: String

    init(_ url: String) throws(PostgreSQLError) {
        guard let c = URLComponents(string: url), let scheme = c.scheme, ["postgres", "postgresql"].contains(scheme.lowercased()) else {
            throw .badURL("--database must be a postgres://user:password@host:port/database URL")
        }
        guard let host = c.host, !host.isEmpty else { throw .badURL("the database URL names no host") }
        let database = String(c.path.drop { $0 == "/" })
        guard !database.isEmpty else { throw .badURL("the database URL names no database (postgres://host:port/DATABASE)") }
        self.host = host
        self.port = c.port ?? 5432
        self.user = c.user ?? ProcessInfo.processInfo.environment["PGUSER"] ?? "postgres"
        self.password = c.password ?? ProcessInfo.processInfo.environment["PGPASSWORD"]
        self.database = database
        if let sslmode = c.queryItems?.first(where: { $0.name == "sslmode" })?.value, sslmode != "disable" {
            throw .badURL("sslmode=\(sslmode) is not supported yet: connect over loopback or a private network (sslmode=disable)")
        }
    }

    /// The URL without its password.
    var redacted: String { "postgres://\(user)@\(host):\(port)/\(database)" }
}

extension PostgreSQLDatabase {
    /// Creates the database `name` on the server that `serverURL` names (through the database the URL names, as
    /// `createdb` does), and returns the URL of the new database. For first setup and for tests, which make one
    /// database per test.
    ///
    /// - parameter name: lower-case letters, digits and underscores.
    /// - throws: ``PostgreSQLError`` when the name is not one, the server cannot be reached, or the database exists.
    public static func createDatabase(_ name: String, serverURL: String, logger: Logger = Logger(label: "saferx.postgres")) throws -> String {
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") }) else {
            throw PostgreSQLError.badURL("a database name is lower-case letters, digits and underscores: \(name)")
        }
        let server = try PostgreSQLDatabase(url: serverURL, connections: 2, logger: logger)
        defer { try? server.close() }
        // CREATE DATABASE cannot run inside a transaction.
        try server.withConnection { conn in try PostgreSQLConnection(conn, logger: logger).run("CREATE DATABASE \(name)") }
        var c = URLComponents(string: serverURL)!
        c.path = "/" + name
        return c.string!
    }
}
