import Foundation
import SafeRxSQL
import Logging
import SafeRxAudit
import SafeRxModel
import SafeRxStoreCore
import SafeRxVault

extension PharmacyStore {
    /// Crypto-shreds a patient: destroys every version of their data key, blanks the ciphertext of every resource
    /// version sealed under it, removes their search terms and accounts, leaves a tombstone (ids only), and gives the
    /// tenant a new tenant key so that stray copies of the destroyed data key (old WAL frames, free pages) cannot be
    /// unwrapped with the live tenant key. Audit records keep the patient's id. Refused while dispense records
    /// younger than `retentionYears` exist (checked inside the erasing transaction), unless `legalOverride`; the
    /// refusal, the erasure and an override are audited with `reason`.
    package func erase(
        patient: String, tenant: String, reason: String, legalOverride: Bool, retentionYears: Int = 10, now: Date? = nil
    ) async throws -> ErasureResult {
        let now = now ?? self.clock.now
        let holdStart = AuditLog.timestamp(Calendar(identifier: .gregorian).date(byAdding: .year, value: -retentionYears, to: now)!)
        let operatorName = "operator:" + AccessContext.operatorLogin
        @Sendable func entry(_ outcome: String, detail: String) -> AuditEntry {
            AuditEntry(
                actor: .init(id: operatorName, role: "system", tenant: tenant), action: "erase", resourceType: "Patient", resourceID: patient,
                patients: [patient], outcome: outcome, result: .done, purpose: "SYSADMIN", sourceIP: "local", userAgent: "saferx cli",
                requestID: UUID().uuidString.lowercased(), detail: detail)
        }
        enum Outcome: Sendable {
            case held(ErasureError)
            case erased(ErasureResult)
        }
        let outcome = try await dbPool.write { [self] db -> Outcome in
            guard try Bool.fetchOne(
                db, sql: "SELECT EXISTS (SELECT 1 FROM resource_version WHERE tenant = ? AND type = 'Patient' AND id = ?)",
                arguments: [tenant, patient]) == true
            else { throw ErasureError.unknownPatient(id: patient, tenant: tenant) }
            if let at = try String.fetchOne(db, sql: "SELECT erased_at FROM erasure WHERE tenant = ? AND patient_id = ?", arguments: [tenant, patient]) {
                throw ErasureError.alreadyErased(id: patient, at: at)
            }
            let held = try dispenseDates(db, tenant: tenant, patient: patient).filter { $0 >= holdStart }
            if let newest = held.max(), !legalOverride {
                let day = String(newest.prefix(10))
                let until = (Int(day.prefix(4)).map { String(format: "%04d", $0 + retentionYears) } ?? "????") + day.dropFirst(4)
                return .held(.retentionHold(id: patient, dispenses: held.count, newest: day, until: until, years: retentionYears))
            }
            let override = legalOverride && !held.isEmpty
            let pks = try Int64.fetchAll(db, sql: "SELECT pk FROM resource_version WHERE tenant = ? AND key_owner = ?", arguments: [tenant, patient])
            let resources = try Int.fetchOne(
                db, sql: "SELECT COUNT(DISTINCT type || '/' || id) FROM resource_version WHERE tenant = ? AND key_owner = ?",
                arguments: [tenant, patient]) ?? 0
            // Resources in the patient's compartment that belong to another patient's record (sealed under that
            // patient's key) are kept: they are the other patient's data too. They are counted and reported.
            let shared = try Int.fetchOne(db, sql: """
                SELECT COUNT(DISTINCT v.type || '/' || v.id) FROM resource_version v JOIN resource_patient rp ON rp.pk = v.pk
                WHERE v.tenant = ? AND rp.patient_id = ? AND v.key_owner <> ? AND v.body IS NOT NULL
                """, arguments: [tenant, patient, patient]) ?? 0
            for chunk in stride(from: 0, to: pks.count, by: 500) {
                let part = Array(pks[chunk..<min(chunk + 500, pks.count)])
                try db.execute(
                    sql: "DELETE FROM search_index WHERE pk IN (\(part.map { _ in "?" }.joined(separator: ",")))",
                    arguments: SQLArguments(part))
            }
            try db.execute(
                sql: "UPDATE resource_version SET body = NULL, deleted = 1, erased = 1 WHERE tenant = ? AND key_owner = ?",
                arguments: [tenant, patient])
            try db.execute(sql: "DELETE FROM consent_grant WHERE tenant = ? AND patient_id = ?", arguments: [tenant, patient])
            try db.execute(sql: "DELETE FROM patient_meta WHERE tenant = ? AND patient_id = ?", arguments: [tenant, patient])
            // Notices sealed under the patient's key could never be opened again: they go with the key.
            try db.execute(sql: "DELETE FROM notification WHERE tenant = ? AND key_owner = ?", arguments: [tenant, patient])
            try db.execute(sql: "DELETE FROM user_account WHERE tenant = ? AND patient_id = ?", arguments: [tenant, patient])
            let accounts = db.changesCount
            try keys.erase(db, tenant: tenant, patient: patient, legalOverride: override)
            let detail = override
                ? "crypto-shredding under LEGAL OVERRIDE of a retention hold (\(held.count) dispense records); reason: \(reason)"
                : "crypto-shredding; reason: \(reason)"
            let seq = try auditLog.append([entry("success", detail: detail)], in: db).first ?? 0
            return .erased(ErasureResult(
                patient: patient, tenant: tenant, resources: resources, versions: pks.count, accounts: accounts, legalOverride: override,
                sharedResources: shared, auditSequence: seq, walTruncated: false))
        }
        switch outcome {
        case .held(let hold):
            try await recordEvent(entry("denied", detail: "retention hold; reason given: \(reason)"))
            await auditWriter.checkpoint()
            throw hold
        case .erased(var result):
            await auditWriter.checkpoint()
            _ = try keys.rotateTenantKeys(dbPool, only: tenant)
            result.walTruncated = await truncateWAL()
            return result
        }
    }

    /// When each of a patient's current dispense records was handed over (or prepared, or last updated).
    func dispenseDates(_ db: any SQLConnection, tenant: String, patient: String) throws -> [String] {
        var dates: [String] = []
        let rows = try SQLRow.fetchAll(db, sql: """
            SELECT v.id, v.version, v.body, v.last_updated, v.key_owner FROM resource_version v
            JOIN resource_patient rp ON rp.pk = v.pk
            WHERE v.tenant = ? AND v.type = 'MedicationDispense' AND v.current = 1 AND v.deleted = 0 AND rp.patient_id = ?
            """, arguments: [tenant, patient])
        for row in rows {
            let id: String = row[0], version: Int = row[1]
            var date: String = row[3]
            if let body: Data = row[2] {
                let plain = try keys.open(db, tenant: tenant, owner: row[4], body, context: Self.cipherContext(tenant, .medicationDispense, id, version))
                let json = try JSON.parse(plain)
                date = json["whenHandedOver"]?.stringValue ?? json["whenPrepared"]?.stringValue ?? date
            }
            dates.append(date)
        }
        return dates
    }

    /// Folds the WAL into the database and truncates it, so old page images of blanked rows do not linger there.
    /// Retries while readers (the server) hold old snapshots; returns whether it succeeded.
    ///
    /// On PostgreSQL: `VACUUM` of the tables that held the patient's rows, so their dead tuples' space is reused
    /// (the server's WAL is recycled by PostgreSQL itself; what it still holds of the patient is ciphertext under the
    /// destroyed key).
    func truncateWAL() async -> Bool {
        if dbPool.dialect == .postgres {
            do {
                _ = try await dbPool.writeWithoutTransaction { db in
                    try db.execute(sql: "VACUUM resource_version, resource_patient, search_index, patient_meta, notification, user_account")
                }
                return true
            } catch {
                logger.warning("VACUUM after an erasure failed; PostgreSQL's autovacuum will reclaim the space", metadata: ["error": "\(type(of: error))"])
                return false
            }
        }
        for attempt in 0..<20 {
            let busy = try? await dbPool.writeWithoutTransaction { db in
                try SQLRow.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)").map { ($0[0] as Int) != 0 } ?? true
            }
            if busy == false { return true }
            try? await Task.sleep(for: .milliseconds(50 * (attempt + 1)))
        }
        logger.warning("the WAL could not be truncated after an erasure; it will be on the next checkpoint")
        return false
    }
}
