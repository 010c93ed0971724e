import Foundation
import SafeRxSQL
import SafeRxModel
import SafeRxStoreCore
import SafeRxVault

extension PharmacyStore {
    /// Re-encrypts every sealed value (each column of ``SealedColumn/all``) under a new version of its data key, in small transactions, so
    /// that the server keeps serving (readers never wait; writers wait at most one batch). Old key versions stay
    /// readable until every ciphertext has moved, then they are destroyed.
    ///
    /// Resumable: an interrupted run leaves rows under old versions, and the next run continues with them instead of
    /// rotating again.
    package func reencrypt(
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
                let rows = try SQLRow.fetchAll(db, sql: """
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
        // Every other sealed column moves too (usernames, MFA secrets, notifications, webhook secrets, honeytoken ids,
        // letter contacts): the list is SealedColumn.all, which a schema test keeps complete.
        var others = 0
        for column in SealedColumn.all where column.table != "resource_version" {
            others += try await reseal(column, batchSize: batchSize)
        }
        // Destroy only the retired versions that a pass over every sealed column shows nothing names any more.
        let (retired, kept) = try await dbPool.write { [keys] db -> (Int, Int) in try keys.destroyUnusedRetiredKeys(db) }
        let elapsed = ContinuousClock.now - start
        return ReencryptionReport(
            rotatedKeys: rotated, resources: done, otherValues: others, retiredKeys: retired, keptKeys: kept,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// Moves one sealed column's values that are not under their owner's active data key version, `batchSize` per
    /// write transaction. Values whose owner has no data key at all (an erased patient) stay as they are: they are
    /// crypto-shredded already.
    /// - returns: the number of values re-sealed.
    func reseal(_ column: SealedColumn, batchSize: Int) async throws -> Int {
        guard keys.encrypts else { return 0 }
        struct Pending { var tenant, owner: String; var cipher: Data; var context: String; var key: [SQLValue] }
        // A synchronous read, like every store read (mixing GRDB's async reads in deadlocked the cooperative pool).
        let pending = try readOnCallingThread { db -> [Pending] in
            var active: [String: UInt32?] = [:]
            var out: [Pending] = []
            try column.forEach(db) { tenant, owner, cipher, context, key in
                let name = "\(tenant)\u{0}\(owner)"
                if active[name] == nil {
                    active[name] = try Int64.fetchOne(
                        db, sql: "SELECT version FROM data_key WHERE tenant = ? AND owner = ? AND active = 1", arguments: [tenant, owner]
                    ).map { try KeyRing.keyVersion($0) }
                }
                guard let current = active[name] ?? nil, Envelope.keyVersion(of: cipher) != current else { return }
                out.append(Pending(tenant: tenant, owner: owner, cipher: cipher, context: context, key: key))
            }
            return out
        }
        var start = 0
        while start < pending.count {
            let batch = pending[start..<min(start + batchSize, pending.count)]
            try await dbPool.write { [keys] db in
                for p in batch {
                    let plain = try keys.open(db, tenant: p.tenant, owner: p.owner, p.cipher, context: p.context)
                    let (cipher, version) = try keys.seal(db, tenant: p.tenant, owner: p.owner, plain, context: p.context)
                    try column.update(db, key: p.key, old: p.cipher, cipher: cipher, version: version)
                }
            }
            start += batch.count
        }
        return pending.count
    }

    /// Opens every stored ciphertext (every column of ``SealedColumn/all``) under its key, without returning anything.
    /// Used to verify a backup or a restored store: a corrupted row or a missing key is reported by name.
    package func verifyCiphertexts() async throws -> (resources: Int, failures: [String]) {
        try readOnCallingThread { db in
            var n = 0
            var failures: [String] = []
            for column in SealedColumn.all {
                try column.forEach(db) { tenant, owner, cipher, context, _ in
                    do {
                        let plain = try keys.open(db, tenant: tenant, owner: owner, cipher, context: context)
                        if column.table == "patient_meta", LetterContact(decoding: plain) == nil {
                            throw VaultError.integrity("not a contact record")
                        }
                        if column.table == "resource_version" { n += 1 }
                    } catch {
                        failures.append("\(column.name) \(context): \(error)")
                    }
                }
            }
            return (n, failures)
        }
    }
}
