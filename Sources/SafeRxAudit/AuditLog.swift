import Crypto
import Foundation
import SafeRxSQL
import Logging
import SafeRxModel
import SafeRxVault
import Synchronization

/// Sees every record as it is appended, inside the appending transaction (the exfiltration detector).
public protocol AuditObserver: Sendable {
    /// Called with the records about to be stored. The observer may turn records into refusals (only when
    /// `blockable`: their answers have not been sent), must call `insert` exactly once with the final records, and may
    /// then write its own rows in `db`. Returns the indexes of the records it refused.
    func observe(
        _ records: [AuditRecord], blockable: Bool, in db: any SQLConnection, insert: ([AuditRecord]) throws -> Void
    ) throws -> Set<Int>
}

/// An appended request's record was turned into a refusal by the observer: the request must not be answered.
public struct AuditRefusal: Error, Sendable {
    public var reason: String
    public init(reason: String) { self.reason = reason }
}

/// The append-only, hash-chained audit log, with signed checkpoints.
///
/// Each record's hash is SHA-256 over the previous record's hash, a newline and the record's canonical body.
/// Checkpoints sign `(seq, hash, time)` with an Ed25519 key kept in the key store, at least every
/// ``checkpointEvery`` records (inside the appending transaction) and every ``checkpointInterval`` seconds; the latest
/// is also written to `audit-head.json` beside the database, so that truncating the tail of the table (and its
/// checkpoints) is detected by ``AuditVerifier``.
public final class AuditLog: Sendable {
    public static let genesisHash = String(repeating: "0", count: 64)
    public static let checkpointEvery: Int64 = 1000
    public static let checkpointInterval: Duration = .seconds(10)

    let signingKey: Curve25519.Signing.PrivateKey
    public let cipher: AuditFieldCipher?
    let headFile: URL
    let observer = Mutex<(any AuditObserver)?>(nil)
    /// The time records are stamped with (a test clock can stand in for a day's work).
    public let clock: @Sendable () -> Date

    /// The key that verifies this log's checkpoints.
    public var publicKey: Curve25519.Signing.PublicKey { signingKey.publicKey }

    /// - Parameter cipher: seals the PHI-bearing fields of each record; `nil` stores them in clear (tests only).
    public init(
        signingKey: Curve25519.Signing.PrivateKey, cipher: AuditFieldCipher?, headFile: URL, clock: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.signingKey = signingKey
        self.cipher = cipher
        self.headFile = headFile
        self.clock = clock
    }

    /// Installs the observer every later append goes through (`nil` removes it).
    public func setObserver(_ o: (any AuditObserver)?) { observer.withLock { $0 = o } }

    /// Creates the audit tables. Updates and deletes are refused by triggers (verification catches the rest).
    public static func migrate(_ db: any SQLConnection) throws {
        try db.execute(sql: """
            CREATE TABLE IF NOT EXISTS audit_log (
                seq INTEGER PRIMARY KEY,
                tenant TEXT NOT NULL,
                time TEXT NOT NULL,
                body TEXT NOT NULL,
                hash TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS audit_patient (
                patient_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                PRIMARY KEY (patient_id, seq)
            ) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS audit_checkpoint (
                seq INTEGER PRIMARY KEY,
                hash TEXT NOT NULL,
                time TEXT NOT NULL,
                signature TEXT NOT NULL
            );
            CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
                BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
            CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
                BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
            """)
    }

    /// Appends entries inside the caller's write transaction; returns their sequence numbers.
    @discardableResult
    public func append(_ entries: [AuditEntry], in db: any SQLConnection, now: Date? = nil) throws -> [Int64] {
        try append(entries, in: db, now: now, blockable: false, observe: true).seqs
    }

    /// Appends entries; with `blockable` (answers not yet sent) the observer may refuse some, whose indexes are
    /// returned. `observe: false` is for the observer's own records (alerts, suspensions).
    public func append(
        _ entries: [AuditEntry], in db: any SQLConnection, now: Date? = nil, blockable: Bool, observe: Bool = true
    ) throws -> (seqs: [Int64], refused: Set<Int>) {
        guard !entries.isEmpty else { return ([], []) }
        let (head, headHash) = try Self.head(db)
        let time = Self.timestamp(now ?? clock())
        let records = entries.enumerated().map { i, e in AuditRecord(seq: head + Int64(i) + 1, time: time, entry: e, prevHash: "") }
        let seqs = records.map(\.seq)
        if observe, let o = observer.withLock({ $0 }) {
            var inserted = false
            let refused = try o.observe(records, blockable: blockable, in: db) { final in
                precondition(!inserted && final.count == records.count, "an audit observer must insert the records once, all of them")
                inserted = true
                try insert(final, in: db, after: (head, headHash))
            }
            precondition(inserted, "an audit observer must insert the records")
            return (seqs, refused)
        }
        try insert(records, in: db, after: (head, headHash))
        return (seqs, [])
    }

    /// Chains and stores records whose seq and time are set (the next seqs after `head`).
    func insert(_ records: [AuditRecord], in db: any SQLConnection, after head: (Int64, String)) throws {
        var (seq, prev) = head
        let insert = try db.cachedStatement(sql: "INSERT INTO audit_log (seq, tenant, time, body, hash) VALUES (?, ?, ?, ?, ?)")
        let insertPatient = try db.cachedStatement(sql: "INSERT OR IGNORE INTO audit_patient (patient_id, seq) VALUES (?, ?)")
        var time = ""
        for var record in records {
            seq += 1
            precondition(record.seq == seq, "audit records must be appended in sequence")
            record.prevHash = prev
            let body = record.canonicalBody(cipher: cipher)
            let hash = Self.hash(prev: prev, body: body)
            try insert.execute(arguments: [seq, record.entry.actor.tenant, record.time, body, hash])
            for p in record.entry.patients { try insertPatient.execute(arguments: [p, seq]) }
            prev = hash
            time = record.time
        }
        let last = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM audit_checkpoint") ?? 0
        if seq - last >= Self.checkpointEvery { try writeCheckpoint(db, seq: seq, hash: prev, time: time) }
    }

    /// Signs the current head if records were added since the last checkpoint. Returns the checkpointed seq.
    @discardableResult
    public func checkpoint(_ db: any SQLConnection, now: Date? = nil) throws -> Int64? {
        let (seq, hash) = try Self.head(db)
        guard seq > 0 else { return nil }
        let last = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM audit_checkpoint") ?? 0
        guard seq > last else { return nil }
        try writeCheckpoint(db, seq: seq, hash: hash, time: Self.timestamp(now ?? clock()))
        return seq
    }

    func writeCheckpoint(_ db: any SQLConnection, seq: Int64, hash: String, time: String) throws {
        let signature = try signingKey.signature(for: Data(Self.checkpointMessage(seq: seq, hash: hash, time: time).utf8))
        let sig = signature.base64EncodedString()
        try db.execute(
            sql: "INSERT INTO audit_checkpoint (seq, hash, time, signature) VALUES (?, ?, ?, ?) ON CONFLICT (seq) DO UPDATE SET hash = excluded.hash, time = excluded.time, signature = excluded.signature",
            arguments: [seq, hash, time, sig])
        let head = SignedHead(seq: seq, hash: hash, time: time, signature: sig)
        // Written only once the checkpoint is committed, so the file never runs ahead of the table; never moved back
        // (several servers on one database may share a data directory, and their commits finish in any order).
        db.afterCommit({ [headFile] in
            if let kept = SignedHead.read(from: headFile), kept.seq >= head.seq { return }
            try? head.write(to: headFile)
        })
    }

    /// Writes the database's newest signed checkpoint into a head file that does not exist yet: a data directory
    /// new to a shared database (a second SafeRx server, a CLI run on another machine) starts from what the
    /// database holds, trusted on first use, and from then on detects a log cut below it. A checkpoint whose
    /// signature does not verify is not adopted. Never used with SQLite, whose head file lives beside the database
    /// file: there a missing head with checkpoints present is what `audit verify` must report.
    /// - parameter db: a connection to the database.
    /// - returns: the adopted checkpoint's sequence number, or nil if there was none (or the file exists).
    /// - throws: what reading the database throws.
    @discardableResult
    public func adoptNewestCheckpoint(_ db: any SQLConnection) throws -> Int64? {
        guard !FileManager.default.fileExists(atPath: headFile.path),
            let row = try SQLRow.fetchOne(db, sql: "SELECT seq, hash, time, signature FROM audit_checkpoint ORDER BY seq DESC LIMIT 1")
        else { return nil }
        let head = SignedHead(seq: row[0], hash: row[1], time: row[2], signature: row[3])
        guard AuditVerifier.isSigned(head.seq, head.hash, head.time, head.signature, by: publicKey) else { return nil }
        try head.write(to: headFile)
        return head.seq
    }

    static func checkpointMessage(seq: Int64, hash: String, time: String) -> String { "saferx-audit|\(seq)|\(hash)|\(time)" }

    /// The last sequence number and hash (0 and the genesis hash for an empty log).
    public static func head(_ db: any SQLConnection) throws -> (Int64, String) {
        if let row = try SQLRow.fetchOne(db, sql: "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1") {
            return (row[0], row[1])
        }
        return (0, genesisHash)
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func hash(prev: String, body: String) -> String {
        var h = SHA256()
        h.update(data: Data(prev.utf8))
        h.update(data: Data([0x0A]))
        h.update(data: Data(body.utf8))
        return hex(h.finalize())
    }

    /// `YYYY-MM-DDThh:mm:ss.sssZ` (UTC, milliseconds): ``Instant/string(_:)``.
    public static func timestamp(_ d: Date) -> String { Instant.string(d) }
}

/// The latest checkpoint, also kept outside the database.
public struct SignedHead: Codable, Sendable, Equatable {
    public var seq: Int64
    public var hash: String
    public var time: String
    public var signature: String

    func write(to url: URL) throws {
        try JSONEncoder().encode(self).write(to: url, options: .atomic)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: url.path)
    }

    public static func read(from url: URL) -> SignedHead? {
        guard let d = try? Data(contentsOf: url) else { return nil }
        return try? JSONDecoder().decode(SignedHead.self, from: d)
    }
}
