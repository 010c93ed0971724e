import Foundation
import SafeRxAudit
import SafeRxModel
import SafeRxPharmacy
import SafeRxPolicy
import SafeRxStore
import SafeRxStoreCore
import SafeRxVault
import Testing

/// Postmeds/Truepill replay: fulfillment files are the PHI that walks out of a pharmacy. SafeRx never writes one in
/// clear, and for any exported file it names every patient inside.
@Suite("Postmeds replay: fulfillment files")
struct FulfillmentFileTests {
    @Test("manifests are written only encrypted to the vendor's key, hold only shipping fields, and name their patients")
    func postmedsReplay() async throws {
        let server = try await LiveServer.start(patients: 12, accounts: 3, partnerPatients: 2, consentPatients: 0)
        let client = server.client()
        let pharmacist = try await server.token("pharmacist")
        let technician = try await server.token("technician")

        // Three fills verified today; one more left in preparation (not in the manifest).
        var dispenses: [String] = []
        for pid in ["pat-0002", "pat-0005", "pat-0009", "pat-0011"] {
            let rx = try await client.post("/fhir/MedicationRequest", token: pharmacist, FillLifecycleTests.prescription(patient: pid))
            let fill = try await client.post("/fhir/MedicationRequest/\(rx.json?["id"]?.stringValue ?? "")/$refill", token: pharmacist, nil)
            #expect(fill.status == 201, "\(fill.body)")
            dispenses.append(fill.json?["id"]?.stringValue ?? "")
        }
        for d in dispenses.prefix(3) {
            let path = "/fhir/MedicationDispense/\(d)/$transition"
            #expect(try await client.post(path, token: technician, FillLifecycleTests.transition("in-progress")).status == 200)
            #expect(try await client.post(path, token: pharmacist, FillLifecycleTests.transition("verified")).status == 200)
        }
        let expected = ["pat-0002", "pat-0005", "pat-0009"]

        let (privateKey, publicKey) = SealedFile.newKeyPair()
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("saferx-manifest-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: out) }
        let cli = SafeRxCLI(keyFile: server.keyFile, data: server.directory)
        let added = try cli.run(["fulfillment", "vendor-add", "--id", "shipfast", "--name", "ShipFast Fulfillment", "--public-key", publicKey.base64EncodedString()])
        #expect(added.status == 0, "\(added.output)")
        let unknown = try cli.run(["fulfillment", "export", "--vendor", "nobody", "--out", out.appendingPathComponent("x.srx").path])
        #expect(unknown.status != 0 && unknown.output.contains("No fulfillment vendor"))
        let file = out.appendingPathComponent("manifest.srx")
        let exported = try cli.run(["fulfillment", "export", "--vendor", "shipfast", "--out", file.path])
        #expect(exported.status == 0 && exported.output.contains("3 shipments"), "\(exported.output)")
        #expect(try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int == 0o600)
        // Exported again the same day (walk-through finding 5): nothing is sent twice.
        let again = try cli.run(["fulfillment", "export", "--vendor", "shipfast", "--out", out.appendingPathComponent("again.srx").path])
        #expect(again.status == 0 && again.output.contains("0 shipments") && again.output.contains("3 verified fills were left out"), "\(again.output)")
        try FileManager.default.removeItem(at: out.appendingPathComponent("again.srx"))

        // Nothing readable in the export directory. (The data directory is scanned once the server has stopped:
        // reading a live SQLite file from the server's own process would drop the server's POSIX locks.)
        var needles: [String] = []
        for pid in expected {
            let p = try await client.get("/fhir/Patient/\(pid)", token: pharmacist).json
            needles.append(p?["name"]?.arrayValue?.first?["family"]?.stringValue ?? "?")
            needles.append(p?["address"]?.arrayValue?.first?["line"]?.arrayValue?.first?.stringValue ?? "?")
        }
        func scan(_ dir: URL) throws {
            for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) {
                let bytes = try Data(contentsOf: dir.appendingPathComponent(name))
                for needle in needles {
                    #expect(bytes.range(of: Data(needle.utf8)) == nil, "\(needle) in clear in \(name)")
                }
            }
        }
        try scan(out)

        // The vendor decrypts it: only the shipping columns, only the verified fills.
        let sealed = try Data(contentsOf: file)
        let (recipient, csv) = try SealedFile.open(sealed, privateKey: privateKey)
        #expect(recipient == "shipfast")
        let rows = String(decoding: csv, as: UTF8.self).split(separator: "\r\n").map(String.init)
        #expect(rows.first == PharmacyStore.manifestColumns.joined(separator: ","))
        #expect(Set(rows.dropFirst().map { String($0.split(separator: ",")[0]) }) == Set(dispenses.prefix(3)))
        for needle in needles { #expect(rows.joined().contains(needle)) }
        #expect(!rows.joined().contains("Lisinopril") && !rows.joined().contains("MRN"))
        var tampered = sealed
        tampered[tampered.count - 5] ^= 1
        #expect(throws: VaultError.self) { try SealedFile.open(tampered, privateKey: privateKey) }
        #expect(throws: VaultError.self) { try SealedFile.open(sealed, privateKey: SealedFile.newKeyPair().privateKey) }

        // Breach scope: the file alone says who was in it.
        let scope = try cli.run(["fulfillment", "patients", file.path])
        #expect(scope.status == 0, "\(scope.output)")
        let listed = scope.output.split(separator: "\n").filter { $0.hasPrefix("Patient/") }.map { String($0.dropFirst(8)) }
        #expect(listed == expected, "\(scope.output)")
        let record = try await server.store.auditRecords().first { $0.entry.action == "export" && $0.entry.detail?.contains(SealedFile.digest(sealed)) == true }
        #expect(record?.entry.patients.sorted() == expected)

        // The vendor's returned tracking file marks the fills shipped.
        let returned = out.appendingPathComponent("returned.csv")
        try ("order_id,carrier,tracking_number\n" + dispenses.prefix(3).enumerated().map { "\($1),ups,1Z999AA1012345678\($0)" }.joined(separator: "\n") + "\n")
            .write(to: returned, atomically: true, encoding: .utf8)
        // A file with one bad line (a blank line before it counts: numbers are the file's own) changes nothing.
        let bad = out.appendingPathComponent("returned-bad.csv")
        try ("order_id,carrier,tracking_number\n\n\(dispenses[0]),ups,1Z999AA10123456780\n\(dispenses[1]),pony-express,123\n").write(to: bad, atomically: true, encoding: .utf8)
        let refused = try cli.run(["fulfillment", "import", bad.path])
        #expect(refused.status != 0 && refused.output.contains("Line 4: carrier 'pony-express' is not one of"), "\(refused.output)")
        #expect(FillLifecycleTests.fillState(try await client.get("/fhir/MedicationDispense/\(dispenses[0])", token: pharmacist)) != "completed", "nothing applied")
        let imported = try cli.run(["fulfillment", "import", returned.path])
        #expect(imported.status == 0 && imported.output.contains("Marked 3 of 3"), "\(imported.output)")
        // The same file applied again (and tracking numbers as carriers print them, with spaces) is not an error.
        let repeated = try cli.run(["fulfillment", "import", returned.path])
        #expect(repeated.status == 0 && repeated.output.contains("Marked 0 of 3") && repeated.output.contains("3 already shipped"), "\(repeated.output)")
        let shipped = try await client.get("/fhir/MedicationDispense/\(dispenses[0])", token: pharmacist)
        #expect(FillLifecycleTests.fillState(shipped) == "completed")

        await client.close()
        await server.stop(removingFiles: false)
        try scan(server.directory)
        try? FileManager.default.removeItem(at: server.directory)
        try? FileManager.default.removeItem(at: server.keyFile)
    }
}
