import Foundation
import SafeRxAudit
import SafeRxBreach
import SafeRxModel
import SafeRxPolicy
import SafeRxStore
import SafeRxStoreCore

/// Breach response as a service: the incident package (scope, residence, assessment, obligations) that the command
/// line (`saferx incident`) and the privacy officer's API share.
public enum BreachResponse {
    static func stateRules() throws(FHIRError) -> StateRules {
        do { return try StateRules.bundled() } catch { throw .internal() }
    }


    public struct Package: Sendable {
        public package(set) var incident: Incident
        public package(set) var scope: IncidentScope
        public package(set) var residents: [String: Int]
        public package(set) var unreachable: Int
        public package(set) var assessment: Assessment
        public package(set) var obligations: [Obligation]
        /// The individuals this pharmacy must notify itself: unsecured exposure, and not patients of a covered entity
        /// it serves as business associate (that covered entity notifies them, 164.410).
        public package(set) var notifiable: [AffectedIndividual]
        /// `notifiable` by state of residence.
        public package(set) var notifiableResidents: [String: Int]
        public package(set) var done: [String: (on: String, by: String, note: String)]

        public func facts(tollFree: String, email: String, postal: String, website: String) -> IncidentFacts {
            IncidentFacts(
                id: incident.id, pharmacy: incident.tenant == "demo-pharmacy" ? "SafeRx Demo Pharmacy" : incident.tenant,
                breachStart: String((assessment.facts.firstExposure ?? incident.from ?? incident.discovered).prefix(10)),
                breachEnd: String((assessment.facts.lastExposure ?? incident.to ?? incident.discovered).prefix(10)), discovered: incident.discovered,
                whatHappened: incident.description,
                whatWeAreDoing: incident.whatWeAreDoing.isEmpty ? Package.toBeCompleted("what the pharmacy has done in response") : incident.whatWeAreDoing,
                tollFree: tollFree, email: email, postalAddress: postal, website: website)
        }

        /// The text that stands in a document where a fact was not recorded: a document never claims what nobody said.
        public static func toBeCompleted(_ what: String) -> String { "[TO BE COMPLETED: \(what)]" }

        /// Facts the documents need that nobody has recorded yet (`incident report` lists them).
        public var missingFacts: [String] {
            var out: [String] = []
            if incident.whatWeAreDoing.isEmpty {
                out.append("what the pharmacy has done in response (saferx incident declare --actions, or POST /incidents with \"actions\")")
            }
            return out
        }

        /// The HHS report's "actions taken in response": only what was recorded.
        public var actionsTaken: [String] {
            incident.whatWeAreDoing.isEmpty ? [Self.toBeCompleted("actions taken in response")] : ["Other: \(incident.whatWeAreDoing)"]
        }
    }

    /// Computes the scope of an incident.
    package static func scope(_ store: PharmacyStore, _ id: String) async throws(FHIRError) -> (Incident, IncidentScope) {
        guard let incident = try await store.incident(id: id) else { throw .notFoundPath("incident \(id)") }
        return (incident, try await store.incidentScope(incident))
    }

    /// Records that an obligation of the incident was met. Refuses an id the incident does not have (400, listing the
    /// ids it has): a typo must not leave the real obligation open while the record says something was done.
    package static func markDone(
        _ store: PharmacyStore, _ ctx: AccessContext, _ id: String, obligation: String, on day: String, by: String, note: String
    ) async throws(FHIRError) {
        let p = try await package(store, id)
        guard p.obligations.contains(where: { $0.id == obligation }) else {
            throw .invalid(
                "Incident \(id) has no obligation '\(String(obligation.prefix(64)))'; its obligations are: "
                    + p.obligations.map(\.id).joined(separator: ", "), at: "done")
        }
        try await store.markObligationDone(ctx, incident: id, obligation: obligation, on: day, by: by, note: note)
    }

    /// Scope, residence, assessment and obligations: everything the assessment, obligations, documents and report
    /// steps show. Refuses (409) when the audit chain does not verify.
    package static func package(_ store: PharmacyStore, _ id: String, scope computed: (Incident, IncidentScope)? = nil) async throws(FHIRError) -> Package {
        let incident: Incident
        var scope: IncidentScope
        if let computed { (incident, scope) = computed } else { (incident, scope) = try await Self.scope(store, id) }
        guard scope.certified else {
            throw .conflict("REFUSING TO CERTIFY incident \(id): \(scope.chainProblem ?? "the audit chain does not verify")")
        }
        // Residence per individual, aligned with scope.affected (millions of individuals: positions, not lookups).
        let meta = try await store.residence(.system(reason: "incident \(id) documents", tenant: incident.tenant, agent: "saferx breach response"), patients: scope.affected.map(\.patient))
        func aggregate(_ positions: [Int]?) -> (byState: [String: Int], unreachable: Int) {
            var byState: [String: Int] = [:]
            var unreachable = 0
            func count(_ m: PharmacyStore.Residence?) {
                byState[m?.state ?? "??", default: 0] += 1
                if m?.postal != true { unreachable += 1 }
            }
            if let positions { for i in positions { count(meta[i]) } } else { for m in meta { count(m) } }
            return (byState, unreachable)
        }
        let (residents, unreachable) = aggregate(nil)
        // A patient record that holds an SSN exposes it with the identifiers.
        for i in meta.indices where meta[i]?.ssn == true && scope.affected[i].elements.contains(DataElement.identifiers.rawValue) {
            scope.affected[i].elements.insert(DataElement.ssn.rawValue)
        }
        // Individuals by the set of elements exposed (a handful of distinct sets, however many individuals).
        func tally(_ people: [AffectedIndividual]) -> [Set<String>: Int] {
            var out: [Set<String>: Int] = [:]
            for a in people { out[a.elements, default: 0] += 1 }
            return out
        }
        var elementCounts: [String: Int] = [:]
        for (elements, n) in tally(scope.affected) {
            for e in elements { elementCounts[DataElement(rawValue: e)?.label ?? e, default: 0] += n }
        }
        let unsecured = scope.affected.reduce(0) { $0 + ($1.secured ? 0 : 1) }
        let safeHarbor = !scope.affected.isEmpty && unsecured == 0
        let harborReason = safeHarbor
            ? "every exposure was of an encrypted fulfillment file (HPKE to the vendor's X25519 key) whose key is not known to be compromised, so the PHI was unusable, unreadable or indecipherable to an unauthorized person (HHS guidance under HITECH §13402(h)(2))"
            : unsecured == 0 ? "nobody was affected" : "\(unsecured) individual(s) had data returned in readable form"
        let judgements = try await store.judgements(incident: id)
        var js: [String: Assessment.Judgement] = [:]
        for (q, j) in judgements where q != "conclusion" { js[q] = .init(text: j.text, by: j.by, at: j.at) }
        var concluded: Assessment.Conclusion? = nil
        var reasoning: Assessment.Judgement? = nil
        if let c = judgements["conclusion"], let colon = c.text.firstIndex(of: ":") {
            concluded = Assessment.Conclusion(rawValue: String(c.text[..<colon]))
            reasoning = .init(text: String(c.text[c.text.index(after: colon)...]).trimmingCharacters(in: .whitespaces), by: c.by, at: c.at)
        }
        let facts = Assessment.Facts(
            affected: scope.affected.count, elements: elementCounts,
            controlledSubstances: try await store.controlledSubstanceCount(.system(reason: "incident \(incident.id) assessment", tenant: incident.tenant, agent: "saferx breach response"), patients: Set(scope.affected.lazy.filter { !$0.secured && $0.elements.contains(DataElement.medications.rawValue) }.map(\.patient))),
            recipients: scope.recipients, acquired: unsecured, refusedAttempts: scope.refused, evidenceRecords: scope.evidenceRecords,
            firstExposure: scope.affected.lazy.map(\.first).min(), lastExposure: scope.affected.lazy.map(\.last).max(), chainVerified: scope.certified,
            chainProblem: scope.chainProblem, safeHarbor: safeHarbor, safeHarborReason: harborReason,
            containment: try await store.containment(actors: incident.actors))
        let assessment = Assessment(facts: facts, judgements: js, concluded: concluded, reasoning: reasoning)
        let determined = reasoning.flatMap { CivilDate($0.at) }
        guard let discovered = CivilDate(incident.discovered) else { throw .conflict("Incident \(id) has no valid discovery date") }
        var delay: CivilDate? = nil
        if let d = incident.lawEnforcementDelayUntil {
            guard let day = CivilDate(d) else { throw .conflict("Incident \(id) has an invalid law-enforcement delay date") }
            delay = day
        }
        // As a business associate, the patients of the covered entities served are theirs to notify: the pharmacy
        // tells each covered entity (164.410) and notifies only the rest itself.
        var ownedBy: [String: String] = [:]
        if incident.role == "business-associate" {
            ownedBy = try await store.patientOwners(tenant: incident.tenant, patients: scope.affected.filter { !$0.secured }.map(\.patient))
        }
        var owners: [String: Int] = [:]
        for (_, entity) in ownedBy { owners[entity, default: 0] += 1 }
        // Positions of the individuals to notify (nil: everyone affected).
        var positions: [Int]? = nil
        if unsecured != scope.affected.count || !ownedBy.isEmpty {
            positions = scope.affected.indices.filter { !scope.affected[$0].secured && ownedBy[scope.affected[$0].patient] == nil }
        }
        let notifiable = positions.map { $0.map { scope.affected[$0] } } ?? scope.affected
        let notifiedSets = tally(notifiable).keys
        let medical = notifiedSets.contains { $0.contains { DataElement(rawValue: $0)?.isMedical == true } }
        let ssnExposed = notifiedSets.contains { $0.contains(DataElement.ssn.rawValue) }
        let notifiableResidents = aggregate(positions)
        let obligations = SafeRxBreach.Obligations.compute(
            ObligationFacts(
                discovered: discovered, determined: determined, isBreach: assessment.notify, affected: notifiable.count,
                residents: notifiableResidents.byState, unreachable: notifiableResidents.unreachable, medicalExposed: medical, ssnExposed: ssnExposed,
                coveredEntities: owners, lawEnforcementDelayUntil: delay),
            rules: try stateRules())
        return Package(
            incident: incident, scope: scope, residents: residents, unreachable: unreachable, assessment: assessment, obligations: obligations,
            notifiable: assessment.notify ? notifiable : [], notifiableResidents: assessment.notify ? notifiableResidents.byState : [:],
            done: try await store.obligationsDone(incident: id))
    }

    public static func assessmentJSON(_ a: Assessment) -> JSON {
        let r = a.result
        return .object([
            "result": .string(r.conclusion.rawValue), "why": .string(r.why), "notify": .bool(a.notify), "safeHarbor": .bool(a.facts.safeHarbor),
            "safeHarborReason": .string(a.facts.safeHarborReason),
            "factors": .array(Assessment.Question.allCases.map { q in
                .object([
                    "question": .string(q.rawValue), "prompt": .string(q.prompt), "computed": a.computed[q].map { .string($0) } ?? .null,
                    "judgement": a.judgements[q.rawValue].map { .object(["text": .string($0.text), "by": .string($0.by), "at": .string($0.at)]) } ?? .null,
                ])
            }),
        ])
    }

    public static func obligationJSON(_ o: SafeRxBreach.Obligation, done: (on: String, by: String, note: String)?) -> JSON {
        .object([
            "id": .string(o.id), "title": .string(o.title), "authority": .string(o.authority), "recipient": .string(o.recipient),
            "due": o.due.map { .string($0) } ?? .null, "dueText": .string(o.dueText), "basis": .string(o.basis), "required": .bool(o.required),
            "provenance": .string(o.provenance), "done": done.map { .object(["on": .string($0.on), "by": .string($0.by), "note": .string($0.note)]) } ?? .null,
        ])
    }

    /// The whole package as JSON (`saferx incident report --json`, `GET /incidents/{id}/report`).
    public static func reportJSON(_ p: Package) -> JSON {
        .object([
            "incident": .string(p.incident.id), "discovered": .string(p.incident.discovered), "certified": .bool(p.scope.certified),
            "affected": .int(Int64(p.scope.affected.count)), "byState": .object(p.residents.mapValues { .int(Int64($0)) }),
            "unreachable": .int(Int64(p.unreachable)), "elements": .object(p.assessment.facts.elements.mapValues { .int(Int64($0)) }),
            "recipients": .array(p.scope.recipients.map { .string($0) }),
            "missingFacts": .array(p.missingFacts.map { .string($0) }),
            "assessment": assessmentJSON(p.assessment),
            "obligations": .array(p.obligations.map { obligationJSON($0, done: p.done[$0.id]) }),
        ])
    }

    /// Runs `work` over `items` in chunks, two chunks at a time (both cores), and returns the results in order.
    static func inChunks<T: Sendable>(
        _ items: [String], size: Int = 10_000, _ work: @escaping @Sendable ([String]) async throws -> T
    ) async throws(FHIRError) -> [T] {
        let chunks = stride(from: 0, to: items.count, by: size).map { Array(items[$0..<min($0 + size, items.count)]) }
        var results = [T?](repeating: nil, count: chunks.count)
        do {
            try await withThrowingTaskGroup(of: (Int, T).self) { group in
                var next = 0
                func start() {
                    guard next < chunks.count else { return }
                    let n = next
                    next += 1
                    group.addTask { (n, try await work(chunks[n])) }
                }
                start()
                start()
                while let (n, result) = try await group.next() {
                    results[n] = result
                    start()
                }
            }
        } catch let e as FHIRError {
            throw e
        } catch {
            throw .internal()
        }
        return results.compactMap { $0 }
    }

    /// The letter to `r` (`elements` sorted). Its id is the same whichever way it is produced: the incident and
    /// patient, plus the caregiver's own record for a copy to a caregiver.
    static func letter(_ incident: String, _ r: PharmacyStore.LetterRecipient, _ a: AffectedIndividual, elements: [DataElement]) -> Letter {
        Letter(
            letterID: "\(incident)-\(r.patient)\(r.caregiverOf == nil ? "" : "-c-\(r.recipientPatient)")", patientID: r.patient, recipientName: r.name,
            onBehalfOf: r.caregiverOf, addressLines: r.lines, city: r.city, state: r.state, postalCode: r.postal, elements: elements,
            firstExposure: a.first, lastExposure: a.last, recipientPatientID: r.caregiverOf == nil ? nil : r.recipientPatient)
    }

    /// The letters for `patients` (each to the individual, plus a copy to a caregiver with full access on record),
    /// with each person's own data elements. Names and addresses are decrypted in chunks on both cores.
    package static func letters(_ store: PharmacyStore, _ p: Package, patients: [String]) async throws(FHIRError) -> [Letter] {
        let byPatient = Dictionary(uniqueKeysWithValues: p.scope.affected.map { ($0.patient, $0) })
        let tenant = p.incident.tenant, id = p.incident.id
        return try await inChunks(patients) { chunk in
            try await store.letterRecipients(.system(reason: "incident \(id) letters", tenant: tenant, agent: "saferx breach response"), patients: chunk).compactMap { r in
                byPatient[r.patient].map { letter(id, r, $0, elements: $0.elements.compactMap(DataElement.init(rawValue:)).sorted()) }
            }
        }.flatMap { $0 }
    }

    /// The complete mail-merge file for a print vendor, built in chunks on both cores without keeping the letters.
    public struct MailMerge: Sendable {
        /// The CSV (``Notices/mailMergeHeader`` first, CRLF rows), UTF-8.
        public var csv: [UInt8]
        /// Rows: the letters to individuals plus copies to caregivers.
        public var letters: Int
        /// Every patient whose data the rows carry (the individuals, and caregivers' own records), for the audit record.
        public var disclosed: [String]
    }

    /// The mail merge of the letters to `patients` (see ``letters(_:_:patients:)``), row for row what those letters say.
    package static func mailMerge(_ store: PharmacyStore, _ p: Package, patients: [String]) async throws(FHIRError) -> MailMerge {
        let index = Dictionary(uniqueKeysWithValues: p.scope.affected.enumerated().map { ($1.patient, $0) })
        let affected = p.scope.affected
        let tenant = p.incident.tenant, id = p.incident.id
        let parts = try await inChunks(patients) { chunk in
            let recipients = try await store.letterRecipients(.system(reason: "incident \(id) mail merge", tenant: tenant, agent: "saferx breach response"), patients: chunk)
            var part = MailMerge(csv: [], letters: 0, disclosed: [])
            part.csv.reserveCapacity(recipients.count * 280)
            part.disclosed.reserveCapacity(recipients.count)
            // Most letters share a handful of element lists: sort and word each once.
            var worded: [Set<String>: ([DataElement], String)] = [:]
            for r in recipients {
                guard let i = index[r.patient] else { continue }
                let a = affected[i]
                let w = worded[a.elements] ?? {
                    let elements = a.elements.compactMap(DataElement.init(rawValue:)).sorted()
                    let w = (elements, Notices.informationInvolved(elements))
                    worded[a.elements] = w
                    return w
                }()
                Notices.appendMailMergeRow(letter(id, r, a, elements: w.0), involved: w.1, to: &part.csv)
                part.letters += 1
                part.disclosed.append(r.caregiverOf == nil ? r.patient : r.recipientPatient)
            }
            return part
        }
        var csv = Array((Notices.mailMergeHeader.joined(separator: ",") + "\r\n").utf8)
        csv.reserveCapacity(csv.count + parts.reduce(0) { $0 + $1.csv.count })
        var letters = 0
        var disclosed = Set<String>(minimumCapacity: patients.count)
        for part in parts {
            csv += part.csv
            letters += part.letters
            disclosed.formUnion(part.disclosed)
        }
        return MailMerge(csv: csv, letters: letters, disclosed: Array(disclosed))
    }

    /// Every patient whose data the letters carry (the individuals, and caregivers' own records), for the audit
    /// record of their disclosure to the print vendor.
    public static func disclosed(_ letters: [Letter]) -> [String] {
        Array(Set(letters.map(\.patientID) + letters.compactMap(\.recipientPatientID))).sorted()
    }
}
