import Foundation
import SafeRxSQL
import Logging
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStoreCore

extension PharmacyStore {
    /// The patients a user holds a live break-glass override for.
    package func activeBreakGlass(user: String, tenant: String) throws(FHIRError) -> [String] {
        do {
            return try readOnCallingThread { db in
                try String.fetchAll(
                    db, sql: "SELECT DISTINCT patient_id FROM break_glass WHERE user_id = ? AND tenant = ? AND expires > ?",
                    arguments: [user, tenant, self.timestamp()])
            }
        } catch {
            throw .internal()
        }
    }

    /// Every override granted on `day` (YYYY-MM-DD, UTC) in the caller's pharmacy (all of them for a system context of
    /// tenant `*`), with its reason and how many requests were made under it. Audited here as a read of the audit
    /// trail naming the patients the report lists.
    /// - parameter ctx: the privacy officer's context (the right to read AuditEvent across the pharmacy), or a system
    ///   context (`saferx break-glass report`).
    /// - throws: `forbidden` for anyone else.
    package func breakGlassReport(_ ctx: AccessContext, day: String) async throws(FHIRError) -> [BreakGlassGrant] {
        let pharmacyWide: Bool = if case .tenant = ctx.scope.rows { true } else { false }
        try await requireRight(ctx, .auditEvent, "break-glass-report", nil, ctx.scope.rights(for: .auditEvent).read && pharmacyWide)
        let grants: [BreakGlassGrant]
        do {
            grants = try breakGlassGrants(tenant: ctx.scope.tenant, day: day)
        } catch {
            logger.error("break-glass report failed", metadata: ["error": "\(type(of: error))"])
            throw .internal()
        }
        try await commitAudit(
            entry(
                ctx, action: "read", type: .auditEvent, id: nil, patients: grants.map(\.patientID), outcome: "success", result: .ok,
                detail: "break-glass report for \(day): \(grants.count) overrides"))
        return grants
    }

    private func breakGlassGrants(tenant: String, day: String) throws -> [BreakGlassGrant] {
        let cipher = auditLog.cipher
        return try readOnCallingThread { db in
            let rows = try SQLRow.fetchAll(db, sql: """
                SELECT b.id, b.tenant, b.user_id, b.role, b.patient_id, b.granted, b.expires, a.body,
                       (SELECT COUNT(*) FROM audit_log x JOIN audit_patient xp ON xp.seq = x.seq
                        WHERE xp.patient_id = b.patient_id AND x.time >= b.granted AND x.time < b.expires AND x.seq > b.audit_seq
                          AND json_extract(x.body, '$.entry.actor.id') = b.user_id
                          AND json_extract(x.body, '$.entry.purpose') = 'ETREAT')
                FROM break_glass b JOIN audit_log a ON a.seq = b.audit_seq
                WHERE (b.tenant = ? OR ? = '*') AND b.granted >= ? AND b.granted < ?
                ORDER BY b.granted
                """, arguments: [tenant, tenant, day, day + "~"])
            return rows.map { row in
                let record = AuditRecord.decode(body: row[7], cipher: cipher)
                let detail = record?.entry.detail ?? ""
                let reason = detail.range(of: "reason: ").map { String(detail[$0.upperBound...]) } ?? "(sealed)"
                return BreakGlassGrant(
                    id: row[0], tenant: row[1], userID: row[2], role: row[3], patientID: row[4], granted: row[5], expires: row[6],
                    reason: reason, accesses: row[8])
            }
        }
    }
}
