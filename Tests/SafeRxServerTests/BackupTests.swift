import Foundation
import SafeRxSQL
import SafeRxAudit
import SafeRxModel
import SafeRxPharmacy
@testable import SafeRxStore
import SafeRxStoreCore
import SafeRxVault
import Testing

@Suite("Encrypted backups") struct BackupTests {
    @Test("backup while serving, verify, restore: the restored store serves the same data and its audit log verifies")
    func roundTrip() async throws {
        try await LiveServer.start(patients: 10, accounts: 3, partnerPatients: 1).using { server in
            let work = server.directory.appendingPathExtension("backups")
            defer { try? FileManager.default.removeItem(at: work) }
            try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
            try await server.client().using { client in
                let token = try await server.token("pharmacist")

                let file = work.appendingPathComponent("store.srxb")
                async let reads: [Int] = (1...30).asyncMap { i in try await client.get("/fhir/Patient/\(DemoPharmacy.patientID(1 + i % 10))", token: token).status }
                let made = try await Backup.create(server.store, to: file)
                #expect(try await reads.allSatisfy { $0 == 200 })
                #expect(made.bytes > 100_000)
                #expect(try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int == 0o600)

                let provider = try FileKeyProvider(path: server.keyFile, create: false)
                let summary = try await Backup.verify(file, keyProvider: provider)
                #expect(summary.patients == 15)  // 10 + the second tenant's 5
                #expect(summary.auditRecords > 0)

                let target = work.appendingPathComponent("restored")
                let restored = try await Backup.restore(file, to: target, keyProvider: provider)
                #expect(restored.resources == summary.resources)
                let copy = try PharmacyStore(dataDirectory: target, keyProvider: provider)
                #expect(try await copy.verifyAudit().ok)
                for (type, id) in [(ResourceType.patient, "pat-0001"), (.medicationRequest, "rx-pat-0002-1"), (.communication, "msg-pat-0003-1"),
                                   (.medication, "med-1"), (.patient, "pat-0010")] {
                    let original = try server.store.unprotectedRead(type, id: id)
                    #expect(original != nil)
                    #expect(try copy.unprotectedRead(type, id: id) == original, "\(type.rawValue)/\(id)")
                }
                #expect(try await copy.user(named: "patient001") != nil)
                try copy.dbPool.close()

                // A second restore into the same directory is refused and changes nothing there.
                await #expect(throws: BackupError.self) { _ = try await Backup.restore(file, to: target, keyProvider: provider) }
                #expect(try await Backup.verify(file, keyProvider: provider).resources == summary.resources)
            }
        }
    }

    @Test("truncated, corrupted, foreign or wrong-key backups: a precise error, and nothing restored")
    func failureModes() async throws {
        try await LiveServer.start(patients: 6, accounts: 1, partnerPatients: 1).using { server in
            let work = server.directory.appendingPathExtension("bad-backups")
            defer { try? FileManager.default.removeItem(at: work) }
            try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
            let file = work.appendingPathComponent("good.srxb")
            _ = try await Backup.create(server.store, to: file)
            let good = try Data(contentsOf: file)
            let provider = try FileKeyProvider(path: server.keyFile, create: false)

            func attempt(_ bytes: Data, _ name: String) async -> String {
                let f = work.appendingPathComponent(name)
                _ = FileManager.default.createFile(atPath: f.path, contents: bytes)
                let target = work.appendingPathComponent("restore-\(name)")
                do {
                    _ = try await Backup.restore(f, to: target, keyProvider: provider)
                    return "restored"
                } catch {
                    let left = (try? FileManager.default.contentsOfDirectory(atPath: target.path)) ?? []
                    #expect(left.isEmpty, "\(name) left \(left) behind")
                    return "\(error)"
                }
            }
            let headerEnd = 16 + 4 + Int(Backup.readUInt32(good.subdata(in: 16..<20)))
            for (cut, expected) in [(10, "ends inside its signature"), (18, "ends inside the header length"), (40, "ends inside the header"),
                                    (headerEnd, "ends after 0 of"), (headerEnd + 100, "ends inside chunk 1 of"),
                                    (good.count - 1, "ends inside chunk")] {
                let message = await attempt(good.prefix(cut), "cut-\(cut)")
                #expect(message.hasPrefix("backup truncated") && message.contains(expected), "cut at \(cut): \(message)")
            }
            var flipped = good
            flipped[headerEnd + 2000] ^= 0x20
            #expect(await attempt(flipped, "flipped").contains("chunk 1 of 1 failed authentication"))
            var header = good
            header[headerEnd - 3] ^= 0x01
            let headerMessage = await attempt(header, "header")
            #expect(headerMessage.hasPrefix("backup corrupted"), "\(headerMessage)")
            #expect(await attempt(good + Data("extra".utf8), "appended").contains("unexpected bytes after the last chunk"))
            #expect(await attempt(Data("SQLite format 3\0 and more bytes".utf8), "foreign").hasPrefix("not a SafeRx backup"))

            let otherKey = try FileKeyProvider(path: work.appendingPathComponent("other.key"), create: true)
            do {
                _ = try await Backup.verify(file, keyProvider: otherKey)
                Issue.record("verified with the wrong key")
            } catch {
                #expect("\(error)".contains("wrong master key") && "\(error)".contains(provider.keyID), "\(error)")
            }
        }
    }
}

extension BackupTests {
    @Test("a multi-chunk backup: reordered chunks, a dropped last chunk and a tampered header are all refused, without a crash")
    func chunksAndHeader() async throws {
        try await LiveServer.start(patients: 160, accounts: 1, partnerPatients: 1).using { server in
            let work = server.directory.appendingPathExtension("chunks")
            defer { try? FileManager.default.removeItem(at: work) }
            try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
            let file = work.appendingPathComponent("big.srxb")
            let made = try await Backup.create(server.store, to: file)
            #expect(made.chunks >= 2, "the store must span several chunks for this test")
            let good = try Data(contentsOf: file)
            let provider = try FileKeyProvider(path: server.keyFile, create: false)
            #expect(try await Backup.verify(file, keyProvider: provider).patients == 165)

            // Split into header and chunks.
            let headerLength = Int(Backup.readUInt32(good.subdata(in: 16..<20)))
            let headerEnd = 20 + headerLength
            var chunks: [Data] = []
            var offset = headerEnd
            while offset < good.count {
                let n = Int(Backup.readUInt32(good.subdata(in: offset..<offset + 4)))
                chunks.append(good.subdata(in: offset..<offset + 4 + n))
                offset += 4 + n
            }
            #expect(chunks.count == made.chunks)
            let prefix = good.prefix(headerEnd)
            func check(_ bytes: Data, _ name: String) async -> String {
                let f = work.appendingPathComponent(name)
                _ = FileManager.default.createFile(atPath: f.path, contents: bytes)
                do {
                    _ = try await Backup.verify(f, keyProvider: provider)
                    return "verified"
                } catch {
                    return "\(error)"
                }
            }
            var swapped = chunks
            swapped.swapAt(0, 1)
            #expect(await check(prefix + swapped.reduce(Data(), +), "swapped").contains("chunk 1 of \(chunks.count) failed authentication"))
            #expect(await check(prefix + chunks.dropLast().reduce(Data(), +), "dropped").contains("ends after \(chunks.count - 1) of \(chunks.count) chunks"))
            // Header fields edited to absurd values: refused before anything is allocated or looped over.
            let headerJSON = String(decoding: good.subdata(in: 20..<headerEnd), as: UTF8.self)
            for (field, value) in [("chunks", "-1"), ("chunks", "999999999"), ("bytes", "9223372036854775807"), ("bytes", "-5")] {
                let edited = headerJSON.replacingOccurrences(
                    of: #""\#(field)":[0-9]+"#, with: "\"\(field)\":\(value)", options: .regularExpression)
                #expect(edited != headerJSON)
                let bytes = good.prefix(16) + Backup.uint32(edited.utf8.count) + Data(edited.utf8) + chunks.reduce(Data(), +)
                let message = await check(bytes, "header-\(field)\(value)")
                #expect(message.hasPrefix("backup corrupted"), "\(field)=\(value): \(message)")
            }
        }
    }
}

extension Sequence where Element: Sendable {
    func asyncMap<T: Sendable>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for e in self { out.append(try await transform(e)) }
        return out
    }
}
