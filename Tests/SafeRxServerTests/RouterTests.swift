import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import SafeRxModel
@testable import SafeRxPharmacy
@testable import SafeRxServer
import Testing

/// The router alone, through Hummingbird's testing framework (no socket, no background services): what it answers
/// to requests it refuses before any service runs. Every refusal is an `OperationOutcome` with the status its kind
/// maps to, and the security headers are on every answer.
@Suite("Router") struct RouterTests {
    /// The application over a small demo store in a temporary directory; the test owns both.
    static func withApp(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("saferx-router-\(UUID().uuidString)")
        defer {
            try? FileManager.default.removeItem(at: dir)
            try? FileManager.default.removeItem(at: dir.appendingPathExtension("master.key"))
        }
        let pharmacy = try await Pharmacy.open(dataDirectory: dir, keyFile: dir.appendingPathExtension("master.key"), passwordCost: 4)
        _ = try await pharmacy.seedDemo(DemoPharmacy(patientCount: 4, patientAccounts: 1, partnerPatients: 1, consentPatients: 1))
        var logger = Logger(label: "saferx.router-test")
        logger.logLevel = .critical
        let app = try await SafeRxServer.application(pharmacy: pharmacy, configuration: .init(), logger: logger)
        try await app.test(.router, body)
    }

    static func outcome(_ response: TestResponse) throws -> (code: String, diagnostics: String) {
        let json = try JSON.parse(Data(buffer: response.body))
        #expect(json["resourceType"]?.stringValue == "OperationOutcome")
        let issue = json["issue"]?.arrayValue?.first
        return (issue?["code"]?.stringValue ?? "", issue?["diagnostics"]?.stringValue ?? "")
    }

    @Test("no route: 404 OperationOutcome naming the path, with the security headers")
    func unknownRoute() async throws {
        try await Self.withApp { client in
            try await client.execute(uri: "/no/such/endpoint", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[.contentType]?.hasPrefix("application/fhir+json") == true)
                #expect(response.headers[.cacheControl] == "no-store")
                #expect(response.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
                #expect(response.headers[HTTPField.Name("Content-Security-Policy")!]?.contains("default-src 'none'") == true)
                let o = try Self.outcome(response)
                #expect(o.code == "not-found" && o.diagnostics.contains("/no/such/endpoint"))
            }
        }
    }

    @Test("no token: 401 with WWW-Authenticate; a token that is not one: 401; neither names a patient")
    func unauthenticated() async throws {
        try await Self.withApp { client in
            try await client.execute(uri: "/fhir/Patient/pat-0001", method: .get) { response in
                #expect(response.status == .unauthorized)
                #expect(response.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
                let o = try Self.outcome(response)
                #expect(o.code == "login")
            }
            try await client.execute(uri: "/fhir/Patient/pat-0001", method: .get, headers: [.authorization: "Bearer not-a-token"]) { response in
                #expect(response.status == .unauthorized)
                #expect(!String(buffer: response.body).contains("pat-0001"))
            }
        }
    }

    @Test("a method the endpoint does not take: 405; the CapabilityStatement needs no token")
    func methods() async throws {
        try await Self.withApp { client in
            try await client.execute(uri: "/fhir/metadata", method: .get) { response in
                #expect(response.status == .ok)
                let json = try JSON.parse(Data(buffer: response.body))
                #expect(json["resourceType"]?.stringValue == "CapabilityStatement")
            }
            try await client.execute(uri: "/fhir/Patient/pat-0001", method: .post, body: ByteBuffer(string: "{}")) { response in
                #expect(response.status == .methodNotAllowed)
                #expect(response.headers[.allow] == "GET, PUT, DELETE")
                let o = try Self.outcome(response)
                #expect(o.code == "not-supported" && o.diagnostics.contains("POST is not allowed on /fhir/[type]/[id]"))
            }
            try await client.execute(uri: "/fhir/Patient", method: .delete) { response in
                #expect(response.status == .methodNotAllowed)
                #expect(response.headers[.allow] == "GET, POST")
            }
        }
    }

    @Test("Hummingbird's own refusals keep their meaning: each 4xx maps to the domain error of the same status")
    func hummingbirdStatuses() {
        let cases: [(HTTPResponse.Status, FHIRError.Kind)] = [
            (.badRequest, .invalid), (.unauthorized, .unauthenticated), (.forbidden, .forbidden), (.notFound, .notFound),
            (.methodNotAllowed, .methodNotAllowed), (.conflict, .conflict), (.gone, .gone), (.preconditionFailed, .preconditionFailed),
            (.contentTooLarge, .tooLarge), (.unsupportedMediaType, .unsupportedMediaType), (.unprocessableContent, .businessRule),
            (.tooManyRequests, .throttled), (.serviceUnavailable, .unavailable), (.internalServerError, .internal),
        ]
        for (status, kind) in cases {
            let mapped = FHIRErrorMiddleware.map(HTTPError(status), path: "/fhir/Patient", method: .post)
            #expect(mapped.kind == kind, "\(status.code)")
            #expect(mapped.kind.httpStatus == status, "\(status.code) answers \(mapped.kind.httpStatus.code)")
        }
        // A 4xx SafeRx has no kind for stays a client error with Hummingbird's reason, never a 500.
        #expect(FHIRErrorMiddleware.map(HTTPError(.init(code: 418)), path: "/", method: .get).kind == .invalid)
    }
}
