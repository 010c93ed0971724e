import Foundation
import SafeRxSQL
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStoreCore
import SafeRxVault

extension PharmacyStore {
    /// The patient whose record matches every part of the claim (a prescription with that Rx number whose patient
    /// has that family name, first given name and birth date), or `nil`. Runs under an audited system scope; the
    /// audit record names the patient when one matched, so the patient's access log shows the check.
    package func matchIdentity(tenant: String, _ claim: IdentityClaim, request: AccessContext) async throws(FHIRError) -> String? {
        let rxToken = blindIndex.stored(IndexTerm("identifier", "\(IdentityClaim.rxNumberSystem)|\(claim.rxNumber.trimmingCharacters(in: .whitespaces).uppercased())", sensitive: true))
        let scope = AccessScope.system(reason: "sign-up identity check", tenant: tenant)
        let match = try await run { [self] db -> String? in
            let rx = try scopedRows(
                db, scope, type: .medicationRequest,
                where: "v.current = 1 AND v.deleted = 0 AND v.pk IN (SELECT pk FROM search_index WHERE param = 'identifier' AND value = ?)", [rxToken]
            ).first
            guard let s = rx?.json?["subject"]?["reference"]?.stringValue, let ref = Reference(s), ref.type == .patient,
                let patient = try scopedRows(db, scope, type: .patient, where: "v.id = ? AND v.current = 1 AND v.deleted = 0", [ref.id]).first?.json
            else { return nil }
            guard patient["birthDate"]?.stringValue == claim.birthDate else { return nil }
            let family = ResourceIndexer.words(of: claim.family), given = ResourceIndexer.words(of: claim.given).first
            let matches = (patient["name"]?.arrayValue ?? []).contains { name in
                ResourceIndexer.words(of: name["family"]?.stringValue ?? "") == family
                    && (name["given"]?.arrayValue ?? []).flatMap { ResourceIndexer.words(of: $0.stringValue ?? "") }.first == given
            }
            return matches && given != nil && !family.isEmpty ? ref.id : nil
        }
        try await commitAudit(
            AuditEntry(
                actor: .init(id: "anonymous", role: "anonymous", tenant: tenant), action: "signup-check", patients: match.map { [$0] } ?? [],
                outcome: match == nil ? "failure" : "success", result: .accepted, purpose: PurposeOfUse.patientRequest.rawValue,
                sourceIP: request.sourceIP, userAgent: request.userAgent, requestID: request.requestID,
                detail: match == nil ? "no record matched" : "identity matched"))
        return match
    }
}
