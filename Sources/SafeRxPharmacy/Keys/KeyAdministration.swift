import Foundation
import SafeRxModel
import SafeRxPolicy
import SafeRxStore
import SafeRxStoreCore
import SafeRxVault

/// Key administration for operators on this machine (`saferx keys`, `backup`, `patients erase`): the key hierarchy's
/// state, rotation of the master and tenant keys (each rotation and its audit record in one transaction),
/// re-encryption, crypto-shredding a patient, and encrypted backups. Every method takes an operator's or system
/// context (``AccessContext/operatorCommand(reason:tenant:write:)``); a person's or partner's context is refused.
public struct KeyAdministration: Sendable {
    let store: PharmacyStore
    let access: AccessService

    /// The default master key file: `$SAFERX_MASTER_KEY_FILE`, else `~/.config/saferx/master.key`.
    public static var defaultKeyFile: URL { FileKeyProvider.defaultPath() }

    /// The id of the master key in use.
    public var masterKeyID: String { store.masterKeyID }

    /// Key versions, unfinished re-encryption and erased patients.
    public func status(_ ctx: AccessContext) async throws -> KeyStatus {
        try await access.requireOperator(ctx, interaction: "key-status")
        return try store.keyStatus()
    }

    /// Rotates the master key: a new key file (the old one kept as `<file>.previous-<id>`), every tenant and service
    /// key re-wrapped; no data is touched.
    public func rotateMaster(_ ctx: AccessContext) async throws -> (old: String, new: String, rewrapped: Int) {
        try await access.requireOperator(ctx, interaction: "key-rotate")
        return try store.rotateMasterKey(ctx)
    }

    /// Gives every tenant (or only `tenant`) a new tenant key and re-wraps its data keys.
    public func rotateTenantKeys(_ ctx: AccessContext, only tenant: String?) async throws -> [(tenant: String, version: Int64, rewrapped: Int)] {
        try await access.requireOperator(ctx, interaction: "key-rotate")
        return try store.rotateTenantKeys(ctx, only: tenant)
    }

    /// Re-encrypts every sealed value under new data key versions in small transactions (resumable), then records it.
    public func reencrypt(
        _ ctx: AccessContext, batchSize: Int, progress: @escaping @Sendable (_ done: Int, _ total: Int) -> Void
    ) async throws -> ReencryptionReport {
        try await access.requireOperator(ctx, interaction: "key-rotate")
        let r = try await store.reencrypt(batchSize: batchSize, progress: progress)
        try await access.record(
            ctx, "key-rotate",
            detail: "re-encrypted \(r.resources) resource versions and \(r.otherValues) other sealed values; "
                + "\(r.retiredKeys) old data keys destroyed, \(r.keptKeys) kept")
        return r
    }

    /// Crypto-shreds a patient of the context's pharmacy (see `PharmacyStore.erase`); refused under a retention hold
    /// unless `legalOverride`. The erasure, or its refusal, is audited with `reason`.
    /// - throws: ``ErasureError`` for an unknown or already erased patient or a retention hold.
    public func erase(_ ctx: AccessContext, patient: String, reason: String, legalOverride: Bool, retentionYears: Int) async throws -> ErasureResult {
        try await access.requireOperator(ctx, interaction: "erase")
        guard ctx.scope.tenant != "*" else { throw FHIRError.invalid("A patient is erased in one pharmacy (--tenant)") }
        return try await store.erase(patient: patient, tenant: ctx.scope.tenant, reason: reason, legalOverride: legalOverride, retentionYears: retentionYears)
    }

    /// Writes an encrypted backup of the whole store to `file` (recorded as `backup`).
    public func backup(_ ctx: AccessContext, to file: URL) async throws -> (bytes: Int, chunks: Int) {
        try await access.requireOperator(ctx, interaction: "backup")
        return try await Backup.create(store, to: file)
    }

    /// Decrypts and checks a backup with the master key in `keyFile` (no store is opened).
    public static func verifyBackup(_ file: URL, keyFile: URL) async throws -> BackupSummary {
        try await Backup.verify(file, keyProvider: FileKeyProvider(path: keyFile, create: false))
    }

    /// Restores a backup into a new data directory, or with `database`, into a new PostgreSQL database (whatever
    /// engine the backup was taken on), and checks it.
    public static func restoreBackup(_ file: URL, to dataDirectory: URL, database: String? = nil, keyFile: URL) async throws -> BackupSummary {
        let provider = try FileKeyProvider(path: keyFile, create: false)
        if let database { return try await Backup.restore(file, to: dataDirectory, database: database, keyProvider: provider) }
        return try await Backup.restore(file, to: dataDirectory, keyProvider: provider)
    }
}
