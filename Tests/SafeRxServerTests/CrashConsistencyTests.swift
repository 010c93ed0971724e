import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import SafeRxModel
import SafeRxVault
import Testing

/// `kill -9` of `saferx serve` in the middle of concurrent writes, again and again, on whichever engine the pass runs
/// on (SQLite; PostgreSQL with `SAFERX_TEST_ENGINE=postgres`): every write the server acknowledged (201) is readable
/// after the restart, and the audit chain verifies after every crash. `SAFERX_CRASH_CYCLES` sets the number of
/// crashes (50 by default).
@Suite("Crash consistency")
struct CrashConsistencyTests {
    /// Four writers and the reads of every acknowledged write, from one account and one address.
    static let unlimited = ["--source-limit", "100000:1000000", "--account-limit", "100000:1000000"]

    @Test("kill -9 during concurrent writes: every acknowledged write survives, the audit chain verifies")
    func killDuringWrites() async throws {
        let cycles = Int(ProcessInfo.processInfo.environment["SAFERX_CRASH_CYCLES"] ?? "") ?? 50
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("saferx-crash-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: base) }
        let data = base.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        _ = try LiveServer.testDatabase(for: data, reopening: false)
        let cli = SafeRxCLI(keyFile: base.appendingPathComponent("secrets/master.key"), data: data)

        var acknowledged: [String] = [], lastCycle: [String] = []
        var credentials: JSON? = nil
        for cycle in 0..<cycles {
            let log = base.appendingPathComponent("server-\(cycle).log")
            let server = try cli.start(["serve", "--demo", "--port", "0", "--outbox", "-"] + Self.unlimited, log: log)
            defer { if server.isRunning { kill(server.processIdentifier, SIGKILL) } }
            let port = try await cli.waitForPort(in: log)
            if credentials == nil { credentials = try JSON.parse(Data(contentsOf: data.appendingPathComponent("demo-credentials.json"))) }
            let entry = try #require(credentials?.arrayValue?.first { $0["username"]?.stringValue == "patient001" })
            let c = TestClient(host: "127.0.0.1", port: port, configuration: .init(timeout: .seconds(30)))
            c.connect()
            let http = HTTPClient(client: c)
            let login = try await http.send(
                .post, "/auth/login", body: JSON.object(["username": "patient001", "password": entry["password"] ?? .null]).encodedString(),
                contentType: "application/json")
            let token = try #require(login.json?["access_token"]?.stringValue, "cycle \(cycle): \(login.body)")

            // Every write acknowledged before the crash is there (reads go through the gate, as anyone's).
            if cycle > 0 {
                for id in lastCycle {
                    let r = try await http.get("/fhir/Communication/\(id)", token: token)
                    #expect(r.status == 200, "cycle \(cycle): Communication/\(id) was acknowledged, then lost (\(r.status))")
                }
            }
            // Four writers; the server is killed while they write (after 150-400 ms).
            let delay = Int.random(in: 150...400)
            let killer = Task {
                try? await Task.sleep(for: .milliseconds(delay))
                kill(server.processIdentifier, SIGKILL)
            }
            let written = await withTaskGroup(of: [String].self) { group in
                for writer in 0..<4 {
                    group.addTask {
                        var ids: [String] = []
                        for i in 0..<200 {
                            let body = """
                                {"resourceType":"Communication","status":"completed","subject":{"reference":"Patient/pat-0001"},
                                 "sender":{"reference":"Patient/pat-0001"},"payload":[{"contentString":"cycle \(cycle) writer \(writer) note \(i)"}]}
                                """
                            guard let r = try? await http.send(.post, "/fhir/Communication", token: token, body: body) else { break }
                            if r.status == 201, let id = r.json?["id"]?.stringValue { ids.append(id) } else { break }
                        }
                        return ids
                    }
                }
                var all: [String] = []
                for await ids in group { all += ids }
                return all
            }
            _ = await killer.value
            server.waitUntilExit()
            await http.close()
            acknowledged += written
            lastCycle = written
            // The chain verifies after every crash (the signed head may lag the log; it never runs ahead of it).
            let (status, output) = try cli.run(["audit", "verify"])
            #expect(status == 0, "cycle \(cycle): \(output)")
        }
        #expect(acknowledged.count > cycles, "writes were acknowledged before the crashes: \(acknowledged.count)")
        // The last crash's acknowledged writes, read by a server started once more.
        let log = base.appendingPathComponent("server-final.log")
        let server = try cli.start(["serve", "--port", "0", "--outbox", "-"] + Self.unlimited, log: log)
        defer { if server.isRunning { server.terminate() } }
        let port = try await cli.waitForPort(in: log)
        let c = TestClient(host: "127.0.0.1", port: port, configuration: .init(timeout: .seconds(30)))
        c.connect()
        let http = HTTPClient(client: c)
        let entry = try #require(credentials?.arrayValue?.first { $0["username"]?.stringValue == "patient001" })
        let login = try await http.send(
            .post, "/auth/login", body: JSON.object(["username": "patient001", "password": entry["password"] ?? .null]).encodedString(),
            contentType: "application/json")
        let token = try #require(login.json?["access_token"]?.stringValue)
        var lost: [String] = []
        for id in acknowledged where try await http.get("/fhir/Communication/\(id)", token: token).status != 200 { lost.append(id) }
        #expect(lost.isEmpty, "\(lost.count) of \(acknowledged.count) acknowledged writes lost: \(lost.prefix(5))")
        await http.close()
    }
}
