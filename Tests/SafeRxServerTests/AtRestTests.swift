import Foundation
import SafeRxModel
import SafeRxPharmacy
import SafeRxSQL
@testable import SafeRxStore
import SafeRxStoreCore
import Testing

@Suite("PHI at rest") struct AtRestTests {
    @Test("no plaintext names, contacts, identifiers, directions or messages in the database files (on PostgreSQL: the whole cluster)")
    func noPlaintextPHI() async throws {
        let server = try await LiveServer.shared.value
        var bytes = Data()
        if server.store.dbPool.dialect == .postgres {
            // Every file of the PostgreSQL cluster: tables, indexes, the WAL, the server's log.
            let cluster = try #require(ProcessInfo.processInfo.environment["SAFERX_TEST_POSTGRES_DATA"], "the test script names the cluster's directory")
            let all = FileManager.default.enumerator(at: URL(fileURLWithPath: cluster), includingPropertiesForKeys: [.isRegularFileKey])?.allObjects as? [URL] ?? []
            for file in all where (try? file.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
                if let data = try? Data(contentsOf: file) { bytes.append(data) }
            }
        } else {
            let files = try FileManager.default.contentsOfDirectory(atPath: server.directory.path).filter { $0.hasPrefix("saferx.sqlite") }
            #expect(files.contains("saferx.sqlite"))
            for f in files { bytes.append(try Data(contentsOf: server.directory.appendingPathComponent(f))) }
        }
        #expect(bytes.count > 100_000)
        // Message text, not the word alone: "refill" is also an audit action and a fill event's name, in clear on
        // purpose (the PostgreSQL scan covers every test's database in the cluster).
        // Whole phone numbers and birth dates of real demo patients (a fragment like "555-" also occurs by chance in
        // the opaque UUIDs stored in clear).
        var personal: [String] = []
        for i in 1...10 {
            let p = try server.store.unprotectedRead(.patient, id: DemoPharmacy.patientID(i))
            personal += (p?["telecom"]?.arrayValue ?? []).compactMap { $0["value"]?.stringValue }
            if let b = p?["birthDate"]?.stringValue { personal.append(b) }
        }
        #expect(personal.count == 30)
        for needle in ["Alvarez", "Nakamura", "Whitaker", "@example.org", "MRN100001", "RX0000011", "Take 1", "my refill", "Your refill",
                       "Lisinopril", "patient001", "pharmacist2",
                       // the audit log's user agent (the tests send "saferx-tests") and free-text detail are sealed too
                       "saferx-tests", "params: "] + personal {
            #expect(bytes.range(of: Data(needle.utf8)) == nil, "found '\(needle)' in plaintext")
        }
    }
}
