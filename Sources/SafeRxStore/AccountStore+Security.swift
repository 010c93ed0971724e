import Foundation
import SafeRxSQL
import SafeRxModel
import SafeRxStoreCore
import SafeRxVault

/// Second factors, recovery codes, one-time codes and password changes.
extension PharmacyStore {
    /// Wrong guesses a one-time code survives.
    package static let oneTimeCodeAttempts = 5

    func secretHash(_ kind: String, _ scope: String, _ value: String) -> String {
        blindIndex.token(parameter: kind, value: "\(scope):\(value)")
    }

    /// Stores a new (unconfirmed) TOTP secret, sealed under the account's key, replacing any unconfirmed one.
    package func beginTOTP(userID: String, secret: Data) async throws(FHIRError) {
        try await runWrite { [self] db in
            guard let row = try SQLRow.fetchOne(db, sql: "SELECT tenant, key_owner FROM user_account WHERE id = ?", arguments: [userID]) else {
                throw FHIRError(kind: .notFound, code: "not-found", diagnostics: "No such account")
            }
            let (enc, _) = try keys.seal(db, tenant: row["tenant"], owner: row["key_owner"], secret, context: "totp/\(userID)")
            try db.execute(
                sql: "UPDATE user_account SET totp_secret_enc = ?, totp_enabled = 0, totp_last_step = 0 WHERE id = ?", arguments: [enc, userID])
        }
    }

    /// The account's second-factor state.
    package func mfaState(userID: String) async throws(FHIRError) -> MFAState {
        try await run { [self] db in
            guard let row = try SQLRow.fetchOne(db, sql: "SELECT * FROM user_account WHERE id = ?", arguments: [userID]) else {
                return MFAState(secret: nil, enabled: false, lastStep: 0, recoveryCodesLeft: 0)
            }
            let enc: Data? = row["totp_secret_enc"]
            let secret = try enc.map { try keys.open(db, tenant: row["tenant"], owner: row["key_owner"], $0, context: "totp/\(userID)") }
            let left = try Int.fetchOne(db, sql: "SELECT count(*) FROM recovery_code WHERE user_id = ? AND used_at IS NULL", arguments: [userID]) ?? 0
            return MFAState(secret: secret, enabled: row["totp_enabled"], lastStep: row["totp_last_step"], recoveryCodesLeft: left)
        }
    }

    /// Records that a TOTP step was used; false if that step (or a later one) was already used, so two requests
    /// racing with the same code cannot both pass. `enable` confirms an enrolment in the same statement.
    package func useTOTPStep(userID: String, step: Int64, enable: Bool = false) async throws(FHIRError) -> Bool {
        try await runWrite { db in
            try db.execute(
                sql: "UPDATE user_account SET totp_last_step = ?, totp_enabled = CASE WHEN ? = 1 THEN 1 ELSE totp_enabled END WHERE id = ? AND totp_last_step < ?",
                arguments: [step, enable, userID, step])
            return db.changesCount > 0
        }
    }

    /// Replaces the account's recovery codes (kept as keyed hashes only).
    package func replaceRecoveryCodes(userID: String, codes: [String]) async throws(FHIRError) {
        let hashes = codes.map { secretHash("recovery-code", userID, Self.normalizedRecoveryCode($0)) }
        try await runWrite { db in
            try db.execute(sql: "DELETE FROM recovery_code WHERE user_id = ?", arguments: [userID])
            for h in hashes { try db.execute(sql: "INSERT INTO recovery_code (user_id, code_hash) VALUES (?, ?)", arguments: [userID, h]) }
        }
    }

    /// Spends a recovery code; false if it is not one of the account's unused codes.
    package func useRecoveryCode(userID: String, code: String) async throws(FHIRError) -> Bool {
        let h = secretHash("recovery-code", userID, Self.normalizedRecoveryCode(code))
        return try await runWrite { db in
            try db.execute(
                sql: "UPDATE recovery_code SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL",
                arguments: [self.clock.now.timeIntervalSince1970, userID, h])
            return db.changesCount > 0
        }
    }

    static func normalizedRecoveryCode(_ s: String) -> String { s.uppercased().filter { $0.isLetter || $0.isNumber } }

    /// Whether any account belongs to a patient.
    package func hasAccount(patientID: String, tenant: String) async throws(FHIRError) -> Bool {
        try await run { db in
            try Bool.fetchOne(
                db, sql: "SELECT EXISTS (SELECT 1 FROM user_account WHERE patient_id = ? AND tenant = ? AND role = 'patient')",
                arguments: [patientID, tenant]) ?? false
        }
    }

    // MARK: One-time codes

    /// Stores a new one-time code (only its keyed hash) valid for `lifetime`; returns its id.
    /// At most this many codes of one purpose for one patient in an hour: more would let anyone flood a patient
    /// with messages and hold many live codes at once.
    package static let maxCodesPerHour = 3

    /// Creates a one-time code, or returns `nil` (nothing created, nothing to send) when the patient already got
    /// ``maxCodesPerHour`` codes of this purpose in the last hour.
    package func createOneTimeCode(
        _ purpose: OneTimeCode.Purpose, tenant: String, userID: String?, patientID: String?, code: String, lifetime: TimeInterval
    ) async throws(FHIRError) -> String? {
        let id = RandomSecret.urlSafe(bytes: 16)
        let hash = secretHash("one-time-code", id, code)
        let now = self.clock.now.timeIntervalSince1970
        return try await runWrite { db -> String? in
            try db.execute(sql: "DELETE FROM one_time_code WHERE expires < ?", arguments: [now - 86400])
            let recent = try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM one_time_code WHERE purpose = ? AND tenant = ? AND patient_id IS ? AND user_id IS ? AND created > ?",
                arguments: [purpose.rawValue, tenant, patientID, userID, now - 3600]) ?? 0
            guard recent < Self.maxCodesPerHour else { return nil }
            try db.execute(
                sql: "INSERT INTO one_time_code (id, purpose, tenant, user_id, patient_id, code_hash, expires, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [id, purpose.rawValue, tenant, userID, patientID, hash, now + lifetime, now])
            return id
        }
    }

    /// Checks a one-time code and, when right, marks it used. Every wrong guess counts; after
    /// ``oneTimeCodeAttempts`` the code is dead.
    /// - parameter consume: `false` checks the code (a wrong one still counts as an attempt) without using it up.
    package func redeemOneTimeCode(
        id: String, purpose: OneTimeCode.Purpose, code: String, consume: Bool = true
    ) async throws(FHIRError) -> Result<OneTimeCode, OneTimeCodeFailure> {
        let given = secretHash("one-time-code", id, code)
        let now = self.clock.now.timeIntervalSince1970
        return try await runWrite { db in
            guard let row = try SQLRow.fetchOne(db, sql: "SELECT * FROM one_time_code WHERE id = ? AND purpose = ?", arguments: [id, purpose.rawValue]) else {
                return .failure(.unknown)
            }
            if row["consumed"] as Bool { return .failure(.used) }
            if (row["expires"] as Double) < now { return .failure(.expired) }
            if (row["attempts"] as Int) >= Self.oneTimeCodeAttempts { return .failure(.tooManyAttempts) }
            let stored: String = row["code_hash"]
            guard stored == given else {
                try db.execute(sql: "UPDATE one_time_code SET attempts = attempts + 1 WHERE id = ?", arguments: [id])
                return .failure(.wrongCode)
            }
            if consume { try db.execute(sql: "UPDATE one_time_code SET consumed = 1 WHERE id = ?", arguments: [id]) }
            return .success(OneTimeCode(id: id, purpose: purpose, tenant: row["tenant"], userID: row["user_id"], patientID: row["patient_id"]))
        }
    }
}
