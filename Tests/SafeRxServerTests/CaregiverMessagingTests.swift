import Foundation
import HTTPTypes
import SafeRxAudit
import SafeRxModel
import SafeRxPharmacy
import SafeRxStore
import SafeRxStoreCore
import Testing

/// Caregivers, secure messages with attachments, and Synthea imports, over HTTP against the real server.
@Suite("Caregivers, messaging and imports")
struct CaregiverMessagingTests {
    func post(_ client: HTTPClient, _ path: String, _ body: JSON, token: String?) async throws -> Reply {
        try await client.send(.post, path, token: token, body: String(decoding: body.encoded(), as: UTF8.self), contentType: "application/json")
    }

    func caregiverToken(_ client: HTTPClient, _ token: String, _ patient: String) async throws -> Reply {
        try await post(client, "/auth/caregiver", .object(["patient": .string(patient)]), token: token)
    }

    @Test("Caregivers: scoped to the grant, audited as caregiver, cannot reach other patients, revoked at once")
    func caregivers() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let patient = try await server.token("patient013")  // pat-0013 grants
            let carer = try await server.token("patient014")  // patient014 cares
            let tomorrow = AuditLog.timestamp(Date().addingTimeInterval(86400))
            var r = try await post(client, "/account/caregivers", .object(["caregiver": "patient014", "access": "messages", "expires": .string(tomorrow)]), token: patient)
            #expect(r.status == 201 && r.json?["status"]?.stringValue == "active", "\(r.body)")
            let grant = try #require(r.json?["id"]?.stringValue)
            r = try await post(client, "/account/caregivers", .object(["caregiver": "patient014", "access": "everything", "expires": .string(tomorrow)]), token: patient)
            #expect(r.status == 400 && r.issue.contains("access must be one of"))
            r = try await post(client, "/account/caregivers", .object(["caregiver": "patient014", "access": "all", "expires": "2020-01-01"]), token: patient)
            #expect(r.status == 400 && r.issue.contains("future"))
            r = try await post(client, "/account/caregivers", .object(["caregiver": "no-such-user", "access": "all", "expires": .string(tomorrow)]), token: patient)
            #expect(r.status == 400)
            // The caregiver's token for pat-0013: messages only.
            r = try await caregiverToken(client, carer, "pat-0013")
            let cg = try #require(r.json?["access_token"]?.stringValue)
            #expect(try await client.get("/fhir/Communication?patient=pat-0013", token: cg).entries.count > 0)
            #expect(try await client.get("/fhir/MedicationRequest?patient=pat-0013", token: cg).status == 403)
            #expect(try await client.get("/fhir/Patient/pat-0013", token: cg).status == 403)
            #expect(try await client.post("/fhir/MedicationRequest/rx-pat-0013-1/$refill", token: cg, nil).status == 403)
            let message = JSON.object([
                "resourceType": "Communication", "status": "completed", "subject": .object(["reference": "Patient/pat-0013"]),
                "sender": .object(["reference": "Patient/pat-0013"]), "recipient": .array([.object(["reference": "Organization/org-demo"])]),
                "payload": .array([.object(["contentString": "Asking for my mother: is the refill ready?"])]),
            ])
            #expect(try await client.post("/fhir/Communication", token: cg, message).status == 201)
            // Another patient, with the caregiver token or the caregiver's own: nothing.
            #expect(try await client.get("/fhir/Communication/msg-pat-0015-1", token: cg).status == 404)
            #expect(try await client.get("/fhir/Communication?patient=pat-0015", token: cg).entries.isEmpty)
            #expect(try await caregiverToken(client, carer, "pat-0015").status == 403)
            #expect(try await client.get("/fhir/Communication/msg-pat-0013-1", token: carer).status == 404, "the caregiver's own token stays theirs")
            // A caregiver token cannot manage grants or reach /account.
            #expect(try await client.get("/account/caregivers", token: cg).status == 403)
            #expect(try await client.get("/account", token: cg).status == 401)
            // Audited as caregiver, under FAMRQT, naming pat-0013.
            let records = try await server.store.auditRecords().filter { $0.entry.actor.role == "caregiver" }
            #expect(records.contains { $0.entry.purpose == "FAMRQT" && $0.entry.patients.contains("pat-0013") && $0.entry.action == "create" })
            // Both sides see the grant; the patient revokes it and the token dies with it.
            r = try await client.get("/account/caregivers", token: carer)
            #expect(r.json?["received"]?.arrayValue?.contains { $0["id"]?.stringValue == grant } == true)
            r = try await client.post("/account/caregivers/\(grant)/revoke", token: try await server.token("patient015"), nil)
            #expect(r.status == 404, "someone else's grant is not found")
            r = try await client.post("/account/caregivers/\(grant)/revoke", token: patient, nil)
            #expect(r.status == 200 && r.json?["status"]?.stringValue == "revoked")
            #expect(try await client.get("/fhir/Communication?patient=pat-0013", token: cg).status == 401)
            #expect(try await caregiverToken(client, carer, "pat-0013").status == 403)
        }
    }

    @Test("A caregiver with prescription access requests a refill; the seeded caregiver sees everything of pat-0002")
    func caregiverRefill() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let patient = try await server.token("patient016")
            let carer = try await server.token("patient017")
            let tomorrow = AuditLog.timestamp(Date().addingTimeInterval(86400))
            #expect(try await post(client, "/account/caregivers", .object(["caregiver": "patient017", "access": "prescriptions", "expires": .string(tomorrow)]), token: patient).status == 201)
            let cg = try #require(try await caregiverToken(client, carer, "pat-0016").json?["access_token"]?.stringValue)
            let rx = try await client.get("/fhir/MedicationRequest?patient=pat-0016", token: cg).entries
            #expect(!rx.isEmpty)
            #expect(try await client.get("/fhir/Communication?patient=pat-0016", token: cg).status == 403)
            let id = try #require(rx.first?["resource"]?["id"]?.stringValue)
            let refill = try await client.post("/fhir/MedicationRequest/\(id)/$refill", token: cg, nil)
            #expect(refill.status == 201 || refill.status == 422, "allowed; a refusal is a pharmacy rule, not access: \(refill.body)")
            let seeded = try #require(try await caregiverToken(client, try await server.token("patient001"), "pat-0002").json?["access_token"]?.stringValue)
            #expect(try await client.get("/fhir/Patient/pat-0002", token: seeded).status == 200)
            #expect(try await client.get("/fhir/Patient/pat-0003", token: seeded).status == 404)
        }
    }

    @Test("Messages: attachments as Binary + DocumentReference checked by content and size; unread counts; assignment; notifications carry no PHI")
    func messaging() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let patient = try await server.token("patient007")
            let other = try await server.token("patient008")
            let pharmacist = try await server.token("pharmacist")
            let technician = try await server.token("technician")
            func binary(_ data: Data, _ type: String, _ patient: String = "pat-0007") -> JSON {
                .object(["resourceType": "Binary", "contentType": .string(type), "securityContext": .object(["reference": .string("Patient/\(patient)")]),
                         "data": .string(data.base64EncodedString())])
            }
            let pdf = Data("%PDF-1.4\n% insurance card\n%%EOF\n".utf8)
            var r = try await client.post("/fhir/Binary", token: patient, binary(Data("<html><script>x</script></html>".utf8), "text/plain"))
            #expect(r.status == 400 && r.issue.contains("not one of the accepted types"), "\(r.issue)")
            r = try await client.post("/fhir/Binary", token: patient, binary(Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0]), "application/pdf"))
            #expect(r.status == 400 && r.issue.contains("does not match"), "\(r.issue)")
            r = try await client.post("/fhir/Binary", token: patient, binary(Data(repeating: 0x41, count: AttachmentRules.maxBytes + 1), "text/plain"))
            #expect(r.status == 400 && r.issue.contains("limit is 5 MB"), "\(r.issue)")
            r = try await client.post("/fhir/Binary", token: patient, binary(pdf, "application/pdf", "pat-0008"))
            #expect(r.status == 400 || r.status == 403)
            r = try await client.post("/fhir/Binary", token: patient, binary(pdf, "application/pdf"))
            #expect(r.status == 201)
            let binaryID = try #require(r.json?["id"]?.stringValue)
            #expect(try await client.get("/fhir/Binary/\(binaryID)", token: other).status == 404)
            #expect(try await client.get("/fhir/Binary/\(binaryID)", token: patient).json?["data"]?.stringValue == pdf.base64EncodedString())
            // Asked for a non-FHIR type, the Binary answers the file itself (FHIR "serving content"), still no-store and nosniff.
            let raw = try await client.send(.get, "/fhir/Binary/\(binaryID)", token: patient, headers: [.accept: "application/pdf"])
            #expect(raw.status == 200 && raw.body == String(decoding: pdf, as: UTF8.self))
            #expect(raw.headers[.contentType] == "application/pdf" && raw.headers[.cacheControl] == "no-store")
            #expect(raw.headers[.contentDisposition]?.hasPrefix("attachment;") == true && raw.headers[.init("X-Content-Type-Options")!] == "nosniff")
            #expect(try await client.send(.get, "/fhir/Binary/\(binaryID)", token: other, headers: [.accept: "application/pdf"]).status == 404)
            func document(_ binary: String) -> JSON {
                .object(["resourceType": "DocumentReference", "status": "current", "subject": .object(["reference": "Patient/pat-0007"]),
                         "content": .array([.object(["attachment": .object(["contentType": "application/pdf", "url": .string("Binary/\(binary)"), "title": "card.pdf"])])])])
            }
            // Another patient's Binary cannot be attached, even by staff into this patient's document.
            let foreign = try #require(try await client.post("/fhir/Binary", token: pharmacist, binary(pdf, "application/pdf", "pat-0009")).json?["id"]?.stringValue)
            #expect(try await client.post("/fhir/DocumentReference", token: pharmacist, document(foreign)).status == 400)
            r = try await client.post("/fhir/DocumentReference", token: patient, document(binaryID))
            #expect(r.status == 201, "\(r.body)")
            let doc = try #require(r.json?["id"]?.stringValue)
            r = try await client.post("/fhir/Communication", token: patient, .object([
                "resourceType": "Communication", "status": "completed", "subject": .object(["reference": "Patient/pat-0007"]),
                "sender": .object(["reference": "Patient/pat-0007"]), "recipient": .array([.object(["reference": "Organization/org-demo"])]),
                "payload": .array([.object(["contentString": "My new insurance card is attached."]), .object(["contentReference": .object(["reference": .string("DocumentReference/\(doc)")])])]),
            ]))
            #expect(r.status == 201)
            let question = try #require(r.json?["id"]?.stringValue)
            // Staff see it unread, assign the thread, the technician finds it in their queue.
            r = try await client.get("/messages/threads", token: pharmacist)
            #expect(r.json?["threads"]?.arrayValue?.contains { $0["thread"]?.stringValue == "Communication/\(question)" && $0["unread"] == .int(1) } == true)
            r = try await post(client, "/messages/threads/\(question)/assign", .object(["assignee": "technician"]), token: pharmacist)
            #expect(r.status == 200, "\(r.body)")
            #expect(try await post(client, "/messages/threads/\(question)/assign", .object(["assignee": "technician"]), token: patient).status == 403)
            #expect(try await post(client, "/messages/threads/\(question)/assign", .object(["assignee": "patient007"]), token: pharmacist).status == 400)
            r = try await client.get("/messages/threads?assigned=me", token: technician)
            #expect(r.json?["threads"]?.arrayValue?.map { $0["thread"]?.stringValue } == ["Communication/\(question)"])
            #expect(try await client.get("/fhir/Communication/\(question)", token: technician).status == 200)
            // The pharmacy answers: the patient is notified with a fixed text; their unread count goes up, then down on reading.
            let before = try await client.get("/messages/unread", token: patient).json?["unread"]
            r = try await client.post("/fhir/Communication", token: pharmacist, .object([
                "resourceType": "Communication", "status": "completed", "subject": .object(["reference": "Patient/pat-0007"]),
                "sender": .object(["reference": "Organization/org-demo"]), "recipient": .array([.object(["reference": "Patient/pat-0007"])]),
                "inResponseTo": .array([.object(["reference": .string("Communication/\(question)")])]),
                "payload": .array([.object(["contentString": "Thanks, we updated your lisinopril claim."])]),
            ]))
            let answer = try #require(r.json?["id"]?.stringValue)
            let email = try #require(try await client.get("/fhir/Patient/pat-0007", token: pharmacist).json?["telecom"]?.arrayValue?.first { $0["system"]?.stringValue == "email" }?["value"]?.stringValue)
            let note = try await server.notification(to: email, kind: "new-message")
            #expect(note["body"]?.stringValue == "You have a new message from SafeRx Demo Pharmacy. Sign in to SafeRx to read it.")
            #expect(note["subject"]?.stringValue == "You have a new message")
            guard case .int(let b) = before ?? .int(0), case .int(let after) = try await client.get("/messages/unread", token: patient).json?["unread"] ?? .int(0) else {
                Issue.record("no unread counts")
                return
            }
            #expect(after == b + 1)
            #expect(try await client.get("/fhir/Communication/\(answer)", token: patient).status == 200)
            #expect(try await client.get("/messages/unread", token: patient).json?["unread"] == .int(b))
            // The seeded caregiver of pat-0002 (patient001) is told about pat-0002's messages too.
            r = try await client.post("/fhir/Communication", token: pharmacist, .object([
                "resourceType": "Communication", "status": "completed", "subject": .object(["reference": "Patient/pat-0002"]),
                "sender": .object(["reference": "Organization/org-demo"]), "payload": .array([.object(["contentString": "Your order shipped."])]),
            ]))
            #expect(r.status == 201)
            let carerEmail = try #require(try await client.get("/fhir/Patient/pat-0001", token: pharmacist).json?["telecom"]?.arrayValue?.first { $0["system"]?.stringValue == "email" }?["value"]?.stringValue)
            _ = try await server.notification(to: carerEmail, kind: "new-message")
        }
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/synthea")

    @Test("Synthea: a transaction Bundle through POST /fhir: urn:uuid references rewritten, unknown types counted and skipped, all or nothing")
    func syntheaTransaction() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let pharmacist = try await server.token("pharmacist")
            let practitioners = try String(contentsOf: Self.fixtures.appendingPathComponent("practitionerInformation.json"), encoding: .utf8)
            let patientBundle = try String(contentsOf: Self.fixtures.appendingPathComponent("patient-bundle.json"), encoding: .utf8)
            // A batch is not a transaction.
            #expect(try await client.send(.post, "/fhir", token: pharmacist, body: practitioners).status == 400)
            var transaction = try JSON.parse(Data(practitioners.utf8))
            transaction["type"] = "transaction"
            var r = try await client.send(.post, "/fhir", token: pharmacist, body: String(decoding: transaction.encoded(), as: UTF8.self))
            #expect(r.status == 200, "\(r.body)")
            // Patients may not post transactions.
            #expect(try await client.send(.post, "/fhir", token: try await server.token("patient001"), body: patientBundle).status == 403)
            // One invalid resource refuses the whole Bundle, naming the entry.
            var broken = try JSON.parse(Data(patientBundle.utf8))
            if case .array(var entries) = broken["entry"] {
                entries[4]["resource"]?["intent"] = "wish"
                broken["entry"] = .array(entries)
            }
            r = try await client.send(.post, "/fhir", token: pharmacist, body: String(decoding: broken.encoded(), as: UTF8.self))
            #expect(r.status == 400 && r.issue.contains("Bundle.entry[4] (MedicationRequest)"), "\(r.issue)")
            #expect(try await client.get("/fhir/Patient/7d3c1f0a-9b8e-4c2d-a1f0-3e5b7c9d1a20", token: pharmacist).status == 404, "nothing was written")
            r = try await client.send(.post, "/fhir", token: pharmacist, body: patientBundle)
            #expect(r.status == 200, "\(r.body)")
            let entries = r.entries
            #expect(entries.count == 3, "Patient, MedicationRequest and the summary")
            let summary = entries.last?["resource"]?["issue"]?.arrayValue?.compactMap { $0["diagnostics"]?.stringValue } ?? []
            #expect(summary.contains { $0.contains("Claim 1") && $0.contains("Condition 1") && $0.contains("Encounter 1") && $0.contains("Observation 1") && $0.contains("DocumentReference (inline content) 1") }, "\(summary)")
            #expect(summary.contains { $0.contains("Patient.multipleBirthBoolean 1") && $0.contains("MedicationRequest.encounter 1") }, "\(summary)")
            let rx = try #require(try await client.get("/fhir/MedicationRequest?patient=7d3c1f0a-9b8e-4c2d-a1f0-3e5b7c9d1a20", token: pharmacist).entries.first?["resource"])
            #expect(rx["subject"]?["reference"]?.stringValue == "Patient/7d3c1f0a-9b8e-4c2d-a1f0-3e5b7c9d1a20")
            #expect(rx["requester"]?["reference"]?.stringValue == "Practitioner/0000016f-57cb-cdc8-0000-000000012345")
            // The imported patient is searchable like any other, and the import is audited naming them.
            #expect(try await client.get("/fhir/Patient?family=synthetica&birthdate=1961-04-17", token: pharmacist).entries.count == 1)
            #expect(try await server.store.auditRecords().contains { $0.entry.action == "transaction" && $0.entry.patients.contains("7d3c1f0a-9b8e-4c2d-a1f0-3e5b7c9d1a20") })
            // Posting it again: the ids exist, nothing is written twice.
            #expect(try await client.send(.post, "/fhir", token: pharmacist, body: patientBundle).status == 409)
        }
    }
}
