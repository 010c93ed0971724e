import Foundation
import HTTPTypes
import SafeRxModel
import SafeRxPharmacy
import SafeRxStore
import SafeRxStoreCore
import Testing

@Suite("Role and tenant isolation") struct RoleIsolationTests {
    static func partnerToken(client: HTTPClient, id: String, secret: String) async throws -> String {
        var h = HTTPFields()
        h[.authorization] = "Basic " + Data("\(id):\(secret)".utf8).base64EncodedString()
        let r = try await client.send(
            .post, "/auth/token", body: "grant_type=client_credentials", contentType: "application/x-www-form-urlencoded", headers: h)
        #expect(r.status == 200, "token: \(r.body)")
        return r.json?["access_token"]?.stringValue ?? ""
    }

    @Test("partner vs partner: each sees only the patients it created, on every path")
    func partnerVersusPartner() async throws {
        let server = try await LiveServer.shared.value
        let secondSecret = DemoPharmacy.randomSecret(bytes: 32)
        try await server.store.addClient(
            APIClient(clientID: "partner-two", secretHash: AuthService.hashClientSecret(secondSecret), role: "partner",
                      tenant: DemoPharmacy.tenant, name: "Second telehealth"))
        try await server.client().using { client in
            let one = try await Self.partnerToken(client: client, id: DemoPharmacy.partnerClientID, secret: server.partnerSecret)
            let two = try await Self.partnerToken(client: client, id: "partner-two", secret: secondSecret)

            // Partner two creates a patient and a prescription for them.
            let created = try await client.send(.post, "/fhir/Patient", token: two, body: """
                {"resourceType":"Patient","name":[{"family":"Partnertwo","given":["Pat"]}],"birthDate":"1990-02-03"}
                """)
            #expect(created.status == 201, "\(created.body)")
            let pid = created.json?["id"]?.stringValue ?? ""
            let rx = try await client.send(.post, "/fhir/MedicationRequest", token: two, body: """
                {"resourceType":"MedicationRequest","status":"active","intent":"order","subject":{"reference":"Patient/\(pid)"},
                 "medicationReference":{"reference":"Medication/med-1"},
                 "requester":{"identifier":{"system":"http://hl7.org/fhir/sid/us-npi","value":"1234567893"}}}
                """)
            #expect(rx.status == 201, "\(rx.body)")
            let rxID = rx.json?["id"]?.stringValue ?? ""

            // Partner one owns the demo's last 10 patients (pat-0051...pat-0060) and nothing else.
            let own = try await client.get("/fhir/Patient?_count=100", token: one)
            #expect(own.total == 10)
            let ownIDs = Set(own.entries.compactMap { $0["resource"]?["id"]?.stringValue })
            #expect(ownIDs == Set((51...60).map(DemoPharmacy.patientID)))

            for path in [
                "/fhir/Patient/\(pid)", "/fhir/Patient/\(pid)/_history", "/fhir/Patient/\(pid)/_history/1",
                "/fhir/MedicationRequest/\(rxID)", "/fhir/MedicationRequest/\(rxID)/_history/1", "/fhir/Patient/pat-0001",
                "/fhir/MedicationRequest/rx-pat-0001-1",
            ] {
                let r = try await client.get(path, token: one)
                #expect(r.status == 404, "\(path): \(r.status)")
                #expect(!r.body.contains(pid) || path.contains(pid) && r.issue.contains("not known"))
            }
            for path in [
                "/fhir/MedicationRequest?patient=\(pid)", "/fhir/MedicationRequest?_id=\(rxID)&_revinclude=MedicationDispense:prescription",
                "/fhir/Patient?_id=\(pid)", "/fhir/MedicationRequest?patient=pat-0001&_include=MedicationRequest:medication",
            ] {
                let r = try await client.get(path, token: one)
                #expect(r.status == 200 && r.total == 0, "\(path): \(r.status) \(r.total ?? -1)")
            }
            // Writes may not reach the other partner's patient.
            let attach = try await client.send(.post, "/fhir/MedicationRequest", token: one, body: """
                {"resourceType":"MedicationRequest","status":"active","intent":"order","subject":{"reference":"Patient/\(pid)"},
                 "medicationCodeableConcept":{"text":"x"}}
                """)
            #expect(attach.status == 400)
            #expect(attach.issue.contains("does not resolve"))
            // And the other way round.
            let back = try await client.get("/fhir/Patient/pat-0055", token: two)
            #expect(back.status == 404)
            let mine = try await client.get("/fhir/Patient/\(pid)", token: two)
            #expect(mine.status == 200)
        }
    }

    @Test("support sees demographics and contact data only, never clinical resources")
    func supportVersusClinical() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let token = try await server.token("support")
            for path in [
                "/fhir/MedicationRequest/rx-pat-0001-1", "/fhir/MedicationRequest?patient=pat-0001", "/fhir/MedicationDispense?patient=pat-0001",
                "/fhir/Communication/msg-pat-0001-1", "/fhir/Communication?patient=pat-0001", "/fhir/AuditEvent",
                "/fhir/MedicationRequest/rx-pat-0001-1/_history",
            ] {
                let r = try await client.get(path, token: token)
                #expect(r.status == 403, "\(path): \(r.status)")
                #expect(!r.body.contains("rx-pat"))
            }
            let p = try await client.get("/fhir/Patient/pat-0001", token: token)
            #expect(p.status == 200)
            let keys = Set(p.json?.objectValue?.keys.map { $0 } ?? [])
            #expect(keys.isSubset(of: SafeRxPolicyElements.support))
            let search = try await client.get("/fhir/Patient?family=\(p.json?["name"]?.arrayValue?.first?["family"]?.stringValue ?? "x")", token: token)
            #expect(search.status == 200 && (search.total ?? 0) >= 1)
        }
    }

    @Test("no one crosses tenants; privacy officers see only AuditEvent; admins see no PHI")
    func tenantsAndOfficeRoles() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let here = try await server.token("pharmacist")
            let there = try await server.token("pharmacist2")
            #expect(try await client.get("/fhir/Patient/other-1", token: here).status == 404)
            #expect(try await client.get("/fhir/Patient/pat-0001", token: there).status == 404)
            #expect(try await client.get("/fhir/MedicationRequest?patient=other-1", token: here).total == 0)
            #expect(try await client.get("/fhir/Patient?_count=100", token: there).total == 5)

            let privacy = try await server.token("privacy")
            #expect(try await client.get("/fhir/Patient/pat-0001", token: privacy).status == 403)
            let audit = try await client.get("/fhir/AuditEvent?_count=5", token: privacy)
            #expect(audit.status == 200 && (audit.total ?? 0) > 0)
            #expect(audit.entries.first?["resource"]?["resourceType"]?.stringValue == "AuditEvent")

            let admin = try await server.token("admin")
            for path in ["/fhir/Patient/pat-0001", "/fhir/Patient", "/fhir/AuditEvent", "/fhir/MedicationRequest?patient=pat-0001"] {
                #expect(try await client.get(path, token: admin).status == 403, "\(path)")
            }
        }
    }

    @Test("a patient reads their own data and their own access log, redacted to themselves")
    func patientOwnData() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let login = try await client.send(.post, "/auth/login", body: "{\"username\":\"patient002\",\"password\":\"\(server.password("patient002"))\"}",
                                              contentType: "application/json")
            #expect(login.status == 200)
            #expect(login.json?["patient"]?.stringValue == "Patient/pat-0002")
            #expect(login.json?["token_type"]?.stringValue == "Bearer")
            let token = login.json?["access_token"]?.stringValue ?? ""
            let rx = try await client.get("/fhir/MedicationRequest?patient=pat-0002&_include=MedicationRequest:medication", token: token)
            #expect(rx.status == 200 && (rx.total ?? 0) >= 1)
            #expect(rx.entries.contains { $0["search"]?["mode"]?.stringValue == "include" })
            let log = try await client.get("/fhir/AuditEvent?patient=pat-0002&_count=100", token: token)
            #expect(log.status == 200 && (log.total ?? 0) >= 1)
            #expect(!log.body.contains("pat-0003"))
            // Posting into their own thread works, and the message is theirs.
            let msg = try await client.send(.post, "/fhir/Communication", token: token, body: """
                {"resourceType":"Communication","status":"completed","subject":{"reference":"Patient/pat-0002"},
                 "sender":{"reference":"Patient/pat-0002"},"recipient":[{"reference":"Organization/org-demo"}],
                 "inResponseTo":[{"reference":"Communication/msg-pat-0002-1"}],"payload":[{"contentString":"Thanks!"}]}
                """)
            #expect(msg.status == 201, "\(msg.body)")
            // Impersonating the pharmacy is refused.
            let spoof = try await client.send(.post, "/fhir/Communication", token: token, body: """
                {"resourceType":"Communication","status":"completed","subject":{"reference":"Patient/pat-0002"},
                 "sender":{"reference":"Organization/org-demo"},"payload":[{"contentString":"Your refill is free"}]}
                """)
            #expect(spoof.status == 400)
        }
    }

    @Test("only pharmacists change prescription status; history and vread keep old versions")
    func statusAndHistory() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let tech = try await server.token("technician")
            let pharm = try await server.token("pharmacist")
            let current = try await client.get("/fhir/MedicationRequest/rx-pat-0030-1", token: pharm)
            var body = current.json!
            body["meta"] = nil
            body["status"] = .string(body["status"]?.stringValue == "cancelled" ? "active" : "cancelled")
            let text = String(decoding: body.encoded(), as: UTF8.self)
            let denied = try await client.send(.put, "/fhir/MedicationRequest/rx-pat-0030-1", token: tech, body: text)
            #expect(denied.status == 403)
            let ok = try await client.send(.put, "/fhir/MedicationRequest/rx-pat-0030-1", token: pharm, body: text)
            #expect(ok.status == 200, "\(ok.body)")
            let history = try await client.get("/fhir/MedicationRequest/rx-pat-0030-1/_history", token: pharm)
            #expect(history.total == 2)
            let v1 = try await client.get("/fhir/MedicationRequest/rx-pat-0030-1/_history/1", token: pharm)
            #expect(v1.status == 200 && v1.json?["status"] == current.json?["status"])
            let del = try await client.send(.delete, "/fhir/MedicationRequest/rx-pat-0030-1", token: pharm)
            #expect(del.status == 204)
            #expect(try await client.get("/fhir/MedicationRequest/rx-pat-0030-1", token: pharm).status == 410)
            #expect(try await client.get("/fhir/MedicationRequest/rx-pat-0030-1/_history", token: pharm).total == 3)
            // The patient still cannot see it from another account.
            let other = try await server.token("patient031")
            #expect(try await client.get("/fhir/MedicationRequest/rx-pat-0030-1/_history/1", token: other).status == 404)
        }
    }

    @Test("paging: next links carry the caller's scope and walk every match once")
    func paging() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let pharm = try await server.token("pharmacist")
            var url: String? = "/fhir/Medication?_count=5"
            var seen = Set<String>()
            var total = 0
            while let u = url {
                let r = try await client.get(u, token: pharm)
                #expect(r.status == 200)
                total = r.total ?? 0
                for e in r.entries { seen.insert(e["resource"]?["id"]?.stringValue ?? "") }
                url = r.json?["link"]?.arrayValue?.first { $0["relation"]?.stringValue == "next" }?["url"]?.stringValue
                    .map { String($0[$0.range(of: "/fhir/")!.lowerBound...]) }
            }
            #expect(total == 18, "16 formulary medications and 2 controlled substances")
            #expect(seen.count == total)
        }
    }
}

enum SafeRxPolicyElements {
    static let support: Set<String> = [
        "resourceType", "id", "meta", "identifier", "active", "name", "telecom", "gender", "birthDate", "address",
        "communication", "contact",
    ]
}
