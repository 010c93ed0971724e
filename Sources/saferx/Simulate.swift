import ArgumentParser
import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import SafeRxDetect
import SafeRxModel
import SafeRxPharmacy
import SafeRxPolicy
import SafeRxServer
import SafeRxStoreCore
import SafeRxVault
import Synchronization

/// `saferx simulate`: a pharmacy's day, and the attacks detection must stop, driven through the real HTTP API and pages.
struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drive a real SafeRx server through a simulated workday or abuse replays, and report what detection saw.",
        discussion: """
            Each run starts its own server on a loopback port over a throw-away store (a demo pharmacy of the given size, \
            honeytokens planted) with detection on and the given rules, and a simulated clock: audit records carry \
            simulated time, so eight hours of work take minutes and every window of every rule sees the day as it would \
            be. All simulated people share one loopback address, so the per-address rate limit is off; per-account \
            limits are on.
            """,
        subcommands: [Workday.self, Abuse.self])

    /// Lines "rule  peak (actor)  limit" for every rule with a limit.
    static func peakLines(_ peaks: [Detector.Peak], rules: DetectionRules) -> [String] {
        rules.rules.compactMap { rule in
            guard let limit = rule.limit else { return nil }
            let p = peaks.first { $0.rule == rule.id }
            let value = p?.value ?? 0
            let who = value > 0 ? " (\(p!.role) \(p!.actor))" : ""
            let share = rule.threshold.map { $0 > 0 ? String(format: ", %.0f%% of the limit", 100 * Double(value) / Double($0)) : "" } ?? ""
            return "\(rule.id.padding(toLength: 26, withPad: " ", startingAt: 0)) peak \(value)\(who); limit \(limit)\(share)"
        }
    }

    struct Options: ParsableArguments {
        @Option(help: "Patients in the simulated pharmacy.") var patients = 2_000
        @Option(help: "Seed of the simulation's random choices (the same seed, the same day).") var seed: UInt64 = 1
        @Option(help: "Detection rules file (default: the bundled rules).") var rules: String?
        @Option(name: .customLong("data"), help: "Directory for the throw-away store (default: the system's temporary directory).")
        var data: String?
        @Flag(help: "Keep the store afterwards and print where it is (open it with --data-dir and --key-file).") var keep = false

        func loadRules() throws -> DetectionRules {
            do { return try rules.map { try DetectionRules.load($0) } ?? DetectionRules.bundled() } catch { throw CLIError("\(error)") }
        }
    }

    struct Workday: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "workday",
            abstract: "Simulate a pharmacy's working day; fails (exit 1) if it raised any alert or suspension, or any request failed.",
            discussion: """
                Technicians work the fill queue and the inbox in the console (open a fill, start filling, ship verified \
                fills, answer messages, open a patient now and then); pharmacists verify fills (now and then putting one on hold through its confirmation page), answer messages and look \
                patients up by Rx number; support staff help account holders through the API (look a patient up by MRN, \
                read demographics and authorizations) and break the glass a few times a shift with a reason; patients \
                sign in to the portal, request refills, write and read messages and look at their access log; a caregiver \
                acts for the patient in their care; the telehealth partner sends the day's prescriptions and checks on them. \
                The report lists the work done, the requests by role and status, the alerts and suspensions (there must be \
                none), and each rule's peak against its limit: the measured basis of the thresholds in the rules file.
                """)
        @OptionGroup var options: Options
        @Option(help: "Staff accounts (about 4 in 10 technicians, 4 in 10 pharmacists, the rest support).") var staff = 10
        @Option(help: "Simulated hours of work (1-16).") var hours = 8

        func validate() throws {
            guard (3...200).contains(staff) else { throw ValidationError("--staff must be 3-200") }
            guard (1...16).contains(hours) else { throw ValidationError("--hours must be 1-16") }
            guard (100...100_000).contains(options.patients) else { throw ValidationError("--patients must be 100-100000") }
        }

        func run() async throws {
            let rules = try options.loadRules()
            let sim = try await SimPharmacy.start(options, rules: rules, staff: staff, say: say)
            defer { sim.remove(keep: options.keep) }
            let day = WorkdaySimulation(sim: sim, hours: hours, seed: options.seed)
            try await day.run()
            await sim.stop()
            let report = try await sim.report(rules: rules)
            say(day.summary())
            for line in report.lines { say(line) }
            let failed = report.alerts > 0 || report.suspensions > 0 || day.stats.failures > 0
            if options.keep { say("Store kept: --data \(sim.directory.path) --key-file \(sim.keyFile.path)") }
            if failed {
                throw CLIError(
                    "the simulated workday was not silent: \(plural(report.alerts, "alert")), \(plural(report.suspensions, "suspension")), "
                        + "\(plural(day.stats.failures, "failed request"))")
            }
            say("A silent day: no alert, no suspension, every request answered as expected.")
        }
    }

    struct Abuse: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "abuse",
            abstract: "Replay the attacks detection must contain; fails (exit 1) unless each is contained before --limit patients.",
            discussion: """
                1. A stolen technician credential pages through patients and fills through the API. 2. A support account \
                breaks the glass on patient after patient (with a plausible reason) and reads each under ETREAT. 3. The \
                partner client sweeps every patient it may see. 4. A patient's token walks other patients' ids. For each, \
                the report says after how many patients' data had left the attacker was cut off, by which rule, and \
                whether the account was suspended.
                """)
        @OptionGroup var options: Options
        @Option(help: "Each attack must be contained before this many patients' data left.") var limit = 100

        func validate() throws {
            guard (100...100_000).contains(options.patients) else { throw ValidationError("--patients must be 100-100000") }
        }

        func run() async throws {
            let rules = try options.loadRules()
            let sim = try await SimPharmacy.start(options, rules: rules, staff: 4, say: say)
            defer { sim.remove(keep: options.keep) }
            let replays = AbuseReplays(sim: sim)
            let results = try await replays.run()
            await sim.stop()
            var failed: [String] = []
            for r in results {
                say(r.line)
                if !r.contained || r.patients >= limit { failed.append(r.name) }
            }
            if !failed.isEmpty { throw CLIError("not contained before \(limit) patients: \(failed.joined(separator: ", "))") }
            say("Every attack was contained before \(limit) patients.")
        }
    }
}

// MARK: - The simulated pharmacy

/// The clock the server stamps audit records with; the simulation moves it.
final class SimClock: Sendable {
    let time: Mutex<Date>
    init(_ start: Date) { time = Mutex(start) }
    func now() -> Date { time.withLock { $0 } }
    func set(_ date: Date) { time.withLock { $0 = max($0, date) } }
}

/// A staff member the simulation signs in as.
struct SimStaff: Sendable {
    var username: String
    var password: String
    var role: String
    var totp: TOTP
}

/// A real store and server on a loopback port, seeded with a demo pharmacy, its audit records stamped by a `SimClock`.
final class SimPharmacy: Sendable {
    let pharmacy: Pharmacy
    let port: Int
    let directory: URL
    let keyFile: URL
    let clock: SimClock
    let staff: [SimStaff]
    let credentials: [DemoCredential]
    let patients: Int
    let task: Task<Void, any Error>
    let start: Date

    init(pharmacy: Pharmacy, port: Int, directory: URL, keyFile: URL, clock: SimClock, staff: [SimStaff],
         credentials: [DemoCredential], patients: Int, task: Task<Void, any Error>, start: Date) {
        self.pharmacy = pharmacy
        self.port = port
        self.directory = directory
        self.keyFile = keyFile
        self.clock = clock
        self.staff = staff
        self.credentials = credentials
        self.patients = patients
        self.task = task
        self.start = start
    }

    /// Seeds a pharmacy of `options.patients` patients (15% with portal accounts, a tenth the partner's, three
    /// honeytokens among the pharmacy's patients and one among the partner's) and `staff` staff, and starts the server.
    static func start(_ options: Simulate.Options, rules: DetectionRules, staff count: Int, say: (String) -> Void) async throws -> SimPharmacy {
        let parent = options.data.map { URL(fileURLWithPath: $0, isDirectory: true) } ?? FileManager.default.temporaryDirectory
        let name = "saferx-simulate-\(UUID().uuidString.prefix(8).lowercased())"
        let directory = parent.appendingPathComponent(name), keyFile = parent.appendingPathComponent(name + ".key")
        // The simulated day is yesterday (UTC), from 08:00: every simulated time is in the past.
        let today = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: Date())
        var c = DateComponents()
        (c.year, c.month, c.day, c.hour, c.timeZone) = (today.year, today.month, today.day, 8, TimeZone(identifier: "UTC"))
        let dayStart = Calendar(identifier: .gregorian).date(from: c)!.addingTimeInterval(-86_400)
        let clock = SimClock(dayStart.addingTimeInterval(-3600))
        let pharmacy = try await Pharmacy.open(dataDirectory: directory, keyFile: keyFile, auditClock: { clock.now() }, passwordCost: 4)
        let started = ContinuousClock.now
        let patients = options.patients
        let credentials = try await pharmacy.seedDemo(DemoPharmacy(
            patientCount: patients, patientAccounts: max(20, patients * 15 / 100), partnerPatients: patients / 10, consentPatients: 5, honeytokens: 3))
        _ = try await pharmacy.detection.plantHoneytokens(.operatorCommand(reason: "saferx simulate"), tenant: DemoPharmacy.tenant, count: 1, partner: DemoPharmacy.partnerClientID)
        // Staff: the demo's pharmacist, pharmacist-b, technician and support, and more of each up to `count`.
        let technicians = max(1, count * 4 / 10), pharmacists = max(2, count * 4 / 10), support = max(0, count - technicians - pharmacists)
        var staff: [SimStaff] = []
        func demo(_ username: String) -> SimStaff? {
            guard let c = credentials.first(where: { $0.username == username }), let secret = c.totp_secret.flatMap(Base32.decode) else { return nil }
            return SimStaff(username: username, password: c.password ?? "", role: c.role, totp: TOTP(secret: secret))
        }
        func add(_ username: String, _ role: Role) async throws -> SimStaff {
            let (password, secret) = try await pharmacy.addDemoStaff(.operatorCommand(reason: "saferx simulate", tenant: DemoPharmacy.tenant), username: username, role: role, tenant: DemoPharmacy.tenant)
            return SimStaff(username: username, password: password, role: role.rawValue, totp: TOTP(secret: secret))
        }
        for i in 1...technicians { staff.append(i == 1 ? demo("technician")! : try await add("technician-\(i)", .technician)) }
        for i in 1...pharmacists {
            staff.append(i == 1 ? demo("pharmacist")! : i == 2 ? demo("pharmacist-b")! : try await add("pharmacist-\(i)", .pharmacist))
        }
        for i in 0..<support { staff.append(i == 0 ? demo("support")! : try await add("support-\(i + 1)", .support)) }
        let seconds = Double((ContinuousClock.now - started).components.seconds)
        say("Seeded \(plural(patients, "patient")), \(staff.count) staff (\(plural(technicians, "technician")), \(plural(pharmacists, "pharmacist")), \(support) support) in \(Int(seconds)) s")

        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "saferx.simulate")
        // Stopping the server by cancellation makes HummingbirdCore log "Waiting on child channel" at error level;
        // requests that fail are counted from their answers, not the log.
        logger.logLevel = .critical
        let app = try await SafeRxServer.application(
            pharmacy: pharmacy,
            configuration: .init(
                host: "127.0.0.1", port: 0, onListening: { continuation.yield($0) }, detection: DetectionSettings(rules: rules),
                sourceLimit: .unlimited, accountLimit: .perAccount),
            logger: logger)
        let task = Task { try await app.runService(gracefulShutdownSignals: []) }
        var it = ports.makeAsyncIterator()
        guard let port = await it.next() else { throw CLIError("the server did not start") }
        clock.set(dayStart)
        return SimPharmacy(
            pharmacy: pharmacy, port: port, directory: directory, keyFile: keyFile, clock: clock, staff: staff, credentials: credentials,
            patients: patients, task: task, start: dayStart)
    }

    func stop() async {
        task.cancel()
        _ = await task.result
    }

    func remove(keep: Bool) {
        guard !keep else { return }
        try? FileManager.default.removeItem(at: directory)
        try? FileManager.default.removeItem(at: keyFile)
    }

    /// Alerts, suspensions and each rule's peak over the day's audit log.
    func report(rules: DetectionRules) async throws -> (lines: [String], alerts: Int, suspensions: Int) {
        let alerts = try await pharmacy.detection.alerts(.operatorCommand(reason: "saferx simulate"), includeAcknowledged: true)
        let suspensions = try await pharmacy.detection.suspensions(.operatorCommand(reason: "saferx simulate"), includeLifted: false)
        let replay = try await pharmacy.detection.replay(.operatorCommand(reason: "saferx simulate"), rules: rules, from: "1970-01-01", to: nil)
        var lines = ["Alerts: \(alerts.count); suspensions: \(suspensions.count)"]
        for a in alerts { lines.append("  ALERT \(a.severity) \(a.rule) \(a.actor): \(a.summary)") }
        lines.append("Peaks over \(replay.records) audit records (the highest value each rule's measure reached for one actor):")
        lines += Simulate.peakLines(replay.peaks, rules: rules).map { "  " + $0 }
        return (lines, alerts.count, suspensions.count)
    }
}

// MARK: - HTTP

/// What one request came back with.
struct SimReply {
    var status: Int
    var body: String
    var location: String?

    var json: JSON? { try? JSON.parse(Data(body.utf8)) }
}

/// Counts requests and failures (any answer the step did not expect).
final class SimStats: @unchecked Sendable {
    var requests: [String: Int] = [:]
    var statuses: [Int: Int] = [:]
    var failures = 0
    var failureExamples: [String] = []
    var work: [String: Int] = [:]
    /// Per route (ids replaced by `:id`): requests and total seconds.
    var timing: [String: (count: Int, seconds: Double)] = [:]

    static func route(_ method: String, _ path: String) -> String {
        let bare = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
        let parts = bare.split(separator: "/", omittingEmptySubsequences: false).map { part -> String in
            part.contains(where: \.isNumber) && !part.hasPrefix("$") ? ":id" : String(part)
        }
        return method + " " + parts.joined(separator: "/") + (path.contains("?") ? "?…" : "")
    }

    /// The routes that took the most time in all.
    func slowest(_ n: Int) -> [String] {
        timing.sorted { $0.value.seconds > $1.value.seconds }.prefix(n).map {
            String(format: "%@: %d × %.1f ms", $0.key, $0.value.count, 1000 * $0.value.seconds / Double(max($0.value.count, 1)))
        }
    }

    func done(_ what: String, _ n: Int = 1) { work[what, default: 0] += n }
}

/// One simulated person's side of HTTP: a browser (session cookie, CSRF token) or an API client (bearer token).
final class SimAgent: @unchecked Sendable {
    let name: String
    let role: String
    let http: HTTPClient
    let base: String
    let stats: SimStats
    var token: String?
    var cookie: String?
    var csrf: String?
    var purpose: String?

    init(name: String, role: String, http: HTTPClient, port: Int, stats: SimStats) {
        self.name = name
        self.role = role
        self.http = http
        self.base = "http://127.0.0.1:\(port)"
        self.stats = stats
    }

    /// Sends one request; an answer outside `expect` counts as a failure of the simulated day.
    @discardableResult
    func send(
        _ method: HTTPMethod, _ path: String, json: JSON? = nil, form: [String: String]? = nil, basic: String? = nil,
        expect: Set<Int> = [200, 201, 303]
    ) async throws -> SimReply {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "User-Agent", value: "saferx-simulate (\(role))")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let basic { request.headers.add(name: "Authorization", value: "Basic \(Data(basic.utf8).base64EncodedString())") }
        if let cookie { request.headers.add(name: "Cookie", value: "\(WebSessionCookie.name)=\(cookie)") }
        if let purpose { request.headers.add(name: "X-Purpose-Of-Use", value: purpose) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/fhir+json")
            request.body = .bytes(ByteBuffer(bytes: json.encoded()))
        } else if var form {
            if let csrf, token == nil, basic == nil { form["_csrf"] = csrf }
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            let body = form.sorted { $0.key < $1.key }.map { "\(Self.encode($0.key))=\(Self.encode($0.value))" }.joined(separator: "&")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let began = ContinuousClock.now
        let response = try await http.execute(request, timeout: .seconds(120))
        let body = String(buffer: try await response.body.collect(upTo: 32 << 20))
        let took = ContinuousClock.now - began
        let key = SimStats.route(method.rawValue, path)
        let spent = Double(took.components.seconds) + Double(took.components.attoseconds) / 1e18
        stats.timing[key] = ((stats.timing[key]?.count ?? 0) + 1, (stats.timing[key]?.seconds ?? 0) + spent)
        if let set = response.headers.first(name: "Set-Cookie") {
            let value = set.split(separator: ";").first?.split(separator: "=", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
            cookie = value.isEmpty ? nil : value
        }
        if let m = body.firstMatch(of: /name="_csrf" value="([^"]+)"/) { csrf = String(m.1) }
        let status = Int(response.status.code)
        stats.requests[role, default: 0] += 1
        stats.statuses[status, default: 0] += 1
        if !expect.contains(status) {
            stats.failures += 1
            if stats.failureExamples.count < 20 {
                stats.failureExamples.append("\(name) \(method.rawValue) \(path) → \(status) \(body.prefix(200).replacingOccurrences(of: "\n", with: " "))")
            }
        }
        return SimReply(status: status, body: body, location: response.headers.first(name: "Location"))
    }

    func get(_ path: String, expect: Set<Int> = [200]) async throws -> SimReply { try await send(.GET, path, expect: expect) }

    /// Submits a page's form and follows the redirect, as a browser does. `ok` is false when the page it lands on
    /// shows an error; that counts as a failure of the day unless `refusalIsNormal` (a refill asked for too early).
    func submit(_ path: String, _ fields: [String: String], refusalIsNormal: Bool = false) async throws -> (ok: Bool, page: SimReply) {
        let r = try await send(.POST, path, form: fields, expect: [303])
        guard r.status == 303, let location = r.location else { return (false, r) }
        let page = try await get(location)
        let refused = page.body.contains("class=\"flash error\"")
        if refused, !refusalIsNormal {
            stats.failures += 1
            if stats.failureExamples.count < 20, let m = page.body.firstMatch(of: /class="flash error"[^>]*>([^<]*)</) {
                stats.failureExamples.append("\(name) POST \(path) → \(m.1)")
            }
        }
        return (!refused, page)
    }

    /// Signs in through an area's form (with a TOTP code for staff).
    func signIn(area: String, username: String, password: String, totp: TOTP?) async throws -> Bool {
        _ = try await get("/\(area)/login")
        var fields = ["username": username, "password": password]
        if let totp { fields["otp"] = totp.code() }
        let r = try await send(.POST, "/\(area)/login", form: fields, expect: [303])
        guard r.status == 303, r.location == "/\(area)" else { return false }
        _ = try await get("/\(area)")
        return true
    }

    /// Signs in to the API (`POST /auth/login`).
    func apiLogin(username: String, password: String, totp: TOTP?) async throws -> Bool {
        var body: [String: JSON] = ["username": .string(username), "password": .string(password)]
        if let totp { body["otp"] = .string(totp.code()) }
        let r = try await send(.POST, "/auth/login", json: .object(body), expect: [200])
        token = r.json?["access_token"]?.stringValue
        return token != nil
    }

    static func encode(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? s
    }
}

/// The session cookie's name (`WebSessions.cookieName` of the web front, which the command line does not link).
enum WebSessionCookie {
    static let name = "saferx_session"
}

/// "1 alert", "3 alerts".
func plural(_ count: Int, _ word: String) -> String { "\(count) \(word)\(count == 1 ? "" : "s")" }

/// All links on a page matching a pattern's first capture, in order, without repeats.
func links(_ body: String, _ pattern: Regex<(Substring, Substring)>) -> [String] {
    var seen = Set<String>()
    return body.matches(of: pattern).map { String($0.1) }.filter { seen.insert($0).inserted }
}

// MARK: - The workday

/// The simulation's choices come from the demo's deterministic generator: the same seed, the same day.
typealias SimRandom = SplitMix64

extension SplitMix64 {
    mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + next(range.count) }
    mutating func chance(_ p: Double) -> Bool { Double(next(1_000_000)) / 1_000_000 < p }
    /// Seconds between `lo` and `hi`.
    mutating func seconds(_ lo: Int, _ hi: Int) -> TimeInterval { TimeInterval(int(lo...hi)) }
}

/// One simulated person: what they do next, and when.
class SimPerson: @unchecked Sendable {
    let agent: SimAgent
    var next: Date
    var done = false

    init(agent: SimAgent, next: Date) {
        self.agent = agent
        self.next = next
    }

    /// Does one piece of work at `next` and sets the following `next` (or `done`).
    func step(_ day: WorkdaySimulation) async throws {}
}

final class WorkdaySimulation: @unchecked Sendable {
    let sim: SimPharmacy
    let hours: Int
    var rng: SimRandom
    let stats = SimStats()
    let http: HTTPClient
    var people: [SimPerson] = []
    let end: Date
    /// Fills someone is working on, so that two people do not take the same one.
    var claimed = Set<String>()
    /// Prescriptions the partner sent today.
    var partnerPrescriptions: [String] = []
    var elapsed: Double = 0

    init(sim: SimPharmacy, hours: Int, seed: UInt64) {
        self.sim = sim
        self.hours = hours
        self.rng = SimRandom(seed: seed &* 0x2545_F491_4F6C_DD1D)
        self.end = sim.start.addingTimeInterval(TimeInterval(hours) * 3600)
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.connectionPool = .init(idleTimeout: .seconds(60))
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    func agent(_ name: String, _ role: String) -> SimAgent { SimAgent(name: name, role: role, http: http, port: sim.port, stats: stats) }

    /// Minute `m` of the day, plus jitter.
    func at(_ seconds: TimeInterval) -> Date { sim.start.addingTimeInterval(seconds) }

    func run() async throws {
        let t0 = ContinuousClock.now
        let dayLength = TimeInterval(hours) * 3600
        for s in sim.staff {
            let start = at(rng.seconds(0, 600))
            switch s.role {
            case "technician": people.append(Technician(agent: agent(s.username, s.role), next: start, staff: s))
            case "pharmacist": people.append(Pharmacist(agent: agent(s.username, s.role), next: start, staff: s))
            default: people.append(Support(agent: agent(s.username, s.role), next: start, staff: s))
            }
        }
        // About a third of the account holders sign in during the day; the partner works all day.
        let holders = sim.credentials.filter { $0.role == "patient" && $0.username != nil }
        for c in holders where c.username != "patient001" && rng.chance(0.35) {
            people.append(PatientSession(agent: agent(c.username!, "patient"), next: at(rng.seconds(0, Int(dayLength) - 900)), credential: c))
        }
        if let carer = holders.first(where: { $0.username == "patient001" }) {
            people.append(PatientSession(agent: agent("patient001", "caregiver"), next: at(rng.seconds(0, 3600)), credential: carer, caring: "pat-0002"))
        }
        if let partner = sim.credentials.first(where: { $0.client_id == DemoPharmacy.partnerClientID }) {
            people.append(Partner(agent: agent(DemoPharmacy.partnerClientID, "partner"), next: at(rng.seconds(0, 900)), credential: partner))
        }
        while true {
            guard let person = people.filter({ !$0.done }).min(by: { $0.next < $1.next }), person.next < end else { break }
            sim.clock.set(person.next)
            try await person.step(self)
        }
        elapsed = Double((ContinuousClock.now - t0).components.seconds)
        try await http.shutdown()
    }

    func summary() -> String {
        var lines = ["Simulated \(hours) h from \(Instant.string(sim.start).prefix(16))Z in \(Int(elapsed)) s of real time"]
        lines.append("Work: " + stats.work.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        lines.append("Requests: \(stats.requests.values.reduce(0, +)) (" + stats.requests.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            + "); statuses: " + stats.statuses.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        lines.append("Where the time went: " + stats.slowest(6).joined(separator: "; "))
        lines.append("Unexpected answers: \(stats.failures)")
        lines += stats.failureExamples.map { "  " + $0 }
        return lines.joined(separator: "\n")
    }
}

/// Console work: the queue, fills and the inbox.
class ConsoleStaff: SimPerson, @unchecked Sendable {
    let staff: SimStaff
    var signedIn = false

    init(agent: SimAgent, next: Date, staff: SimStaff) {
        self.staff = staff
        super.init(agent: agent, next: next)
    }

    /// Signs in to the console at the start of the shift, then does one piece of the role's work.
    override func step(_ day: WorkdaySimulation) async throws {
        if !signedIn { signedIn = try await agent.signIn(area: "console", username: staff.username, password: staff.password, totp: staff.totp) }
        guard signedIn else {
            done = true
            return
        }
        try await shift(day)
    }

    /// One piece of the role's work; sets `next`.
    func shift(_ day: WorkdaySimulation) async throws {}

    /// Fills on one state's queue page that nobody has taken.
    func queue(_ state: String, _ day: WorkdaySimulation) async throws -> [String] {
        let page = try await agent.get("/console?state=\(state)")
        return links(page.body, /href="\/console\/fills\/([^"]+)"/).filter { !day.claimed.contains($0) }
    }

    /// Opens a fill and moves it on (with a carrier and tracking number when shipping); returns whether it moved and
    /// the fill page as it was opened.
    func work(_ fill: String, to state: String, _ day: WorkdaySimulation) async throws -> (moved: Bool, page: SimReply) {
        day.claimed.insert(fill)
        let page = try await agent.get("/console/fills/\(fill)")
        var form = ["state": state]
        if state == "completed" {
            form["carrier"] = "usps"
            form["trackingNumber"] = String(format: "9400100000%06d%06d", day.rng.int(0...999_999), day.rng.int(0...999_999))
        }
        if state == "on-hold" {
            // Hold, cancel and decline go through their confirmation page, with a reason chosen there.
            _ = try await agent.get("/console/fills/\(fill)/confirm?state=on-hold")
            form["reason"] = "clarif"
        }
        return (try await agent.submit("/console/fills/\(fill)/transition", form).ok, page)
    }

    /// The inbox: the first page of threads, one or two opened, one answered.
    func inbox(_ day: WorkdaySimulation) async throws {
        let list = try await agent.get("/console/messages")
        let threads = links(list.body, /href="\/console\/messages\/([^"?]+)"/)
        for thread in threads.prefix(day.rng.int(1...2)) {
            _ = try await agent.get("/console/messages/\(thread)")
            day.stats.done("threads read")
            if day.rng.chance(0.5) {
                if try await agent.submit("/console/messages/\(thread)", ["text": "Thank you for your message. We have checked your order and will update you today."]).ok {
                    day.stats.done("replies")
                }
            }
        }
    }
}

/// Starts fills, ships verified ones, answers the inbox, opens a patient now and then.
final class Technician: ConsoleStaff, @unchecked Sendable {
    override func shift(_ day: WorkdaySimulation) async throws {
        let roll = day.rng.int(1...100)
        if roll <= 60 {
            if let fill = try await queue("preparation", day).first {
                let (moved, page) = try await work(fill, to: "in-progress", day)
                if moved { day.stats.done("fills started") }
                if day.rng.chance(0.1) {
                    if let patient = links(page.body, /href="\/console\/patients\/([^"]+)"/).first {
                        _ = try await agent.get("/console/patients/\(patient)")
                        day.stats.done("patients opened")
                    }
                }
            }
            next = next.addingTimeInterval(day.rng.seconds(120, 300))
        } else if roll <= 80 {
            if let fill = try await queue("verified", day).first {
                if try await work(fill, to: "completed", day).moved { day.stats.done("fills shipped") }
            }
            next = next.addingTimeInterval(day.rng.seconds(60, 180))
        } else {
            try await inbox(day)
            next = next.addingTimeInterval(day.rng.seconds(120, 240))
        }
    }
}

/// Verifies fills, answers the inbox, looks patients up by Rx number.
final class Pharmacist: ConsoleStaff, @unchecked Sendable {
    override func shift(_ day: WorkdaySimulation) async throws {
        let roll = day.rng.int(1...100)
        if roll <= 60 {
            if let fill = try await queue("in-progress", day).first {
                // Now and then a prescription needs the prescriber's clarification first: on hold, with that reason.
                if day.rng.chance(0.03) {
                    if try await work(fill, to: "on-hold", day).moved { day.stats.done("fills put on hold") }
                } else if try await work(fill, to: "verified", day).moved {
                    day.stats.done("fills verified")
                }
            }
            next = next.addingTimeInterval(day.rng.seconds(60, 180))
        } else if roll <= 85 {
            try await inbox(day)
            next = next.addingTimeInterval(day.rng.seconds(120, 300))
        } else {
            // A prescriber or patient calls with an Rx number.
            let i = day.rng.int(1...day.sim.patients)
            _ = try await agent.get("/console/patients")
            let found = try await agent.send(.POST, "/console/patients", form: ["rxNumber": String(format: "RX%07d", i * 10 + 1)], expect: [200])
            if let patient = links(found.body, /href="\/console\/patients\/([^"]+)"/).first {
                _ = try await agent.get("/console/patients/\(patient)")
                day.stats.done("patients looked up")
            }
            next = next.addingTimeInterval(day.rng.seconds(180, 420))
        }
    }
}

/// Account help through the API: look a caller up by MRN, read their demographics and authorizations; a few times a
/// shift, break the glass with a reason.
final class Support: SimPerson, @unchecked Sendable {
    let staff: SimStaff
    var breaks = 0

    init(agent: SimAgent, next: Date, staff: SimStaff) {
        self.staff = staff
        super.init(agent: agent, next: next)
    }

    override func step(_ day: WorkdaySimulation) async throws {
        if agent.token == nil, try await !agent.apiLogin(username: staff.username, password: staff.password, totp: staff.totp) {
            done = true
            return
        }
        let i = day.rng.int(1...day.sim.patients)
        let found = try await agent.get("/fhir/Patient?identifier=urn:saferx:mrn%7C" + String(format: "MRN%06d", 100_000 + i))
        if let id = found.json?["entry"]?.arrayValue?.first?["resource"]?["id"]?.stringValue {
            _ = try await agent.get("/fhir/Patient/\(id)")
            if day.rng.chance(0.3) { _ = try await agent.get("/fhir/Consent?patient=\(id)") }
            day.stats.done("account help calls")
            // A caller who cannot verify their identity and needs to know where an urgent parcel is: break the glass.
            if breaks < 3, day.rng.chance(0.12) {
                let reason: JSON = .object(["resourceType": "Parameters", "parameter": .array([.object([
                    "name": "reason", "valueString": "Caller cannot pass identity check; urgent delivery query escalated by the pharmacist on duty",
                ])])])
                let r = try await agent.send(.POST, "/fhir/Patient/\(id)/$break-glass", json: reason, expect: [201])
                if r.status == 201 {
                    breaks += 1
                    agent.purpose = "ETREAT"
                    _ = try await agent.get("/fhir/Patient/\(id)")
                    agent.purpose = nil
                    day.stats.done("break-glass")
                }
            }
        }
        next = next.addingTimeInterval(day.rng.seconds(600, 1500))
    }
}

/// A patient's (or caregiver's) portal visit: home, maybe a refill, messages, the access log, sign out.
final class PatientSession: SimPerson, @unchecked Sendable {
    let credential: DemoCredential
    let caring: String?
    var stage = 0

    init(agent: SimAgent, next: Date, credential: DemoCredential, caring: String? = nil) {
        self.credential = credential
        self.caring = caring
        super.init(agent: agent, next: next)
    }

    override func step(_ day: WorkdaySimulation) async throws {
        defer { next = next.addingTimeInterval(day.rng.seconds(20, 120)) }
        switch stage {
        case 0:
            guard try await agent.signIn(area: "portal", username: credential.username!, password: credential.password!, totp: nil) else {
                done = true
                return
            }
            if let caring { _ = try await agent.submit("/portal/caregiving/\(caring)", [:]) }
            day.stats.done(caring == nil ? "patient visits" : "caregiver visits")
        case 1:
            let home = try await agent.get("/portal")
            if day.rng.chance(0.45), let rx = links(home.body, /action="\/portal\/prescriptions\/([^"\/]+)\/refill"/).first {
                let (ok, _) = try await agent.submit("/portal/prescriptions/\(rx)/refill", [:], refusalIsNormal: true)
                day.stats.done(ok ? "refills requested" : "refills refused (too early or none left)")
            }
        case 2:
            let list = try await agent.get("/portal/messages")
            if let thread = links(list.body, /href="\/portal\/messages\/([^"?]+)"/).first, day.rng.chance(0.5) {
                _ = try await agent.get("/portal/messages/\(thread)")
            }
            if day.rng.chance(0.3) {
                if try await agent.submit("/portal/messages", ["text": "Hello, could you tell me when my next refill will ship? Thank you."]).ok {
                    day.stats.done("patient messages")
                }
            }
        case 3:
            // Acting for someone else, the access log is not offered (it is the patient's own).
            if caring == nil, day.rng.chance(0.2) { _ = try await agent.get("/portal/access-log") }
        default:
            try await agent.send(.POST, "/portal/logout", form: [:], expect: [303])
            done = true
        }
        stage += 1
    }
}

/// The telehealth partner: the day's prescriptions for its patients, and a look at how they are doing.
final class Partner: SimPerson, @unchecked Sendable {
    let credential: DemoCredential

    init(agent: SimAgent, next: Date, credential: DemoCredential) {
        self.credential = credential
        super.init(agent: agent, next: next)
    }

    override func step(_ day: WorkdaySimulation) async throws {
        if agent.token == nil {
            let r = try await agent.send(
                .POST, "/auth/token", form: ["grant_type": "client_credentials"], basic: "\(credential.client_id!):\(credential.client_secret!)", expect: [200])
            agent.token = r.json?["access_token"]?.stringValue
            guard agent.token != nil else {
                done = true
                return
            }
        }
        let partnerPatients = day.sim.patients / 10
        let i = day.sim.patients - partnerPatients + day.rng.int(1...max(1, partnerPatients))
        let rx: JSON = .object([
            "resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "subject": .object(["reference": .string("Patient/\(DemoPharmacy.patientID(i))")]),
            "medicationReference": .object(["reference": .string("Medication/med-\(day.rng.int(1...16))")]),
            "requester": .object(["identifier": .object(["system": .string(NPI.system), "value": "1234567893"]), "display": "Dr. Remote"]),
            "authoredOn": .string(String(Instant.string(day.sim.clock.now()).prefix(10))),
            "dosageInstruction": .array([.object(["text": "Take 1 tablet by mouth daily"])]),
            "dispenseRequest": .object([
                "numberOfRepeatsAllowed": .int(2), "quantity": .object(["value": .int(30), "unit": "tablet"]),
                "expectedSupplyDuration": .object(["value": .int(30), "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"]),
            ]),
        ])
        let created = try await agent.send(.POST, "/fhir/MedicationRequest", json: rx, expect: [201])
        if let id = created.json?["id"]?.stringValue {
            day.partnerPrescriptions.append(id)
            day.stats.done("partner prescriptions")
        }
        // And checks on two earlier ones.
        for id in day.partnerPrescriptions.suffix(3).prefix(2) { _ = try await agent.get("/fhir/MedicationRequest/\(id)") }
        next = next.addingTimeInterval(day.rng.seconds(600, 1200))
    }
}

// MARK: - Abuse replays

/// The attacks detection must contain, each by a fresh actor against the same pharmacy.
struct AbuseReplays {
    let sim: SimPharmacy

    struct Result {
        var name: String
        var patients: Int
        var contained: Bool
        var rule: String
        var requests: Int
        var line: String {
            "\(name): \(contained ? "contained" : "NOT contained") after \(patients) \(patients == 1 ? "patient's" : "patients'") data left, \(requests) request\(requests == 1 ? "" : "s")"
                + (contained ? "; cut by \(rule), account suspended" : "")
        }
    }

    func run() async throws -> [Result] {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.connectionPool = .init(idleTimeout: .seconds(60))
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        defer { _ = http.shutdown() }
        let stats = SimStats()
        var results: [Result] = []
        func tick() { sim.clock.set(sim.clock.now().addingTimeInterval(2)) }

        // 1. A stolen technician credential pages through patients, then fills.
        let tech = sim.staff.first { $0.role == "technician" }!
        let thief = SimAgent(name: tech.username, role: "technician", http: http, port: sim.port, stats: stats)
        _ = try await thief.apiLogin(username: tech.username, password: tech.password, totp: tech.totp)
        var n = 0
        pages: for path in ["/fhir/Patient", "/fhir/MedicationDispense"] {
            for offset in stride(from: 0, to: 2000, by: 20) {
                tick()
                n += 1
                if try await thief.get("\(path)?_count=20&_offset=\(offset)", expect: [200, 401]).status != 200 { break pages }
            }
        }
        results.append(try await result("stolen technician paging", user: tech.username, requests: n))

        // 2. Support breaks the glass on patient after patient.
        let support = sim.staff.first { $0.role == "support" }!
        let spree = SimAgent(name: support.username, role: "support", http: http, port: sim.port, stats: stats)
        _ = try await spree.apiLogin(username: support.username, password: support.password, totp: support.totp)
        n = 0
        let reason: JSON = .object(["resourceType": "Parameters", "parameter": .array([.object(["name": "reason", "valueString": "Caller asked about a delivery and could not verify"])])])
        for i in 1...200 {
            tick()
            n += 2
            spree.purpose = nil
            let r = try await spree.send(.POST, "/fhir/Patient/\(DemoPharmacy.patientID(i))/$break-glass", json: reason, expect: [201, 401])
            if r.status != 201 { break }
            spree.purpose = "ETREAT"
            if try await spree.get("/fhir/Patient/\(DemoPharmacy.patientID(i))", expect: [200, 401]).status != 200 { break }
        }
        results.append(try await result("support break-glass spree", user: support.username, requests: n))

        // 3. The partner sweeps every patient, prescription and fill it may see.
        let credential = sim.credentials.first { $0.client_id == DemoPharmacy.partnerClientID }!
        let partner = SimAgent(name: DemoPharmacy.partnerClientID, role: "partner", http: http, port: sim.port, stats: stats)
        let token = try await partner.send(
            .POST, "/auth/token", form: ["grant_type": "client_credentials"], basic: "\(credential.client_id!):\(credential.client_secret!)", expect: [200])
        partner.token = token.json?["access_token"]?.stringValue
        n = 0
        sweep: for path in ["/fhir/Patient", "/fhir/MedicationRequest", "/fhir/MedicationDispense"] {
            for offset in stride(from: 0, to: 2000, by: 20) {
                tick()
                n += 1
                let r = try await partner.get("\(path)?_count=20&_offset=\(offset)", expect: [200, 401])
                if r.status != 200 { break sweep }
                if (r.json?["entry"]?.arrayValue ?? []).isEmpty { break }
            }
        }
        results.append(try await result("partner sweeping its patients", user: DemoPharmacy.partnerClientID, requests: n))

        // 4. A patient's token walks other patients' ids.
        let holder = sim.credentials.first { $0.username == "patient003" }!
        let walker = SimAgent(name: "patient003", role: "patient", http: http, port: sim.port, stats: stats)
        _ = try await walker.apiLogin(username: holder.username!, password: holder.password!, totp: nil)
        n = 0
        for i in 4...300 {
            tick()
            n += 1
            let r = try await walker.get("/fhir/Patient/\(DemoPharmacy.patientID(i))", expect: [403, 404, 401])
            if r.status == 401 { break }
            _ = try await walker.get("/fhir/MedicationRequest?patient=\(DemoPharmacy.patientID(i))", expect: [200, 401, 403, 404])
        }
        results.append(try await result("patient token walking ids", user: "patient003", requests: n))
        return results
    }

    /// How many patients' data left for the actor (successful records, other than its own), whether it is suspended
    /// and by which rule.
    func result(_ name: String, user: String, requests: Int) async throws -> Result {
        let e = try await sim.pharmacy.detection.exposure(.operatorCommand(reason: "saferx simulate abuse"), actor: user)
        return Result(name: name, patients: e.patients, contained: e.contained, rule: e.rules.joined(separator: ", "), requests: requests)
    }
}
