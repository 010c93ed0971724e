import Foundation
import HTTPTypes
import SafeRxModel
import SafeRxPharmacy
import Testing

@Suite("Bad input") struct BadInputTests {
    static func count(_ server: LiveServer, _ client: HTTPClient, _ token: String) async throws -> Int {
        try await client.get("/fhir/Communication?patient=pat-0040&_count=0", token: token).total ?? -1
    }

    @Test("each class of bad input gets a precise OperationOutcome, never a 500, and nothing is written")
    func badInput() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let token = try await server.token("pharmacist")
            let before = try await Self.count(server, client, token)
            let good = #"{"resourceType":"Communication","status":"completed","subject":{"reference":"Patient/pat-0040"}}"#
            let cases: [(String, HTTPRequest.Method, String, String?, String, Int, String)] = [
                ("malformed JSON", .post, "/fhir/Communication", "{\"resourceType\": \"Communication\",", "application/fhir+json", 400, "not valid JSON"),
                ("not an object", .post, "/fhir/Communication", "[1,2]", "application/fhir+json", 400, "JSON object"),
                ("wrong content type", .post, "/fhir/Communication", good, "text/plain", 415, "Content-Type"),
                ("unknown resource type", .get, "/fhir/Prescription/1", nil, "", 404, "Unknown resource type"),
                ("unknown type on create", .post, "/fhir/Banana", good, "application/fhir+json", 404, "Unknown resource type"),
                ("resourceType mismatch", .post, "/fhir/Patient", good, "application/fhir+json", 400, "resourceType must be 'Patient'"),
                ("wrong field type", .post, "/fhir/Communication",
                 #"{"resourceType":"Communication","status":7,"subject":{"reference":"Patient/pat-0040"}}"#, "application/fhir+json", 400, "Communication.status"),
                ("bad code", .post, "/fhir/Communication",
                 #"{"resourceType":"Communication","status":"sent-ish","subject":{"reference":"Patient/pat-0040"}}"#, "application/fhir+json", 400, "not a valid code"),
                ("bad date", .post, "/fhir/Patient", #"{"resourceType":"Patient","birthDate":"1990-13-45"}"#, "application/fhir+json", 400, "Patient.birthDate"),
                ("unknown element", .post, "/fhir/Patient", #"{"resourceType":"Patient","ssn":"123-45-6789"}"#, "application/fhir+json", 400, "Unknown element 'ssn'"),
                ("bad reference", .post, "/fhir/Communication",
                 #"{"resourceType":"Communication","status":"completed","subject":{"reference":"http://evil.example/Patient/1"}}"#, "application/fhir+json", 400, "relative reference"),
                ("missing required", .post, "/fhir/Communication", #"{"resourceType":"Communication","status":"completed"}"#, "application/fhir+json", 400, "subject"),
                ("invalid id", .get, "/fhir/Patient/bad$id!", nil, "", 400, "Invalid resource id"),
                ("overlong id", .get, "/fhir/Patient/" + String(repeating: "a", count: 65), nil, "", 400, "Invalid resource id"),
                ("unknown search parameter", .get, "/fhir/Patient?shoe-size=9", nil, "", 400, "Unknown search parameter 'shoe-size'"),
                ("bad _count", .get, "/fhir/Patient?_count=lots", nil, "", 400, "_count"),
                ("bad date search", .get, "/fhir/MedicationRequest?authoredon=yesterday", nil, "", 400, "authoredon"),
                ("unsupported include", .get, "/fhir/MedicationRequest?_include=*", nil, "", 400, "_include"),
                ("SQL injection in id", .get, "/fhir/Patient?_id=1'%20OR%20'1'='1", nil, "", 400, "not a valid id"),
                ("AuditEvent is read-only", .post, "/fhir/AuditEvent", #"{"resourceType":"AuditEvent"}"#, "application/fhir+json", 403, "may not create"),
                ("unknown endpoint", .get, "/nothing/here", nil, "", 404, "No such endpoint"),
            ]
            for (name, method, path, body, type, status, message) in cases {
                let r = try await client.send(method, path, token: token, body: body, contentType: type)
                #expect(r.status == status, "\(name): \(r.status) \(r.body)")
                #expect(r.json?["resourceType"]?.stringValue == "OperationOutcome", "\(name)")
                #expect(r.issue.contains(message), "\(name): '\(r.issue)'")
            }
            // Injection strings in search values are data, never SQL.
            for q in ["name=%27%3B%20DROP%20TABLE%20resource_version%3B--", "family=Robert%27)%20OR%201%3D1--", "identifier=%22%20OR%20%22%22%3D%22",
                      "status=active%27%20OR%20%271%27%3D%271", "_lastUpdated=ge2020-01-01%27--"] {
                let r = try await client.get("/fhir/Patient?\(q)", token: token)
                #expect(r.status == 200 || r.status == 400, "\(q): \(r.status)")
                #expect(r.status != 200 || r.total == 0, "\(q)")
            }
            // Over 1 MiB.
            let huge = #"{"resourceType":"Communication","status":"completed","subject":{"reference":"Patient/pat-0040"},"payload":[{"contentString":""#
                + String(repeating: "x", count: (1 << 20) + 10) + "\"}]}"
            let big = try await client.send(.post, "/fhir/Communication", token: token, body: huge)
            #expect(big.status == 413)
            #expect(big.json?["resourceType"]?.stringValue == "OperationOutcome")
            #expect(try await Self.count(server, client, token) == before)
            #expect(try await client.get("/fhir/Patient?_count=1", token: token).status == 200)
        }
    }

    @Test("health and a truthful CapabilityStatement")
    func metadata() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let health = try await client.get("/health")
            #expect(health.status == 200 && health.body == #"{"status":"ok"}"#)
            let cap = try await client.get("/fhir/metadata")
            #expect(cap.status == 200)
            #expect(cap.json?["fhirVersion"]?.stringValue == "4.0.1")
            let resources = cap.json?["rest"]?.arrayValue?.first?["resource"]?.arrayValue ?? []
            #expect(Set(resources.compactMap { $0["type"]?.stringValue }) == Set(ResourceType.allCases.map(\.rawValue)))
            let audit = resources.first { $0["type"]?.stringValue == "AuditEvent" }
            #expect(audit?["interaction"]?.arrayValue?.contains { $0["code"]?.stringValue == "create" } == false)
        }
    }
}
