import Foundation
import SafeRxSQL
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStoreCore

/// Caregiver grants as the gate reads them: the lists a patient sees, the live grant a caregiver token is checked
/// against on every request (``tokenIsLive(jti:subject:isClient:issuedAt:caregiverGrant:)``), the caregivers a new
/// message notifies. Making and revoking grants is the caregiver service's (`CaregiverRepository` in a transaction).
extension PharmacyStore {
    /// The longest a grant may last before the patient renews it.
    package static let maxCaregiverGrant: TimeInterval = 366 * 86400

    /// Grants the patient gave and grants the caller holds as a caregiver.
    package func caregiverGrants(_ ctx: AccessContext) async throws(FHIRError) -> (given: [CaregiverGrant], received: [CaregiverGrant]) {
        let p = ctx.scope.principal
        guard ctx.scope.role == .patient, p.caregiverGrant == nil else {
            throw await deny(ctx, interaction: "caregiver-list", type: .patient, id: nil, error: .forbidden("Only patient accounts have caregiver grants"))
        }
        let patient = p.patientID ?? ""
        let tenant = ctx.scope.tenant
        return try await run { db in
            let given = try SQLRow.fetchAll(
                db, sql: "SELECT * FROM caregiver_grant WHERE tenant = ? AND patient_id = ? ORDER BY created", arguments: [tenant, patient]
            ).compactMap(CaregiverRepository.decode)
            let received = try SQLRow.fetchAll(
                db, sql: "SELECT * FROM caregiver_grant WHERE caregiver_user_id = ? ORDER BY created", arguments: [p.subject]
            ).compactMap(CaregiverRepository.decode)
            return (given, received)
        }
    }

    /// Records a grant without a request (the demo seed), audited as an operator action.
    package func seedCaregiverGrant(tenant: String, patient: String, caregiverUserID: String, access: CaregiverGrant.Access, expires: Date) async throws(FHIRError) {
        let id = Self.newID()
        let grant = CaregiverGrant(
            id: id, tenant: tenant, patientID: patient, caregiverUserID: caregiverUserID, access: access, expires: expires, created: self.clock.now, revoked: nil)
        try await runWrite { db in try CaregiverRepository(db: db).insert(grant, grantedBy: "seed") }
        try await commitAudit(
            AuditEntry(
                actor: .init(id: "system", role: "system", tenant: tenant), action: "caregiver-grant", resourceType: "Patient", resourceID: patient,
                patients: [patient], outcome: "success", result: .done, purpose: "SYSADMIN", sourceIP: "local", userAgent: "saferx demo seed",
                requestID: id, detail: "grant \(id): \(access.rawValue) to user \(caregiverUserID) (demo seed)"))
    }

    /// The live grant a caregiver holds for a patient, if any.
    package func liveCaregiverGrant(caregiverUserID: String, patient: String) async throws(FHIRError) -> CaregiverGrant? {
        try await run { db in
            try SQLRow.fetchOne(
                db,
                sql: """
                    SELECT * FROM caregiver_grant WHERE caregiver_user_id = ? AND patient_id = ? AND revoked_at IS NULL AND expires > ?
                    ORDER BY created DESC LIMIT 1
                    """,
                arguments: [caregiverUserID, patient, self.clock.now.timeIntervalSince1970]
            ).flatMap(CaregiverRepository.decode)
        }
    }

    /// Live caregivers of a patient with access to messages (for "you have a new message" notifications).
    func messageCaregivers(_ db: any SQLConnection, tenant: String, patient: String) throws -> [String] {
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
