import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SafeRxModel
import SafeRxPharmacy
import SafeRxPolicy
import SafeRxStoreCore
import SafeRxWeb

/// The server-rendered web front: patient portal (`/portal`), pharmacy console (`/console`), privacy console
/// (`/privacy`) and drug information (`/drugs`).
///
/// Pages act with the same access tokens as API clients, kept in a server-side session: every page request puts
/// the session's token through ``FHIRController/access(_:_:interaction:type:)`` and reads through the services (``Pharmacy``),
/// so what a page can show is exactly what that user's API calls could return, and every read is audited. The
/// browser holds one `HttpOnly`, `SameSite=Lax` cookie with an opaque id, set only by pages with a form and at sign-in;
/// every form carries a CSRF token.
struct WebFront: Sendable {
    let fhir: FHIRController
    let auth: AuthService
    let pages: Pages
    let sessions: WebSessions
    let formulary: Formulary
    let signupTenant: String

    var pharmacy: Pharmacy { fhir.pharmacy }

    /// The three signed-in areas and who may use each.
    enum Area: String, Sendable {
        case portal, console, privacy

        var name: String {
            switch self {
            case .portal: "Patient portal"
            case .console: "Pharmacy console"
            case .privacy: "Privacy console"
            }
        }
        var roles: Set<String> {
            switch self {
            case .portal: [Role.patient.rawValue]
            case .console: [Role.pharmacist.rawValue, Role.technician.rawValue]
            case .privacy: [Role.privacyOfficer.rawValue]
            }
        }
        var nav: [(String, String)] {
            switch self {
            case .portal:
                [("/portal", "Prescriptions"), ("/portal/messages", "Messages"), ("/portal/caregivers", "Caregivers"),
                 ("/portal/access-log", "Who looked at my data"), ("/portal/account", "Account"), ("/drugs", "Drug information")]
            case .console:
                [("/console", "Work queue"), ("/console/patients", "Find a patient"), ("/console/messages", "Messages"),
                 ("/console/webhooks", "Partner webhooks"), ("/console/account", "Account")]
            case .privacy: [("/privacy", "Overview"), ("/privacy/alerts", "Alerts"), ("/privacy/audit", "Audit search"), ("/privacy/account", "Account")]
            }
        }
    }

    /// Thrown by page code to answer with a redirect (after a POST, or to the sign-in page).
    struct Redirect: Error {
        var location: String
    }

    static let pageCSP = "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    static let maxFormBytes = 7 * 1024 * 1024

    func register(on router: Router<SafeRxContext>) {
        router.get("/") { req, ctx in try await self.page(req, ctx, area: nil) { s in ("home", ["title": "SafeRx"]) } }
        router.get("/static/:file") { req, ctx in try self.staticFile(ctx) }
        router.get("/favicon.ico") { _, _ in Response(status: .notFound) }
        registerPortal(on: router)
        registerConsole(on: router)
        registerPrivacy(on: router)
        registerDrugs(on: router)
    }

    func staticFile(_ ctx: SafeRxContext) throws -> Response {
        guard let name = ctx.parameters.get("file"), let file = pages.staticFile(name) else { throw FHIRError.notFoundPath("static") }
        var h = HTTPFields()
        h[.contentType] = file.type
        return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: file.data)))
    }

    // MARK: Sessions and cookies

    static func cookie(_ req: Request) -> String? {
        for header in req.headers[values: .cookie] {
            for part in header.split(separator: ";") {
                let kv = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
                if kv.count == 2, kv[0] == WebSessions.cookieName { return String(kv[1]) }
            }
        }
        return nil
    }

    /// `Secure` when the page was reached over TLS (directly or through a proxy that says so).
    static func isTLS(_ req: Request) -> Bool {
        req.head.scheme == "https" || req.headers[HTTPField.Name("X-Forwarded-Proto")!]?.lowercased() == "https"
    }

    static func setCookie(_ value: String, _ req: Request, clear: Bool = false) -> String {
        // Lax, not Strict: a link from webmail or a search result (a top-level GET from another site) must carry the
        // session, or the answer would be a sign-in page and the user signed out. Cross-site POSTs still carry no
        // cookie, and every form also needs its CSRF token.
        var c = "\(WebSessions.cookieName)=\(clear ? "" : value); Path=/; HttpOnly; SameSite=Lax"
        if clear { c += "; Max-Age=0" }
        if isTLS(req) { c += "; Secure" }
        return c
    }

    /// The request's session; without one, a new anonymous one when the page has a form (then `newCookie` is set and
    /// must be sent back), else a blank one that is not kept (no cookie, nothing stored: visits never fill the table).
    func session(_ req: Request, form: Bool) async -> (WebSession, newCookie: String?) {
        if let s = await sessions.session(cookie: Self.cookie(req)) { return (s, nil) }
        guard form else { return (WebSession.transient(), nil) }
        let (cookie, s) = await sessions.start()
        return (s, cookie)
    }

    // MARK: Rendering

    /// Runs a page handler: resolves the session, requires a signed-in user of the area (if any), renews the token
    /// when it is about to expire, and renders the template the handler names. Errors become HTML pages; a client's
    /// mistake never becomes a 500.
    func page(
        _ req: Request, _ ctx: SafeRxContext, area: Area?, signedIn: Bool = false, form: Bool = false,
        _ handler: (inout WebSession) async throws -> (String, [String: Any])
    ) async throws -> Response {
        // A signed-in page never starts a session (it redirects to sign-in); an anonymous page only for its form.
        var (s, newCookie) = await session(req, form: form && !signedIn)
        var cookieHeader = newCookie.map { Self.setCookie($0, req) }
        do {
            if signedIn, let area {
                guard s.signedIn, let role = s.role, area.roles.contains(role) else {
                    // After signing in, the user comes back to the page they asked for.
                    throw Redirect(location: Self.loginPath(area, next: req.uri.path + (req.uri.query.map { "?" + $0 } ?? "")))
                }
                if s.enrollmentOnly, !req.uri.path.hasSuffix("/account"), !req.uri.path.contains("/account/mfa") {
                    throw Redirect(location: "/\(area.rawValue)/account")
                }
                if !s.enrollmentOnly, let expires = s.tokenExpires, expires.timeIntervalSinceNow < 5 * 60, let token = s.token {
                    let fresh = try await auth.renew(token)
                    s.token = fresh.token
                    s.tokenExpires = fresh.expires
                    await sessions.save(s)
                }
            }
            var (template, values) = try await handler(&s)
            let flash = s.flash
            var changed = !flash.isEmpty
            if let draft = s.takeDraft(for: req.uri.path) {
                // What the user typed before a refusal or a sign-in, back in the form (`{{draft.field}}`).
                values["draft"] = draft
                changed = true
            }
            if changed {
                s.flash = []
                await sessions.save(s)
            }
            return html(render(template, values, session: s, area: area, flash: flash), cookie: cookieHeader)
        } catch let r as Redirect {
            return redirect(r.location, cookie: cookieHeader)
        } catch let e as FHIRError where e.kind == .unauthenticated && signedIn && area != nil {
            // The token died (signed out elsewhere, disabled, password changed, grant ended): end the session.
            await sessions.end(cookie: Self.cookie(req))
            cookieHeader = Self.setCookie("", req, clear: true)
            return redirect(Self.loginPath(area!, next: req.uri.path), cookie: cookieHeader)
        } catch let e as FHIRError {
            let title = e.kind == .notFound ? "Not found" : e.kind == .forbidden ? "Not allowed" : "Something is not right"
            let message = e.kind == .notFound ? "There is nothing here, or you may not see it." : Display.forPeople(e.diagnostics)
            return html(
                render("error", ["title": title, "message": message], session: s, area: area, flash: []), status: e.kind.httpStatus,
                cookie: cookieHeader)
        }
    }

    /// Handles a form POST: session, CSRF token, then the handler, which answers with where to go next (303). A
    /// refused request (the store's precise message) goes back as a flash message on the page the form came from.
    func post(
        _ req: Request, _ ctx: SafeRxContext, area: Area?, signedIn: Bool = true, back: String,
        _ handler: (inout WebSession, FormData) async throws -> String
    ) async throws -> Response {
        guard var s = await sessions.session(cookie: Self.cookie(req)) else {
            // The session ran out while a form was being filled in: keep what was typed for after the same user signs
            // in again. Only for a browser that presented our (expired) cookie: a cross-site form carries none
            // (SameSite=Lax), and only for the session's own user (someone else signing in there does not see it).
            if let area, let owner = await sessions.expiredOwner(cookie: Self.cookie(req)),
                let body = try? await req.body.collect(upTo: Self.maxFormBytes),
                let form = try? FormData.parse(Data(buffer: body), contentType: req.headers[.contentType])
            {
                var (cookie, fresh) = await sessions.start()
                fresh.keepDraft(form.fields, for: back, user: owner)
                fresh.flash.append(.init(.info, "Your session ended. Sign in again: what you typed is kept."))
                await sessions.save(fresh)
                return redirect(Self.loginPath(area, next: back), cookie: Self.setCookie(cookie, req))
            }
            return redirect(area.map { Self.loginPath($0, next: back) } ?? "/", cookie: nil)
        }
        let form: FormData
        do {
            let body = try await req.body.collect(upTo: Self.maxFormBytes)
            form = try FormData.parse(Data(buffer: body), contentType: req.headers[.contentType])
        } catch let e as FHIRError {
            s.flash.append(.init(.error, Display.forPeople(e.diagnostics)))
            await sessions.save(s)
            return redirect(back, cookie: nil)
        } catch {
            s.flash.append(.init(.error, "The form is larger than 7 MB"))
            await sessions.save(s)
            return redirect(back, cookie: nil)
        }
        guard WebSessions.csrfMatches(form["_csrf"], s) else {
            return html(
                render("error", ["title": "Form expired", "message": "This form is out of date. Go back, reload the page and try again."], session: s, area: area, flash: []),
                status: .forbidden, cookie: nil)
        }
        if signedIn, let area {
            guard s.signedIn, let role = s.role, area.roles.contains(role) else { return redirect(Self.loginPath(area, next: back), cookie: nil) }
        }
        do {
            let next = try await handler(&s, form)
            await sessions.save(s)
            return redirect(next, cookie: nil)
        } catch let r as Redirect {
            await sessions.save(s)
            return redirect(r.location, cookie: nil)
        } catch let e as FHIRError where e.kind == .unauthenticated && signedIn && area != nil {
            // The token died (signed out elsewhere, password changed): a new anonymous session keeps what was typed.
            await sessions.end(cookie: Self.cookie(req))
            var (cookie, fresh) = await sessions.start()
            fresh.keepDraft(form.fields, for: back, user: s.username)
            await sessions.save(fresh)
            return redirect(Self.loginPath(area!, next: back), cookie: Self.setCookie(cookie, req))
        } catch let e as FHIRError {
            s.flash.append(.init(.error, Display.forPeople(e.diagnostics)))
            // A refused form (an attachment of the wrong kind, a tracking number the carrier does not use) keeps
            // what was typed.
            s.keepDraft(form.fields, for: back, user: s.username)
            await sessions.save(s)
            return redirect(back, cookie: nil)
        }
    }

    /// A POST whose answer is a page rather than a redirect: searches whose terms must never appear in a URL
    /// (patient lookup, drug information). CSRF-checked like every form.
    func postPage(
        _ req: Request, _ ctx: SafeRxContext, area: Area?, signedIn: Bool,
        _ handler: (inout WebSession, FormData) async throws -> (String, [String: Any])
    ) async throws -> Response {
        let form: FormData
        do {
            let body = try await req.body.collect(upTo: 64 * 1024)
            form = try FormData.parse(Data(buffer: body), contentType: req.headers[.contentType])
        } catch {
            form = FormData()
        }
        return try await page(req, ctx, area: area, signedIn: signedIn) { s in
            guard WebSessions.csrfMatches(form["_csrf"], s) else { throw FHIRError.forbidden("This form is out of date. Go back, reload the page and try again.") }
            return try await handler(&s, form)
        }
    }

    func render(_ template: String, _ values: [String: Any], session s: WebSession, area: Area?, flash: [WebSession.Flash]) -> String {
        var v = values
        let path = area.map { "/\($0.rawValue)" } ?? "/"
        v["home"] = path
        v["areaName"] = area?.name ?? ""
        v["csrf"] = s.csrf
        // Acting for someone in their care, the patient's access log is theirs alone (403 to a caregiver): the link is
        // not offered. (The caregivers page stays: it is where caregiving stops.)
        let hidden: Set<String> = s.pending["ownToken"] != nil ? ["/portal/access-log"] : []
        let navItems: [[String: Any]] = (area?.nav ?? []).filter { !hidden.contains($0.0) }.map {
            ["href": $0.0, "label": $0.1, "current": v["current"] as? String == $0.0]
        }
        v["nav"] = navItems
        v["hasNav"] = !navItems.isEmpty
        if s.signedIn, let area, let role = s.role, area.roles.contains(role) {
            var user: [String: Any] = ["username": s.username ?? "", "logout": "/\(area.rawValue)/logout"]
            if s.ownPatient != nil, let p = s.patient { user["actingFor"] = p }
            v["user"] = user
        }
        v["flash"] = flash.map { ["kind": $0.kind.rawValue, "text": $0.text, "error": $0.kind == .error] as [String: Any] }
        return pages.render(template, v)
    }

    func html(_ body: String, status: HTTPResponse.Status = .ok, cookie: String?) -> Response {
        var h = HTTPFields()
        h[.contentType] = "text/html; charset=utf-8"
        if let cookie { h[.setCookie] = cookie }
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    func redirect(_ location: String, cookie: String?) -> Response {
        var h = HTTPFields()
        h[.location] = location
        if let cookie { h[.setCookie] = cookie }
        return Response(status: .seeOther, headers: h)
    }

    // MARK: Acting through the gate

    /// The session user's access context, exactly as an API call with their token would get it (audited denials).
    func access(_ req: Request, _ ctx: SafeRxContext, _ s: WebSession, _ interaction: String, _ type: ResourceType?) async throws -> AccessContext {
        guard let token = s.token else { throw FHIRError.unauthorized() }
        var head = req.head
        head.headerFields[.authorization] = "Bearer \(token)"
        head.headerFields[FHIRController.purposeHeader] = nil
        return try await fhir.access(Request(head: head, body: RequestBody(buffer: ByteBuffer())), ctx, interaction: interaction, type: type)
    }

    func search(_ access: AccessContext, _ type: ResourceType, _ items: [(String, String)]) async throws -> SearchPage {
        try await pharmacy.records.search(access, type, items).page
    }

    // MARK: Sign-in and sign-out (one shape for the three areas)

    /// The area's sign-in page, remembering where to go afterwards (a page of the same area only: never another site).
    static func loginPath(_ area: Area, next: String?) -> String {
        let base = "/\(area.rawValue)/login"
        guard let next = safeNext(next, area), next != "/\(area.rawValue)" else { return base }
        return base + "?next=" + (next.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~/"))) ?? "")
    }

    /// `next` when it is a path inside the area (`/portal/...`), else `nil`: a sign-in link cannot send anyone elsewhere.
    static func safeNext(_ next: String?, _ area: Area) -> String? {
        guard let next, next.count <= 512, next.hasPrefix("/\(area.rawValue)"), !next.contains("//"), !next.contains("\\"),
            !next.hasPrefix("/\(area.rawValue)/login"), !next.hasPrefix("/\(area.rawValue)/logout"),
            next.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F })
        else { return nil }
        let rest = next.dropFirst(area.rawValue.count + 1)
        guard rest.isEmpty || rest.hasPrefix("/") || rest.hasPrefix("?") else { return nil }
        return next
    }

    func registerSignIn(_ area: Area, on router: Router<SafeRxContext>) {
        let base = "/\(area.rawValue)"
        router.get("\(base)/login") { req, ctx in
            try await self.page(req, ctx, area: area, form: true) { s in
                if s.signedIn, !s.enrollmentOnly, let role = s.role, area.roles.contains(role) { throw Redirect(location: base) }
                var v: [String: Any] = [
                    "title": "Sign in", "heading": "Sign in to the \(area.name.lowercased())", "action": "\(base)/login",
                    "otpOptional": area == .portal, "signup": area == .portal,
                ]
                if let next = Self.safeNext(req.uri.queryParameters.get("next").map { String($0) }, area) { v["next"] = next }
                return ("login", v)
            }
        }
        router.post("\(base)/login") { req, ctx in
            try await self.signIn(req, ctx, area: area)
        }
        router.post("\(base)/logout") { req, ctx in
            try await self.post(req, ctx, area: area, signedIn: false, back: base) { s, _ in
                if let token = s.token, let claims = try? await auth.account(fromToken: token).1 { try? await auth.revoke(claims) }
                if let own = s.pending["ownToken"], let claims = try? await auth.account(fromToken: own).1 { try? await auth.revoke(claims) }
                await sessions.end(cookie: Self.cookie(req))
                return "\(base)/login"
            }
        }
    }

    func signIn(_ req: Request, _ ctx: SafeRxContext, area: Area) async throws -> Response {
        let base = "/\(area.rawValue)"
        let old = Self.cookie(req)
        var newCookie: String?
        let next = Self.safeNext(req.uri.queryParameters.get("next").map { String($0) }, area)
        let response = try await post(req, ctx, area: area, signedIn: false, back: Self.loginPath(area, next: next)) { s, form in
            guard let username = form.value("username"), let password = form["password"], !password.isEmpty else {
                throw FHIRError.invalid("Enter your username and password")
            }
            let issued = try await auth.login(username: username, password: password, otp: form.value("otp"), request: fhir.requestInfo(req, ctx))
            let (user, claims) = try await auth.account(fromToken: issued.accessToken)
            guard area.roles.contains(user.role) else {
                try? await auth.revoke(claims)
                throw FHIRError.forbidden("This sign-in page is for the \(area.name.lowercased()); this account cannot use it")
            }
            let (cookie, fresh) = await sessions.signIn(
                replacing: old, token: issued.accessToken, expires: Date().addingTimeInterval(TimeInterval(issued.expiresIn)),
                username: user.username, role: user.role, patient: user.patientID, enrollmentOnly: issued.mfaEnrollmentRequired)
            newCookie = cookie
            s = fresh
            if issued.mfaEnrollmentRequired {
                s.flash.append(.init(.info, "Staff accounts need a second factor. Set one up to continue."))
                return "\(base)/account"
            }
            return Self.safeNext(form.value("next"), area) ?? base
        }
        guard let newCookie else { return response }
        var r = response
        r.headers[.setCookie] = Self.setCookie(newCookie, req)
        return r
    }

    /// Account settings with TOTP enrolment, the same for every area.
    func registerAccount(_ area: Area, on router: Router<SafeRxContext>) {
        let base = "/\(area.rawValue)"
        router.get("\(base)/account") { req, ctx in
            try await self.page(req, ctx, area: area, signedIn: true) { s in
                let (user, _) = try await auth.account(fromToken: s.pending["ownToken"] ?? s.token ?? "")
                let mfa = try await auth.mfaStatus(user)
                var v: [String: Any] = [
                    "title": "Account", "current": "\(base)/account", "base": base, "username": user.username, "mfaEnabled": mfa.enabled,
                    "mfaRequired": AuthService.requiresMFA(user.role), "recoveryCodesLeft": mfa.recoveryCodesLeft,
                ]
                if let secret = s.pending["totpSecret"], let uri = s.pending["totpURI"], !mfa.enabled {
                    v["enrolling"] = true
                    v["secret"] = secret
                    v["uri"] = uri
                    // Drawn here as inline SVG (no image service sees the secret); a URI too long for it leaves the key.
                    v["qr"] = (try? QRCode(encoding: uri))?.svg(label: "QR code to scan with your authenticator app", scale: 4)
                }
                if let codes = s.pending["recoveryCodes"] {
                    v["recoveryCodes"] = codes.split(separator: " ").map(String.init)
                    v["hasRecoveryCodes"] = true
                    s.pending["recoveryCodes"] = nil
                    await sessions.save(s)
                }
                return ("account", v)
            }
        }
        router.post("\(base)/account/password") { req, ctx in
            try await self.post(req, ctx, area: area, back: "\(base)/account") { s, form in
                let (user, _) = try await auth.account(fromToken: s.pending["ownToken"] ?? s.token ?? "")
                try await auth.changePassword(user, current: form["current"] ?? "", new: form["password"] ?? "", request: fhir.requestInfo(req, ctx))
                // Every session of the account ended, this one too: sign in again with the new password.
                s.token = nil
                s.pending = [:]
                s.flash.append(.init(.info, "Password changed. Sign in with your new password."))
                return "\(base)/login"
            }
        }
        router.post("\(base)/account/mfa") { req, ctx in
            try await self.post(req, ctx, area: area, back: "\(base)/account") { s, _ in
                let (user, _) = try await auth.account(fromToken: s.pending["ownToken"] ?? s.token ?? "")
                let e = try await auth.beginTOTP(user, request: fhir.requestInfo(req, ctx))
                s.pending["totpSecret"] = e.secret
                s.pending["totpURI"] = e.uri
                return "\(base)/account"
            }
        }
        router.post("\(base)/account/mfa/verify") { req, ctx in
            try await self.post(req, ctx, area: area, back: "\(base)/account") { s, form in
                let (user, _) = try await auth.account(fromToken: s.pending["ownToken"] ?? s.token ?? "")
                let codes = try await auth.confirmTOTP(user, code: form.value("code") ?? "", request: fhir.requestInfo(req, ctx))
                s.pending["totpSecret"] = nil
                s.pending["totpURI"] = nil
                s.pending["recoveryCodes"] = codes.joined(separator: " ")
                if s.enrollmentOnly {
                    // An enrolment-only token cannot do anything else: sign in again with the new factor.
                    s.flash.append(.init(.info, "Second factor on. Write down your recovery codes, then sign in again with the next code the app shows (each code works once)."))
                } else {
                    s.flash.append(.init(.info, "Two-step sign-in is on."))
                }
                return "\(base)/account"
            }
        }
    }
}

extension Data {
    init(buffer: ByteBuffer) { self = Data(buffer.readableBytesView) }
}
