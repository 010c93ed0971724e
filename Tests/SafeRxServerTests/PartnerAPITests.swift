import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxPharmacy
import SafeRxStore
import SafeRxStoreCore
import SafeRxVault
import ServiceLifecycle
import Synchronization
import Testing

/// A webhook receiver on loopback that records what it gets and answers with a status chosen by the test.
final class WebhookReceiver: Sendable {
    struct Delivery: Sendable {
        var body: Data
        var signature: String
        var eventID: String
        var at: Date
    }

    final class State: Sendable {
        let deliveries = Mutex<[Delivery]>([])
        let answer = Mutex<HTTPResponse.Status>(.ok)
    }

    let state: State
    let port: Int
    let group: ServiceGroup
    let task: Task<Void, any Error>

    init() async throws {
        let state = State()
        let router = Router()
        router.post("/hook") { req, _ -> Response in
            var req = req
            let body = Data((try await req.collectBody(upTo: 1 << 20)).readableBytesView)
            let d = Delivery(
                body: body, signature: req.headers[HTTPField.Name("SafeRx-Signature")!] ?? "",
                eventID: req.headers[HTTPField.Name("SafeRx-Event-Id")!] ?? "", at: Date())
            state.deliveries.withLock { $0.append(d) }
            return Response(status: state.answer.withLock { $0 })
        }
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "receiver")
        logger.logLevel = .warning
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        self.group = group
        self.task = Task { try await group.run() }
        var port = 0
        for await p in stream {
            port = p
            break
        }
        self.port = port
        self.state = state
    }

    var url: String { "http://127.0.0.1:\(port)/hook" }
    var received: [Delivery] { state.deliveries.withLock { $0 } }
    func answer(_ s: HTTPResponse.Status) { state.answer.withLock { $0 = s } }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = await task.result
    }
}

/// The partner (telehealth) API: onboarding, prescriptions, fills, Idempotency-Key, signed webhooks with retries.
@Suite("Partner API: idempotency and signed webhooks")
struct PartnerAPITests {
    /// The README's verification recipe, written out independently of `WebhookSignature`.
    static func verifyLikeAPartner(header: String, body: Data, secret: String, now: Date = Date()) -> Bool {
        var fields: [String: String] = [:]
        for part in header.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { fields[String(kv[0])] = String(kv[1]) }
        }
        guard let t = fields["t"], let ts = Double(t), let v1 = fields["v1"], abs(now.timeIntervalSince1970 - ts) <= 300 else { return false }
        var signed = Data("\(t).".utf8)
        signed.append(body)
        let mac = HMAC<SHA256>.authenticationCode(for: signed, using: SymmetricKey(data: Data(secret.utf8)))
        let expected = Data(mac).map { String(format: "%02x", $0) }.joined()
        return expected.utf8.count == v1.utf8.count && zip(expected.utf8, v1.utf8).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    @Test("Idempotency-Key: same key and body → same result, different body → 422, per caller")
    func idempotency() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            // A partner of its own: the shared server's demo partner must keep exactly its seeded patients.
            let clientID = "partner-idem-\(UUID().uuidString.prefix(8))"
            let clientSecret = DemoPharmacy.randomSecret(bytes: 32)
            try await server.store.addClient(APIClient(
                clientID: clientID, secretHash: AuthService.hashClientSecret(clientSecret), role: "partner", tenant: DemoPharmacy.tenant, name: "Idempotency test"))
            let partner = try await RoleIsolationTests.partnerToken(client: client, id: clientID, secret: clientSecret)
            let key = "onboard-\(UUID().uuidString)"
            var h = HTTPFields()
            h[HTTPField.Name("Idempotency-Key")!] = key
            let patient: JSON = .object([
                "resourceType": "Patient", "name": .array([.object(["family": "Idempotent", "given": .array(["Ida"])])]), "birthDate": "1991-04-05",
            ])
            let first = try await client.post("/fhir/Patient", token: partner, patient, headers: h)
            #expect(first.status == 201, "\(first.body)")
            let again = try await client.post("/fhir/Patient", token: partner, patient, headers: h)
            #expect(again.status == 201)
            #expect(again.json?["id"] == first.json?["id"] && again.headers[.location] == first.headers[.location])
            #expect(again.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            var changed = patient
            changed["birthDate"] = "1991-04-06"
            let conflict = try await client.post("/fhir/Patient", token: partner, changed, headers: h)
            #expect(conflict.status == 422 && conflict.issue.contains("different request"), "\(conflict.body)")
            // Only one patient was created.
            let owned = try await client.get("/fhir/Patient?_count=200", token: partner)
            #expect(owned.entries.filter { $0["resource"]?["name"]?.arrayValue?.first?["family"]?.stringValue == "Idempotent" }.count == 1)

            // Another caller's identical key is its own.
            let pharmacist = try await server.token("pharmacist")
            let theirs = try await client.post("/fhir/Patient", token: pharmacist, patient, headers: h)
            #expect(theirs.status == 201 && theirs.json?["id"] != first.json?["id"])

            // A failed request frees its key: fix the body and retry with the same key.
            var k2 = HTTPFields()
            k2[HTTPField.Name("Idempotency-Key")!] = "rx-\(UUID().uuidString)"
            let pid = first.json?["id"]?.stringValue ?? ""
            var rx = FillLifecycleTests.prescription(patient: pid, requester: .object(["identifier": .object(["system": .string(NPI.system), "value": "1234567890"])]))
            let bad = try await client.post("/fhir/MedicationRequest", token: partner, rx, headers: k2)
            #expect(bad.status == 400)
            rx["requester"] = .object(["identifier": .object(["system": .string(NPI.system), "value": "1234567893"])])
            let good = try await client.post("/fhir/MedicationRequest", token: partner, rx, headers: k2)
            #expect(good.status == 201, "\(good.body)")

            // $refill retried with its key creates one fill.
            var k3 = HTTPFields()
            k3[HTTPField.Name("Idempotency-Key")!] = "fill-\(UUID().uuidString)"
            let rxID = good.json?["id"]?.stringValue ?? ""
            let f1 = try await client.post("/fhir/MedicationRequest/\(rxID)/$refill", token: partner, nil, headers: k3)
            let f2 = try await client.post("/fhir/MedicationRequest/\(rxID)/$refill", token: partner, nil, headers: k3)
            #expect(f1.status == 201 && f2.status == 201 && f1.json?["id"] == f2.json?["id"], "\(f1.body) \(f2.body)")
            let fills = try await client.get("/fhir/MedicationDispense?prescription=MedicationRequest/\(rxID)", token: partner)
            #expect(fills.total == 1)

            var bad1 = HTTPFields()
            bad1[HTTPField.Name("Idempotency-Key")!] = String(repeating: "k", count: 300)
            #expect(try await client.post("/fhir/Patient", token: partner, patient, headers: bad1).status == 400)
        }
    }

    @Test("retry delays grow exponentially with jitter and are capped")
    func retryPolicy() {
        let p = WebhookRetryPolicy(baseDelay: 30, maxDelay: 3600, maxAge: 86400)
        for n in 1...12 {
            let full = min(3600, 30 * pow(2, Double(n - 1)))
            for _ in 0..<20 {
                let d = p.delay(afterFailures: n)
                #expect(d >= full * 0.5 && d <= full)
            }
        }
        // Dead-lettered once too old, but never before three tries (an event that aged while SafeRx was down).
        #expect(p.minAttempts == 3)
        // Attempts over 24 hours with the defaults: about 30 s, 1, 2, 4, ... minutes, then hourly.
        var t = 0.0, attempts = 0
        while t < 86400 { attempts += 1; t += min(3600, 30 * pow(2, Double(attempts - 1))) }
        #expect(attempts > 20 && attempts < 40)
    }

    @Test("webhooks: signed per the README recipe, ids and statuses only, retried, dead-lettered, replayed")
    func webhooks() async throws {
        try await LiveServer.start(
            patients: 20, accounts: 5, partnerPatients: 5, consentPatients: 0,
            webhookPolicy: WebhookRetryPolicy(baseDelay: 0.1, maxDelay: 0.4, maxAge: 2), webhookPollInterval: .milliseconds(50)).using { server in
            try await WebhookReceiver().using { receiver in
                try await server.client().using { client in
                    let secret = try await server.store.registerWebhook(.operatorCommand(reason: "test", write: true), clientID: DemoPharmacy.partnerClientID, url: receiver.url)
                    #expect(secret.hasPrefix("whsec_"))
                    let partner = try await RoleIsolationTests.partnerToken(client: client, id: DemoPharmacy.partnerClientID, secret: server.partnerSecret)
                    let pharmacist = try await server.token("pharmacist")
                    let technician = try await server.token("technician")

                    // Onboard a patient, submit a prescription, request the fill.
                    let patient = try await client.post("/fhir/Patient", token: partner, .object([
                        "resourceType": "Patient", "name": .array([.object(["family": "Webhookson", "given": .array(["Wanda"])])]), "birthDate": "1985-06-07",
                        "address": .array([.object(["line": .array(["12 Harbor Rd"]), "city": "Salem", "state": "MA", "postalCode": "01970"])]),
                    ]))
                    #expect(patient.status == 201, "\(patient.body)")
                    let pid = patient.json?["id"]?.stringValue ?? ""
                    let rx = try await client.post("/fhir/MedicationRequest", token: partner, FillLifecycleTests.prescription(
                        patient: pid, requester: .object(["identifier": .object(["system": .string(NPI.system), "value": "1234567893"])])))
                    #expect(rx.status == 201, "\(rx.body)")
                    let fill = try await client.post("/fhir/MedicationRequest/\(rx.json?["id"]?.stringValue ?? "")/$refill", token: partner, nil)
                    #expect(fill.status == 201, "\(fill.body)")
                    let d = fill.json?["id"]?.stringValue ?? ""
                    let path = "/fhir/MedicationDispense/\(d)/$transition"
                    #expect(try await client.post(path, token: technician, FillLifecycleTests.transition("in-progress")).status == 200)
                    #expect(try await client.post(path, token: pharmacist, FillLifecycleTests.transition("verified")).status == 200)
                    #expect(try await client.post(path, token: technician, FillLifecycleTests.transition("completed", carrier: "fedex", tracking: "771234567890")).status == 200)
                    let ctx = AccessContext(scope: .system(reason: "carrier feed", tenant: DemoPharmacy.tenant, write: true), requestID: "t", sourceIP: "local", userAgent: "test")
                    _ = try await server.pharmacy.fills.applyTracking(ctx, [TrackingUpdate(carrier: "fedex", trackingNumber: "771234567890", status: "delivered", time: "2026-11-22T12:00:00Z")])

                    let expected = ["fill.created", "fill.in-progress", "fill.verified", "fill.completed", "shipment.label-created", "shipment.delivered", "fill.delivered"]
                    try await Self.waitUntil { receiver.received.count >= expected.count }
                    let got = receiver.received
                    let types = got.compactMap { (try? JSON.parse($0.body))?["type"]?.stringValue }
                    #expect(Set(types) == Set(expected), "\(types)")
                    let allowedKeys: Set<String> = ["dispense", "prescription", "patient", "state", "status", "previousState", "reason", "shipmentStatus", "carrier"]
                    for delivery in got {
                        #expect(Self.verifyLikeAPartner(header: delivery.signature, body: delivery.body, secret: secret), "\(delivery.signature)")
                        #expect(WebhookSignature.problem(header: delivery.signature, body: delivery.body, secret: secret) == nil)
                        var tampered = delivery.body
                        tampered.append(0x20)
                        #expect(!Self.verifyLikeAPartner(header: delivery.signature, body: tampered, secret: secret))
                        #expect(!Self.verifyLikeAPartner(header: delivery.signature, body: delivery.body, secret: "whsec_wrong"))
                        #expect(!Self.verifyLikeAPartner(header: delivery.signature, body: delivery.body, secret: secret, now: Date().addingTimeInterval(600)))
                        let json = try JSON.parse(delivery.body)
                        #expect(json["id"]?.stringValue == delivery.eventID)
                        let keys = Set(json["data"]?.objectValue?.keys.map { $0 } ?? [])
                        #expect(keys.isSubset(of: allowedKeys), "\(keys)")
                        let text = String(decoding: delivery.body, as: UTF8.self)
                        for needle in ["Webhookson", "Wanda", "Lisinopril", "Harbor", "1985-06-07", "771234567890"] {
                            #expect(!text.contains(needle), "webhook payload carries \(needle)")
                        }
                    }

                    // A failing receiver: retried with backoff, then dead-lettered.
                    receiver.answer(.internalServerError)
                    let before = receiver.received.count
                    let hold = try await client.post("/fhir/MedicationRequest", token: partner, FillLifecycleTests.prescription(
                        patient: pid, requester: .object(["identifier": .object(["system": .string(NPI.system), "value": "1234567893"])])))
                    let second = try await client.post("/fhir/MedicationRequest/\(hold.json?["id"]?.stringValue ?? "")/$refill", token: partner, nil)
                    #expect(second.status == 201)
                    try await Self.waitUntil(seconds: 15) {
                        (try? await server.store.webhookEvents(clientID: DemoPharmacy.partnerClientID, state: .dead).count) ?? 0 >= 1
                    }
                    let dead = try await server.store.webhookEvents(clientID: DemoPharmacy.partnerClientID, state: .dead)
                    #expect(dead.count == 1)
                    let deadEvent = try #require(dead.first)
                    #expect(deadEvent.attempts >= 3 && deadEvent.lastStatus == 500, "\(deadEvent.attempts) \(String(describing: deadEvent.lastStatus))")
                    let tries = receiver.received.dropFirst(before).filter { $0.eventID == deadEvent.id }
                    #expect(tries.count == deadEvent.attempts)
                    #expect((tries.last?.at.timeIntervalSince(tries.first?.at ?? Date()) ?? 0) > 0.3, "retries are spread out, not immediate")

                    // The partner sees it dead-lettered and replays it once the receiver is fixed.
                    let listed = try await client.get("/partner/webhooks?state=dead", token: partner)
                    #expect(listed.status == 200 && listed.body.contains(deadEvent.id), "\(listed.body)")
                    #expect(try await client.post("/partner/webhooks/\(deadEvent.id)/replay", token: pharmacist, nil).status == 403)
                    #expect(try await client.post("/partner/webhooks/evt_nope/replay", token: partner, nil).status == 404)
                    receiver.answer(.ok)
                    let replay = try await client.post("/partner/webhooks/\(deadEvent.id)/replay", token: partner, nil)
                    #expect(replay.status == 202, "\(replay.body)")
                    try await Self.waitUntil {
                        (try? await server.store.webhookEvents(clientID: DemoPharmacy.partnerClientID, state: .delivered).contains { $0.id == deadEvent.id }) ?? false
                    }
                    #expect(receiver.received.last?.eventID == deadEvent.id)
                }
            }
        }
    }

    static func waitUntil(seconds: Double = 10, _ condition: () async -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("condition not met within \(seconds) s")
    }
}

extension WebhookReceiver: TestScoped {
    func end() async { await stop() }
}
