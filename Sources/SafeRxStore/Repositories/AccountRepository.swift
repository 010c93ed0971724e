import Foundation
import SafeRxSQL
import SafeRxAudit
import SafeRxModel
import SafeRxStoreCore

/// The account tables: `user_account` (usernames sealed, found by blind index), `recovery_code` and `api_client`.
/// Every method works in the caller's transaction (``GateTransaction/accounts`` or
/// ``PharmacyStore/write(recording:_:)``), so an account change and the audit record that accounts for it commit
/// together.
package struct AccountRepository {
    let db: any SQLConnection
    let store: PharmacyStore

    /// Inserts a user.
    ///
    /// - throws: `FHIRError` of kind `conflict` if the username is taken, `invalid` if a patient user names no
    ///   existing patient of its pharmacy.
    package func insertUser(_ u: UserAccount) throws {
        // A patient account belongs to a patient record of its pharmacy that exists (and is not deleted or erased).
        if let pid = u.patientID, try Bool.fetchOne(
            db, sql: "SELECT EXISTS (SELECT 1 FROM resource_version WHERE tenant = ? AND type = 'Patient' AND id = ? AND current = 1 AND deleted = 0)",
            arguments: [u.tenant, pid]) != true
        {
            throw FHIRError.invalid("No Patient/\(pid) in tenant \(u.tenant): a patient account needs the patient's record first", at: "patient")
        }
        let index = store.usernameIndex(u.username)
        let owner = u.patientID ?? ""
        // A patient's username is sealed under their own data key, so erasing the patient erases it too.
        let (enc, _) = try store.keys.seal(db, tenant: u.tenant, owner: owner, Data(u.username.utf8), context: "user/\(u.id)")
        if try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM user_account WHERE username_index = ?)", arguments: [index]) == true {
            throw FHIRError.conflict("A user with that username already exists")
        }
        try db.execute(
            sql: """
                INSERT INTO user_account (id, username_index, username_enc, password_hash, role, tenant, patient_id, created, key_owner)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [u.id, index, enc, u.passwordHash, u.role, u.tenant, u.patientID, store.timestamp(), owner])
    }

    /// Sets a user's `disabled` flag.
    /// - returns: false if there is no such user.
    @discardableResult
    package func setUserDisabled(username: String, _ disabled: Bool) throws -> Bool {
        try db.execute(sql: "UPDATE user_account SET disabled = ? WHERE username_index = ?", arguments: [disabled, store.usernameIndex(username)])
        return db.changesCount > 0
    }

    /// Replaces a user's password hash and ends every token issued before (`tokens_after`); clears sign-in failures.
    package func setPassword(userID: String, hash: String) throws {
        try db.execute(
            sql: "UPDATE user_account SET password_hash = ?, failed_attempts = 0, locked_until = 0, tokens_after = ? WHERE id = ?",
            arguments: [hash, store.clock.now.timeIntervalSince1970, userID])
    }

    /// Removes a user's second factor and recovery codes.
    package func removeSecondFactor(userID: String) throws {
        try db.execute(sql: "UPDATE user_account SET totp_secret_enc = NULL, totp_enabled = 0, totp_last_step = 0 WHERE id = ?", arguments: [userID])
        try db.execute(sql: "DELETE FROM recovery_code WHERE user_id = ?", arguments: [userID])
    }

    /// Inserts an API client (only its secret's hash is kept).
    package func insertClient(_ c: APIClient) throws {
        try db.execute(
            sql: "INSERT INTO api_client (client_id, secret_hash, role, tenant, name, created) VALUES (?, ?, ?, ?, ?, ?)",
            arguments: [c.clientID, c.secretHash, c.role, c.tenant, c.name, store.timestamp()])
    }

    /// Disables or enables an API client; its tokens stop (or start again) working at once.
    /// - returns: false if there is no such client.
    @discardableResult
    package func setClientDisabled(id: String, _ disabled: Bool) throws -> Bool {
        try db.execute(sql: "UPDATE api_client SET disabled = ? WHERE client_id = ?", arguments: [disabled, id])
        return db.changesCount > 0
    }

    /// Replaces an API client's secret hash; every token issued before stops working.
    /// - returns: false if there is no such client.
    @discardableResult
    package func rotateClientSecret(id: String, secretHash: String) throws -> Bool {
        try db.execute(
            sql: "UPDATE api_client SET secret_hash = ?, tokens_after = ? WHERE client_id = ?",
            arguments: [secretHash, store.clock.now.timeIntervalSince1970.rounded(.down), id])
        return db.changesCount > 0
    }
}

extension GateTransaction {
    /// The account tables, in this transaction.
    package var accounts: AccountRepository { AccountRepository(db: db, store: store) }
}

extension PharmacyStore {
    /// Runs an account change and appends `entry`, its audit record, in one write transaction: for the account
    /// flows of a person who is not signed in or acts on their own account (sign-up, password reset and change,
    /// removing a second factor), where the record is made from the request rather than from an access context.
    ///
    /// - parameter entry: the record of the change, appended only if `body` returns.
    /// - parameter body: the change; throwing rolls it back and nothing is recorded.
    /// - throws: `FHIRError` thrown by `body` as it is; any other failure as `internal`.
    package func write<T: Sendable>(
        recording entry: AuditEntry, _ body: @escaping @Sendable (AccountRepository) throws -> T
    ) async throws(FHIRError) -> T {
        try await runWrite { [self] db in
            let result = try body(AccountRepository(db: db, store: self))
            _ = try auditLog.append([entry], in: db)
            return result
        }
    }
}
