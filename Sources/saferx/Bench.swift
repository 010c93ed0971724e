#if SAFERX_BENCHMARKS
import ArgumentParser
import Foundation
import Hummingbird
import Logging
import NIOCore
import SafeRxAudit
import SafeRxModel
import SafeRxPharmacy
import SafeRxServer
import SafeRxStoreCore
@_spi(Benchmark) import SafeRxStore
import SafeRxVault

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Benchmarks (results go in BENCHMARKS.md).", subcommands: [Reads.self, Encryption.self, Reencrypt.self, Detect.self, IncidentScale.self])

    /// Protected FHIR reads per second over HTTP, against the same endpoint with scope and audit switched off.
    struct Reads: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Protected reads/s vs. an unprotected baseline of the same endpoint, measured with wrk.",
            discussion: """
                Seeds a throw-away demo store, starts the real SafeRx server and a baseline server in this process on \
                loopback ports, and drives both with wrk (apt-get install wrk). The baseline serves GET \
                /fhir/Patient/:id with the same decrypt and JSON work but no token check, no access scope and no \
                audit; it exists only inside this command. Build with -c release for meaningful numbers.
                """)
        @Option(name: .customLong("data"), help: "Directory in which to create the throw-away benchmark store (default: the system's temporary directory).")
        var data: String?
        @Option(help: "Seconds per run.") var duration = 10
        @Option(help: "Concurrent connections.") var connections = 32
        @Option(help: "wrk threads.") var threads = 2
        @Option(help: "Path to wrk.") var wrk = "/usr/bin/wrk"
        @Flag(help: "Run only the protected endpoint (for profiling).") var protectedOnly = false

        func run() async throws {
            try Wrk.prepare(wrk)
            let parent = data.map { URL(fileURLWithPath: $0, isDirectory: true) } ?? FileManager.default.temporaryDirectory
            let bench = try BenchStore(parent: parent)
            defer { bench.remove() }
            let store = bench.store
            let auth = await AuthService(store: store, passwordCost: 4)
            _ = try await DemoPharmacy(patientCount: 200, patientAccounts: 1, partnerPatients: 20).seed(into: store, auth: auth)
            guard let user = try await store.user(named: "patient001") else { throw ValidationError("seed failed") }
            let token = try await auth.issue(
                subject: user.id, role: user.role, tenant: user.tenant, patient: user.patientID, kind: "user", scope: nil
            ).accessToken

            var logger = Logger(label: "saferx.bench")
            logger.logLevel = ProcessInfo.processInfo.environment["SAFERX_BENCH_LOG"] == "info" ? .info : .warning
            let (protectedPorts, c1) = AsyncStream<Int>.makeStream()
            let (baselinePorts, c2) = AsyncStream<Int>.makeStream()
            let protected = try await SafeRxServer.application(
                pharmacy: Pharmacy(store: store, auth: auth), configuration: .init(host: "127.0.0.1", port: 0, onListening: { c1.yield($0) }, sourceLimit: .unlimited, accountLimit: .unlimited),
                logger: logger)
            let baseline = Application(
                router: Self.baselineRouter(store: store),
                configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { c2.yield($0.localAddress?.port ?? 0) }, logger: logger)
            let servers = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await protected.runService(gracefulShutdownSignals: []) }
                    group.addTask { try await baseline.runService(gracefulShutdownSignals: []) }
                    try await group.waitForAll()
                }
            }
            var i1 = protectedPorts.makeAsyncIterator()
            var i2 = baselinePorts.makeAsyncIterator()
            let protectedPort = await i1.next()!
            let baselinePort = await i2.next()!

            let auditBefore = try await store.auditRecords().count
            say("Warming up...")
            _ = try runWrk(url: "http://127.0.0.1:\(protectedPort)/fhir/Patient/pat-0001", token: token, seconds: 2)
            if !protectedOnly { _ = try runWrk(url: "http://127.0.0.1:\(baselinePort)/fhir/Patient/pat-0001", token: nil, seconds: 2) }
            let auditWarm = try await store.auditRecords().count
            let p = try runWrk(url: "http://127.0.0.1:\(protectedPort)/fhir/Patient/pat-0001", token: token, seconds: duration)
            let auditAfter = try await store.auditRecords().count
            let b = protectedOnly
                ? WrkResult(rps: 0, p50: "-", p99: "-", requests: 0, errors: 0)
                : try runWrk(url: "http://127.0.0.1:\(baselinePort)/fhir/Patient/pat-0001", token: nil, seconds: duration)
            servers.cancel()
            _ = await servers.result
            let verification = try await store.verifyAudit()

            say("")
            say("GET /fhir/Patient/pat-0001 as patient001, \(connections) connections, \(threads) wrk threads, \(duration) s each")
            say(Wrk.row("run", ["requests/s", "p50", "p99", "non-2xx"]))
            say(Wrk.row("protected (token+scope+audit)", p))
            say(Wrk.row("baseline (no token/scope/audit)", b))
            say(String(format: "protected / baseline = %.2f", p.rps / max(b.rps, 1)))
            say("audit records written during the protected run: \(auditAfter - auditWarm) for \(p.requests) requests"
                + " (\(auditWarm - auditBefore) during warm-up); audit verify: \(verification.ok ? "OK" : "FAILED")")
        }

        func runWrk(url: String, token: String?, seconds: Int) throws -> WrkResult {
            try Wrk(path: wrk, threads: threads, connections: connections).run(url: url, token: token, seconds: seconds)
        }

        /// The same endpoint with no token check, no access scope and no audit. Bench-only.
        static func baselineRouter(store: PharmacyStore) -> Router<BasicRequestContext> {
            let router = Router()
            router.get("/fhir/Patient/:id") { _, ctx -> Response in
                let id = ctx.parameters.get("id") ?? ""
                guard let json = try store.benchUnprotectedRead(.patient, id: id) else { return Response(status: .notFound) }
                var h = HTTPFields()
                h[.contentType] = "application/fhir+json; charset=utf-8"
                return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: json.encoded())))
            }
            return router
        }
    }
}

struct WrkResult {
    var rps: Double
    var p50: String
    var p99: String
    var requests: Int
    var errors: Int
}

/// Drives a URL with wrk and parses its summary.
struct Wrk {
    var path: String
    var threads: Int
    var connections: Int

    /// Checks that wrk is installed and quiets logging below warnings (one log line per request would be measured).
    static func prepare(_ path: String) throws {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ValidationError("wrk not found at \(path); install it with apt-get install wrk")
        }
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = .warning
            return h
        }
    }

    /// One row of a results table: a left-aligned name, then right-aligned figures.
    static func row(_ name: String, _ cells: [String]) -> String {
        func pad(_ s: String, _ w: Int, left: Bool) -> String {
            s.count >= w ? s : (left ? s + String(repeating: " ", count: w - s.count) : String(repeating: " ", count: w - s.count) + s)
        }
        return pad(name, 34, left: true) + cells.map { pad($0, 12, left: false) }.joined()
    }

    static func row(_ name: String, _ r: WrkResult) -> String {
        row(name, [String(format: "%.0f", r.rps), r.p50, r.p99, String(r.errors)])
    }

    func run(url: String, token: String?, seconds: Int, script: URL? = nil) throws -> WrkResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        var args = ["-t\(threads)", "-c\(connections)", "-d\(seconds)s", "--latency"]
        if let token { args += ["-H", "Authorization: Bearer \(token)"] }
        if let script { args += ["-s", script.path] }
        process.arguments = args + [url]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let out = String(decoding: data, as: UTF8.self)
        func field(_ prefix: String) -> String? {
            out.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix(prefix) }
                .map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let rps = field("Requests/sec:").flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
        let p50 = field("50%").map { String($0.split(separator: " ").last ?? "") } ?? "?"
        let p99 = field("99%").map { String($0.split(separator: " ").last ?? "") } ?? "?"
        let requests = out.split(separator: "\n").first { $0.contains("requests in") }
            .flatMap { Int($0.trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") } ?? 0
        let errors = field("Non-2xx or 3xx responses:").flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
        return WrkResult(rps: rps, p50: p50, p99: p99, requests: requests, errors: errors)
    }
}

/// A throw-away benchmark store beside (not inside) its own master key.
struct BenchStore {
    let directory: URL
    let keyFile: URL
    let store: PharmacyStore

    init(parent: URL, encryption: Bool = true) throws {
        let name = "saferx-bench-\(UUID().uuidString)"
        directory = parent.appendingPathComponent(name)
        keyFile = parent.appendingPathComponent(name + ".key")
        var options = PharmacyStore.Options()
        options.encryption = encryption
        store = try PharmacyStore.open(dataDirectory: directory, keyFile: keyFile, options: options)
    }

    /// Opens a store kept by an earlier run (`--keep`), its key file beside it.
    init(existing: URL) throws {
        directory = existing
        keyFile = URL(fileURLWithPath: existing.path + ".key")
        guard FileManager.default.fileExists(atPath: keyFile.path) else { throw ValidationError("no key file \(keyFile.path) beside the kept store") }
        store = try PharmacyStore.open(dataDirectory: directory, keyFile: keyFile, options: PharmacyStore.Options())
    }

    func remove() {
        try? FileManager.default.removeItem(at: directory)
        try? FileManager.default.removeItem(at: keyFile)
    }
}

extension Bench {
    /// Protected reads/s with envelope encryption on versus off, in one run.
    struct Encryption: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Protected reads/s with encryption on vs. off (ratio in one run), and the patient-key cache hit rate.",
            discussion: """
                Seeds two throw-away demo stores, one encrypted as always and one created without encryption (possible \
                only inside this command), serves both with the real SafeRx application, and drives each with wrk as \
                the demo pharmacist reading Patient/pat-0001 ... pat-0200 in turn (token check, scope, audit and \
                decryption on every request). Build with -c release for meaningful numbers.
                """)
        @Option(name: .customLong("data"), help: "Directory for the throw-away stores (default: the system's temporary directory).")
        var data: String?
        @Option(help: "Seconds per run.") var duration = 10
        @Option(help: "Concurrent connections.") var connections = 32
        @Option(help: "wrk threads.") var threads = 2
        @Option(help: "Path to wrk.") var wrk = "/usr/bin/wrk"
        @Option(help: "Demo patients per store.") var patients = 200

        func run() async throws {
            try Wrk.prepare(wrk)
            let parent = data.map { URL(fileURLWithPath: $0, isDirectory: true) } ?? FileManager.default.temporaryDirectory
            let on = try BenchStore(parent: parent, encryption: true)
            let off = try BenchStore(parent: parent, encryption: false)
            defer {
                on.remove()
                off.remove()
            }
            var ports: [Int] = []
            var tokens: [String] = []
            var apps: [Task<Void, any Error>] = []
            for bench in [on, off] {
                let auth = await AuthService(store: bench.store, passwordCost: 4)
                _ = try await DemoPharmacy(patientCount: patients, patientAccounts: 1, partnerPatients: 1).seed(into: bench.store, auth: auth)
                guard let user = try await bench.store.user(named: "pharmacist") else { throw ValidationError("seed failed") }
                tokens.append(try await auth.issue(subject: user.id, role: user.role, tenant: user.tenant, patient: nil, kind: "user", scope: nil).accessToken)
                let (stream, c) = AsyncStream<Int>.makeStream()
                let app = try await SafeRxServer.application(
                    pharmacy: Pharmacy(store: bench.store, auth: auth), configuration: .init(host: "127.0.0.1", port: 0, onListening: { c.yield($0) }, sourceLimit: .unlimited, accountLimit: .unlimited),
                    logger: Logger(label: "saferx.bench"))
                apps.append(Task { try await app.runService(gracefulShutdownSignals: []) })
                var it = stream.makeAsyncIterator()
                ports.append(await it.next()!)
            }
            let script = parent.appendingPathComponent("saferx-bench-\(UUID().uuidString).lua")
            defer { try? FileManager.default.removeItem(at: script) }
            try """
                local i = 0
                request = function()
                  i = (i % \(patients)) + 1
                  return wrk.format("GET", string.format("/fhir/Patient/pat-%04d", i))
                end
                """.write(to: script, atomically: true, encoding: .utf8)
            let w = Wrk(path: wrk, threads: threads, connections: connections)
            say("Warming up...")
            for (port, token) in zip(ports, tokens) {
                _ = try w.run(url: "http://127.0.0.1:\(port)/", token: token, seconds: 2, script: script)
            }
            let before = on.store.keys.stats
            let encrypted = try w.run(url: "http://127.0.0.1:\(ports[0])/", token: tokens[0], seconds: duration, script: script)
            let after = on.store.keys.stats
            let plain = try w.run(url: "http://127.0.0.1:\(ports[1])/", token: tokens[1], seconds: duration, script: script)
            for app in apps { app.cancel() }
            for app in apps { _ = await app.result }

            say("")
            say("GET /fhir/Patient/pat-0001..pat-\(String(format: "%04d", patients)) as pharmacist, \(connections) connections, \(threads) wrk threads, \(duration) s each")
            say(Wrk.row("run", ["requests/s", "p50", "p99", "non-2xx"]))
            say(Wrk.row("encryption on", encrypted))
            say(Wrk.row("encryption off", plain))
            say(String(format: "encryption on / off = %.2f", encrypted.rps / max(plain.rps, 1)))
            let hits = after.hits - before.hits, misses = after.misses - before.misses
            say(String(format: "patient data-key cache during the measured run: %d hits, %d misses, hit rate %.4f; %d keys cached; since start %.4f",
                       hits, misses, hits + misses == 0 ? 0 : Double(hits) / Double(hits + misses), after.cached, after.hitRate))
        }
    }

    /// Re-encryption throughput.
    struct Reencrypt: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-encryption throughput (resource versions/s) of `keys rotate --reencrypt` on a throw-away demo store.")
        @Option(name: .customLong("data"), help: "Directory for the throw-away store (default: the system's temporary directory).")
        var data: String?
        @Option(help: "Demo patients to seed.") var patients = 2000
        @Option(help: "Resource versions per transaction.") var batch = 500

        func run() async throws {
            let parent = data.map { URL(fileURLWithPath: $0, isDirectory: true) } ?? FileManager.default.temporaryDirectory
            let bench = try BenchStore(parent: parent)
            defer { bench.remove() }
            let auth = await AuthService(store: bench.store, passwordCost: 4)
            say("Seeding \(patients) demo patients...")
            _ = try await DemoPharmacy(patientCount: patients, patientAccounts: 1, partnerPatients: 1).seed(into: bench.store, auth: auth)
            let r = try await bench.store.reencrypt(batchSize: batch)
            say(String(format: "re-encrypted %d resource versions (%d data keys) in %.2f s: %.0f resources/s (batch %d)",
                       r.resources, r.rotatedKeys, r.seconds, Double(r.resources) / max(r.seconds, 0.001), batch))
            let check = try await bench.store.verifyCiphertexts()
            say("afterwards: \(check.resources) ciphertexts open, \(check.failures.count) failures")
        }
    }
}
#endif
