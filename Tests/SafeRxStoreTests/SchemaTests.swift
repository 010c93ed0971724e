import Foundation
import SafeRxSQL
@testable import SafeRxStore
import Testing

/// The migrations, split by feature, make exactly the schema SafeRx has always made: a migration that already ran in
/// a pharmacy's store must never change, and this pins what they create (tables, indexes, triggers, as SQL text).
@Suite("Schema") struct SchemaTests {
    static let pinned = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/schema.sql")

    @Test("a new store's schema is the pinned one (Fixtures/schema.sql), and every migration ran once")
    func pinnedSchema() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("saferx-schema-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try PharmacyStore.open(dataDirectory: dir, keyFile: dir.appendingPathExtension("master.key"))
        let (schema, migrations) = try store.dbPool.read { db in
            let rows = try SQLRow.fetchAll(
                db, sql: "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
            let text = rows.map { row -> String in
                let type: String = row[0], name: String = row[1], table: String = row[2], sql: String? = row[3]
                return "-- \(type) \(name) on \(table)\n\(sql ?? "");\n\n"
            }.joined()
            return (text, try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations"))
        }
        let expected = try String(contentsOf: Self.pinned, encoding: .utf8)
        #expect(schema == expected, "a migration changed what it creates; add a new migration instead (to re-pin, regenerate Fixtures/schema.sql)")
        #expect(migrations == Schema.migrator.identifiers)
        #expect(Set(migrations).count == migrations.count && migrations.first == "v1")
        #expect(migrations == Schema.sqliteMigrationsInBaseline, "a new migration must also run on PostgreSQL: register it for both engines")
    }
}
