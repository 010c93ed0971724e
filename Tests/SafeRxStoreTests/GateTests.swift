import Foundation
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
@testable import SafeRxStore
import SafeRxStoreCore
import Testing

/// The gate on its own: a temporary SQLite file (and a PostgreSQL database, when the test script runs a server), no HTTP. Every read takes a scope compiled into the SQL, answers
/// what the scope may see and nothing else, and is audited naming the patients whose data left.
@Suite("Gate") struct GateTests {
    /// A store in a temporary directory, with two patients of tenant `t1` and one of `t2`.
    struct Fixture {
        let dir: URL
        let store: PharmacyStore
        let ids: [String]

        static func make(_ engine: TestEngine = .sqlite) async throws -> Fixture {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("saferx-gate-\(UUID().uuidString)")
            let store = try PharmacyStore.open(dataDirectory: dir, keyFile: dir.appendingPathExtension("master.key"), options: engine.options())
            try await store.addTenant(id: "t1", name: "Pharmacy One")
            try await store.addTenant(id: "t2", name: "Pharmacy Two")
            var ids: [String] = []
            for (tenant, family) in [("t1", "Quixote"), ("t1", "Panza"), ("t2", "Dulcinea")] {
                let ctx = AccessContext(scope: .system(reason: "gate test seed", tenant: tenant, write: true), requestID: "seed", sourceIP: "local", userAgent: "test")
                let json = try JSON.parse(Data("""
                    {"resourceType":"Patient","name":[{"family":"\(family)","given":["Zebulon"]}],"birthDate":"1970-01-01","gender":"male",
                     "address":[{"line":["1 Windmill Road"],"city":"La Mancha","state":"TX","postalCode":"75001"}]}
                    """.utf8))
                ids.append(try await store.create(ctx, .patient, json).id)
            }
            return Fixture(dir: dir, store: store, ids: ids)
        }

        func context(_ principal: Principal) throws -> AccessContext {
            AccessContext(scope: try AccessPolicy.scope(for: principal), requestID: UUID().uuidString, sourceIP: "127.0.0.1", userAgent: "gate test")
        }

        func remove() {
            try? FileManager.default.removeItem(at: dir)
            try? FileManager.default.removeItem(at: dir.appendingPathExtension("master.key"))
        }
    }

    @Test("a patient's scope reads their own record; another patient's answers 404 exactly like one that does not exist; search finds only their own; each is audited", arguments: TestEngine.available)
    func patientScope(_ engine: TestEngine) async throws {
        let f = try await Fixture.make(engine)
        defer { f.remove() }
        let me = try f.context(Principal(subject: "user-1", roleName: "patient", tenant: "t1", patientID: f.ids[0]))
        let own = try await f.store.read(me, .patient, id: f.ids[0])
        #expect(own.json?["name"]?.arrayValue?.first?["family"]?.stringValue == "Quixote")
        var records = try await f.store.auditRecords()
        #expect(records.last?.entry.action == "read" && records.last?.entry.patients == [f.ids[0]] && records.last?.entry.outcome == "success")

        func refusal(_ id: String) async -> FHIRError? {
            do { _ = try await f.store.read(me, .patient, id: id); return nil } catch { return error }
        }
        let other = try #require(await refusal(f.ids[1]))
        let missing = try #require(await refusal("pat-does-not-exist"))
        #expect(other.kind == .notFound && missing.kind == .notFound)
        #expect(other.diagnostics.replacingOccurrences(of: f.ids[1], with: "X") == missing.diagnostics.replacingOccurrences(of: "pat-does-not-exist", with: "X"))
        records = try await f.store.auditRecords()
        #expect(records.suffix(2).map(\.entry.outcome) == ["denied", "not-found"], "the refusal is recorded as what it was, the answer is the same")

        let page = try await f.store.search(me, try SearchQuery.parse(.patient, [], scope: me.scope))
        #expect(page.matches.map(\.id) == [f.ids[0]] && page.total == 1)
    }

    @Test("staff see their own pharmacy only: another tenant's patient is 404 and never in a search", arguments: TestEngine.available)
    func tenantScope(_ engine: TestEngine) async throws {
        let f = try await Fixture.make(engine)
        defer { f.remove() }
        let pharmacist = try f.context(Principal(subject: "user-2", roleName: "pharmacist", tenant: "t1", patientID: nil))
        let page = try await f.store.search(pharmacist, try SearchQuery.parse(.patient, [("_count", "50")], scope: pharmacist.scope))
        #expect(Set(page.matches.map(\.id)) == Set(f.ids.prefix(2)))
        await #expect(throws: FHIRError.self) { _ = try await f.store.read(pharmacist, .patient, id: f.ids[2]) }
        let last = try await f.store.auditRecords().last
        #expect(last?.entry.outcome == "denied" && last?.entry.patients.isEmpty == true, "a refusal names no patient: nothing left")
    }

    @Test("unknown or malformed policy fails closed: no scope, so no query")
    func failClosed() {
        #expect(throws: PolicyError.self) { try AccessPolicy.scope(for: Principal(subject: "u", roleName: "janitor", tenant: "t1", patientID: nil)) }
        #expect(throws: PolicyError.self) { try AccessPolicy.scope(for: Principal(subject: "u", roleName: "patient", tenant: "t1", patientID: nil)) }
    }

    @Test("the database file and its journal (on PostgreSQL: every file of the cluster) hold no plaintext of what was written", arguments: TestEngine.available)
    func noPlaintext(_ engine: TestEngine) async throws {
        let f = try await Fixture.make(engine)
        defer { f.remove() }
        await f.store.auditWriter.checkpoint()
        var files = try FileManager.default.contentsOfDirectory(at: f.dir, includingPropertiesForKeys: nil)
        #expect(!files.isEmpty)
        if engine == .postgres, let cluster = TestEngine.postgresDataDirectory {
            // Every file of the cluster: tables, indexes, the WAL, the server's log.
            let all = FileManager.default.enumerator(at: cluster, includingPropertiesForKeys: [.isRegularFileKey])?.allObjects as? [URL] ?? []
            let regular = all.filter { (try? $0.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true }
            #expect(regular.contains { $0.path.contains("/pg_wal/") }, "the cluster's files are readable here")
            files += regular
        }
        for file in files {
            // A file the server removed meanwhile (a temporary one) held nothing to find.
            guard let bytes = try? Data(contentsOf: file) else { continue }
            for needle in ["Quixote", "Windmill", "La Mancha", "1970-01-01"] {
                #expect(bytes.range(of: Data(needle.utf8)) == nil, "\(needle) in \(file.lastPathComponent)")
            }
        }
    }

    @Test("audit records written before `released` existed are still read: their detail's element lists become typed releases")
    func legacyReleasedDetail() {
        #expect(LegacyReleasedDetail.parse("params: _id; results: 1; elements: name,telecom", resourceType: "Patient")
            == AuditEntry.Released(elements: ["Patient.name", "Patient.telecom"]))
        #expect(LegacyReleasedDetail.parse("elements[pat-1]: name; elements[pat-2]: name,birthDate", resourceType: "Patient")
            == AuditEntry.Released(elements: [], byPatient: ["pat-1": ["Patient.name"], "pat-2": ["Patient.birthDate", "Patient.name"]]))
        #expect(LegacyReleasedDetail.parse("work queue preparation 1-2 of 2; listed: Patient.name,MedicationDispense.medicationReference", resourceType: "MedicationDispense")
            == AuditEntry.Released(elements: ["MedicationDispense.medicationReference", "Patient.name"]))
        #expect(LegacyReleasedDetail.parse("params: _id; results: 3", resourceType: "Patient") == nil)
        #expect(LegacyReleasedDetail.parse(nil, resourceType: "Patient") == nil)
    }

    @Test("breach scope: a restriction limits the record's own type and the types it names; other types in the answer left whole")
    func exposedElements() {
        #expect(PharmacyStore.exposed("Patient", recordType: "Patient", nil) == ExposureMap.whole("Patient"))
        #expect(PharmacyStore.exposed("Patient", recordType: "Patient", ["Patient.name"]) == [.name])
        #expect(PharmacyStore.exposed("Patient", recordType: "Patient", []) == [])
        #expect(PharmacyStore.exposed("MedicationRequest", recordType: "Patient", ["Patient.name"]) == ExposureMap.whole("MedicationRequest"))
        #expect(PharmacyStore.exposed("Patient", recordType: "MedicationDispense", ["Patient.name", "Patient.birthDate"]) == [.name, .birthDate])
    }

    @Test("write(ctx): what a service changes and the audit record of the change commit together, or neither does", arguments: TestEngine.available)
    func writeIsAtomic(_ engine: TestEngine) async throws {
        let f = try await Fixture.make(engine)
        defer { f.remove() }
        let ctx = AccessContext.operatorCommand(reason: "gate test", tenant: "t1", write: true)
        @Sendable func incident(_ id: String) -> Incident {
            Incident(
                id: id, tenant: "t1", discovered: "2026-12-01", declared: Instant.now(), declaredBy: "gate test", actors: ["user-1"], from: nil, to: nil,
                files: [], description: "test", whatWeAreDoing: "")
        }
        let before = try await f.store.auditRecords().count
        await #expect(throws: FHIRError.self) {
            try await f.store.write(ctx) { tx in
                try IncidentRepository.insert(incident("inc-rolled-back"), declaredAt: Date(), tx.db)
                try tx.record("incident-declare", detail: "incident inc-rolled-back")
                throw FHIRError.invalid("the service changed its mind after recording")
            }
        }
        #expect(try await f.store.incident(id: "inc-rolled-back") == nil)
        #expect(try await f.store.auditRecords().count == before)

        let seq = try await f.store.write(ctx) { tx in
            try IncidentRepository.insert(incident("inc-kept"), declaredAt: Date(), tx.db)
            return try tx.record("incident-declare", tenant: "t1", detail: "incident inc-kept")
        }
        #expect(try await f.store.incident(id: "inc-kept")?.tenant == "t1")
        let records = try await f.store.auditRecords()
        #expect(records.count == before + 1 && records.last?.seq == seq)
        #expect(records.last?.entry.actor.id == "operator:\(AccessContext.operatorLogin)" && records.last?.entry.action == "incident-declare")
    }
}
