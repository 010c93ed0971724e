import Crypto
import Foundation
import SafeRxSQL
import SafeRxModel
import SafeRxPolicy
import SafeRxStoreCore
import SafeRxVault
import Synchronization

/// SafeRx's key hierarchy, kept wrapped in the database and unwrapped only in memory.
///
/// ```
/// master key (KeyProvider: a file outside the data directory, or a KMS)
///  ├─ tenant key, per pharmacy (tenant_key, versioned)
///  │   └─ data key, per patient, plus one for the tenant's non-patient resources (data_key, versioned)
///  │       └─ resource bodies, every version (resource_version.body); usernames of patient accounts
///  └─ service keys (service_key): blind-index key, token-signing key, audit-signing key, audit-field key
/// ```
///
/// Every wrap is AES-256-GCM bound to the wrapped key's name and version. Unwrapped keys are cached per process;
/// ``Stats`` reports the data-key cache hit rate. A destroyed data key (``erase(_:tenant:patient:)``) makes every
/// ciphertext under it unreadable by any path.
package final class KeyRing: Sendable {
    /// Names of the service keys.
    package enum Service: String, Sendable, CaseIterable {
        case blindIndex = "blind-index"
        case tokenSigning = "token-signing"
        case auditSigning = "audit-signing"
        case auditFields = "audit-fields"
    }

    struct DataKeyName: Hashable {
        let tenant: String
        let owner: String
        let version: UInt32
    }

    struct TenantKeyName: Hashable {
        let tenant: String
        let version: Int64
    }

    struct Cache {
        var data: [DataKeyName: SymmetricKey] = [:]
        var tenant: [TenantKeyName: SymmetricKey] = [:]
        var hits: Int = 0
        var misses: Int = 0
    }

    /// Data-key cache counters since the store was opened.
    package struct Stats: Sendable, Equatable {
        package var hits: Int
        package var misses: Int
        package var cached: Int
        package var hitRate: Double { hits + misses == 0 ? 0 : Double(hits) / Double(hits + misses) }
    }

    static let cacheCapacity = 100_000

    package let provider: any KeyProvider
    /// `false` only for a benchmark store created without encryption (see ``PharmacyStore/Options``).
    package let encrypts: Bool
    /// Stamps rotations and new keys.
    let clock: PharmacyClock
    let cache = Mutex(Cache())
    let services: [Service: SymmetricKey]

    /// Opens the key ring of a migrated database: checks that `provider` holds the master key the store was sealed
    /// with, and creates the service keys of a new store.
    init(provider: any KeyProvider, writer: any SQLDatabase, encrypts: Bool, clock: PharmacyClock = .system) throws {
        self.clock = clock
        self.provider = provider
        self.encrypts = encrypts
        let created = Instant.string(clock.now)
        self.services = try writer.write { db in
            let sealedWith = try String.fetchOne(db, sql: "SELECT value FROM keyring_meta WHERE name = 'master_key_id'")
            let mode = try String.fetchOne(db, sql: "SELECT value FROM keyring_meta WHERE name = 'encryption'")
            if let mode, mode != (encrypts ? "on" : "off") {
                throw VaultError.keyStore("this store was created with encryption \(mode); it cannot be opened with encryption \(encrypts ? "on" : "off")")
            }
            if let sealedWith, sealedWith != provider.keyID {
                // A rotation that committed in the database but did not rename its key files finishes here.
                if let file = provider as? FileKeyProvider, try file.adoptPending(sealedWith) {
                } else if (provider as? FileKeyProvider)?.knownKeyIDs.contains(sealedWith) != true {
                    throw VaultError.wrongMasterKey(expected: sealedWith, given: provider.keyID)
                }
            }
            if sealedWith == nil {
                try db.execute(sql: "INSERT INTO keyring_meta (name, value) VALUES ('master_key_id', ?)", arguments: [provider.keyID])
                try db.execute(sql: "INSERT INTO keyring_meta (name, value) VALUES ('encryption', ?)", arguments: [encrypts ? "on" : "off"])
            }
            var out: [Service: SymmetricKey] = [:]
            for s in Service.allCases {
                if let row = try SQLRow.fetchOne(
                    db, sql: "SELECT version, wrapped, master_key_id FROM service_key WHERE name = ? AND active = 1", arguments: [s.rawValue])
                {
                    let version: Int64 = row[0]
                    out[s] = try provider.unwrap(row[1], keyID: row[2], context: "service/\(s.rawValue)/\(version)")
                } else {
                    let key = Envelope.newKey()
                    let wrapped = try provider.wrap(key, context: "service/\(s.rawValue)/1")
                    try db.execute(
                        sql: "INSERT INTO service_key (name, version, wrapped, master_key_id, active, created) VALUES (?, 1, ?, ?, 1, ?)",
                        arguments: [s.rawValue, wrapped.data, wrapped.masterKeyID, created])
                    out[s] = key
                }
            }
            return out
        }
    }

    package func serviceKey(_ s: Service) -> SymmetricKey { services[s]! }

    package var stats: Stats {
        cache.withLock { Stats(hits: $0.hits, misses: $0.misses, cached: $0.data.count) }
    }

    // MARK: - Sealing and opening data

    /// Seals `plaintext` for `owner` (a patient id, or `""` for the tenant's shared data key) under the owner's
    /// active data key, creating the tenant and data keys on first use. Call inside the write transaction.
    func seal(_ db: any SQLConnection, tenant: String, owner: String, _ plaintext: Data, context: String) throws -> (Data, UInt32) {
        guard encrypts else { return (Data([0]) + plaintext, 0) }
        let (version, key) = try activeDataKey(db, tenant: tenant, owner: owner)
        return (Envelope.seal(plaintext, key: key, keyVersion: version, context: context), version)
    }

    /// Opens a ciphertext sealed by ``seal(_:tenant:owner:_:context:)``.
    func open(_ db: any SQLConnection, tenant: String, owner: String, _ ciphertext: Data, context: String) throws -> Data {
        guard encrypts else {
            guard ciphertext.first == 0 else { throw VaultError.integrity(context) }
            return ciphertext.dropFirst()
        }
        guard let version = Envelope.keyVersion(of: ciphertext) else { throw VaultError.integrity("\(context) is not a SafeRx ciphertext") }
        let key = try dataKey(db, tenant: tenant, owner: owner, version: version)
        return try Envelope.open(ciphertext, key: key, context: context, what: context)
    }

    /// Opens a ciphertext whose data key the caller read beside it (`wrapped`, under tenant key `tenantKeyVersion`):
    /// for bulk jobs that touch each patient once, so the key is neither looked up again nor cached.
    func open(
        _ db: any SQLConnection, tenant: String, owner: String, _ ciphertext: Data, context: String, wrappedKey: Data, tenantKeyVersion: Int64
    ) throws -> Data {
        guard encrypts else { return try open(db, tenant: tenant, owner: owner, ciphertext, context: context) }
        guard let version = Envelope.keyVersion(of: ciphertext) else { throw VaultError.integrity("\(context) is not a SafeRx ciphertext") }
        let name = DataKeyName(tenant: tenant, owner: owner, version: version)
        let key: SymmetricKey
        if let k = cache.withLock({ $0.data[name] }) {
            key = k
        } else {
            key = try Envelope.unwrap(wrappedKey, under: try tenantKey(db, tenant: tenant, version: tenantKeyVersion), context: Self.dataKeyContext(name))
        }
        return try Envelope.open(ciphertext, key: key, context: context, what: context)
    }

    func dataKey(_ db: any SQLConnection, tenant: String, owner: String, version: UInt32) throws -> SymmetricKey {
        let name = DataKeyName(tenant: tenant, owner: owner, version: version)
        if let k = cache.withLock({ c -> SymmetricKey? in
            let k = c.data[name]
            if k != nil { c.hits += 1 } else { c.misses += 1 }
            return k
        }) {
            return k
        }
        guard let row = try SQLRow.fetchOne(
            db.cachedStatement(sql: "SELECT wrapped, tenant_key_version FROM data_key WHERE tenant = ? AND owner = ? AND version = ?"),
            arguments: [tenant, owner, Int64(version)])
        else {
            let erased = try Bool.fetchOne(
                db, sql: "SELECT EXISTS (SELECT 1 FROM erasure WHERE tenant = ? AND patient_id = ?)", arguments: [tenant, owner]) ?? false
            throw VaultError.keyUnavailable(
                erased ? "the data key of patient \(owner) was destroyed when the patient was erased"
                    : "data key \(Self.describe(owner)) version \(version) of tenant \(tenant) does not exist")
        }
        let tenantKey = try tenantKey(db, tenant: tenant, version: row[1])
        let key = try Envelope.unwrap(row[0], under: tenantKey, context: Self.dataKeyContext(name))
        remember(name, key)
        return key
    }

    func activeDataKey(_ db: any SQLConnection, tenant: String, owner: String) throws -> (UInt32, SymmetricKey) {
        if let v = try Int64.fetchOne(
            db.cachedStatement(sql: "SELECT version FROM data_key WHERE tenant = ? AND owner = ? AND active = 1"), arguments: [tenant, owner])
        {
            let version = try Self.keyVersion(v)
            return (version, try dataKey(db, tenant: tenant, owner: owner, version: version))
        }
        if !owner.isEmpty, try Bool.fetchOne(
            db, sql: "SELECT EXISTS (SELECT 1 FROM erasure WHERE tenant = ? AND patient_id = ?)", arguments: [tenant, owner]) == true
        {
            throw VaultError.keyUnavailable("patient \(owner) was erased; nothing more can be stored for them")
        }
        let latest = try Int64.fetchOne(db, sql: "SELECT MAX(version) FROM data_key WHERE tenant = ? AND owner = ?", arguments: [tenant, owner]) ?? 0
        let next = try Self.keyVersion(latest + 1)
        return (next, try createDataKey(db, tenant: tenant, owner: owner, version: next))
    }

    func createDataKey(_ db: any SQLConnection, tenant: String, owner: String, version: UInt32) throws -> SymmetricKey {
        let (tenantVersion, tenantKey) = try activeTenantKey(db, tenant: tenant)
        let key = Envelope.newKey()
        let name = DataKeyName(tenant: tenant, owner: owner, version: version)
        try db.execute(sql: "UPDATE data_key SET active = 0 WHERE tenant = ? AND owner = ? AND active = 1", arguments: [tenant, owner])
        try db.execute(
            sql: "INSERT INTO data_key (tenant, owner, version, wrapped, tenant_key_version, active, created) VALUES (?, ?, ?, ?, ?, 1, ?)",
            arguments: [tenant, owner, Int64(version), Envelope.wrap(key, under: tenantKey, context: Self.dataKeyContext(name)), tenantVersion,
                        Instant.string(self.clock.now)])
        remember(name, key)
        return key
    }

    func tenantKey(_ db: any SQLConnection, tenant: String, version: Int64) throws -> SymmetricKey {
        let name = TenantKeyName(tenant: tenant, version: version)
        if let k = cache.withLock({ $0.tenant[name] }) { return k }
        guard let row = try SQLRow.fetchOne(
            db, sql: "SELECT wrapped, master_key_id FROM tenant_key WHERE tenant = ? AND version = ?", arguments: [tenant, version])
        else { throw VaultError.keyUnavailable("tenant key \(tenant) version \(version) does not exist") }
        let key = try provider.unwrap(row[0], keyID: row[1], context: Self.tenantKeyContext(name))
        cache.withLock { $0.tenant[name] = key }
        return key
    }

    func activeTenantKey(_ db: any SQLConnection, tenant: String) throws -> (Int64, SymmetricKey) {
        if let v = try Int64.fetchOne(db, sql: "SELECT version FROM tenant_key WHERE tenant = ? AND active = 1", arguments: [tenant]) {
            return (v, try tenantKey(db, tenant: tenant, version: v))
        }
        let version = (try Int64.fetchOne(db, sql: "SELECT MAX(version) FROM tenant_key WHERE tenant = ?", arguments: [tenant]) ?? 0) + 1
        let key = Envelope.newKey()
        let name = TenantKeyName(tenant: tenant, version: version)
        let wrapped = try provider.wrap(key, context: Self.tenantKeyContext(name))
        try db.execute(
            sql: "INSERT INTO tenant_key (tenant, version, wrapped, master_key_id, active, created) VALUES (?, ?, ?, ?, 1, ?)",
            arguments: [tenant, version, wrapped.data, wrapped.masterKeyID, Instant.string(self.clock.now)])
        cache.withLock { $0.tenant[name] = key }
        return (version, key)
    }

    func remember(_ name: DataKeyName, _ key: SymmetricKey) {
        cache.withLock { c in
            if c.data.count >= Self.cacheCapacity { c.data.removeAll(keepingCapacity: true) }
            c.data[name] = key
        }
    }

    func forget(tenant: String, owner: String) {
        cache.withLock { c in c.data = c.data.filter { !($0.key.tenant == tenant && $0.key.owner == owner) } }
    }

    /// A key version read from the database, checked (a corrupted table is an error, not a trap).
    static func keyVersion(_ v: Int64) throws -> UInt32 {
        guard let version = UInt32(exactly: v), version > 0 else { throw VaultError.integrity("data key version \(v) is out of range") }
        return version
    }

    static func dataKeyContext(_ n: DataKeyName) -> String { "data/\(n.tenant)/\(n.owner)/\(n.version)" }
    static func tenantKeyContext(_ n: TenantKeyName) -> String { "tenant/\(n.tenant)/\(n.version)" }
    static func describe(_ owner: String) -> String { owner.isEmpty ? "(tenant shared)" : "of patient \(owner)" }

    // MARK: - Rotation

    /// Re-wraps every tenant key and service key under a new master key; no data is touched.
    /// For a ``FileKeyProvider`` the new key replaces the key file and the old one is kept as `<file>.previous`.
    /// Only one rotation runs at a time (a lock beside the key file); a key that another process (the server)
    /// wrapped under the old master key while this ran is re-wrapped by a final sweep after the key file changed.
    ///
    /// - parameter audit: called inside the transaction that re-wraps the keys with the old and new key ids and the
    ///   count, to append the rotation's audit record atomically with it.
    package func rotateMaster(
        _ writer: any SQLDatabase, audit: (@Sendable (any SQLConnection, _ old: String, _ new: String, _ rewrapped: Int) throws -> Void)? = nil
    ) throws -> (old: String, new: String, rewrapped: Int) {
        guard let file = provider as? FileKeyProvider else {
            throw VaultError.keyStore("master key rotation for \(type(of: provider)) is done in the key service itself")
        }
        let old = file.keyID
        try file.rotate()
        let new = file.keyID
        let count: Int
        do {
            count = try writer.write { db -> Int in
                let n = try rewrapAll(db, under: file, except: new)
                try db.execute(sql: "UPDATE keyring_meta SET value = ? WHERE name = 'master_key_id'", arguments: [new])
                try db.execute(
                    sql: "INSERT INTO keyring_meta (name, value) VALUES ('master_rotated', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value", arguments: [Instant.string(self.clock.now)])
                try audit?(db, old, new, n)
                return n
            }
            try file.commitRotation()
        } catch {
            // A committed transaction leaves `.new` for the next open to adopt; an uncommitted one changed nothing.
            file.abandonRotation()
            throw error
        }
        let late = try writer.write { db in try rewrapAll(db, under: file, except: new) }
        return (old, new, count + late)
    }

    /// Re-wraps every tenant and service key not wrapped under `except` with `file`'s current key.
    func rewrapAll(_ db: any SQLConnection, under file: FileKeyProvider, except current: String) throws -> Int {
        var n = 0
        for row in try SQLRow.fetchAll(db, sql: "SELECT tenant, version, wrapped, master_key_id FROM tenant_key WHERE master_key_id <> ?", arguments: [current]) {
            let context = Self.tenantKeyContext(TenantKeyName(tenant: row[0], version: row[1]))
            let key = try file.unwrap(row[2], keyID: row[3], context: context)
            let wrapped = try file.wrap(key, context: context)
            try db.execute(
                sql: "UPDATE tenant_key SET wrapped = ?, master_key_id = ? WHERE tenant = ? AND version = ?",
                arguments: [wrapped.data, wrapped.masterKeyID, row[0] as String, row[1] as Int64])
            n += 1
        }
        for row in try SQLRow.fetchAll(db, sql: "SELECT name, version, wrapped, master_key_id FROM service_key WHERE master_key_id <> ?", arguments: [current]) {
            let name: String = row[0], version: Int64 = row[1]
            let context = "service/\(name)/\(version)"
            let key = try file.unwrap(row[2], keyID: row[3], context: context)
            let wrapped = try file.wrap(key, context: context)
            try db.execute(
                sql: "UPDATE service_key SET wrapped = ?, master_key_id = ? WHERE name = ? AND version = ?",
                arguments: [wrapped.data, wrapped.masterKeyID, name, version])
            n += 1
        }
        return n
    }

    /// Keys still wrapped under a master key other than the current one (0 once a rotation has fully finished).
    static func wrappedUnderOtherMasters(_ db: any SQLConnection) throws -> Int {
        let current = try String.fetchOne(db, sql: "SELECT value FROM keyring_meta WHERE name = 'master_key_id'") ?? ""
        return try Int.fetchOne(db, sql: """
            SELECT (SELECT COUNT(*) FROM tenant_key WHERE master_key_id <> ?) + (SELECT COUNT(*) FROM service_key WHERE master_key_id <> ?)
            """, arguments: [current, current]) ?? 0
    }

    /// Gives every tenant a new tenant key and re-wraps all of its data keys under it; the old tenant key is
    /// destroyed in the same transaction. No data is touched.
    ///
    /// - parameter audit: called inside each tenant's transaction (tenant, new version, data keys re-wrapped), to
    ///   append that rotation's audit record atomically with it.
    package func rotateTenantKeys(
        _ writer: any SQLDatabase, only: String? = nil, audit: (@Sendable (any SQLConnection, _ tenant: String, _ version: Int64, _ rewrapped: Int) throws -> Void)? = nil
    ) throws -> [(tenant: String, version: Int64, rewrapped: Int)] {
        let tenants = try writer.read { db in
            try String.fetchAll(db, sql: "SELECT DISTINCT tenant FROM tenant_key ORDER BY tenant")
        }.filter { only == nil || $0 == only }
        var out: [(String, Int64, Int)] = []
        for tenant in tenants {
            let result = try writer.write { db -> (Int64, Int) in
                let old = try Int64.fetchAll(db, sql: "SELECT version FROM tenant_key WHERE tenant = ?", arguments: [tenant])
                try db.execute(sql: "UPDATE tenant_key SET active = 0 WHERE tenant = ?", arguments: [tenant])
                let (newVersion, newKey) = try activeTenantKey(db, tenant: tenant)
                var n = 0
                for row in try SQLRow.fetchAll(
                    db, sql: "SELECT owner, version, wrapped, tenant_key_version FROM data_key WHERE tenant = ?", arguments: [tenant])
                {
                    let name = DataKeyName(tenant: tenant, owner: row[0], version: try Self.keyVersion(row[1]))
                    let oldKey = try tenantKey(db, tenant: tenant, version: row[3])
                    let key = try Envelope.unwrap(row[2], under: oldKey, context: Self.dataKeyContext(name))
                    try db.execute(
                        sql: "UPDATE data_key SET wrapped = ?, tenant_key_version = ? WHERE tenant = ? AND owner = ? AND version = ?",
                        arguments: [Envelope.wrap(key, under: newKey, context: Self.dataKeyContext(name)), newVersion, tenant, name.owner,
                                    Int64(name.version)])
                    n += 1
                }
                for v in old {
                    try db.execute(sql: "DELETE FROM tenant_key WHERE tenant = ? AND version = ?", arguments: [tenant, v])
                }
                try audit?(db, tenant, newVersion, n)
                return (newVersion, n)
            }
            cache.withLock { c in c.tenant = c.tenant.filter { $0.key.tenant != tenant } }
            out.append((tenant, result.0, result.1))
        }
        return out
    }

    /// Starts a re-encryption unless one is in progress (retired data key versions still exist): every data key
    /// gets a new active version. Returns the number of data keys rotated (0 when resuming).
    func beginReencryption(_ db: any SQLConnection) throws -> Int {
        if try Self.pendingCount(db) > 0 { return 0 }
        if try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM data_key WHERE active = 0)") == true { return 0 }
        let owners = try SQLRow.fetchAll(db, sql: "SELECT tenant, owner, version FROM data_key WHERE active = 1")
        for row in owners {
            let version: Int64 = row[2]
            _ = try createDataKey(db, tenant: row[0], owner: row[1], version: try Self.keyVersion(version + 1))
        }
        return owners.count
    }

    /// Resource versions still sealed under a data key that is not the owner's active one.
    static func pendingCount(_ db: any SQLConnection) throws -> Int {
        try Int.fetchOne(db, sql: """
            SELECT COUNT(*) FROM resource_version v JOIN data_key k
              ON k.tenant = v.tenant AND k.owner = v.key_owner AND k.active = 1
            WHERE v.body IS NOT NULL AND v.key_version <> k.version
            """) ?? 0
    }

    /// Destroys the retired data key versions that no sealed value names any more, after a pass over every column
    /// of ``SealedColumn/all`` (envelope headers, or the version column beside large tables). A retired version that
    /// something still names is kept, so nothing can be lost; a later re-encryption run moves that value and retires it.
    /// - returns: the versions destroyed and the retired versions kept.
    func destroyUnusedRetiredKeys(_ db: any SQLConnection) throws -> (destroyed: Int, kept: Int) {
        guard encrypts else { return (0, 0) }
        let inUse = try Self.versionsInUse(db)
        var destroyed = 0, kept = 0
        for row in try SQLRow.fetchAll(db, sql: "SELECT tenant, owner, version FROM data_key WHERE active = 0") {
            let v = DataKeyVersion(tenant: row[0], owner: row[1], version: try Self.keyVersion(row[2]))
            if inUse.contains(v) {
                kept += 1
                continue
            }
            try db.execute(
                sql: "DELETE FROM data_key WHERE tenant = ? AND owner = ? AND version = ? AND active = 0",
                arguments: [v.tenant, v.owner, Int64(v.version)])
            destroyed += 1
        }
        return (destroyed, kept)
    }

    // MARK: - Crypto-shredding

    /// Destroys every version of a patient's data key. Call inside the transaction that tombstones their rows.
    func erase(_ db: any SQLConnection, tenant: String, patient: String, legalOverride: Bool) throws {
        try db.execute(sql: "DELETE FROM data_key WHERE tenant = ? AND owner = ?", arguments: [tenant, patient])
        try db.execute(
            sql: "INSERT INTO erasure (tenant, patient_id, erased_at, legal_override) VALUES (?, ?, ?, ?) ON CONFLICT (tenant, patient_id) DO UPDATE SET erased_at = excluded.erased_at, legal_override = excluded.legal_override",
            arguments: [tenant, patient, Instant.string(self.clock.now), legalOverride])
        db.afterCommit({ [self] in forget(tenant: tenant, owner: patient) })
    }
}

extension PharmacyStore {
    package func keyStatus() throws -> KeyStatus {
        try readOnCallingThread { db in
            let tenants = try SQLRow.fetchAll(db, sql: """
                SELECT t.tenant, t.version,
                       (SELECT COUNT(*) FROM data_key d WHERE d.tenant = t.tenant AND d.active = 1),
                       (SELECT COUNT(*) FROM data_key d WHERE d.tenant = t.tenant AND d.active = 0)
                FROM tenant_key t WHERE t.active = 1 ORDER BY t.tenant
                """).map { KeyStatus.Tenant(tenant: $0[0], version: $0[1], dataKeys: $0[2], retired: $0[3]) }
            return KeyStatus(
                masterKeyID: try String.fetchOne(db, sql: "SELECT value FROM keyring_meta WHERE name = 'master_key_id'") ?? "?",
                tenants: tenants, pending: try KeyRing.pendingCount(db),
                underOtherMasterKeys: try KeyRing.wrappedUnderOtherMasters(db),
                erased: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM erasure") ?? 0)
        }
    }

    #if DEBUG || SAFERX_BENCHMARKS
    /// The current version of a resource with no token, no scope and no audit: the baseline of `saferx bench` and a
    /// check for tests. Not in a release build unless it is built with the `Benchmarks` trait
    /// (`swift build -c release --traits Benchmarks`), and never public: the shipped binary has no unprotected read.
    func unprotectedRead(_ type: ResourceType, id: String) throws -> JSON? {
        try readOnCallingThread { db in
            let sql = """
                SELECT v.pk, v.tenant, v.id, v.version, v.last_updated, v.deleted, v.body, NULL, v.key_owner, v.erased
                FROM resource_version v WHERE v.type = ? AND v.id = ? AND v.current = 1
                """
            guard let row = try SQLRow.fetchOne(db.cachedStatement(sql: sql), arguments: [type.rawValue, id]) else { return nil }
            return try decode(db, row, type: type, scope: .system(reason: "benchmark baseline", tenant: "*", write: false)).json
        }
    }
    #endif
}
