import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import SafeRxModel
import SafeRxPharmacy
import SafeRxPostgres
import SafeRxVault
import Testing

/// Two `saferx serve` processes on one PostgreSQL database, as a pharmacy runs them behind a load balancer: a token
/// from one works on the other, and what one server decides (a sign-out, a suspension by detection) the other
/// honours on the next request; the detector's windows count both servers' requests; each notification goes out
/// once. Runs when the test script has started a PostgreSQL server (`SAFERX_TEST_POSTGRES`).
@Suite("Several servers on one PostgreSQL database", .enabled(if: ProcessInfo.processInfo.environment["SAFERX_TEST_POSTGRES"] != nil))
struct SeveralServersTests {
    @Test("tokens, sign-outs, suspensions, detection windows and the outbox are shared by every server")
    func twoServers() async throws {
        let server = try #require(ProcessInfo.processInfo.environment["SAFERX_TEST_POSTGRES"])
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("saferx-two-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: base) }
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        let name = "saferx_two_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        let database = try PostgreSQLDatabase.createDatabase(String(name), serverURL: server)
        let keyFile = base.appendingPathComponent("secrets/master.key")
        // One rule small enough to cross in a test: a pharmacist reading more than 10 patients in ten minutes.
        let rules = base.appendingPathComponent("rules.json")
        try Data("""
            {"version": 1, "touchActions": ["read", "search", "create"], "rules": [{"id": "pharmacist-bulk", "kind": "distinct-patients",
             "severity": "critical", "contain": true, "description": "two-server test", "roles": ["pharmacist"],
             "types": ["Patient"], "window": "10m", "threshold": 10}]}
            """.utf8).write(to: rules)

        func start(_ label: String) async throws -> (Process, Int, URL) {
            let data = base.appendingPathComponent(label)
            let cli = SafeRxCLI(keyFile: keyFile, data: data)
            let log = base.appendingPathComponent("\(label).log")
            let outbox = base.appendingPathComponent("\(label)-outbox")
            let p = try cli.start(
                ["serve", "--demo", "--port", "0", "--database", database, "--rules", rules.path, "--outbox", outbox.path,
                 "--security-contact", "security@pharmacy.test"], log: log)
            return (p, try await cli.waitForPort(in: log, timeout: .seconds(300)), outbox.appendingPathComponent("outbox.jsonl"))
        }
        // The first server creates and seeds the store; the second opens it as it is.
        let (a, portA, outboxA) = try await start("a")
        defer { if a.isRunning { a.terminate() } }
        let (b, portB, outboxB) = try await start("b")
        defer { if b.isRunning { b.terminate() } }
        #expect(!FileManager.default.fileExists(atPath: base.appendingPathComponent("b/demo-credentials.json").path), "the second server seeded nothing")

        let creds = try JSON.parse(Data(contentsOf: base.appendingPathComponent("a/demo-credentials.json")))
        func clientFor(_ port: Int) -> HTTPClient {
            let c = TestClient(host: "127.0.0.1", port: port, configuration: .init(timeout: .seconds(60)))
            c.connect()
            return HTTPClient(client: c)
        }
        let httpA = clientFor(portA), httpB = clientFor(portB)
        defer { Task { await httpA.close(); await httpB.close() } }
        func login(_ http: HTTPClient, _ user: String) async throws -> String {
            let entry = try #require(creds.arrayValue?.first { $0["username"]?.stringValue == user })
            var body: [String: JSON] = ["username": .string(user), "password": entry["password"] ?? .null]
            if let key = entry["totp_secret"]?.stringValue.flatMap(Base32.decode) { body["otp"] = .string(TOTP(secret: key).code()) }
            let r = try await http.send(.post, "/auth/login", body: JSON.object(body).encodedString(), contentType: "application/json")
            return try #require(r.json?["access_token"]?.stringValue, "\(user) signs in: \(r.status) \(r.body)")
        }

        // A token from one server works on the other; signing out on one ends it on both.
        let patient = try await login(httpA, "patient001")
        #expect(try await httpB.get("/fhir/Patient/pat-0001", token: patient).status == 200)
        #expect(try await httpA.send(.post, "/auth/logout", token: patient).status < 300)
        #expect(try await httpB.get("/fhir/Patient/pat-0001", token: patient).status == 401, "signed out on A, refused on B")

        // Each notification goes out once, whichever server's dispatcher claims it: messages from the pharmacy to
        // four patients, written half on each server, both servers polling the outbox.
        func newMessages() -> [JSON] {
            (FileNotificationSender.read(outboxA) + FileNotificationSender.read(outboxB)).filter { $0["kind"]?.stringValue == "new-message" }
        }
        // The demo seed's own messages go out first; the test counts what it adds.
        var before = newMessages().count
        for _ in 0..<20 {
            try await Task.sleep(for: .seconds(1))
            let now = newMessages().count
            if now == before { break }
            before = now
        }
        let seeded = Set(newMessages().compactMap { $0["id"]?.stringValue })
        let pharmacist = try await login(httpA, "pharmacist")
        for i in 0..<16 {
            let patientID = "pat-000\(1 + i % 4)"
            let r = try await (i % 2 == 0 ? httpA : httpB).post("/fhir/Communication", token: pharmacist, .object([
                "resourceType": "Communication", "status": "completed", "subject": .object(["reference": .string("Patient/\(patientID)")]),
                "sender": .object(["reference": "Organization/org-demo"]), "recipient": .array([.object(["reference": .string("Patient/\(patientID)")])]),
                "payload": .array([.object(["contentString": .string("Your refill \(i) is ready.")])]),
            ]))
            #expect(r.status == 201, "\(r.body)")
        }
        var ids: [String] = []
        for _ in 0..<100 {
            ids = newMessages().compactMap { $0["id"]?.stringValue }.filter { !seeded.contains($0) }
            if ids.count >= 20 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        try await Task.sleep(for: .seconds(2))  // time for a second delivery, if there were one
        let all = newMessages().compactMap { $0["id"]?.stringValue }
        ids = all.filter { !seeded.contains($0) }
        // 16 to the patients, and 4 more to patient001, the demo caregiver of pat-0002.
        #expect(ids.count == 20 && Set(ids).count == 20, "20 notices, each sent once: \(ids.count) sent, \(Set(ids).count) distinct")
        #expect(Set(all).count == all.count, "no notice, the seed's included, went out twice")

        // Each webhook event is delivered once although both servers' dispatchers poll the same outbox: a partner
        // onboards patients and requests fills, half through each server.
        try await WebhookReceiver().using { receiver in
            let register = try SafeRxCLI(keyFile: keyFile, data: base.appendingPathComponent("a")).run(
                ["webhooks", "register", "--client", "telehealth-demo", "--url", receiver.url, "--database", database])
            #expect(register.status == 0, "\(register.output)")
            let secret = try #require(creds.arrayValue?.first { $0["client_id"]?.stringValue == "telehealth-demo" }?["client_secret"]?.stringValue)
            let partner = try await RoleIsolationTests.partnerToken(client: httpA, id: "telehealth-demo", secret: secret)
            var fills = 0
            for i in 0..<6 {
                let http = i % 2 == 0 ? httpA : httpB
                let patient = try await http.post("/fhir/Patient", token: partner, .object([
                    "resourceType": "Patient", "name": .array([.object(["family": .string("Twoserver\(i)"), "given": .array(["Tess"])])]),
                    "birthDate": "1980-02-03",
                ]))
                #expect(patient.status == 201, "\(patient.body)")
                let rx = try await http.post("/fhir/MedicationRequest", token: partner, FillLifecycleTests.prescription(
                    patient: patient.json?["id"]?.stringValue ?? "", requester: .object(["identifier": .object(["system": .string(NPI.system), "value": "1234567893"])])))
                #expect(rx.status == 201, "\(rx.body)")
                let fill = try await (i % 2 == 0 ? httpB : httpA).post("/fhir/MedicationRequest/\(rx.json?["id"]?.stringValue ?? "")/$refill", token: partner, nil)
                #expect(fill.status == 201, "\(fill.body)")
                if fill.status == 201 { fills += 1 }
            }
            try await PartnerAPITests.waitUntil(seconds: 20) { receiver.received.count >= fills }
            try await Task.sleep(for: .seconds(3))  // time for a second delivery, if there were one
            let ids = receiver.received.map(\.eventID)
            #expect(ids.count == fills && Set(ids).count == ids.count, "\(fills) fill.created events, each delivered once: \(ids.count) deliveries")
        }

        // Detection counts both servers' requests: six patients read on A, then on B the eleventh distinct patient
        // is refused before its data leaves, and the pharmacist is suspended on both servers at once.
        let second = try await login(httpA, "pharmacist-b")
        for n in 21...26 { #expect(try await httpA.get("/fhir/Patient/pat-00\(n)", token: second).status == 200) }
        for n in 27...30 { #expect(try await httpB.get("/fhir/Patient/pat-00\(n)", token: second).status == 200, "10 patients: still allowed") }
        let eleventh = try await httpB.get("/fhir/Patient/pat-0031", token: second)
        #expect(eleventh.status == 401, "the 11th patient across both servers is refused: \(eleventh.status)")
        #expect(!eleventh.body.contains("pat-0031\",\"name"), "no data of the 11th patient")
        #expect(try await httpA.get("/fhir/Patient/pat-0021", token: second).status == 401, "suspended on A too")

        // One alert, and the alert notice went out once.
        var alerts: [JSON] = []
        for _ in 0..<50 {
            alerts = (FileNotificationSender.read(outboxA) + FileNotificationSender.read(outboxB)).filter { $0["kind"]?.stringValue == "security-alert" }
            if !alerts.isEmpty { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        try await Task.sleep(for: .seconds(2))
        alerts = (FileNotificationSender.read(outboxA) + FileNotificationSender.read(outboxB)).filter { $0["kind"]?.stringValue == "security-alert" }
        #expect(alerts.count == 1, "one alert notice: \(alerts.count)")

        // The audit chain both servers appended to verifies, from either data directory.
        for label in ["a", "b"] {
            let (status, output) = try SafeRxCLI(keyFile: keyFile, data: base.appendingPathComponent(label)).run(["audit", "verify", "--database", database])
            #expect(status == 0 && output.contains("OK"), "\(label): \(output)")
        }
        a.terminate()
        b.terminate()
        a.waitUntilExit()
        b.waitUntilExit()
    }
}
