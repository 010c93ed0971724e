import SafeRxAudit
import SafeRxModel
import SafeRxVault
import Testing

/// What left the store is a typed part of the audit record, and one map turns it into the data elements a breach
/// notice names.
@Suite("Released elements") struct ReleasedElementsTests {
    static func entry() -> AuditEntry {
        AuditEntry(
            actor: .init(id: "user-0001", role: "technician", tenant: "t1"), action: "list", resourceType: "MedicationDispense",
            patients: ["pat-0002", "pat-0001"], outcome: "success", result: .ok, purpose: "TREAT", sourceIP: "127.0.0.1",
            userAgent: "test", requestID: "r1", detail: "work queue preparation 1-2 of 2")
    }

    @Test("released elements are stored in the record, in clear and hashed, and read back exactly; a record without them encodes as before")
    func roundTrip() throws {
        var e = Self.entry()
        let plain = AuditRecord(seq: 7, time: "2026-12-02T10:00:00.000Z", entry: e, prevHash: "00").canonicalBody(cipher: nil)
        #expect(!plain.contains("released"), "absent, the record's bytes (and old records' hashes) are unchanged")
        e.released = AuditEntry.Released(
            elements: ["Patient.name", "Patient.birthDate", "MedicationDispense.medicationReference"],
            byPatient: ["pat-0002": ["Patient.name"]])
        let body = AuditRecord(seq: 7, time: "2026-12-02T10:00:00.000Z", entry: e, prevHash: "00").canonicalBody(cipher: nil)
        let back = try #require(AuditRecord.decode(body: body, cipher: nil))
        #expect(back.entry.released == e.released)
        #expect(back.entry.released?.elements(for: "pat-0001") == ["MedicationDispense.medicationReference", "Patient.birthDate", "Patient.name"])
        #expect(back.entry.released?.elements(for: "pat-0002") == ["Patient.name"])
        #expect(AuditRecord.decode(body: body, cipher: nil)?.canonicalBody(cipher: nil) == body, "re-encoding is stable (the chain verifies)")
    }

    @Test("one map: every FHIR element the gate can release names a data element (the store's old copy missed daysSupply and dosageInstruction)")
    func oneMap() {
        #expect(ExposureMap.elements("MedicationDispense", visible: ["daysSupply", "dosageInstruction"]) == [.medications])
        #expect(ExposureMap.elements("MedicationDispense", visible: ["MedicationDispense.extension", "Patient.name"]) == [.address], "other types' elements are not this type's")
        #expect(ExposureMap.elements("Patient", visible: nil) == ExposureMap.whole("Patient"))
        #expect(ExposureMap.elements("Patient", visible: []) == [], "a release of ids only exposes no data element")
        for key in ExposureMap.byElement.keys {
            #expect(ResourceType(rawValue: String(key.prefix { $0 != "." })) != nil, "\(key) names a resource type SafeRx stores")
        }
    }
}
