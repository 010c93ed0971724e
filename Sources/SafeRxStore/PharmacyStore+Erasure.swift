import Foundation
import GRDB
import SafeRxAudit
import SafeRxModel
import SafeRxVault

/// Why an erasure was refused.
public enum ErasureError: Error, Sendable, CustomStringConvertible {
    case unknownPatient(id: String, tenant: String)
    case alreadyErased(id: String, at: String)
    /// Dispense records younger than the retention period must be kept.
    case retentionHold(id: String, dispenses: Int, newest: String, until: String, years: Int)

    public var description: String {
        switch self {
        case .unknownPatient(let id, let tenant): "No Patient/\(id) in tenant \(tenant)"
        case .alreadyErased(let id, let at): "Patient/\(id) was already erased at \(at)"
        case .retentionHold(let id, let n, let newest, let until, let years):
            "Patient/\(id) is under a retention hold: \(n) dispense record\(n == 1 ? "" : "s"), the newest from \(newest), "
                + "must be kept until \(until) (retention \(years) years). Nothing was erased. "
                + "Use --legal-override (with --reason naming the legal basis) to erase anyway; the override is audited."
        }
    }
}

/// What an erasure did.
public struct ErasureResult: Sendable {
    public var patient: String
    public var tenant: String
    public var resources: Int
    public var versions: Int
    public var accounts: Int
    public var legalOverride: Bool
    public var auditSequence: Int64
}

extension PharmacyStore {
    /// Crypto-shreds a patient: destroys every version of their data key, blanks the ciphertext of every resource
    /// version sealed under it, removes their search terms and accounts, and leaves a tombstone (ids only). Audit
    /// records keep the patient's id. Refused while dispense records younger than `retentionYears` exist, unless
    /// `legalOverride`; the erasure (and an override) is audited with `reason`.
    public func erase(
        patient: String, tenant: String, reason: String, legalOverride: Bool, retentionYears: Int = 10, now: Date = Date()
    ) async throws -> ErasureResult {
        let (exists, erasedAt, dispenseDates) = try readOnCallingThread { db -> (Bool, String?, [String]) in
            let exists = try Bool.fetchOne(
                db, sql: "SELECT EXISTS (SELECT 1 FROM resource_version WHERE tenant = ? AND type = 'Patient' AND id = ?)",
                arguments: [tenant, patient]) ?? false
            let erasedAt = try String.fetchOne(
                db, sql: "SELECT erased_at FROM erasure WHERE tenant = ? AND patient_id = ?", arguments: [tenant, patient])
            var dates: [String] = []
            let rows = try Row.fetchAll(db, sql: """
                SELECT v.id, v.version, v.body, v.last_updated, v.key_owner FROM resource_version v
                JOIN resource_patient rp ON rp.pk = v.pk
                WHERE v.tenant = ? AND v.type = 'MedicationDispense' AND v.current = 1 AND v.deleted = 0 AND rp.patient_id = ?
                """, arguments: [tenant, patient])
            for row in rows {
                let id: String = row[0], version: Int = row[1]
                var date: String = row[3]
                if let body: Data = row[2] {
                    let plain = try keys.open(
                        db, tenant: tenant, owner: row[4], body, context: Self.cipherContext(tenant, .medicationDispense, id, version))
                    let json = try JSON.parse(plain)
                    date = json["whenHandedOver"]?.stringValue ?? json["whenPrepared"]?.stringValue ?? date
                }
                dates.append(date)
            }
            return (exists, erasedAt, dates)
        }
        guard exists else { throw ErasureError.unknownPatient(id: patient, tenant: tenant) }
        if let erasedAt { throw ErasureError.alreadyErased(id: patient, at: erasedAt) }
        let holdStart = AuditLog.timestamp(Calendar(identifier: .gregorian).date(byAdding: .year, value: -retentionYears, to: now)!)
        let held = dispenseDates.filter { $0 >= holdStart }
        let operatorName = "operator:" + (ProcessInfo.processInfo.environment["USER"] ?? "operator")
        func entry(_ action: String, outcome: String, detail: String) -> AuditEntry {
            AuditEntry(
                actor: .init(id: operatorName, role: "system", tenant: tenant), action: action, resourceType: "Patient", resourceID: patient,
                patients: [patient], outcome: outcome, status: 0, purpose: "SYSADMIN", sourceIP: "local", userAgent: "saferx cli",
                requestID: UUID().uuidString.lowercased(), detail: detail)
        }
        if let newest = held.max(), !legalOverride {
            try await recordEvent(entry("erase", outcome: "denied", detail: "retention hold; reason given: \(reason)"))
            await auditWriter.checkpoint()
            let day = String(newest.prefix(10))
            let until = (Int(day.prefix(4)).map { String(format: "%04d", $0 + retentionYears) } ?? "????") + day.dropFirst(4)
            throw ErasureError.retentionHold(id: patient, dispenses: held.count, newest: day, until: until, years: retentionYears)
        }
        let override = legalOverride && !held.isEmpty
        let detail = override
            ? "crypto-shredding under LEGAL OVERRIDE of a retention hold (\(held.count) dispense records); reason: \(reason)"
            : "crypto-shredding; reason: \(reason)"
        let e = entry("erase", outcome: "success", detail: detail)
        let result = try await dbPool.write { [self] db -> ErasureResult in
            let pks = try Int64.fetchAll(
                db, sql: "SELECT pk FROM resource_version WHERE tenant = ? AND key_owner = ?", arguments: [tenant, patient])
            let resources = try Int.fetchOne(
                db, sql: "SELECT COUNT(DISTINCT type || '/' || id) FROM resource_version WHERE tenant = ? AND key_owner = ?",
                arguments: [tenant, patient]) ?? 0
            for chunk in stride(from: 0, to: pks.count, by: 500) {
                let part = Array(pks[chunk..<min(chunk + 500, pks.count)])
                try db.execute(
                    sql: "DELETE FROM search_index WHERE pk IN (\(part.map { _ in "?" }.joined(separator: ",")))",
                    arguments: StatementArguments(part))
            }
            try db.execute(
                sql: "UPDATE resource_version SET body = NULL, deleted = 1, erased = 1 WHERE tenant = ? AND key_owner = ?",
                arguments: [tenant, patient])
            try db.execute(sql: "DELETE FROM user_account WHERE tenant = ? AND patient_id = ?", arguments: [tenant, patient])
            let accounts = db.changesCount
            try keys.erase(db, tenant: tenant, patient: patient, legalOverride: override)
            let seq = try auditLog.append([e], in: db).first ?? 0
            return ErasureResult(
                patient: patient, tenant: tenant, resources: resources, versions: pks.count, accounts: accounts, legalOverride: override,
                auditSequence: seq)
        }
        await auditWriter.checkpoint()
        // Old page images of the blanked rows live on in the WAL until it is checkpointed; fold and truncate it now.
        _ = try? await dbPool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        return result
    }
}
