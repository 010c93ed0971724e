import Crypto
import Foundation
import HTTPTypes
import JWTKit
import SafeRxModel
import SafeRxPharmacy
import SafeRxStore
import SafeRxStoreCore
import SafeRxVault
import Testing

@Suite("Token attacks") struct TokenAttackTests {
    static func b64url(_ d: Data) -> String {
        d.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func claims(_ server: LiveServer, user: String = "patient010", exp: Date = Date().addingTimeInterval(600), aud: String = AuthService.audience)
        async throws -> AccessClaims
    {
        let u = try await server.store.user(named: user)!
        return AccessClaims(
            iss: .init(value: AuthService.issuer), aud: .init(value: [aud]), sub: .init(value: u.id), exp: .init(value: exp),
            iat: .init(value: Date()), jti: .init(value: UUID().uuidString), role: u.role, tenant: u.tenant, patient: u.patientID,
            scope: "patient/*.read", kind: "user")
    }

    static func expectRejected(_ client: HTTPClient, _ token: String, _ why: Comment) async throws {
        let r = try await client.get("/fhir/Patient/pat-0010", token: token)
        #expect(r.status == 401, why)
        #expect(r.json?["resourceType"]?.stringValue == "OperationOutcome")
        #expect(!r.body.contains("pat-0010\""), why)
    }

    @Test("alg none, wrong key, HS256, expired, wrong audience, garbage: all 401")
    func forgedTokens() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let good = try await server.token("patient010")
            #expect(try await client.get("/fhir/Patient/pat-0010", token: good).status == 200)

            // alg: none, with the real payload.
            let payload = good.split(separator: ".")[1]
            let noneHeader = Self.b64url(Data(#"{"alg":"none","typ":"JWT"}"#.utf8))
            try await Self.expectRejected(client, "\(noneHeader).\(payload).", "alg none")
            try await Self.expectRejected(client, "\(noneHeader).\(payload)", "alg none without signature part")

            // Signed with another Ed25519 key, same kid.
            let rogue = JWTKeyCollection()
            await rogue.add(eddsa: EdDSA.PrivateKey(backing: Curve25519.Signing.PrivateKey()), kid: "saferx-1")
            try await Self.expectRejected(client, try await rogue.sign(Self.claims(server), kid: "saferx-1"), "wrong key")

            // HS256 keyed with the server's public key (algorithm confusion).
            let hs = JWTKeyCollection()
            await hs.add(hmac: HMACKey(key: SymmetricKey(data: server.store.tokenSigningKey.publicKey.rawRepresentation)), digestAlgorithm: .sha256, kid: "saferx-1")
            try await Self.expectRejected(client, try await hs.sign(Self.claims(server), kid: "saferx-1"), "HS256")

            // Right key, but expired or for another audience.
            let real = JWTKeyCollection()
            await real.add(eddsa: EdDSA.PrivateKey(backing: server.store.tokenSigningKey), kid: "saferx-1")
            try await Self.expectRejected(
                client, try await real.sign(Self.claims(server, exp: Date().addingTimeInterval(-5)), kid: "saferx-1"), "expired")
            try await Self.expectRejected(
                client, try await real.sign(Self.claims(server, aud: "someone-else"), kid: "saferx-1"), "wrong audience")
            // A tampered payload under a real signature.
            let parts = good.split(separator: ".")
            let forgedPayload = Self.b64url(Data(#"{"sub":"user-0001","role":"pharmacist","tenant":"demo-pharmacy"}"#.utf8))
            try await Self.expectRejected(client, "\(parts[0]).\(forgedPayload).\(parts[2])", "tampered payload")
            try await Self.expectRejected(client, "not-a-jwt", "garbage")
            let none = try await client.get("/fhir/Patient/pat-0010")
            #expect(none.status == 401)
            #expect(none.headers[.wwwAuthenticate] != nil)
        }
    }

    @Test("a token stops working at logout and when its user is disabled")
    func revocation() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let login = try await client.send(
                .post, "/auth/login", body: "{\"username\":\"patient011\",\"password\":\"\(server.password("patient011"))\"}",
                contentType: "application/json")
            let token = login.json?["access_token"]?.stringValue ?? ""
            #expect(try await client.get("/fhir/Patient/pat-0011", token: token).status == 200)
            #expect(try await client.send(.post, "/auth/logout", token: token).status == 200)
            try await Self.expectRejected(client, token, "revoked")

            try await server.store.addUser(UserAccount(id: "user-to-disable", username: "to-disable", passwordHash: server.auth.hashPassword("a-long-enough-password"),
                                                       role: "patient", tenant: DemoPharmacy.tenant, patientID: "pat-0012"))
            let t2 = try await server.token("to-disable")
            #expect(try await client.get("/fhir/Patient/pat-0012", token: t2).status == 200)
            #expect(try await server.store.setUserDisabled(username: "to-disable", true))
            let r = try await client.get("/fhir/Patient/pat-0012", token: t2)
            #expect(r.status == 401)
            let relogin = try await client.send(.post, "/auth/login", body: #"{"username":"to-disable","password":"a-long-enough-password"}"#, contentType: "application/json")
            #expect(relogin.status == 401)
        }
    }

    @Test("failed logins slow down and lock, and never say whether the username exists")
    func loginThrottling() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            func attempt(_ user: String) async throws -> Reply {
                try await client.send(.post, "/auth/login", body: "{\"username\":\"\(user)\",\"password\":\"wrong-password-123\"}", contentType: "application/json")
            }
            var known: [Reply] = [], unknown: [Reply] = []
            for _ in 0..<AuthService.lockAfter {
                known.append(try await attempt("patient020"))
                unknown.append(try await attempt("nobody-at-all"))
            }
            for (k, u) in zip(known, unknown) {
                #expect(k.status == 401 && u.status == 401)
                #expect(k.issue == u.issue)
            }
            let lockedKnown = try await attempt("patient020")
            let lockedUnknown = try await attempt("nobody-at-all")
            #expect(lockedKnown.status == 429 && lockedUnknown.status == 429)
            #expect(lockedKnown.issue == lockedUnknown.issue)
            // Even the right password is refused while locked.
            let right = try await client.send(
                .post, "/auth/login", body: "{\"username\":\"patient020\",\"password\":\"\(server.password("patient020"))\"}", contentType: "application/json")
            #expect(right.status == 429)
        }
    }

    @Test("a malformed or unknown scope fails closed")
    func failClosed() async throws {
        let server = try await LiveServer.shared.value
        await #expect(throws: FHIRError.self) { _ = try await server.token("pharmacist", scope: "everything/please") }
        try await server.client().using { client in
            // A correctly signed token whose role the policy does not know.
            let real = JWTKeyCollection()
            await real.add(eddsa: EdDSA.PrivateKey(backing: server.store.tokenSigningKey), kid: "saferx-1")
            var c = try await Self.claims(server, user: "pharmacist")
            c.role = "superuser"
            let r = try await client.get("/fhir/Patient/pat-0001", token: try await real.sign(c, kid: "saferx-1"))
            #expect(r.status == 403)
            var readOnly = try await Self.claims(server, user: "pharmacist")
            readOnly.scope = "user/*.read"
            let ro = try await real.sign(readOnly, kid: "saferx-1")
            #expect(try await client.get("/fhir/Patient/pat-0001", token: ro).status == 200)
            let w = try await client.send(.post, "/fhir/Medication", token: ro, body: #"{"resourceType":"Medication","status":"active"}"#)
            #expect(w.status == 403)
        }
    }
}
