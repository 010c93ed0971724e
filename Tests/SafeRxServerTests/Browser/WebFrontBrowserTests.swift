import Foundation
import SafeRxModel
import SafeRxPharmacy
import SafeRxVault
import Testing

/// The web front in real headless Chromium (WebDriver), against the live test server.
///
/// Kaiser replay: on every page of the journeys, every network request the browser makes goes to the SafeRx origin,
/// the only cookie is the session cookie, and the browser reports no CSP violation. Screenshots of each page are
/// saved to `.build/screenshots/` (not committed) for a person to look at.
@Suite(.serialized) struct WebFrontBrowserTests {
    static let screenshots: URL = {
        let dir = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/screenshots")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }()

    /// Checks what the browser did since the last check, and saves a screenshot.
    func check(_ b: Browser, origin: String, page name: String) async throws {
        try await b.screenshot(to: Self.screenshots.appendingPathComponent("\(name).png"))
        let urls = try await b.requestedURLs()
        let foreign = urls.filter { !$0.hasPrefix(origin + "/") && $0 != origin && !$0.hasPrefix("data:") && !$0.hasPrefix("about:") }
        #expect(foreign.isEmpty, "\(name): requests left the SafeRx origin: \(foreign)")
        #expect(try await b.cookies() == ["saferx_session"], "\(name): cookies other than the session cookie")
        let console = try await b.consoleMessages()
        #expect(!console.contains { $0.contains("Content Security Policy") || $0.contains("Refused to") }, "\(name): \(console)")
    }

    func signIn(_ b: Browser, _ origin: String, area: String, user: String, password: String, secret: String? = nil) async throws {
        // A TOTP code works once: if another test signed the same account in during this 30 s step, use the next one.
        for attempt in 0..<2 {
            try await b.go("\(origin)/\(area)/login")
            try await b.type("#username", user)
            try await b.type("#password", password)
            if let secret, let key = Base32.decode(secret) {
                try await b.type("#otp", TOTP(secret: key).code(at: Date().addingTimeInterval(Double(attempt) * 30)))
            }
            try await b.click("button[type=submit]")
            guard secret != nil, try await b.url().hasSuffix("/login") else { return }
        }
    }

    @Test("Patient journey in headless Chromium: sign-up, MFA, refill, message with attachment, access log, drug search, sign-out; nothing leaves the origin")
    func journeys() async throws {
        let server = try await LiveServer.shared.value
        let origin = "http://127.0.0.1:\(server.port)"
        try await server.client().using { client in
            try await Browser.start().using { b in

                // What the person knows: their name, birth date and an Rx number from a label (pat-0057 has no account).
                let staff = try await server.token("pharmacist")
                let p = try #require(try await client.get("/fhir/Patient/pat-0057", token: staff).json)
                let name = try #require(p["name"]?.arrayValue?.first)
                let family = name["family"]?.stringValue ?? "", given = name["given"]?.arrayValue?.first?.stringValue ?? ""
                let birth = p["birthDate"]?.stringValue ?? ""
                let email = try #require(p["telecom"]?.arrayValue?.first { $0["system"]?.stringValue == "email" }?["value"]?.stringValue)
                let rxNumber = try #require(
                    try await client.get("/fhir/MedicationRequest?patient=pat-0057", token: staff).entries.first?["resource"]?["identifier"]?.arrayValue?.first?["value"]?
                        .stringValue)

                // Sign-up: the details, then the code sent to the contact on the record, a username and a password.
                try await b.go("\(origin)/portal/login")
                try await check(b, origin: origin, page: "portal-login")
                try await b.go("\(origin)/portal/signup")
                try await b.type("#given", given)
                try await b.type("#family", family)
                try await b.execute("document.getElementById('birthDate').value = '\(birth)'")
                try await b.type("#rxNumber", rxNumber)
                try await check(b, origin: origin, page: "portal-signup")
                try await b.click("form[action='/portal/signup'] button")
                #expect(try await b.source().contains("Finish creating your account"))
                let note = try await server.notification(to: email, kind: "signup-code")
                let code = String(try #require((note["body"]?.stringValue ?? "").firstMatch(of: /code is ([0-9]{8})/)?.1))
                let password = "lantern orchard seventeen pebbles"
                try await b.type("#code", code)
                try await b.type("#username", "browser57")
                try await b.type("#password", password)
                try await b.click("form[action='/portal/signup/verify'] button")
                #expect(try await b.url() == "\(origin)/portal/login")
                #expect(try await b.source().contains("Your account is ready"))

                // First sign-in, then two-step sign-in turned on under Account with a code from the "app".
                try await signIn(b, origin, area: "portal", user: "browser57", password: password)
                #expect(try await b.url() == "\(origin)/portal")
                try await b.go("\(origin)/portal/account")
                try await b.click("form[action='/portal/account/mfa'] button")
                var html = try await b.source()
                let secret = String(try #require(html.firstMatch(of: /Key: <code>([A-Z2-7]+)<\/code>/)?.1))
                let totp = TOTP(secret: try #require(Base32.decode(secret)))
                // What a phone's camera sees: the page as rendered, decoded by an independent reader (zxing-cpp).
                let shot = Self.screenshots.appendingPathComponent("portal-mfa-qr.png")
                try await b.screenshot(to: shot)
                let scanned = try QRReader.decode(shot)
                #expect(scanned.hasPrefix("otpauth://totp/") && scanned.contains("secret=\(secret)&"), "\(scanned)")
                try await b.type("#code", totp.code())
                try await check(b, origin: origin, page: "portal-mfa")
                try await b.click("form[action='/portal/account/mfa/verify'] button")
                html = try await b.source()
                #expect(html.contains("Two-step sign-in is on") && html.contains("recovery codes"), "\(html.prefix(600))")
                try await b.click("header form button")

                // Signing in now needs the second factor: without it, refused; with the app's next code, in.
                try await signIn(b, origin, area: "portal", user: "browser57", password: password)
                #expect(try await b.url() == "\(origin)/portal/login")
                try await b.type("#username", "browser57")
                try await b.type("#password", password)
                try await b.type("#otp", totp.code(at: Date().addingTimeInterval(30)))
                try await b.click("button[type=submit]")
                #expect(try await b.url() == "\(origin)/portal")
                html = try await b.source()
                #expect(html.contains("Your prescriptions") && html.contains(rxNumber))
                try await check(b, origin: origin, page: "portal-prescriptions")

                // Requests a refill: either it is created or the page says why not.
                try await b.click("form[action*='/refill'] button")
                html = try await b.source()
                #expect(html.contains("Refill requested") || html.contains("We could not request this refill"), "\(html.prefix(400))")
                try await check(b, origin: origin, page: "portal-refill")

                // Sends a message with an attachment; the thread shows it with a download link.
                try await b.go("\(origin)/portal/messages")
                let file = FileManager.default.temporaryDirectory.appendingPathComponent("saferx-card-\(UUID().uuidString).pdf")
                try Data("%PDF-1.4\n% insurance card\n%%EOF\n".utf8).write(to: file)
                try await b.type("#text", "Here is my new insurance card.")
                try await b.type("#file", file.path)
                try await b.click("form[enctype] button[type=submit]")
                html = try await b.waitFor("Download attachment")
                #expect(html.contains("Here is my new insurance card.") && html.contains("Download attachment"), "\(html.prefix(600))")
                try await check(b, origin: origin, page: "portal-message")

                // Reads who looked at their data.
                try await b.go("\(origin)/portal/access-log")
                html = try await b.source()
                #expect(html.contains("Who looked at my data") && html.contains("pharmacist at"), "the pharmacist who looked the record up shows, by role")
                try await check(b, origin: origin, page: "portal-access-log")

                // Drug information: the search goes by POST, so the URL never holds it.
                try await b.go("\(origin)/drugs")
                try await b.type("#q", "cholesterol")
                try await b.click("form[role=search] button")
                #expect(try await b.url() == "\(origin)/drugs/search")
                #expect(try await b.source().contains("Atorvastatin"))
                try await check(b, origin: origin, page: "drugs-search")

                // Sign out: the session ends.
                try await b.go("\(origin)/portal")
                try await b.click("header form button")
                try await b.go("\(origin)/portal")
                #expect(try await b.url() == "\(origin)/portal/login")
            }
        }
    }

    @Test("A page of patient A never shows patient B's data, with edited URLs, form fields or cookies")
    func isolation() async throws {
        let server = try await LiveServer.shared.value
        let origin = "http://127.0.0.1:\(server.port)"
        try await Browser.start().using { b in
            try await signIn(b, origin, area: "portal", user: "patient013", password: server.password("patient013"))
            #expect(try await b.url() == "\(origin)/portal")
            // B's message thread and attachment by URL: the same "not found" as a thread that does not exist.
            for path in ["/portal/messages/msg-pat-0014-1", "/portal/attachments/nope", "/portal/messages/no-such-thread"] {
                try await b.go(origin + path)
                let html = try await b.source()
                #expect(html.contains("Not found") && !html.contains("pat-0014"), "\(path)")
            }
            // B's prescription through an edited form action: refused exactly like a prescription that does not exist.
            var refusals: [String] = []
            for target in ["rx-pat-0014-1", "rx-no-such-prescription"] {
                try await b.go("\(origin)/portal")
                try await b.execute("document.querySelector(\"form[action*='/refill']\").action = '/portal/prescriptions/\(target)/refill'")
                try await b.click("form[action*='/refill'] button")
                let html = try await b.source()
                let flash = html.components(separatedBy: "We could not request this refill").dropFirst().first.map { String($0.prefix(80)) }
                #expect(flash != nil, "\(target): \(html.prefix(800))")
                #expect(!html.contains("RX0000141") && !html.contains("pat-0014"), "\(target)")
                refusals.append(flash ?? "")
            }
            #expect(refusals[0] == refusals[1], "another patient's prescription must read like a missing one: \(refusals)")
            // A console page with a patient's session: back to the console sign-in.
            try await b.go("\(origin)/console/patients/pat-0014")
            #expect(try await b.url() == "\(origin)/console/login?next=/console/patients/pat-0014", "and back to the page after signing in")
            // An edited (forged) session cookie is no session at all.
            try await b.setCookie("saferx_session", "forged-\(UUID().uuidString)")
            try await b.go("\(origin)/portal")
            #expect(try await b.url() == "\(origin)/portal/login")
            try await check(b, origin: origin, page: "isolation")
        }
    }

    @Test("Four-eyes in the console: the technician fills, the same person cannot verify, a pharmacist verifies and ships; the patient sees the shipment")
    func fillAndVerify() async throws {
        let server = try await LiveServer.shared.value
        let origin = "http://127.0.0.1:\(server.port)"
        try await server.client().using { client in
            // A refill to work on (through the API, as the patient).
            var fillID: String?
            var patientUser = ""
            search: for n in 15...30 {
                let user = String(format: "patient%03d", n)
                let token = try await server.token(user)
                for k in 1...3 {
                    let r = try await client.post(String(format: "/fhir/MedicationRequest/rx-pat-%04d-\(k)/$refill", n), token: token, nil)
                    if r.status == 201 {
                        fillID = r.json?["id"]?.stringValue
                        patientUser = user
                        break search
                    }
                }
            }
            let fill = try #require(fillID)
            func secret(_ u: String) -> String? { server.credentials.first { $0.username == u }?.totp_secret }

            try await Browser.start().using { b in
                try await signIn(b, origin, area: "console", user: "technician", password: server.password("technician"), secret: secret("technician"))
                #expect(try await b.url() == "\(origin)/console")
                try await check(b, origin: origin, page: "console-queue")
                try await b.go("\(origin)/console/fills/\(fill)")
                try await b.click("input[value='in-progress'] ~ .actions button")
                var html = try await b.source()
                #expect(html.contains("Being filled"))
                #expect(!html.contains("Verify (pharmacist check)"), "a technician is never offered verification")
                #expect(!html.contains("name=\"reason\""), "hold and cancel are not one click away: they open a confirmation")
                // Putting it on hold asks for a reason, none preset, on a page of its own.
                try await b.click("a[href$='/confirm?state=on-hold']")
                html = try await b.source()
                #expect(html.contains("Put this fill on hold?") && html.contains("Choose a reason") && html.contains("Keep the fill as it is"), "\(html.prefix(600))")
                try await check(b, origin: origin, page: "console-confirm")
                // The technician forges the confirmation into a verification: refused by the store.
                try await b.command("POST", "execute/sync", .object([
                    "script": "document.querySelector(\"input[name='state']\").value = 'verified'; document.querySelector('#reason').value = 'frr01'",
                    "args": .array([]),
                ]))
                try await b.click("form[action$='/transition'] button")
                html = try await b.source()
                #expect(html.contains("may not move a fill to verified") || html.contains("four-eyes"), "\(html.prefix(600))")
                try await check(b, origin: origin, page: "console-fill")
                try await b.click("header form button")

                try await signIn(b, origin, area: "console", user: "pharmacist", password: server.password("pharmacist"), secret: secret("pharmacist"))
                try await b.go("\(origin)/console/fills/\(fill)")
                try await b.click("input[value='verified'] ~ .actions button")
                #expect(try await b.source().contains("Checked by a pharmacist"))
                try await b.type("#trackingNumber", "9400111899223\(Int.random(in: 100_000...999_999))")
                try await b.click("form:has(#trackingNumber) button")
                #expect(try await b.waitFor("Shipped with").contains("Shipped with"))
                try await check(b, origin: origin, page: "console-shipped")
                try await b.click("header form button")

                try await signIn(b, origin, area: "portal", user: patientUser, password: server.password(patientUser))
                html = try await b.source()
                #expect(html.contains("Shipped") && html.contains("USPS"), "\(html.prefix(800))")
                try await check(b, origin: origin, page: "portal-shipment")
                // At phone width the prescriptions, orders and caregivers tables fit, their buttons in reach.
                try await b.command("POST", "window/rect", .object(["width": .int(375), "height": .int(812)]))
                for path in ["/portal", "/portal/caregivers", "/portal/messages", "/portal/access-log"] {
                    try await b.go("\(origin)\(path)")
                    let fits = try await b.execute("return document.documentElement.scrollWidth <= window.innerWidth + 1")
                    #expect(fits == .bool(true), "\(path) fits 375 px without sideways scrolling")
                }
                try await check(b, origin: origin, page: "portal-phone")
                try await b.command("POST", "window/rect", .object(["width": .int(1200), "height": .int(900)]))
            }
        }
    }

    @Test("Privacy console in headless Chromium: chain status, SVG charts, audit search by patient, a phone-sized page; nothing leaves the origin")
    func privacyConsole() async throws {
        let server = try await LiveServer.shared.value
        let origin = "http://127.0.0.1:\(server.port)"
        try await Browser.start().using { b in
            let secret = server.credentials.first { $0.username == "privacy" }?.totp_secret
            try await signIn(b, origin, area: "privacy", user: "privacy", password: server.password("privacy"), secret: secret)
            #expect(try await b.url() == "\(origin)/privacy")
            var html = try await b.source()
            #expect(html.contains("Verified") && html.contains("<svg") && html.contains("Accesses per day by role") && html.contains("Denials per day"))
            #expect(html.contains("Top actors by distinct patients touched"))
            try await check(b, origin: origin, page: "privacy-overview")
            try await b.go("\(origin)/privacy/audit")
            try await b.type("#patient", "pat-0001")
            try await b.click("form[action='/privacy/audit'] button")
            #expect(try await b.url() == "\(origin)/privacy/audit", "the search went by POST: the patient id is not in the URL")
            html = try await b.source()
            #expect(html.contains(" records") && !html.contains("(s)") && html.contains("pat-0001"), "\(html.prefix(500))")
            try await check(b, origin: origin, page: "privacy-audit")
            try await b.go("\(origin)/privacy/alerts")
            html = try await b.source()
            #expect(html.contains("Open") && html.contains("Suspended actors"), "\(html.prefix(400))")
            try await check(b, origin: origin, page: "privacy-alerts")
            // The same pages at phone width.
            try await b.command("POST", "window/rect", .object(["width": .int(390), "height": .int(844)]))
            try await b.go("\(origin)/privacy")
            try await check(b, origin: origin, page: "privacy-overview-phone")
            let overflow = try await b.execute("return document.documentElement.scrollWidth <= window.innerWidth + 1")
            #expect(overflow == .bool(true), "the page fits a phone's width without sideways scrolling")
            try await b.command("POST", "window/rect", .object(["width": .int(1200), "height": .int(900)]))
            try await b.click("header form button")
        }
    }
}
