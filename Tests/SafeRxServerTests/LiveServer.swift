import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import SafeRxStoreCore
import Synchronization
import NIOCore
import ServiceLifecycle
import SafeRxModel
import SafeRxPharmacy
import SafeRxPostgres
import SafeRxVault
import SafeRxServer
import SafeRxStore

/// Something a test starts and must end before it returns: a server, an HTTP connection, a browser, a receiver.
///
/// `try await LiveServer.start().using { server in ... }` runs the body and then ends the resource, awaited, whether
/// the body returned or threw: the test owns the lifetime, and nothing is left running (or logging) after it.
protocol TestScoped: Sendable {
    /// Ends the resource; called once the body is done. Must be safe to call twice.
    func end() async
}

extension TestScoped {
    func using<T>(_ body: (Self) async throws -> T) async throws -> T {
        let result: T
        do {
            result = try await body(self)
        } catch {
            await end()
            throw error
        }
        await end()
        return result
    }
}

extension LiveServer: TestScoped {
    func end() async { await stop() }
}

extension HTTPClient: TestScoped {
    func end() async { await close() }
}

/// A real SafeRx server on a loopback port, over a real SQLite file in a temporary directory.
final class LiveServer: Sendable {
    let store: PharmacyStore
    let auth: AuthService
    let port: Int
    let directory: URL
    let credentials: [DemoCredential]
    /// Runs the application; `stop()` asks it to shut down gracefully and waits for it.
    let group: ServiceGroup
    let task: Task<Void, any Error>
    /// Everything the application logged, at every level (only warnings and above are printed).
    let log: CapturedLog

    /// The services over this server's store (what the server itself runs on).
    var pharmacy: Pharmacy { Pharmacy(store: store, auth: auth) }

    /// The server most tests share: 60 demo patients, 50 with accounts, 10 owned by the partner.
    static let shared = Task { try await LiveServer.start() }

    /// The PostgreSQL database of the store in `dir` when the suite runs on PostgreSQL (`SAFERX_TEST_ENGINE=postgres`,
    /// with `SAFERX_TEST_POSTGRES` naming the server): a new one per store, remembered in the directory so that a
    /// restart reopens it. Nil on SQLite.
    static func testDatabase(for dir: URL, reopening: Bool) throws -> String? {
        let env = ProcessInfo.processInfo.environment
        guard env["SAFERX_TEST_ENGINE"] == "postgres", let server = env["SAFERX_TEST_POSTGRES"] else { return nil }
        let file = dir.appendingPathComponent("test-database.url")
        if reopening {
            // A store restored from a backup into a directory is a SQLite store, whichever engine it was taken from.
            return try? String(contentsOf: file, encoding: .utf8)
        }
        let name = "saferx_live_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        let url = try PostgreSQLDatabase.createDatabase(String(name), serverURL: server)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try url.write(to: file, atomically: true, encoding: .utf8)
        return url
    }

    /// Options that open the store in `dir` again on the engine it was made on.
    static func reopenOptions(_ dir: URL) -> PharmacyStore.Options {
        var options = PharmacyStore.Options()
        options.database = try? String(contentsOf: dir.appendingPathComponent("test-database.url"), encoding: .utf8)
        return options
    }

    static func start(
        patients: Int = 60, accounts: Int = 50, partnerPatients: Int = 10, consentPatients: Int = 5,
        webhookPolicy: WebhookRetryPolicy = WebhookRetryPolicy(), webhookPollInterval: Duration = .seconds(1),
        detection: DetectionSettings? = nil, honeytokens: Int = 0, auditClock: (@Sendable () -> Date)? = nil,
        // Tests replay whole workdays and attacks in seconds from one address: unlimited unless a test sets limits.
        reopening existing: URL? = nil, sourceLimit: RateLimit = .unlimited, accountLimit: RateLimit = .unlimited,
        webSessionIdle: TimeInterval = 15 * 60
    ) async throws -> LiveServer {
        let dir = existing ?? FileManager.default.temporaryDirectory.appendingPathComponent("saferx-test-\(UUID().uuidString)")
        var options = PharmacyStore.Options()
        if let auditClock { options.auditClock = auditClock }
        options.database = try testDatabase(for: dir, reopening: existing != nil)
        let store = try PharmacyStore.open(dataDirectory: dir, keyFile: dir.appendingPathExtension("master.key"), options: options)
        let auth = await AuthService(store: store, passwordCost: 4)
        // A reopened store (a restart) keeps what it has; a new one gets the demo pharmacy.
        let creds = existing != nil ? [] : try await DemoPharmacy(
            patientCount: patients, patientAccounts: accounts, partnerPatients: partnerPatients, consentPatients: consentPatients, honeytokens: honeytokens
        ).seed(into: store, auth: auth)
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        let capture = CapturedLog()
        var logger = Logger(label: "saferx.test") { label in CapturingLogHandler(label: label, log: capture) }
        logger.logLevel = .trace
        let sender = try FileNotificationSender(directory: dir.appendingPathExtension("outbox"))
        var configuration = SafeRxServer.Configuration(
            host: "127.0.0.1", port: 0, onListening: { continuation.yield($0) }, webhookPolicy: webhookPolicy,
            webhookPollInterval: webhookPollInterval, notificationSender: sender, detection: detection, sourceLimit: sourceLimit,
            accountLimit: accountLimit)
        configuration.webSessionIdle = webSessionIdle
        let app = try await SafeRxServer.application(pharmacy: Pharmacy(store: store, auth: auth), configuration: configuration, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        let task = Task { try await group.run() }
        var port = 0
        for await p in stream {
            port = p
            break
        }
        return LiveServer(store: store, auth: auth, port: port, directory: dir, credentials: creds, group: group, task: task, log: capture)
    }

    init(
        store: PharmacyStore, auth: AuthService, port: Int, directory: URL, credentials: [DemoCredential], group: ServiceGroup, task: Task<Void, any Error>,
        log: CapturedLog
    ) {
        self.log = log
        self.store = store
        self.auth = auth
        self.port = port
        self.directory = directory
        self.credentials = credentials
        self.group = group
        self.task = task
    }

    /// The application's log so far, one line per message with its metadata.
    func logText() -> String { log.text() }

    /// The master key file of this server's store (beside, not inside, its data directory).
    var keyFile: URL { directory.appendingPathExtension("master.key") }

    /// Shuts the server down gracefully (in-flight requests finish, background services stop) and waits for it;
    /// then removes its files unless told to keep them (a restart reopens them). Stopping twice is harmless.
    func stop(removingFiles: Bool = true) async {
        await group.triggerGracefulShutdown()
        _ = await task.result
        guard removingFiles else { return }
        try? FileManager.default.removeItem(at: directory)
        try? FileManager.default.removeItem(at: directory.appendingPathExtension("master.key"))
        try? FileManager.default.removeItem(at: directory.appendingPathExtension("outbox"))
    }

    /// Notifications delivered so far (the file sender's outbox), oldest first.
    func outbox() -> [JSON] { FileNotificationSender.read(directory.appendingPathExtension("outbox").appendingPathComponent("outbox.jsonl")) }

    /// Waits (up to 10 s) for a delivered notification to `recipient` of `kind` that is not among `seen`.
    func notification(to recipient: String, kind: String, after seen: Int = 0) async throws -> JSON {
        for _ in 0..<100 {
            let matching = outbox().filter { $0["to"]?.stringValue == recipient && $0["kind"]?.stringValue == kind }
            if matching.count > seen { return matching[seen] }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestError("no \(kind) notification to \(recipient)")
    }

    /// A new HTTP/1.1 connection to the server.
    func client() -> HTTPClient {
        let c = TestClient(host: "127.0.0.1", port: port, configuration: .init(timeout: .seconds(60)))
        c.connect()
        return HTTPClient(client: c)
    }

    /// A token for a user, as `saferx token --user` would print.
    func token(_ username: String, scope: String? = nil) async throws -> String {
        guard let u = try await store.user(named: username) else { throw TestError("no user \(username)") }
        return try await auth.issue(subject: u.id, role: u.role, tenant: u.tenant, patient: u.patientID, kind: "user", scope: scope).accessToken
    }

    func password(_ username: String) -> String {
        credentials.first { $0.username == username }!.password!
    }

    var partnerSecret: String { credentials.first { $0.client_id != nil }!.client_secret! }
}

/// Lines logged by a test server, kept in memory.
final class CapturedLog: Sendable {
    let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    func text() -> String { lines.withLock { $0.joined(separator: "\n") } }
}

/// Records every message (any level) and prints warnings and above, as the tests' logger did before.
struct CapturingLogHandler: LogHandler {
    let label: String
    let log: CapturedLog
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    let printer: StreamLogHandler

    init(label: String, log: CapturedLog) {
        self.label = label
        self.log = log
        self.printer = StreamLogHandler.standardError(label: label)
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        log.append("\(event.level) \(label) \(event.message) \(all)")
        if event.level >= .warning { printer.log(event: event) }
    }
}

struct TestError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A decoded HTTP response.
struct Reply: Sendable {
    var status: Int
    var body: String
    var headers: HTTPFields

    var json: JSON? { try? JSON.parse(Data(body.utf8)) }
    var requestID: String { headers[HTTPField.Name("X-Request-ID")!] ?? "" }
    var total: Int? {
        if case .int(let n) = json?["total"] { return Int(n) }
        return nil
    }
    var entries: [JSON] { json?["entry"]?.arrayValue ?? [] }
    var issue: String { json?["issue"]?.arrayValue?.first?["diagnostics"]?.stringValue ?? "" }
}

struct HTTPClient: Sendable {
    let client: TestClient

    func send(
        _ method: HTTPRequest.Method, _ path: String, token: String? = nil, body: String? = nil,
        contentType: String = "application/fhir+json", headers extra: HTTPFields = [:]
    ) async throws -> Reply {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        if body != nil { headers[.contentType] = contentType }
        headers[.userAgent] = "saferx-tests"
        let r = try await client.execute(.init(path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }))
        return Reply(status: r.status.code, body: r.body.map { String(buffer: $0) } ?? "", headers: r.headers)
    }

    func get(_ path: String, token: String? = nil) async throws -> Reply { try await send(.get, path, token: token) }

    func post(_ path: String, token: String?, _ body: JSON?, headers: HTTPFields = [:]) async throws -> Reply {
        try await send(.post, path, token: token, body: body.map { String(decoding: $0.encoded(), as: UTF8.self) }, headers: headers)
    }

    func close() async { try? await client.shutdown() }
}

extension JSON {
    /// Builds JSON from a literal string (test convenience).
    static func from(_ s: String) -> JSON { try! JSON.parse(Data(s.utf8)) }
}
