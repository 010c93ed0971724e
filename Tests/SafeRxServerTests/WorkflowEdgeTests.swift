import Foundation
import HTTPTypes
import SafeRxAudit
import SafeRxModel
import SafeRxPharmacy
import SafeRxStore
import SafeRxStoreCore
import Testing

/// Edges of the pharmacy workflows found by walking the README as a new user: message parts, Rx numbers, the reason
/// a refusal gives, what the access log lists, and finding an actor's denials.
@Suite("Workflow edges")
struct WorkflowEdgeTests {
    @Test("A message part is text or a DocumentReference of the same patient: empty, foreign-typed and inline parts are refused")
    func messageParts() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let patient = try await server.token("patient048")
            let pharmacist = try await server.token("pharmacist")
            func message(_ part: JSON, patient p: String = "pat-0048", fromPharmacy: Bool = false) -> JSON {
                .object([
                    "resourceType": "Communication", "status": "completed", "subject": .object(["reference": .string("Patient/\(p)")]),
                    "sender": .object(["reference": .string(fromPharmacy ? "Organization/org-demo" : "Patient/\(p)")]),
                    "recipient": .array([.object(["reference": .string(fromPharmacy ? "Patient/\(p)" : "Organization/org-demo")])]),
                    "payload": .array([part]),
                ])
            }
            for bad in ["", "DocumentReference/", "Organization/", "Organization/org-demo", "Medication/med-7", "MedicationRequest/rx-pat-0048-1"] {
                let r = try await client.post("/fhir/Communication", token: patient, message(.object(["contentReference": .object(["reference": .string(bad)])])))
                #expect(r.status == 400, "contentReference '\(bad)': \(r.status) \(r.body)")
            }
            let inline = try await client.post(
                "/fhir/Communication", token: patient, message(.object(["contentAttachment": .object(["contentType": "text/plain", "data": "aGk="])])))
            #expect(inline.status == 400 && inline.issue.contains("contentAttachment"), "\(inline.body)")
            let both = try await client.post(
                "/fhir/Communication", token: patient,
                message(.object(["contentString": "hi", "contentReference": .object(["reference": "DocumentReference/x"])])))
            #expect(both.status == 400 && both.issue.contains("exactly one"))

            // A pharmacist cannot hand one patient another patient's document.
            let pdf = Data("%PDF-1.4\n% lab result\n%%EOF\n".utf8)
            let binary = try #require(try await client.post("/fhir/Binary", token: patient, .object([
                "resourceType": "Binary", "contentType": "application/pdf", "securityContext": .object(["reference": "Patient/pat-0048"]),
                "data": .string(pdf.base64EncodedString()),
            ])).json?["id"]?.stringValue)
            let doc = try #require(try await client.post("/fhir/DocumentReference", token: patient, .object([
                "resourceType": "DocumentReference", "status": "current", "subject": .object(["reference": "Patient/pat-0048"]),
                "content": .array([.object(["attachment": .object(["contentType": "application/pdf", "url": .string("Binary/\(binary)")])])]),
            ])).json?["id"]?.stringValue)
            let mine = try await client.post("/fhir/Communication", token: patient, message(.object(["contentReference": .object(["reference": .string("DocumentReference/\(doc)")])])))
            #expect(mine.status == 201, "\(mine.body)")
            let crossed = try await client.post(
                "/fhir/Communication", token: pharmacist,
                message(.object(["contentReference": .object(["reference": .string("DocumentReference/\(doc)")])]), patient: "pat-0049", fromPharmacy: true))
            #expect(crossed.status == 400 && crossed.issue.contains("does not resolve"), "\(crossed.body)")
        }
    }

    @Test("Every prescription gets an Rx number: assigned when a partner sends none, kept and unchangeable on update")
    func rxNumbers() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let partner = try await RoleIsolationTests.partnerToken(client: client, id: DemoPharmacy.partnerClientID, secret: server.partnerSecret)
            let requester: JSON = .object(["identifier": .object(["system": .string(NPI.system), "value": "1234567893"]), "display": "Dr. Remote"])
            var numbers: [String] = []
            for _ in 0..<2 {
                let r = try await client.post("/fhir/MedicationRequest", token: partner, FillLifecycleTests.prescription(patient: "pat-0056", requester: requester))
                #expect(r.status == 201, "\(r.body)")
                numbers.append(try #require(RxNumber.of(r.json ?? .null)))
            }
            #expect(numbers[0] != numbers[1] && numbers.allSatisfy { $0.hasPrefix("RX") && $0.count == 9 }, "\(numbers)")
            #expect(numbers.allSatisfy { Int64($0.dropFirst(2))! >= RxNumber.firstAssigned })
            // Found by the number, like a seeded prescription.
            let staff = try await server.token("pharmacist")
            let found = try await client.get("/fhir/MedicationRequest?identifier=\(RxNumber.system)%7C\(numbers[1])", token: staff)
            #expect(found.total == 1, "\(found.body)")
            let rx = try #require(found.entries.first?["resource"])
            let id = try #require(rx["id"]?.stringValue)
            // An update without the identifier keeps it; one that changes it is refused.
            var edit = rx
            edit["meta"] = nil
            edit["identifier"] = nil
            edit["note"] = .array([.object(["text": "Patient prefers afternoon delivery"])])
            let kept = try await client.send(.put, "/fhir/MedicationRequest/\(id)", token: partner, body: String(decoding: edit.encoded(), as: UTF8.self))
            #expect(kept.status == 200 && RxNumber.of(kept.json ?? .null) == numbers[1], "\(kept.body)")
            edit["identifier"] = .array([RxNumber.identifier("RX0000001")])
            let changed = try await client.send(.put, "/fhir/MedicationRequest/\(id)", token: partner, body: String(decoding: edit.encoded(), as: UTF8.self))
            #expect(changed.status == 409 && changed.issue.contains("cannot be changed"), "\(changed.body)")
        }
    }

    @Test("A refusal names what cut it: a caregiver's grant, a partial view's purpose, the role")
    func refusalReasons() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            // patient001 cares for pat-0002 with "all"; grant patient003 messages only for pat-0001.
            let granting = try await server.token("patient001")
            let tomorrow = AuditLog.timestamp(Date().addingTimeInterval(86400))
            let body = String(decoding: JSON.object(["caregiver": "patient003", "access": "messages", "expires": .string(tomorrow)]).encoded(), as: UTF8.self)
            #expect(try await client.send(.post, "/account/caregivers", token: granting, body: body, contentType: "application/json").status == 201)
            let carerOwn = try await server.token("patient003")
            let issued = try await client.send(.post, "/auth/caregiver", token: carerOwn, body: #"{"patient":"pat-0001"}"#, contentType: "application/json")
            let carer = try #require(issued.json?["access_token"]?.stringValue)
            let rx = try await client.get("/fhir/MedicationRequest?patient=pat-0001", token: carer)
            #expect(rx.status == 403 && rx.issue.contains("caregiver") && !rx.issue.contains("Role 'patient'"), "\(rx.body)")

            let staff = try await server.token("pharmacist")
            let p = try #require(try await client.get("/fhir/Patient/pat-0050", token: staff).json)
            var edit = p
            edit["meta"] = nil
            var h = HTTPFields()
            h[HTTPField.Name("X-Purpose-Of-Use")!] = "HPAYMT"
            let put = try await client.send(.put, "/fhir/Patient/pat-0050", token: staff, body: String(decoding: edit.encoded(), as: UTF8.self), headers: h)
            #expect(put.status == 403 && put.issue.contains("HPAYMT") && put.issue.contains("only part"), "\(put.body)")

            let support = try await server.token("support")
            let denied = try await client.get("/fhir/MedicationRequest", token: support)
            #expect(denied.status == 403 && !denied.issue.isEmpty, "\(denied.body)")
        }
    }

    @Test("The access log lists writes and refills too, and names a caregiver as one; an actor's denials are found by agent and outcome")
    func accessLogAndDenials() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let patient = try await server.token("patient002")
            // The seeded caregiver of pat-0002 (patient001) reads a prescription of pat-0002.
            let carerOwn = try await server.token("patient001")
            let issued = try await client.send(.post, "/auth/caregiver", token: carerOwn, body: #"{"patient":"pat-0002"}"#, contentType: "application/json")
            let carer = try #require(issued.json?["access_token"]?.stringValue)
            #expect(try await client.get("/fhir/MedicationRequest?patient=pat-0002", token: carer).status == 200)
            // The patient writes a message (a create).
            let sent = try await client.post("/fhir/Communication", token: patient, .object([
                "resourceType": "Communication", "status": "completed", "subject": .object(["reference": "Patient/pat-0002"]),
                "sender": .object(["reference": "Patient/pat-0002"]), "recipient": .array([.object(["reference": "Organization/org-demo"])]),
                "payload": .array([.object(["contentString": "Is my order on its way?"])]),
            ]))
            #expect(sent.status == 201)
            let log = try await client.get("/fhir/Patient/pat-0002/$access-log", token: patient)
            #expect(log.status == 200, "\(log.body)")
            let text = log.body
            #expect(text.contains("a caregiver you authorized"), "\(text.prefix(600))")
            #expect(text.contains("\"create\"") || text.contains("create"), "writes are listed")

            // patient049 asks for another patient's prescription: a 404 to them, a denial the privacy officer finds.
            let prober = try await server.token("patient049")
            #expect(try await client.get("/fhir/MedicationRequest?patient=pat-0049", token: prober).status == 200)
            #expect(try await client.get("/fhir/MedicationRequest/rx-pat-0001-1", token: prober).status == 404)
            let proberID = try #require(try await server.store.user(named: "patient049")?.id)
            let privacy = try await server.token("privacy")
            let found = try await client.get("/fhir/AuditEvent?agent=\(proberID)&outcome=denied", token: privacy)
            #expect(found.status == 200 && (found.total ?? 0) >= 1, "\(found.body.prefix(400))")
            let everything = try await client.get("/fhir/AuditEvent?agent=\(proberID)", token: privacy)
            #expect((everything.total ?? 0) > (found.total ?? 0), "the filter on outcome narrows")
            #expect(try await client.get("/fhir/AuditEvent?agent=\(proberID)", token: patient).total == 0, "a patient sees no one else's records")
        }
    }
}
