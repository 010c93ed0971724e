import Foundation
import HTTPTypes
import SafeRxAudit
import SafeRxModel
import SafeRxPharmacy
import SafeRxStore
import SafeRxStoreCore
import Testing

/// The Walgreens incident, replayed: every patient tries every interaction and search form against every other
/// patient's data. Nothing of B's may come back, and every attempt must be in the audit log as a denial or as a
/// search that returned none of B's data.
@Suite("Walgreens replay") struct WalgreensReplayTests {
    struct Attempt: Sendable {
        var requestID: String
        var victim: String
        var description: String
    }

    /// The strings that identify patient `i`'s data in any response.
    static func markers(_ i: Int, server: LiveServer, pharmacist: HTTPClient, token: String) async throws -> [String] {
        let pid = DemoPharmacy.patientID(i)
        let patient = try await pharmacist.get("/fhir/Patient/\(pid)", token: token)
        #expect(patient.status == 200)
        let mrn = patient.json?["identifier"]?.arrayValue?.first?["value"]?.stringValue ?? "?"
        let email = patient.json?["telecom"]?.arrayValue?.compactMap { $0["value"]?.stringValue }.first { $0.contains("@") } ?? "?"
        return [pid, mrn, email]
    }

    /// Every read, history, vread, search, include, revinclude, paging and write form, aimed at `victim`.
    static func attempts(against victim: String, auditSeq: Int64) -> [(String, String, String?, Int)] {
        let rx = "rx-\(victim)-1", disp = "disp-\(victim)-1", msg = "msg-\(victim)-1"
        let thread = """
            {"resourceType":"Communication","status":"completed","subject":{"reference":"Patient/\(victim)"},
             "sender":{"reference":"Patient/\(victim)"},"inResponseTo":[{"reference":"Communication/\(msg)"}],
             "payload":[{"contentString":"injected"}]}
            """
        let replyInto = """
            {"resourceType":"Communication","status":"completed","subject":{"reference":"Patient/SELF"},
             "sender":{"reference":"Patient/SELF"},"recipient":[{"reference":"Patient/\(victim)"}],
             "inResponseTo":[{"reference":"Communication/\(msg)"}],"payload":[{"contentString":"injected"}]}
            """
        // (method, path, body, expected status)
        return [
            ("GET", "/fhir/Patient/\(victim)", nil, 404),
            ("GET", "/fhir/Patient/\(victim)/_history", nil, 404),
            ("GET", "/fhir/Patient/\(victim)/_history/1", nil, 404),
            ("GET", "/fhir/MedicationRequest/\(rx)", nil, 404),
            ("GET", "/fhir/MedicationRequest/\(rx)/_history", nil, 404),
            ("GET", "/fhir/MedicationRequest/\(rx)/_history/1", nil, 404),
            ("GET", "/fhir/MedicationDispense/\(disp)", nil, 404),
            ("GET", "/fhir/Communication/\(msg)", nil, 404),
            ("GET", "/fhir/Communication/\(msg)/_history/1", nil, 404),
            ("GET", "/fhir/AuditEvent/\(auditSeq)", nil, 404),
            ("GET", "/fhir/Patient?_id=\(victim)", nil, 200),
            ("GET", "/fhir/MedicationRequest?patient=\(victim)", nil, 200),
            ("GET", "/fhir/MedicationRequest?subject=Patient/\(victim)&_include=MedicationRequest:medication", nil, 200),
            ("GET", "/fhir/MedicationRequest?_id=\(rx)&_revinclude=MedicationDispense:prescription", nil, 200),
            ("GET", "/fhir/MedicationRequest?patient=\(victim)&_count=1&_offset=1", nil, 200),
            ("GET", "/fhir/MedicationDispense?patient=\(victim)&_include=MedicationDispense:prescription", nil, 200),
            ("GET", "/fhir/MedicationDispense?prescription=\(rx)", nil, 200),
            ("GET", "/fhir/Communication?patient=\(victim)", nil, 200),
            ("GET", "/fhir/Communication?recipient=Patient/\(victim)&_include=Communication:sender", nil, 200),
            ("GET", "/fhir/Communication?part-of=\(msg)", nil, 200),
            ("GET", "/fhir/AuditEvent?patient=\(victim)", nil, 200),
            ("POST", "/fhir/Communication", thread, 400),
            ("POST", "/fhir/Communication", replyInto, 400),
            ("PUT", "/fhir/MedicationRequest/\(rx)", "{\"resourceType\":\"MedicationRequest\",\"id\":\"\(rx)\",\"status\":\"cancelled\",\"intent\":\"order\",\"subject\":{\"reference\":\"Patient/\(victim)\"},\"medicationCodeableConcept\":{\"text\":\"x\"}}", 403),
            ("DELETE", "/fhir/Communication/\(msg)", nil, 403),
        ]
    }

    @Test("every patient pair, every interaction: zero bytes of the other patient's data, every attempt audited")
    func replay() async throws {
        let server = try await LiveServer.shared.value
        let n = 50
        let pharmacist = server.client()
        let staffToken = try await server.token("pharmacist")
        var markers: [String: [String]] = [:]
        var auditSeq: [String: Int64] = [:]
        for i in 1...n {
            let pid = DemoPharmacy.patientID(i)
            markers[pid] = try await Self.markers(i, server: server, pharmacist: pharmacist, token: staffToken)
            // The pharmacist's read just now is an AuditEvent about this patient alone.
            let events = try await server.store.auditRecords()
            auditSeq[pid] = events.last { $0.entry.patients == [pid] }!.seq
        }
        await pharmacist.close()
        var tokens: [String: String] = [:]
        for i in 1...n { tokens[DemoPharmacy.patientID(i)] = try await server.token(String(format: "patient%03d", i)) }
        let before = try await server.store.auditRecords().count

        let pairs = (1...n).flatMap { a in (1...n).filter { $0 != a }.map { (DemoPharmacy.patientID(a), DemoPharmacy.patientID($0)) } }
        let workers = 8
        let frozenMarkers = markers, frozenSeq = auditSeq, frozenTokens = tokens
        let attempts = try await withThrowingTaskGroup(of: [Attempt].self) { group in
            for w in 0..<workers {
                group.addTask {
                    let client = server.client()
                    var done: [Attempt] = []
                    for (k, (a, b)) in pairs.enumerated() where k % workers == w {
                        for (method, path, body, expected) in Self.attempts(against: b, auditSeq: frozenSeq[b]!) {
                            let reply = try await client.send(
                                .init(method)!, path, token: frozenTokens[a]!, body: body?.replacingOccurrences(of: "SELF", with: a))
                            let what = "\(a) → \(method) \(path)"
                            #expect(reply.status == expected, "\(what): status \(reply.status) \(reply.issue)")
                            // The body may echo what A typed (B's id in a self link or an error message), but
                            // no resource data of B's: no entry of B's, no identifier or contact of B's.
                            let entries = String(decoding: JSON.array(reply.entries).encoded(), as: UTF8.self)
                            for m in frozenMarkers[b]! {
                                #expect(!entries.contains(m), "\(what) returned an entry with \(m)")
                            }
                            for m in frozenMarkers[b]!.dropFirst() {
                                #expect(!reply.body.contains(m), "\(what) leaked \(m)")
                            }
                            if method == "GET" && expected == 200 {
                                #expect(reply.total == 0, "\(what): total \(reply.total ?? -1)")
                            }
                            #expect(!reply.requestID.isEmpty)
                            done.append(Attempt(requestID: reply.requestID, victim: b, description: what))
                        }
                    }
                    await client.close()
                    return done
                }
            }
            var all: [Attempt] = []
            for try await part in group { all += part }
            return all
        }
        #expect(attempts.count == pairs.count * Self.attempts(against: "x", auditSeq: 0).count)

        // Every attempt is in the audit log as a denial, a miss, or a search that returned none of B's data.
        let records = try await server.store.auditRecords()
        #expect(records.count - before >= attempts.count)
        var byRequest: [String: AuditRecord] = [:]
        for r in records { byRequest[r.entry.requestID] = r }
        var unaudited = 0
        for attempt in attempts {
            guard let r = byRequest[attempt.requestID] else {
                unaudited += 1
                continue
            }
            #expect(!r.entry.patients.contains(attempt.victim), "\(attempt.description): audit names the victim as disclosed")
            let ok = r.entry.outcome == "denied" || r.entry.outcome == "not-found"
                || (r.entry.action == "search" && r.entry.outcome == "success")
            #expect(ok, "\(attempt.description): audited as \(r.entry.action)/\(r.entry.outcome)")
        }
        #expect(unaudited == 0)
        let verification = try await server.store.verifyAudit()
        #expect(verification.ok)
    }
}
