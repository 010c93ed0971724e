import Foundation
import SafeRxModel
import SafeRxPolicy
import Testing

@Suite("Access policy") struct PolicyTests {
    @Test("unknown roles and malformed principals fail closed")
    func failClosed() {
        #expect(throws: PolicyError.self) {
            try AccessPolicy.scope(for: Principal(subject: "u", roleName: "root", tenant: "t", patientID: nil))
        }
        #expect(throws: PolicyError.self) {
            try AccessPolicy.scope(for: Principal(subject: "u", roleName: "patient", tenant: "t", patientID: nil))
        }
        #expect(throws: PolicyError.self) {
            try AccessPolicy.scope(for: Principal(subject: "u", roleName: "pharmacist", tenant: "", patientID: nil))
        }
        #expect(throws: PolicyError.self) {
            try AccessPolicy.scope(for: Principal(subject: "u", roleName: "pharmacist", tenant: "t", patientID: nil, grantedScopes: "user/Foo.read"))
        }
    }

    @Test("each role's rights")
    func rights() throws {
        func scope(_ role: String, patient: String? = nil) throws -> AccessScope {
            try AccessPolicy.scope(for: Principal(subject: "s", roleName: role, tenant: "t", patientID: patient))
        }
        let patient = try scope("patient", patient: "p1")
        #expect(patient.rows == .compartment(patientID: "p1"))
        #expect(patient.rights(for: .communication).create)
        #expect(!patient.rights(for: .medicationRequest).update)
        let admin = try scope("admin")
        #expect(ResourceType.allCases.allSatisfy { !admin.mayAccess($0) })
        let privacy = try scope("privacy-officer")
        #expect(ResourceType.allCases.filter { privacy.mayAccess($0) } == [.auditEvent])
        let support = try scope("support")
        #expect(!support.mayAccess(.medicationRequest) && !support.mayAccess(.communication))
        #expect(support.visibleElements(of: .patient) != nil)
        #expect(!(try scope("technician")).rights(for: .medicationRequest).changeStatus)
        #expect((try scope("pharmacist")).rights(for: .medicationRequest).changeStatus)
        #expect(try scope("partner").rows == .partner(clientID: "s"))
    }
}

@Suite("FHIR model") struct ModelTests {
    @Test("ids, references and dates")
    func syntax() {
        #expect(FHIRID.isValid("pat-0001"))
        #expect(!FHIRID.isValid("a/b") && !FHIRID.isValid("") && !FHIRID.isValid(String(repeating: "x", count: 65)))
        #expect(Reference("Patient/p1") == Reference(type: .patient, id: "p1"))
        #expect(Reference("Patient/") == nil && Reference("Foo/1") == nil && Reference("http://x/Patient/1") == nil)
        #expect(FHIRDate.isValidDate("1980-05-17") && !FHIRDate.isValidDate("1980-5-17"))
        #expect(FHIRDate.isValidDateTime("2026-01-02T03:04:05Z") && !FHIRDate.isValidDateTime("2026-01-02T03:04"))
    }

    @Test("names are indexed as accent- and case-folded prefixes of at least two characters")
    func nameTerms() throws {
        let p = try JSON.parse(Data(#"{"resourceType":"Patient","name":[{"family":"Müller","given":["Zoë"]}]}"#.utf8))
        let terms = ResourceIndexer.terms(of: .patient, p)
        #expect(terms.contains(IndexTerm("family", "mu", sensitive: true)))
        #expect(terms.contains(IndexTerm("name", "zoe", sensitive: true)))
        #expect(!terms.contains(IndexTerm("name", "z", sensitive: true)))
        #expect(terms.allSatisfy { $0.sensitive })
    }
}
