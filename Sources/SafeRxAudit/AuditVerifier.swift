import Crypto
import Foundation
import GRDB

/// The outcome of ``AuditVerifier/verify(_:publicKey:headFile:)``.
public struct AuditVerification: Sendable, Equatable {
    public var records: Int64
    public var checkpoints: Int
    /// The first bad sequence number, `nil` when the log verifies.
    public var firstBad: Int64?
    public var reason: String?

    public var ok: Bool { firstBad == nil }
}

/// Walks the whole chain: every hash, every link, every checkpoint signature, and the head kept outside the table.
/// Detects an edited, deleted, inserted, reordered or truncated record.
public enum AuditVerifier {
    public static func verify(
        _ db: Database, publicKey: Curve25519.Signing.PublicKey, headFile: URL
    ) throws -> AuditVerification {
        try verify(db, publicKey: publicKey, head: SignedHead.read(from: headFile), headFileExists: FileManager.default.fileExists(atPath: headFile.path))
    }

    /// Verifies against a head file read *before* `db`'s read transaction began. A live server writes the file after
    /// each checkpoint commits, so a file read first never covers records the snapshot cannot see (reading it
    /// afterwards would report a concurrent checkpoint as truncation).
    public static func verify(
        _ db: Database, publicKey: Curve25519.Signing.PublicKey, head signedHead: SignedHead?, headFileExists: Bool
    ) throws -> AuditVerification {
        var result = AuditVerification(records: 0, checkpoints: 0, firstBad: nil, reason: nil)
        func bad(_ seq: Int64, _ why: String) -> AuditVerification {
            result.firstBad = seq
            result.reason = why
            return result
        }
        var expected: Int64 = 1
        var prev = AuditLog.genesisHash
        var hashes: [Int64: String] = [:]
        let rows = try Row.fetchCursor(db, sql: "SELECT seq, tenant, time, body, hash FROM audit_log ORDER BY seq")
        while let row = try rows.next() {
            let seq: Int64 = row[0]
            let tenant: String = row[1]
            let time: String = row[2]
            let body: String = row[3]
            let hash: String = row[4]
            if seq != expected {
                return bad(expected, seq > expected ? "record \(expected) is missing (next is \(seq))" : "unexpected sequence \(seq)")
            }
            guard let record = AuditRecord.decode(body: body, cipher: nil) else { return bad(seq, "record body does not decode") }
            guard record.seq == seq else { return bad(seq, "record body claims sequence \(record.seq): moved or reordered") }
            guard record.prevHash == prev else { return bad(seq, "previous-hash link broken: a record before it was changed, inserted or removed") }
            guard AuditLog.hash(prev: prev, body: body) == hash else { return bad(seq, "hash mismatch: record was edited") }
            guard record.entry.actor.tenant == tenant, record.time == time else {
                return bad(seq, "indexed columns differ from the hashed record: record was edited")
            }
            hashes[seq] = hash
            prev = hash
            expected += 1
            result.records += 1
        }
        let last = expected - 1
        func signed(_ seq: Int64, _ hash: String, _ time: String, _ sig: String) -> Bool {
            guard let s = Data(base64Encoded: sig) else { return false }
            return publicKey.isValidSignature(s, for: Data(AuditLog.checkpointMessage(seq: seq, hash: hash, time: time).utf8))
        }
        for row in try Row.fetchAll(db, sql: "SELECT seq, hash, time, signature FROM audit_checkpoint ORDER BY seq") {
            let seq: Int64 = row[0]
            let hash: String = row[1]
            guard signed(seq, hash, row[2], row[3]) else { return bad(seq, "checkpoint at \(seq) has an invalid signature") }
            guard seq <= last else { return bad(last + 1, "log truncated: checkpoint covers \(seq) but the log ends at \(last)") }
            guard hashes[seq] == hash else { return bad(seq, "record differs from the signed checkpoint") }
            result.checkpoints += 1
        }
        if let head = signedHead {
            guard signed(head.seq, head.hash, head.time, head.signature) else {
                return bad(head.seq, "audit-head.json has an invalid signature")
            }
            guard head.seq <= last else {
                return bad(last + 1, "log truncated: the signed head covers \(head.seq) but the log ends at \(last)")
            }
            guard hashes[head.seq] == head.hash else { return bad(head.seq, "record differs from the signed head") }
        } else if headFileExists {
            return bad(0, "audit-head.json is unreadable")
        } else if result.checkpoints > 0 {
            return bad(last + 1, "audit-head.json is missing although checkpoints exist")
        }
        return result
    }
}
