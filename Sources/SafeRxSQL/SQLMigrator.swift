/// Runs a schema's migrations, in order, each once, each in its own transaction.
///
/// A store records the identifiers it ran in `grdb_migrations`: the table (and its layout) of GRDB's migrator,
/// which created every store before SafeRx had a second engine, so that existing stores migrate on.
public struct SQLMigrator: Sendable {
    /// The table of the migrations a store has run.
    public static let table = "grdb_migrations"

    var migrations: [(id: String, body: @Sendable (any SQLConnection) throws -> Void)] = []

    public init() {}

    /// Adds a migration; `identifier` must never change once released (stores record it).
    public mutating func registerMigration(_ identifier: String, _ body: @escaping @Sendable (any SQLConnection) throws -> Void) {
        precondition(!migrations.contains { $0.id == identifier }, "migration \(identifier) registered twice")
        migrations.append((identifier, body))
    }

    /// Every identifier, in order.
    public var identifiers: [String] { migrations.map(\.id) }

    /// Runs the migrations `db` has not run yet.
    /// - throws: the failing migration's error; migrations before it stay applied.
    public func migrate(_ db: any SQLDatabase) throws {
        try db.write { conn in
            try conn.execute(sql: "CREATE TABLE IF NOT EXISTS \(Self.table) (identifier TEXT NOT NULL PRIMARY KEY)")
        }
        for (id, body) in migrations {
            try db.write { conn in
                let done = try Bool.fetchOne(
                    conn, sql: "SELECT EXISTS (SELECT 1 FROM \(Self.table) WHERE identifier = ?)", arguments: [id]) ?? false
                guard !done else { return }
                try body(conn)
                try conn.execute(sql: "INSERT INTO \(Self.table) (identifier) VALUES (?)", arguments: [id])
            }
        }
    }
}
