import Foundation
import Logging
import NIOCore
import PostgresNIO
import SafeRxSQL

/// One pooled connection inside a read or a write; valid only inside the closure it was passed to.
final class PostgreSQLConnection: SQLConnection {
    let conn: PostgresConnection
    let logger: Logger
    var dialect: SQLDialect { .postgres }
    private(set) var changesCount = 0
    var onCommit: [@Sendable () -> Void] = []
    var onRollback: [@Sendable () -> Void] = []

    init(_ conn: PostgresConnection, logger: Logger) {
        self.conn = conn
        self.logger = logger
    }

    /// Waits for a query's result, or fails as soon as the connection is closed. PostgresNIO writes a query to its
    /// channel without a write promise: on a channel the server has already closed (it crashed, restarted or was
    /// failed over while the connection sat in the pool) the query is dropped and its future never completes, so a
    /// plain `wait()` would hold the request, and the process's write lock, forever.
    /// - throws: the query's error, or ``PostgreSQLError/connection(_:)`` when the connection closed first.
    static func wait<T: Sendable>(for future: EventLoopFuture<T>, on conn: PostgresConnection) throws -> T {
        let outcome = future.eventLoop.makePromise(of: T.self)
        future.cascade(to: outcome)
        // A promise completes once: whichever comes first, the result or the closed connection, decides. A check a
        // second while the query is pending, cancelled with it (a callback on `closeFuture` per query would stay
        // registered, holding every result, for as long as the pooled connection lives).
        let watch = future.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            if conn.isClosed { outcome.fail(PostgreSQLError.connection("the database server closed the connection")) }
        }
        outcome.futureResult.whenComplete { _ in watch.cancel() }
        if conn.isClosed { outcome.fail(PostgreSQLError.connection("the database server closed the connection")) }
        return try outcome.futureResult.wait()
    }

    /// Runs `sql` as it is (transaction control), without translation or arguments.
    func run(_ sql: String) throws {
        do {
            _ = try Self.wait(for: conn.query(PostgresQuery(unsafeSQL: sql), logger: logger), on: conn)
        } catch {
            throw PostgreSQLError.from(error, sql: sql)
        }
    }

    /// The first column of the first row of `sql`, run as it is, as text (`SHOW ...`).
    func value(_ sql: String) throws -> String? {
        let rows: PostgresQueryResult
        do {
            rows = try Self.wait(for: conn.query(PostgresQuery(unsafeSQL: sql), logger: logger), on: conn)
        } catch {
            throw PostgreSQLError.from(error, sql: sql)
        }
        return try rows.rows.first.flatMap { row in try row.first.map { try $0.decode(String.self) } }
    }

    func execute(sql: String, arguments: SQLArguments) throws {
        if arguments.isEmpty {
            // Possibly a script (migrations): one statement at a time.
            for statement in PostgreSQLDialect.statements(sql) {
                changesCount = try query(statement, arguments).metadata.rows ?? 0
            }
        } else {
            changesCount = try query(sql, arguments).metadata.rows ?? 0
        }
    }

    func makeCursor(sql: String, arguments: SQLArguments) throws -> any SQLCursor {
        let result = try query(sql, arguments)
        return PostgreSQLCursor(result.rows)
    }

    func afterCommit(_ action: @escaping @Sendable () -> Void) { onCommit.append(action) }

    func afterRollback(_ action: @escaping @Sendable () -> Void) { onRollback.append(action) }

    func query(_ sql: String, _ arguments: SQLArguments) throws -> PostgresQueryResult {
        let text = try PostgreSQLDialect.translate(sql)
        var binds = PostgresBindings(capacity: arguments.values.count)
        for value in arguments.values {
            switch value {
            case .null: binds.appendNull()
            case .integer(let i): binds.append(i)
            case .real(let d): binds.append(d)
            case .text(let s): binds.append(s)
            case .blob(let d): binds.append(ByteBuffer(bytes: d))
            }
        }
        do {
            return try Self.wait(for: conn.query(PostgresQuery(unsafeSQL: text, binds: binds), logger: logger), on: conn)
        } catch {
            throw PostgreSQLError.from(error, sql: text)
        }
    }
}

/// The rows of a finished query (postgres-nio's future-based query collects them), converted as they are read.
final class PostgreSQLCursor: SQLCursor {
    let rows: [PostgresRow]
    var index = 0
    var columns: SQLColumns?

    init(_ rows: [PostgresRow]) { self.rows = rows }

    func next() throws -> SQLRow? {
        guard index < rows.count else { return nil }
        let row = rows[index]
        index += 1
        let columns = self.columns ?? SQLColumns(row.map(\.columnName))
        self.columns = columns
        var values: [SQLValue] = []
        values.reserveCapacity(columns.names.count)
        for cell in row { values.append(try Self.value(cell)) }
        return SQLRow(columns: columns, values: values)
    }

    static func value(_ cell: PostgresCell) throws -> SQLValue {
        guard var bytes = cell.bytes else { return .null }
        do {
            switch cell.dataType {
            case .int2, .int4, .int8, .oid:
                return .integer(try cell.decode(Int64.self))
            case .float4, .float8:
                return .real(try cell.decode(Double.self))
            case .bool:
                return .integer(try cell.decode(Bool.self) ? 1 : 0)
            case .bytea:
                return .blob(Data(bytes.readBytes(length: bytes.readableBytes) ?? []))
            case .numeric:
                let d = try cell.decode(Decimal.self)
                let n = NSDecimalNumber(decimal: d)
                return d == Decimal(n.int64Value) ? .integer(n.int64Value) : .real(n.doubleValue)
            default:
                return .text(try cell.decode(String.self))
            }
        } catch {
            throw PostgreSQLError.connection("column \(cell.columnName) of type \(cell.dataType) could not be read: \(error)")
        }
    }
}
