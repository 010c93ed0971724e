import Crypto
import Foundation
import SafeRxSQL
import HTTPTypes
import SafeRxAudit
import SafeRxBreach
import SafeRxDetect
import SafeRxModel
import SafeRxPharmacy
import SafeRxPolicy
import SafeRxStore
import SafeRxStoreCore
import Synchronization
import Testing

/// Breach response against the real server: the scope computed from the audit log matches a scripted intrusion's
/// ground truth exactly, an encrypted file alone is not a breach of unsecured PHI, and a tampered log is refused.
@Suite("Breach response", .serialized)
struct BreachResponseTests {
    /// What the intruder's script knows it received: per patient, the data elements and the first and last time.
    struct Truth {
        var elements: [String: Set<String>] = [:]
        var first: [String: String] = [:]
        var last: [String: String] = [:]

        mutating func saw(_ patient: String, _ elements: [String], at time: String) {
            self.elements[patient, default: []].formUnion(elements)
            if first[patient].map({ time < $0 }) ?? true { first[patient] = time }
            if last[patient].map({ time > $0 }) ?? true { last[patient] = time }
        }

        /// Every resource in an answer (a read or a search Bundle), by the patient it is about.
        mutating func record(_ r: Reply, at time: String) {
            guard r.status == 200, let json = r.json else { return }
            let resources = json["resourceType"]?.stringValue == "Bundle" ? r.entries.compactMap { $0["resource"] } : [json]
            for res in resources {
                guard let type = res["resourceType"]?.stringValue else { continue }
                let patient: String? =
                    type == "Patient" ? res["id"]?.stringValue : res["subject"]?["reference"]?.stringValue.map { String($0.dropFirst("Patient/".count)) }
                guard let patient else { continue }
                saw(patient, ExposureMap.whole(type).map(\.rawValue), at: time)
            }
        }
    }

    @Test("Ground-truth replay: 10,000 patients, a normal day, a stolen partner and a stolen technician credential over different windows and one exported file — the scope matches exactly")
    func groundTruth() async throws {
        let clock = Mutex(Date(timeIntervalSince1970: 1_796_112_000))  // 2026-12-01 08:00 UTC
        func tick(_ s: Double = 7) -> String {
            clock.withLock {
                $0 = $0.addingTimeInterval(s)
                return AuditLog.timestamp($0)
            }
        }
        func set(_ hhmm: String) { clock.withLock { $0 = ISO8601DateFormatter().date(from: "2026-12-01T\(hhmm):00Z")! } }
        try await LiveServer.start(
            patients: 10_000, accounts: 20, partnerPatients: 400, consentPatients: 0,
            detection: DetectionSettings(rules: try DetectionRules.bundled()), auditClock: { clock.withLock { $0 } }).using { server in
            try await server.client().using { client in
                let pharmacist = try await server.token("pharmacist")
                let checker = try await server.token("pharmacist-b")
                let technician = try await server.token("technician")
                let partner = try await RoleIsolationTests.partnerToken(client: client, id: DemoPharmacy.partnerClientID, secret: server.partnerSecret)
                let partnerPatients = (9601...10_000).map { String(format: "pat-%04d", $0) }

                // 08:00–12:00: the day's work, by the same accounts that will later be stolen and by others.
                var verified: [String] = []
                for i in 1...120 {
                    let pid = String(format: "pat-%04d", i * 37)
                    _ = tick()
                    _ = try await client.get("/fhir/MedicationRequest?patient=\(pid)", token: technician)
                    _ = tick()
                    _ = try await client.get("/fhir/Patient/\(pid)", token: pharmacist)
                    if verified.count < 12, let rx = try await client.get("/fhir/MedicationRequest?patient=\(pid)", token: technician).entries.first?["resource"]?["id"]?.stringValue {
                        let refill = try await client.post("/fhir/MedicationRequest/\(rx)/$refill", token: technician, nil)
                        if refill.status == 201, let d = refill.json?["id"]?.stringValue {
                            let fill = JSON.object(["resourceType": "Parameters", "parameter": .array([.object(["name": "state", "valueCode": "in-progress"])])])
                            let verify = JSON.object(["resourceType": "Parameters", "parameter": .array([.object(["name": "state", "valueCode": "verified"])])])
                            #expect(try await client.post("/fhir/MedicationDispense/\(d)/$transition", token: technician, fill).status == 200)
                            #expect(try await client.post("/fhir/MedicationDispense/\(d)/$transition", token: checker, verify).status == 200)
                            verified.append(pid)
                        }
                    }
                    if i % 4 == 0 {
                        _ = tick()
                        _ = try await client.get("/fhir/Patient/\(partnerPatients[i])", token: partner)
                    }
                }
                #expect(verified.count >= 5)

                // 13:00–14:20: someone with the partner's stolen secret reads 150 of its patients, half with prescriptions, slowly
                // enough (one every 30 s, 20 in any 10 minutes) to stay under the partner's bulk rule: what detection does not
                // stop, the scope must still find exactly.
                var truth = Truth()
                set("13:00")
                for (n, pid) in partnerPatients.prefix(150).enumerated() {
                    let at = tick(30)
                    if n % 2 == 0 {
                        truth.record(try await client.get("/fhir/Patient/\(pid)", token: partner), at: at)
                    } else {
                        let r = try await client.get("/fhir/MedicationRequest?patient=\(pid)&_include=MedicationRequest:patient", token: partner)
                        #expect(r.status == 200 && !r.entries.isEmpty, "the partner reads the prescriptions it sent: \(r.status) \(r.body.prefix(300))")
                        truth.record(r, at: at)
                    }
                    // Meanwhile, the pharmacy's own work goes on (not part of the incident).
                    _ = tick(1)
                    _ = try await client.get("/fhir/Patient/\(String(format: "pat-%04d", 5000 + n))", token: pharmacist)
                }
                // 14:30: someone with the technician's stolen password pages through patients until the detector cuts them off.
                set("14:30")
                var offset = 0
                while true {
                    let at = tick(2)
                    let page = try await client.get("/fhir/Patient?_count=20&_offset=\(offset)", token: technician)
                    truth.record(page, at: at)
                    if page.status != 200 { break }
                    offset += 20
                }
                // 14:45: the day's fulfillment file goes to the vendor (encrypted to its key); it turns up where it should not.
                set("14:45")
                let vendorKey = Curve25519.KeyAgreement.PrivateKey()
                try await server.store.addVendor(.operatorCommand(reason: "test", write: true), id: "acme-ship", tenant: DemoPharmacy.tenant, name: "Acme Shipping", publicKey: vendorKey.publicKey.rawRepresentation)
                let exportCtx = AccessContext(
                    scope: .system(reason: "fulfillment export", tenant: DemoPharmacy.tenant), requestID: "export", sourceIP: "local", userAgent: "test")
                let export = try await server.store.exportManifest(exportCtx, vendor: "acme-ship", day: String(AuditLog.timestamp(Date()).prefix(10)))
                let exportTime = AuditLog.timestamp(clock.withLock { $0 })
                #expect(export.rows == verified.count)
                let file = try #require(try await server.store.fulfillmentFile(sha256: export.sha256))
                for p in file.patients { truth.saw(p, ["name", "address"], at: exportTime) }
                // 15:00 onwards: normal work again by the (reinstated) partner: outside the window.
                set("15:30")
                _ = try await client.get("/fhir/Patient/\(partnerPatients[300])", token: partner)

                // Declare and scope.
                let incident = Incident(
                    id: "inc-truth", tenant: DemoPharmacy.tenant, discovered: "2026-12-02", declared: AuditLog.timestamp(Date()), declaredBy: "privacy",
                    actors: [DemoPharmacy.partnerClientID, "technician"], from: "2026-12-01T13:00:00Z", to: "2026-12-01T15:00:00Z",
                    files: [String(export.sha256.prefix(12))], description: "Stolen credentials were used.", whatWeAreDoing: "We suspended them.")
                try await server.store.declareIncident(.operatorCommand(reason: "test", tenant: "*"), incident)
                let scope = try await server.store.incidentScope(incident)
                #expect(scope.certified, "\(scope.chainProblem ?? "")")
                let got = Dictionary(uniqueKeysWithValues: scope.affected.map { ($0.patient, $0) })
                let computedSet = Set(got.keys), truthSet = Set(truth.elements.keys)
                let missing = truthSet.subtracting(computedSet).sorted().prefix(10), extra = computedSet.subtracting(truthSet).sorted().prefix(10)
                #expect(computedSet == truthSet, "missing: \(missing); extra: \(extra)")
                let fileOnly = Set(file.patients).subtracting(partnerPatients.prefix(150)).count
                let expected = 150 + 40 + fileOnly
                #expect(truth.elements.count == expected, "150 from the partner, 40 before the technician's cut, the file's")
                var mismatches: [String] = []
                for (p, elements) in truth.elements {
                    guard let a = got[p] else { continue }
                    if a.elements != elements { mismatches.append("\(p) elements \(a.elements.sorted()) vs \(elements.sorted())") }
                    if a.first != truth.first[p] || a.last != truth.last[p] { mismatches.append("\(p) window \(a.first)–\(a.last) vs \(truth.first[p]!)–\(truth.last[p]!)") }
                    if a.evidence.isEmpty { mismatches.append("\(p) has no evidence") }
                    let inFile = file.patients.contains(p), viaAPI = truth.first[p] != exportTime || !inFile
                    if a.secured != (inFile && !viaAPI) { mismatches.append("\(p) secured \(a.secured)") }
                }
                #expect(mismatches.isEmpty, "\(mismatches.prefix(10))")
                #expect(scope.refused >= 1, "the technician's refused page is counted, not exposed")

                // The package: assessment facts, obligations and the report data come from the same scope.
                let package = try await BreachResponse.package(server.store, "inc-truth")
                #expect(package.assessment.facts.affected == truth.elements.count)
                #expect(package.assessment.notify && package.obligations.contains { $0.id == "hipaa-individual" && $0.due == "2027-01-31" })
                #expect(package.residents.values.reduce(0, +) == truth.elements.count)
            }
        }
    }

    @Test("Safe harbor: an incident that only involves an encrypted file whose key is not compromised is not a breach of unsecured PHI; with the key compromised it is")
    func encryptedFileSafeHarbor() async throws {
        try await LiveServer.start(patients: 40, accounts: 5, partnerPatients: 5).using { server in
            try await server.client().using { client in
                let technician = try await server.token("technician")
                let checker = try await server.token("pharmacist-b")
                for n in 1...10 {
                    let rx = try #require(try await client.get("/fhir/MedicationRequest?patient=pat-00\(String(format: "%02d", n + 20))", token: technician).entries.first?["resource"]?["id"]?.stringValue)
                    guard let d = try await client.post("/fhir/MedicationRequest/\(rx)/$refill", token: technician, nil).json?["id"]?.stringValue else { continue }
                    _ = try await client.post("/fhir/MedicationDispense/\(d)/$transition", token: technician, .from(#"{"resourceType":"Parameters","parameter":[{"name":"state","valueCode":"in-progress"}]}"#))
                    _ = try await client.post("/fhir/MedicationDispense/\(d)/$transition", token: checker, .from(#"{"resourceType":"Parameters","parameter":[{"name":"state","valueCode":"verified"}]}"#))
                }
                let key = Curve25519.KeyAgreement.PrivateKey()
                try await server.store.addVendor(.operatorCommand(reason: "test", write: true), id: "acme", tenant: DemoPharmacy.tenant, name: "Acme", publicKey: key.publicKey.rawRepresentation)
                let ctx = AccessContext(scope: .system(reason: "export", tenant: DemoPharmacy.tenant), requestID: "e", sourceIP: "local", userAgent: "test")
                let export = try await server.store.exportManifest(ctx, vendor: "acme", day: String(AuditLog.timestamp(Date()).prefix(10)))
                #expect(export.rows > 0)
                for (id, compromised) in [("inc-file", false), ("inc-file-key", true)] {
                    try await server.store.declareIncident(.operatorCommand(reason: "test", tenant: "*"), Incident(
                        id: id, tenant: DemoPharmacy.tenant, discovered: "2026-12-01", declared: AuditLog.timestamp(Date()), declaredBy: "privacy", actors: [],
                        from: nil, to: nil, files: [export.sha256], fileKeyCompromised: compromised, description: "A file was found on a public share.",
                        whatWeAreDoing: "We had it removed."))
                    let p = try await BreachResponse.package(server.store, id)
                    #expect(p.assessment.facts.affected == export.rows)
                    if compromised {
                        #expect(p.assessment.result.conclusion == .breach && p.obligations.contains { $0.id == "hipaa-individual" })
                    } else {
                        #expect(p.assessment.result.conclusion == .notUnsecured, "\(p.assessment.result.why)")
                        #expect(p.assessment.result.why.contains("encrypted") && p.assessment.result.why.contains("not known to be compromised"))
                        #expect(p.obligations.map(\.id) == ["hipaa-documentation"])
                    }
                }
            }
        }
    }

    @Test("Letters and the mail merge read the sealed contact kept with every Patient version: updated, deleted, re-encrypted, erased and older records")
    func letterContacts() async throws {
        try await LiveServer.start(patients: 12, accounts: 3, partnerPatients: 1).using { server in
            let tenant = DemoPharmacy.tenant
            let ctx = AccessContext(scope: .system(reason: "test", tenant: tenant, write: true), requestID: "t", sourceIP: "local", userAgent: "test")
            // pat-0003 moves; pat-0004 is deleted; pat-0005's contact is missing (a record written before contacts were kept).
            var moved = try #require(try await server.store.read(ctx, .patient, id: "pat-0003").json)
            moved["address"] = .array([.object(["use": "home", "line": .array(["77 Quillfeather Lane", "Unit 9"]), "city": "Dover", "state": "DE", "postalCode": "19901"])])
            moved["meta"] = nil
            _ = try await server.store.update(ctx, .patient, id: "pat-0003", moved)
            try await server.store.delete(ctx, .patient, id: "pat-0004")
            try await server.store.dbPool.write { db in
                try db.execute(sql: "UPDATE patient_meta SET contact = NULL, contact_key_version = NULL WHERE patient_id = 'pat-0005'")
            }
            let ids = (1...6).map { String(format: "pat-%04d", $0) }
            try await server.store.declareIncident(.operatorCommand(reason: "test", tenant: "*"), Incident(
                id: "inc-contacts", tenant: tenant, discovered: "2026-12-01", declared: AuditLog.timestamp(Date()), declaredBy: "privacy", actors: [],
                from: nil, to: nil, files: [], resources: ids.map { "Patient/\($0)" }, description: "Six records were printed and lost.", whatWeAreDoing: "We looked."))
            let package = try await BreachResponse.package(server.store, "inc-contacts")
            func rows() async throws -> [String: [String]] {
                let merge = try await BreachResponse.mailMerge(server.store, package, patients: package.notifiable.map(\.patient))
                let table = CSV.rows(String(decoding: merge.csv, as: UTF8.self))
                #expect(table.first == Notices.mailMergeHeader)
                // The letters to the individuals themselves (caregivers' copies have on_behalf_of set).
                return Dictionary(uniqueKeysWithValues: table.dropFirst().filter { $0[3].isEmpty }.map { ($0[1], $0) })
            }
            let before = try await rows()
            // A letter has the same id in the mail merge as when produced on its own (caregivers' copies included).
            let merged = try await BreachResponse.mailMerge(server.store, package, patients: package.notifiable.map(\.patient))
            let mergedIDs = Set(CSV.rows(String(decoding: merged.csv, as: UTF8.self)).dropFirst().map { $0[0] })
            var single: [String] = []
            for p in package.notifiable.map(\.patient) { single += try await BreachResponse.letters(server.store, package, patients: [p]).map(\.letterID) }
            #expect(Set(single) == mergedIDs && single.count == merged.letters && single.contains { $0.contains("-c-") }, "\(single) vs \(mergedIDs)")
            #expect(Set(before.keys) == Set(ids).subtracting(["pat-0004"]), "a deleted patient gets no letter")
            #expect(before["pat-0003"]?[4...8] == ["77 Quillfeather Lane", "Unit 9", "Dover", "DE", "19901"], "the contact follows the update")
            for id in ["pat-0001", "pat-0002", "pat-0005", "pat-0006"] {
                // Every row says what the Patient record says, whether from the sealed contact or (pat-0005) the record itself.
                let record = try #require(try await server.store.read(ctx, .patient, id: id).json)
                let name = record["name"]?.arrayValue?.first
                let expected = ((name?["given"]?.arrayValue?.compactMap(\.stringValue) ?? []) + [name?["family"]?.stringValue ?? ""]).joined(separator: " ")
                #expect(before[id]?[2] == expected && before[id]?[8] == record["address"]?.arrayValue?.first?["postalCode"]?.stringValue, "\(id)")
            }
            // Nothing of the contact is readable in the database files.
            await server.store.auditWriter.checkpoint()
            for file in try FileManager.default.contentsOfDirectory(at: server.directory, includingPropertiesForKeys: nil) where file.lastPathComponent.contains("sqlite") {
                let bytes = try Data(contentsOf: file)
                #expect(bytes.range(of: Data("Quillfeather".utf8)) == nil, "\(file.lastPathComponent)")
            }
            // Re-encryption moves the contacts with the records; the old key versions are destroyed and the letters are the same.
            let report = try await server.store.reencrypt(batchSize: 50)
            #expect(report.retiredKeys > 0)
            let verified = try await server.store.verifyCiphertexts()
            #expect(verified.failures.isEmpty, "\(verified.failures)")
            #expect(try await rows() == before)
            // An erased patient's contact goes with their key.
            _ = try await server.store.erase(patient: "pat-0006", tenant: tenant, reason: "patient asked", legalOverride: true)
            let after = try await rows()
            #expect(after["pat-0006"] == nil && after.count == before.count - 1)
        }
    }

    @Test("The privacy officer's API mirrors the command line; nobody else may use it")
    func api() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let privacy = try await server.token("privacy")
            _ = try await client.get("/fhir/Patient/pat-0030", token: try await server.token("support"))
            let declared = try await client.post("/incidents", token: privacy, .from(#"{"discovered":"2026-12-01","actors":["support"],"description":"A support account was used by someone else."}"#))
            #expect(declared.status == 201, "\(declared.body)")
            let id = try #require(declared.json?["id"]?.stringValue)
            let scope = try await client.get("/incidents/\(id)/scope", token: privacy)
            #expect(scope.status == 200 && scope.json?["certified"] == .bool(true), "\(scope.body.prefix(300))")
            #expect(scope.json?["patients"]?.arrayValue?.contains { $0["patient"] == "pat-0030" } == true)
            let judged = try await client.post("/incidents/\(id)/assess", token: privacy, .from(#"{"question":"factor-2-recipient","text":"an unknown person with the password"}"#))
            #expect(judged.status == 200 && judged.body.contains("an unknown person with the password"))
            let report = try await client.get("/incidents/\(id)/report", token: privacy)
            #expect(report.status == 200 && report.json?["assessment"]?["result"] == "breach")
            #expect(report.json?["obligations"]?.arrayValue?.contains { $0["id"] == "hipaa-individual" } == true)
            // Declared without "actions": nothing is claimed; the report lists it as missing (walk-through finding 7).
            #expect(report.json?["missingFacts"]?.arrayValue?.first?.stringValue?.contains("what the pharmacy has done") == true, "\(report.body.prefix(400))")
            #expect(!report.body.contains("reset the credentials") && !report.body.contains("Sanctioned"))
            // An obligation id the incident does not have is refused, naming the ones it has (finding 9).
            let typo = try await client.post("/incidents/\(id)/obligations", token: privacy, .from(#"{"done":"nope","on":"2026-12-05"}"#))
            #expect(typo.status == 400 && typo.issue.contains("hipaa-individual"), "\(typo.body)")
            let done = try await client.post("/incidents/\(id)/obligations", token: privacy, .from(#"{"done":"hipaa-individual","on":"2026-12-05","note":"letters mailed"}"#))
            #expect(done.json?["obligations"]?.arrayValue?.first { $0["id"] == "hipaa-individual" }?["done"]?["on"] == "2026-12-05")
            #expect(try await client.post("/incidents", token: privacy, .from(#"{"discovered":"2026-12-01","actors":["x"],"bogus":1}"#)).status == 400)
            for other in ["pharmacist", "patient001"] {
                #expect(try await client.get("/incidents", token: try await server.token(other)).status == 403, "\(other)")
            }
            #expect(try await client.get("/incidents/no-such/report", token: privacy).status == 404)
        }
    }

    @Test("A tampered audit log: the scope refuses to certify and says where the chain breaks")
    func tamperedLog() async throws {
        try await LiveServer.start(patients: 20, accounts: 5, partnerPatients: 2).using { server in
            try await server.client().using { client in
                let technician = try await server.token("technician")
                for n in 1...5 { _ = try await client.get("/fhir/Patient/pat-000\(n)", token: technician) }
                let victim = try #require(try await server.store.auditRecords().last { $0.entry.action == "read" && $0.entry.resourceType == "Patient" })
                // Someone with the database file edits a record to hide a read.
                try await server.store.dbPool.write { db in
                    try db.execute(sql: "DROP TRIGGER audit_log_no_update")
                    try db.execute(sql: "UPDATE audit_log SET body = replace(body, '\"read\"', '\"login\"') WHERE seq = ?", arguments: [victim.seq])
                }
                let incident = Incident(
                    id: "inc-tamper", tenant: DemoPharmacy.tenant, discovered: "2026-12-01", declared: AuditLog.timestamp(Date()), declaredBy: "privacy",
                    actors: ["technician"], from: nil, to: nil, files: [], description: "d", whatWeAreDoing: "w")
                try await server.store.declareIncident(.operatorCommand(reason: "test", tenant: "*"), incident)
                let scope = try await server.store.incidentScope(incident)
                #expect(!scope.certified)
                #expect(scope.chainProblem?.contains("record \(victim.seq)") == true, "\(scope.chainProblem ?? "")")
                do {
                    _ = try await BreachResponse.package(server.store, "inc-tamper")
                    Issue.record("a package was built on a tampered log")
                } catch let error as FHIRError {
                    #expect(error.diagnostics.contains("REFUSING TO CERTIFY") && error.diagnostics.contains("\(victim.seq)"))
                }
            }
        }
    }
}
