import Crypto
import Foundation
import SafeRxSQL
import SafeRxPostgres
import SafeRxSQLite
import SafeRxAudit
import SafeRxModel
import SafeRxStoreCore
import SafeRxVault

/// Encrypted, integrity-protected backups of a store.
///
/// A backup is a consistent online snapshot of the database, taken while the server keeps serving, as a SQLite
/// database image (on SQLite, SQLite's backup API; on PostgreSQL, every table read in one snapshot and written into a
/// new SQLite file of the same schema), plus the signed audit head, encrypted with a fresh backup key that is wrapped
/// by the master key. The format is the same whatever the engine, so a backup of either restores on either.
///
/// File layout: `SAFERX-BACKUP-1\n`, a 4-byte big-endian header length, the header (JSON: id, creation time, master
/// key id, wrapped backup key, chunk count, size, signed audit head), then the chunks, each a 4-byte length and an
/// AES-256-GCM ciphertext of up to 1 MiB. Each chunk's associated data binds it to the header's hash, its index and
/// whether it is the last, so an edited header, a reordered, altered or missing chunk, and a truncated file are
/// all detected.
package enum Backup {
    static let magic = Data("SAFERX-BACKUP-1\n".utf8)
    static let chunkSize = 1 << 20

    struct Header: Codable {
        var id: String
        var created: String
        var masterKeyID: String
        var wrappedKey: String
        var chunks: Int
        var bytes: Int
        var auditHead: String?
    }

    /// Writes an encrypted snapshot of `store` to `file` (mode 0600). The audit log is checkpointed first, so the
    /// snapshot ends on a signed head.
    package static func create(_ store: PharmacyStore, to file: URL) async throws -> (bytes: Int, chunks: Int) {
        let fm = FileManager.default
        try await store.recordAdminEvent(action: "backup", tenant: "*", detail: "backup created")
        let snapshot = store.dataDirectory.appendingPathComponent(".backup-\(UUID().uuidString).sqlite")
        defer { try? fm.removeItem(at: snapshot) }
        if let sqlite = store.dbPool as? SQLiteDatabase {
            try sqlite.backup(to: snapshot)
        } else {
            try copySnapshot(of: store.dbPool, to: snapshot)
        }
        let head = try? String(contentsOf: store.headFile, encoding: .utf8)
        guard let plain = fm.contents(atPath: snapshot.path) else { throw BackupError.unusable("could not read the snapshot") }
        let key = Envelope.newKey()
        let id = UUID().uuidString.lowercased()
        let provider = store.keys.provider
        let chunks = max(1, (plain.count + chunkSize - 1) / chunkSize)
        let wrapped = try provider.wrap(key, context: "backup/\(id)")
        // Prove now that the header's key opens, rather than at restore time.
        _ = try provider.unwrap(wrapped.data, keyID: wrapped.masterKeyID, context: "backup/\(id)")
        let header = Header(
            id: id, created: AuditLog.timestamp(store.clock.now), masterKeyID: wrapped.masterKeyID,
            wrappedKey: wrapped.data.base64EncodedString(), chunks: chunks, bytes: plain.count, auditHead: head)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let headerBytes = try encoder.encode(header)
        let headerHash = Data(SHA256.hash(data: headerBytes))
        var out = magic
        out.append(uint32(headerBytes.count))
        out.append(headerBytes)
        for i in 0..<chunks {
            let part = plain[plain.startIndex + i * chunkSize..<plain.startIndex + min(plain.count, (i + 1) * chunkSize)]
            let sealed = Envelope.seal(part, key: key, keyVersion: 0, context: chunkContext(headerHash, i, last: i == chunks - 1))
            out.append(uint32(sealed.count))
            out.append(sealed)
        }
        let tmp = file.path + ".partial"
        guard fm.createFile(atPath: tmp, contents: out, attributes: [.posixPermissions: 0o600]) else {
            throw BackupError.unusable("cannot write \(tmp)")
        }
        if fm.fileExists(atPath: file.path) { try fm.removeItem(at: file) }
        try fm.moveItem(atPath: tmp, toPath: file.path)
        return (out.count, chunks)
    }

    /// Decrypts a backup file and checks every chunk. Returns the database image and the audit head.
    static func open(_ file: URL, keyProvider: any KeyProvider) throws -> (Header, Data) {
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw BackupError.unusable("cannot read \(file.path)")
        }
        guard data.count >= magic.count, data.prefix(magic.count) == magic else {
            throw data.count < magic.count && magic.starts(with: data)
                ? BackupError.truncated("\(file.path) ends inside its signature") : BackupError.notABackup("\(file.path) does not start with the SafeRx backup signature")
        }
        var offset = magic.count
        func take(_ n: Int, _ what: String) throws -> Data {
            guard n >= 0, data.count - offset >= n else { throw BackupError.truncated("\(file.path) ends inside \(what)") }
            defer { offset += n }
            return data.subdata(in: data.startIndex + offset..<data.startIndex + offset + n)
        }
        let headerLength = Int(readUInt32(try take(4, "the header length")))
        guard headerLength < 1 << 20 else { throw BackupError.corrupted("header length \(headerLength) is implausible") }
        let headerBytes = try take(headerLength, "the header")
        guard let header = try? JSONDecoder().decode(Header.self, from: headerBytes), let wrapped = Data(base64Encoded: header.wrappedKey)
        else { throw BackupError.corrupted("the header does not decode") }
        let key: SymmetricKey
        do {
            key = try keyProvider.unwrap(wrapped, keyID: header.masterKeyID, context: "backup/\(header.id)")
        } catch {
            if case .wrongMasterKey = error { throw error }
            throw BackupError.corrupted("the backup key does not unwrap with master key \(header.masterKeyID): \(error)")
        }
        // The header is authenticated only by the chunks that follow; check its numbers before trusting them.
        let remaining = data.count - offset
        guard header.chunks >= 1, header.chunks <= max(1, remaining / (4 + Envelope.overhead)),
            header.bytes >= 0, header.bytes <= header.chunks * chunkSize
        else {
            throw BackupError.corrupted("the header's chunk count (\(header.chunks)) or size (\(header.bytes)) does not fit the file")
        }
        let headerHash = Data(SHA256.hash(data: headerBytes))
        var plain = Data(capacity: header.bytes)
        for i in 0..<header.chunks {
            guard data.count - offset >= 4 else {
                throw BackupError.truncated("\(file.path) ends after \(i) of \(header.chunks) chunks")
            }
            let length = Int(readUInt32(try take(4, "chunk \(i + 1)")))
            guard data.count - offset >= length else {
                throw BackupError.truncated("\(file.path) ends inside chunk \(i + 1) of \(header.chunks)")
            }
            let sealed = try take(length, "chunk \(i + 1)")
            do {
                plain.append(try Envelope.open(
                    sealed, key: key, context: chunkContext(headerHash, i, last: i == header.chunks - 1), what: "chunk \(i + 1)"))
            } catch {
                throw BackupError.corrupted("chunk \(i + 1) of \(header.chunks) failed authentication (altered, reordered or from another backup)")
            }
        }
        guard offset == data.count else { throw BackupError.corrupted("\(data.count - offset) unexpected bytes after the last chunk") }
        guard plain.count == header.bytes else { throw BackupError.corrupted("size \(plain.count) differs from the header's \(header.bytes)") }
        return (header, plain)
    }

    /// Decrypts and checks a backup without touching any store: every chunk, SQLite's integrity check, the audit
    /// chain and its signatures, and every ciphertext inside it under its key.
    package static func verify(_ file: URL, keyProvider: any KeyProvider) async throws -> BackupSummary {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("saferx-verify-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        return try await restore(file, to: dir, keyProvider: keyProvider)
    }

    /// Restores a backup into `dataDirectory`, which must not hold a store yet, then checks it like ``verify``.
    /// Nothing is left in `dataDirectory` if any check fails.
    package static func restore(_ file: URL, to dataDirectory: URL, keyProvider: any KeyProvider) async throws -> BackupSummary {
        let fm = FileManager.default
        if fm.fileExists(atPath: PharmacyStore.databaseFile(in: dataDirectory).path) {
            throw BackupError.unusable("\(dataDirectory.path) already holds a store; restore into a new directory")
        }
        let (header, image) = try open(file, keyProvider: keyProvider)
        let staging = dataDirectory.appendingPathComponent(".restore-\(UUID().uuidString)")
        try fm.createDirectory(at: staging, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try? fm.setAttributes([.posixPermissions: 0o700], ofItemAtPath: dataDirectory.path)
        // Emptied by the final move on success; removed with whatever it holds on failure.
        defer { try? fm.removeItem(at: staging) }
        guard fm.createFile(atPath: PharmacyStore.databaseFile(in: staging).path, contents: image, attributes: [.posixPermissions: 0o600]) else {
            throw BackupError.unusable("cannot write into \(dataDirectory.path)")
        }
        if let head = header.auditHead {
            _ = fm.createFile(atPath: staging.appendingPathComponent("audit-head.json").path, contents: Data(head.utf8), attributes: [.posixPermissions: 0o600])
        }
        let integrity = try integrityCheck(PharmacyStore.databaseFile(in: staging))
        guard integrity == ["ok"] else { throw BackupError.corrupted("SQLite integrity check: \(integrity.prefix(3).joined(separator: "; "))") }
        let summary: BackupSummary
        do {
            let store = try PharmacyStore(dataDirectory: staging, keyProvider: keyProvider)
            let audit = try await store.verifyAudit()
            guard audit.ok else {
                throw BackupError.corrupted("audit chain fails at sequence \(audit.firstBad ?? 0): \(audit.reason ?? "")")
            }
            let (resources, failures) = try await store.verifyCiphertexts()
            guard failures.isEmpty else {
                throw BackupError.corrupted("\(failures.count) ciphertexts do not open, first: \(failures[0])")
            }
            let patients = try store.readOnCallingThread { db in
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM resource_version WHERE type = 'Patient' AND current = 1 AND deleted = 0") ?? 0
            }
            try store.dbPool.close()
            summary = BackupSummary(
                created: header.created, masterKeyID: header.masterKeyID, bytes: header.bytes, resources: resources, patients: patients,
                auditRecords: audit.records, checkpoints: audit.checkpoints)
        }
        for name in try fm.contentsOfDirectory(atPath: staging.path) {
            try fm.moveItem(at: staging.appendingPathComponent(name), to: dataDirectory.appendingPathComponent(name))
        }
        return summary
    }

    /// Writes every table of `source` (read in one snapshot) into a new SQLite store at `file` with the same schema.
    ///
    /// - throws: the engines' errors; `file` may then be partly written (the caller removes it).
    static func copySnapshot(of source: any SQLDatabase, to file: URL) throws {
        let target = try SQLiteDatabase(path: file.path)
        defer { try? target.close() }
        try Schema.migrator.migrate(target)
        try copyTables(from: source, to: target, tables: tables(of: target))
        // The backup reads the file's bytes: what the copy committed must be in the file, not only in its WAL.
        try target.checkpointIntoFile()
    }

    /// The tables of a SQLite store and their columns, in order (the backup format's tables).
    static func tables(of sqlite: SQLiteDatabase) throws -> [(name: String, columns: [String])] {
        try sqlite.read { db in
            try String.fetchAll(
                db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> ? ORDER BY name",
                arguments: [SQLMigrator.table]
            ).map { table in (table, try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?) ORDER BY cid", arguments: [table])) }
        }
    }

    /// Copies `tables` from `source` (one snapshot) into `target` (one transaction), replacing what a migration wrote.
    /// On PostgreSQL, identity columns then continue after the highest copied value.
    ///
    /// - throws: the engines' errors; nothing is copied then.
    static func copyTables(from source: any SQLDatabase, to target: any SQLDatabase, tables: [(name: String, columns: [String])]) throws {
        try source.read { from in
            try target.write { to in
                for (table, columns) in tables {
                    // Rows a migration itself wrote are replaced by the source's (none are in the append-only log).
                    if table != "audit_log" { try to.execute(sql: "DELETE FROM \(table)") }
                    let list = columns.joined(separator: ", ")
                    let insert = "INSERT INTO \(table) (\(list)) VALUES (\(columns.map { _ in "?" }.joined(separator: ", ")))"
                    // Judgements are read back in the order they were recorded.
                    let order = table == "incident_judgement" ? " ORDER BY rowid" : ""
                    let rows = try SQLRow.fetchCursor(from, sql: "SELECT \(list) FROM \(table)\(order)")
                    while let row = try rows.next() {
                        try to.execute(sql: insert, arguments: SQLArguments(values: row.values))
                    }
                }
                if to.dialect == .postgres {
                    let identities = try SQLRow.fetchAll(
                        to, sql: """
                            SELECT table_name, column_name FROM information_schema.columns
                            WHERE table_schema = current_schema() AND is_identity = 'YES' AND identity_generation = 'BY DEFAULT'
                            """)
                    for row in identities {
                        let table: String = row[0], column: String = row[1]
                        try to.execute(
                            sql: "SELECT setval(pg_get_serial_sequence(?, ?), COALESCE((SELECT MAX(\(column)) FROM \(table)), 0) + 1, false)",
                            arguments: [table, column])
                    }
                }
            }
        }
    }

    /// Restores a backup into the PostgreSQL database `database`, which must not hold a store yet: the backup is
    /// restored and checked in a private directory first (``restore(_:to:keyProvider:)``), then every table is copied
    /// into the database in one transaction; `dataDirectory` receives the signed audit head.
    package static func restore(_ file: URL, to dataDirectory: URL, database: String, keyProvider: any KeyProvider) async throws -> BackupSummary {
        let fm = FileManager.default
        let staging = fm.temporaryDirectory.appendingPathComponent("saferx-restore-\(UUID().uuidString)")
        defer { try? fm.removeItem(at: staging) }
        let engine = try PostgreSQLDatabase(url: database)
        defer { try? engine.close() }
        guard try PharmacyStore.sealedWith(engine) == nil else {
            throw BackupError.unusable("\(engine.location) already holds a store; restore into a new database")
        }
        let summary = try await restore(file, to: staging, keyProvider: keyProvider)
        try Schema.migrator(for: .postgres).migrate(engine)
        let source = try SQLiteDatabase(path: PharmacyStore.databaseFile(in: staging).path)
        defer { try? source.close() }
        try copyTables(from: source, to: engine, tables: tables(of: source))
        try fm.createDirectory(at: dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let head = staging.appendingPathComponent("audit-head.json")
        if fm.fileExists(atPath: head.path) {
            let target = dataDirectory.appendingPathComponent("audit-head.json")
            try? fm.removeItem(at: target)
            try fm.copyItem(at: head, to: target)
        }
        return summary
    }

    static func integrityCheck(_ file: URL) throws -> [String] {
        try SQLiteDatabase.integrityCheck(path: file.path)
    }

    static func chunkContext(_ headerHash: Data, _ index: Int, last: Bool) -> String {
        "saferx-backup|\(headerHash.base64EncodedString())|\(index)|\(last ? "last" : "more")"
    }

    static func uint32(_ n: Int) -> Data {
        withUnsafeBytes(of: UInt32(n).bigEndian) { Data($0) }
    }

    static func readUInt32(_ d: Data) -> UInt32 {
        d.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }
}
