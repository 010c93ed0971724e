import Foundation
import SafeRxSQL
import SafeRxAudit
import SafeRxDetect
import SafeRxModel
import SafeRxPharmacy
@testable import SafeRxStore
import SafeRxStoreCore
import SafeRxVault
import Testing

/// Every key operation, then a restart and every command that opens sealed data, and every backup made before.
@Suite("Key operations") struct KeyOperationTests {
    @Test("a schema test: every BLOB column is sealed with a re-encryption path, or listed with the reason it is not")
    func everySealedColumnHasAReencryptionPath() async throws {
        try await LiveServer.start(patients: 3, accounts: 1, partnerPatients: 1).using { server in
            let listed = Set(SealedColumn.all.map(\.name)).union(SealedColumn.notSealedUnderDataKeys.keys)
            let blobs = try server.store.dbPool.read { db -> [String] in
                if db.dialect == .postgres {
                    return try SQLRow.fetchAll(
                        db, sql: "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' AND data_type = 'bytea'"
                    ).map { "\($0[0] as String).\($0[1] as String)" }
                }
                var out: [String] = []
                for table in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'grdb_%'") {
                    for column in try SQLRow.fetchAll(db, sql: "PRAGMA table_info(\(table))") where (column["type"] as String).uppercased() == "BLOB" {
                        out.append("\(table).\(column["name"] as String)")
                    }
                }
                return out
            }
            #expect(blobs.count >= 10)
            for name in blobs { #expect(listed.contains(name), "\(name) holds bytes but has no entry in SealedColumn.all") }
            for column in SealedColumn.all { #expect(blobs.contains(column.name), "\(column.name) is listed but is not a BLOB column") }
        }
    }

    @Test("rotate master twice, tenant keys and re-encrypt twice: the restarted server serves, every command works, every backup verifies")
    func matrix() async throws {
        let server = try await LiveServer.start(patients: 12, accounts: 4, partnerPatients: 2, honeytokens: 3)
        let work = server.directory.appendingPathExtension("key-matrix")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer {
            try? FileManager.default.removeItem(at: work)
            for suffix in Self.keySuffixes(server.keyFile) { try? FileManager.default.removeItem(atPath: server.keyFile.path + suffix) }
        }
        let store = server.store
        // The key operations run from the command line against a store the server is not serving (no notification
        // dispatcher blanks what the matrix must move).
        await server.stop(removingFiles: false)
        // Something in every sealed column: a webhook secret under the tenant's shared key, a patient notification.
        _ = try await store.registerWebhook(.operatorCommand(reason: "test", write: true), clientID: DemoPharmacy.partnerClientID, url: "http://127.0.0.1:9/hook")
        try await store.queueNotification(
            tenant: DemoPharmacy.tenant, patient: DemoPharmacy.patientID(1), kind: .newMessage, subject: "s", body: "b")
        let counts = try store.dbPool.read { db in
            try SealedColumn.all.map { c in (c.name, try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(c.table) WHERE length(\(c.column)) > 0") ?? 0) }
        }
        for (name, n) in counts { #expect(n > 0, "nothing in \(name): the matrix would not test it") }

        var backups: [URL] = []
        func backup(_ name: String) async throws {
            let file = work.appendingPathComponent("\(name).srxb")
            _ = try await Backup.create(store, to: file)
            backups.append(file)
        }
        try await backup("0-before")
        _ = try store.keys.rotateMaster(store.dbPool)
        try await backup("1-master")
        _ = try store.keys.rotateTenantKeys(store.dbPool)
        try await backup("2-tenant")
        let first = try await store.reencrypt(batchSize: 7)
        #expect(first.keptKeys == 0 && first.retiredKeys == first.rotatedKeys)
        #expect(first.otherValues >= counts.filter { $0.0 != "resource_version.body" }.map(\.1).reduce(0, +))
        try await backup("3-reencrypt")
        _ = try store.keys.rotateMaster(store.dbPool)
        let second = try await store.reencrypt(batchSize: 500)
        #expect(second.keptKeys == 0 && second.retiredKeys == second.rotatedKeys)
        try await backup("4-again")
        // No sealed value names a data key version that no longer exists.
        let orphans = try store.dbPool.read { db in
            try KeyRing.versionsInUse(db).filter { v in
                try Bool.fetchOne(
                    db, sql: "SELECT EXISTS (SELECT 1 FROM data_key WHERE tenant = ? AND owner = ? AND version = ?)",
                    arguments: [v.tenant, v.owner, Int64(v.version)]) != true
            }
        }
        #expect(orphans.isEmpty, "\(orphans)")

        // Restart on the same directory with detection on (the detector reads honeytokens and sends notices).
        try await LiveServer.start(
            detection: DetectionSettings(rules: try DetectionRules.bundled(), securityContact: "security@pharmacy.example"),
            reopening: server.directory).using { restarted in
            let s = restarted.store
            #expect(try await s.verifyCiphertexts().failures.isEmpty)
            #expect(try await s.honeytokens(tenant: DemoPharmacy.tenant).count == 3)
            #expect(try await s.webhookEndpoint(clientID: DemoPharmacy.partnerClientID)?.url == "http://127.0.0.1:9/hook")
            _ = try await s.registerWebhook(.operatorCommand(reason: "test", write: true), clientID: DemoPharmacy.partnerClientID, url: "http://127.0.0.1:9/other")
            #expect(try await s.user(named: "patient001") != nil)
            try await restarted.client().using { client in
                let token = try await restarted.token("pharmacist")
                #expect(try await client.get("/fhir/Patient/\(DemoPharmacy.patientID(2))", token: token).status == 200)
                #expect(try await s.verifyAudit().ok)

                // Every backup made before any of it verifies with the key file as it is now (retired keys kept beside it).
                let provider = try FileKeyProvider(path: restarted.keyFile, create: false)
                for file in backups {
                    let summary = try await Backup.verify(file, keyProvider: provider)
                    #expect(summary.patients > 0, "\(file.lastPathComponent)")
                }
                #expect(Self.keySuffixes(restarted.keyFile).filter { $0.hasPrefix(".previous-") }.count == 2)
            }
        }
    }

    static func keySuffixes(_ keyFile: URL) -> [String] {
        let dir = keyFile.deletingLastPathComponent().path, base = keyFile.lastPathComponent
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix(base) && $0 != base }
            .map { String($0.dropFirst(base.count)) }
    }
}
