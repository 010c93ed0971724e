import Foundation
import SafeRxSQL
import Logging
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStoreCore
import SafeRxVault

/// The `elements:`, `elements[patient]:` and `listed:` parts of audit details written before audit entries carried
/// ``AuditEntry/released`` (records are immutable and kept for years, so their old form is still read; nothing writes
/// it any more).
enum LegacyReleasedDetail {
    static func parse(_ detail: String?, resourceType: String?) -> AuditEntry.Released? {
        guard let detail, detail.contains("elements") || detail.contains("listed: ") else { return nil }
        var common: [String]? = nil
        var byPatient: [String: [String]] = [:]
        func qualified(_ list: Substring) -> [String] {
            list.split(separator: ",").map { e in e.contains(".") ? String(e) : "\(resourceType ?? "").\(e)" }
        }
        for part in detail.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if part.hasPrefix("elements: ") || part.hasPrefix("listed: ") {
                common = qualified(part.drop { $0 != " " }.dropFirst())
            } else if part.hasPrefix("elements["), let close = part.firstIndex(of: "]") {
                let pid = String(part[part.index(part.startIndex, offsetBy: 9)..<close])
                byPatient[pid] = qualified(part[part.index(after: close)...].drop { $0 == ":" || $0 == " " })
            }
        }
        guard common != nil || !byPatient.isEmpty else { return nil }
        return AuditEntry.Released(elements: common ?? [], byPatient: byPatient.isEmpty ? nil : byPatient)
    }
}

/// The name and postal address a breach letter needs, kept sealed under the patient's data key beside the record
/// (`patient_meta.contact`), written with every version of the Patient.
struct LetterContact: Equatable {
    var name: String
    var lines: [String]
    var city: String
    var state: String
    var postal: String

    /// From a Patient resource: its first name entry, and its home address (else the first address).
    init(_ json: JSON) {
        let n = json["name"]?.arrayValue?.first
        name = ((n?["given"]?.arrayValue?.compactMap(\.stringValue) ?? []) + [n?["family"]?.stringValue ?? ""]).joined(separator: " ")
        let addresses = json["address"]?.arrayValue ?? []
        let a = addresses.first { $0["use"]?.stringValue == "home" } ?? addresses.first
        lines = a?["line"]?.arrayValue?.compactMap(\.stringValue) ?? []
        city = a?["city"]?.stringValue ?? ""
        state = a?["state"]?.stringValue ?? ""
        postal = a?["postalCode"]?.stringValue ?? ""
    }

    /// Decodes ``encoded()``; `nil` for anything else.
    init?(decoding data: Data) {
        guard let json = try? JSON.parse(data), let v = json.arrayValue, v.count == 5, let name = v[0].stringValue, let lines = v[1].arrayValue,
              let city = v[2].stringValue, let state = v[3].stringValue, let postal = v[4].stringValue
        else { return nil }
        self.name = name
        self.lines = lines.compactMap(\.stringValue)
        self.city = city
        self.state = state
        self.postal = postal
    }

    func encoded() -> Data {
        JSON.array([.string(name), .array(lines.map { .string($0) }), .string(city), .string(state), .string(postal)]).encoded()
    }

    static func context(_ tenant: String, _ patient: String) -> String { "patient-contact/\(tenant)/\(patient)" }
}

extension PharmacyStore {
    /// Actions through which data left the store to the actor.
    /// The data elements that left through resources of `type` in a record of `recordType`, given what it released
    /// (`nil`: whole resources). A restriction limits the record's own type and the types it names.
    static func exposed(_ type: String, recordType: String, _ released: [String]?) -> Set<DataElement> {
        guard let released else { return ExposureMap.whole(type) }
        let ofType = released.filter { $0.hasPrefix(type + ".") }
        guard type == recordType || !ofType.isEmpty else { return ExposureMap.whole(type) }
        return ExposureMap.elements(type, visible: ofType)
    }

    static let exposingActions: Set<String> = ["read", "vread", "history", "search", "create", "update", "refill", "transition", "operation", "transaction"]

    /// Keeps a patient's state of residence and reachability (not identifiers on their own) beside the ciphertext,
    /// and the name and postal address for letters sealed under the patient's data key (see ``LetterContact``).
    func recordPatientMeta(_ db: any SQLConnection, tenant: String, id: String, _ json: JSON) throws {
        let contact = LetterContact(json)
        let state = contact.state.uppercased()
        let postal = !contact.lines.isEmpty && !contact.postal.isEmpty
        let email = (json["telecom"]?.arrayValue ?? []).contains { $0["system"]?.stringValue == "email" }
        let ssn = (json["identifier"]?.arrayValue ?? []).contains { $0["system"]?.stringValue == "http://hl7.org/fhir/sid/us-ssn" }
        let (sealed, version) = try keys.seal(db, tenant: tenant, owner: id, contact.encoded(), context: LetterContact.context(tenant, id))
        try db.execute(
            sql: """
                INSERT INTO patient_meta (tenant, patient_id, state, has_postal, has_email, has_ssn, contact, contact_key_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, patient_id) DO UPDATE SET state = excluded.state, has_postal = excluded.has_postal, has_email = excluded.has_email, has_ssn = excluded.has_ssn, contact = excluded.contact, contact_key_version = excluded.contact_key_version
                """,
            arguments: [tenant, id, state.count == 2 ? state : "??", postal, email, ssn, sealed, Int64(version)])
    }

    // MARK: Incidents

    /// Saves a new incident, recorded as `incident-declare` by `ctx` (a privacy officer or an operator).
    package func declareIncident(_ ctx: AccessContext, _ i: Incident) async throws(FHIRError) {
        guard CivilDate(i.discovered) != nil, i.discovered.count == 10 else { throw .invalid("--discovered must be a date YYYY-MM-DD") }
        var i = i
        // The window in the audit log's own form (UTC, milliseconds), so that it compares exactly with record times.
        func normal(_ t: String?, end: Bool) throws(FHIRError) -> String? {
            guard let t else { return nil }
            guard FHIRDate.isValidDateTime(t), let d = FHIRDate.instant(t, end: false) else {
                throw .invalid("'\(String(t.prefix(40)))' is not an ISO date or time")
            }
            return AuditLog.timestamp(d)
        }
        i.from = try normal(i.from, end: false)
        i.to = try normal(i.to, end: true)
        if let f = i.from, let t = i.to, f >= t { throw .invalid("--from must be before --to") }
        guard !i.actors.isEmpty || !i.files.isEmpty || !i.sources.isEmpty || !i.resources.isEmpty else {
            throw .invalid("Say what is known: at least one --actor, --file, --source or --resource")
        }
        let normalized = i
        try await write(ctx) { tx in
            try IncidentRepository.insert(normalized, declaredAt: self.clock.now, tx.db)
            try tx.record("incident-declare", detail: "incident \(normalized.id) declared by \(normalized.declaredBy), discovered \(normalized.discovered)")
        }
    }

    package func incident(id: String) async throws(FHIRError) -> Incident? {
        try await run { db in try IncidentRepository.find(id: id, db) }
    }

    package func incidents() async throws(FHIRError) -> [Incident] {
        try await run { db in try IncidentRepository.all(db) }
    }

    /// Saves a changed incident (law-enforcement delay, wording of the notices); audited.
    package func updateIncident(_ ctx: AccessContext, _ i: Incident, by: String, what: String) async throws(FHIRError) {
        try await write(ctx) { tx in
            try IncidentRepository.update(i, tx.db)
            try tx.record("incident-update", detail: "incident \(i.id): \(what) (by \(by))")
        }
    }

    // MARK: Scope

    /// Computes who was affected, from the audit log and the file-export records: for each individual the data
    /// elements that left, the first and last exposure and the audit records that show it. The chain is verified
    /// first; a broken chain makes the scope uncertified (the caller must refuse to certify it).
    package func incidentScope(_ incident: Incident) async throws(FHIRError) -> IncidentScope {
        // The chain is verified on the other core while the evidence is read: with a window, the records from the
        // window (and any exported file's record) to the signed checkpoints around them; else all of it.
        let window = try await auditSeqRange(incident)
        let verifying = Task.detached { [self] () async throws -> AuditVerification in
            if let window { return try await self.verifyAuditSegment(from: window.lowerBound, to: window.upperBound) }
            return try await self.verifyAudit()
        }
        var actorIDs = Set<String>()
        for a in incident.actors {
            actorIDs.insert(a)
            if let u = try await user(named: a), u.tenant == incident.tenant { actorIDs.insert(u.id) }
        }
        let cipher = auditLog.cipher
        let sourceTokens = Set(incident.sources.compactMap { cipher?.sourceToken($0) })
        let from = incident.from ?? "0000"
        let to = incident.to ?? "9999"
        let fileKeyCompromised = incident.fileKeyCompromised
        let resources = incident.resources
        let files = incident.files
        let tenant = incident.tenant

        struct Acc {
            var elements = Set<String>()
            var first = "9999"
            var last = "0000"
            var evidence: [Int64] = []
            var secured = true
        }
        let result: (affected: [String: Acc], records: Int, refused: Int, recipients: Set<String>, fileProblems: [String])
        do {
            result = try readOnCallingThread { db in
                var acc: [String: Acc] = [:]
                var records = 0
                var refused = 0
                var recipients = Set<String>()
                var problems: [String] = []
                // Patients exposed alike share one element set (millions of patients, a handful of distinct sets).
                var interned: [Set<DataElement>: Set<String>] = [:]
                func intern(_ elements: Set<DataElement>) -> Set<String> {
                    if let s = interned[elements] { return s }
                    let s = Set(elements.map(\.rawValue))
                    interned[elements] = s
                    return s
                }
                func add(_ patient: String, _ elements: Set<String>, _ time: String, _ seq: Int64, secured: Bool) {
                    func update(_ a: inout Acc) {
                        if a.elements.isEmpty { a.elements = elements } else if !elements.isSubset(of: a.elements) { a.elements.formUnion(elements) }
                        if time < a.first { a.first = time }
                        if time > a.last { a.last = time }
                        if a.evidence.last != seq { a.evidence.append(seq) }
                        a.secured = a.secured && secured
                    }
                    update(&acc[patient, default: Acc()])
                }
                var roles: [String: String] = [:]
                func consider(_ r: AuditRecord) {
                    let e = r.entry
                    roles[e.actor.id] = e.actor.role
                    // A work list exposes what its rows showed (the fill queue: name, birth date, drug) when its record
                    // says so; an inbox list shows no record content.
                    let released = e.released ?? LegacyReleasedDetail.parse(e.detail, resourceType: e.resourceType)
                    let exposing = Self.exposingActions.contains(e.action) || (e.action == "list" && released != nil)
                    guard e.outcome == "success", exposing, !e.patients.isEmpty, let type = e.resourceType else {
                        if e.outcome != "success" { refused += 1 }
                        return
                    }
                    records += 1
                    // Per type when the answer mixed types (`typePatients`), and the types a restriction names.
                    var byType: [String: [String]] = e.typePatients ?? [type: e.patients]
                    for name in released?.elements ?? [] {
                        if let dot = name.firstIndex(of: "."), byType[String(name[..<dot])] == nil { byType[String(name[..<dot])] = e.patients }
                    }
                    for (t, ps) in byType {
                        // `nil`: whole resources. A restriction limits the types it names (and the record's own type);
                        // other types in the same answer (an `_include`) left whole.
                        let common = intern(Self.exposed(t, recordType: type, released?.elements))
                        for p in ps {
                            let own = released?.byPatient?[p].map { intern(Self.exposed(t, recordType: type, $0)) }
                            add(p, own ?? common, r.time, r.seq, secured: false)
                        }
                    }
                }
                // Records of the compromised actors in the window (index on actor and time).
                if !actorIDs.isEmpty {
                    let marks = actorIDs.map { _ in "?" }.joined(separator: ",")
                    let rows = try SQLRow.fetchAll(
                        db,
                        sql: """
                            SELECT body FROM audit_log WHERE json_extract(body, '$.entry.actor.id') IN (\(marks)) AND time >= ? AND time < ? AND tenant = ?
                            ORDER BY seq
                            """,
                        arguments: SQLArguments(Array(actorIDs) + [from, to, tenant]))
                    for row in rows {
                        guard let r = AuditRecord.decode(body: row[0], cipher: cipher) else { continue }
                        consider(r)
                    }
                    for a in actorIDs.sorted() where roles[a] != nil { recipients.insert("\(roles[a]!) \(a) (compromised credential)") }
                }
                // Records from the intruder's addresses in the window, whoever they acted as.
                if !sourceTokens.isEmpty {
                    let marks = sourceTokens.map { _ in "?" }.joined(separator: ",")
                    let rows = try SQLRow.fetchAll(
                        db,
                        sql: """
                            SELECT body FROM audit_log WHERE time >= ? AND time < ? AND tenant = ? AND json_extract(body, '$.entry.sourceToken') IN (\(marks))
                            ORDER BY seq
                            """,
                        arguments: SQLArguments([from, to, tenant] + Array(sourceTokens)))
                    for row in rows {
                        guard let r = AuditRecord.decode(body: row[0], cipher: cipher), !actorIDs.contains(r.entry.actor.id) else { continue }
                        consider(r)
                        recipients.insert("requests from a compromised source address (as \(r.entry.actor.role) \(r.entry.actor.id))")
                    }
                }
                // Exported files: every patient in the file, with the manifest's columns (name and shipping address).
                for f in files {
                    let key = f.lowercased()
                    let matches = try SQLRow.fetchAll(
                        db, sql: "SELECT sha256, vendor, audit_seq, created FROM fulfillment_file WHERE sha256 LIKE ? AND tenant = ?",
                        arguments: [key + "%", tenant])
                    guard key.count >= 8, matches.count == 1, let row = matches.first else {
                        problems.append(matches.count > 1 ? "file \(f) is ambiguous (\(matches.count) exports start with it)" : "no exported file \(f)")
                        continue
                    }
                    let seq: Int64 = row["audit_seq"]
                    let time = try String.fetchOne(db, sql: "SELECT time FROM audit_log WHERE seq = ?", arguments: [seq]) ?? (row["created"] as String)
                    let patients = try String.fetchAll(db, sql: "SELECT patient_id FROM audit_patient WHERE seq = ?", arguments: [seq])
                    let exported = intern([.name, .address])
                    for p in patients { add(p, exported, time, seq, secured: !fileKeyCompromised) }
                    recipients.insert("fulfillment file \((row["sha256"] as String).prefix(12)) for vendor \(row["vendor"] as String) (encrypted to the vendor's key\(fileKeyCompromised ? ", key compromised" : ""))")
                }
                // Resources known to be exposed as such.
                for ref in resources {
                    guard let r = Reference(ref) else {
                        problems.append("'\(ref)' is not a reference Type/id")
                        continue
                    }
                    guard let pk = try Int64.fetchOne(
                        db, sql: "SELECT pk FROM resource_version WHERE type = ? AND id = ? AND tenant = ? AND current = 1", arguments: [r.type.rawValue, r.id, tenant])
                    else {
                        problems.append("no resource \(ref)")
                        continue
                    }
                    let patients = try String.fetchAll(db, sql: "SELECT patient_id FROM resource_patient WHERE pk = ?", arguments: [pk])
                    let whole = intern(ExposureMap.whole(r.type.rawValue))
                    for p in patients { add(p, whole, from == "0000" ? incident.discovered : from, 0, secured: false) }
                    recipients.insert("resource \(ref) exposed as such")
                }
                return (acc, records, refused, recipients, problems)
            }
        } catch let e as FHIRError {
            throw e
        } catch {
            logger.error("incident scope failed", metadata: ["error": "\(error)"])
            throw .internal()
        }
        let verification: AuditVerification
        do { verification = try await verifying.value } catch { throw .internal() }
        if !result.fileProblems.isEmpty { throw .invalid("The incident names what cannot be found: " + result.fileProblems.joined(separator: "; ")) }
        let affected = result.affected.map { p, a in
            AffectedIndividual(patient: p, elements: a.elements, first: a.first, last: a.last, evidence: a.evidence.filter { $0 > 0 }, secured: a.secured)
        }.sorted { $0.patient < $1.patient }
        let verified = window.map { "records \($0.lowerBound)–\($0.upperBound) (the incident's window) between signed checkpoints: \(verification.records) records, \(verification.checkpoints) checkpoints" }
            ?? "the whole chain: \(verification.records) records, \(verification.checkpoints) checkpoints"
        return IncidentScope(
            certified: verification.ok, chainProblem: verification.ok ? nil : "the audit chain breaks at record \(verification.firstBad ?? 0): \(verification.reason ?? "")",
            affected: affected, evidenceRecords: result.records, refused: result.refused, recipients: result.recipients.sorted(), verified: verified)
    }

    /// The audit sequence numbers an incident's evidence can come from: its window, widened to its files' records;
    /// `nil` without a window (then the whole chain is the evidence).
    func auditSeqRange(_ i: Incident) async throws(FHIRError) -> ClosedRange<Int64>? {
        guard i.from != nil || i.to != nil else { return nil }
        let from = i.from ?? "0000", to = i.to ?? "9999", files = i.files, tenant = i.tenant
        return try await run { db in
            let row = try SQLRow.fetchOne(db, sql: "SELECT MIN(seq), MAX(seq) FROM audit_log WHERE time >= ? AND time < ?", arguments: [from, to])
            var low: Int64? = row?[0], high: Int64? = row?[1]
            for f in files {
                for seq in try Int64.fetchAll(db, sql: "SELECT audit_seq FROM fulfillment_file WHERE sha256 LIKE ? AND tenant = ?", arguments: [f.lowercased() + "%", tenant]) {
                    low = min(low ?? seq, seq)
                    high = max(high ?? seq, seq)
                }
            }
            guard let low, let high else { return 1...1 }
            return low...high
        }
    }

    /// Where a patient lives and whether they can be reached by mail (`patient_meta`).
    package struct Residence: Sendable, Equatable {
        /// Two-letter state, or `??` when the record has none.
        package var state: String
        package var postal: Bool
        package var ssn: Bool
    }

    /// The residence of each of `patients`, in the same order (`nil` for a patient without a record), from
    /// `patient_meta`, filled in by decrypting the records written before it existed.
    ///
    /// For the breach documents' counts by state (attorneys general, media notice). One audit record says what was
    /// read and for how many individuals; it names none of them, because only counts leave this call's caller.
    /// - parameter ctx: a system context for one pharmacy, whose reason names the incident.
    /// - throws: `forbidden` for any other context.
    package func residence(_ ctx: AccessContext, patients: [String]) async throws(FHIRError) -> [Residence?] {
        let tenant = try Self.systemTenant(ctx, "Residence is read by a system job for one pharmacy")
        let out = try await residence(tenant: tenant, scope: ctx.scope, patients: patients)
        try await recordCounted(ctx, "read", .patient, "state of residence and mail reachability of \(patients.count) individuals, counted by state")
        return out
    }

    /// The audit record of a system job that reads about many individuals but lets only counts out: it says what
    /// was counted and names nobody.
    private func recordCounted(_ ctx: AccessContext, _ action: String, _ type: ResourceType, _ what: String) async throws(FHIRError) {
        try await commitAudit(
            entry(
                ctx, action: action, type: type, id: nil, patients: [String](), outcome: "success", result: .ok,
                detail: "\(ctx.scope.systemReason ?? "system"): \(what)"))
    }

    /// The context of a system job for one pharmacy, or `forbidden` with `message`.
    static func systemTenant(_ ctx: AccessContext, _ message: String) throws(FHIRError) -> String {
        guard ctx.scope.systemReason != nil, ctx.scope.tenant != "*" else { throw .forbidden(message) }
        return ctx.scope.tenant
    }

    private func residence(tenant: String, scope: AccessScope, patients: [String]) async throws(FHIRError) -> [Residence?] {
        // Read without holding the writer; only records written before patient_meta existed need a write.
        var out = try await run { db -> [Residence?] in
            var out = [Residence?](repeating: nil, count: patients.count)
            // SQLite's binary collation orders ids by their UTF-8 bytes, as lexicographicallyPrecedes on .utf8 does.
            let sorted = zip(patients, patients.dropFirst()).allSatisfy { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            if patients.count > 20_000, sorted, let first = patients.first, let last = patients.last {
                // Many patients, in order (as a scope lists them): one ordered pass over their key range, merged.
                let rows = try SQLRow.fetchCursor(
                    db, sql: """
                        SELECT patient_id, state, has_postal, has_ssn FROM patient_meta WHERE tenant = ? AND patient_id BETWEEN ? AND ?
                        ORDER BY patient_id
                        """, arguments: [tenant, first, last])
                var i = 0
                while i < patients.count, let row = try rows.next() {
                    let id: String = row[0]
                    while i < patients.count, patients[i].utf8.lexicographicallyPrecedes(id.utf8) { i += 1 }
                    if i < patients.count, patients[i].utf8.elementsEqual(id.utf8) {
                        out[i] = Residence(state: row[1], postal: row[2], ssn: row[3])
                        i += 1
                    }
                }
            } else {
                let lookup = try db.cachedStatement(sql: "SELECT state, has_postal, has_ssn FROM patient_meta WHERE tenant = ? AND patient_id = ?")
                for (i, p) in patients.enumerated() {
                    if let row = try SQLRow.fetchOne(lookup, arguments: [tenant, p]) { out[i] = Residence(state: row[0], postal: row[1], ssn: row[2]) }
                }
            }
            return out
        }
        let missing = out.indices.filter { out[$0] == nil }
        guard !missing.isEmpty else { return out }
        let ids = missing.map { patients[$0] }
        let filled = try await runWrite { [self] db -> [Residence?] in
            let lookup = try db.cachedStatement(sql: "SELECT state, has_postal, has_ssn FROM patient_meta WHERE tenant = ? AND patient_id = ?")
            return try ids.map { p -> Residence? in
                guard let json = try scopedRows(db, scope, type: .patient, where: "v.id = ? AND v.current = 1", [p]).first?.json
                else { return nil }
                try recordPatientMeta(db, tenant: tenant, id: p, json)
                return try SQLRow.fetchOne(lookup, arguments: [tenant, p]).map { Residence(state: $0[0], postal: $0[1], ssn: $0[2]) }
            }
        }
        for (k, i) in missing.enumerated() { out[i] = filled[k] }
        return out
    }

    /// The partner (a covered entity the pharmacy serves as business associate) each patient belongs to, if any.
    package func patientOwners(tenant: String, patients: [String]) async throws(FHIRError) -> [String: String] {
        try await run { db in
            var out: [String: String] = [:]
            let q = try db.cachedStatement(sql: "SELECT partner FROM patient_owner WHERE tenant = ? AND patient_id = ?")
            for p in patients { if let c = try String.fetchOne(q, arguments: [tenant, p]) { out[p] = c } }
            return out
        }
    }

    /// Controlled-substance prescriptions among the affected (a measure of sensitivity for factor 1): a count, audited
    /// as one record that names nobody.
    /// - parameter ctx: a system context for one pharmacy, whose reason names the incident.
    /// - throws: `forbidden` for any other context.
    package func controlledSubstanceCount(_ ctx: AccessContext, patients: Set<String>) async throws(FHIRError) -> Int {
        let tenant = try Self.systemTenant(ctx, "Assessment counts are read by a system job for one pharmacy")
        let count = try await controlledSubstanceCount(tenant: tenant, scope: ctx.scope, patients: patients)
        try await recordCounted(ctx, "search", .medicationRequest, "controlled-substance prescriptions among \(patients.count) individuals, counted")
        return count
    }

    private func controlledSubstanceCount(tenant: String, scope: AccessScope, patients: Set<String>) async throws(FHIRError) -> Int {
        try await run { [self] db in
            var schedule: [String: Bool] = [:]
            for m in try scopedRows(db, scope, type: .medication, where: "v.current = 1", []) {
                schedule["Medication/\(m.id)"] = m.json?["extension"]?.arrayValue?.contains { $0["url"]?.stringValue == DEASchedule.url } ?? false
            }
            let controlled = schedule.filter(\.value).map(\.key)
            guard !controlled.isEmpty else { return 0 }
            var count = 0
            let rows = try SQLRow.fetchAll(
                db, sql: """
                    SELECT DISTINCT rp.patient_id FROM search_index si JOIN resource_version v ON v.pk = si.pk JOIN resource_patient rp ON rp.pk = v.pk
                    WHERE v.type = 'MedicationRequest' AND v.tenant = ? AND v.current = 1 AND si.param = 'medication' AND si.value IN (\(controlled.map { _ in "?" }.joined(separator: ",")))
                    """, arguments: SQLArguments([tenant] + controlled))
            for r in rows where patients.contains(r[0] as String) { count += 1 }
            return count
        }
    }

    // MARK: Assessment records (append-only, six years)

    package func recordJudgement(_ ctx: AccessContext, incident: String, question: String, text: String, by: String) async throws(FHIRError) {
        let text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.count >= 3 else { throw .invalid("A judgement needs its reasoning in words") }
        let now = AuditLog.timestamp(self.clock.now)
        let retain = AuditLog.timestamp(Calendar(identifier: .gregorian).date(byAdding: .year, value: 6, to: self.clock.now) ?? self.clock.now)
        try await write(ctx) { tx in
            try IncidentRepository.insertJudgement(
                incident: incident, question: question, text: String(text.prefix(4000)), by: String(by.prefix(100)), at: now, retainUntil: retain, tx.db)
            try tx.record("incident-assess", detail: "incident \(incident): \(question) recorded by \(by)")
        }
    }

    /// The latest judgement per question (earlier ones stay in the table).
    package func judgements(incident: String) async throws(FHIRError) -> [String: (text: String, by: String, at: String)] {
        try await run { db in try IncidentRepository.judgements(incident: incident, db) }
    }

    package func markObligationDone(_ ctx: AccessContext, incident: String, obligation: String, on day: String, by: String, note: String) async throws(FHIRError) {
        guard CivilDate(day) != nil else { throw .invalid("--on must be a date YYYY-MM-DD") }
        try await write(ctx) { tx in
            try IncidentRepository.markDone(incident: incident, obligation: obligation, on: day, by: by, note: note, tx.db)
            try tx.record("incident-obligation", detail: "incident \(incident): \(obligation) done on \(day) by \(by)")
        }
    }

    package func obligationsDone(incident: String) async throws(FHIRError) -> [String: (on: String, by: String, note: String)] {
        try await run { db in try IncidentRepository.obligationsDone(incident: incident, db) }
    }

    /// The suspensions and alerts of the incident's actors (what already limited the exposure).
    package func containment(actors: [String]) async throws(FHIRError) -> [String] {
        var ids = Set(actors)
        for a in actors { if let u = try await user(named: a) { ids.insert(u.id) } }
        var out: [String] = []
        for s in try await suspensions(activeOnly: false) where ids.contains(s.actor) {
            out.append("\(s.actor) suspended by the detector at \(AuditLog.timestamp(s.at)) (alert \(s.alertID))"
                + (s.reinstated.map { "; reinstated \(AuditLog.timestamp($0))" } ?? ""))
        }
        for a in try await alerts(limit: 10_000) where ids.contains(a.actor) && a.blocked {
            out.append("alert \(a.id): the request that crossed rule \(a.rule) was refused before its data left")
        }
        return out
    }

    // MARK: Letters

    /// Who a letter goes to: the patient, or a caregiver with full access on the patient's behalf.
    package struct LetterRecipient: Sendable {
        package var patient: String
        package var name: String
        package var lines: [String]
        package var city: String
        package var state: String
        package var postal: String
        /// The patient's name when the letter goes to their caregiver.
        package var caregiverOf: String?
        /// Whose record the name and address come from (the patient, or the caregiver's own).
        package var recipientPatient: String
    }

    /// Name and postal address of patients, decrypted for the letters, and who receives a copy on their behalf (an
    /// active caregiver grant with full access).
    ///
    /// Audited here, like every read of the gate: one `read` record naming every patient whose name and address
    /// were decrypted (the individuals and the caregivers' own records), released elements name and address.
    ///
    /// - parameter ctx: a system context for one pharmacy (`AccessScope.system(reason:tenant:)`, the reason naming
    ///   the incident); staff and patient contexts are refused.
    /// - parameter patients: the individuals to write to.
    /// - throws: `FHIRError` 403 for a context that is not a system job for one pharmacy; 503 when the audit record
    ///   cannot be written (then nothing is returned).
    package func letterRecipients(_ ctx: AccessContext, patients: [String]) async throws(FHIRError) -> [LetterRecipient] {
        _ = try Self.systemTenant(ctx, "Letters are produced by a system job for one pharmacy")
        let scope = ctx.scope
        let recipients = try await decryptLetterRecipients(scope, patients: patients)
        try await commitAudit(
            entry(
                ctx, action: "read", type: .patient, id: nil, patients: recipients.map(\.recipientPatient), outcome: "success", result: .ok,
                released: AuditEntry.Released(elements: ["Patient.name", "Patient.address"])))
        return recipients
    }

    private func decryptLetterRecipients(_ scope: AccessScope, patients: [String]) async throws(FHIRError) -> [LetterRecipient] {
        let tenant = scope.tenant
        return try await run { [self] db in
            var out: [LetterRecipient] = []
            out.reserveCapacity(patients.count)
            // The sealed contacts beside the current, undeleted records the scope admits, each patient's data key read
            // with it (a bulk job uses each key once: no second lookup, no caching); through the scoped read of the
            // records themselves for those without one (written before contacts were kept).
            let (visible, visibleArgs) = Self.scopePredicate(scope, type: .patient, alias: "v", now: self.timestamp())
            func contacts(_ ids: [String]) throws -> [String: LetterContact] {
                var found: [String: LetterContact] = [:]
                found.reserveCapacity(ids.count)
                let marks = ids.map { _ in "?" }.joined(separator: ",")
                for row in try SQLRow.fetchAll(
                    db, sql: """
                        SELECT m.patient_id, m.contact, k.wrapped, k.tenant_key_version FROM resource_version v
                        JOIN patient_meta m ON m.tenant = v.tenant AND m.patient_id = v.id
                        LEFT JOIN data_key k ON k.tenant = m.tenant AND k.owner = m.patient_id AND k.version = m.contact_key_version
                        WHERE (\(visible)) AND v.current = 1 AND v.deleted = 0 AND m.contact IS NOT NULL AND v.id IN (\(marks))
                        """, arguments: SQLArguments(visibleArgs + ids))
                {
                    let id: String = row[0]
                    let context = LetterContact.context(tenant, id)
                    let plain: Data
                    if let wrapped: Data = row[2] {
                        plain = try keys.open(db, tenant: tenant, owner: id, row[1], context: context, wrappedKey: wrapped, tenantKeyVersion: row[3])
                    } else {
                        plain = try keys.open(db, tenant: tenant, owner: id, row[1], context: context)  // says why the key is missing
                    }
                    guard let c = LetterContact(decoding: plain) else { throw VaultError.integrity("\(context) is not a contact record") }
                    found[id] = c
                }
                let rest = ids.filter { found[$0] == nil }
                guard !rest.isEmpty else { return found }
                for r in try scopedRows(
                    db, scope, type: .patient, where: "v.current = 1 AND v.deleted = 0 AND v.id IN (\(rest.map { _ in "?" }.joined(separator: ",")))", rest)
                {
                    if let json = r.json { found[r.id] = LetterContact(json) }
                }
                return found
            }
            // Caregivers with full access on record, for a copy on the patient's behalf.
            var carers: [String: [String]] = [:]
            for row in try SQLRow.fetchAll(
                db, sql: """
                    SELECT g.patient_id, u.patient_id FROM caregiver_grant g JOIN user_account u ON u.id = g.caregiver_user_id
                    WHERE g.tenant = ? AND g.access = 'all' AND g.revoked_at IS NULL AND g.expires > ? AND u.patient_id IS NOT NULL
                    """, arguments: [tenant, self.clock.now.timeIntervalSince1970])
            {
                carers[row[0], default: []].append(row[1])
            }
            for chunk in stride(from: 0, to: patients.count, by: 500).map({ Array(patients[$0..<min($0 + 500, patients.count)]) }) {
                let found = try contacts(chunk)
                for p in chunk {
                    guard let c = found[p] else { continue }
                    out.append(LetterRecipient(patient: p, name: c.name, lines: c.lines, city: c.city, state: c.state, postal: c.postal, caregiverOf: nil, recipientPatient: p))
                    for carer in carers[p] ?? [] {
                        if let cc = try contacts([carer])[carer] {
                            out.append(LetterRecipient(
                                patient: p, name: cc.name, lines: cc.lines, city: cc.city, state: cc.state, postal: cc.postal, caregiverOf: c.name,
                                recipientPatient: carer))
                        }
                    }
                }
            }
            return out
        }
    }
}
