import Foundation
import SafeRxAudit
import SafeRxDetect
import Testing

/// The detector engine on synthetic events: each rule fires where it should and stays quiet where it should not,
/// and rules files fail closed with a message that names the rule and the field.
@Suite("Detector rules")
struct DetectorTests {
    struct Canaries: DetectionContext {
        var honeytokens: Set<String> = ["pat-canary"]
        var authorized: Set<String> = []
        func isHoneytoken(_ patient: String) -> Bool { honeytokens.contains(patient) }
        func hasAuthorization(tenant: String, client: String, patient: String, purpose: String, at time: Int64) -> Bool {
            authorized.contains(patient)
        }
    }

    static let t0: Int64 = 1_790_000_000_000  // 2026-09-21, a Monday

    static func read(
        _ seq: Int64, _ at: Int64, actor: String = "user-tech", role: String = "technician", patients: [String], type: String = "Patient",
        action: String = "read", outcome: String = "success", result: AuditResult = .ok, source: String = "src-1", agent: String = "ua-1",
        actorPatient: String? = nil
    ) -> DetectorEvent {
        DetectorEvent(
            seq: seq, time: at, tenant: "demo-pharmacy", actor: actor, role: role, actorPatient: actorPatient, action: action, resourceType: type,
            outcome: outcome, result: result, purpose: "TREAT", patients: patients, source: source, agent: agent)
    }

    @Test("The bundled rules are valid, and every kind is used")
    func bundled() throws {
        let rules = try DetectionRules.bundled()
        #expect(rules.rules.count >= 10)
        #expect(rules.rules.contains { $0.id == "honeytoken" && $0.contain && $0.severity == .critical })
    }

    @Test("A technician paging through patients is cut on the request that would pass 50 distinct patients in 10 minutes")
    func technicianBulk() throws {
        let d = Detector(rules: try DetectionRules.bundled())
        var seq: Int64 = 0
        var released = Set<String>()
        var cut: (findings: [Finding], refused: Bool)? = nil
        for page in 0..<10 {
            seq += 1
            let patients = (0..<20).map { String(format: "pat-%04d", page * 20 + $0) }
            let r = d.consume(Self.read(seq, Self.t0 + seq * 200, patients: patients, action: "search"), context: Canaries(), blockable: true)
            if r.refused {
                cut = r
                break
            }
            released.formUnion(patients)
        }
        let found = try #require(cut)
        #expect(released.count == 40, "two pages of 20 pass, the third would make 60")
        let alert = try #require(found.findings.first { $0.rule == "technician-bulk" })
        #expect(alert.blocked && alert.contain && !alert.isUpdate)
        #expect(Set(alert.patients) == released, "the alert lists exactly the patients read before the cut")
        #expect(alert.seqs == [1, 2, 3])
        // One at a time: 50 reads pass, the 51st is refused.
        let d2 = Detector(rules: try DetectionRules.bundled())
        var n = 0
        for i in 1...60 {
            let r = d2.consume(Self.read(Int64(i), Self.t0 + Int64(i) * 1000, patients: [String(format: "pat-%04d", i)]), context: Canaries(), blockable: true)
            if r.refused { break }
            n += 1
        }
        #expect(n == 50)
    }

    @Test("Patients named through an _include count under their own type; dispenses (ship-to address and drug) count toward the technician's limit")
    func includesCount() throws {
        let d = Detector(rules: try DetectionRules.bundled())
        let patients = (0..<51).map { String(format: "pat-%04d", $0) }
        var e = Self.read(1, Self.t0, patients: patients, type: "MedicationDispense", action: "search")
        e.typePatients = ["MedicationDispense": patients, "Patient": patients]
        let r = d.consume(e, context: Canaries(), blockable: true)
        #expect(r.refused && r.findings.contains { $0.rule == "technician-bulk" })
        // Without the include the dispenses alone are a bulk read too (the work queue is a list, not a search).
        let d2 = Detector(rules: try DetectionRules.bundled())
        #expect(d2.consume(Self.read(1, Self.t0, patients: patients, type: "MedicationDispense", action: "search"), context: Canaries(), blockable: true).refused)
        let d3 = Detector(rules: try DetectionRules.bundled())
        #expect(!d3.consume(Self.read(1, Self.t0, patients: patients, type: "MedicationDispense", action: "list"), context: Canaries(), blockable: true).refused)
    }

    @Test("Once contained, every unanswered read of the actor is refused; after a restart only suspended actors stay contained")
    func containment() throws {
        let rules = try DetectionRules.bundled()
        let d = Detector(rules: rules)
        #expect(d.consume(Self.read(1, Self.t0, actor: "user-ph", role: "pharmacist", patients: ["pat-canary"]), context: Canaries(), blockable: true).refused)
        let next = d.consume(Self.read(2, Self.t0 + 5, actor: "user-ph", role: "pharmacist", patients: ["pat-0001"]), context: Canaries(), blockable: true)
        #expect(next.refused, "a request in flight when the suspension was written is refused too")
        // A restart replays history: the alert is open in the store but the actor was reinstated.
        let restarted = Detector(rules: rules)
        _ = restarted.consume(Self.read(1, Self.t0, actor: "user-ph", role: "pharmacist", patients: ["pat-canary"]), context: Canaries())
        restarted.restore(open: [String](), contained: [String]())
        #expect(!restarted.consume(Self.read(3, Self.t0 + 60, actor: "user-ph", role: "pharmacist", patients: ["pat-0001"]), context: Canaries(), blockable: true).refused)
        let still = Detector(rules: rules)
        still.restore(open: ["honeytoken|user-x"], contained: ["user-x"])
        #expect(still.consume(Self.read(1, Self.t0, actor: "user-x", role: "technician", patients: ["pat-0001"]), context: Canaries(), blockable: true).refused)
        // System jobs are never cut off (they have no tokens); they still alert.
        let sys = Detector(rules: rules)
        let job = sys.consume(Self.read(1, Self.t0, actor: "system", role: "system", patients: ["pat-canary"], action: "read"), context: Canaries(), blockable: true)
        #expect(!job.refused && job.findings.contains { $0.rule == "honeytoken" })
    }

    @Test("A technician's day of work — a few hundred patients over eight hours, work-queue views included — raises nothing")
    func normalDay() throws {
        let d = Detector(rules: try DetectionRules.bundled())
        var seq: Int64 = 0
        var all: [Finding] = []
        for i in 0..<300 {
            let at = Self.t0 + Int64(i) * 96_000  // one patient every 96 s: 300 in 8 hours
            let p = String(format: "pat-%04d", i)
            for (type, action) in [("MedicationRequest", "search"), ("Patient", "read"), ("MedicationDispense", "transition")] {
                seq += 1
                all += d.consume(Self.read(seq, at, patients: [p], type: type, action: action), context: Canaries(), blockable: true).findings
            }
            if i % 10 == 0 {
                // The work queue (a list): four states' first pages, 50 patients each.
                seq += 1
                let queue = (0..<200).map { String(format: "pat-%04d", ($0 + i) % 400) }
                all += d.consume(Self.read(seq, at, patients: queue, type: "MedicationDispense", action: "list"), context: Canaries(), blockable: true).findings
            }
        }
        #expect(all.isEmpty, "\(all.map(\.summary))")
    }

    @Test("Honeytokens: any touch is critical and refused; planting them and audit searches that name them are not")
    func honeytokens() throws {
        let d = Detector(rules: try DetectionRules.bundled())
        #expect(d.consume(Self.read(1, Self.t0, actor: "system", role: "system", patients: ["pat-canary"], action: "create"), context: Canaries()).findings.isEmpty)
        #expect(d.consume(Self.read(2, Self.t0, actor: "user-po", role: "privacy-officer", patients: ["pat-canary"], type: "AuditEvent", action: "search"), context: Canaries()).findings.isEmpty)
        let r = d.consume(Self.read(3, Self.t0, actor: "user-ph", role: "pharmacist", patients: ["pat-0001", "pat-canary"], action: "search"), context: Canaries(), blockable: true)
        #expect(r.refused)
        let f = try #require(r.findings.first { $0.rule == "honeytoken" })
        #expect(f.severity == .critical && f.contain && f.blocked && f.patients == ["pat-canary"])
        // The same actor again: more evidence for the open alert, not a second alert.
        let again = d.consume(Self.read(4, Self.t0 + 10, actor: "user-ph", role: "pharmacist", patients: ["pat-canary"]), context: Canaries(), blockable: true)
        #expect(again.findings.allSatisfy { $0.isUpdate })
        // Viewing an alert that names a canary is not opening the canary; a refused try at its id is.
        #expect(d.consume(Self.read(6, Self.t0, actor: "user-po", role: "privacy-officer", patients: ["pat-canary"], action: "alert-view"), context: Canaries()).findings.isEmpty)
        let probe = DetectorEvent(
            seq: 7, time: Self.t0, tenant: "demo-pharmacy", actor: "user-sup", role: "support", action: "denied", resourceType: "Patient",
            resourceID: "pat-canary", outcome: "denied", result: .notFound)
        #expect(d.consume(probe, context: Canaries()).findings.contains { $0.rule == "honeytoken" && $0.actor == "user-sup" })
        // A record written elsewhere (not blockable) still alerts.
        let late = d.consume(Self.read(5, Self.t0, actor: "client-x", role: "partner", patients: ["pat-canary"]), context: Canaries())
        #expect(!late.refused && late.findings.contains { $0.rule == "honeytoken" && !$0.isUpdate })
    }

    @Test("A patient token that reaches any other patient is cut; its own records, and a caregiver's patient, are fine")
    func patientTouchesOthers() throws {
        let d = Detector(rules: try DetectionRules.bundled())
        #expect(d.consume(Self.read(1, Self.t0, actor: "user-p1", role: "patient", patients: ["pat-0001"], actorPatient: "pat-0001"), context: Canaries(), blockable: true).findings.isEmpty)
        #expect(d.consume(Self.read(2, Self.t0, actor: "user-p1", role: "caregiver", patients: ["pat-0002"], actorPatient: "pat-0002"), context: Canaries(), blockable: true).findings.isEmpty)
        let r = d.consume(Self.read(3, Self.t0, actor: "user-p1", role: "patient", patients: ["pat-0001", "pat-0009"], type: "Communication", action: "search", actorPatient: "pat-0001"), context: Canaries(), blockable: true)
        #expect(r.refused && r.findings.contains { $0.rule == "patient-touches-others" })
    }

    @Test("Denial bursts per actor and per source; exports off hours or in bulk; a new source followed by bulk reads; business lines without authorization")
    func otherRules() throws {
        let rules = try DetectionRules.bundled()
        var d = Detector(rules: rules)
        var findings: [Finding] = []
        for i in 1...21 {
            findings += d.consume(Self.read(Int64(i), Self.t0 + Int64(i) * 1000, actor: "user-p5", role: "patient", patients: [], action: "denied", outcome: "denied", result: .notFound), context: Canaries()).findings
        }
        #expect(findings.filter { $0.rule == "denials-by-actor" && !$0.isUpdate }.count == 1)
        #expect(findings.first { $0.rule == "denials-by-actor" }?.seqs.count == 21)
        // A patient's token walking ids is contained (it is probing other patients' records).
        #expect(findings.contains { $0.rule == "patient-walks-ids" && $0.contain && !$0.isUpdate })

        d = Detector(rules: rules)
        findings = []
        for i in 1...51 {
            findings += d.consume(Self.read(Int64(i), Self.t0 + Int64(i) * 100, actor: "unknown", role: "anonymous", patients: [], action: "login", outcome: "failure", result: .unauthenticated, source: "src-bad"), context: Canaries()).findings
        }
        #expect(findings.contains { $0.rule == "denials-by-source" && $0.actor == "source:src-bad" })
        #expect(!findings.contains { $0.rule == "denials-by-actor" }, "unattributed failures are counted by source only")

        d = Detector(rules: rules)
        let night = Self.t0 - Self.t0 % 86_400_000 + 2 * 3_600_000  // 02:00 UTC
        let exports = d.consume(Self.read(1, night, actor: "system", role: "system", patients: ["pat-0001"], type: "MedicationDispense", action: "export"), context: Canaries())
        #expect(exports.findings.contains { $0.rule == "export-off-hours-or-bulk" && $0.summary.contains("outside 06:00-22:00") })
        let noon = night + 10 * 3_600_000
        #expect(d.consume(Self.read(2, noon, actor: "system", role: "system", patients: ["pat-0001"], action: "export"), context: Canaries()).findings.isEmpty)

        d = Detector(rules: rules)
        findings = []
        findings += d.consume(Self.read(1, Self.t0, actor: "user-ph", role: "pharmacist", patients: ["pat-0001"]), context: Canaries()).findings
        // An hour later, from a new address: 31 patients in five minutes.
        for i in 0..<31 {
            findings += d.consume(Self.read(Int64(2 + i), Self.t0 + 3_600_000 + Int64(i) * 10_000, actor: "user-ph", role: "pharmacist", patients: [String(format: "pat-%04d", 100 + i)], source: "src-new"), context: Canaries()).findings
        }
        #expect(findings.contains { $0.rule == "new-source-bulk" })

        d = Detector(rules: rules)
        var ctx = Canaries()
        ctx.authorized = ["pat-0003"]
        #expect(d.consume(Self.read(1, Self.t0, actor: "retail-loyalty", role: "business-line", patients: ["pat-0003"], action: "search"), context: ctx).findings.isEmpty)
        let leak = d.consume(Self.read(2, Self.t0, actor: "retail-loyalty", role: "business-line", patients: ["pat-0003", "pat-0004"], action: "search"), context: ctx)
        #expect(leak.findings.first { $0.rule == "business-line-unconsented" }?.patients == ["pat-0004"])
    }

    @Test("A partner is measured against its own busiest day")
    func partnerBaseline() throws {
        let d = Detector(rules: try DetectionRules.bundled())
        var seq: Int64 = 0
        var found: [Finding] = []
        // Seven days of 150 patients a day, then 460 on the eighth (more than 3 × 150).
        for day in 0..<8 {
            let count = day < 7 ? 150 : 460
            for i in 0..<count {
                seq += 1
                found += d.consume(
                    Self.read(seq, Self.t0 + Int64(day) * 86_400_000 + Int64(i) * 60_000, actor: "telehealth", role: "partner",
                              patients: ["p-\(day)-\(i)"], type: "MedicationRequest", action: "create"),
                    context: Canaries()).findings
            }
        }
        let alert = try #require(found.first { $0.rule == "partner-volume" })
        #expect(alert.summary.contains("above 450"), "\(alert.summary)")
    }

    @Test("A rules file with an error refuses to load and says where")
    func badRules() throws {
        func error(_ text: String) -> String {
            do {
                _ = try DetectionRules.parse(Data(text.utf8), source: "rules.json")
                return "loaded"
            } catch {
                return error.description
            }
        }
        let rule = #"{"id":"r1","kind":"distinct-patients","severity":"high","description":"d","roles":["technician"],"window":"10m","threshold":5}"#
        #expect(error(#"{"version":1,"touchActions":["read"],"rules":[\#(rule)]}"#) == "loaded")
        #expect(error("not json").contains("not valid JSON"))
        #expect(error(#"{"version":2,"touchActions":["read"],"rules":[\#(rule)]}"#).contains("version"))
        #expect(error(#"{"version":1,"touchActions":["read"],"rules":[]}"#).contains("non-empty"))
        #expect(error(#"{"version":1,"touchActions":["read"],"rules":[\#(rule),\#(rule)]}"#).contains("duplicate id 'r1'"))
        #expect(error(#"{"version":1,"touchActions":["read"],"rules":[\#(rule.replacingOccurrences(of: "10m", with: "ten minutes"))]}"#).contains("rules[0] 'r1': \"window\""))
        #expect(error(#"{"version":1,"touchActions":["read"],"rules":[\#(rule.replacingOccurrences(of: "technician", with: "janitor"))]}"#).contains("unknown role 'janitor'"))
        #expect(error(#"{"version":1,"touchActions":["read"],"rules":[\#(rule.replacingOccurrences(of: "\"threshold\":5", with: "\"threshold\":-1"))]}"#).contains("threshold"))
        #expect(error(#"{"version":1,"touchActions":["read"],"rules":[\#(rule.replacingOccurrences(of: "distinct-patients", with: "vibes"))]}"#).contains("unknown kind 'vibes'"))
        #expect(error(#"{"version":1,"touchActions":["read"],"rules":[\#(rule.replacingOccurrences(of: "\"threshold\"", with: "\"treshold\""))]}"#).contains("unknown field 'treshold'"))
        #expect(error(#"{"version":1,"touchActions":["read"],"rules":[\#(rule.replacingOccurrences(of: "\"high\"", with: "\"severe\""))]}"#).contains("severity"))
    }

    @Test("Record timestamps parse to milliseconds without Foundation")
    func timestamps() {
        #expect(DetectorEvent.milliseconds("1970-01-01T00:00:00.000Z") == 0)
        #expect(DetectorEvent.milliseconds("2024-02-29T23:59:59.999Z") == 1_709_251_199_999)
        #expect(DetectorEvent.milliseconds("2026-12-01T17:00:00.123Z") == Int64(Date(timeIntervalSince1970: 1_796_144_400.123).timeIntervalSince1970 * 1000))
        #expect(DetectorEvent.milliseconds("garbage") == nil)
    }
}
