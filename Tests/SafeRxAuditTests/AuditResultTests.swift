import Foundation
import SafeRxSQL
import SafeRxSQLite
import SafeRxAudit
import SafeRxModel
import Testing

/// Audit records say what a request came to in the domain's terms (`"result": "not-found"`), not as a transport's
/// status code; records of the first format, which stored a number, still read, re-encode and verify as written.
@Suite("Audit results") struct AuditResultTests {
    static let time = "2026-12-03T10:00:00.000Z"

    static func entry(_ result: AuditResult) -> AuditEntry {
        AuditEntry(
            actor: .init(id: "user-0001", role: "pharmacist", tenant: "t1"), action: "read", resourceType: "Patient",
            resourceID: "pat-0001", outcome: result.isRefusal ? "denied" : "success", result: result, purpose: "TREAT",
            sourceIP: "127.0.0.1", userAgent: "test", requestID: "r1")
    }

    /// A body as the first format wrote it: canonical JSON with `status` in place of `result`.
    static func firstFormat(_ body: String, status: Int) throws -> String {
        var root = try #require(try JSON.parse(Data(body.utf8)).objectValue)
        var entry = try #require(root["entry"]?.objectValue)
        entry["result"] = nil
        entry["status"] = .int(Int64(status))
        root["entry"] = .object(entry)
        return String(decoding: JSON.object(root).encodedBytes(), as: UTF8.self)
    }

    @Test("a new record stores its result by name and no status number; every result reads back")
    func byName() throws {
        for result in AuditResult.allCases {
            let body = AuditRecord(seq: 1, time: Self.time, entry: Self.entry(result), prevHash: "00").canonicalBody(cipher: nil)
            #expect(body.contains("\"result\":\"\(result.rawValue)\"") && !body.contains("\"status\""), "\(body)")
            let back = try #require(AuditRecord.decode(body: body, cipher: nil))
            #expect(back.entry.result == result && back.entry.legacyStatus == nil)
            #expect(back.canonicalBody(cipher: nil) == body)
        }
    }

    @Test("every refusal kind has its own result, and a refusal is never a success")
    func kinds() {
        let results = FHIRError.Kind.allCases.map(AuditResult.init)
        #expect(Set(results).count == FHIRError.Kind.allCases.count, "one result per kind")
        #expect(results.allSatisfy { $0.isRefusal })
        #expect(![AuditResult.ok, .created, .accepted, .deleted, .done].contains { $0.isRefusal })
    }

    @Test("a first-format record (status number) reads as its result, re-encodes byte for byte, and verifies in a chain with new records")
    func legacy() throws {
        let new = AuditRecord(seq: 1, time: Self.time, entry: Self.entry(.notFound), prevHash: "00").canonicalBody(cipher: nil)
        let old = try Self.firstFormat(new, status: 404)
        let record = try #require(AuditRecord.decode(body: old, cipher: nil))
        #expect(record.entry.result == .notFound && record.entry.legacyStatus == 404)
        #expect(record.canonicalBody(cipher: nil) == old, "the body its hash covers")
        // A number outside the first format's table still reads (by its class) and keeps its bytes: no record drops
        // out of breach scope or an accounting of disclosures because of its outcome.
        for (number, result) in [(418, AuditResult.invalid), (299, .ok), (502, .internal)] {
            let odd = try Self.firstFormat(new, status: number)
            let decoded = try #require(AuditRecord.decode(body: odd, cipher: nil), "\(number)")
            #expect(decoded.entry.result == result && decoded.entry.legacyStatus == number && decoded.canonicalBody(cipher: nil) == odd)
        }

        // A log written by the first format, then appended to by this one: one chain, and it verifies.
        let f = try AuditTamperTests.Fixture(records: 3, checkpointAt: [])
        defer { try? FileManager.default.removeItem(at: f.dir) }
        try f.db.write { db in
            let (seq, prev) = try AuditLog.head(db)
            var legacy = AuditRecord(seq: seq + 1, time: Self.time, entry: Self.entry(.ok), prevHash: prev)
            legacy.entry.actor.id = "user-legacy"
            let body = try Self.firstFormat(legacy.canonicalBody(cipher: nil), status: 200)
            try db.execute(
                sql: "INSERT INTO audit_log (seq, tenant, time, body, hash) VALUES (?, ?, ?, ?, ?)",
                arguments: [seq + 1, "t1", Self.time, body, AuditLog.hash(prev: prev, body: body)])
            _ = try f.log.append([AuditTamperTests.Fixture.entry(5)], in: db)
            try f.log.checkpoint(db)
        }
        let verification = try f.verify()
        #expect(verification.ok && verification.records == 5, "\(verification)")
        let stored = try f.db.read { db in try String.fetchAll(db, sql: "SELECT body FROM audit_log ORDER BY seq") }
        let results = stored.compactMap { AuditRecord.decode(body: $0, cipher: nil) }.map(\.entry.result)
        #expect(results == [.ok, .ok, .ok, .ok, .ok] && stored[3].contains("\"status\":200") && stored[4].contains("\"result\":\"ok\""))
    }
}
