import Foundation
import SafeRxSQL
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStoreCore

extension PharmacyStore {
    /// Actions through which data leaves the store.
    static let disclosingActions = ["read", "vread", "history", "search"]

    /// The accounting of disclosures (HIPAA §164.528) of one patient: every successful access outside treatment,
    /// payment and operations (and the patient's own) in the last `years` years; with `everyAccess`, every
    /// successful access whatever its purpose ("who looked at my data"). Scoped like AuditEvent: a patient only
    /// about themselves, a privacy officer within their pharmacy; anyone else 403, another patient 404.
    package func accessLog(_ ctx: AccessContext, patient: String, everyAccess: Bool, years: Int = 6) async throws(FHIRError) -> [AccessLogEntry] {
        let interaction = everyAccess ? "access-log" : "disclosures"
        try await requireRight(ctx, .auditEvent, interaction, patient, ctx.scope.rights(for: .auditEvent).read)
        if case .compartment(let own) = ctx.scope.rows, own != patient { throw await missing(ctx, interaction, .patient, patient) }
        let entries = try await accessLogEntries(
            patient: patient, tenant: ctx.scope.tenant, everyAccess: everyAccess, since: Instant.yearsAgo(years), excludingRequest: ctx.requestID)
        try await commitAudit(
            entry(ctx, action: "read", type: .auditEvent, id: nil, patients: [patient], outcome: "success", result: .ok,
                  detail: "\(interaction): \(entries.count) entries"))
        return entries
    }

    /// The entries themselves, unaudited: only `accessLog`, which checks the caller's right and records the read.
    func accessLogEntries(
        patient: String, tenant: String, everyAccess: Bool, since: String, excludingRequest: String? = nil
    ) async throws(FHIRError) -> [AccessLogEntry] {
        let cipher = auditLog.cipher
        // Disclosures are the accesses through which data left the store; "who looked at my data" is everything done
        // with the patient's records: reads, writes, refills, fill steps, files, notifications.
        let actions = Self.disclosingActions + ["break-glass"]
        let rows: [(Int64, String, String)]
        do {
            rows = try readOnCallingThread { db in
                try SQLRow.fetchAll(db, sql: """
                    SELECT a.seq, a.body, a.hash FROM audit_patient ap JOIN audit_log a ON a.seq = ap.seq
                    WHERE ap.patient_id = ? AND (a.tenant = ? OR ? = '*') AND a.time >= ? ORDER BY a.seq
                    """, arguments: [patient, tenant, tenant, since]).map { ($0[0], $0[1], $0[2]) }
            }
        } catch {
            throw .internal()
        }
        let tenantNames = (try? readOnCallingThread { db in
            try Dictionary(uniqueKeysWithValues: SQLRow.fetchAll(db, sql: "SELECT id, name FROM tenant").map { ($0[0] as String, $0[1] as String) })
        }) ?? [:]
        let clientNames = (try? readOnCallingThread { db in
            try Dictionary(uniqueKeysWithValues: SQLRow.fetchAll(db, sql: "SELECT client_id, name FROM api_client").map { ($0[0] as String, $0[1] as String) })
        }) ?? [:]
        let patientUsers = (try? readOnCallingThread { db in
            try Dictionary(uniqueKeysWithValues: SQLRow.fetchAll(
                db, sql: "SELECT id, patient_id FROM user_account WHERE patient_id IS NOT NULL").map { ($0[0] as String, $0[1] as String) })
        }) ?? [:]
        var out: [AccessLogEntry] = []
        for (_, body, hash) in rows {
            guard let r = AuditRecord.decode(body: body, hash: hash, cipher: cipher) else { continue }
            let e = r.entry
            guard e.outcome == "success", everyAccess || actions.contains(e.action), e.requestID != excludingRequest else { continue }
            if !everyAccess {
                guard let purpose = PurposeOfUse(rawValue: e.purpose), !purpose.isTPO else { continue }
            }
            let pharmacy = tenantNames[e.actor.tenant] ?? e.actor.tenant
            let recipient: String
            switch e.actor.role {
            case Role.partner.rawValue, Role.businessLine.rawValue: recipient = clientNames[e.actor.id] ?? e.actor.id
            case Role.patient.rawValue: recipient = patientUsers[e.actor.id] == patient ? "you" : "another patient"
            case "caregiver": recipient = "a caregiver you authorized"
            case "system": recipient = "\(pharmacy) (automated)"
            default: recipient = "\(e.actor.role) at \(pharmacy)"
            }
            let resource = e.resourceType.map { t in e.resourceID.map { "\(t)/\($0)" } ?? t } ?? "-"
            out.append(AccessLogEntry(
                seq: r.seq, time: r.time, recipient: recipient, role: e.actor.role, purpose: e.purpose, action: e.action,
                resource: resource, detail: Self.disclosedDetail(e.detail, released: e.released, resourceType: e.resourceType, patient: patient)))
        }
        return out
    }

    /// The part of an audit detail that says what was disclosed (never the sealed reason texts of break-glass).
    /// Search result counts are left out: they would tell one patient how many others were disclosed.
    /// Of elements released per patient, only this patient's are kept (others' would reveal their authorizations).
    static func disclosedDetail(_ detail: String?, released: AuditEntry.Released?, resourceType: String?, patient: String) -> String {
        let d = detail ?? ""
        if d.hasPrefix("break-glass") { return "break-glass override" }
        // Staff are shown to patients by role only: no user ids, and no counts of other patients' threads.
        if d.hasPrefix("thread assigned to") { return "message thread assigned to a pharmacy staff member" }
        if d.hasPrefix("message threads") { return "shown in a message inbox (no message content)" }
        let released = released ?? LegacyReleasedDetail.parse(d, resourceType: resourceType)
        var parts = d.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.hasPrefix("results:") && !$0.hasPrefix("elements") && !$0.hasPrefix("listed:") }
        if let released {
            // This patient's elements only, named within the resource read (`name`, not `Patient.name`).
            let own = released.elements(for: patient).map { e in
                resourceType.map { e.hasPrefix($0 + ".") ? String(e.dropFirst($0.count + 1)) : e } ?? e
            }
            parts.append("elements: " + own.sorted().joined(separator: ","))
        }
        return parts.joined(separator: "; ")
    }
}
