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

    @Test("names are indexed as accent- and case-folded prefixes of at least three characters")
    func nameTerms() throws {
        let p = try JSON.parse(Data(#"{"resourceType":"Patient","name":[{"family":"Müller","given":["Zoë"]}]}"#.utf8))
        let terms = ResourceIndexer.terms(of: .patient, p)
        #expect(terms.contains(IndexTerm("family", "mul", sensitive: true)))
        #expect(!terms.contains(IndexTerm("family", "mu", sensitive: true)))
        #expect(terms.contains(IndexTerm("family:exact", "muller", sensitive: true)))
        #expect(terms.contains(IndexTerm("given", "zoe", sensitive: true)))
        #expect(terms.contains(IndexTerm("name", "zoe", sensitive: true)))
        #expect(!terms.contains(IndexTerm("name", "z", sensitive: true)))
        #expect(terms.allSatisfy { $0.sensitive })
    }

    @Test("e-mail and phone are indexed normalized, so any spelling of the same contact matches")
    func contactTerms() throws {
        let p = try JSON.parse(Data(#"""
            {"resourceType":"Patient","telecom":[{"system":"email","value":" Ava.Y@Example.org"},
             {"system":"phone","value":"+1 (555) 010-2000"},{"system":"fax","value":"555-010-9999"}]}
            """#.utf8))
        let terms = Set(ResourceIndexer.terms(of: .patient, p))
        #expect(terms.contains(IndexTerm("email", "ava.y@example.org", sensitive: true)))
        #expect(terms.contains(IndexTerm("phone", "5550102000", sensitive: true)))
        #expect(terms.contains(IndexTerm("telecom", "5550102000", sensitive: true)))
        #expect(!terms.contains { $0.value.contains("9999") }, "a fax number is not a searchable contact")
        for spelling in ["555.010.2000", "(555) 010-2000", "1-555-010-2000", "5550102000"] {
            #expect(ResourceIndexer.normalizedContact("phone", spelling) == "5550102000", "\(spelling)")
        }
        #expect(ResourceIndexer.normalizedContact("email", "no-at-sign") == nil)
        #expect(ResourceIndexer.normalizedContact("phone", "12") == nil)
    }
}
