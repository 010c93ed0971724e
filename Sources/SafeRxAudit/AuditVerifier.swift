import Crypto
import Foundation
import SafeRxSQL

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
    /// One record against its row and the previous hash; `nil` when it holds.
    static func check(seq: Int64, tenant: String, time: String, body: String, hash: String, prev: String) -> String? {
        guard let f = Self.fields(body) ?? AuditRecord.decode(body: body, cipher: nil).map({ ($0.seq, $0.prevHash, $0.time, $0.entry.actor.tenant) }) else {
            return "record body does not decode"
        }
        guard f.seq == seq else { return "record body claims sequence \(f.seq): moved or reordered" }
        guard f.prev == prev else { return "previous-hash link broken: a record before it was changed, inserted or removed" }
        guard AuditLog.hash(prev: prev, body: body) == hash else { return "hash mismatch: record was edited" }
        guard f.tenant == tenant, f.time == time else { return "indexed columns differ from the hashed record: record was edited" }
        return nil
    }

    /// The fields verification needs, read from the canonical body without a JSON parse: keys are sorted, so
    /// `prevHash`, `seq` and `time` are the body's last top-level members, and the first `"tenant":` is the actor's
    /// (an unescaped quote cannot occur inside a string value). `nil` if the body does not have that shape (then
    /// the full decoder decides). The hash over the whole body is checked either way.
    static func fields(_ body: String) -> (seq: Int64, prev: String, time: String, tenant: String)? {
        let b = Array(body.utf8)
        func find(_ pattern: StaticString, from: Int = 0, last: Bool = false) -> Int? {
            let n = pattern.utf8CodeUnitCount
            guard b.count >= n, from <= b.count - n else { return nil }
            return pattern.withUTF8Buffer { p -> Int? in
                var i = last ? b.count - n : from
                while last ? i >= from : i <= b.count - n {
                    if b[i] == p[0] {
                        var j = 1
                        while j < n, b[i + j] == p[j] { j += 1 }
                        if j == n { return i + n }
                    }
                    i += last ? -1 : 1
                }
                return nil
            }
        }
        func string(at i: Int) -> String? {
            var j = i
            while j < b.count, b[j] != 0x22 {
                if b[j] == 0x5C { return nil }  // escapes: let the full decoder handle it
                j += 1
            }
            return j < b.count ? String(decoding: b[i..<j], as: UTF8.self) : nil
        }
        guard let p = find("\"prevHash\":\"", last: true), let prev = string(at: p),
            let sIdx = find("\"seq\":", from: p, last: false), let tIdx = find("\"time\":\"", from: sIdx), let time = string(at: tIdx),
            let tenIdx = find("\"tenant\":\""), let tenant = string(at: tenIdx)
        else { return nil }
        var seq: Int64 = 0
        var k = sIdx
        while k < b.count, b[k] >= 0x30, b[k] <= 0x39 {
            seq = seq * 10 + Int64(b[k] - 0x30)
            k += 1
        }
        guard k > sIdx, k < b.count, b[k] == 0x2C else { return nil }
        return (seq, prev, time, tenant)
    }

    /// Whether `signature` is the audit key's signature of the checkpoint (or head) `seq`, `hash`, `time`.
    static func isSigned(_ seq: Int64, _ hash: String, _ time: String, _ signature: String, by publicKey: Curve25519.Signing.PublicKey) -> Bool {
        guard let s = Data(base64Encoded: signature) else { return false }
        return publicKey.isValidSignature(s, for: Data(AuditLog.checkpointMessage(seq: seq, hash: hash, time: time).utf8))
    }

    /// Verifies only the records `from...to` (an incident's window), anchored on the signed checkpoints around them:
    /// the chain is recomputed from the last checkpoint before `from` (its signed hash is the starting link) to the
    /// first checkpoint at or after `to` (whose signed hash it must reach), checking every checkpoint in between. A
    /// record edited, removed or inserted in that stretch is found exactly as by ``verify(_:publicKey:head:headFileExists:)``;
    /// records outside it are not read. Past the last checkpoint the signed head file must match where it applies.
    public static func verifySegment(
        _ db: any SQLConnection, publicKey: Curve25519.Signing.PublicKey, head signedHead: SignedHead?, from: Int64, to: Int64
    ) throws -> AuditVerification {
        var result = AuditVerification(records: 0, checkpoints: 0, firstBad: nil, reason: nil)
        func bad(_ seq: Int64, _ why: String) -> AuditVerification {
            result.firstBad = seq
            result.reason = why
            return result
        }
        func signed(_ seq: Int64, _ hash: String, _ time: String, _ sig: String) -> Bool { isSigned(seq, hash, time, sig, by: publicKey) }
        var expected: Int64 = 1
        var prev = AuditLog.genesisHash
        if let cp = try SQLRow.fetchOne(db, sql: "SELECT seq, hash, time, signature FROM audit_checkpoint WHERE seq < ? ORDER BY seq DESC LIMIT 1", arguments: [from]) {
            let seq: Int64 = cp[0]
            guard signed(seq, cp[1], cp[2], cp[3]) else { return bad(seq, "checkpoint at \(seq) has an invalid signature") }
            guard try String.fetchOne(db, sql: "SELECT hash FROM audit_log WHERE seq = ?", arguments: [seq]) == (cp[1] as String) else {
                return bad(seq, "record differs from the signed checkpoint")
            }
            expected = seq + 1
            prev = cp[1]
            result.checkpoints += 1
        }
        let closing = try SQLRow.fetchOne(db, sql: "SELECT seq, hash, time, signature FROM audit_checkpoint WHERE seq >= ? ORDER BY seq LIMIT 1", arguments: [to])
        let lastSeq = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM audit_log") ?? 0
        let end: Int64 = closing.map { $0[0] } ?? lastSeq
        let checkpoints = Dictionary(
            uniqueKeysWithValues: try SQLRow.fetchAll(
                db, sql: "SELECT seq, hash, time, signature FROM audit_checkpoint WHERE seq >= ? AND seq <= ?", arguments: [expected, end]
            ).map { ($0[0] as Int64, $0) })
        let rows = try SQLRow.fetchCursor(
            db, sql: "SELECT seq, tenant, time, body, hash FROM audit_log WHERE seq >= ? AND seq <= ? ORDER BY seq", arguments: [expected, end])
        while let row = try rows.next() {
            let seq: Int64 = row[0]
            if seq != expected {
                return bad(expected, seq > expected ? "record \(expected) is missing (next is \(seq))" : "unexpected sequence \(seq)")
            }
            let hash: String = row[4]
            if let problem = check(seq: seq, tenant: row[1], time: row[2], body: row[3], hash: hash, prev: prev) { return bad(seq, problem) }
            if let cp = checkpoints[seq] {
                guard signed(seq, cp[1], cp[2], cp[3]) else { return bad(seq, "checkpoint at \(seq) has an invalid signature") }
                guard (cp[1] as String) == hash else { return bad(seq, "record differs from the signed checkpoint") }
                result.checkpoints += 1
            }
            prev = hash
            expected += 1
            result.records += 1
        }
        guard expected > end else { return bad(expected, "log truncated: record \(expected) is missing (the segment ends at \(end))") }
        if closing == nil, let head = signedHead, head.seq >= to {
            guard signed(head.seq, head.hash, head.time, head.signature) else { return bad(head.seq, "audit-head.json has an invalid signature") }
            guard head.seq <= end else { return bad(end + 1, "log truncated: the signed head covers \(head.seq) but the log ends at \(end)") }
            // The head is the only signature over a tail whose checkpoints were removed: a re-chained tail differs from it.
            guard try String.fetchOne(db, sql: "SELECT hash FROM audit_log WHERE seq = ?", arguments: [head.seq]) == head.hash else {
                return bad(head.seq, "record differs from the signed head")
            }
        }
        return result
    }

    public static func verify(
        _ db: any SQLConnection, publicKey: Curve25519.Signing.PublicKey, headFile: URL
    ) throws -> AuditVerification {
        try verify(db, publicKey: publicKey, head: SignedHead.read(from: headFile), headFileExists: FileManager.default.fileExists(atPath: headFile.path))
    }

    /// Verifies against a head file read *before* `db`'s read transaction began. A live server writes the file after
    /// each checkpoint commits, so a file read first never covers records the snapshot cannot see (reading it
    /// afterwards would report a concurrent checkpoint as truncation).
    public static func verify(
        _ db: any SQLConnection, publicKey: Curve25519.Signing.PublicKey, head signedHead: SignedHead?, headFileExists: Bool
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
        let rows = try SQLRow.fetchCursor(db, sql: "SELECT seq, tenant, time, body, hash FROM audit_log ORDER BY seq")
        while let row = try rows.next() {
            let seq: Int64 = row[0]
            let tenant: String = row[1]
            let time: String = row[2]
            let body: String = row[3]
            let hash: String = row[4]
            if seq != expected {
                return bad(expected, seq > expected ? "record \(expected) is missing (next is \(seq))" : "unexpected sequence \(seq)")
            }
            if let problem = check(seq: seq, tenant: tenant, time: time, body: body, hash: hash, prev: prev) { return bad(seq, problem) }
            hashes[seq] = hash
            prev = hash
            expected += 1
            result.records += 1
        }
        let last = expected - 1
        func signed(_ seq: Int64, _ hash: String, _ time: String, _ sig: String) -> Bool { isSigned(seq, hash, time, sig, by: publicKey) }
        for row in try SQLRow.fetchAll(db, sql: "SELECT seq, hash, time, signature FROM audit_checkpoint ORDER BY seq") {
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
