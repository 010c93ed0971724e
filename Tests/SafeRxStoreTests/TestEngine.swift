import Foundation
import SafeRxPostgres
@testable import SafeRxStore

/// The engines the gate's tests run on: SQLite always; PostgreSQL when `SAFERX_TEST_POSTGRES` names a server
/// (`scripts/test.sh` starts one with `scripts/postgres-cluster.sh` and sets it), each test in a database of its own.
enum TestEngine: String, CaseIterable, CustomStringConvertible, Sendable {
    case sqlite
    case postgres

    static var postgresServer: String? { ProcessInfo.processInfo.environment["SAFERX_TEST_POSTGRES"] }

    /// The PostgreSQL cluster's data directory, when the test script says where it is (`SAFERX_TEST_POSTGRES_DATA`).
    static var postgresDataDirectory: URL? {
        ProcessInfo.processInfo.environment["SAFERX_TEST_POSTGRES_DATA"].map { URL(fileURLWithPath: $0) }
    }

    static var available: [TestEngine] { postgresServer == nil ? [.sqlite] : [.sqlite, .postgres] }

    var description: String { rawValue }

    /// Store options for a new, empty store on this engine.
    func options() throws -> PharmacyStore.Options {
        var options = PharmacyStore.Options()
        if self == .postgres, let server = Self.postgresServer {
            let name = "saferx_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
            options.database = try PostgreSQLDatabase.createDatabase(String(name), serverURL: server)
        }
        return options
    }
}
