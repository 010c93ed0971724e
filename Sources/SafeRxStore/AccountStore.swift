import Foundation
import SafeRxSQL
import SafeRxModel
import SafeRxStoreCore
import SafeRxVault

/// Accounts, API clients, tenants and revoked tokens. No PHI is returned except a user's own username.
extension PharmacyStore {
    func usernameIndex(_ username: String) -> String {
        blindIndex.token(parameter: "username", value: username.lowercased())
    }

    package func addTenant(id: String, name: String) async throws {
        try await dbPool.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO tenant (id, name) VALUES (?, ?)", arguments: [id, name])
        }
    }

    package func tenants() throws -> [String] {
        try readOnCallingThread { db in try String.fetchAll(db, sql: "SELECT id FROM tenant ORDER BY id") }
    }

    /// Inserts a user; throws ``FHIRError`` 409 if the username is taken, 400 if a patient user names no existing patient.
    package func addUser(_ u: UserAccount) async throws(FHIRError) {
        try await runWrite { [self] db in try AccountRepository(db: db, store: self).insertUser(u) }
    }

    func decodeUser(_ db: any SQLConnection, _ row: SQLRow) throws -> UserAccount {
        let id: String = row["id"]
        let name = try keys.open(db, tenant: row["tenant"], owner: row["key_owner"], row["username_enc"], context: "user/\(id)")
        return UserAccount(
            id: id, username: String(decoding: name, as: UTF8.self), passwordHash: row["password_hash"], role: row["role"],
            tenant: row["tenant"], patientID: row["patient_id"], disabled: row["disabled"], failedAttempts: row["failed_attempts"],
            lockedUntil: row["locked_until"])
    }

    package func user(named username: String) async throws(FHIRError) -> UserAccount? {
        let index = usernameIndex(username)
        return try await run { [self] db in
            try SQLRow.fetchOne(db, sql: "SELECT * FROM user_account WHERE username_index = ?", arguments: [index]).map { try decodeUser(db, $0) }
        }
    }

    package func user(id: String) async throws(FHIRError) -> UserAccount? {
        try await run { [self] db in
            try SQLRow.fetchOne(db, sql: "SELECT * FROM user_account WHERE id = ?", arguments: [id]).map { try decodeUser(db, $0) }
        }
    }

    package func users() async throws(FHIRError) -> [UserAccount] {
        try await run { [self] db in
            try SQLRow.fetchAll(db, sql: "SELECT * FROM user_account ORDER BY role, created, id").map { try decodeUser(db, $0) }
        }
    }

    /// The accounts of a tenant with one of `roles` (staff pickers: no patient account is opened).
    package func users(tenant: String, roles: Set<String>) async throws(FHIRError) -> [UserAccount] {
        let list = roles.sorted()
        return try await run { [self] db in
            try SQLRow.fetchAll(
                db, sql: "SELECT * FROM user_account WHERE tenant = ? AND role IN (\(list.map { _ in "?" }.joined(separator: ","))) ORDER BY role, created, id",
                arguments: SQLArguments([tenant] + list)
            ).map { try decodeUser(db, $0) }
        }
    }

    /// Sets `disabled`; returns false if there is no such user.
    package func setUserDisabled(username: String, _ disabled: Bool) async throws(FHIRError) -> Bool {
        try await runWrite { [self] db in try AccountRepository(db: db, store: self).setUserDisabled(username: username, disabled) }
    }

    package func recordLoginFailure(userID: String, lockUntil: Double?) async throws(FHIRError) -> Int {
        try await runWrite { db in
            try db.execute(
                sql: "UPDATE user_account SET failed_attempts = failed_attempts + 1, locked_until = COALESCE(?, locked_until) WHERE id = ?",
                arguments: [lockUntil, userID])
            return try Int.fetchOne(db, sql: "SELECT failed_attempts FROM user_account WHERE id = ?", arguments: [userID]) ?? 0
        }
    }

    package func recordLoginSuccess(userID: String) async throws(FHIRError) {
        try await runWrite { db in
            try db.execute(sql: "UPDATE user_account SET failed_attempts = 0, locked_until = 0 WHERE id = ?", arguments: [userID])
        }
    }

    package func addClient(_ c: APIClient) async throws(FHIRError) {
        try await runWrite { [self] db in try AccountRepository(db: db, store: self).insertClient(c) }
    }

    package func client(id: String) async throws(FHIRError) -> APIClient? {
        try await run { db in
            try SQLRow.fetchOne(db, sql: "SELECT * FROM api_client WHERE client_id = ?", arguments: [id]).map {
                APIClient(
                    clientID: $0["client_id"], secretHash: $0["secret_hash"], role: $0["role"], tenant: $0["tenant"], name: $0["name"],
                    disabled: $0["disabled"])
            }
        }
    }

    package func clients() async throws(FHIRError) -> [APIClient] {
        try await run { db in
            try SQLRow.fetchAll(db, sql: "SELECT * FROM api_client ORDER BY client_id").map {
                APIClient(
                    clientID: $0["client_id"], secretHash: $0["secret_hash"], role: $0["role"], tenant: $0["tenant"], name: $0["name"],
                    disabled: $0["disabled"])
            }
        }
    }

    package func revokeToken(jti: String, expires: Double) async throws(FHIRError) {
        try await runWrite { db in
            try db.execute(sql: "INSERT OR IGNORE INTO revoked_token (jti, expires) VALUES (?, ?)", arguments: [jti, expires])
            try db.execute(sql: "DELETE FROM revoked_token WHERE expires < ?", arguments: [self.clock.now.timeIntervalSince1970 - 60])
        }
    }

    /// Whether a token may still be used: not revoked, its subject exists and is enabled, it was issued after the
    /// account's last password change, and (for a caregiver's token) the caregiver grant is still live.
    package func tokenIsLive(
        jti: String, subject: String, isClient: Bool, issuedAt: Double = .infinity, caregiverGrant: String? = nil, parent: String? = nil
    ) async throws(FHIRError) -> Bool {
        try await run { db in
            let revoked = try db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM revoked_token WHERE jti = ?)")
            if try Bool.fetchOne(revoked, arguments: [jti]) == true { return false }
            // A caregiver's token ends when the caregiver's own token that asked for it is signed out.
            if let parent, try Bool.fetchOne(revoked, arguments: [parent]) == true { return false }
            // Suspended by the detector: nothing works until reinstated, and tokens from before a suspension never again.
            let suspension = try SQLRow.fetchOne(
                db.cachedStatement(sql: "SELECT MAX(at), COALESCE(SUM(CASE WHEN reinstated_at IS NULL THEN 1 ELSE 0 END), 0) FROM actor_suspension WHERE actor_id = ?"),
                arguments: [subject])
            if let suspension {
                if (suspension[1] as Int) > 0 { return false }
                if let at = suspension[0] as Double?, issuedAt < at { return false }
            }
            if isClient {
                // Disabled, or its secret was rotated after this token was issued: dead.
                guard let row = try SQLRow.fetchOne(
                    db.cachedStatement(sql: "SELECT disabled, tokens_after FROM api_client WHERE client_id = ?"), arguments: [subject])
                else { return false }
                return !(row[0] as Bool) && issuedAt >= (row[1] as Double)
            }
            guard let row = try SQLRow.fetchOne(db.cachedStatement(sql: "SELECT disabled, tokens_after FROM user_account WHERE id = ?"), arguments: [subject]),
                !(row[0] as Bool), issuedAt >= (row[1] as Double)
            else { return false }
            if let caregiverGrant {
                let live = try db.cachedStatement(
                    sql: "SELECT EXISTS (SELECT 1 FROM caregiver_grant WHERE id = ? AND caregiver_user_id = ? AND revoked_at IS NULL AND expires > ?)")
                return try Bool.fetchOne(live, arguments: [caregiverGrant, subject, self.clock.now.timeIntervalSince1970]) ?? false
            }
            return true
        }
    }

    /// Whether the store holds any data yet.
    package func isEmpty() async throws(FHIRError) -> Bool {
        try await run { db in
            try Bool.fetchOne(db, sql: "SELECT NOT EXISTS (SELECT 1 FROM user_account) AND NOT EXISTS (SELECT 1 FROM resource_version)") ?? true
        }
    }
}
