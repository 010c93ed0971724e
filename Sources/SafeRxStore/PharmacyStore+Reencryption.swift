import Foundation
import GRDB
import SafeRxModel
import SafeRxVault

/// What a re-encryption did.
public struct ReencryptionReport: Sendable {
    /// Data keys given a new version (0 when an interrupted run was resumed).
    public var rotatedKeys: Int
    public var resources: Int
    public var accounts: Int
    public var retiredKeys: Int
    public var seconds: Double
}

extension PharmacyStore {
    /// Re-encrypts every stored resource version under a new version of its data key, in small transactions, so
    /// that the server keeps serving (readers never wait; writers wait at most one batch). Old key versions stay
    /// readable until every ciphertext has moved, then they are destroyed.
    ///
    /// Resumable: an interrupted run leaves rows under old versions, and the next run continues with them instead of
    /// rotating again.
    public func reencrypt(
        batchSize: Int = 500, progress: @Sendable (_ done: Int, _ total: Int) -> Void = { _, _ in }
    ) async throws -> ReencryptionReport {
        let start = ContinuousClock.now
        let (rotated, total) = try await dbPool.write { [keys] db in
            let rotated = try keys.beginReencryption(db)
            return (rotated, try KeyRing.pendingCount(db))
        }
        var done = 0
        progress(0, total)
        while true {
            let n = try await dbPool.write { [self] db -> Int in
                let rows = try Row.fetchAll(db, sql: """
                    SELECT v.pk, v.tenant, v.type, v.id, v.version, v.key_owner, v.body FROM resource_version v
                    JOIN data_key k ON k.tenant = v.tenant AND k.owner = v.key_owner AND k.active = 1
                    WHERE v.body IS NOT NULL AND v.key_version <> k.version LIMIT ?
                    """, arguments: [batchSize])
                let update = try db.cachedStatement(sql: "UPDATE resource_version SET body = ?, key_version = ? WHERE pk = ?")
                for row in rows {
                    let tenant: String = row[1], owner: String = row[5]
                    guard let type = ResourceType(rawValue: row[2]) else {
                        throw VaultError.integrity("resource_version row \(row[0] as Int64) has an unknown type; re-encryption stopped")
                    }
                    let context = Self.cipherContext(tenant, type, row[3], row[4])
                    let plain = try keys.open(db, tenant: tenant, owner: owner, row[6], context: context)
                    let (cipher, version) = try keys.seal(db, tenant: tenant, owner: owner, plain, context: context)
                    try update.execute(arguments: [cipher, Int64(version), row[0] as Int64])
                }
                return rows.count
            }
            if n == 0 { break }
            done += n
            progress(min(done, max(total, done)), max(total, done))
        }
        let (accounts, retired) = try await dbPool.write { [self] db -> (Int, Int) in
            var accounts = 0
            for row in try Row.fetchAll(db, sql: "SELECT id, tenant, key_owner, username_enc FROM user_account") {
                let id: String = row[0], tenant: String = row[1], owner: String = row[2]
                let plain = try keys.open(db, tenant: tenant, owner: owner, row[3], context: "user/\(id)")
                let (cipher, _) = try keys.seal(db, tenant: tenant, owner: owner, plain, context: "user/\(id)")
                try db.execute(sql: "UPDATE user_account SET username_enc = ? WHERE id = ?", arguments: [cipher, id])
                accounts += 1
            }
            // Letter contacts move with the records (before the old key versions are destroyed).
            for row in try Row.fetchAll(db, sql: """
                SELECT m.tenant, m.patient_id, m.contact FROM patient_meta m JOIN data_key k ON k.tenant = m.tenant AND k.owner = m.patient_id AND k.active = 1
                WHERE m.contact IS NOT NULL AND m.contact_key_version <> k.version
                """)
            {
                let tenant: String = row[0], patient: String = row[1]
                let context = LetterContact.context(tenant, patient)
                let plain = try keys.open(db, tenant: tenant, owner: patient, row[2], context: context)
                let (cipher, version) = try keys.seal(db, tenant: tenant, owner: patient, plain, context: context)
                try db.execute(
                    sql: "UPDATE patient_meta SET contact = ?, contact_key_version = ? WHERE tenant = ? AND patient_id = ?",
                    arguments: [cipher, Int64(version), tenant, patient])
            }
            return (accounts, try keys.destroyRetiredKeys(db))
        }
        let elapsed = ContinuousClock.now - start
        return ReencryptionReport(
            rotatedKeys: rotated, resources: done, accounts: accounts, retiredKeys: retired,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// Opens every stored ciphertext (resource versions, usernames and letter contacts) under its key, without returning anything.
    /// Used to verify a backup or a restored store: a corrupted row or a missing key is reported by name.
    public func verifyCiphertexts() async throws -> (resources: Int, failures: [String]) {
        try readOnCallingThread { db in
            var n = 0
            var failures: [String] = []
            let rows = try Row.fetchCursor(
                db, sql: "SELECT tenant, type, id, version, key_owner, body FROM resource_version WHERE body IS NOT NULL")
            while let row = try rows.next() {
                let tenant: String = row[0], id: String = row[2], version: Int = row[3]
                guard let type = ResourceType(rawValue: row[1]) else {
                    failures.append("unknown resource type \(row[1] as String)")
                    continue
                }
                do {
                    _ = try keys.open(db, tenant: tenant, owner: row[4], row[5], context: Self.cipherContext(tenant, type, id, version))
                    n += 1
                } catch {
                    failures.append("\(type.rawValue)/\(id)/_history/\(version): \(error)")
                }
            }
            for row in try Row.fetchAll(db, sql: "SELECT id, tenant, key_owner, username_enc FROM user_account") {
                do {
                    _ = try keys.open(db, tenant: row[1], owner: row[2], row[3], context: "user/\(row[0] as String)")
                } catch {
                    failures.append("user account \(row[0] as String): \(error)")
                }
            }
            let contacts = try Row.fetchCursor(db, sql: "SELECT tenant, patient_id, contact FROM patient_meta WHERE contact IS NOT NULL")
            while let row = try contacts.next() {
                let tenant: String = row[0], patient: String = row[1]
                do {
                    guard LetterContact(decoding: try keys.open(db, tenant: tenant, owner: patient, row[2], context: LetterContact.context(tenant, patient))) != nil
                    else { throw VaultError.integrity("not a contact record") }
                } catch {
                    failures.append("letter contact of Patient/\(patient): \(error)")
                }
            }
            return (n, failures)
        }
    }
}
