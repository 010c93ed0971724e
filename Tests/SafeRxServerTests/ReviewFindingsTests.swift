import Foundation
import SafeRxSQL
import HTTPTypes
import SafeRxAudit
import SafeRxDetect
import SafeRxModel
import SafeRxPharmacy
import SafeRxPolicy
import SafeRxServer
import SafeRxStore
import SafeRxStoreCore
import SafeRxVault
import SafeRxWeb
import Testing

/// Regression tests for the outside review (issue 16): each fails on the code before its fix.
@Suite("Outside review findings", .serialized)
struct ReviewFindingsTests {
    @Test("1. staff open the inbox (API and console) on a pharmacy of 120 patients with threads: not suspended; the list is one page, audited as a list")
    func inboxDoesNotSuspend() async throws {
        try await LiveServer.start(patients: 120, accounts: 5, partnerPatients: 5, detection: try DetectionTests.detection()).using { server in
            try await server.client().using { client in
                for user in ["technician", "pharmacist"] {
                    let login = try await DetectionTests.login(server, client, user)
                    let token = try #require(login.json?["access_token"]?.stringValue, "\(login.body)")
                    for _ in 0..<3 {
                        #expect(try await client.get("/messages/unread", token: token).status == 200)
                        let page = try await client.get("/messages/threads", token: token)
                        #expect(page.status == 200, "\(page.body)")
                        #expect(page.json?["threads"]?.arrayValue?.count == 20)
                        #expect((page.json?["total"]?.intValue ?? 0) >= 115)
                        #expect(try await client.get("/messages/threads?_count=20&_offset=20", token: token).status == 200)
                    }
                    #expect(try await client.get("/fhir/Patient/pat-0001", token: token).status == 200, "\(user) still works")
                    #expect(try await server.store.isSuspended(try #require(try await server.store.user(named: user)?.id)) == false)
                }
                let lists = try await server.store.auditRecords().filter { $0.entry.action == "list" && $0.entry.resourceType == "Communication" }
                #expect(!lists.isEmpty && lists.allSatisfy { $0.entry.patients.count <= 20 })
                #expect(try await server.store.alerts(tenant: DemoPharmacy.tenant).isEmpty)
                #expect(try await client.get("/messages/threads?_count=500", token: try await server.token("technician")).status == 400)
            }
        }
    }

    @Test("2. a support break-glass spree is contained at the sixth patient; support's break-glass reads no clinical data")
    func breakGlassSpree() async throws {
        try await LiveServer.start(patients: 30, accounts: 2, partnerPatients: 1, detection: try DetectionTests.detection()).using { server in
            try await server.client().using { client in
                let support = try await server.token("support")
                var statuses: [Int] = []
                for i in 1...12 {
                    statuses.append(try await PurposeOfUseTests.breakGlass(
                        client, DemoPharmacy.patientID(i), token: support, reason: "Caller locked out; verifying identity by phone").status)
                }
                #expect(Array(statuses.prefix(6)) == [201, 201, 201, 201, 201, 201], "\(statuses)")
                #expect(statuses.dropFirst(6).allSatisfy { $0 == 401 }, "contained after the sixth: \(statuses)")
                let supportID = try #require(try await server.store.user(named: "support")?.id)
                #expect(try await server.store.isSuspended(supportID))
                let alerts = try await server.store.alerts(tenant: DemoPharmacy.tenant)
                #expect(alerts.contains { $0.rule == "support-break-glass" && $0.patients.count == 6 }, "\(alerts.map(\.rule))")
            }
        }
    }

    @Test("3. a partner reads and writes only what it is a party to, and never speaks as the pharmacy")
    func partnerLeastPrivilege() async throws {
        try await LiveServer.start(patients: 20, accounts: 2, partnerPatients: 4).using { server in
            try await server.client().using { client in
                let partner = try await RoleIsolationTests.partnerToken(client: client, id: DemoPharmacy.partnerClientID, secret: server.partnerSecret)
                let pid = DemoPharmacy.patientID(20)  // one of the partner's patients
                // The pharmacy's own thread with the patient is not the partner's.
                #expect(try await client.get("/fhir/Communication/msg-\(pid)-1", token: partner).status == 404)
                #expect(try await client.get("/fhir/Communication?patient=\(pid)", token: partner).total == 0)
                // Its own prescriptions (the demo's partner patients' prescriptions came from it) it sees.
                #expect(try await client.get("/fhir/MedicationRequest/rx-\(pid)-1", token: partner).status == 200)
                let search = try await client.get("/fhir/MedicationRequest?patient=\(pid)&_include=MedicationRequest:patient", token: partner)
                #expect(search.status == 200 && search.entries.count >= 2, "\(search.body)")
                // A message that claims to come from the pharmacy is refused; one without a sender is the partner's.
                func message(_ sender: String?) -> JSON {
                    var o: [String: JSON] = [
                        "resourceType": "Communication", "status": "completed", "subject": .object(["reference": .string("Patient/\(pid)")]),
                        "payload": .array([.object(["contentString": "Your prescription was sent to the pharmacy."])]),
                    ]
                    if let sender { o["sender"] = .object(["reference": .string(sender)]) }
                    return .object(o)
                }
                let forged = try await client.post("/fhir/Communication", token: partner, message("Organization/org-demo"))
                #expect(forged.status == 400 && forged.issue.contains("set by SafeRx from your credentials"), "\(forged.body)")
                let sent = try await client.post("/fhir/Communication", token: partner, message(nil))
                #expect(sent.status == 201, "\(sent.body)")
                #expect(sent.json?["sender"]?["identifier"]?["value"]?.stringValue == DemoPharmacy.partnerClientID)
                let id = try #require(sent.json?["id"]?.stringValue)
                #expect(try await client.get("/fhir/Communication/\(id)", token: partner).status == 200)
                // Messages are not rewritten.
                var edited = try #require(sent.json)
                edited["payload"] = .array([.object(["contentString": "changed"])])
                let rewrite = try await client.send(.put, "/fhir/Communication/\(id)", token: partner, body: String(decoding: edited.encoded(), as: UTF8.self))
                #expect(rewrite.status == 403, "\(rewrite.body)")
                // The patient was told who wrote: the partner, not the pharmacy.
                let notes = try server.store.dbPool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM notification WHERE key_owner = ?", arguments: [pid]) ?? 0 }
                #expect(notes >= 1)
                // A prescription another prescriber sent for the same patient (created by the pharmacy) is out of reach.
                let pharmacist = try await server.token("pharmacist")
                var rx = try #require(try await client.get("/fhir/MedicationRequest/rx-\(pid)-1", token: pharmacist).json)
                rx["id"] = nil
                rx["meta"] = nil
                rx["identifier"] = nil
                let other = try await client.post("/fhir/MedicationRequest", token: pharmacist, rx)
                #expect(other.status == 201, "\(other.body)")
                let otherID = try #require(other.json?["id"]?.stringValue)
                #expect(try await client.get("/fhir/MedicationRequest/\(otherID)", token: partner).status == 404)
                let refill = try await client.post("/fhir/MedicationRequest/\(otherID)/$refill", token: partner, nil)
                #expect(refill.status == 404, "\(refill.body)")
            }
        }
    }

    @Test("6. a read-only token or a read-only break-glass may not refill or move a fill")
    func operationsNeedWrite() async throws {
        try await LiveServer.start(patients: 12, accounts: 2, partnerPatients: 1).using { server in
            try await server.client().using { client in
                let readOnly = try await server.token("pharmacist", scope: "user/*.read")
                let refill = try await client.post("/fhir/MedicationRequest/rx-pat-0001-1/$refill", token: readOnly, nil)
                #expect(refill.status == 403, "\(refill.body)")
                let patientReadOnly = try await server.token("patient001", scope: "patient/*.read")
                #expect(try await client.post("/fhir/MedicationRequest/rx-pat-0001-1/$refill", token: patientReadOnly, nil).status == 403)
                let dispense = try #require(try await client.get("/fhir/MedicationDispense?patient=pat-0002", token: readOnly).entries.first?["resource"]?["id"]?.stringValue)
                let move = try await client.send(
                    .post, "/fhir/MedicationDispense/\(dispense)/$transition", token: readOnly,
                    body: #"{"resourceType":"Parameters","parameter":[{"name":"state","valueCode":"in-progress"}]}"#)
                #expect(move.status == 403, "\(move.body)")
            }
        }
    }

    @Test("7. a patient's agent filter matches only what the patient is shown, never a staff user id")
    func maskedAgentFilter() async throws {
        try await LiveServer.start(patients: 6, accounts: 2, partnerPatients: 1).using { server in
            try await server.client().using { client in
                let pharmacist = try await server.token("pharmacist")
                #expect(try await client.get("/fhir/Patient/pat-0001", token: pharmacist).status == 200)
                let staffID = try #require(try await server.store.user(named: "pharmacist")?.id)
                let patient = try await server.token("patient001")
                #expect(try await client.get("/fhir/AuditEvent?agent=\(staffID)", token: patient).total == 0, "a raw staff id must not match")
                let masked = try await client.get("/fhir/AuditEvent?agent=pharmacist@\(DemoPharmacy.tenant)", token: patient)
                #expect(masked.status == 200 && (masked.total ?? 0) >= 1, "\(masked.body)")
            }
        }
    }

    @Test("8. clients may not set the pharmacy's identifiers (Rx number, MRN); new patients get an MRN")
    func serverOwnedIdentifiers() async throws {
        try await LiveServer.start(patients: 6, accounts: 1, partnerPatients: 1).using { server in
            try await server.client().using { client in
                let pharmacist = try await server.token("pharmacist")
                var rx = try #require(try await client.get("/fhir/MedicationRequest/rx-pat-0002-1", token: pharmacist).json)
                rx["id"] = nil
                rx["meta"] = nil
                rx["subject"] = .object(["reference": "Patient/pat-0003"])  // another patient's Rx number on this one
                let copied = try await client.post("/fhir/MedicationRequest", token: pharmacist, rx)
                #expect(copied.status == 400 && copied.issue.contains("assigned by the pharmacy"), "\(copied.body)")
                let patient: JSON = .object([
                    "resourceType": "Patient", "name": .array([.object(["family": "Newman", "given": .array(["Ada"])])]), "birthDate": "1980-02-03",
                    "identifier": .array([.object(["system": "urn:saferx:mrn", "value": "MRN100001"])]),
                ])
                let taken = try await client.post("/fhir/Patient", token: pharmacist, patient)
                #expect(taken.status == 400 && taken.issue.contains("medical record number"), "\(taken.body)")
                var plain = patient
                plain["identifier"] = nil
                let created = try await client.post("/fhir/Patient", token: pharmacist, plain)
                #expect(created.status == 201, "\(created.body)")
                let mrn = created.json?["identifier"]?.arrayValue?.first { $0["system"]?.stringValue == "urn:saferx:mrn" }?["value"]?.stringValue
                #expect(mrn?.hasPrefix("MRN1") == true && mrn?.count == 10, "\(created.body)")
                // An update that leaves the MRN out keeps it; one that changes it is refused.
                var update = try #require(created.json)
                update["identifier"] = nil
                update["gender"] = "female"
                let id = try #require(created.json?["id"]?.stringValue)
                let kept = try await client.send(.put, "/fhir/Patient/\(id)", token: pharmacist, body: String(decoding: update.encoded(), as: UTF8.self))
                #expect(kept.status == 200 && kept.json?["identifier"]?.arrayValue?.count == 1, "\(kept.body)")
                update["identifier"] = .array([.object(["system": "urn:saferx:mrn", "value": "MRN100002"])])
                let changed = try await client.send(.put, "/fhir/Patient/\(id)", token: pharmacist, body: String(decoding: update.encoded(), as: UTF8.self))
                #expect(changed.status == 400, "\(changed.body)")
            }
        }
    }

    @Test("10. a caregiver's token ends when the caregiver signs out")
    func caregiverTokenEndsWithSignOut() async throws {
        try await LiveServer.start(patients: 6, accounts: 4, partnerPatients: 1).using { server in
            try await server.client().using { client in
                let patient = try await server.token("patient001")
                let tomorrow = AuditLog.timestamp(Date().addingTimeInterval(86400))
                let grant = try await client.post(
                    "/account/caregivers", token: patient, .object(["caregiver": "patient002", "access": "all", "expires": .string(tomorrow)]))
                #expect(grant.status == 201, "\(grant.body)")
                // A grant "until 2027-01-31" reads back as that day, not the next (walk-through finding 6).
                let dated = try await client.post(
                    "/account/caregivers", token: try await server.token("patient003"), .object(["caregiver": "patient002", "access": "messages", "expires": "2027-01-31"]))
                #expect(dated.json?["expires"]?.stringValue?.hasPrefix("2027-01-31") == true, "\(dated.body)")
                let login = try await client.send(
                    .post, "/auth/login", body: #"{"username":"patient002","password":"\#(server.password("patient002"))"}"#, contentType: "application/json")
                let own = try #require(login.json?["access_token"]?.stringValue, "\(login.body)")
                let cg = try await client.send(.post, "/auth/caregiver", token: own, body: #"{"patient":"pat-0001"}"#, contentType: "application/json")
                let carer = try #require(cg.json?["access_token"]?.stringValue, "\(cg.body)")
                #expect(try await client.get("/fhir/Patient/pat-0001", token: carer).status == 200)
                #expect(try await client.send(.post, "/auth/logout", token: own).status < 300)
                #expect(try await client.get("/fhir/Patient/pat-0001", token: carer).status == 401)
            }
        }
    }

    @Test("4 and 5. 1,000 wrong passwords from one address do not lock the real user out from another; sign-in answers 429 with Retry-After there")
    func lockoutPerSource() async throws {
        try await LiveServer.start(patients: 3, accounts: 1, partnerPatients: 1).using { server in
            /// The kind of refusal, or nil when the sign-in went through.
            func attempt(_ password: String, from ip: String) async -> FHIRError.Kind? {
                do {
                    _ = try await server.auth.login(
                        username: "pharmacist", password: password, request: RequestInfo(requestID: UUID().uuidString, sourceIP: ip, userAgent: "t"))
                    return nil
                } catch {
                    return error.kind
                }
            }
            var statuses: [FHIRError.Kind?: Int] = [:]
            for _ in 0..<1000 { statuses[await attempt("wrong password guess", from: "203.0.113.9"), default: 0] += 1 }
            #expect(statuses[.unauthenticated] == AuthService.lockAfter && statuses[.throttled] == 1000 - AuthService.lockAfter, "\(statuses)")
            // The real pharmacist, from the pharmacy: the password is right, so the answer asks for the second factor.
            let real = await attempt(server.password("pharmacist"), from: "198.51.100.20")
            #expect(real == .unauthenticated || real == nil)
            do {
                _ = try await server.auth.login(
                    username: "pharmacist", password: server.password("pharmacist"),
                    request: RequestInfo(requestID: "r", sourceIP: "198.51.100.20", userAgent: "t"))
            } catch let error as FHIRError {
                #expect(error.diagnostics.hasPrefix("mfa_required"), "\(error.diagnostics)")
            }
            try await server.client().using { client in
                // Over HTTP the refusal carries Retry-After.
                for _ in 0..<AuthService.lockAfter {
                    _ = try await client.send(.post, "/auth/login", body: #"{"username":"support","password":"not it at all"}"#, contentType: "application/json")
                }
                let locked = try await client.send(.post, "/auth/login", body: #"{"username":"support","password":"not it at all"}"#, contentType: "application/json")
                #expect(locked.status == 429 && locked.headers[.retryAfter] != nil, "\(locked.status) \(locked.body)")
            }
        }
    }

    @Test("4. sign-up and reset codes are capped per patient per hour")
    func codeCaps() async throws {
        try await LiveServer.start(patients: 6, accounts: 2, partnerPatients: 1).using { server in
            let info = RequestInfo(requestID: "r", sourceIP: "203.0.113.7", userAgent: "t")
            for _ in 0..<10 { _ = try await server.auth.startPasswordReset(username: "patient001", request: info) }
            let codes = try server.store.dbPool.read { db in
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM one_time_code WHERE purpose = 'reset'") ?? 0
            }
            #expect(codes == PharmacyStore.maxCodesPerHour)
        }
    }
}

extension ReviewFindingsTests {
    @Test("5 and walk-through 16: pages without a form start no session; the session cookie is SameSite=Lax (a link from another site keeps it)")
    func sessionsOnlyForForms() async throws {
        try await LiveServer.start(patients: 3, accounts: 1, partnerPatients: 1).using { server in
            try await server.client().using { client in
                for path in ["/", "/portal", "/console", "/privacy/alerts"] {
                    let r = try await client.get(path)
                    #expect(r.headers[.setCookie] == nil, "\(path) set a cookie: \(r.headers[.setCookie] ?? "")")
                }
                let login = try await client.get("/portal/login")
                let cookie = try #require(login.headers[.setCookie])
                #expect(cookie.contains("SameSite=Lax") && cookie.contains("HttpOnly"), "\(cookie)")
            }
        }
    }
}

extension ReviewFindingsTests {
    @Test("5. rate limits per account and per source address: 429 with Retry-After, one audit record per limited burst")
    func rateLimits() async throws {
        try await LiveServer.start(
            patients: 3, accounts: 1, partnerPatients: 1, sourceLimit: RateLimit(rate: 0.01, burst: 30), accountLimit: RateLimit(rate: 0.01, burst: 5)).using { server in
            try await server.client().using { client in
                let token = try await server.token("pharmacist")
                var statuses: [Int] = []
                for _ in 0..<10 { statuses.append(try await client.get("/fhir/Patient/pat-0001", token: token).status) }
                #expect(Array(statuses.prefix(5)) == [200, 200, 200, 200, 200] && statuses.dropFirst(5).allSatisfy { $0 == 429 }, "\(statuses)")
                let limited = try await client.get("/fhir/Patient/pat-0001", token: token)
                #expect(limited.status == 429 && limited.headers[.retryAfter] != nil)
                // Another account is not limited by this one.
                #expect(try await client.get("/fhir/Patient/pat-0001", token: try await server.token("technician")).status == 200)
                let records = try await server.store.auditRecords().filter { $0.entry.result == .throttled }
                #expect(records.count == 1, "one record for the burst: \(records.map(\.entry.detail))")
                // The source address: anonymous requests too.
                var anonymous: [Int] = []
                for _ in 0..<40 { anonymous.append(try await client.get("/fhir/metadata").status) }
                #expect(anonymous.contains(429), "\(anonymous)")
            }
        }
    }
}

extension ReviewFindingsTests {
    @Test("walk-through 17: the console work queue pages and says how many there are")
    func queuePages() async throws {
        try await LiveServer.start(patients: 300, accounts: 1, partnerPatients: 1).using { server in
            try await server.client().using { client in
                let console = WebFrontHTTPTests.WebClient(client)
                _ = try await console.get("/console/login")
                let code = try #require(server.credentials.first { $0.username == "pharmacist" }?.totp_secret.flatMap(Base32.decode))
                let signedIn = try await console.post(
                    "/console/login", ["username": "pharmacist", "password": server.password("pharmacist"), "otp": TOTP(secret: code).code()])
                #expect(signedIn.headers[.location] == "/console", "\(signedIn.status) \(signedIn.body.prefix(200))")
                let first = try await console.get("/console")
                #expect(first.status == 200 && first.body.contains("1–50 of ") && first.body.contains("/console?state=preparation&amp;page=2"), "\(first.body.prefix(600))")
                let second = try await console.get("/console?state=preparation&page=2")
                #expect(second.status == 200 && second.body.contains("51–") && second.body.contains("Previous"), "\(second.body.prefix(600))")
            }
        }
    }

    @Test("1 and 2. the work queue is a list (name, birth date, drug; no address), audited as one: a technician working it all day is not cut; reading dispenses in bulk is (at the technician's limit, not 500)")
    func workQueueAndDispenseBulk() async throws {
        try await LiveServer.start(patients: 300, accounts: 1, partnerPatients: 1, detection: try DetectionTests.detection()).using { server in
            try await server.client().using { client in
                let console = WebFrontHTTPTests.WebClient(client)
                try await console.signIn(server, area: "console", user: "technician")
                for state in ["preparation", "in-progress", "verified", "on-hold"] {
                    for page in 1...3 {
                        let r = try await console.get("/console?state=\(state)&page=\(page)")
                        #expect(r.status == 200, "\(state) \(page): \(r.status)")
                    }
                }
                let queue = try await console.get("/console?state=preparation")
                let system = AccessContext(scope: .system(reason: "test", tenant: DemoPharmacy.tenant, write: false), requestID: "t", sourceIP: "local", userAgent: "test")
                let firstFill = try #require(try await server.store.fillQueue(system, state: .preparation, count: 1).entries.first)
                #expect(queue.body.contains(firstFill.patientName) && queue.body.contains(firstFill.birthDate), "the queue tells patients apart by name and birth date")
                #expect(!queue.body.contains("Maple Ave") && !queue.body.contains("Oak St"), "no address on the queue")
                let technician = try #require(try await server.store.user(named: "technician")?.id)
                #expect(try await server.store.isSuspended(technician) == false, "a day's queue is not a bulk read")
                let lists = try await server.store.auditRecords().filter { $0.entry.actor.id == technician && $0.entry.resourceType == "MedicationDispense" }
                #expect(lists.allSatisfy { ["list", "count"].contains($0.entry.action) } && lists.contains { $0.entry.action == "list" && $0.entry.patients.count <= 50 })

                // Reading the dispenses themselves (ship-to address and drug) counts toward the technician's limit of 50.
                let token = try await server.token("technician")
                var statuses: [Int] = []
                for offset in stride(from: 0, to: 300, by: 20) {
                    let r = try await client.get("/fhir/MedicationDispense?_count=20&_offset=\(offset)", token: token)
                    statuses.append(r.status)
                    if r.status != 200 { break }
                }
                #expect(statuses.last == 401, "cut at the limit: \(statuses)")
                #expect(try await server.store.alerts().contains { $0.rule == "technician-bulk" && $0.actor == technician && $0.patients.count <= 50 })

                // Breach scope counts what the queue showed: a patient seen only there had name, birth date and drug leave, not
                // the address (walk-through 8: scope is exactly what left).
                let records = try await server.store.auditRecords().filter { $0.entry.actor.id == technician && $0.entry.outcome == "success" }
                let listed = Set(records.filter { $0.entry.action == "list" }.flatMap(\.entry.patients))
                let read = Set(records.filter { $0.entry.action != "list" }.flatMap(\.entry.patients))
                let onlyListed = try #require(listed.subtracting(read).sorted().first)
                let incident = Incident(
                    id: "inc-queue", tenant: DemoPharmacy.tenant, discovered: String(AuditLog.timestamp(Date()).prefix(10)), declared: AuditLog.timestamp(Date()),
                    declaredBy: "privacy", actors: ["technician"], from: "2000-01-01T00:00:00Z", to: "2100-01-01T00:00:00Z", files: [],
                    description: "A technician's password was stolen.", whatWeAreDoing: "We suspended the account.")
                try await server.store.declareIncident(.operatorCommand(reason: "test", tenant: "*"), incident)
                let scope = try await server.store.incidentScope(incident)
                let seen = try #require(scope.affected.first { $0.patient == onlyListed })
                #expect(seen.elements == ["name", "birth-date", "medications"], "\(seen.elements)")
            }
        }
    }

    @Test("9. bounded work per request: _history pages (at most 100), a Binary search page holds at most 5 files, repeated verification stays correct")
    func boundedWork() async throws {
        try await LiveServer.start(patients: 20, accounts: 1, partnerPatients: 1).using { server in
            try await server.client().using { client in
                let pharmacist = try await server.token("pharmacist")
                // Three versions of a patient; history answers one page at a time and refuses a page over 100.
                for phone in ["555-010-0001", "555-010-0002"] {
                    var p = try #require(try await client.get("/fhir/Patient/pat-0001", token: pharmacist).json)
                    p["telecom"] = .array([.object(["system": "phone", "value": .string(phone)])])
                    #expect(try await client.send(.put, "/fhir/Patient/pat-0001", token: pharmacist, body: String(decoding: p.encoded(), as: UTF8.self)).status == 200)
                }
                let page = try await client.get("/fhir/Patient/pat-0001/_history?_count=2", token: pharmacist)
                #expect(page.status == 200 && page.entries.count == 2, "\(page.body.prefix(200))")
                let rest = try await client.get("/fhir/Patient/pat-0001/_history?_count=2&_offset=2", token: pharmacist)
                #expect(rest.status == 200 && rest.entries.count == 1)
                let tooMany = try await client.get("/fhir/Patient/pat-0001/_history?_count=500", token: pharmacist)
                #expect(tooMany.status == 400 && tooMany.issue.contains("100"), "\(tooMany.body)")
                // A Binary search page is capped at 5 whatever _count asks for; other types at the search maximum.
                let system = AccessContext(scope: .system(reason: "test", tenant: DemoPharmacy.tenant, write: false), requestID: "t", sourceIP: "local", userAgent: "test")
                #expect(try SearchQuery.parse(.binary, [("_count", "100")], scope: system.scope).count == SearchQuery.maxBinaryCount)
                #expect(try SearchQuery.parse(.binary, [], scope: system.scope).count == SearchQuery.maxBinaryCount)
                // The privacy overview verifies incrementally: a second look checks only the records appended since.
                let first = try await server.store.verifyAuditIncrementally()
                let second = try await server.store.verifyAuditIncrementally()
                #expect(first.ok && second.ok && second.records >= first.records)
            }
        }
    }

    @Test("walk-through 18 and 19: cancel needs a confirmation and a chosen reason; history in words; Find a patient keeps a half-filled form; sign-in returns to the page asked for, never off-site; people's words for MFA errors")
    func consoleFormsForPeople() async throws {
        try await LiveServer.start(patients: 30, accounts: 1, partnerPatients: 1).using { server in
            try await server.client().using { client in
                let console = WebFrontHTTPTests.WebClient(client)
                // Signed out, a console page sends to sign-in and back.
                let asked = try await console.get("/console/patients")
                #expect(asked.status == 303 && asked.headers[.location] == "/console/login?next=/console/patients", "\(asked.headers[.location] ?? "")")
                let login = try await console.get("/console/login?next=/console/patients")
                #expect(login.body.contains("name=\"next\" value=\"/console/patients\""))
                // A wrong code reads as words, not as an API error code; the form keeps where to go.
                let wrong = try await console.post(
                    "/console/login?next=/console/patients", ["username": "pharmacist", "password": server.password("pharmacist"), "otp": "000000", "next": "/console/patients"])
                let back = try await console.get(wrong.headers[.location] ?? "/console/login")
                #expect(back.body.contains("The code is wrong") && !back.body.contains("mfa_invalid"), "\(back.body.prefix(1500))")
                let code = try #require(server.credentials.first { $0.username == "pharmacist" }?.totp_secret.flatMap(Base32.decode))
                let signedIn = try await console.post(
                    "/console/login?next=/console/patients",
                    ["username": "pharmacist", "password": server.password("pharmacist"), "otp": TOTP(secret: code).code(), "next": "/console/patients"])
                #expect(signedIn.headers[.location] == "/console/patients", "\(signedIn.headers[.location] ?? "")")
                for evil in ["//evil.example/console", "https://evil.example/", "/consolex", "/portal/messages", "/console/login"] {
                    let page = try await console.get("/console/login?next=\(WebFrontHTTPTests.WebClient.encode(evil))")
                    #expect(!page.body.contains("name=\"next\""), "a sign-in link cannot send anyone to \(evil)")
                }

                // Find a patient with only a family name: the form stays, typed, with the message.
                _ = try await console.get("/console/patients")
                let half = try await console.post("/console/patients", ["family": "Garcia"])
                #expect(half.status == 200 && half.body.contains("Enter the family name, given name and birth date") && half.body.contains("value=\"Garcia\""), "\(half.body.prefix(300))")

                // A fill: cancelling opens a confirmation; without a reason it is refused; with one it is done and the history reads in words.
                let system = AccessContext(scope: .system(reason: "test", tenant: DemoPharmacy.tenant, write: false), requestID: "t", sourceIP: "local", userAgent: "test")
                let fill = try #require(try await server.store.fillQueue(system, state: .preparation, count: 1).entries.first).dispenseID
                let page = try await console.get("/console/fills/\(fill)")
                #expect(page.body.contains("/console/fills/\(fill)/confirm?state=cancelled") && !page.body.contains("name=\"reason\""))
                let confirm = try await console.get("/console/fills/\(fill)/confirm?state=cancelled")
                #expect(confirm.status == 200 && confirm.body.contains("Cancel this fill?") && confirm.body.contains("<option value=\"\">Choose a reason</option>"))
                let noReason = try await console.post("/console/fills/\(fill)/transition", ["state": "cancelled"])
                let refused = try await console.get(noReason.headers[.location] ?? "/")
                #expect(refused.body.contains("Choose a reason"), "\(refused.body.prefix(400))")
                #expect(FillState.of(try await server.store.read(system, .medicationDispense, id: fill).json ?? .null) == .preparation)
                _ = try await console.get("/console/fills/\(fill)/confirm?state=cancelled")
                let done = try await console.post("/console/fills/\(fill)/transition", ["state": "cancelled", "reason": "frr01"])
                let after = try await console.get(done.headers[.location] ?? "/")
                #expect(after.body.contains("Being prepared → Cancelled") && after.body.contains("Order Stopped"), "\(after.body.prefix(1200))")
            }
        }
    }

    @Test("walk-through 11: a signed-in password change asks for the current password, ends every session, and the new one signs in")
    func signedInPasswordChange() async throws {
        try await LiveServer.start(patients: 10, accounts: 2, partnerPatients: 1).using { server in
            try await server.client().using { client in
                let old = server.password("patient001")
                let login = try await client.send(.post, "/auth/login", body: #"{"username":"patient001","password":"\#(old)"}"#, contentType: "application/json")
                let token = try #require(login.json?["access_token"]?.stringValue)
                let body = { (current: String, new: String) in String(decoding: JSON.object(["current": .string(current), "password": .string(new)]).encoded(), as: UTF8.self) }
                let wrong = try await client.send(.post, "/account/password", token: token, body: body("not-it", "a long new phrase for the pharmacy"), contentType: "application/json")
                #expect(wrong.status == 400 && wrong.issue.contains("current password"), "\(wrong.body)")
                let weak = try await client.send(.post, "/account/password", token: token, body: body(old, "password"), contentType: "application/json")
                #expect(weak.status == 400, "\(weak.body)")
                try await Task.sleep(for: .seconds(1.1))  // tokens carry whole-second issue times
                let changed = try await client.send(.post, "/account/password", token: token, body: body(old, "a long new phrase for the pharmacy"), contentType: "application/json")
                #expect(changed.status == 200, "\(changed.body)")
                #expect(try await client.get("/fhir/Patient/pat-0001", token: token).status == 401, "the old session ended")
                let again = try await client.send(.post, "/auth/login", body: #"{"username":"patient001","password":"a long new phrase for the pharmacy"}"#, contentType: "application/json")
                #expect(again.status == 200)
                #expect(try await server.store.auditRecords().contains { $0.entry.action == "password-change" && $0.entry.outcome == "success" })
            }
        }
    }

    @Test("walk-through 20: drug search finds brand names and everyday words; in caregiver mode the caregiver's own grant forms are not shown")
    func drugsAndCaregiverMode() async throws {
        let formulary = try Formulary.load()
        #expect(formulary.search("Tylenol").map(\.slug) == ["acetaminophen"])
        #expect(formulary.search("blood thinner").map(\.slug) == ["warfarin"])
        #expect(formulary.search("water pill").map(\.slug) == ["hydrochlorothiazide"])
        try await LiveServer.start(patients: 10, accounts: 2, partnerPatients: 1).using { server in
            try await server.client().using { client in
                let web = WebFrontHTTPTests.WebClient(client)
                try await web.signIn(server, area: "portal", user: "patient001")
                #expect(try await web.get("/portal/caregivers").body.contains("Give access"))
                let acting = try await web.post("/portal/caregiving/pat-0002", [:])
                #expect(acting.status == 303)
                let page = try await web.get("/portal/caregivers")
                #expect(page.body.contains("Back to my own records") && !page.body.contains("Give access") && !page.body.contains("Act for this patient"), "\(page.body.prefix(800))")
                #expect(!(try await web.get("/portal").body.contains("/portal/access-log")), "the patient's access log is not offered to a caregiver")
            }
        }
    }

    @Test("walk-through 19: a refused message keeps its text; so does one sent after the session ran out, once the same user signs in again (nobody else)")
    func typedTextSurvives() async throws {
        try await LiveServer.start(patients: 10, accounts: 2, partnerPatients: 1, webSessionIdle: 3).using { server in
            try await server.client().using { client in
                let web = WebFrontHTTPTests.WebClient(client)
                try await web.signIn(server, area: "portal", user: "patient001")
                _ = try await web.get("/portal/messages")
                // Too long: refused, and the text (up to the limit) is back in the box.
                let long = "Please check my refill. " + String(repeating: "x", count: 4100)
                let refused = try await web.post("/portal/messages", ["text": long])
                #expect(refused.status == 303)
                let page = try await web.get("/portal/messages")
                #expect(page.body.contains("at most 4,000 characters") && page.body.contains(">Please check my refill. xxx"), "\(page.body.prefix(300))")
                #expect(!(try await web.get("/portal/messages").body.contains(">Please check my refill.")), "shown once")
                // The session runs out (idle too long) while a message is being written: it waits for the next sign-in.
                _ = try await web.get("/portal/messages")
                try await Task.sleep(for: .seconds(4))
                let lost = try await web.post("/portal/messages", ["text": "Is my insulin shipped cold?"])
                #expect(lost.status == 303 && lost.headers[.location] == "/portal/login?next=/portal/messages", "\(lost.headers[.location] ?? "")")
                try await web.signIn(server, area: "portal", user: "patient001")
                let back = try await web.get("/portal/messages")
                #expect(back.body.contains(">Is my insulin shipped cold?</textarea>"), "\(back.body.prefix(300))")
                // The same on a shared computer, but someone else signs in next: they do not see it.
                try await Task.sleep(for: .seconds(4))
                _ = try await web.post("/portal/messages", ["text": "About my HIV medication"])
                try await web.signIn(server, area: "portal", user: "patient002")
                let other = try await web.get("/portal/messages")
                #expect(other.status == 200 && !other.body.contains("HIV medication"), "another user never sees a kept draft")
                // A refused form other than a message keeps its fields too: a caregiver grant to nobody.
                _ = try await web.get("/portal/caregivers")
                let grant = try await web.post("/portal/caregivers", ["caregiver": "no-such-user-42", "expires": "2027-01-15", "access": "all"])
                #expect(grant.status == 303)
                let again = try await web.get("/portal/caregivers")
                #expect(again.body.contains("value=\"no-such-user-42\"") && again.body.contains("value=\"2027-01-15\""), "\(again.body.prefix(600))")
            }
        }
    }
}

