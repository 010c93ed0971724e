import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
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

    /// One configuration per host of the URL, tried in order.
    let configurations: [PostgresConnection.Configuration]
    /// Only a server that accepts writes will do (`target_session_attrs=read-write`).
    let readWrite: Bool
    let logger: Logger
    let group: any EventLoopGroup
    let threads: NIOThreadPool
    let idle = Mutex<[PostgresConnection]>([])
    let slots: DispatchSemaphore
    let maxConnections: Int
    let nextID = Atomic<Int>(1)
    let closed = Atomic<Bool>(false)
    /// This process's writers queue here first, so that they do not each hold a pooled connection while they wait
    /// for the database's lock.
    let writer = NSLock()
    /// Where the database is, without its password (for messages and logs).
    public let location: String

    /// Connects to the database that `url` names (`postgres://user:password@host:port/database`, see
    /// ``PostgreSQLURL`` for several hosts, TLS and `target_session_attrs`).
    ///
    /// - parameter url: a `postgres://` or `postgresql://` URL; the password may also come from `PGPASSWORD`.
    /// - parameter connections: the most connections this process opens.
    /// - throws: ``PostgreSQLError`` when the URL is malformed, its TLS files cannot be read, or no host answers.
    public init(url: String, connections: Int = 8, logger: Logger = Logger(label: "saferx.postgres")) throws {
        let parsed = try PostgreSQLURL(url)
        self.location = parsed.redacted
        let tls = try Self.tls(parsed)
        self.configurations = parsed.hosts.map { host in
            var config = PostgresConnection.Configuration(
                host: host.name, port: host.port, username: parsed.user, password: parsed.password, database: parsed.database, tls: tls)
            config.options.connectTimeout = .seconds(parsed.connectTimeout)
            return config
        }
        self.readWrite = parsed.readWrite
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup.singleton
        self.threads = NIOThreadPool(numberOfThreads: 2)
        self.threads.start()
        self.slots = DispatchSemaphore(value: max(2, connections))
        self.maxConnections = connections
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

    /// The TLS mode `url` asks for, as libpq reads `sslmode`: `require` encrypts without checking the certificate,
    /// `verify-ca` checks it against the trusted roots, `verify-full` also checks that it names the host.
    static func tls(_ url: PostgreSQLURL) throws(PostgreSQLError) -> PostgresConnection.Configuration.TLS {
        guard url.sslMode != .disable else { return .disable }
        var config = TLSConfiguration.makeClientConfiguration()
        switch url.sslMode {
        case .disable: break
        case .prefer, .require: config.certificateVerification = .none
        case .verifyCA: config.certificateVerification = .noHostnameVerification
        case .verifyFull: config.certificateVerification = .fullVerification
        }
        if let file = url.sslRootCert {
            do {
                config.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(file))
            } catch {
                throw .badURL("sslrootcert \(file) is not a readable PEM file of certificates")
            }
        }
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: config)
        } catch {
            throw .badURL("the TLS settings of the database URL are not usable: \(error)")
        }
        return url.sslMode == .prefer ? .prefer(context) : .require(context)
    }

    /// Opens a connection to the first host of the URL that answers (and, with `target_session_attrs=read-write`,
    /// accepts writes: a standby in recovery or a server made read-only is passed over).
    func connect() throws -> PostgresConnection {
        var failures: [String] = []
        for config in configurations {
            let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
            let name = "\(config.host ?? "?"):\(config.port ?? 0)"
            let conn: PostgresConnection
            do {
                conn = try PostgresConnection.connect(on: group.next(), configuration: config, id: id, logger: logger).wait()
            } catch {
                failures.append("\(name): \(PostgreSQLError.describe(error))")
                continue
            }
            guard readWrite else { return conn }
            do {
                let only = try PostgreSQLConnection(conn, logger: logger).value("SHOW transaction_read_only")
                if only == "off" { return conn }
                failures.append("\(name): read-only (a standby)")
            } catch {
                failures.append("\(name): \(PostgreSQLError.describe(error))")
            }
            let closing: EventLoopFuture<Void> = conn.close()
            _ = try? closing.wait()
        }
        throw PostgreSQLError.connection("cannot connect to \(location): " + failures.joined(separator: "; "))
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

    /// Runs a transaction: `begin` on a pooled connection, then `body`. A pooled connection found dead at `begin`
    /// (its server went away: a restart, a failover) is dropped and the transaction begins again on a new one, to
    /// whichever host now answers; nothing of the transaction had reached the server. A connection lost later is
    /// an error for the caller: whether a commit in flight took effect is not known.
    func transaction<T>(_ begin: String, _ body: (PostgreSQLConnection) throws -> T) throws -> T {
        var attempts = 0, connects = 0
        while true {
            attempts += 1
            var begun = false
            // With no idle connection a failure before `begin` means no host answered (as the URL asks).
            let fresh = idle.withLock { $0.isEmpty }
            do {
                return try withConnection { conn in
                    let c = PostgreSQLConnection(conn, logger: logger)
                    do {
                        try c.run(begin)
                    } catch {
                        // A pooled connection whose server is gone, or (after a failover) one that now only reads.
                        let closing: EventLoopFuture<Void> = conn.close()
                        _ = closing
                        throw error
                    }
                    begun = true
                    return try body(c)
                }
            } catch StaleConnection.readOnly {
                // Checked by the body before it did anything: the server is a standby now.
                guard attempts <= slotsCount + 3 else {
                    throw PostgreSQLError.connection("no host of \(location) accepts writes (target_session_attrs=read-write)")
                }
                drainIdle()
            } catch let error as PostgreSQLError {
                guard !begun, error.isUnavailable, attempts <= slotsCount + 3 else { throw error }
                drainIdle()
                if fresh {
                    // While a standby is being promoted no host may accept writes yet: three tries a second apart,
                    // then the caller answers 503 (try again).
                    connects += 1
                    guard connects < 3 else { throw error }
                    Thread.sleep(forTimeInterval: 1)
                }
            }
        }
    }

    /// Thrown inside ``transaction(_:_:)`` when the connection is to a server that no longer accepts writes.
    enum StaleConnection: Error { case readOnly }

    /// How many connections this process may open (and so how many dead ones the pool may hold).
    var slotsCount: Int { max(2, maxConnections) }

    /// Closes every idle connection: after one is found dead the others (to the same server) are too.
    func drainIdle() {
        let conns = idle.withLock { c in
            defer { c.removeAll() }
            return c
        }
        for conn in conns where !conn.isClosed { let closing: EventLoopFuture<Void> = conn.close(); _ = closing }
    }

    func release(_ conn: PostgresConnection) {
        if conn.isClosed || closed.load(ordering: .relaxed) {
            if !conn.isClosed { let closing: EventLoopFuture<Void> = conn.close(); _ = closing }
            return
        }
        idle.withLock { $0.append(conn) }
    }

    public func read<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") { c in
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
        return try transaction("BEGIN") { c in
            do {
                // The lock, and (one round trip) whether this server accepts writes at all: after a failover a
                // pooled connection may lead to the old primary come back as a standby.
                let readOnly = try c.value("SELECT current_setting('transaction_read_only') FROM (SELECT pg_advisory_xact_lock(\(Self.writeLockKey))) AS l")
                if readOnly == "on" {
                    try? c.run("ROLLBACK")
                    c.conn.close().whenComplete { _ in }
                    throw StaleConnection.readOnly
                }
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

    /// The server could not be reached or went away (class 08 and 57P0x: shutdown, crash, failover).
    public var isUnavailable: Bool {
        switch self {
        case .connection: true
        case .statement(let state, _, _): state.hasPrefix("08") || state.hasPrefix("57P0")
        case .badURL: false
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

/// A libpq-style connection URL, parsed: `postgres://user:password@host:port[,host:port...]/database?options`.
///
/// Options understood (as libpq spells them): `sslmode` (`disable`, `prefer`, `require`, `verify-ca`,
/// `verify-full`), `sslrootcert` (a PEM file of the CA certificates to trust; the system's roots otherwise),
/// `target_session_attrs` (`any`, or `read-write`/`primary`: connect to the first host that accepts writes, which is
/// how SafeRx finds the new primary after a failover), `connect_timeout` (seconds). Any other option is refused, so
/// that a misspelt `sslmode` cannot silently connect in clear.
struct PostgreSQLURL {
    struct Host: Equatable {
        var name: String
        var port: Int
    }

    enum SSLMode: String {
        case disable, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    var hosts: [Host]
    var user: String
    var password: String?
    var database: String
    var sslMode: SSLMode = .disable
    var sslRootCert: String?
    /// Only a server that accepts writes will do (`target_session_attrs=read-write` or `primary`).
    var readWrite = false
    var connectTimeout: Int64 = 10

    init(_ url: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(PostgreSQLError) {
        let usage = "--database must be a postgres://user:password@host:port/database URL"
        guard let colon = url.range(of: "://"), ["postgres", "postgresql"].contains(url[..<colon.lowerBound].lowercased()) else {
            throw .badURL(usage)
        }
        var rest = Substring(url[colon.upperBound...])
        var query = Substring("")
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        var path = Substring("")
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        var user: String?, password: String?
        if let at = rest.lastIndex(of: "@") {
            let info = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let c = info.firstIndex(of: ":") {
                user = Self.decode(info[..<c])
                password = Self.decode(info[info.index(after: c)...])
            } else {
                user = Self.decode(info)
            }
        }
        var hosts: [Host] = []
        for item in rest.split(separator: ",", omittingEmptySubsequences: false) {
            var name = Substring(item), port = 5432
            if name.hasPrefix("["), let close = name.firstIndex(of: "]") {
                let after = name[name.index(after: close)...]
                name = name[name.index(after: name.startIndex)..<close]
                if after.hasPrefix(":") {
                    guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { throw .badURL("the database URL has a bad port: \(after.dropFirst())") }
                    port = p
                }
            } else if let c = name.lastIndex(of: ":") {
                guard let p = Int(name[name.index(after: c)...]), (1...65535).contains(p) else {
                    throw .badURL("the database URL has a bad port: \(name[name.index(after: c)...])")
                }
                port = p
                name = name[..<c]
            }
            guard !name.isEmpty else { throw .badURL("the database URL names no host") }
            hosts.append(Host(name: Self.decode(name), port: port))
        }
        guard !hosts.isEmpty else { throw .badURL("the database URL names no host") }
        let database = Self.decode(path)
        guard !database.isEmpty else { throw .badURL("the database URL names no database (postgres://host:port/DATABASE)") }
        self.hosts = hosts
        self.user = user ?? environment["PGUSER"] ?? "postgres"
        self.password = password ?? environment["PGPASSWORD"]
        self.database = database
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = Self.decode(parts[0]), value = parts.count > 1 ? Self.decode(parts[1]) : ""
            switch key {
            case "sslmode":
                guard let mode = SSLMode(rawValue: value) else {
                    throw .badURL("sslmode=\(value) is not one of disable, prefer, require, verify-ca, verify-full")
                }
                sslMode = mode
            case "sslrootcert":
                sslRootCert = value
            case "target_session_attrs":
                switch value {
                case "any": readWrite = false
                case "read-write", "primary": readWrite = true
                default: throw .badURL("target_session_attrs=\(value) is not one of any, read-write, primary")
                }
            case "connect_timeout":
                guard let t = Int64(value), t > 0 else { throw .badURL("connect_timeout=\(value) is not a number of seconds") }
                connectTimeout = t
            default:
                throw .badURL("the database URL has an option SafeRx does not know: \(key) (known: sslmode, sslrootcert, target_session_attrs, connect_timeout)")
            }
        }
        if sslRootCert != nil, sslMode == .disable {
            throw .badURL("sslrootcert is given but sslmode=disable: say sslmode=verify-full")
        }
    }

    static func decode(_ s: Substring) -> String { String(s).removingPercentEncoding ?? String(s) }

    /// `url` naming database `name` instead, with its hosts and options unchanged.
    static func replacingDatabase(in url: String, with name: String) throws(PostgreSQLError) -> String {
        _ = try PostgreSQLURL(url)
        let afterScheme = url.range(of: "://")!.upperBound
        let query = url[afterScheme...].firstIndex(of: "?") ?? url.endIndex
        let slash = url[afterScheme..<query].firstIndex(of: "/") ?? query
        return String(url[..<slash]) + "/" + name + String(url[query...])
    }

    /// The URL without its password.
    var redacted: String {
        "postgres://\(user)@" + hosts.map { "\($0.name):\($0.port)" }.joined(separator: ",") + "/\(database)"
    }
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
        return try PostgreSQLURL.replacingDatabase(in: serverURL, with: name)
    }
}
