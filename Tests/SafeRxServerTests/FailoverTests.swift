import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import SafeRxModel
import SafeRxPostgres
import SafeRxVault
import Testing

/// A primary with a synchronous streaming standby (`scripts/postgres-standby.sh`), `saferx serve` connected through a
/// multi-host URL with `target_session_attrs=read-write`. The primary crashes mid-day, the standby is promoted, and
/// the same server carries on: every write it acknowledged is there, new writes land on the new primary, and the
/// audit chain verifies across the failover. Then the old primary is rebuilt as the new one's standby, and again
/// (`SAFERX_FAILOVER_CYCLES`, 10 by default). Runs when the test script has PostgreSQL (`SAFERX_TEST_POSTGRES`).
@Suite("Failover to a synchronous standby", .enabled(if: ProcessInfo.processInfo.environment["SAFERX_TEST_POSTGRES"] != nil))
struct FailoverTests {
    static func script(_ arguments: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["scripts/postgres-standby.sh"] + arguments
        let pipe = Pipe(), errors = Pipe()
        p.standardOutput = pipe
        p.standardError = errors
        try p.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw TestError("postgres-standby.sh \(arguments.joined(separator: " ")) failed: \(String(decoding: err, as: UTF8.self))")
        }
        return String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func freePort() -> Int {
        // Two free ports a test's lifetime apart are good enough on loopback (the cluster script fails loudly otherwise).
        Int.random(in: 20_000..<30_000)
    }

    @Test("the primary dies, the standby is promoted, SafeRx reconnects, nothing acknowledged is lost (10 times)")
    func failover() async throws {
        let cycles = Int(ProcessInfo.processInfo.environment["SAFERX_FAILOVER_CYCLES"] ?? "") ?? 10
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("saferx-ha-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        let primaryDir = "/tmp/saferx-ha-p-\(UUID().uuidString.prefix(8))", standbyDir = "/tmp/saferx-ha-s-\(UUID().uuidString.prefix(8))"
        let primaryPort = Self.freePort()
        let url = try Self.script(["start", primaryDir, String(primaryPort), standbyDir, String(primaryPort + 1)])
        defer {
            _ = try? Self.script(["stop", primaryDir, standbyDir])
            _ = try? Self.script(["stop", standbyDir, primaryDir])
            try? FileManager.default.removeItem(atPath: primaryDir)
            try? FileManager.default.removeItem(atPath: standbyDir)
            try? FileManager.default.removeItem(at: base)
        }
        #expect(url.contains(",127.0.0.1:\(primaryPort + 1)/") && url.hasSuffix("target_session_attrs=read-write"), "\(url)")
        let database = try PostgreSQLDatabase.createDatabase("saferx_ha", serverURL: url)
        #expect(database.contains("/saferx_ha?target_session_attrs=read-write"), "\(database)")

        let cli = SafeRxCLI(keyFile: base.appendingPathComponent("secrets/master.key"), data: base.appendingPathComponent("data"))
        let log = base.appendingPathComponent("server.log")
        let server = try cli.start(["serve", "--demo", "--port", "0", "--database", database, "--outbox", "-"] + CrashConsistencyTests.unlimited, log: log)
        defer { if server.isRunning { server.terminate() } }
        let port = try await cli.waitForPort(in: log, timeout: .seconds(300))
        let c = TestClient(host: "127.0.0.1", port: port, configuration: .init(timeout: .seconds(60)))
        c.connect()
        let http = HTTPClient(client: c)
        defer { Task { await http.close() } }

        let creds = try JSON.parse(Data(contentsOf: base.appendingPathComponent("data/demo-credentials.json")))
        let entry = try #require(creds.arrayValue?.first { $0["username"]?.stringValue == "pharmacist" })
        var body: [String: JSON] = ["username": "pharmacist", "password": entry["password"] ?? .null]
        if let key = entry["totp_secret"]?.stringValue.flatMap(Base32.decode) { body["otp"] = .string(TOTP(secret: key).code()) }
        let login = try await http.send(.post, "/auth/login", body: JSON.object(body).encodedString(), contentType: "application/json")
        let token = try #require(login.json?["access_token"]?.stringValue, "\(login.body)")

        func message(_ i: Int) async throws -> Reply {
            try await http.post("/fhir/Communication", token: token, .object([
                "resourceType": "Communication", "status": "completed", "subject": .object(["reference": "Patient/pat-0001"]),
                "sender": .object(["reference": "Organization/org-demo"]), "recipient": .array([.object(["reference": "Patient/pat-0001"])]),
                "payload": .array([.object(["contentString": .string("Message \(i) about your refill.")])]),
            ]))
        }
        /// A write, tried again while the database answers 503 (a failover or a restart in progress; never a 500).
        func write(_ i: Int) async throws -> String? {
            for _ in 0..<60 {
                let r = try await message(i)
                if r.status == 201 { return r.json?["id"]?.stringValue }
                #expect(r.status == 503, "while the database fails over: 503 (try again), never \(r.status): \(r.body)")
                if r.status == 503 { #expect(r.headers[.retryAfter] != nil) } else { return nil }
                try await Task.sleep(for: .milliseconds(250))
            }
            Issue.record("message \(i): no write succeeded within 15 s")
            return nil
        }

        var acknowledged: [String] = []
        var primary = (dir: primaryDir, port: primaryPort), standby = (dir: standbyDir, port: primaryPort + 1)
        for cycle in 0..<cycles {
            for i in 0..<5 { if let id = try await write(cycle * 100 + i) { acknowledged.append(id) } }
            // The primary crashes; the standby is promoted; the server is not restarted or told anything.
            _ = try Self.script(["kill", primary.dir])
            let during = try await message(cycle * 100 + 50)
            #expect(during.status == 201 || during.status == 503, "with no primary: 201 or 503, never \(during.status): \(during.body)")
            if during.status == 201, let id = during.json?["id"]?.stringValue { acknowledged.append(id) }
            _ = try Self.script(["promote", standby.dir])
            // The next writes reach the new primary through the same URL.
            for i in 60..<65 { if let id = try await write(cycle * 100 + i) { acknowledged.append(id) } }
            // Every acknowledged write is there (read back through the gate, from the new primary).
            for id in acknowledged {
                #expect(try await http.get("/fhir/Communication/\(id)", token: token).status == 200, "cycle \(cycle): Communication/\(id) acknowledged, then lost")
            }
            // The old primary comes back as the new primary's synchronous standby (rebuilt from it, as an operator would).
            try? FileManager.default.removeItem(atPath: primary.dir)
            _ = try Self.script(["start", standby.dir, String(standby.port), primary.dir, String(primary.port)])
            swap(&primary, &standby)
        }
        #expect(acknowledged.count >= cycles * 10)
        server.terminate()
        server.waitUntilExit()
        // The chain the old and the new primary hold verifies, checkpoints signed before the crash included.
        let (status, output) = try cli.run(["audit", "verify", "--database", database])
        #expect(status == 0 && output.contains("OK"), "\(output)")
    }
}
