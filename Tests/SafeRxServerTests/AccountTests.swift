import Foundation
import HTTPTypes
import SafeRxAudit
import SafeRxModel
import SafeRxPharmacy
import SafeRxStore
import SafeRxStoreCore
import SafeRxVault
import Testing

/// Patient sign-up, password rules, second factors, password reset — over HTTP against the real server.
@Suite("Patient accounts")
struct AccountTests {
    func post(_ client: HTTPClient, _ path: String, _ body: [String: String], token: String? = nil) async throws -> Reply {
        try await client.send(
            .post, path, token: token, body: String(decoding: JSON.object(body.mapValues { .string($0) }).encoded(), as: UTF8.self),
            contentType: "application/json")
    }

    /// A patient's record facts as a pharmacist sees them: (family, given, birthDate, rxNumber, email).
    func facts(_ server: LiveServer, _ client: HTTPClient, _ patient: String) async throws -> (String, String, String, String, String) {
        let staff = try await server.token("pharmacist")
        let p = try #require(try await client.get("/fhir/Patient/\(patient)", token: staff).json)
        let rx = try await client.get("/fhir/MedicationRequest?patient=\(patient)", token: staff).entries
        let number = try #require(rx.first?["resource"]?["identifier"]?.arrayValue?.first?["value"]?.stringValue)
        let email = try #require(p["telecom"]?.arrayValue?.first { $0["system"]?.stringValue == "email" }?["value"]?.stringValue)
        let name = try #require(p["name"]?.arrayValue?.first)
        return (
            name["family"]?.stringValue ?? "", name["given"]?.arrayValue?.first?.stringValue ?? "", p["birthDate"]?.stringValue ?? "", number, email
        )
    }

    @Test("TOTP matches RFC 6238's SHA-1 vectors; base32 round-trips")
    func totpVectors() {
        let totp = TOTP(secret: Data("12345678901234567890".utf8))
        #expect(totp.code(step: 59 / 30, digits: 8) == "94287082")
        #expect(totp.code(step: 1_111_111_109 / 30, digits: 8) == "07081804")
        #expect(totp.code(step: 20_000_000_000 / 30, digits: 8) == "65353130")
        #expect(Base32.decode(totp.base32) == totp.secret)
        #expect(totp.base32 == "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
        let now = Date()
        #expect(totp.match(totp.code(at: now), at: now) == TOTP.step(at: now))
        #expect(totp.match(totp.code(at: now), at: now, after: TOTP.step(at: now)) == nil, "a used step is refused")
        #expect(totp.match("12345", at: now) == nil && totp.match("abcdef", at: now) == nil)
    }

    @Test("Passwords after NIST SP 800-63B: length, breached list, repetition, sequences, context words; no composition rules")
    func passwordPolicy() throws {
        let policy = PasswordPolicy.standard
        #expect(policy.breachedCount > 19_000)
        func refused(_ p: String, _ words: [String] = [], _ message: String) {
            #expect(throws: FHIRError.self) { try policy.check(p, context: words) }
            do { try policy.check(p, context: words) } catch { #expect(error.diagnostics.contains(message), "\(p): \(error.diagnostics)") }
        }
        refused("short pass", [], "at least 12")
        refused("qwerty123456", [], "data breaches")
        refused("QWERTY123456", [], "data breaches")
        refused("aaaaaaaaaaaaaa", [], "repeated")
        refused("abcabcabcabc", [], "repeated")
        refused("123456789012", [], "sequential")
        refused("saferxsaferx1", [], "service name")
        refused("rowan.synthetica!", ["rowan.synthetica"], "username")
        refused(String(repeating: "x", count: 129), [], "at most 128")
        // No composition rules: lower-case words alone are fine, so are spaces and any Unicode.
        try policy.check("correct horse battery staple")
        try policy.check("blåbærsyltetøy på brødskive")
        #expect(throws: FHIRError.self) { try PasswordPolicy(breached: nil).check("correct horse battery staple") }
    }

    @Test("Sign-up: name, birth date and Rx number prove identity; the code goes to the contact on record; same answer when nothing matches")
    func signUp() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let (family, given, birth, rx, email) = try await facts(server, client, "pat-0052")
            // Wrong birth date: the same 202 and a sign-up id, but nothing is sent.
            var r = try await post(client, "/account/signup", ["family": family, "given": given, "birthDate": "1900-01-01", "rxNumber": rx])
            #expect(r.status == 202 && r.json?["message"]?.stringValue == AuthService.sameAnswer)
            let deadID = try #require(r.json?["signup"]?.stringValue)
            r = try await post(client, "/account/signup", ["family": family, "given": given, "birthDate": birth, "rxNumber": "RX9999999"])
            #expect(r.status == 202 && r.json?["message"]?.stringValue == AuthService.sameAnswer)
            r = try await post(client, "/account/signup", ["family": family, "given": given, "birthDate": "17/04/1961", "rxNumber": rx])
            #expect(r.status == 400 && r.issue.contains("YYYY-MM-DD"), "\(r.issue)")
            r = try await post(client, "/account/signup", ["family": family, "given": given, "birthDate": birth])
            #expect(r.status == 400 && r.issue.contains("rxNumber"))
            // The right facts (names in any case).
            r = try await post(client, "/account/signup", ["family": family.uppercased(), "given": given.lowercased(), "birthDate": birth, "rxNumber": rx])
            #expect(r.status == 202)
            let signup = try #require(r.json?["signup"]?.stringValue)
            let note = try await server.notification(to: email, kind: "signup-code")
            let body = note["body"]?.stringValue ?? ""
            #expect(!body.contains(family) && !body.contains(given) && !body.contains(rx), "no PHI in the message")
            let code = String(try #require(body.firstMatch(of: /code is ([0-9]{8})/)?.1))
            #expect(server.outbox().filter { $0["to"]?.stringValue == email }.count == 1, "nothing was sent for the failed attempts")
            // A code for the dead id, a wrong code, a weak password, then the real thing.
            r = try await post(client, "/account/signup/verify", ["signup": deadID, "code": code, "username": "rowan52", "password": "correct horse battery staple"])
            #expect(r.status == 400 && r.issue.contains("start sign-up again"), "\(r.issue)")
            r = try await post(client, "/account/signup/verify", ["signup": signup, "code": "00000000", "username": "rowan52", "password": "correct horse battery staple"])
            #expect(r.status == 400 && r.issue.contains("keeps working"), "\(r.issue)")
            // Without the right code nobody learns that a username is taken (finding 4 of the outside review).
            r = try await post(client, "/account/signup/verify", ["signup": signup, "code": "00000001", "username": "patient001", "password": "correct horse battery staple"])
            #expect(r.status == 400, "a wrong code answers 400 before the username is looked at: \(r.body)")
            r = try await post(client, "/account/signup/verify", ["signup": signup, "code": code, "username": "rowan52", "password": "qwerty123456"])
            #expect(r.status == 400 && r.issue.contains("data breaches"))
            r = try await post(client, "/account/signup/verify", ["signup": signup, "code": code, "username": "patient001", "password": "correct horse battery staple"])
            #expect(r.status == 409)
            r = try await post(client, "/account/signup/verify", ["signup": signup, "code": code, "username": "rowan52", "password": "correct horse battery staple"])
            #expect(r.status == 201 && r.json?["patient"]?.stringValue == "Patient/pat-0052", "\(r.body)")
            r = try await post(client, "/account/signup/verify", ["signup": signup, "code": code, "username": "rowan52b", "password": "correct horse battery staple"])
            #expect(r.status == 400, "a code works once")
            r = try await post(client, "/auth/login", ["username": "rowan52", "password": "correct horse battery staple"])
            #expect(r.status == 200)
            let token = try #require(r.json?["access_token"]?.stringValue)
            #expect(try await client.get("/fhir/Patient/pat-0052", token: token).status == 200)
            #expect(try await client.get("/fhir/Patient/pat-0053", token: token).status == 404)
            // Signing up again for a record with an account: same answer; the contact is told, no code.
            r = try await post(client, "/account/signup", ["family": family, "given": given, "birthDate": birth, "rxNumber": rx])
            #expect(r.status == 202)
            _ = try await server.notification(to: email, kind: "signup-existing")
            // The identity checks are in the audit log, naming the patient when one matched.
            let checks = try await server.store.auditRecords().filter { $0.entry.action == "signup-check" }
            #expect(checks.contains { $0.entry.patients.contains("pat-0052") && $0.entry.outcome == "success" })
            #expect(checks.contains { $0.entry.patients.isEmpty && $0.entry.outcome == "failure" })
        }
    }

    @Test("One-time codes: five wrong guesses and the code is dead")
    func codeAttempts() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let (family, given, birth, rx, email) = try await facts(server, client, "pat-0054")
            let r = try await post(client, "/account/signup", ["family": family, "given": given, "birthDate": birth, "rxNumber": rx])
            let signup = try #require(r.json?["signup"]?.stringValue)
            let body = try await server.notification(to: email, kind: "signup-code")["body"]?.stringValue ?? ""
            let code = String(try #require(body.firstMatch(of: /code is ([0-9]{8})/)?.1))
            for _ in 0..<PharmacyStore.oneTimeCodeAttempts {
                _ = try await post(client, "/account/signup/verify", ["signup": signup, "code": "11111111", "username": "guesser54", "password": "correct horse battery staple"])
            }
            let last = try await post(client, "/account/signup/verify", ["signup": signup, "code": code, "username": "guesser54", "password": "correct horse battery staple"])
            #expect(last.status == 400)
        }
    }

    @Test("TOTP: enrol, recovery codes, sign-in needs the code, codes are not replayable, recovery codes work once")
    func totpEnrolment() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let password = "a quiet morning in the pharmacy garden"
            try await server.store.addUser(
                UserAccount(id: "user-mfa-41", username: "mfa41", passwordHash: server.auth.hashPassword(password), role: "patient", tenant: DemoPharmacy.tenant, patientID: "pat-0041"))
            var r = try await post(client, "/auth/login", ["username": "mfa41", "password": password])
            let token = try #require(r.json?["access_token"]?.stringValue)
            r = try await client.send(.post, "/account/mfa/totp", token: token, body: "{}", contentType: "application/json")
            #expect(r.status == 200 && (r.json?["otpauth_uri"]?.stringValue ?? "").hasPrefix("otpauth://totp/SafeRx:mfa41?secret="))
            let secret = try #require(Base32.decode(r.json?["secret"]?.stringValue ?? ""))
            let totp = TOTP(secret: secret)
            r = try await post(client, "/account/mfa/totp/verify", ["code": "000000"], token: token)
            #expect(r.status == 400)
            r = try await post(client, "/account/mfa/totp/verify", ["code": totp.code()], token: token)
            let recovery = (r.json?["recovery_codes"]?.arrayValue ?? []).compactMap { $0.stringValue }
            #expect(r.status == 200 && recovery.count == 10)
            // Without the code, with a wrong one, with the next step's code, and that code again.
            r = try await post(client, "/auth/login", ["username": "mfa41", "password": password])
            #expect(r.status == 401 && r.issue.hasPrefix("mfa_required"))
            r = try await post(client, "/auth/login", ["username": "mfa41", "password": password, "otp": "123456"])
            #expect(r.status == 401 && r.issue.hasPrefix("mfa_invalid"))
            let next = totp.code(step: TOTP.step(at: Date()) + 1)
            r = try await post(client, "/auth/login", ["username": "mfa41", "password": password, "otp": next])
            #expect(r.status == 200)
            r = try await post(client, "/auth/login", ["username": "mfa41", "password": password, "otp": next])
            #expect(r.status == 401, "a code is accepted once")
            r = try await post(client, "/auth/login", ["username": "mfa41", "password": password, "otp": recovery[0].lowercased()])
            #expect(r.status == 200, "recovery codes are not case-sensitive")
            r = try await post(client, "/auth/login", ["username": "mfa41", "password": password, "otp": recovery[0]])
            #expect(r.status == 401, "a recovery code is spent")
            let fresh = try #require(try await post(client, "/auth/login", ["username": "mfa41", "password": password, "otp": recovery[1]]).json?["access_token"]?.stringValue)
            r = try await client.get("/account", token: fresh)
            #expect(r.json?["mfa"]?["enabled"] == .bool(true) && r.json?["mfa"]?["recoveryCodesLeft"] == .int(8))
            // A patient may remove it with a code.
            r = try await post(client, "/account/mfa/totp/remove", ["code": recovery[2]], token: fresh)
            #expect(r.status == 200)
            r = try await post(client, "/auth/login", ["username": "mfa41", "password": password])
            #expect(r.status == 200)
            let events = try await server.store.auditRecords().filter { $0.entry.actor.id == "user-mfa-41" }.map(\.entry.action)
            #expect(events.contains("mfa-enrol") && events.contains("mfa-remove"))
        }
    }

    @Test("Staff must enrol a second factor before any data: the first sign-in gets an enrolment-only token")
    func staffMFA() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let password = "filling trays before the morning rush"
            try await server.store.addUser(
                UserAccount(id: "user-tech-mfa", username: "tech-mfa", passwordHash: server.auth.hashPassword(password), role: "technician", tenant: DemoPharmacy.tenant, patientID: nil))
            var r = try await post(client, "/auth/login", ["username": "tech-mfa", "password": password])
            #expect(r.status == 200 && r.json?["mfa_enrollment_required"] == .bool(true) && r.json?["scope"]?.stringValue == "account/mfa")
            let enrol = try #require(r.json?["access_token"]?.stringValue)
            r = try await client.get("/fhir/Patient/pat-0001", token: enrol)
            #expect(r.status == 401 && r.issue.contains("only enrol a second factor"))
            r = try await client.send(.post, "/account/mfa/totp", token: enrol, body: "{}", contentType: "application/json")
            let totp = TOTP(secret: try #require(Base32.decode(r.json?["secret"]?.stringValue ?? "")))
            r = try await post(client, "/account/mfa/totp/verify", ["code": totp.code()], token: enrol)
            #expect(r.status == 200)
            r = try await post(client, "/auth/login", ["username": "tech-mfa", "password": password, "otp": totp.code(step: TOTP.step(at: Date()) + 1)])
            let token = try #require(r.json?["access_token"]?.stringValue)
            #expect(r.json?["mfa_enrollment_required"] == nil)
            #expect(try await client.get("/fhir/Patient/pat-0001", token: token).status == 200)
            r = try await post(client, "/account/mfa/totp/remove", ["code": totp.code()], token: token)
            #expect(r.status == 403, "staff keep their second factor")
        }
    }

    @Test("Password reset: a code to the contact on record; sessions end; unknown usernames get the same answer")
    func passwordReset() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let (_, _, _, _, email) = try await facts(server, client, "pat-0042")
            let old = "an old password nobody remembers now"
            try await server.store.addUser(
                UserAccount(id: "user-reset-42", username: "reset42", passwordHash: server.auth.hashPassword(old), role: "patient", tenant: DemoPharmacy.tenant, patientID: "pat-0042"))
            let session = try #require(try await post(client, "/auth/login", ["username": "reset42", "password": old]).json?["access_token"]?.stringValue)
            var r = try await post(client, "/account/password/reset", ["username": "nobody-here"])
            #expect(r.status == 202 && r.json?["reset"] != nil)
            r = try await post(client, "/account/password/reset", ["username": "reset42"])
            #expect(r.status == 202)
            let reset = try #require(r.json?["reset"]?.stringValue)
            let body = try await server.notification(to: email, kind: "reset-code")["body"]?.stringValue ?? ""
            let code = String(try #require(body.firstMatch(of: /code is ([0-9]{8})/)?.1))
            r = try await post(client, "/account/password/reset/verify", ["reset": reset, "code": code, "password": "password1234"])
            #expect(r.status == 400, "a weak password is refused and the code is not spent")
            r = try await post(client, "/account/password/reset/verify", ["reset": reset, "code": code, "password": "a brand new passphrase for spring"])
            #expect(r.status == 200)
            #expect(try await client.get("/fhir/Patient/pat-0042", token: session).status == 401, "the old session ended")
            #expect(try await post(client, "/auth/login", ["username": "reset42", "password": old]).status == 401)
            #expect(try await post(client, "/auth/login", ["username": "reset42", "password": "a brand new passphrase for spring"]).status == 200)
        }
    }
}
