import Crypto
import Foundation
import SafeRxSQL
import SafeRxSQLite
import SafeRxAudit
import SafeRxVault
import Testing

/// Every kind of tampering with the audit log is detected, at the right sequence number.
@Suite("Audit tampering") struct AuditTamperTests {
    struct Fixture {
        let dir: URL
        let db: SQLiteDatabase
        let signingKey = Curve25519.Signing.PrivateKey()
        let cipher = AuditFieldCipher(key: SymmetricKey(size: .bits256), index: BlindIndex(key: SymmetricKey(size: .bits256)))
        let log: AuditLog

        init(records: Int = 40, checkpointAt: [Int] = [20, 40]) throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("saferx-audit-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            db = try SQLiteDatabase(path: dir.appendingPathComponent("audit.sqlite").path)
            log = AuditLog(signingKey: signingKey, cipher: cipher, headFile: dir.appendingPathComponent("audit-head.json"))
            try db.write { db in try AuditLog.migrate(db) }
            for i in 1...records {
                try db.write { db in
                    try log.append([Self.entry(i)], in: db)
                    if checkpointAt.contains(i) { try log.checkpoint(db) }
                }
            }
        }

        static func entry(_ i: Int) -> AuditEntry {
            AuditEntry(
                actor: .init(id: "user-\(i % 3)", role: "pharmacist", tenant: "t1"), action: "read", resourceType: "Patient",
                resourceID: "p\(i)", patients: ["p\(i)"], outcome: "success", result: .ok, purpose: "TREAT", sourceIP: "127.0.0.1",
                userAgent: "test", requestID: "r\(i)")
        }

        func verify() throws -> AuditVerification {
            try db.read { db in
                try AuditVerifier.verify(db, publicKey: signingKey.publicKey, headFile: dir.appendingPathComponent("audit-head.json"))
            }
        }

        /// Tampering as an attacker with write access to the file would: triggers off first.
        func tamper(_ sql: String, _ args: SQLArguments = []) throws {
            try db.write { db in
                try db.execute(sql: "DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete")
                try db.execute(sql: sql, arguments: args)
            }
        }
    }

    @Test("A segment between signed checkpoints verifies alone; tampering inside it is found at the right record, outside it is not read")
    func segment() throws {
        let f = try Fixture(records: 60, checkpointAt: [20, 40, 60])
        func segment(_ from: Int64, _ to: Int64) throws -> AuditVerification {
            try f.db.read { db in try AuditVerifier.verifySegment(db, publicKey: f.signingKey.publicKey, head: nil, from: from, to: to) }
        }
        let ok = try segment(25, 35)
        #expect(ok.ok && ok.records == 20 && ok.checkpoints == 2, "records 21-40, anchored on checkpoints 20 and 40: \(ok)")
        try f.tamper("UPDATE audit_log SET body = replace(body, '\"success\"', '\"failure\"') WHERE seq = 30")
        let bad = try segment(25, 35)
        #expect(!bad.ok && bad.firstBad == 30)
        #expect(try segment(45, 55).ok, "a stretch anchored after the edit does not read it")
        #expect(try !segment(15, 35).ok, "one that covers it finds it")
        try f.tamper("DELETE FROM audit_log WHERE seq = 50")
        #expect(try segment(45, 55).firstBad == 50)
        #expect(try !f.verify().ok, "the whole chain still fails")
    }

    @Test("A segment whose closing checkpoint was removed and its tail re-chained is caught by the signed head")
    func segmentRechainedTail() throws {
        let f = try Fixture(records: 60, checkpointAt: [20, 40, 60])
        let head = SignedHead.read(from: f.dir.appendingPathComponent("audit-head.json"))
        #expect(head?.seq == 60)
        func segment() throws -> AuditVerification {
            try f.db.read { db in try AuditVerifier.verifySegment(db, publicKey: f.signingKey.publicKey, head: head, from: 45, to: 55) }
        }
        #expect(try segment().ok)
        // Edit record 50, then rewrite every later record's link and hash, and drop the checkpoint that would differ.
        let rows: [(seq: Int64, body: String, hash: String)] = try f.db.read { db in
            try SQLRow.fetchAll(db, sql: "SELECT seq, body, hash FROM audit_log WHERE seq >= 49 ORDER BY seq").map { ($0[0], $0[1], $0[2]) }
        }
        var prev = rows[0].hash
        for (old, row) in zip(rows, rows.dropFirst()) {
            var newBody = row.body.replacingOccurrences(of: old.hash, with: prev)
            if row.seq == 50 { newBody = newBody.replacingOccurrences(of: "\"p50\"", with: "\"p99\"") }
            let hash = AuditLog.hash(prev: prev, body: newBody)
            try f.tamper("UPDATE audit_log SET body = ?, hash = ? WHERE seq = ?", [newBody, hash, row.seq])
            prev = hash
        }
        try f.tamper("DELETE FROM audit_checkpoint WHERE seq = 60")
        let r = try segment()
        #expect(!r.ok && r.firstBad == 60 && r.reason?.contains("signed head") == true, "\(r)")
        #expect(try !f.verify().ok, "the whole chain fails too")
    }

    @Test("an intact log verifies") func intact() throws {
        let f = try Fixture()
        let r = try f.verify()
        #expect(r.ok)
        #expect(r.records == 40)
        #expect(r.checkpoints == 2)
    }

    @Test("updates and deletes are refused by the database itself") func appendOnly() throws {
        let f = try Fixture(records: 3, checkpointAt: [])
        #expect(throws: (any Error).self) { try f.db.write { try $0.execute(sql: "UPDATE audit_log SET body = 'x' WHERE seq = 2") } }
        #expect(throws: (any Error).self) { try f.db.write { try $0.execute(sql: "DELETE FROM audit_log WHERE seq = 3") } }
    }

    @Test("an edited record") func edited() throws {
        let f = try Fixture()
        try f.tamper("UPDATE audit_log SET body = replace(body, '\"p7\"', '\"p99\"') WHERE seq = 7")
        let r = try f.verify()
        #expect(r.firstBad == 7)
        #expect(r.reason?.contains("edited") == true)
    }

    @Test("an edited record with its hash recomputed") func editedRehashed() throws {
        let f = try Fixture()
        let (body, prev): (String, String) = try f.db.read { db in
            (try String.fetchOne(db, sql: "SELECT body FROM audit_log WHERE seq = 7")!,
             try String.fetchOne(db, sql: "SELECT hash FROM audit_log WHERE seq = 6")!)
        }
        let newBody = body.replacingOccurrences(of: "\"p7\"", with: "\"p99\"")
        try f.tamper("UPDATE audit_log SET body = ?, hash = ? WHERE seq = 7", [newBody, AuditLog.hash(prev: prev, body: newBody)])
        #expect(try f.verify().firstBad == 8)
    }

    @Test("a deleted record") func deleted() throws {
        let f = try Fixture()
        try f.tamper("DELETE FROM audit_log WHERE seq = 12")
        let r = try f.verify()
        #expect(r.firstBad == 12)
        #expect(r.reason?.contains("missing") == true)
    }

    @Test("an inserted record") func inserted() throws {
        let f = try Fixture()
        try f.tamper("UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 15")
        try f.tamper("UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1015")
        let forged = AuditRecord(seq: 15, time: "2026-01-01T00:00:00.000Z", entry: Fixture.entry(15), prevHash: "bogus")
        try f.tamper("INSERT INTO audit_log (seq, tenant, time, body, hash) VALUES (15, 't1', ?, ?, 'h')", [forged.time, forged.canonicalBody(cipher: f.cipher)])
        #expect(try f.verify().firstBad == 15)
    }

    @Test("reordered records") func reordered() throws {
        let f = try Fixture()
        let rows: [SQLRow] = try f.db.read { try SQLRow.fetchAll($0, sql: "SELECT seq, body, hash, time FROM audit_log WHERE seq IN (9, 10) ORDER BY seq") }
        try f.tamper("UPDATE audit_log SET body = ?, hash = ?, time = ? WHERE seq = 9",  [(rows[1]["body"] as SQLValue), (rows[1]["hash"] as SQLValue), (rows[1]["time"] as SQLValue)])
        try f.tamper("UPDATE audit_log SET body = ?, hash = ?, time = ? WHERE seq = 10", [(rows[0]["body"] as SQLValue), (rows[0]["hash"] as SQLValue), (rows[0]["time"] as SQLValue)])
        let r = try f.verify()
        #expect(r.firstBad == 9)
    }

    @Test("a truncated tail, even with the checkpoints removed too") func truncated() throws {
        let f = try Fixture()
        try f.tamper("DELETE FROM audit_log WHERE seq > 30")
        #expect(try f.verify().firstBad == 31)
        try f.tamper("DELETE FROM audit_checkpoint WHERE seq > 30")
        let r = try f.verify()
        #expect(r.firstBad == 31)
        #expect(r.reason?.contains("truncated") == true)
    }

    @Test("a forged checkpoint") func forgedCheckpoint() throws {
        let f = try Fixture()
        try f.tamper("UPDATE audit_checkpoint SET hash = 'x' || substr(hash, 2) WHERE seq = 20")
        #expect(try f.verify().firstBad == 20)
    }

    @Test("checkpoints are written at least every 1,000 records") func checkpointCadence() throws {
        let f = try Fixture(records: 1, checkpointAt: [])
        try f.db.write { db in
            for i in 0..<(Int(AuditLog.checkpointEvery) + 5) { try f.log.append([Fixture.entry(i)], in: db) }
        }
        let count = try f.db.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM audit_checkpoint") }
        #expect(count == 1)
        #expect(try f.verify().ok)
    }
}

@Suite("Audit field sealing") struct AuditSealingTests {
    @Test("source address, user agent and detail are sealed; the chain verifies without the key; a moved seal does not open")
    func sealedFields() throws {
        let f = try AuditTamperTests.Fixture(records: 5, checkpointAt: [5])
        let rows: [SQLRow] = try f.db.read { try SQLRow.fetchAll($0, sql: "SELECT seq, body, hash FROM audit_log ORDER BY seq") }
        for row in rows {
            let body: String = row["body"]
            #expect(!body.contains("127.0.0.1") && !body.contains("\"test\"") && !body.contains("userAgent"))
            #expect(body.contains("\"sealed\"") && body.contains("\"sourceToken\""))
            let opened = AuditRecord.decode(body: body, hash: row["hash"], cipher: f.cipher)
            #expect(opened?.entry.sourceIP == "127.0.0.1" && opened?.entry.userAgent == "test" && opened?.sealedFieldsOpened == true)
            let closed = AuditRecord.decode(body: body, cipher: nil)
            #expect(closed?.entry.sourceIP == "" && closed?.sealedFieldsOpened == false && closed?.entry.patients.isEmpty == false)
        }
        #expect(try f.verify().ok)
        // The same address gives the same token, so records can be grouped by source without revealing it.
        let tokens = Set(rows.map { (AuditSealingTests.field("sourceToken", in: $0["body"])) })
        #expect(tokens.count == 1)
        // A seal copied into another record (re-hashed to hide it) does not open there.
        let sealed2 = Self.field("sealed", in: rows[1]["body"])
        let body3: String = rows[2]["body"]
        let moved = body3.replacingOccurrences(of: Self.field("sealed", in: body3), with: sealed2)
        #expect(AuditRecord.decode(body: moved, cipher: f.cipher)?.sealedFieldsOpened == false)
    }

    static func field(_ name: String, in body: String) -> String {
        let marker = "\"\(name)\":\""
        guard let r = body.range(of: marker) else { return "" }
        return String(body[r.upperBound...].prefix { $0 != "\"" })
    }
}
