import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SafeRxModel
import SafeRxPharmacy
import SafeRxPolicy
import SafeRxStoreCore

/// Patient accounts: sign-up, password reset, second factor, caregivers (`/account/...`), and caregiver tokens
/// (`/auth/caregiver`). Bodies and answers are small JSON objects; every answer is `Cache-Control: no-store`.
struct AccountController: Sendable {
    let auth: AuthService
    let fhir: FHIRController
    /// The pharmacy sign-ups are for when the body names none.
    let signupTenant: String

    func register(on router: Router<SafeRxContext>) {
        router.post("/account/signup") { req, ctx in try await self.signup(req, ctx) }
        router.post("/account/signup/verify") { req, ctx in try await self.signupVerify(req, ctx) }
        router.post("/account/password/reset") { req, ctx in try await self.reset(req, ctx) }
        router.post("/account/password/reset/verify") { req, ctx in try await self.resetVerify(req, ctx) }
        router.get("/account") { req, ctx in try await self.me(req, ctx) }
        router.post("/account/mfa/totp") { req, ctx in try await self.totpBegin(req, ctx) }
        router.post("/account/mfa/totp/verify") { req, ctx in try await self.totpVerify(req, ctx) }
        router.post("/account/mfa/totp/remove") { req, ctx in try await self.totpRemove(req, ctx) }
        router.post("/account/mfa/recovery-codes") { req, ctx in try await self.recoveryCodes(req, ctx) }
        router.post("/account/password") { req, ctx in try await self.changePassword(req, ctx) }
        router.get("/account/caregivers") { req, ctx in try await self.caregivers(req, ctx) }
        router.post("/account/caregivers") { req, ctx in try await self.grant(req, ctx) }
        router.post("/account/caregivers/:grant/revoke") { req, ctx in try await self.revoke(req, ctx) }
        router.post("/auth/caregiver") { req, ctx in try await self.caregiverToken(req, ctx) }
    }

    func json(_ value: JSON, status: HTTPResponse.Status = .ok) -> Response { Self.plain(value, status: status) }

    /// The body as an object with only the named string fields (`required` must be present).
    func fields(_ req: Request, required: [String], optional: [String] = []) async throws(FHIRError) -> [String: String] {
        let body = try await fhir.body(req)
        guard case .object(let o) = body else {
            throw FHIRError.invalid("The body must be a JSON object with \((required + optional).joined(separator: ", "))")
        }
        var out: [String: String] = [:]
        for (key, value) in o {
            guard required.contains(key) || optional.contains(key) else {
                throw FHIRError.invalid("Unknown field '\(String(key.prefix(40)))'; expected \((required + optional).joined(separator: ", "))", at: key)
            }
            guard let s = value.stringValue else { throw FHIRError.invalid("'\(key)' must be a string", at: key) }
            out[key] = s
        }
        for key in required where (out[key] ?? "").isEmpty { throw FHIRError.invalid("Missing field '\(key)'", at: key) }
        return out
    }

    func bearer(_ req: Request) throws(FHIRError) -> String {
        guard let header = req.headers[.authorization], header.lowercased().hasPrefix("bearer ") else { throw FHIRError.unauthorized() }
        return String(header.dropFirst(7))
    }

    // MARK: Sign-up and reset

    func signup(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let f = try await fields(req, required: ["family", "given", "birthDate", "rxNumber"], optional: ["pharmacy"])
        let tenant = f["pharmacy"] ?? signupTenant
        guard FHIRID.isValid(tenant) else { throw FHIRError.invalid("pharmacy must be a pharmacy id", at: "pharmacy") }
        let id = try await auth.startSignup(
            tenant: tenant, IdentityClaim(family: f["family"]!, given: f["given"]!, birthDate: f["birthDate"]!, rxNumber: f["rxNumber"]!),
            request: fhir.requestInfo(req, ctx))
        return json(.object(["signup": .string(id), "message": .string(AuthService.sameAnswer)]), status: .accepted)
    }

    func signupVerify(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let f = try await fields(req, required: ["signup", "code", "username", "password"])
        let user = try await auth.completeSignup(
            id: f["signup"]!, code: f["code"]!, username: f["username"]!, password: f["password"]!, request: fhir.requestInfo(req, ctx))
        return json(.object(["username": .string(user.username), "patient": .string("Patient/\(user.patientID ?? "")"), "mfa": "offered: POST /account/mfa/totp"]), status: .created)
    }

    func reset(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let f = try await fields(req, required: ["username"])
        let id = try await auth.startPasswordReset(username: f["username"]!, request: fhir.requestInfo(req, ctx))
        return json(
            .object(["reset": .string(id), "message": "If the username belongs to a patient account, a code is on its way to the contact on the pharmacy record"]),
            status: .accepted)
    }

    func resetVerify(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let f = try await fields(req, required: ["reset", "code", "password"])
        try await auth.completePasswordReset(id: f["reset"]!, code: f["code"]!, password: f["password"]!, request: fhir.requestInfo(req, ctx))
        return json(.object(["status": "password changed; every session of the account has ended"]))
    }

    // MARK: The signed-in account

    func me(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let (user, _) = try await auth.account(fromToken: bearer(req))
        let mfa = try await auth.mfaStatus(user)
        var o: [String: JSON] = [
            "username": .string(user.username), "role": .string(user.role),
            "mfa": .object(["enabled": .bool(mfa.enabled), "required": .bool(AuthService.requiresMFA(user.role)), "recoveryCodesLeft": .int(Int64(mfa.recoveryCodesLeft))]),
        ]
        if let p = user.patientID { o["patient"] = .string("Patient/\(p)") }
        return json(.object(o))
    }

    func totpBegin(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let (user, _) = try await auth.account(fromToken: bearer(req))
        let e = try await auth.beginTOTP(user, request: fhir.requestInfo(req, ctx))
        return json(.object([
            "secret": .string(e.secret), "otpauth_uri": .string(e.uri),
            "next": "Add the secret to an authenticator app, then POST /account/mfa/totp/verify with {\"code\": \"<6 digits>\"}",
        ]))
    }

    func totpVerify(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let (user, _) = try await auth.account(fromToken: bearer(req))
        let f = try await fields(req, required: ["code"])
        let codes = try await auth.confirmTOTP(user, code: f["code"]!, request: fhir.requestInfo(req, ctx))
        return json(.object([
            "enabled": true, "recovery_codes": .array(codes.map { .string($0) }),
            "next": "Keep the recovery codes somewhere safe: each signs in once without the app. Sign in again with 'otp' set to the app's next code (each code works only once, so the one just used is refused until the app shows a new one).",
        ]))
    }

    func totpRemove(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let (user, _) = try await auth.account(fromToken: bearer(req))
        let f = try await fields(req, required: ["code"])
        try await auth.removeTOTP(user, code: f["code"]!, request: fhir.requestInfo(req, ctx))
        return json(.object(["enabled": false]))
    }

    /// `POST /account/password {"current", "password"}`: every token of the account ends (sign in again).
    func changePassword(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let (user, _) = try await auth.account(fromToken: bearer(req))
        let f = try await fields(req, required: ["current", "password"])
        try await auth.changePassword(user, current: f["current"]!, new: f["password"]!, request: fhir.requestInfo(req, ctx))
        return json(.object(["changed": true, "next": "Every session and token of this account has ended: sign in again with the new password."]))
    }

    func recoveryCodes(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let (user, _) = try await auth.account(fromToken: bearer(req))
        let f = try await fields(req, required: ["code"])
        let codes = try await auth.regenerateRecoveryCodes(user, code: f["code"]!, request: fhir.requestInfo(req, ctx))
        return json(.object(["recovery_codes": .array(codes.map { .string($0) })]))
    }

    // MARK: Caregivers

    static func describe(_ g: CaregiverGrant, username: String?) -> JSON {
        var o: [String: JSON] = [
            "id": .string(g.id), "patient": .string("Patient/\(g.patientID)"), "access": .string(g.access.rawValue),
            "expires": .string(Instant.string(g.expires)), "created": .string(Instant.string(g.created)),
            "status": .string(g.revoked != nil ? "revoked" : (g.isLive ? "active" : "expired")),
        ]
        if let username { o["caregiver"] = .string(username) }
        if let r = g.revoked { o["revoked"] = .string(Instant.string(r)) }
        return .object(o)
    }

    func caregivers(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let access = try await fhir.access(req, ctx, interaction: "caregiver-list", type: .patient)
        let (given, received) = try await fhir.pharmacy.caregivers.grants(access)
        let names = try await fhir.pharmacy.directory.usernames(access, ids: given.map(\.caregiverUserID))
        let rows = given.map { Self.describe($0, username: names[$0.caregiverUserID]) }
        return json(.object(["given": .array(rows), "received": .array(received.map { Self.describe($0, username: nil) })]))
    }

    func grant(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let access = try await fhir.access(req, ctx, interaction: "caregiver-grant", type: .patient)
        let f = try await fields(req, required: ["caregiver", "access", "expires"])
        guard let kind = CaregiverGrant.Access(rawValue: f["access"]!) else {
            throw FHIRError.invalid("access must be one of \(CaregiverGrant.Access.allCases.map(\.rawValue).joined(separator: ", "))", at: "access")
        }
        // A date means through the end of that day (UTC): the last millisecond of it, so it reads back as that day.
        guard let expires = FHIRDate.instant(f["expires"]!, end: true).map({ f["expires"]!.count == 10 ? $0.addingTimeInterval(-0.001) : $0 }) else {
            throw FHIRError.invalid("expires must be a date (YYYY-MM-DD) or a date-time with a time zone", at: "expires")
        }
        let g = try await fhir.pharmacy.caregivers.grant(access, caregiverUsername: f["caregiver"]!, access: kind, expires: expires)
        return json(Self.describe(g, username: f["caregiver"]), status: .created)
    }

    func revoke(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let access = try await fhir.access(req, ctx, interaction: "caregiver-revoke", type: .patient)
        let id = ctx.parameters.get("grant") ?? ""
        guard FHIRID.isValid(id) else { throw FHIRError.invalid("Invalid grant id") }
        let g = try await fhir.pharmacy.caregivers.revoke(access, grant: id)
        return json(Self.describe(g, username: nil))
    }

    func caregiverToken(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let (user, claims) = try await auth.account(fromToken: bearer(req))
        let f = try await fields(req, required: ["patient"])
        let patient = f["patient"]!.hasPrefix("Patient/") ? String(f["patient"]!.dropFirst(8)) : f["patient"]!
        let t = try await auth.caregiverToken(user, patient: patient, parent: claims, request: fhir.requestInfo(req, ctx))
        return json(.object([
            "access_token": .string(t.accessToken), "token_type": "Bearer", "expires_in": .int(Int64(t.expiresIn)), "scope": .string(t.scope),
            "patient": .string("Patient/\(patient)"),
        ]))
    }
}

/// Secure-messaging views over Communication: threads with unread counts and assignees, and assignment to staff.
struct MessagingController: Sendable {
    let fhir: FHIRController

    func register(on router: Router<SafeRxContext>) {
        router.get("/messages/threads") { req, ctx in try await self.threads(req, ctx) }
        router.get("/messages/unread") { req, ctx in try await self.unread(req, ctx) }
        router.post("/messages/threads/:id/assign") { req, ctx in try await self.assign(req, ctx) }
        router.get("/queue/fills") { req, ctx in try await self.fills(req, ctx) }
    }

    /// A work list's `_count` or `_offset`, a whole number in `range`.
    static func pageNumber(_ name: String, _ value: String, _ range: ClosedRange<Int>) throws(FHIRError) -> Int {
        guard let n = Int(value), range.contains(n) else {
            throw FHIRError.invalid("\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound)", at: name)
        }
        return n
    }

    /// `GET /queue/fills?state=S[&_count=50][&_offset=0]`: one page of the fill work queue (the console's, for API
    /// clients): per fill the dispense, patient, name and birth date, drug and state, with the state's `total`. A work
    /// list like the inbox: audited as `list` naming the patients on the page; opening a fill is the read that counts.
    func fills(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let access = try await fhir.access(req, ctx, interaction: "list", type: .medicationDispense)
        var state: FillState?
        var count = 50, offset = 0
        for (k, v) in try fhir.queryItems(req) {
            switch k {
            case "state":
                guard let s = FillState(rawValue: v) else {
                    throw FHIRError.invalid("state must be one of " + FillState.allCases.map(\.rawValue).joined(separator: ", "), at: "state")
                }
                state = s
            case "_count": count = try Self.pageNumber(k, v, 1...100)
            case "_offset": offset = try Self.pageNumber(k, v, 0...1_000_000)
            default:
                throw FHIRError.invalid("Unknown parameter '\(String(k.prefix(40)))'; supported: state, _count, _offset")
            }
        }
        guard let state else { throw FHIRError.invalid("Name the queue: state=preparation (or in-progress, verified, on-hold, ...)", at: "state") }
        let page = try await fhir.pharmacy.fills.queue(access, state: state, count: count, offset: offset)
        return AccountController.plain(.object([
            "fills": .array(page.entries.map { e in
                .object([
                    "dispense": .string("MedicationDispense/\(e.dispenseID)"), "patient": .string("Patient/\(e.patientID)"),
                    "name": .string(e.patientName), "birthDate": .string(e.birthDate), "medication": .string(e.medication),
                    "state": .string(e.state.rawValue), "lastUpdated": .string(e.lastUpdated),
                ])
            }),
            "total": .int(Int64(page.total)), "offset": .int(Int64(offset)), "count": .int(Int64(count)),
        ]))
    }

    /// `GET /messages/threads[?assigned=me][&_count=20][&_offset=0]`: one page of threads, newest first, with the
    /// totals (`total`, `unread`). Audited as a list of the patients on the page.
    func threads(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let access = try await fhir.access(req, ctx, interaction: "list", type: .communication)
        var assignedTo: String? = nil
        var count = 20, offset = 0
        for (k, v) in try fhir.queryItems(req) {
            switch k {
            case "assigned" where v == "me": assignedTo = access.scope.principal.subject
            case "_count": count = try Self.pageNumber(k, v, 1...100)
            case "_offset": offset = try Self.pageNumber(k, v, 0...1_000_000)
            default:
                throw FHIRError.invalid("Unknown parameter '\(String(k.prefix(40)))'; supported: assigned=me, _count, _offset")
            }
        }
        let page = try await fhir.pharmacy.messaging.threads(access, assignedTo: assignedTo, count: count, offset: offset)
        // Staff see who a thread is assigned to by username; patients and caregivers by role only.
        let staff = [Role.pharmacist.rawValue, Role.technician.rawValue].contains(access.scope.principal.roleName)
        let assignees = try await fhir.pharmacy.directory.accounts(access, ids: page.threads.compactMap(\.assignee))
            .mapValues { staff ? $0.username : $0.role }
        return AccountController.plain(.object([
            "threads": .array(page.threads.map { t in
                var o: [String: JSON] = [
                    "thread": .string("Communication/\(t.id)"), "patient": .string("Patient/\(t.patientID)"), "messages": .int(Int64(t.messages)),
                    "unread": .int(Int64(t.unread)), "lastSent": .string(t.lastSent),
                ]
                if let a = t.assignee { o["assignee"] = .string(assignees[a] ?? "pharmacy staff") }
                return .object(o)
            }),
            "total": .int(Int64(page.total)), "offset": .int(Int64(offset)), "count": .int(Int64(count)),
            "unread": .int(Int64(page.unread)),
        ]))
    }

    /// `GET /messages/unread`: numbers only, naming no other patient.
    func unread(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let access = try await fhir.access(req, ctx, interaction: "count", type: .communication)
        let (messages, threads) = try await fhir.pharmacy.messaging.unread(access)
        return AccountController.plain(.object(["unread": .int(Int64(messages)), "threads": .int(Int64(threads))]))
    }

    func assign(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let id = try fhir.resourceID(ctx)
        let access = try await fhir.access(req, ctx, interaction: "assign", type: .communication)
        let body = try await fhir.body(req)
        guard case .object(let o) = body, o.count == 1, let username = o["assignee"]?.stringValue else {
            throw FHIRError.invalid("The body must be {\"assignee\": \"<username of a pharmacist or technician>\"}")
        }
        let (thread, assignee) = try await fhir.pharmacy.messaging.assign(access, message: id, to: username)
        return AccountController.plain(.object(["thread": .string("Communication/\(thread)"), "assignee": .string(assignee)]))
    }
}

extension AccountController {
    static func plain(_ value: JSON, status: HTTPResponse.Status = .ok) -> Response {
        var h = HTTPFields()
        h[.contentType] = "application/json; charset=utf-8"
        h[.cacheControl] = "no-store"
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: value.encoded())))
    }
}
