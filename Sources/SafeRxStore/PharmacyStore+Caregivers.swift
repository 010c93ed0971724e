import Foundation
import GRDB
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStoreCore

/// Caregiver grants: made and revoked by the patient (a caregiver may also give one up), checked on every request a
/// caregiver's token makes (``tokenIsLive(jti:subject:isClient:issuedAt:caregiverGrant:)``), audited.
extension PharmacyStore {
    /// The longest a grant may last before the patient renews it.
    package static let maxCaregiverGrant: TimeInterval = 366 * 86400

    static func decodeGrant(_ row: Row) -> CaregiverGrant? {
        guard let access = CaregiverGrant.Access(rawValue: row["access"]) else { return nil }
        let revoked: Double? = row["revoked_at"]
        return CaregiverGrant(
            id: row["id"], tenant: row["tenant"], patientID: row["patient_id"], caregiverUserID: row["caregiver_user_id"], access: access,
            expires: Date(timeIntervalSince1970: row["expires"]), created: Date(timeIntervalSince1970: row["created"]),
            revoked: revoked.map { Date(timeIntervalSince1970: $0) })
    }

    static func insert(_ db: Database, _ g: CaregiverGrant, grantedBy: String) throws {
        try db.execute(
            sql: """
                INSERT INTO caregiver_grant (id, tenant, patient_id, caregiver_user_id, access, expires, created, granted_by)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [g.id, g.tenant, g.patientID, g.caregiverUserID, g.access.rawValue, g.expires.timeIntervalSince1970,
                        g.created.timeIntervalSince1970, grantedBy])
    }

    /// A patient grants `caregiverUsername` access until `expires`.
    package func grantCaregiver(
        _ ctx: AccessContext, caregiverUsername: String, access: CaregiverGrant.Access, expires: Date
    ) async throws(FHIRError) -> CaregiverGrant {
        let p = ctx.scope.principal
        guard ctx.scope.role == .patient, p.caregiverGrant == nil, case .compartment(let patient) = ctx.scope.rows else {
            throw await deny(ctx, interaction: "caregiver-grant", type: .patient, id: nil, error: .forbidden("Only a patient may grant caregiver access to their own records"))
        }
        guard expires > self.clock.now, expires <= self.clock.now.addingTimeInterval(Self.maxCaregiverGrant) else {
            throw .invalid("expires must be in the future and at most 366 days away", at: "expires")
        }
        guard let caregiver = try await user(named: caregiverUsername), caregiver.tenant == ctx.scope.tenant, caregiver.role == Role.patient.rawValue,
            !caregiver.disabled
        else {
            throw .invalid("There is no patient account with that username at this pharmacy; the caregiver signs up first", at: "caregiver")
        }
        guard caregiver.id != p.subject else { throw .invalid("You cannot name yourself as your caregiver", at: "caregiver") }
        let grant = CaregiverGrant(
            id: Self.newID(), tenant: ctx.scope.tenant, patientID: patient, caregiverUserID: caregiver.id, access: access, expires: expires,
            created: self.clock.now, revoked: nil)
        let e = entry(
            ctx, action: "caregiver-grant", type: .patient, id: patient, patients: [patient], outcome: "success", result: .created,
            detail: "grant \(grant.id): \(access.rawValue) to user \(caregiver.id) until \(AuditLog.timestamp(expires))")
        try await runWrite { [self] db in
            try Self.insert(db, grant, grantedBy: p.subject)
            try auditLog.append([e], in: db)
        }
        return grant
    }

    /// Grants the patient gave and grants the caller holds as a caregiver.
    package func caregiverGrants(_ ctx: AccessContext) async throws(FHIRError) -> (given: [CaregiverGrant], received: [CaregiverGrant]) {
        let p = ctx.scope.principal
        guard ctx.scope.role == .patient, p.caregiverGrant == nil else {
            throw await deny(ctx, interaction: "caregiver-list", type: .patient, id: nil, error: .forbidden("Only patient accounts have caregiver grants"))
        }
        let patient = p.patientID ?? ""
        let tenant = ctx.scope.tenant
        return try await run { db in
            let given = try Row.fetchAll(
                db, sql: "SELECT * FROM caregiver_grant WHERE tenant = ? AND patient_id = ? ORDER BY created", arguments: [tenant, patient]
            ).compactMap(Self.decodeGrant)
            let received = try Row.fetchAll(
                db, sql: "SELECT * FROM caregiver_grant WHERE caregiver_user_id = ? ORDER BY created", arguments: [p.subject]
            ).compactMap(Self.decodeGrant)
            return (given, received)
        }
    }

    /// Revokes a grant at once: by the patient who gave it or the caregiver who holds it. Unknown and foreign grants
    /// are the same 404.
    package func revokeCaregiver(_ ctx: AccessContext, grant id: String) async throws(FHIRError) -> CaregiverGrant {
        let p = ctx.scope.principal
        let tenant = ctx.scope.tenant
        let found = try await run { db in
            try Row.fetchOne(db, sql: "SELECT * FROM caregiver_grant WHERE id = ? AND tenant = ?", arguments: [id, tenant]).flatMap(Self.decodeGrant)
        }
        guard ctx.scope.role == .patient, p.caregiverGrant == nil, let grant = found,
            grant.patientID == p.patientID || grant.caregiverUserID == p.subject
        else {
            throw await deny(
                ctx, interaction: "caregiver-revoke", type: .patient, id: nil,
                error: FHIRError(kind: .notFound, code: "not-found", diagnostics: "No caregiver grant \(String(id.prefix(64)))"))
        }
        let e = entry(
            ctx, action: "caregiver-revoke", type: .patient, id: grant.patientID, patients: [grant.patientID], outcome: "success", result: .ok,
            detail: "grant \(grant.id) revoked by \(grant.patientID == p.patientID ? "the patient" : "the caregiver")")
        let now = self.clock.now
        try await runWrite { [self] db in
            try db.execute(sql: "UPDATE caregiver_grant SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", arguments: [now.timeIntervalSince1970, id])
            try auditLog.append([e], in: db)
        }
        var out = grant
        out.revoked = grant.revoked ?? now
        return out
    }

    /// Records a grant without a request (the demo seed), audited as an operator action.
    package func seedCaregiverGrant(tenant: String, patient: String, caregiverUserID: String, access: CaregiverGrant.Access, expires: Date) async throws(FHIRError) {
        let id = Self.newID()
        let grant = CaregiverGrant(
            id: id, tenant: tenant, patientID: patient, caregiverUserID: caregiverUserID, access: access, expires: expires, created: self.clock.now, revoked: nil)
        try await runWrite { db in try Self.insert(db, grant, grantedBy: "seed") }
        try await commitAudit(
            AuditEntry(
                actor: .init(id: "system", role: "system", tenant: tenant), action: "caregiver-grant", resourceType: "Patient", resourceID: patient,
                patients: [patient], outcome: "success", result: .done, purpose: "SYSADMIN", sourceIP: "local", userAgent: "saferx demo seed",
                requestID: id, detail: "grant \(id): \(access.rawValue) to user \(caregiverUserID) (demo seed)"))
    }

    /// The live grant a caregiver holds for a patient, if any.
    package func liveCaregiverGrant(caregiverUserID: String, patient: String) async throws(FHIRError) -> CaregiverGrant? {
        try await run { db in
            try Row.fetchOne(
                db,
                sql: """
                    SELECT * FROM caregiver_grant WHERE caregiver_user_id = ? AND patient_id = ? AND revoked_at IS NULL AND expires > ?
                    ORDER BY created DESC LIMIT 1
                    """,
                arguments: [caregiverUserID, patient, self.clock.now.timeIntervalSince1970]
            ).flatMap(Self.decodeGrant)
        }
    }

    /// Live caregivers of a patient with access to messages (for "you have a new message" notifications).
    func messageCaregivers(_ db: Database, tenant: String, patient: String) throws -> [String] {
        try String.fetchAll(
            db,
            sql: """
                SELECT u.patient_id FROM caregiver_grant g JOIN user_account u ON u.id = g.caregiver_user_id
                WHERE g.tenant = ? AND g.patient_id = ? AND g.revoked_at IS NULL AND g.expires > ? AND g.access IN ('all', 'messages')
                  AND u.patient_id IS NOT NULL AND u.disabled = 0
                """,
            arguments: [tenant, patient, self.clock.now.timeIntervalSince1970])
    }
}
