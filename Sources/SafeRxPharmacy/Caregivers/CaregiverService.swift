import Foundation
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStore
import SafeRxStoreCore

/// A patient's grants of access to another account (a family member, a carer): made and revoked by the patient (a
/// caregiver may give one up), checked live on every request a caregiver's token makes.
public struct CaregiverService: Sendable {
    let store: PharmacyStore

    /// The grants the caller gave (as a patient) and received (as a caregiver).
    public func grants(_ ctx: AccessContext) async throws(FHIRError) -> (given: [CaregiverGrant], received: [CaregiverGrant]) {
        try await store.caregiverGrants(ctx)
    }

    /// The longest a grant may last before the patient renews it.
    public static let maxGrant = PharmacyStore.maxCaregiverGrant

    /// Grants `access` to the account named `caregiverUsername` until `expires` (at most ``maxGrant`` away); the
    /// grant and its audit record commit together.
    /// - throws: `FHIRError` of kind `forbidden` unless the caller is a patient acting for themselves (recorded as a
    ///   refusal), `invalid` for an expiry out of bounds or a caregiver who is not a patient account of this pharmacy.
    public func grant(_ ctx: AccessContext, caregiverUsername: String, access: CaregiverGrant.Access, expires: Date) async throws(FHIRError) -> CaregiverGrant {
        let p = ctx.scope.principal
        guard ctx.scope.role == .patient, p.caregiverGrant == nil, case .compartment(let patient) = ctx.scope.rows else {
            throw await store.deny(
                ctx, interaction: "caregiver-grant", type: .patient, id: nil, error: .forbidden("Only a patient may grant caregiver access to their own records"))
        }
        let now = store.clock.now
        guard expires > now, expires <= now.addingTimeInterval(Self.maxGrant) else {
            throw .invalid("expires must be in the future and at most 366 days away", at: "expires")
        }
        guard let caregiver = try await store.user(named: caregiverUsername), caregiver.tenant == ctx.scope.tenant,
            caregiver.role == Role.patient.rawValue, !caregiver.disabled
        else {
            throw .invalid("There is no patient account with that username at this pharmacy; the caregiver signs up first", at: "caregiver")
        }
        guard caregiver.id != p.subject else { throw .invalid("You cannot name yourself as your caregiver", at: "caregiver") }
        let grant = CaregiverGrant(
            id: PharmacyStore.newID(), tenant: ctx.scope.tenant, patientID: patient, caregiverUserID: caregiver.id, access: access, expires: expires,
            created: now, revoked: nil)
        try await store.write(ctx) { tx in
            try tx.caregivers.insert(grant, grantedBy: p.subject)
            try tx.record(
                "caregiver-grant", type: .patient, id: patient, patients: [patient],
                detail: "grant \(grant.id): \(access.rawValue) to user \(caregiver.id) until \(AuditLog.timestamp(expires))", result: .created)
        }
        return grant
    }

    /// Ends a grant at once (tokens issued under it stop working on their next request): by the patient who gave it
    /// or the caregiver who holds it. Unknown grants and other people's are the same 404 (recorded as a refusal).
    public func revoke(_ ctx: AccessContext, grant id: String) async throws(FHIRError) -> CaregiverGrant {
        let p = ctx.scope.principal
        let now = store.clock.now
        let notFound = FHIRError(kind: .notFound, code: "not-found", diagnostics: "No caregiver grant \(String(id.prefix(64)))")
        let outcome = try await store.write(ctx) { tx -> CaregiverGrant? in
            guard ctx.scope.role == .patient, p.caregiverGrant == nil, let grant = try tx.caregivers.find(id: id, tenant: ctx.scope.tenant),
                grant.patientID == p.patientID || grant.caregiverUserID == p.subject
            else { return nil }
            try tx.caregivers.revoke(id: id, at: now)
            try tx.record(
                "caregiver-revoke", type: .patient, id: grant.patientID, patients: [grant.patientID],
                detail: "grant \(grant.id) revoked by \(grant.patientID == p.patientID ? "the patient" : "the caregiver")")
            var out = grant
            out.revoked = grant.revoked ?? now
            return out
        }
        guard let revoked = outcome else {
            throw await store.deny(ctx, interaction: "caregiver-revoke", type: .patient, id: nil, error: notFound)
        }
        return revoked
    }
}
