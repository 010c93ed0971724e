import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SafeRxModel
import SafeRxPharmacy
import SafeRxPolicy
import SafeRxStoreCore

/// `/auth/login` (users), `/auth/token` (OAuth2 client credentials for partners), `/auth/logout`.
struct AuthController: Sendable {
    let auth: AuthService
    let fhir: FHIRController

    func register(on router: Router<SafeRxContext>) {
        router.post("/auth/login") { req, ctx in try await self.login(req, ctx) }
        router.post("/auth/token") { req, ctx in try await self.token(req, ctx) }
        router.post("/auth/logout") { req, ctx in try await self.logout(req, ctx) }
    }

    func json(_ value: JSON, status: HTTPResponse.Status = .ok) -> Response {
        var h = HTTPFields()
        h[.contentType] = "application/json; charset=utf-8"
        h[.init("Pragma")!] = "no-cache"
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: value.encoded())))
    }

    func tokenResponse(_ t: IssuedToken) -> Response {
        var o: [String: JSON] = [
            "access_token": .string(t.accessToken), "token_type": "Bearer", "expires_in": .int(Int64(t.expiresIn)),
            "scope": .string(t.scope),
        ]
        if let p = t.patient { o["patient"] = .string("Patient/\(p)") }
        if t.mfaEnrollmentRequired {
            o["mfa_enrollment_required"] = true
            o["next"] = "Staff accounts need a second factor: POST /account/mfa/totp with this token, confirm with /account/mfa/totp/verify, then sign in again with 'otp'"
        }
        return json(.object(o))
    }

    func login(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let body = try await fhir.body(req)
        guard case .object(let o) = body else { throw FHIRError.invalid("Login body must be a JSON object {\"username\", \"password\"}") }
        for key in o.keys where key != "username" && key != "password" && key != "otp" {
            throw FHIRError.invalid("Unknown field '\(String(key.prefix(40)))' in login body")
        }
        guard let username = o["username"]?.stringValue, let password = o["password"]?.stringValue else {
            throw FHIRError.invalid("Login body needs string fields 'username' and 'password'")
        }
        if let otp = o["otp"], otp.stringValue == nil { throw FHIRError.invalid("'otp' must be a string") }
        let t = try await auth.login(username: username, password: password, otp: o["otp"]?.stringValue, request: fhir.requestInfo(req, ctx))
        return tokenResponse(t)
    }

    func token(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let media = (req.headers[.contentType] ?? "").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard media == "application/x-www-form-urlencoded" else {
            throw FHIRError.unsupportedMediaType(String((req.headers[.contentType] ?? "").prefix(60)))
        }
        let buffer: ByteBuffer
        do { buffer = try await req.body.collect(upTo: 16 * 1024) } catch { throw FHIRError.tooLarge(limit: 16 * 1024) }
        var form: [String: String] = [:]
        for pair in String(buffer: buffer).split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let k = String(kv[0]).removingPercentEncoding ?? ""
            let v = (kv.count > 1 ? String(kv[1]).replacingOccurrences(of: "+", with: " ") : "").removingPercentEncoding ?? ""
            form[k] = v
        }
        guard form["grant_type"] == "client_credentials" else {
            throw FHIRError.invalid("unsupported_grant_type: only grant_type=client_credentials is supported")
        }
        guard let header = req.headers[.authorization], header.lowercased().hasPrefix("basic "),
            let decoded = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
            let pair = String(data: decoded, encoding: .utf8), let colon = pair.firstIndex(of: ":")
        else {
            throw FHIRError(kind: .unauthenticated, code: "login", diagnostics: "invalid_client: use client_secret_basic (HTTP Basic with client_id:client_secret)")
        }
        let clientID = String(pair[..<colon]).removingPercentEncoding ?? ""
        let secret = String(pair[pair.index(after: colon)...]).removingPercentEncoding ?? ""
        let t = try await auth.clientCredentials(clientID: clientID, secret: secret, request: fhir.requestInfo(req, ctx))
        return tokenResponse(t)
    }

    func logout(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        guard let header = req.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
            throw FHIRError.unauthorized()
        }
        try await fhir.pharmacy.access.logout(authorization: String(header.dropFirst(7)), request: fhir.requestInfo(req, ctx))
        return json(.object(["status": "logged out"]))
    }
}
