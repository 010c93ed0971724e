import Foundation
import SafeRxSQL
import SafeRxModel
import SafeRxPolicy
import SafeRxStoreCore

/// The `caregiver_grant` table: a patient's grants of access to another account. Works in the caller's transaction
/// (``GateTransaction/caregivers``); the rules of who may grant what live in the caregiver service.
package struct CaregiverRepository {
    let db: any SQLConnection

    /// Stores a new grant.
    /// - parameter grantedBy: the subject who made it (the patient, or `seed`).
    package func insert(_ g: CaregiverGrant, grantedBy: String) throws {
        try db.execute(
            sql: """
                INSERT INTO caregiver_grant (id, tenant, patient_id, caregiver_user_id, access, expires, created, granted_by)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [g.id, g.tenant, g.patientID, g.caregiverUserID, g.access.rawValue, g.expires.timeIntervalSince1970,
                        g.created.timeIntervalSince1970, grantedBy])
    }

    /// A grant of `tenant` by id, live or not.
    package func find(id: String, tenant: String) throws -> CaregiverGrant? {
        try SQLRow.fetchOne(db, sql: "SELECT * FROM caregiver_grant WHERE id = ? AND tenant = ?", arguments: [id, tenant]).flatMap(Self.decode)
    }

    /// Ends a grant at `time` (a grant already ended keeps its first end).
    package func revoke(id: String, at time: Date) throws {
        try db.execute(sql: "UPDATE caregiver_grant SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", arguments: [time.timeIntervalSince1970, id])
    }

    static func decode(_ row: SQLRow) -> CaregiverGrant? {
        guard let access = CaregiverGrant.Access(rawValue: row["access"]) else { return nil }
        let revoked: Double? = row["revoked_at"]
        return CaregiverGrant(
            id: row["id"], tenant: row["tenant"], patientID: row["patient_id"], caregiverUserID: row["caregiver_user_id"], access: access,
            expires: Date(timeIntervalSince1970: row["expires"]), created: Date(timeIntervalSince1970: row["created"]),
            revoked: revoked.map { Date(timeIntervalSince1970: $0) })
    }
}

extension GateTransaction {
    /// The caregiver grants, in this transaction.
    package var caregivers: CaregiverRepository { CaregiverRepository(db: db) }
}
