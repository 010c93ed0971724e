import Foundation
import GRDB
import Logging
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStoreCore

extension PharmacyStore {
    /// How long a break-glass override lasts.
    package static let breakGlassDuration: TimeInterval = 60 * 60

    /// Grants the caller (a pharmacist or support user) read access under ETREAT to one patient for 60 minutes,
    /// with a typed reason. Audited as `break-glass`; listed by ``breakGlassReport(tenant:day:)``.
    package func breakGlass(_ ctx: AccessContext, patient: String, reason: String) async throws(FHIRError) -> BreakGlassGrant {
        let role = ctx.scope.role
        guard role == .pharmacist || role == .support else {
            throw await deny(ctx, interaction: "break-glass", type: .patient, id: patient,
                error: .forbidden("Only pharmacists and support staff may break the glass"))
        }
        let trimmed = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.count >= 10, trimmed.count <= 500 else {
            throw await deny(ctx, interaction: "break-glass", type: .patient, id: patient,
                error: .invalid("A break-glass override needs a typed reason of 10 to 500 characters", at: "Parameters.parameter.reason"),
                detail: "no reason")
        }
        let tenant = ctx.scope.tenant
        let exists = (try? readOnCallingThread { db in
            try Bool.fetchOne(
                db, sql: "SELECT EXISTS (SELECT 1 FROM resource_version WHERE tenant = ? AND type = 'Patient' AND id = ? AND current = 1 AND deleted = 0)",
                arguments: [tenant, patient])
        }) ?? false
        guard exists == true else { throw await missing(ctx, "break-glass", .patient, patient) }
        let now = self.clock.now
        let grant = BreakGlassGrant(
            id: UUID().uuidString.lowercased(), tenant: tenant, userID: ctx.scope.principal.subject, role: role.rawValue, patientID: patient,
            granted: AuditLog.timestamp(now), expires: AuditLog.timestamp(now.addingTimeInterval(Self.breakGlassDuration)), reason: trimmed,
            accesses: 0)
        let e = entry(
            ctx, action: "break-glass", type: .patient, id: patient, patients: [patient], outcome: "success", result: .created,
            detail: "break-glass until \(grant.expires); reason: \(trimmed)")
        try await runWrite { [self] db in
            let seq = try auditLog.append([e], in: db).first ?? 0
            try db.execute(
                sql: """
                    INSERT INTO break_glass (id, tenant, user_id, role, patient_id, granted, expires, audit_seq)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [grant.id, tenant, grant.userID, grant.role, patient, grant.granted, grant.expires, seq])
        }
        return grant
    }

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
            let rows = try Row.fetchAll(db, sql: """
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
