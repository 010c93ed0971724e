import Crypto
import Foundation
import SafeRxSQL
import SafeRxPostgres
import SafeRxSQLite
import Logging
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStoreCore
import SafeRxVault
import Synchronization

/// SafeRx's data store and the one gate through which every query that can return PHI passes.
///
/// Every method that reads or writes patient data takes an ``AccessContext``. Its scope is compiled into the
/// SQL of the query itself (``scopePredicate(_:type:alias:now:)``): there is no unscoped variant, and nothing above the
/// store filters rows. Every call appends an audit record naming the patients whose data left or changed in the
/// store; reads await the record's group commit, writes commit their record in the same transaction.
///
/// A resource the caller may not see is reported exactly like one that does not exist (``FHIRError/notFound(_:_:)``);
/// only the audit log tells the two apart.
package final class PharmacyStore: Sendable {
    /// How a store is opened.
    package struct Options: Sendable {
        /// Whether resource bodies are encrypted. Always true outside ``saferx bench``: a store created without
        /// encryption refuses to open with it and the other way round.
        @_spi(Benchmark) public var encryption: Bool = true
        /// The time audit records are stamped with; a test stands a simulated clock in for a day's work.
        package var auditClock: @Sendable () -> Date = { Date() }
        /// The time the store decides by (expiries, stamps on new rows); see ``SafeRxStoreCore/PharmacyClock``.
        package var clock: PharmacyClock = .system
        /// A PostgreSQL database (`postgres://user:password@host:port/database`) to keep the store in instead of
        /// `saferx.sqlite` in the data directory. The master key stays outside the database either way; the data
        /// directory still holds the signed audit head and the process's own files.
        package var database: String?

        package init() {}
    }

    package let dbPool: any SQLDatabase
    /// The key hierarchy: master key provider, tenant and patient data keys, service keys.
    package let keys: KeyRing
    /// Blind index tokens for searchable PHI.
    package let blindIndex: BlindIndex
    package let auditLog: AuditLog
    package let auditWriter: AuditWriter
    package let dataDirectory: URL
    /// The time the store decides by.
    package let clock: PharmacyClock
    /// The exfiltration detector, when this process runs it (``startDetection(rules:securityContact:)``).
    let detection = Mutex<DetectionObserver?>(nil)
    /// The last audit verification the privacy overview made, and the sequence number it reached.
    let lastVerification = Mutex<(seq: Int64, result: AuditVerification)?>(nil)
    let logger: Logger
    /// The refill rules in force (``refillRules``).
    let rules = Mutex(RefillRules())

    /// The database file inside a data directory.
    package static func databaseFile(in dataDirectory: URL) -> URL { dataDirectory.appendingPathComponent("saferx.sqlite") }

    /// Opens (creating if needed) the store in `dataDirectory` (`saferx.sqlite` with its WAL, `audit-head.json`),
    /// with the master key from `keyFile`. The key file is created (mode 0600) only together with a new store; for an
    /// existing store a missing or different key file is an error that names the key the data needs.
    package static func open(
        dataDirectory: URL, keyFile: URL, options: Options = Options(), logger: Logger = Logger(label: "saferx.store")
    ) throws -> PharmacyStore {
        try checkApart(keyFile: keyFile, dataDirectory: dataDirectory)
        let engine: (any SQLDatabase)?
        let exists: Bool
        let sealed: () -> String?
        if let url = options.database {
            // Connect first: a database that cannot be reached must not look like a new, empty one.
            let postgres = try PostgreSQLDatabase(url: url, logger: logger)
            let keyID: String?
            do {
                keyID = try sealedWith(postgres)
            } catch {
                try? postgres.close()
                throw error
            }
            engine = postgres
            exists = keyID != nil
            sealed = { keyID }
        } else {
            let db = databaseFile(in: dataDirectory)
            engine = nil
            exists = FileManager.default.fileExists(atPath: db.path)
            sealed = { sealedWith(db) }
        }
        let provider: FileKeyProvider
        do {
            provider = try FileKeyProvider(path: keyFile, create: !exists)
        } catch .missingMasterKey(let path, _) {
            try? engine?.close()
            throw VaultError.missingMasterKey(path: path, expectedKeyID: sealed())
        }
        do {
            return try PharmacyStore(dataDirectory: dataDirectory, engine: engine, keyProvider: provider, options: options, logger: logger)
        } catch {
            try? engine?.close()
            throw error
        }
    }

    /// Refuses a master key file inside the data directory: a copy of the directory must not carry its key.
    static func checkApart(keyFile: URL, dataDirectory: URL) throws(VaultError) {
        let dir = dataDirectory.resolvingSymlinksInPath().standardizedFileURL.path + "/"
        if keyFile.resolvingSymlinksInPath().standardizedFileURL.path.hasPrefix(dir) {
            throw .badMasterKeyFile(
                path: keyFile.path, reason: "is inside the data directory; the master key must be kept apart from the data it protects")
        }
    }

    /// The id of the master key an existing database was sealed with (read without any key).
    static func sealedWith(_ file: URL) -> String? {
        try? SQLiteDatabase.readOnly(path: file.path) { db in
            try String.fetchOne(db, sql: "SELECT value FROM keyring_meta WHERE name = 'master_key_id'")
        }
    }

    /// The id of the master key a PostgreSQL store was sealed with; nil for a database SafeRx has not set up yet.
    /// - throws: the engine's error: a database that cannot be read must not look like a new one (a new master key
    ///   would be made for it).
    static func sealedWith(_ engine: any SQLDatabase) throws -> String? {
        try engine.read { db in
            guard try Bool.fetchOne(db, sql: "SELECT to_regclass('keyring_meta') IS NOT NULL") == true else { return nil }
            return try String.fetchOne(db, sql: "SELECT value FROM keyring_meta WHERE name = 'master_key_id'")
        }
    }

    /// Opens (creating if needed) the store in `dataDirectory` with the master key held by `keyProvider`.
    package convenience init(
        dataDirectory: URL, keyProvider: any KeyProvider, options: Options = Options(), logger: Logger = Logger(label: "saferx.store")
    ) throws {
        try self.init(dataDirectory: dataDirectory, engine: nil, keyProvider: keyProvider, options: options, logger: logger)
    }

    /// Opens the store on `engine`, or when nil, on the engine `options` name (`saferx.sqlite` in `dataDirectory`
    /// unless ``Options/database`` is set).
    init(dataDirectory: URL, engine: (any SQLDatabase)?, keyProvider: any KeyProvider, options: Options, logger: Logger) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        if fm.fileExists(atPath: dataDirectory.appendingPathComponent("keys/data.key").path) {
            throw VaultError.keyStore(
                "\(dataDirectory.path) was created by an earlier SafeRx that kept its keys in the data directory; "
                    + "this version keeps only wrapped keys there and cannot read it. Start a new data directory.")
        }
        if let file = keyProvider as? FileKeyProvider { try Self.checkApart(keyFile: file.path, dataDirectory: dataDirectory) }
        self.dataDirectory = dataDirectory
        self.clock = options.clock
        Self.removeStaleSnapshots(in: dataDirectory)
        if let engine {
            self.dbPool = engine
        } else if let url = options.database {
            self.dbPool = try PostgreSQLDatabase(url: url, logger: logger)
        } else {
            self.dbPool = try SQLiteDatabase(path: Self.databaseFile(in: dataDirectory).path)
        }
        try Schema.migrator(for: dbPool.dialect).migrate(dbPool)
        if dbPool.dialect == .sqlite {
            let path = Self.databaseFile(in: dataDirectory).path
            for file in [path, path + "-wal", path + "-shm"] where fm.fileExists(atPath: file) {
                try? fm.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
            }
        }
        self.keys = try KeyRing(provider: keyProvider, writer: dbPool, encrypts: options.encryption, clock: options.clock)
        self.blindIndex = BlindIndex(key: keys.serviceKey(.blindIndex))
        let auditSigning = try Curve25519.Signing.PrivateKey(rawRepresentation: keys.serviceKey(.auditSigning).withUnsafeBytes { Data($0) })
        self.auditLog = AuditLog(
            signingKey: auditSigning, cipher: AuditFieldCipher(key: keys.serviceKey(.auditFields), index: blindIndex),
            headFile: dataDirectory.appendingPathComponent("audit-head.json"), clock: options.auditClock)
        self.auditWriter = AuditWriter(log: auditLog, writer: dbPool)
        self.logger = logger
        if dbPool.dialect != .sqlite, let seq = try dbPool.read({ [auditLog] db in try auditLog.adoptNewestCheckpoint(db) }) {
            logger.notice("audit: this data directory had no signed head; adopted the database's newest checkpoint", metadata: ["seq": "\(seq)"])
        }
    }

    /// Removes backup snapshots left by an interrupted `backup create` (older than an hour, so a running one is safe).
    static func removeStaleSnapshots(in dataDirectory: URL) {
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: dataDirectory.path)) ?? [] where name.hasPrefix(".backup-") {
            let url = dataDirectory.appendingPathComponent(name)
            if let modified = try? fm.attributesOfItem(atPath: url.path)[.modificationDate] as? Date, modified < Date().addingTimeInterval(-3600) {
                try? fm.removeItem(at: url)
            }
        }
    }

    /// The key that signs access tokens (Ed25519).
    package var tokenSigningKey: Curve25519.Signing.PrivateKey {
        try! Curve25519.Signing.PrivateKey(rawRepresentation: keys.serviceKey(.tokenSigning).withUnsafeBytes { Data($0) })
    }

    /// The public half of the key that signs audit checkpoints.
    package var auditPublicKey: Curve25519.Signing.PublicKey { auditLog.publicKey }

    package var headFile: URL { dataDirectory.appendingPathComponent("audit-head.json") }

    // MARK: - The scope, compiled to SQL

    /// The predicate that limits `alias` (a `resource_version` row) to what `scope` may see of `type`.
    /// Fails closed: a scope with no read right, or rows `.none`, yields `FALSE`.
    static func scopePredicate(_ scope: AccessScope, type: ResourceType, alias v: String, now: String) -> (String, [any SQLValueConvertible]) {
        guard scope.rights(for: type).read || scope.systemReason != nil else { return ("FALSE", []) }
        var sql = "\(v).type = ?"
        var args: [any SQLValueConvertible] = [type.rawValue]
        if !(scope.systemReason != nil && scope.tenant == "*") {
            sql += " AND \(v).tenant = ?"
            args.append(scope.tenant)
        }
        guard type.isPatientData else {
            if case .none = scope.rows { return ("FALSE", []) }
            return (sql, args)
        }
        switch scope.rows {
        case .tenant:
            break
        case .compartment(let patientID):
            // `pk IN (...)` lets SQLite drive the query from the patient's rows instead of testing every row.
            sql += " AND \(v).pk IN (SELECT rp.pk FROM resource_patient rp WHERE rp.patient_id = ?)"
            args.append(patientID)
        case .partner(let clientID):
            sql += """
                 AND \(v).pk IN (SELECT rp.pk FROM patient_owner po JOIN resource_patient rp ON rp.patient_id = po.patient_id \
                WHERE po.partner = ? AND po.tenant = ?)
                """
            args.append(clientID)
            args.append(scope.tenant)
            if AccessScope.partyTypes.contains(type) {
                // EXISTS (not `id IN`): the planner must not drive the query from the party list (4 M probes at 10,000 patients).
                sql += " AND EXISTS (SELECT 1 FROM resource_party party WHERE party.party = ? AND party.tenant = \(v).tenant AND party.type = \(v).type AND party.id = \(v).id)"
                args.append(clientID)
            }
        case .patients(let ids):
            sql += " AND \(v).pk IN (SELECT rp.pk FROM resource_patient rp WHERE rp.patient_id IN (\(ids.map { _ in "?" }.joined(separator: ","))))"
            args += ids
        case .consented(let clientID):
            // Only patients with an active, unexpired authorization naming this client and this purpose, and only
            // resource types the authorization releases elements of.
            // ... and only if the authorization releases at least one element the policy lets this purpose see.
            let visible = scope.visibleElements(of: type).map { $0.subtracting(PolicyTable.alwaysVisible).sorted() }
            let releases = visible.map { v in
                v.isEmpty ? "FALSE" : "(" + v.map { _ in "instr(cg.elements, ?) > 0" }.joined(separator: " OR ") + ")"
            } ?? "instr(cg.elements, ',' || \(v).type || '.') > 0"
            sql += """
                 AND \(v).pk IN (SELECT rp.pk FROM consent_grant cg JOIN resource_patient rp ON rp.patient_id = cg.patient_id \
                WHERE cg.client_id = ? AND cg.purpose = ? AND cg.tenant = ? AND cg.ended = '' AND cg.expires > ? AND cg.starts <= ? AND \(releases))
                """
            args += [clientID, scope.purpose.rawValue, scope.tenant, now, now]
            args += (visible ?? []).map { ",\(type.rawValue).\($0)," }
        case .none:
            return ("FALSE", [])
        }
        return (sql, args)
    }

    /// The predicate that limits `audit_log` rows (alias `a`) to what `scope` may see.
    static func auditPredicate(_ scope: AccessScope) -> (String, [any SQLValueConvertible]) {
        guard scope.rights(for: .auditEvent).read || scope.systemReason != nil else { return ("FALSE", []) }
        var sql = "TRUE"
        var args: [any SQLValueConvertible] = []
        if !(scope.systemReason != nil && scope.tenant == "*") {
            sql = "a.tenant = ?"
            args.append(scope.tenant)
        }
        switch scope.rows {
        case .tenant: break
        case .compartment(let patientID):
            sql += " AND EXISTS (SELECT 1 FROM audit_patient ap WHERE ap.seq = a.seq AND ap.patient_id = ?)"
            args.append(patientID)
        case .partner, .consented, .patients, .none: return ("FALSE", [])
        }
        return (sql, args)
    }

    /// The single scoped SELECT over resource versions. Every PHI read of a resource goes through here.
    func scopedRows(
        _ db: any SQLConnection, _ scope: AccessScope, type: ResourceType, where extra: String, _ extraArgs: [any SQLValueConvertible],
        suffix: String = "", suffixArgs: [any SQLValueConvertible] = []
    ) throws -> [StoredResource] {
        let (pred, args) = Self.scopePredicate(scope, type: type, alias: "v", now: self.timestamp())
        let sql = """
            SELECT v.pk, v.tenant, v.id, v.version, v.last_updated, v.deleted, v.body,
                   (SELECT group_concat(rp2.patient_id, ',') FROM resource_patient rp2 WHERE rp2.pk = v.pk), v.key_owner, v.erased
            FROM resource_version v WHERE (\(pred)) AND (\(extra)) \(suffix)
            """
        let statement = try db.cachedStatement(sql: sql)
        let rows = try SQLRow.fetchAll(statement, arguments: SQLArguments(args + extraArgs + suffixArgs))
        return try rows.map { row in try decode(db, row, type: type, scope: scope) }
    }

    /// The same scoped SELECT for work lists, without decrypting anything: per row the id, last update, patients and
    /// the plain (never blinded) index terms named in `terms` (the first value of each). Work lists built on it (message
    /// threads) cost an index read per row, not a decrypt, and see exactly the rows `scopedRows` would return.
    func scopedTerms(
        _ db: any SQLConnection, _ scope: AccessScope, type: ResourceType, terms: [String], where extra: String = "v.current = 1 AND v.deleted = 0",
        _ extraArgs: [any SQLValueConvertible] = []
    ) throws -> [(id: String, lastUpdated: String, patients: [String], terms: [String: String])] {
        let definitions = SearchParameter.all(for: type)
        for t in terms where definitions[t]?.sensitive != false {
            preconditionFailure("scopedTerms reads plain index terms only; '\(t)' is blinded or not a parameter of \(type.rawValue)")
        }
        let (pred, args) = Self.scopePredicate(scope, type: type, alias: "v", now: self.timestamp())
        // `si.param || ''` keeps the planner on the per-row index (search_index_pk); on (param, value) it would scan
        // every row's terms for each row (3.4 s instead of 40 ms for 4,000 messages).
        let columns = terms.map { _ in "(SELECT si.value FROM search_index si WHERE si.pk = v.pk AND si.param || '' = ? LIMIT 1)" }.joined(separator: ", ")
        let sql = """
            SELECT v.id, v.last_updated, (SELECT group_concat(rp2.patient_id, ',') FROM resource_patient rp2 WHERE rp2.pk = v.pk)\(terms.isEmpty ? "" : ", " + columns)
            FROM resource_version v WHERE (\(pred)) AND (\(extra))
            """
        let rows = try SQLRow.fetchAll(db.cachedStatement(sql: sql), arguments: SQLArguments(terms + args + extraArgs))
        return rows.map { row in
            var values: [String: String] = [:]
            for (i, t) in terms.enumerated() { if let v: String = row[3 + i] { values[t] = v } }
            return (row[0], row[1], (row[2] as String?).map { $0.split(separator: ",").map(String.init) } ?? [], values)
        }
    }

    /// Counts rows of the same scoped query.
    func scopedCount(
        _ db: any SQLConnection, _ scope: AccessScope, type: ResourceType, where extra: String, _ extraArgs: [any SQLValueConvertible]
    ) throws -> Int {
        let (pred, args) = Self.scopePredicate(scope, type: type, alias: "v", now: self.timestamp())
        return try Int.fetchOne(
            db, sql: "SELECT COUNT(*) FROM resource_version v WHERE (\(pred)) AND (\(extra))",
            arguments: SQLArguments(args + extraArgs)) ?? 0
    }

    func decode(_ db: any SQLConnection, _ row: SQLRow, type: ResourceType, scope: AccessScope) throws -> StoredResource {
        let tenant: String = row[1]
        let id: String = row[2]
        let version: Int = row[3]
        let lastUpdated: String = row[4]
        let deleted: Bool = row[5]
        let keyOwner: String = row[8]
        let erased: Bool = row[9]
        let patients = (row[7] as String?).map { $0.split(separator: ",").map(String.init) } ?? []
        var json: JSON? = nil
        if let body: Data = row[6] {
            let context = Self.cipherContext(tenant, type, id, version)
            let plain: Data
            do {
                plain = try keys.open(db, tenant: tenant, owner: keyOwner, body, context: context)
            } catch let e as VaultError {
                logger.error("stored resource failed to decrypt", metadata: ["resource": "\(type.rawValue)/\(id)/\(version)", "error": "\(e)"])
                throw FHIRError(
                    kind: .internal, code: "exception",
                    diagnostics: "The stored data of \(type.rawValue)/\(id) version \(version) cannot be decrypted: \(e). Nothing was returned.")
            }
            var value = try JSON.parse(plain)
            value["meta"] = .object(["versionId": .string(String(version)), "lastUpdated": .string(lastUpdated)])
            var allowed = scope.visibleElements(of: type)
            if case .consented(let clientID) = scope.rows {
                // Minimum necessary per patient: what their authorization releases, within what the purpose allows.
                let released = try consentedElements(db, scope: scope, clientID: clientID, patients: patients, type: type)
                allowed = (allowed ?? released.union(PolicyTable.alwaysVisible)).intersection(released.union(PolicyTable.alwaysVisible))
            }
            if let allowed, case .object(let o) = value {
                value = .object(o.filter { allowed.contains($0.key) })
            }
            // A business line learns the released elements, not when or how often the record changed.
            if case .consented = scope.rows { value["meta"] = nil }
            json = value
        }
        return StoredResource(
            type: type, id: id, version: version, lastUpdated: lastUpdated, deleted: deleted, json: json, patients: patients,
            erased: erased)
    }

    /// The elements of `type` that active authorizations of these patients release to a business-line client.
    func consentedElements(_ db: any SQLConnection, scope: AccessScope, clientID: String, patients: [String], type: ResourceType) throws -> Set<String> {
        var out = Set<String>()
        let statement = try db.cachedStatement(sql: """
            SELECT elements FROM consent_grant
            WHERE client_id = ? AND purpose = ? AND tenant = ? AND patient_id = ? AND ended = '' AND expires > ? AND starts <= ?
            """)
        let now = self.timestamp()
        for p in patients {
            for elements in try String.fetchAll(statement, arguments: [clientID, scope.purpose.rawValue, scope.tenant, p, now, now]) {
                for e in elements.split(separator: ",") where e.hasPrefix(type.rawValue + ".") {
                    out.insert(String(e.dropFirst(type.rawValue.count + 1)))
                }
            }
        }
        return out
    }

    static func cipherContext(_ tenant: String, _ type: ResourceType, _ id: String, _ version: Int) -> String {
        "\(tenant)/\(type.rawValue)/\(id)/\(version)"
    }

    /// Whether any version of the resource exists at all, in any tenant. Returns no data; used only to tell a
    /// denial from a miss in the audit log.
    func exists(_ db: any SQLConnection, type: ResourceType, id: String) throws -> Bool {
        try Bool.fetchOne(
            db, sql: "SELECT EXISTS (SELECT 1 FROM resource_version WHERE type = ? AND id = ?)", arguments: [type.rawValue, id]) ?? false
    }

    // MARK: - Auditing

    func entry(
        _ ctx: AccessContext, action: String, attempted: String? = nil, type: ResourceType?, id: String?,
        patients: some Sequence<String>, outcome: String, result: AuditResult, detail: String? = nil, released: AuditEntry.Released? = nil
    ) -> AuditEntry {
        let p = ctx.scope.principal
        var e = AuditEntry(
            actor: .init(id: p.subject, role: p.auditRole, tenant: p.tenant, patient: p.patientID), action: action, attempted: attempted,
            resourceType: type?.rawValue, resourceID: id, patients: patients, outcome: outcome, result: result,
            purpose: p.purpose.rawValue, sourceIP: ctx.sourceIP, userAgent: ctx.userAgent, requestID: ctx.requestID,
            detail: detail ?? ctx.scope.systemReason)
        e.released = released
        return e
    }

    /// Awaits the durable commit of an audit entry. If the audit cannot be written, nothing is answered.
    func commitAudit(_ e: AuditEntry) async throws(FHIRError) {
        do {
            try await auditWriter.record(e)
        } catch is AuditRefusal {
            // The detector refused this read before its answer left: the actor is suspended from now on.
            throw .unauthorized("The access token has been suspended pending a security review; contact the pharmacy's privacy officer")
        } catch {
            logger.error("audit write failed; refusing to answer", metadata: ["request": "\(e.requestID)"])
            throw .unavailable("The audit log could not be written; the request was not answered")
        }
    }

    /// Records a refusal (403, or 404 for a resource that exists but is out of scope) and returns the error to throw.
    package func deny(
        _ ctx: AccessContext, interaction: String, type: ResourceType?, id: String?, error: FHIRError, detail: String? = nil
    ) async -> FHIRError {
        let e = entry(
            ctx, action: "denied", attempted: interaction, type: type, id: id, patients: [String](), outcome: "denied",
            result: AuditResult(error.kind), detail: detail)
        do { try await commitAudit(e) } catch { return error }
        return error
    }

    /// Records something that is not a resource interaction (login, logout, token, a refused request).
    package func recordEvent(_ entry: AuditEntry) async throws(FHIRError) {
        try await commitAudit(entry)
    }

    /// Runs a read on a pooled reader connection.
    ///
    /// Deliberately the synchronous `read`: libdispatch runs the block on the calling thread, where the async
    /// variant hops to the reader's queue and back. SafeRx reads are indexed lookups that take microseconds, so
    /// briefly occupying a cooperative thread costs less than two context switches per request (see BENCHMARKS.md).
    ///
    /// Invariant: the store never reads asynchronously (``SafeRxSQL/SQLDatabase`` offers no async read). On SQLite,
    /// mixing GRDB's synchronous and async reads deadlocked: async reads held every pooled
    /// reader while waiting for a cooperative thread, and every cooperative thread was blocked waiting for a
    /// reader. With synchronous reads only, a reader is held only by a thread that is running its (non-suspending)
    /// closure, so waiting for one always ends.
    func run<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) throws -> T) async throws(FHIRError) -> T {
        do {
            return try readOnCallingThread(body)
        } catch let e as FHIRError {
            throw e
        } catch {
            logger.error("database read failed", metadata: Self.failure(error))
            throw Self.storageError(error)
        }
    }

    /// What the caller is told of a failed statement: 503 when the database could not be reached (try again: a
    /// failover takes seconds), else an internal error.
    static func storageError(_ error: any Error) -> FHIRError {
        if let e = error as? any SQLEngineError, e.isUnavailable {
            return .unavailable("The database is not reachable at the moment (a restart or a failover); try again shortly (with the same Idempotency-Key for a create)")
        }
        return .internal()
    }

    /// What the log says of a failed statement: the error's type and, from the engine, what failed (never a value).
    static func failure(_ error: any Error) -> Logger.Metadata {
        var m: Logger.Metadata = ["error": "\(type(of: error))"]
        if let e = error as? any SQLEngineError { m["statement"] = "\(e.logDescription)" }
        return m
    }

    /// The engine's synchronous read, on the calling thread.
    func readOnCallingThread<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try dbPool.read(body)
    }

    func runWrite<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) throws -> T) async throws(FHIRError) -> T {
        do {
            return try await dbPool.write(body)
        } catch let e as FHIRError {
            throw e
        } catch is CancellationError {
            // A background job stopped while shutting down: its transaction was rolled back, nothing half-written.
            logger.notice("database write cancelled (the task was cancelled); nothing was written")
            throw .unavailable("The change was not written: SafeRx is shutting down")
        } catch {
            logger.error("database write failed", metadata: Self.failure(error))
            throw Self.storageError(error)
        }
    }

    package func requireRight(_ ctx: AccessContext, _ type: ResourceType, _ interaction: String, _ id: String?, _ allowed: Bool) async throws(FHIRError) {
        guard allowed else {
            let verb = ["read", "vread", "history", "search", "list", "count"].contains(interaction) ? "read" : interaction
            let err = FHIRError.forbidden(ctx.scope.refusal(verb, type))
            throw await deny(ctx, interaction: interaction, type: type, id: id, error: err)
        }
    }

    /// The 404 for a resource the caller cannot see, audited as a denial when it exists and as not-found when not.
    package func missing(_ ctx: AccessContext, _ interaction: String, _ type: ResourceType, _ id: String, version: String? = nil) async -> FHIRError {
        let err = FHIRError.notFound(type, id)
        let existed = (try? readOnCallingThread { db in try exists(db, type: type, id: id) }) ?? false
        if existed {
            return await deny(ctx, interaction: interaction, type: type, id: id, error: err)
        }
        let e = entry(ctx, action: interaction, type: type, id: id, patients: [String](), outcome: "not-found", result: .notFound)
        do { try await commitAudit(e) } catch { return error }
        return err
    }
}

// MARK: - Audit log maintenance (system jobs, no PHI beyond patient ids)

extension PharmacyStore {
    /// Verifies the whole audit chain, its signed checkpoints and the head file.
    package func verifyAudit() async throws -> AuditVerification {
        let key = auditPublicKey
        // The head file first, then the snapshot (see AuditVerifier.verify(_:publicKey:head:headFileExists:)).
        let head = SignedHead.read(from: headFile)
        let exists = FileManager.default.fileExists(atPath: headFile.path)
        return try readOnCallingThread { db in try AuditVerifier.verify(db, publicKey: key, head: head, headFileExists: exists) }
    }

    /// The privacy overview's verification: the whole chain once per process, then only the records appended since
    /// (between the signed checkpoints around them), so a page view never walks millions of records. `saferx audit
    /// verify` and backups still verify everything.
    package func verifyAuditIncrementally() async throws -> AuditVerification {
        let head = try readOnCallingThread { db in try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM audit_log") ?? 0 }
        if let last = lastVerification.withLock({ $0 }), last.result.ok {
            if head <= last.seq { return last.result }
            let segment = try await verifyAuditSegment(from: last.seq + 1, to: head)
            var result = segment
            if segment.ok { result.records = last.result.records + (head - last.seq) }
            lastVerification.withLock { $0 = segment.ok ? (head, result) : nil }
            return result
        }
        let full = try await verifyAudit()
        lastVerification.withLock { $0 = full.ok ? (head, full) : nil }
        return full
    }

    /// Verifies the records `from...to` between the signed checkpoints around them (an incident's window).
    package func verifyAuditSegment(from: Int64, to: Int64) async throws -> AuditVerification {
        let key = auditPublicKey
        let head = SignedHead.read(from: headFile)
        return try readOnCallingThread { db in try AuditVerifier.verifySegment(db, publicKey: key, head: head, from: from, to: to) }
    }

    /// The audit records written at or after `time` (ISO timestamp), in sequence order, through the time index.
    package func auditRecords(since time: String) async throws -> [AuditRecord] {
        let cipher = auditLog.cipher
        return try readOnCallingThread { db in
            try SQLRow.fetchAll(db, sql: "SELECT body, hash FROM audit_log WHERE time >= ? ORDER BY seq", arguments: [time]).compactMap {
                AuditRecord.decode(body: $0[0], hash: $0[1], cipher: cipher)
            }
        }
    }

    /// Every audit record in sequence order (for export).
    package func auditRecords() async throws -> [AuditRecord] {
        let cipher = auditLog.cipher
        return try readOnCallingThread { db in
            try SQLRow.fetchAll(db, sql: "SELECT body, hash FROM audit_log ORDER BY seq").compactMap {
                AuditRecord.decode(body: $0[0], hash: $0[1], cipher: cipher)
            }
        }
    }
}

extension PharmacyStore {
    /// Records an operator's command-line action and signs the audit head at once, so that a store changed while
    /// the server is stopped still ends on a signed checkpoint.
    package func recordAdminEvent(
        action: String, tenant: String, patients: some Sequence<String> = [String](), detail: String
    ) async throws(FHIRError) {
        try await commitAudit(
            AuditEntry(
                actor: .init(id: "operator:\(AccessContext.operatorLogin)", role: "system", tenant: tenant), action: action, patients: patients,
                outcome: "success", result: .done, purpose: "SYSADMIN", sourceIP: "local", userAgent: "saferx cli",
                requestID: UUID().uuidString.lowercased(), detail: detail))
        await auditWriter.checkpoint()
    }
}
