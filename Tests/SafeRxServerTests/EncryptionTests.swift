import Foundation
import SafeRxSQL
import SafeRxAudit
import SafeRxModel
import SafeRxPharmacy
@testable import SafeRxStore
import SafeRxStoreCore
import SafeRxVault
import Testing

/// Envelope encryption: ciphertexts bound to their rows, rotation while serving, crypto-shredding, key-file failures.
@Suite("Encryption at rest") struct EncryptionTests {
    /// A write straight into the server's database, beside the gate, as an intruder with write access to it would make.
    static func tamper(_ server: LiveServer, _ body: (any SQLConnection) throws -> Void) throws {
        try server.store.dbPool.write(body)
    }

    static func body(_ db: any SQLConnection, _ type: String, _ id: String) throws -> Data {
        try Data.fetchOne(db, sql: "SELECT body FROM resource_version WHERE type = ? AND id = ? AND current = 1", arguments: [type, id])!
    }

    @Test("a ciphertext moved to another row fails its integrity check instead of showing another patient's data")
    func swappedCiphertexts() async throws {
        try await LiveServer.start(patients: 6, accounts: 2, partnerPatients: 1).using { server in
            try await server.client().using { client in
                let token = try await server.token("pharmacist")
                let other = try await client.get("/fhir/Patient/pat-0002", token: token)
                let otherFamily = other.json?["name"]?.arrayValue?.first?["family"]?.stringValue ?? "?"
                #expect(other.status == 200)

                // Another patient's body (a different data key), and the same patient's prescription (same key, other row).
                try Self.tamper(server) { db in
                    let a = try Self.body(db, "Patient", "pat-0001"), b = try Self.body(db, "Patient", "pat-0002")
                    try db.execute(sql: "UPDATE resource_version SET body = ? WHERE type = 'Patient' AND id = 'pat-0001'", arguments: [b])
                    try db.execute(sql: "UPDATE resource_version SET body = ? WHERE type = 'Patient' AND id = 'pat-0002'", arguments: [a])
                    let rx = try Self.body(db, "MedicationRequest", "rx-pat-0003-1")
                    try db.execute(sql: "UPDATE resource_version SET body = ? WHERE type = 'Patient' AND id = 'pat-0003'", arguments: [rx])
                }
                for (path, resource) in [
                    ("/fhir/Patient/pat-0001", "Patient/pat-0001"), ("/fhir/Patient/pat-0002", "Patient/pat-0002"),
                    ("/fhir/Patient/pat-0003", "Patient/pat-0003"), ("/fhir/Patient?_id=pat-0001,pat-0004", "Patient/pat-0001"),
                    ("/fhir/Patient/pat-0003/_history/1", "Patient/pat-0003"),
                ] {
                    let r = try await client.get(path, token: token)
                    #expect(r.status == 500, "\(path): \(r.status) \(r.body.prefix(200))")
                    #expect(r.json?["resourceType"]?.stringValue == "OperationOutcome")
                    #expect(r.issue.contains("cannot be decrypted") && r.issue.contains(resource), "\(path): \(r.issue)")
                    #expect(!r.body.contains(otherFamily))
                }
                // Untouched rows still read.
                #expect(try await client.get("/fhir/Patient/pat-0004", token: token).status == 200)
            }
        }
    }

    @Test("a corrupted ciphertext is a clear error naming the row, never a crash or an empty result")
    func corruptedCiphertext() async throws {
        try await LiveServer.start(patients: 4, accounts: 1, partnerPatients: 1).using { server in
            try await server.client().using { client in
                let token = try await server.token("pharmacist")
                try Self.tamper(server) { db in
                    var b = try Self.body(db, "MedicationRequest", "rx-pat-0002-1")
                    b[b.startIndex + 30] ^= 0x01
                    try db.execute(sql: "UPDATE resource_version SET body = ? WHERE type = 'MedicationRequest' AND id = 'rx-pat-0002-1'", arguments: [b])
                }
                let r = try await client.get("/fhir/MedicationRequest?patient=pat-0002", token: token)
                #expect(r.status == 500)
                #expect(r.issue.contains("MedicationRequest/rx-pat-0002-1 version 1 cannot be decrypted"), "\(r.issue)")
                #expect(try await client.get("/fhir/MedicationRequest?patient=pat-0001", token: token).status == 200)
            }
        }
    }

    @Test("rotation under load: reads keep succeeding; afterwards the old master key is no longer needed")
    func rotationUnderLoad() async throws {
        let server = try await LiveServer.start(patients: 40, accounts: 5, partnerPatients: 2)
        let oldKey = try Data(contentsOf: server.keyFile)
        let token = try await server.token("pharmacist")
        let stop = ManagedFlag(), rotating = ManagedFlag()
        let duringRotation = ManagedCounter()
        let readers = Task {
            try await withThrowingTaskGroup(of: [Int: Int].self) { group in
                for r in 0..<4 {
                    group.addTask {
                        try await server.client().using { client in
                            var statuses: [Int: Int] = [:]
                            var i = r, n = 0
                            while !stop.isSet || n < 10 {
                                let id = DemoPharmacy.patientID(1 + i % 40)
                                let path = i % 2 == 0 ? "/fhir/Patient/\(id)" : "/fhir/MedicationRequest?patient=\(id)"
                                let during = rotating.isSet
                                statuses[try await client.get(path, token: token).status, default: 0] += 1
                                if during && rotating.isSet { duringRotation.add(1) }
                                i += 4
                                n += 1
                            }
                            return statuses
                        }
                    }
                }
                var all: [Int: Int] = [:]
                for try await s in group { all.merge(s, uniquingKeysWith: +) }
                return all
            }
        }
        try await Task.sleep(for: .milliseconds(200))
        rotating.set()
        let master = try server.store.keys.rotateMaster(server.store.dbPool)
        #expect(master.old != master.new)
        let tenants = try server.store.keys.rotateTenantKeys(server.store.dbPool)
        #expect(tenants.count == 2)
        let progress = ManagedCounter()
        let report = try await server.store.reencrypt(batchSize: 25) { done, _ in progress.set(done) }
        #expect(report.resources > 200)
        #expect(progress.value == report.resources)
        #expect(report.retiredKeys == report.rotatedKeys)
        rotating.clear()
        stop.set()
        let statuses = try await readers.value
        #expect(statuses.keys.sorted() == [200], "\(statuses)")
        #expect(statuses[200, default: 0] >= 40)
        #expect(duringRotation.value > 0, "some reads ran while keys were being rotated")
        #expect(try server.store.keyStatus().pending == 0)
        // An interrupted re-encryption (new key versions made, rows not yet moved) is resumed, not restarted.
        let started = try await server.store.dbPool.write { db in try server.store.keys.beginReencryption(db) }
        #expect(started > 0)
        #expect(try server.store.keyStatus().pending == report.resources)
        let resumed = try await server.store.reencrypt(batchSize: 100)
        #expect(resumed.rotatedKeys == 0 && resumed.resources == report.resources && resumed.retiredKeys == started)
        #expect(try server.store.keyStatus().pending == 0)
        await server.stop(removingFiles: false)

        // Without the previous master key, the store opens and every ciphertext decrypts.
        try FileManager.default.removeItem(atPath: server.keyFile.path + ".previous")
        let reopened = try PharmacyStore.open(dataDirectory: server.directory, keyFile: server.keyFile, options: LiveServer.reopenOptions(server.directory))
        let check = try await reopened.verifyCiphertexts()
        #expect(check.failures.isEmpty)
        #expect(check.resources == report.resources)
        #expect(try await reopened.verifyAudit().ok)
        try reopened.dbPool.close()
        // The old master key alone no longer opens it.
        let old = server.directory.appendingPathExtension("old.key")
        _ = FileManager.default.createFile(atPath: old.path, contents: oldKey, attributes: [.posixPermissions: 0o600])
        #expect(throws: VaultError.wrongMasterKey(expected: master.new, given: master.old)) {
            try PharmacyStore.open(dataDirectory: server.directory, keyFile: old, options: LiveServer.reopenOptions(server.directory))
        }
        for f in [server.directory.path, server.keyFile.path, old.path] { try? FileManager.default.removeItem(atPath: f) }
    }

    @Test("erase: refused under a retention hold; with a legal override no path decrypts the patient, everyone else still reads")
    func erasure() async throws {
        try await LiveServer.start(patients: 8, accounts: 8, partnerPatients: 1).using { server in
            try await server.client().using { client in
                let token = try await server.token("pharmacist")
                // A patient with dispense records (the demo's dispenses are from this year).
                var target = ""
                for i in 1...8 where target.isEmpty {
                    let id = DemoPharmacy.patientID(i)
                    if try await client.get("/fhir/MedicationDispense?patient=\(id)", token: token).total ?? 0 > 0 { target = id }
                }
                #expect(!target.isEmpty)
                let username = String(format: "patient%03d", Int(target.dropFirst(4))!)
                let patientToken = try await server.token(username)
                let rxPath = "/fhir/MedicationRequest/rx-\(target)-1"
                let before = try await client.get(rxPath, token: token)
                #expect(before.status == 200)
                let captured = try server.store.readOnCallingThread { db in
                    try SQLRow.fetchAll(db, sql: "SELECT type, id, version, body FROM resource_version WHERE key_owner = ?", arguments: [target])
                }
                #expect(captured.count >= 3)

                await #expect(throws: ErasureError.self) {
                    _ = try await server.store.erase(patient: target, tenant: DemoPharmacy.tenant, reason: "patient asked", legalOverride: false)
                }
                #expect(try await client.get(rxPath, token: token).status == 200, "a refused erasure changes nothing")

                let result = try await server.store.erase(
                    patient: target, tenant: DemoPharmacy.tenant, reason: "court order 17 overrides retention", legalOverride: true)
                #expect(result.legalOverride && result.accounts == 1 && result.sharedResources == 0)
                #expect(try server.store.keyStatus().tenants.first { $0.tenant == DemoPharmacy.tenant }?.version == 2, "tenant key rotated")
                for path in ["/fhir/Patient/\(target)", rxPath, "/fhir/Patient/\(target)/_history/1", "\(rxPath)/_history/1"] {
                    let r = try await client.get(path, token: token)
                    #expect(r.status == 410, "\(path): \(r.status)")
                    #expect(r.issue.contains("erased"))
                }
                for path in ["/fhir/MedicationRequest?patient=\(target)", "/fhir/MedicationDispense?patient=\(target)",
                             "/fhir/Communication?patient=\(target)", "/fhir/Patient?_id=\(target)"] {
                    #expect(try await client.get(path, token: token).total == 0, "\(path)")
                }
                let history = try await client.get("/fhir/Patient/\(target)/_history", token: token)
                #expect(history.entries.allSatisfy { $0["resource"] == nil })
                // Their sessions and login are gone with their account.
                #expect(try await client.get("/fhir/Patient/\(target)", token: patientToken).status == 401)
                #expect(try await server.store.user(named: username) == nil)
                // Ciphertext copied before the erasure (as an old copy of the file would hold) no longer opens with any key.
                for row in captured {
                    let type = ResourceType(rawValue: row[0])!
                    let context = PharmacyStore.cipherContext(DemoPharmacy.tenant, type, row[1], row[2])
                    #expect(throws: VaultError.self) {
                        try server.store.readOnCallingThread { db in
                            try server.store.keys.open(db, tenant: DemoPharmacy.tenant, owner: target, row[3], context: context)
                        }
                    }
                }
                // Everyone else's data still decrypts.
                let check = try await server.store.verifyCiphertexts()
                #expect(check.failures.isEmpty)
                #expect(check.resources > 20)
                let someoneElse = target == "pat-0001" ? "pat-0002" : "pat-0001"
                #expect(try await client.get("/fhir/Patient/\(someoneElse)", token: token).status == 200)
                // The refusal, the erasure and its override are in the verified audit log, with the patient's id.
                #expect(try await server.store.verifyAudit().ok)
                let erasures = try await server.store.auditRecords().filter { $0.entry.action == "erase" }
                #expect(erasures.map(\.entry.outcome) == ["denied", "success"])
                #expect(erasures.allSatisfy { $0.entry.patients == [target] })
                #expect(erasures.last?.entry.detail?.contains("LEGAL OVERRIDE") == true)
                await #expect(throws: ErasureError.self) {
                    _ = try await server.store.erase(patient: target, tenant: DemoPharmacy.tenant, reason: "again", legalOverride: true)
                }
            }
        }
    }

    @Test("missing, wrong, exposed or misplaced master key: a clear error naming the problem")
    func keyFileFailures() async throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("saferx-keys-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: base) }
        let data = base.appendingPathComponent("data"), key = base.appendingPathComponent("secrets/master.key")
        let store = try PharmacyStore.open(dataDirectory: data, keyFile: key)
        let sealedWith = store.keys.provider.keyID
        try store.dbPool.close()
        #expect(try FileManager.default.attributesOfItem(atPath: key.path)[.posixPermissions] as? Int == 0o600)

        let missing = base.appendingPathComponent("nowhere.key")
        #expect(throws: VaultError.missingMasterKey(path: missing.path, expectedKeyID: sealedWith)) {
            try PharmacyStore.open(dataDirectory: data, keyFile: missing)
        }
        #expect(!FileManager.default.fileExists(atPath: missing.path), "no key is invented for an existing store")
        let wrong = base.appendingPathComponent("wrong.key")
        _ = try FileKeyProvider(path: wrong, create: true)
        #expect(throws: VaultError.self) { try PharmacyStore.open(dataDirectory: data, keyFile: wrong) }
        do {
            _ = try PharmacyStore.open(dataDirectory: data, keyFile: wrong)
        } catch let e as VaultError {
            #expect("\(e)".contains("wrong master key") && "\(e)".contains(sealedWith))
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: key.path)
        #expect(throws: VaultError.badMasterKeyFile(path: key.path, reason: "is readable by others (mode 644); run chmod 600 on it")) {
            try PharmacyStore.open(dataDirectory: data, keyFile: key)
        }
        let garbage = base.appendingPathComponent("garbage.key")
        _ = FileManager.default.createFile(atPath: garbage.path, contents: Data("not a key\n".utf8), attributes: [.posixPermissions: 0o600])
        #expect(throws: VaultError.badMasterKeyFile(path: garbage.path, reason: "does not hold a base64-encoded 256-bit key")) {
            try PharmacyStore.open(dataDirectory: data, keyFile: garbage)
        }
        let inside = base.appendingPathComponent("fresh")
        #expect(throws: VaultError.badMasterKeyFile(
            path: inside.appendingPathComponent("master.key").path,
            reason: "is inside the data directory; the master key must be kept apart from the data it protects")) {
            try PharmacyStore.open(dataDirectory: inside, keyFile: inside.appendingPathComponent("master.key"))
        }
        #expect(!FileManager.default.fileExists(atPath: inside.appendingPathComponent("master.key").path))

        // One master-key rotation at a time, across processes: a second one is refused while the first holds the lock.
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key.path)
        let first = try FileKeyProvider(path: key, create: false), second = try FileKeyProvider(path: key, create: false)
        try first.rotate()
        #expect(throws: VaultError.keyStore("another key rotation is running (\(key.path).lock is locked); try again when it has finished")) {
            try second.rotate()
        }
        first.abandonRotation()
        let store2 = try PharmacyStore.open(dataDirectory: data, keyFile: key)
        #expect(store2.keys.provider.keyID == sealedWith, "an abandoned rotation changes nothing")
        try store2.dbPool.close()
    }
}

/// A flag and a counter shared with concurrent tasks in tests.
final class ManagedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
    func clear() { lock.withLock { value = false } }
}

final class ManagedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    var value: Int { lock.withLock { n } }
    func set(_ v: Int) { lock.withLock { n = v } }
    func add(_ v: Int) { lock.withLock { n += v } }
}
