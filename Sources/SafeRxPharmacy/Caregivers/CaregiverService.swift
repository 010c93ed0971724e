import Foundation
import SafeRxModel
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

    /// Grants `access` to the account named `caregiverUsername` until `expires`.
    /// - throws: `FHIRError` of kind `forbidden` unless the caller is a patient acting for themselves.
    public func grant(_ ctx: AccessContext, caregiverUsername: String, access: CaregiverGrant.Access, expires: Date) async throws(FHIRError) -> CaregiverGrant {
        try await store.grantCaregiver(ctx, caregiverUsername: caregiverUsername, access: access, expires: expires)
    }

    /// Ends a grant at once (tokens issued under it stop working on their next request).
    public func revoke(_ ctx: AccessContext, grant id: String) async throws(FHIRError) -> CaregiverGrant {
        try await store.revokeCaregiver(ctx, grant: id)
    }
}
