import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SafeRxModel

/// A small W3C WebDriver client for Debian's chromium + chromium-driver (installed by `scripts/test.sh` when
/// missing), with Chrome's performance log on so that every network request the page makes can be checked.
final class Browser: @unchecked Sendable {
    let driver: Process
    let base: URL
    let session: String
    static let elementKey = "element-6066-11e4-a52e-4f735466cecf"

    static func executable(_ names: [String]) -> String? {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init) + ["/usr/bin", "/usr/lib/chromium"]
        for name in names {
            for dir in paths where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") { return "\(dir)/\(name)" }
        }
        return nil
    }

    static func start() async throws -> Browser {
        guard let driverPath = executable(["chromedriver"]), let chromium = executable(["chromium", "chromium-browser"]) else {
            throw TestError("chromium and chromedriver are needed (scripts/test.sh installs Debian's chromium and chromium-driver)")
        }
        let port = Int.random(in: 20_000...40_000)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: driverPath)
        p.arguments = ["--port=\(port)"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let base = URL(string: "http://127.0.0.1:\(port)")!
        for _ in 0..<100 {
            if let status = try? await request("GET", base.appendingPathComponent("status")), status["value"]?["ready"] == .bool(true) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let caps: JSON = .object([
            "capabilities": .object(["alwaysMatch": .object([
                "browserName": "chrome",
                "goog:chromeOptions": .object([
                    "binary": .string(chromium),
                    "args": .array(["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900",
                                    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                                    "--disable-default-apps", "--disable-features=Translate,OptimizationHints,MediaRouter"]),
                ]),
                "goog:loggingPrefs": .object(["performance": "ALL", "browser": "ALL"]),
            ])]),
        ])
        let created = try await request("POST", base.appendingPathComponent("session"), caps)
        guard let id = created["value"]?["sessionId"]?.stringValue else {
            p.terminate()
            throw TestError("chromedriver did not start a session: \(created)")
        }
        return Browser(driver: p, base: base, session: id)
    }

    init(driver: Process, base: URL, session: String) {
        self.driver = driver
        self.base = base
        self.session = session
    }

    func quit() async {
        _ = try? await Self.request("DELETE", base.appendingPathComponent("session/\(session)"))
        driver.terminate()
    }

    @discardableResult
    static func request(_ method: String, _ url: URL, _ body: JSON? = nil) async throws -> JSON {
        var r = HTTPClientRequest(url: url.absoluteString)
        r.method = .init(rawValue: method)
        if let body {
            r.body = .bytes(ByteBuffer(bytes: body.encoded()))
            r.headers.add(name: "Content-Type", value: "application/json")
        }
        let response = try await AsyncHTTPClient.HTTPClient.shared.execute(r, timeout: .seconds(60))
        let data = try await response.body.collect(upTo: 64 * 1024 * 1024)
        return (try? JSON.parse(Data(data.readableBytesView))) ?? .null
    }

    @discardableResult
    func command(_ method: String, _ path: String, _ body: JSON? = nil) async throws -> JSON {
        let answer = try await Self.request(method, base.appendingPathComponent("session/\(session)/\(path)"), body ?? (method == "POST" ? .object([:]) : nil))
        if let error = answer["value"]?["error"]?.stringValue {
            throw TestError("WebDriver \(method) \(path): \(error): \(answer["value"]?["message"]?.stringValue ?? "")")
        }
        return answer["value"] ?? .null
    }

    func go(_ url: String) async throws { try await command("POST", "url", .object(["url": .string(url)])) }

    func element(_ css: String) async throws -> String {
        let v = try await command("POST", "element", .object(["using": "css selector", "value": .string(css)]))
        guard let id = v[Self.elementKey]?.stringValue else { throw TestError("no element \(css)") }
        return id
    }

    func type(_ css: String, _ text: String) async throws {
        let id = try await element(css)
        try await command("POST", "element/\(id)/clear")
        try await command("POST", "element/\(id)/value", .object(["text": .string(text)]))
    }

    /// Clicks an element that submits a form or follows a link, and returns once the next page has loaded.
    ///
    /// WebDriver's click may return before the navigation it starts has finished (seen under load in CI), so the
    /// old document is marked first and the click counts as done only when a document without the mark is complete.
    func click(_ css: String) async throws {
        let id = try await element(css)
        try await execute("document.documentElement.setAttribute('data-webdriver-stale', '1')")
        try await command("POST", "element/\(id)/click")
        for _ in 0..<200 {
            let state = try? await execute(
                "return document.readyState + (document.documentElement.hasAttribute('data-webdriver-stale') ? ':old' : ':new')")
            if state?.stringValue == "complete:new" { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestError("clicking \(css) did not load a new page within 10 s (still \(try await url()))")
    }

    /// Runs a script in the page (WebDriver scripts are not subject to the page's CSP).
    @discardableResult
    func execute(_ script: String) async throws -> JSON {
        try await command("POST", "execute/sync", .object(["script": .string(script), "args": .array([])]))
    }

    func source() async throws -> String { try await command("GET", "source").stringValue ?? "" }

    /// The page source once any of `texts` appears (a form's redirect may still be loading), or after 5 s.
    func waitFor(_ texts: String...) async throws -> String {
        var html = ""
        for _ in 0..<50 {
            html = try await source()
            if texts.contains(where: { html.contains($0) }) { return html }
            try await Task.sleep(for: .milliseconds(100))
        }
        return html
    }
    func url() async throws -> String { try await command("GET", "url").stringValue ?? "" }

    func cookies() async throws -> [String] {
        (try await command("GET", "cookie").arrayValue ?? []).compactMap { $0["name"]?.stringValue }
    }

    /// Sets the session cookie to another value (an attacker editing their cookie).
    func setCookie(_ name: String, _ value: String) async throws {
        try await command("POST", "cookie", .object(["cookie": .object(["name": .string(name), "value": .string(value), "path": "/"])]))
    }

    func screenshot(to file: URL) async throws {
        guard let b64 = try await command("GET", "screenshot").stringValue, let png = Data(base64Encoded: b64) else { return }
        try png.write(to: file)
    }

    /// Every URL the browser requested since the last call (Chrome's performance log, Network.requestWillBeSent).
    func requestedURLs() async throws -> [String] {
        let entries = try await command("POST", "se/log", .object(["type": "performance"])).arrayValue ?? []
        return entries.compactMap { e -> String? in
            guard let text = e["message"]?.stringValue, let m = try? JSON.parse(Data(text.utf8)),
                m["message"]?["method"]?.stringValue == "Network.requestWillBeSent"
            else { return nil }
            return m["message"]?["params"]?["request"]?["url"]?.stringValue
        }
    }

    /// Console messages since the last call (CSP violations are reported here).
    func consoleMessages() async throws -> [String] {
        (try await command("POST", "se/log", .object(["type": "browser"])).arrayValue ?? []).compactMap { $0["message"]?.stringValue }
    }
}

/// Reads a QR code from an image with `scripts/qr-decode.py` (zxing-cpp, installed by the test script).
enum QRReader {
    static func decode(_ image: URL) throws -> String {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../scripts/qr-decode.py").standardized
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script.path, image.path]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let text = out.fileHandleForReading.readDataToEndOfFile()
        let problem = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw TestError("no QR code read from \(image.lastPathComponent): \(String(decoding: problem, as: UTF8.self).suffix(300))")
        }
        return String(decoding: text, as: UTF8.self)
    }
}

extension Browser: TestScoped {
    func end() async { await quit() }
}
