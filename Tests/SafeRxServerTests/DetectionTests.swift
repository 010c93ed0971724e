import Foundation
import HTTPTypes
import SafeRxAudit
import SafeRxDetect
import SafeRxModel
import SafeRxPharmacy
import SafeRxPolicy
import SafeRxStore
import SafeRxStoreCore
import SafeRxVault
import Synchronization
import Testing

/// Exfiltration detection inside the real server: stolen credentials paging through patients are cut before 100,
/// honeytokens trip on first touch, and a normal day of pharmacy work raises nothing.
@Suite("Exfiltration detection", .serialized)
struct DetectionTests {
    static func detection() throws -> DetectionSettings {
        DetectionSettings(rules: try DetectionRules.bundled(), securityContact: "security@pharmacy.example")
    }

    /// Signs a staff member in with password and TOTP, as someone holding the stolen credential would.
    /// `step` picks the TOTP code of a later 30-second step (a code is accepted once, so a second sign-in within the
    /// same step uses the app's next code).
    static func login(_ server: LiveServer, _ client: HTTPClient, _ user: String, step: Int = 0) async throws -> Reply {
        var body: [String: JSON] = ["username": .string(user), "password": .string(server.password(user))]
        if let secret = server.credentials.first(where: { $0.username == user })?.totp_secret, let key = Base32.decode(secret) {
            body["otp"] = .string(TOTP(secret: key).code(at: Date().addingTimeInterval(Double(step) * 30)))
        }
        return try await client.send(.post, "/auth/login", body: String(decoding: JSON.object(body).encoded(), as: UTF8.self), contentType: "application/json")
    }

    @Test("CaptureRx/Postmeds replay: a stolen technician credential paging 20 patients a page is refused on the 3rd page (40 patients), then 401; the alert lists exactly the patients read")
    func stolenTechnician() async throws {
        // No honeytokens here: the demo places them among the patients, and this replay is about the bulk rule.
        try await LiveServer.start(patients: 120, accounts: 5, partnerPatients: 10, detection: try Self.detection(), honeytokens: 0).using { server in
            try await server.client().using { client in
                // The technician also has the pharmacy console open in a browser (an earlier code of the app).
                let console = WebFrontHTTPTests.WebClient(client)
                _ = try await console.get("/console/login")
                let code = try #require(server.credentials.first { $0.username == "technician" }?.totp_secret.flatMap(Base32.decode))
                let signedIn = try await console.post(
                    "/console/login", ["username": "technician", "password": server.password("technician"), "otp": TOTP(secret: code).code(at: Date().addingTimeInterval(-30))])
                #expect(signedIn.headers[.location] == "/console")
                #expect(try await console.get("/console").status == 200)
                let login = try await Self.login(server, client, "technician")
                let token = try #require(login.json?["access_token"]?.stringValue, "\(login.body)")
                let technician = try #require(try await server.store.user(named: "technician")?.id)

                // The intruder pages through every patient as fast as the server answers.
                var pages = 0
                var statuses: [Int] = []
                var offset = 0
                while offset < 400 {
                    let r = try await client.get("/fhir/Patient?_count=20&_offset=\(offset)", token: token)
                    statuses.append(r.status)
                    guard r.status == 200 else { break }
                    pages += 1
                    offset += 20
                }
                #expect(pages == 2 && statuses.last == 401, "two pages answered, the third refused: \(statuses)")
                // Cut off: the same token, any other request, and a new sign-in.
                #expect(try await client.get("/fhir/Patient/pat-0001", token: token).status == 401)
                #expect(try await client.get("/fhir/MedicationRequest?patient=pat-0002", token: token).status == 401)
                let again = try await Self.login(server, client, "technician", step: 1)
                #expect(again.status == 403 && again.issue.contains("suspended"), "\(again.body)")
                let page = try await console.get("/console")
                #expect(page.status == 303 && page.headers[.location] == "/console/login", "the browser session ended too")

                // The alert: rule, containment, and exactly the patients whose data left, with the audit records as evidence.
                let alerts = try await server.store.alerts()
                let alert = try #require(alerts.first { $0.rule == "technician-bulk" && $0.actor == technician })
                #expect(alert.severity == "critical" && alert.contained && alert.blocked)
                // (The console's work queue the technician had open touched fills, which this rule does not count.)
                let records = try await server.store.auditRecords().filter {
                    $0.entry.actor.id == technician && $0.entry.outcome == "success" && $0.entry.resourceType == "Patient"
                }
                let released = Set(records.flatMap(\.entry.patients))
                #expect(released.count == 40, "\(released.count)")
                #expect(Set(alert.patients) == released, "the alert names every patient read before the cut, and only those")
                #expect(Set(alert.evidence).isSuperset(of: records.filter { !$0.entry.patients.isEmpty }.map(\.seq)))
                #expect(alert.lagMilliseconds < 50, "detected in the appending transaction: \(alert.lagMilliseconds) ms")
                // The refused page is in the audit log as a denial naming no patient, and the suspension is recorded.
                let all = try await server.store.auditRecords()
                #expect(all.contains { $0.entry.actor.id == technician && $0.entry.action == "denied" && $0.entry.attempted == "search" && $0.entry.patients.isEmpty })
                #expect(all.contains { $0.entry.action == "suspend" && ($0.entry.detail ?? "").contains(technician) })
                #expect(try await server.store.suspensions().contains { $0.actor == technician && $0.alertID == alert.id })
                // The security contact is told through the outbox, without PHI.
                let note = try await server.notification(to: "security@pharmacy.example", kind: "security-alert")
                let text = note["body"]?.stringValue ?? ""
                #expect(text.contains(alert.id) && text.contains("technician-bulk") && !released.contains { text.contains($0) })

                // Reinstated with a reason: old tokens stay dead, a new sign-in works.
                try await server.store.reinstate(.operatorCommand(reason: "test", write: true), actor: technician, by: "privacy", reason: "credential rotated after the incident review")
                #expect(try await client.get("/fhir/Patient/pat-0001", token: token).status == 401)
                try await Task.sleep(for: .seconds(1.1))  // tokens carry whole-second issue times
                let newToken = try await server.token("technician")
                #expect(try await client.get("/fhir/Patient/pat-0001", token: newToken).status == 200)
                #expect(try await server.store.auditRecords().contains { $0.entry.action == "reinstate" })
                #expect(try await server.store.verifyAudit().ok)
            }
        }
    }

    @Test("walk-through 9: detect replay judges a business line's release by the authorization in force at its time, as the live detector did")
    func replayJudgesConsentAtItsTime() async throws {
        try await LiveServer.start(patients: 20, accounts: 2, partnerPatients: 1, consentPatients: 0, detection: try Self.detection()).using { server in
            try await server.client().using { client in
                let pharmacist = try await server.token("pharmacist")
                let secret = try #require(server.credentials.first { $0.client_id == DemoPharmacy.loyaltyClientID }?.client_secret)
                let loyalty = try await PurposeOfUseTests.clientToken(client, id: DemoPharmacy.loyaltyClientID, secret: secret)
                let signed = DemoPharmacy.authorization(id: nil, patient: "pat-0005", elements: ["Patient.telecom"], expires: Date().addingTimeInterval(86400))
                let created = try await client.send(.post, "/fhir/Consent", token: pharmacist, body: String(decoding: signed.encodedBytes(), as: UTF8.self))
                let id = try #require(created.json?["id"]?.stringValue, "\(created.body)")
                #expect(try await client.get("/fhir/Patient/pat-0005", token: loyalty).status == 200, "released while authorized")
                try await Task.sleep(for: .milliseconds(20))
                let revoked = DemoPharmacy.authorization(
                    id: id, patient: "pat-0005", elements: ["Patient.telecom"], expires: Date().addingTimeInterval(86400), status: "inactive")
                #expect(try await client.send(.put, "/fhir/Consent/\(id)", token: pharmacist, body: String(decoding: revoked.encodedBytes(), as: UTF8.self)).status == 200)
                #expect(try await client.get("/fhir/Patient/pat-0005", token: loyalty).status == 404, "nothing after the revocation")
                #expect(try await server.store.alerts().isEmpty, "the live detector saw an authorized release")
                let replay = try await server.store.replayDetection(rules: try DetectionRules.bundled(), from: "1970-01-01")
                #expect(!replay.findings.contains { $0.rule == "business-line-unconsented" }, "\(replay.findings.map(\.summary))")
            }
        }
    }

    @Test("Honeytokens look like the pharmacy's patients in every field (id sequence, names, e-mail, MRN, prescriptions, delivered fills), are in no work list, and sit where a sweep goes")
    func honeytokensLookReal() async throws {
        try await LiveServer.start(patients: 200, accounts: 5, partnerPatients: 10, detection: try Self.detection(), honeytokens: 3).using { server in
            try await server.client().using { client in
                let canaries = try await server.store.honeytokens(tenant: DemoPharmacy.tenant)
                #expect(canaries == ["pat-0201", "pat-0202", "pat-0203"], "the next ids of the sequence, not a range of their own: \(canaries)")
                let system = AccessContext(scope: .system(reason: "test", tenant: DemoPharmacy.tenant, write: false), requestID: "t", sourceIP: "local", userAgent: "test")
                for id in canaries {
                    let p = try await server.store.read(system, .patient, id: id).json ?? .null
                    let email = p["telecom"]?.arrayValue?.compactMap { $0["value"]?.stringValue }.first { $0.contains("@") } ?? ""
                    #expect(email.hasSuffix("@example.org") && email.contains(String(id.suffix(3))), "e-mail in the patients' pattern: \(email)")
                    #expect(p["identifier"]?.arrayValue?.first?["value"]?.stringValue == "MRN" + String(100_000 + Int(id.suffix(4))!))
                    let fills = try await server.store.search(system, SearchQuery.parse(.medicationDispense, [("patient", id)], scope: system.scope))
                    #expect(fills.matches.count >= 2 && fills.matches.allSatisfy { Shipment.trackingNumber(of: $0.json ?? .null) != nil && FillState.of($0.json ?? .null) == .delivered })
                    let rx = try await server.store.search(system, SearchQuery.parse(.medicationRequest, [("patient", id)], scope: system.scope))
                    #expect(rx.matches.count >= 2 && rx.matches.allSatisfy { $0.json?["identifier"] != nil && $0.json?["requester"] != nil })
                }
                // No work list shows them.
                for state in [FillState.preparation, .inProgress, .verified, .onHold] {
                    let page = try await server.store.fillQueue(system, state: state, count: 100)
                    #expect(!page.entries.contains { canaries.contains($0.patientID) }, "\(state)")
                }
                let threads = try await server.store.messageThreads(system, count: 100)
                #expect(!threads.threads.contains { canaries.contains($0.patientID) })
                let pharmacist = try await server.token("pharmacist")
                // A sweep through patients in pages of 20 meets one before the first bulk limit: it is cut there.
                var statuses: [Int] = []
                for offset in stride(from: 0, to: 200, by: 20) {
                    let r = try await client.get("/fhir/Patient?_count=20&_offset=\(offset)", token: pharmacist)
                    statuses.append(r.status)
                    if r.status != 200 { break }
                }
                #expect(statuses == [200, 200, 401], "the third page holds the first canary: \(statuses)")
                #expect(try await server.store.alerts().contains { $0.rule == "honeytoken" && $0.blocked })
            }
        }
    }

    @Test("Honeytokens: opening one — pharmacist, technician, support or partner — is refused in that request, raises a critical alert and suspends the actor")
    func honeytokenEveryRole() async throws {
        try await LiveServer.start(patients: 30, accounts: 5, partnerPatients: 5, detection: try Self.detection(), honeytokens: 1).using { server in
            try await server.client().using { client in
                _ = try await server.store.registerWebhook(.operatorCommand(reason: "test", write: true), clientID: PharmacyStore.securityWebhookClient, url: "http://127.0.0.1:9/security")
                let canary = try #require(try await server.store.honeytokens(tenant: DemoPharmacy.tenant).first)
                let partnerCanary = try #require(
                    try await DemoPharmacy.plantHoneytokens(into: server.store, tenant: DemoPharmacy.tenant, count: 1, partner: DemoPharmacy.partnerClientID).first)
                try await server.store.detectForeignRecords()  // the new canary, as the server's detector service would pick it up
                // Never in a work list: no open fill, no message thread.
                let staff = try await server.token("pharmacist-b")
                let queue = try await client.get("/fhir/MedicationDispense?fill-state=preparation&_count=100", token: staff)
                #expect(!queue.body.contains(canary))

                let partner = try await RoleIsolationTests.partnerToken(client: client, id: DemoPharmacy.partnerClientID, secret: server.partnerSecret)
                let cases: [(String, String, String)] = [
                    ("pharmacist", try await server.token("pharmacist"), "/fhir/Patient/\(canary)"),
                    ("technician", try await server.token("technician"), "/fhir/MedicationRequest?patient=\(canary)"),
                    ("support", try await server.token("support"), "/fhir/Patient/\(canary)"),
                    (DemoPharmacy.partnerClientID, partner, "/fhir/Patient/\(partnerCanary)"),
                ]
                for (who, token, path) in cases {
                    #expect(try await client.get("/fhir/Patient?_count=1", token: token).status == 200, "\(who) works before")
                    let r = try await client.get(path, token: token)
                    #expect(r.status == 401, "\(who): the canary read itself is refused: \(r.status) \(r.body.prefix(200))")
                    #expect(!r.body.contains("birthDate") && !r.body.contains("MRN"), "\(who): nothing of the record left")
                    #expect(try await client.get("/fhir/Patient?_count=1", token: token).status == 401, "\(who) is cut off at once")
                    let id = try await server.store.user(named: who)?.id ?? who
                    let alert = try #require(try await server.store.alerts().first { $0.rule == "honeytoken" && $0.actor == id }, "\(who)")
                    #expect(alert.severity == "critical" && alert.contained && alert.blocked && alert.lagMilliseconds < 50)
                }
                // A privacy officer searching the audit log for the canary is doing their job.
                let privacy = try await server.token("privacy")
                #expect(try await client.get("/fhir/AuditEvent?patient=\(canary)", token: privacy).status == 200)
                let officer = try await server.store.user(named: "privacy")?.id
                #expect(try await server.store.suspensions().allSatisfy { $0.actor != officer })

                // Each alert went to the security endpoint too: ids, rule and counts only.
                let pushed = try await server.store.webhookEvents(clientID: PharmacyStore.securityWebhookClient, state: nil, limit: 50)
                #expect(pushed.filter { $0.type == "alert.created" }.count >= 4)
                #expect(pushed.allSatisfy { !String(decoding: $0.payload, as: UTF8.self).contains(canary) })

                // The privacy console shows the alerts and the suspended actors, and acknowledges one (audited).
                let web = WebFrontHTTPTests.WebClient(client)
                try await web.signIn(server, area: "privacy", user: "privacy")
                let list = try await web.get("/privacy/alerts")
                #expect(list.status == 200 && list.body.contains("honeytoken") && list.body.contains("suspended"), "\(list.body.prefix(300))")
                let first = try #require(try await server.store.alerts().first { $0.rule == "honeytoken" })
                let detail = try await web.get("/privacy/alerts/\(first.id)")
                #expect(detail.status == 200 && detail.body.contains(first.patients[0]) && detail.body.contains("Suspended"))
                let ack = try await web.post("/privacy/alerts/\(first.id)/ack", ["note": "Canary opened in the test; actor contacted"])
                #expect(ack.status == 303)
                #expect(ack.headers[.location] == "/privacy/alerts/\(first.id)")
                #expect(try await server.store.alert(id: first.id)?.acknowledgedBy == "privacy")
                #expect(try await server.store.auditRecords().contains { $0.entry.action == "alert-view" && $0.entry.patients.contains(first.patients[0]) })
            }
        }
    }

    @Test("A normal day: fills, verifications, shipments, messages and patients' own reads for 300 patients over 8 hours raise no alert")
    func normalDay() async throws {
        // The audit clock runs the day at 90 seconds per patient; everything else uses real time.
        let clock = Mutex(Date(timeIntervalSince1970: 1_796_112_000))  // 2026-12-01 08:00 UTC
        try await LiveServer.start(
            patients: 300, accounts: 60, partnerPatients: 20, detection: try Self.detection(), honeytokens: 3,
            auditClock: { clock.withLock { $0 } }).using { server in
            try await server.client().using { client in
                func tick(_ seconds: Double) { clock.withLock { $0 = $0.addingTimeInterval(seconds) } }
                let technician = try await server.token("technician")
                let pharmacist = try await server.token("pharmacist")
                let checker = try await server.token("pharmacist-b")
                let partner = try await RoleIsolationTests.partnerToken(client: client, id: DemoPharmacy.partnerClientID, secret: server.partnerSecret)
                func transition(_ id: String, _ state: String, token: String, extra: [JSON] = []) async throws -> Int {
                    let body = JSON.object(["resourceType": "Parameters", "parameter": .array([.object(["name": "state", "valueCode": .string(state)])] + extra)])
                    return try await client.post("/fhir/MedicationDispense/\(id)/$transition", token: token, body).status
                }
                var filled = 0
                for i in 1...300 {
                    tick(90)
                    let pid = String(format: "pat-%04d", i)
                    // The work queue, every ten patients.
                    if i % 10 == 0 {
                        for state in ["preparation", "in-progress", "verified"] {
                            let queue = try await client.get("/queue/fills?state=\(state)&_count=50", token: pharmacist)
                            #expect(queue.status == 200 && queue.json?["fills"]?.arrayValue != nil, "\(queue.body.prefix(200))")
                        }
                    }
                    // The technician looks the patient up by an Rx number, opens the record and fills a refill.
                    let rx = try await client.get("/fhir/MedicationRequest?patient=\(pid)&_count=10", token: technician)
                    #expect(rx.status == 200, "\(rx.body.prefix(200))")
                    #expect(try await client.get("/fhir/Patient/\(pid)", token: technician).status == 200)
                    if let rxID = rx.entries.first?["resource"]?["id"]?.stringValue {
                        let refill = try await client.post("/fhir/MedicationRequest/\(rxID)/$refill", token: technician, nil)
                        if refill.status == 201, let d = refill.json?["id"]?.stringValue {
                            #expect(try await transition(d, "in-progress", token: technician) == 200)
                            tick(20)
                            #expect(try await transition(d, "verified", token: pharmacist) == 200)
                            #expect(try await transition(d, "completed", token: checker, extra: [
                                .object(["name": "carrier", "valueCode": "usps"]),
                                .object(["name": "trackingNumber", "valueString": .string(String(format: "94001118992233%08d", i))]),
                            ]) == 200)
                            filled += 1
                        }
                    }
                    // Some patients write; the pharmacist answers.
                    if i % 5 == 0 {
                        let msg = try await client.post("/fhir/Communication", token: pharmacist, .object([
                            "resourceType": "Communication", "status": "completed", "subject": .object(["reference": .string("Patient/\(pid)")]),
                            "sender": .object(["reference": "Organization/org-demo"]), "recipient": .array([.object(["reference": .string("Patient/\(pid)")])]),
                            "payload": .array([.object(["contentString": "Your refill is on its way."])]),
                        ]))
                        #expect(msg.status == 201)
                    }
                    // Patients with accounts read their own records.
                    if i <= 60 {
                        let own = try await server.token(String(format: "patient%03d", i))
                        #expect(try await client.get("/fhir/MedicationRequest?patient=\(pid)&_include=MedicationRequest:medication", token: own).status == 200)
                        #expect(try await client.get("/fhir/MedicationDispense?patient=\(pid)", token: own).status == 200)
                    }
                    // The partner checks on its own patients now and then.
                    if i % 15 == 0 {
                        #expect(try await client.get("/fhir/Patient?_count=20", token: partner).status == 200)
                    }
                }
                #expect(filled > 50, "the day had real work: \(filled) fills")
                try await server.store.detectForeignRecords()
                let alerts = try await server.store.alerts(open: false)
                #expect(alerts.isEmpty, "\(alerts.map { "\($0.rule) \($0.actor): \($0.summary)" })")
                #expect(server.store.detectorEventsProcessed > 1000)
            }
        }
    }
}
