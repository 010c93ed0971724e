import SafeRxSQL
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStoreCore

extension PharmacyStore {
    /// One page of the work queue for a fill state, oldest first.
    ///
    /// A work list, like the message inbox: it shows each fill's patient (name, birth date), drug and state, and is
    /// audited as action `list` naming exactly the patients on the page. Opening the queue is therefore accounted for
    /// without counting as a read of every queued patient's dispense (ship-to address and all): the detection rules
    /// count `list` toward no bulk-read rule, and opening a fill is the read that counts.
    /// - parameter ctx: the caller; needs read access to MedicationDispense (rows are scoped as for any search).
    /// - parameter state: the queue (preparation, in-progress, verified, on-hold, ...).
    /// - parameter count: fills per page (1-100).
    /// - parameter offset: fills to skip.
    /// - throws: `FHIRError` 400 for a bad page, 403 when the role may not see fills.
    package func fillQueue(_ ctx: AccessContext, state: FillState, count: Int = 50, offset: Int = 0) async throws(FHIRError) -> QueuePage {
        guard (1...100).contains(count) else { throw .invalid("_count must be 1-100 for the work queue", at: "_count") }
        guard (0...1_000_000).contains(offset) else { throw .invalid("_offset must be 0 or more", at: "_offset") }
        try await requireRight(ctx, .medicationDispense, "list", nil, ctx.scope.rights(for: .medicationDispense).read)
        let scope = ctx.scope
        let (filterSQL, rawArgs) = compile([.terms(parameter: "fill-state", values: [state.rawValue], sensitive: false)])
        let args = rawArgs.map(\.sqlValue)
        let (page, total) = try await run { [self] db -> ([QueueEntry], Int) in
            let whereSQL = "v.current = 1 AND v.deleted = 0 AND \(filterSQL)"
            let total = try scopedCount(db, scope, type: .medicationDispense, where: whereSQL, args)
            let fills = try scopedRows(
                db, scope, type: .medicationDispense, where: whereSQL, args, suffix: "ORDER BY v.pk LIMIT ? OFFSET ?", suffixArgs: [count, offset])
            let ids = Array(Set(fills.compactMap(\.patients.first)))
            var people: [String: JSON] = [:]
            if !ids.isEmpty, scope.rights(for: .patient).read {
                let marks = ids.map { _ in "?" }.joined(separator: ",")
                for p in try scopedRows(db, scope, type: .patient, where: "v.current = 1 AND v.deleted = 0 AND v.id IN (\(marks))", ids) {
                    people[p.id] = p.json
                }
            }
            let entries = fills.map { f -> QueueEntry in
                let json = f.json ?? .null
                let patient = f.patients.first ?? ""
                let person = people[patient]
                let name = person?["name"]?.arrayValue?.first
                let given = (name?["given"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: " ")
                let medication = json["medicationReference"]?["reference"]?.stringValue
                    ?? json["medicationCodeableConcept"]?["text"]?.stringValue ?? ""
                return QueueEntry(
                    dispenseID: f.id, patientID: patient,
                    patientName: [given, name?["family"]?.stringValue ?? ""].filter { !$0.isEmpty }.joined(separator: " "),
                    birthDate: person?["birthDate"]?.stringValue ?? "", medication: medication, state: FillState.of(json),
                    lastUpdated: f.lastUpdated)
            }
            return (entries, total)
        }
        try await commitAudit(
            entry(ctx, action: "list", type: .medicationDispense, id: nil, patients: Set(page.map(\.patientID)), outcome: "success", result: .ok,
                  detail: "work queue \(state.rawValue) \(page.isEmpty ? 0 : offset + 1)-\(offset + page.count) of \(total) (patient name and birth date, drug, state; no address)",
                  released: Self.queueReleased))
        return QueuePage(entries: page, total: total, offset: offset)
    }

    /// What one row of the fill queue shows of each patient on it.
    static let queueReleased = AuditEntry.Released(elements: ["Patient.name", "Patient.birthDate", "MedicationDispense.medicationReference"])

    /// How many fills are in each state: numbers only, audited as action `count` naming no patient.
    package func fillCounts(_ ctx: AccessContext, states: [FillState]) async throws(FHIRError) -> [FillState: Int] {
        try await requireRight(ctx, .medicationDispense, "count", nil, ctx.scope.rights(for: .medicationDispense).read)
        let scope = ctx.scope
        var out: [FillState: Int] = [:]
        for state in states {
            let (filterSQL, rawArgs) = compile([.terms(parameter: "fill-state", values: [state.rawValue], sensitive: false)])
            let args = rawArgs.map(\.sqlValue)
            out[state] = try await run { [self] db in
                try scopedCount(db, scope, type: .medicationDispense, where: "v.current = 1 AND v.deleted = 0 AND \(filterSQL)", args)
            }
        }
        try await commitAudit(
            entry(ctx, action: "count", type: .medicationDispense, id: nil, patients: [String](), outcome: "success", result: .ok,
                  detail: "work queue counts (" + states.map(\.rawValue).joined(separator: ", ") + ")"))
        return out
    }
}
