import Foundation
import SafeRxSQL
import Testing

@testable import SafeRxPostgres

/// The PostgreSQL engine's connection string, as operators write it (libpq's URL form): several hosts for a primary
/// and its standby, TLS with a CA of the operator's, and options SafeRx does not know refused rather than ignored.
@Suite("PostgreSQL connection URLs")
struct PostgreSQLConnectionTests {
    @Test("a multi-host URL with options parses as libpq reads it; the password never shows")
    func multiHost() throws {
        let url = try PostgreSQLURL(
            "postgresql://saferx:s%40cret@db1.internal:5433,db2.internal,[::1]:6000/pharmacy?target_session_attrs=read-write&sslmode=verify-full&sslrootcert=/etc/saferx/ca.pem&connect_timeout=3",
            environment: [:])
        #expect(url.hosts == [.init(name: "db1.internal", port: 5433), .init(name: "db2.internal", port: 5432), .init(name: "::1", port: 6000)])
        #expect(url.user == "saferx" && url.password == "s@cret" && url.database == "pharmacy")
        #expect(url.readWrite && url.sslMode == .verifyFull && url.sslRootCert == "/etc/saferx/ca.pem" && url.connectTimeout == 3)
        #expect(url.redacted == "postgres://saferx@db1.internal:5433,db2.internal:5432,::1:6000/pharmacy")
        #expect(!url.redacted.contains("cret"))
        // The password may come from the environment, as libpq's PGPASSWORD.
        #expect(try PostgreSQLURL("postgres://app@h/db", environment: ["PGPASSWORD": "pw"]).password == "pw")
        #expect(try PostgreSQLURL.replacingDatabase(in: "postgres://u@a:1,b:2/postgres?sslmode=require", with: "saferx") == "postgres://u@a:1,b:2/saferx?sslmode=require")
    }

    @Test("a URL SafeRx cannot honour exactly is refused with what is wrong, never half-understood")
    func refused() {
        let cases: [(String, String)] = [
            ("mysql://h/db", "postgres://"),
            ("postgres://h:99999/db", "bad port"),
            ("postgres://h", "names no database"),
            ("postgres://h/db?sslmode=allow-ish", "sslmode=allow-ish"),
            ("postgres://h/db?ssl_mode=require", "ssl_mode"),
            ("postgres://h/db?target_session_attrs=standby", "target_session_attrs=standby"),
            ("postgres://h/db?sslrootcert=/ca.pem", "sslmode=disable"),
        ]
        for (text, expected) in cases {
            do {
                _ = try PostgreSQLURL(text, environment: [:])
                Issue.record("\(text) was accepted")
            } catch {
                #expect(error.description.contains(expected), "\(text): \(error.description)")
            }
        }
    }

    @Test("TLS: verify-full with the operator's CA encrypts; a host the certificate does not name, or another CA, is refused",
          .enabled(if: TestEngine.postgresServer != nil && TestEngine.postgresDataDirectory != nil))
    func tls() throws {
        let server = try #require(TestEngine.postgresServer), data = try #require(TestEngine.postgresDataDirectory)
        let ca = data.appendingPathComponent("tls/ca.crt").path
        // The test cluster's certificate names localhost (scripts/postgres-cluster.sh), not 127.0.0.1.
        let byName = server.replacingOccurrences(of: "@127.0.0.1:", with: "@localhost:")
        let verified = try PostgreSQLDatabase(url: byName + "?sslmode=verify-full&sslrootcert=\(ca)", connections: 2)
        defer { try? verified.close() }
        #expect(try verified.read { db in try Bool.fetchOne(db, sql: "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") } == true)
        // Without TLS the same server answers in clear (sslmode=disable is the operator's explicit choice).
        let clear = try PostgreSQLDatabase(url: server, connections: 2)
        defer { try? clear.close() }
        #expect(try clear.read { db in try Bool.fetchOne(db, sql: "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") } == false)
        // By address, verify-full refuses (the certificate does not name 127.0.0.1); verify-ca (no name check) accepts.
        #expect(throws: PostgreSQLError.self) { try PostgreSQLDatabase(url: server + "?sslmode=verify-full&sslrootcert=\(ca)", connections: 2) }
        let caOnly = try PostgreSQLDatabase(url: server + "?sslmode=verify-ca&sslrootcert=\(ca)", connections: 2)
        try? caOnly.close()
        // A certificate from another CA is refused even without the name check.
        #expect(throws: PostgreSQLError.self) {
            try PostgreSQLDatabase(url: server + "?sslmode=verify-ca&sslrootcert=/etc/ssl/certs/ca-certificates.crt", connections: 2)
        }
        // A CA file that is not one is an error that says so.
        do {
            _ = try PostgreSQLDatabase(url: server + "?sslmode=verify-full&sslrootcert=/etc/hostname", connections: 2)
            Issue.record("a file that is no certificate was accepted as a CA")
        } catch let e as PostgreSQLError {
            #expect(e.description.contains("sslrootcert"), "\(e.description)")
        }
    }
}
