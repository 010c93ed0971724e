import Foundation
import SafeRxSQL
import HTTPTypes
import SafeRxAudit
import SafeRxModel
import SafeRxPharmacy
import SafeRxPolicy
import SafeRxStore
import SafeRxStoreCore
import Testing

/// Purpose of use on every request, the policy table, and the Kroger replay.
@Suite("Purpose of use and authorizations") struct PurposeOfUseTests {
    static let purpose = HTTPField.Name("X-Purpose-Of-Use")!

    /// An API client's token (client credentials), as in the role-isolation tests.
    static func clientToken(_ client: HTTPClient, id: String, secret: String) async throws -> String {
        try await RoleIsolationTests.partnerToken(client: client, id: id, secret: secret)
    }

    static func get(_ client: HTTPClient, _ path: String, token: String, purpose: String? = nil) async throws -> Reply {
        var h = HTTPFields()
        if let purpose { h[Self.purpose] = purpose }
        return try await client.send(.get, path, token: token, headers: h)
    }

    @Test("Kroger replay: a business line gets nothing without authorizations, exactly the authorized patients and elements with them")
    func krogerReplay() async throws {
        try await LiveServer.start(patients: 100, accounts: 15, partnerPatients: 5, consentPatients: 0).using { server in
            try await server.client().using { client in
                let secret = server.credentials.first { $0.client_id == DemoPharmacy.loyaltyClientID }!.client_secret!
                let loyalty = try await Self.clientToken(client, id: DemoPharmacy.loyaltyClientID, secret: secret)
                let pharmacist = try await server.token("pharmacist")

                // No authorizations: listing patients to build retail accounts yields no one, and is audited.
                let none = try await client.get("/fhir/Patient?_count=200", token: loyalty)
                #expect(none.status == 200 && none.total == 0 && none.entries.isEmpty, "\(none.body.prefix(300))")
                let audited = try await server.store.auditRecords().last { $0.entry.actor.id == DemoPharmacy.loyaltyClientID && $0.entry.action == "search" }
                #expect(audited?.entry.purpose == "MKT" && audited?.entry.patients.isEmpty == true)
                // Searching by name or e-mail, reading prescriptions, or claiming another purpose: refused and audited.
                for (path, purpose, status) in [
                    ("/fhir/Patient?family=Smi", nil, 403), ("/fhir/Patient?email=a@b.org", nil, 403), ("/fhir/MedicationRequest", nil, 403),
                    ("/fhir/Patient", "TREAT", 403), ("/fhir/Patient/pat-0001", nil, 404), ("/fhir/Patient", "treat!", 400),
                    ("/fhir/Patient", "NOTAPURPOSE", 400),
                ] as [(String, String?, Int)] {
                    let r = try await Self.get(client, path, token: loyalty, purpose: purpose)
                    #expect(r.status == status, "\(path) \(purpose ?? "-"): \(r.status) \(r.issue)")
                    #expect(!r.body.contains("\"family\"") && !r.body.contains("@example.org"))
                }
                let refusal = try await Self.get(client, "/fhir/Patient", token: loyalty, purpose: "TREAT")
                #expect(refusal.issue.contains("does not carry purpose of use TREAT"), "\(refusal.issue)")

                // Three of the hundred sign an authorization releasing their e-mail (telecom) only.
                let consenting = ["pat-0011", "pat-0042", "pat-0077"]
                var consentIDs: [String] = []
                for pid in consenting {
                    let body = DemoPharmacy.authorization(
                        id: nil, patient: pid, elements: ["Patient.telecom"], expires: Date().addingTimeInterval(86400))
                    let r = try await client.send(.post, "/fhir/Consent", token: pharmacist, body: String(decoding: body.encodedBytes(), as: UTF8.self))
                    #expect(r.status == 201, "\(r.body)")
                    consentIDs.append(r.json?["id"]?.stringValue ?? "")
                }
                // A fourth would release only an element the policy never lets MKT see: refused when signed, saying so
                // (walk-through finding 13), and that patient stays invisible.
                let hiddenOnly = DemoPharmacy.authorization(id: nil, patient: "pat-0050", elements: ["Patient.birthDate"], expires: Date().addingTimeInterval(86400))
                let refused = try await client.send(.post, "/fhir/Consent", token: pharmacist, body: String(decoding: hiddenOnly.encodedBytes(), as: UTF8.self))
                #expect(refused.status == 400 && refused.issue.contains("Patient.birthDate") && refused.issue.contains("never releases"), "\(refused.body)")
                #expect(try await client.get("/fhir/Patient/pat-0050", token: loyalty).status == 404)
                let three = try await client.get("/fhir/Patient?_count=200", token: loyalty)
                #expect(three.total == 3)
                #expect(Set(three.entries.compactMap { $0["resource"]?["id"]?.stringValue }) == Set(consenting))
                for e in three.entries {
                    let keys = Set(e["resource"]?.objectValue?.keys.map { $0 } ?? [])
                    #expect(keys == ["resourceType", "id", "telecom"], "\(keys)")
                }
                #expect(!three.body.contains("\"name\"") && !three.body.contains("birthDate") && !three.body.contains("address"))
                #expect(try await client.get("/fhir/Patient/pat-0042", token: loyalty).json?["telecom"] != nil)
                #expect(try await client.get("/fhir/Patient/pat-0043", token: loyalty).status == 404)
                // Current values only: no history, no versions, no change times, no searches over elements.
                for path in ["/fhir/Patient/pat-0042/_history", "/fhir/Patient/pat-0042/_history/1", "/fhir/Patient?_lastUpdated=gt2000-01-01",
                             "/fhir/Patient?gender=female", "/fhir/Patient?_id=pat-0042&_revinclude=MedicationDispense:prescription"] {
                    let r = try await client.get(path, token: loyalty)
                    #expect(r.status == 403, "\(path): \(r.status)")
                }
                #expect(try await client.get("/fhir/Patient?_id=pat-0042,pat-0043", token: loyalty).total == 1)
                let seen = try await server.store.auditRecords().last { $0.entry.actor.id == DemoPharmacy.loyaltyClientID && $0.entry.action == "search" }
                #expect(seen?.entry.patients == ["pat-0042"])

                // The patient revokes one: the next request no longer returns them.
                let patientToken = try await server.token("patient011")
                let mine = try await client.get("/fhir/Consent/\(consentIDs[0])", token: patientToken)
                #expect(mine.status == 200)
                var revoked = mine.json!
                revoked["status"] = "inactive"
                revoked["meta"] = nil
                let put = try await client.send(
                    .put, "/fhir/Consent/\(consentIDs[0])", token: patientToken, body: String(decoding: revoked.encodedBytes(), as: UTF8.self))
                #expect(put.status == 200, "\(put.body)")
                #expect(try await client.get("/fhir/Patient?_count=200", token: loyalty).total == 2)

                // The other two expire.
                let expiry = Date().addingTimeInterval(5)
                for (i, id) in consentIDs.enumerated().dropFirst() {
                    let body = DemoPharmacy.authorization(id: id, patient: consenting[i], elements: ["Patient.telecom"], expires: expiry)
                    let r = try await client.send(.put, "/fhir/Consent/\(id)", token: pharmacist, body: String(decoding: body.encodedBytes(), as: UTF8.self))
                    #expect(r.status == 200, "\(r.body)")
                }
                #expect(try await client.get("/fhir/Patient?_count=200", token: loyalty).total == 2)
                try await Task.sleep(for: .seconds(max(0, expiry.timeIntervalSinceNow) + 0.5))
                let expired = try await client.get("/fhir/Patient?_count=200", token: loyalty)
                #expect(expired.total == 0 && expired.entries.isEmpty)
                #expect(try await server.store.verifyAudit().ok)
            }
        }
    }

    @Test("purposes a role or token does not carry are refused: partner MKT, support medications, admin clinical data")
    func refusedPurposes() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let partner = try await Self.clientToken(client, id: DemoPharmacy.partnerClientID, secret: server.partnerSecret)
            let support = try await server.token("support")
            let admin = try await server.token("admin")
            let pharmacist = try await server.token("pharmacist")
            for (who, token, path, purpose, status) in [
                ("partner MKT", partner, "/fhir/Patient", "MKT", 403),
                ("partner HMARKT", partner, "/fhir/Patient", "HMARKT", 403),
                ("support medications", support, "/fhir/MedicationRequest", nil, 403),
                ("support TREAT", support, "/fhir/Patient", "TREAT", 403),
                ("admin patients", admin, "/fhir/Patient", nil, 403),
                ("admin TREAT", admin, "/fhir/MedicationRequest", "TREAT", 403),
                ("pharmacist MKT", pharmacist, "/fhir/Patient", "MKT", 403),
                ("pharmacist lowercase", pharmacist, "/fhir/Patient", "treat", 400),
                ("pharmacist empty", pharmacist, "/fhir/Patient", " ", 400),
            ] as [(String, String, String, String?, Int)] {
                let r = try await Self.get(client, path, token: token, purpose: purpose)
                #expect(r.status == status, "\(who): \(r.status) \(r.issue)")
                #expect(r.json?["resourceType"]?.stringValue == "OperationOutcome" && !r.issue.isEmpty, "\(who)")
            }
            // A purpose the token carries works, and is what the audit record names.
            let payment = try await Self.get(client, "/fhir/Patient/pat-0001", token: pharmacist, purpose: "HPAYMT")
            #expect(payment.status == 200)
            #expect(payment.json?["identifier"] != nil && payment.json?["communication"] == nil)
            let record = try await server.store.auditRecords().last { $0.entry.requestID == payment.requestID }
            #expect(record?.entry.purpose == "HPAYMT")
            let event = try await client.get("/fhir/AuditEvent/\(record?.seq ?? 0)", token: try await server.token("privacy"))
            #expect(event.body.contains("\"HPAYMT\""), "purposeOfEvent carries the purpose")
            // A token narrowed to one purpose acts under it by default, and carries nothing else.
            let u = try await server.store.user(named: "pharmacist")!
            let billing = try await server.auth.issue(
                subject: u.id, role: u.role, tenant: u.tenant, patient: nil, kind: "user", scope: nil, purposes: [.payment]).accessToken
            let billed = try await client.get("/fhir/Patient/pat-0002", token: billing)
            #expect(billed.status == 200 && billed.json?["telecom"] != nil && billed.json?["communication"] == nil && billed.json?["active"] == nil)
            #expect(try await Self.get(client, "/fhir/Patient/pat-0002", token: billing, purpose: "TREAT").status == 403)
            await #expect(throws: FHIRError.self) {
                _ = try await server.auth.issue(subject: u.id, role: u.role, tenant: u.tenant, patient: nil, kind: "user", scope: nil, purposes: [.marketing])
            }
            // A patient's view of their audit trail names staff by role and pharmacy only.
            let trail = try await client.get("/fhir/AuditEvent?patient=pat-0001&_count=100", token: try await server.token("patient001"))
            #expect(trail.status == 200 && trail.body.contains("pharmacist@demo-pharmacy") && !trail.body.contains(u.id))
            // Support sees demographics only (minimum necessary), by policy.
            let demo = try await client.get("/fhir/Patient/pat-0001", token: support)
            #expect(demo.status == 200 && demo.json?["name"] != nil)
        }
    }

    @Test("the policy table: the bundled one is valid; unknown roles, purposes, types, elements and bad rows refuse with the line")
    func policyTable() throws {
        let table = try PolicyTable.loadBundled()
        #expect(table.purposes(for: .businessLine) == [.marketing, .healthcareMarketing])
        #expect(table.purposes(for: .patient) == [.patientRequest, .familyRequest])
        for (text, message) in [
            ("pharmacist TREAT * *\nnurse TREAT * *", "line 2: unknown role 'nurse'"),
            ("pharmacist TREET * *", "line 1: unknown purpose of use 'TREET'"),
            ("pharmacist TREAT Prescription *", "line 1: unknown resource type 'Prescription'"),
            ("# comment\nsupport HOPERAT Patient name,ssn", "line 2: unknown element 'ssn' of Patient"),
            ("pharmacist TREAT *", "line 1: expected 4 columns"),
            ("pharmacist TREAT * *\npharmacist TREAT * *", "line 2: duplicate row"),
            ("pharmacist TREAT * name", "line 1: resource '*' takes '*' as fields"),
            ("# nothing", "has no rules"),
        ] {
            #expect(throws: PolicyError.self) { try PolicyTable.parse(text, source: "test") }
            do {
                _ = try PolicyTable.parse(text, source: "test")
            } catch {
                #expect("\(error)".contains(message), "\(error)")
            }
        }
        #expect(throws: PolicyError.self) { try PurposeOfUse.parse("TREAT;DROP") }
        // CRLF files parse with the same line numbers.
        #expect(throws: PolicyError.self) { try PolicyTable.parse("pharmacist TREAT * *\r\nnurse TREAT * *\r\n", source: "crlf") }
        let crlf = try PolicyTable.parse("pharmacist TREAT * *\r\nsupport HOPERAT Patient name\r\n", source: "crlf")
        #expect(crlf.purposes(for: .support) == [.operations])
        // A purpose that shows part of a type: reading only, and no search or include over hidden elements.
        let p = Principal(subject: "u1", roleName: "support", tenant: "t1", patientID: nil)
        let scope = try AccessPolicy.scope(for: p, table: crlf)
        #expect(scope.visibleElements(of: .patient) == ["resourceType", "id", "meta", "name"])
        #expect(scope.rights(for: .patient).read && !scope.rights(for: .patient).update)
        #expect(throws: FHIRError.self) { try SearchQuery.parse(.patient, [("identifier", "MRN1")], scope: scope) }
        #expect(throws: FHIRError.self) { try SearchQuery.parse(.patient, [("birthdate", "1980")], scope: scope) }
        #expect(throws: FHIRError.self) { try SearchQuery.parse(.patient, [("gender", "female")], scope: scope) }
        _ = try SearchQuery.parse(.patient, [("family", "Smith")], scope: scope)
        // A token carrying several purposes without the role's default acts under the first of them.
        let narrowed = Principal(subject: "u1", roleName: "pharmacist", tenant: "t1", patientID: nil, purposes: [.operations, .payment])
        #expect(narrowed.purpose == .payment)
        #expect(try PurposeOfUse.parse("HRESCH") == .research)
    }

    @Test("Consent: created with a signed authorization checked by content, read by its patient only, searched by staff")
    func consentResource() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let pharmacist = try await server.token("pharmacist")
            let patient = try await server.token("patient003")
            var body = DemoPharmacy.authorization(id: nil, patient: "pat-0003", expires: Date().addingTimeInterval(3600))
            // Not a PDF, whatever its declared type.
            body["sourceAttachment"]?["data"] = .string(Data("<html>not a form</html>".utf8).base64EncodedString())
            var r = try await client.send(.post, "/fhir/Consent", token: patient, body: String(decoding: body.encodedBytes(), as: UTF8.self))
            #expect(r.status == 400 && r.issue.contains("not one of the accepted types (application/pdf, image/png, image/jpeg)"), "\(r.issue)")
            body = DemoPharmacy.authorization(id: nil, patient: "pat-0003", elements: ["Patient.ssn"], expires: Date().addingTimeInterval(3600))
            r = try await client.send(.post, "/fhir/Consent", token: patient, body: String(decoding: body.encodedBytes(), as: UTF8.self))
            #expect(r.status == 400 && r.issue.contains("not a data element"), "\(r.issue)")
            // A patient authorizes for themselves only.
            body = DemoPharmacy.authorization(id: nil, patient: "pat-0004", expires: Date().addingTimeInterval(3600))
            r = try await client.send(.post, "/fhir/Consent", token: patient, body: String(decoding: body.encodedBytes(), as: UTF8.self))
            #expect(r.status == 400 || r.status == 403, "\(r.status) \(r.issue)")
            // Nested provisions (deny exceptions) cannot be honoured element by element: refused for client authorizations.
            body = DemoPharmacy.authorization(id: nil, patient: "pat-0003", expires: Date().addingTimeInterval(3600))
            body["provision"]?["provision"] = .array([.object(["type": "deny"])])
            r = try await client.send(.post, "/fhir/Consent", token: patient, body: String(decoding: body.encodedBytes(), as: UTF8.self))
            #expect(r.status == 400 && r.issue.contains("must not nest provisions"), "\(r.issue)")
            body = DemoPharmacy.authorization(id: nil, patient: "pat-0003", expires: Date().addingTimeInterval(3600))
            r = try await client.send(.post, "/fhir/Consent", token: patient, body: String(decoding: body.encodedBytes(), as: UTF8.self))
            #expect(r.status == 201, "\(r.body)")
            // Under a purpose that shows only part of a Patient, writes are refused (saving the part would lose the rest).
            let partial = try await Self.get(client, "/fhir/Patient/pat-0003", token: pharmacist, purpose: "HPAYMT")
            var edited = partial.json!
            edited["meta"] = nil
            var h = HTTPFields()
            h[Self.purpose] = "HPAYMT"
            let put = try await client.send(.put, "/fhir/Patient/pat-0003", token: pharmacist, body: String(decoding: edited.encodedBytes(), as: UTF8.self), headers: h)
            #expect(put.status == 403, "\(put.status) \(put.issue)")
            let id = r.json?["id"]?.stringValue ?? ""
            #expect(try await client.get("/fhir/Consent/\(id)", token: patient).status == 200)
            #expect(try await client.get("/fhir/Consent/\(id)", token: try await server.token("patient004")).status == 404)
            #expect(try await client.get("/fhir/Consent?patient=pat-0003", token: pharmacist).total ?? 0 >= 1)
            #expect(try await client.get("/fhir/Consent?patient=pat-0003", token: try await server.token("support")).status == 200)
            #expect(try await client.get("/fhir/Consent?patient=pat-0003", token: try await server.token("technician")).status == 403)
        }
    }
}

extension PurposeOfUseTests {
    static func breakGlass(_ client: HTTPClient, _ patient: String, token: String, reason: String?) async throws -> Reply {
        var params: [JSON] = []
        if let reason { params.append(.object(["name": "reason", "valueString": .string(reason)])) }
        let body: JSON = .object(["resourceType": "Parameters", "parameter": .array(params)])
        return try await client.send(.post, "/fhir/Patient/\(patient)/$break-glass", token: token, body: String(decoding: body.encodedBytes(), as: UTF8.self))
    }

    @Test("break-glass: refused without a reason, works once with one for that patient only, expires, and shows in the report")
    func breakGlass() async throws {
        try await LiveServer.start(patients: 12, accounts: 2, partnerPatients: 1).using { server in
            try await server.client().using { client in
                let support = try await server.token("support")
                #expect(try await Self.get(client, "/fhir/MedicationRequest?patient=pat-0005", token: support).status == 403)
                let early = try await Self.get(client, "/fhir/MedicationRequest?patient=pat-0005", token: support, purpose: "ETREAT")
                #expect(early.status == 403 && early.issue.contains("break-glass"), "\(early.issue)")
                #expect(try await Self.breakGlass(client, "pat-0005", token: support, reason: nil).status == 400)
                #expect(try await Self.breakGlass(client, "pat-0005", token: support, reason: "urgent").status == 400)
                #expect(try await Self.breakGlass(client, "pat-0005", token: try await server.token("technician"), reason: "patient collapsed at the counter").status == 403)
                #expect(try await Self.breakGlass(client, "pat-9999", token: support, reason: "patient collapsed at the counter").status == 404)

                let granted = try await Self.breakGlass(client, "pat-0005", token: support, reason: "Patient locked out at the counter; verifying identity by phone")
                #expect(granted.status == 201, "\(granted.body)")
                #expect(try await Self.get(client, "/fhir/Patient/pat-0005", token: support, purpose: "ETREAT").json?["birthDate"] != nil)
                // The policy table gives support's break-glass no clinical data (finding 2 of the outside review).
                let meds = try await Self.get(client, "/fhir/MedicationRequest?patient=pat-0005", token: support, purpose: "ETREAT")
                #expect(meds.status == 403, "\(meds.body)")
                #expect(try await Self.get(client, "/fhir/Communication?patient=pat-0005", token: support, purpose: "ETREAT").status == 403)
                #expect(try await Self.get(client, "/fhir/Patient/pat-0006", token: support, purpose: "ETREAT").status == 404)
                #expect(try await Self.get(client, "/fhir/Patient?_id=pat-0006", token: support, purpose: "ETREAT").total == 0)
                #expect(try await Self.get(client, "/fhir/Patient/pat-0005", token: support, purpose: "ETREAT").status == 200)
                let write = try await client.send(
                    .post, "/fhir/Communication", token: support, body: #"{"resourceType":"Communication","status":"completed","subject":{"reference":"Patient/pat-0005"}}"#,
                    headers: [Self.purpose: "ETREAT"])
                #expect(write.status == 403, "break-glass is read-only")

                let today = String(Instant.now().prefix(10))
                let cli = AccessContext(
                    scope: .system(reason: "saferx break-glass report", tenant: DemoPharmacy.tenant), requestID: "cli-report", sourceIP: "local",
                    userAgent: "saferx cli")
                let report = try await server.store.breakGlassReport(cli, day: today)
                let reportRead = try await server.store.auditRecords().last { $0.entry.requestID == "cli-report" }
                #expect(reportRead?.entry.patients == ["pat-0005"] && reportRead?.entry.action == "read", "the report's read names its patients")
                #expect(report.count == 1)
                #expect(report.first?.patientID == "pat-0005" && report.first?.role == "support")
                #expect(report.first?.reason.contains("verifying identity by phone") == true)
                #expect((report.first?.accesses ?? 0) >= 2, "\(report)")
                let record = try await server.store.auditRecords().last { $0.entry.action == "break-glass" }
                #expect(record?.entry.patients == ["pat-0005"])

                // Sixty minutes later (simulated): the override no longer opens anything.
                try await server.store.dbPool.write { db in try db.execute(sql: "UPDATE break_glass SET expires = '2000-01-01T00:00:00.000Z'") }
                #expect(try await Self.get(client, "/fhir/Patient/pat-0005", token: support, purpose: "ETREAT").status == 403)
            }
        }
    }

    @Test("accounting of disclosures matches the audit log exactly; the access log shows staff by role and pharmacy")
    func disclosures() async throws {
        try await LiveServer.start(patients: 12, accounts: 5, partnerPatients: 1, consentPatients: 1).using { server in
            try await server.client().using { client in
                let pid = "pat-0003"  // holds the demo's marketing authorization for the loyalty program
                let pharmacist = try await server.token("pharmacist")
                let patient = try await server.token("patient003")
                let secret = server.credentials.first { $0.client_id == DemoPharmacy.loyaltyClientID }!.client_secret!
                let loyalty = try await Self.clientToken(client, id: DemoPharmacy.loyaltyClientID, secret: secret)

                // A scripted day: treatment, payment, the patient's own reads (not disclosures), and two marketing disclosures.
                #expect(try await client.get("/fhir/Patient/\(pid)", token: pharmacist).status == 200)
                #expect(try await Self.get(client, "/fhir/Patient/\(pid)", token: pharmacist, purpose: "HPAYMT").status == 200)
                #expect(try await client.get("/fhir/MedicationRequest?patient=\(pid)", token: patient).status == 200)
                #expect(try await client.get("/fhir/Patient?_count=50", token: loyalty).total == 1)
                #expect(try await Self.get(client, "/fhir/Patient/\(pid)", token: loyalty, purpose: "HMARKT").status == 404, "authorized for MKT only")
                #expect(try await client.get("/fhir/Patient/\(pid)", token: loyalty).status == 200)
                #expect(try await client.get("/fhir/Patient/pat-0004", token: loyalty).status == 404)

                let report = try await client.get("/fhir/Patient/\(pid)/$disclosures", token: patient)
                #expect(report.status == 200, "\(report.body)")
                let lines = report.json?["parameter"]?.arrayValue?.filter { $0["name"]?.stringValue == "disclosure" } ?? []
                func part(_ l: JSON, _ name: String) -> String {
                    let p = l["part"]?.arrayValue?.first { $0["name"]?.stringValue == name }
                    return p?["valueString"]?.stringValue ?? p?["valueCode"]?.stringValue ?? p?["valueInstant"]?.stringValue
                        ?? p?["valueReference"]?["reference"]?.stringValue ?? ""
                }
                // Exactly the audit log's successful non-TPO accesses naming the patient.
                let expected = try await server.store.auditRecords().filter {
                    $0.entry.patients.contains(pid) && $0.entry.outcome == "success" && ["read", "vread", "history", "search"].contains($0.entry.action)
                        && !(PurposeOfUse(rawValue: $0.entry.purpose)?.isTPO ?? true)
                }
                #expect(expected.count == 2)
                #expect(lines.map { part($0, "auditEvent") } == expected.map { "AuditEvent/\($0.seq)" })
                #expect(lines.allSatisfy { part($0, "purpose") == "MKT" && part($0, "recipient").contains("loyalty") })
                #expect(lines.allSatisfy { part($0, "disclosed").contains("elements: name,telecom") }, "\(lines)")

                // Who looked: every access, staff by role and pharmacy, never a user id or a network address.
                let log = try await client.get("/fhir/Patient/\(pid)/$access-log", token: patient)
                #expect(log.status == 200)
                let accesses = log.json?["parameter"]?.arrayValue?.filter { $0["name"]?.stringValue == "access" } ?? []
                #expect(accesses.count >= 5)
                #expect(accesses.contains { part($0, "recipient") == "pharmacist at SafeRx Demo Pharmacy" && part($0, "purpose") == "HPAYMT" })
                #expect(!log.body.contains("user-0"), "no user ids in the access log")

                // Only the patient (or the privacy officer) may ask, and only about this patient.
                #expect(try await client.get("/fhir/Patient/pat-0004/$disclosures", token: patient).status == 404)
                #expect(try await client.get("/fhir/Patient/\(pid)/$disclosures", token: pharmacist).status == 403)
                #expect(try await client.get("/fhir/Patient/\(pid)/$disclosures", token: try await server.token("privacy")).status == 200)
                #expect(try await client.get("/fhir/Patient/\(pid)/$everything", token: patient).status == 404)
                // The staff command-line report gives the same lines.
                let cli = try await server.store.accessLog(
                    AccessContext(scope: .system(reason: "saferx disclosures", tenant: DemoPharmacy.tenant), requestID: "cli", sourceIP: "local", userAgent: "saferx cli"),
                    patient: pid, everyAccess: false)
                #expect(cli.map(\.seq) == expected.map(\.seq))
            }
        }
    }
}
