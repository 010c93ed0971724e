import Foundation
import HTTPTypes
import SafeRxAudit
import SafeRxModel
import SafeRxPharmacy
import SafeRxStore
import SafeRxStoreCore
import SafeRxVault
import SafeRxWeb
import Testing

/// The web front over plain HTTP: the headers every page carries, the session cookie, CSRF, sign-out and what the
/// HTML may reference. (The journeys in a real browser are in `Browser/WebFrontBrowserTests`.)
@Suite("Web front: headers, sessions, CSRF")
struct WebFrontHTTPTests {
    /// A browser-like client: keeps the session cookie and the last page's CSRF token.
    final class WebClient: @unchecked Sendable {
        let http: HTTPClient
        var cookie: String?
        var csrf: String?
        var lastSetCookie: String?

        init(_ http: HTTPClient) { self.http = http }

        func get(_ path: String, headers extra: HTTPFields = [:]) async throws -> Reply {
            var h = extra
            if let cookie { h[.cookie] = "\(WebSessions.cookieName)=\(cookie)" }
            let r = try await http.send(.get, path, headers: h)
            take(r)
            return r
        }

        func post(_ path: String, _ fields: [String: String], csrf useCSRF: Bool = true) async throws -> Reply {
            var h = HTTPFields()
            if let cookie { h[.cookie] = "\(WebSessions.cookieName)=\(cookie)" }
            var all = fields
            if useCSRF, let csrf { all["_csrf"] = csrf }
            let body = all.map { "\(Self.encode($0.key))=\(Self.encode($0.value))" }.joined(separator: "&")
            let r = try await http.send(.post, path, body: body, contentType: "application/x-www-form-urlencoded", headers: h)
            take(r)
            return r
        }

        func take(_ r: Reply) {
            if let set = r.headers[.setCookie] {
                lastSetCookie = set
                let value = set.split(separator: ";").first?.split(separator: "=", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
                cookie = value.isEmpty ? nil : value
            }
            if let m = r.body.firstMatch(of: /name="_csrf" value="([^"]+)"/) { csrf = String(m.1) }
        }

        static func encode(_ s: String) -> String {
            s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? s
        }

        /// Signs in through the area's form (with the account's TOTP code when it has a second factor).
        func signIn(_ server: LiveServer, area: String, user: String) async throws {
            _ = try await get("/\(area)/login")
            var fields = ["username": user, "password": server.password(user)]
            if let secret = server.credentials.first(where: { $0.username == user })?.totp_secret, let key = Base32.decode(secret) {
                fields["otp"] = TOTP(secret: key).code()
            }
            let r = try await post("/\(area)/login", fields)
            guard r.status == 303, r.headers[.location] == "/\(area)" else { throw TestError("sign-in of \(user) failed: \(r.status) \(r.headers[.location] ?? "")") }
        }
    }

    /// Checks the headers and markup every HTML page must have.
    func checkPage(_ r: Reply, _ path: String) {
        #expect(r.status == 200, "\(path): \(r.status)")
        #expect(r.headers[.contentType]?.hasPrefix("text/html") == true, "\(path)")
        let csp = r.headers[HTTPField.Name("Content-Security-Policy")!] ?? ""
        #expect(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'none'"), "\(path): \(csp)")
        #expect(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval") && !csp.contains("*"), "\(path): \(csp)")
        #expect(r.headers[HTTPField.Name("Referrer-Policy")!] == "no-referrer", "\(path)")
        #expect(r.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff", "\(path)")
        let permissions = r.headers[HTTPField.Name("Permissions-Policy")!] ?? ""
        #expect(permissions.contains("camera=()") && permissions.contains("geolocation=()") && permissions.contains("interest-cohort=()"), "\(path)")
        #expect(r.headers[.cacheControl] == "no-store", "\(path): PHI pages are never cached")
        // Nothing on the page points anywhere else, and there is no script or inline style for the CSP to refuse.
        let html = r.body
        #expect(!html.contains("<script") && !html.contains(" style=") && !html.contains("<style"), "\(path)")
        #expect(html.firstMatch(of: /<[^>]*\son[a-z]+\s*=/) == nil, "\(path): an inline event handler")
        for m in html.matches(of: /(?:src|href|action)="([^"]*)"/) {
            let target = String(m.1)
            #expect(target.hasPrefix("/") && !target.hasPrefix("//") || target.hasPrefix("#") || target.hasPrefix("otpauth:"), "\(path) references \(target)")
        }
        // Every form that changes something carries the CSRF token.
        let forms = html.components(separatedBy: "<form").dropFirst()
        for form in forms where form.contains("method=\"post\"") {
            #expect(form.contains("name=\"_csrf\""), "\(path): a form without a CSRF token")
        }
    }

    @Test("Every page of every area carries the security headers, no-store, and references only its own origin")
    func headersOnEveryPage() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { http in
            let anonymous = WebClient(http)
            for path in ["/", "/portal/login", "/console/login", "/privacy/login", "/portal/signup", "/portal/reset", "/drugs", "/drugs/atorvastatin"] {
                checkPage(try await anonymous.get(path), path)
            }
            let areas: [(String, String, [String])] = [
                ("portal", "patient044", ["/portal", "/portal/messages", "/portal/caregivers", "/portal/access-log", "/portal/account", "/portal/messages/msg-pat-0044-1"]),
                ("console", "pharmacist-b", ["/console", "/console/patients", "/console/messages", "/console/webhooks", "/console/account",
                                            "/console/patients/pat-0044", "/console/fills/disp-pat-0044-1", "/console/messages?assigned=me"]),
                ("privacy", "privacy", ["/privacy", "/privacy/alerts", "/privacy/audit", "/privacy/account"]),
            ]
            for (area, user, paths) in areas {
                let web = WebClient(http)
                try await web.signIn(server, area: area, user: user)
                for path in paths {
                    let r = try await web.get(path)
                    if r.status == 404, path.contains("disp-") || path.contains("msg-") { continue }  // the seed may not have made it
                    checkPage(r, path)
                }
            }
            // Error pages too (a 404 is an HTML page with the same headers).
            let missing = try await anonymous.get("/drugs/no-such-drug")
            #expect(missing.status == 404)
            #expect(missing.headers[HTTPField.Name("Content-Security-Policy")!]?.contains("frame-ancestors 'none'") == true)
        }
    }

    @Test("Session cookie: opaque, HttpOnly, SameSite=Lax, Secure behind TLS, a new id at sign-in; sign-out ends it")
    func sessionCookie() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { http in
            let web = WebClient(http)
            _ = try await web.get("/portal/login")
            let set = try #require(web.lastSetCookie)
            #expect(set.hasPrefix("\(WebSessions.cookieName)=") && set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/"))
            #expect(!set.contains("Secure"), "plain HTTP on loopback")
            #expect(!set.contains("Expires") && !set.contains("Max-Age"), "a session cookie, gone when the browser closes")
            let anonymousCookie = try #require(web.cookie)

            var h = HTTPFields()
            h[HTTPField.Name("X-Forwarded-Proto")!] = "https"
            let tls = try await http.send(.get, "/portal/login", headers: h)
            #expect(tls.headers[.setCookie]?.contains("Secure") == true, "Secure when served over TLS")

            try await web.signIn(server, area: "portal", user: "patient045")
            let signedIn = try #require(web.cookie)
            #expect(signedIn != anonymousCookie, "the id changes at sign-in (no session fixation)")
            #expect(!signedIn.contains("patient") && signedIn.count >= 40, "the cookie is an opaque random id")
            // The pre-sign-in id is dead.
            let fixated = WebClient(http)
            fixated.cookie = anonymousCookie
            let stale = try await fixated.get("/portal")
            #expect(stale.status == 303 && stale.headers[.location] == "/portal/login")

            #expect(try await web.get("/portal").status == 200)
            let copy = web.cookie
            let out = try await web.post("/portal/logout", [:])
            #expect(out.status == 303 && out.headers[.location] == "/portal/login")
            let replay = WebClient(http)
            replay.cookie = copy
            let after = try await replay.get("/portal")
            #expect(after.status == 303 && after.headers[.location] == "/portal/login", "a signed-out session cannot be reused")
        }
    }

    @Test("A form without the CSRF token, or with another session's, is refused and changes nothing")
    func csrf() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { http in
            let web = WebClient(http)
            try await web.signIn(server, area: "portal", user: "patient046")
            _ = try await web.get("/portal")
            func refills() async throws -> Int {
                try await server.store.auditRecords().filter { $0.entry.patients.contains("pat-0046") && ($0.entry.action == "refill" || $0.entry.attempted == "refill") }.count
            }
            let before = try await refills()

            let missing = try await web.post("/portal/prescriptions/rx-pat-0046-1/refill", [:], csrf: false)
            #expect(missing.status == 403 && missing.body.contains("Form expired"))
            let other = WebClient(http)
            _ = try await other.get("/portal/login")
            let foreign = try await web.post("/portal/prescriptions/rx-pat-0046-1/refill", ["_csrf": other.csrf ?? ""], csrf: false)
            #expect(foreign.status == 403)
            // A sign-out without the token does not sign out either.
            #expect(try await web.post("/portal/logout", [:], csrf: false).status == 403)
            #expect(try await web.get("/portal").status == 200)
            let after = try await refills()
            #expect(after == before, "no refill was attempted")
        }
    }

    @Test("Sessions end after 15 idle minutes and after 8 hours however active; the table stays bounded")
    func sessionExpiry() async {
        let sessions = WebSessions(idleTimeout: 15 * 60, absoluteTimeout: 8 * 3600, capacity: 3)
        let t0 = Date()
        let (cookie, _) = await sessions.start(now: t0)
        #expect(await sessions.session(cookie: cookie, now: t0.addingTimeInterval(14 * 60)) != nil)
        #expect(await sessions.session(cookie: cookie, now: t0.addingTimeInterval(14 * 60 + 15 * 60 + 1)) == nil, "idle too long")
        #expect(await sessions.session(cookie: cookie, now: t0.addingTimeInterval(60)) == nil, "and gone for good")

        let (active, _) = await sessions.start(now: t0)
        var t = t0
        while t.timeIntervalSince(t0) < 8 * 3600 - 600 {
            t = t.addingTimeInterval(10 * 60)
            #expect(await sessions.session(cookie: active, now: t) != nil)
        }
        #expect(await sessions.session(cookie: active, now: t0.addingTimeInterval(8 * 3600 + 1)) == nil, "absolute limit")

        var cookies: [String] = []
        for i in 0..<5 { cookies.append(await sessions.start(now: t0.addingTimeInterval(Double(i))).cookie) }
        #expect(await sessions.session(cookie: cookies[0], now: t0.addingTimeInterval(10)) == nil, "the longest idle is evicted first")
        #expect(await sessions.session(cookie: cookies[4], now: t0.addingTimeInterval(10)) != nil)
        #expect(await sessions.session(cookie: String(repeating: "a", count: 100)) == nil, "oversized cookies are not looked up")
    }

    @Test("Drug searches go by POST only and leave no trace: not in a URL, not in the audit log, not in the server log")
    func drugSearchPrivacy() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { http in
            let web = WebClient(http)
            try await web.signIn(server, area: "portal", user: "patient047")
            _ = try await web.get("/drugs")
            let term = "sertraline-\(UUID().uuidString.prefix(8))"
            let r = try await web.post("/drugs/search", ["q": term])
            #expect(r.status == 200 && r.body.contains(term), "the answer page shows what was searched")
            let get = try await web.get("/drugs/search?q=\(term)")
            #expect(get.status == 405 || get.status == 404, "no GET form of the search exists")
            let audit = try await server.store.auditRecords()
            #expect(!audit.contains { "\($0.entry)".contains(term) }, "the search is not in the audit log")
            let log = server.logText()
            #expect(log.contains("route: /drugs/search") || log.contains("\"route\": /drugs/search") || log.contains("/drugs/search"), "the request itself is logged")
            #expect(!log.contains(term), "but not what was searched")
        }
    }
}
