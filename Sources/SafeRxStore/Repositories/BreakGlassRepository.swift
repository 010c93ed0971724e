import Foundation
import SafeRxSQL
import SafeRxModel
import SafeRxStoreCore

/// The `break_glass` table: live and past overrides, each tied to the audit record that granted it. Works in the
/// caller's transaction (``GateTransaction/breakGlass``); who may break the glass is the privacy service's rule.
package struct BreakGlassRepository {
    let db: any SQLConnection

    /// Whether `patient` is a current (not deleted, not erased) patient record of `tenant`: an override names a
    /// real patient or nobody.
    package func patientExists(_ patient: String, tenant: String) throws -> Bool {
        try Bool.fetchOne(
            db, sql: "SELECT EXISTS (SELECT 1 FROM resource_version WHERE tenant = ? AND type = 'Patient' AND id = ? AND current = 1 AND deleted = 0)",
            arguments: [tenant, patient]) ?? false
    }

    /// Stores an override.
    /// - parameter auditSeq: the sequence number of the audit record that granted it (the reason is in its sealed
    ///   detail).
    package func insert(_ grant: BreakGlassGrant, auditSeq: Int64) throws {
        try db.execute(
            sql: """
                INSERT INTO break_glass (id, tenant, user_id, role, patient_id, granted, expires, audit_seq)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [grant.id, grant.tenant, grant.userID, grant.role, grant.patientID, grant.granted, grant.expires, auditSeq])
    }
}

extension GateTransaction {
    /// The break-glass overrides, in this transaction.
    package var breakGlass: BreakGlassRepository { BreakGlassRepository(db: db) }
}
