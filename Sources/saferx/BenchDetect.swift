#if SAFERX_BENCHMARKS
import ArgumentParser
import Foundation
import Hummingbird
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import SafeRxAudit
import SafeRxDetect
import SafeRxModel
import SafeRxPharmacy
import SafeRxServer
import SafeRxStore
import SafeRxStoreCore

extension Bench {
    /// The detector's throughput over events, over a stored audit log, and its append → alert lag under read load.
    struct Detect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "detect",
            abstract: "Detector throughput (events/s on one core) and append → alert lag under the protected-read load.",
            discussion: """
                1. engine: the bundled rules over synthetic events in memory (a day's mix of staff, patients and partners), \
                one thread. 2. replay: the same rules over this run's stored audit log, reading and decoding included. \
                3. lag: the real server with detection on under wrk's protected-read load (as bench reads), while \
                throw-away technician accounts open a honeytoken every --lag-interval ms; each alert records the time \
                from the append of its record to the alert. wrk from Debian's package; build with -c release.
                """)
        @Option(name: .customLong("data"), help: "Directory for the throw-away store (default: the system's temporary directory).")
        var data: String?
        @Option(help: "Synthetic events for the engine run.") var events = 2_000_000
        @Option(help: "Seconds of wrk load for the lag run (0 skips it).") var duration = 10
        @Option(help: "Concurrent connections.") var connections = 32
        @Option(help: "Milliseconds between honeytoken reads during the lag run.") var lagInterval = 100
        @Option(help: "Path to wrk.") var wrk = "/usr/bin/wrk"

        func run() async throws {
            let rules = try DetectionRules.bundled()
            // 1. The engine alone.
            let synthetic = Self.syntheticDay(count: events)
            let detector = Detector(rules: rules)
            let context = NoCanaries()
            var findings = 0
            var byRule: [String: Int] = [:]
            let t0 = ContinuousClock.now
            for e in synthetic {
                let f = detector.consume(e, context: context).findings
                findings += f.count
                for x in f where !x.isUpdate {
                    if byRule[x.rule] == nil { say("engine: first \(x.rule): \(x.summary)") }
                    byRule[x.rule, default: 0] += 1
                }
            }
            let engine = ContinuousClock.now - t0
            let engineSeconds = Double(engine.components.seconds) + Double(engine.components.attoseconds) / 1e18
            say(String(format: "engine: %d events in %.3f s = %.0f events/s on one core (%d findings)", synthetic.count, engineSeconds,
                       Double(synthetic.count) / engineSeconds, findings))
            say("engine: new alerts by rule: \(byRule.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")

            // 2 and 3 need a store and a server.
            let parent = data.map { URL(fileURLWithPath: $0, isDirectory: true) } ?? FileManager.default.temporaryDirectory
            let bench = try BenchStore(parent: parent)
            defer { bench.remove() }
            let store = bench.store
            let auth = await AuthService(store: store, passwordCost: 4)
            _ = try await DemoPharmacy(patientCount: 200, patientAccounts: 1, partnerPatients: 20, honeytokens: 1).seed(into: store, auth: auth)
            let canary = try await store.honeytokens(tenant: DemoPharmacy.tenant)[0]
            guard let patient = try await store.user(named: "patient001") else { throw ValidationError("seed failed") }
            let token = try await auth.issue(subject: patient.id, role: patient.role, tenant: patient.tenant, patient: patient.patientID, kind: "user", scope: nil).accessToken
            var intruders: [String] = []
            if duration > 0 {
                for i in 0..<(duration * 1000 / max(lagInterval, 1) + 10) {
                    let id = "bench-tech-\(i)"
                    try await store.addUser(UserAccount(
                        id: id, username: id, passwordHash: auth.hashPassword(UUID().uuidString), role: "technician", tenant: DemoPharmacy.tenant,
                        patientID: nil, disabled: false, failedAttempts: 0, lockedUntil: 0))
                    intruders.append(try await auth.issue(subject: id, role: "technician", tenant: DemoPharmacy.tenant, patient: nil, kind: "user", scope: nil).accessToken)
                }
            }
            let (ports, c) = AsyncStream<Int>.makeStream()
            let app = try await SafeRxServer.application(
                pharmacy: Pharmacy(store: store, auth: auth),
                configuration: .init(
                    host: "127.0.0.1", port: 0, onListening: { c.yield($0) }, detection: DetectionSettings(rules: rules), sourceLimit: .unlimited,
                    accountLimit: .unlimited),
                logger: Logger(label: "saferx.bench"))
            let server = Task { try await app.runService(gracefulShutdownSignals: []) }
            var it = ports.makeAsyncIterator()
            let port = await it.next()!
            if duration > 0 {
                try Wrk.prepare(wrk)
                let url = "http://127.0.0.1:\(port)/fhir/Patient/pat-0001"
                _ = try Wrk(path: wrk, threads: 2, connections: connections).run(url: url, token: token, seconds: 2)
                let interval = lagInterval
                let probes = Task {
                    var n = 0
                    for t in intruders {
                        if Task.isCancelled { break }
                        var r = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/fhir/Patient/\(canary)")!)
                        r.setValue("Bearer \(t)", forHTTPHeaderField: "Authorization")
                        _ = try? await URLSession.shared.data(for: r)
                        n += 1
                        try? await Task.sleep(for: .milliseconds(interval))
                    }
                    return n
                }
                let result = try Wrk(path: wrk, threads: 2, connections: connections).run(url: url, token: token, seconds: duration)
                probes.cancel()
                _ = await probes.value
                let (_, lags) = try await store.alertStatistics()
                func q(_ p: Double) -> Double { lags.isEmpty ? .nan : lags[min(lags.count - 1, Int((Double(lags.count - 1) * p).rounded()))] }
                say(Wrk.row("protected reads with detection on", result))
                say(String(format: "lag: %d alerts during the load; append → alert p50 %.3f ms, p99 %.3f ms, max %.3f ms", lags.count, q(0.5), q(0.99), lags.last ?? .nan))
            }
            server.cancel()
            _ = await server.result
            // 2. Replay of everything this run stored.
            let replay = try await store.replayDetection(rules: rules, from: "1970-01-01")
            say(String(format: "replay: %d stored audit records in %.3f s = %.0f records/s read+decode+detect; detector alone %.0f events/s",
                       replay.records, replay.seconds, Double(replay.records) / max(replay.seconds, 1e-9), Double(replay.records) / max(replay.detectorSeconds, 1e-9)))
        }

        struct NoCanaries: DetectionContext {
            func isHoneytoken(_ patient: String) -> Bool { false }
            func hasAuthorization(tenant: String, client: String, patient: String, purpose: String, at time: Int64) -> Bool { true }
        }

        /// A synthetic audit stream of one day of a large chain: 1,000 staff, 20,000 patients' own sessions and 3
        /// partners over 100,000 patients, plus failed sign-ins; a tenth of staff requests are searches naming up to 5
        /// patients (targeted lookups), the rest name one.
        static func syntheticDay(count: Int) -> [DetectorEvent] {
            var rng = SystemRandomNumberGenerator()
            let patients = (0..<100_000).map { String(format: "pat-%06d", $0) }
            let staffRoles = ["pharmacist", "technician", "support"]
            let types = ["Patient", "MedicationRequest", "MedicationDispense", "Communication"]
            let start: Int64 = 1_796_112_000_000
            var out: [DetectorEvent] = []
            out.reserveCapacity(count)
            for i in 0..<count {
                let t = start + Int64(i) * 86_400_000 / Int64(max(count, 1))
                let k = Int.random(in: 0..<100, using: &rng)
                var e: DetectorEvent
                if k < 60 {
                    let s = Int.random(in: 0..<1000, using: &rng)
                    let n = Int.random(in: 0..<10, using: &rng) == 0 ? Int.random(in: 1...5, using: &rng) : 1
                    e = DetectorEvent(
                        seq: Int64(i + 1), time: t, tenant: "t", actor: "staff-\(s)", role: staffRoles[s % 3], action: n > 1 ? "search" : "read",
                        resourceType: types[Int.random(in: 0..<4, using: &rng)], outcome: "success", result: .ok, purpose: "TREAT",
                        patients: (0..<n).map { _ in patients[Int.random(in: 0..<patients.count, using: &rng)] }, source: "src-\(s)", agent: "ua-\(s % 5)")
                } else if k < 90 {
                    let p = Int.random(in: 0..<20_000, using: &rng)
                    e = DetectorEvent(
                        seq: Int64(i + 1), time: t, tenant: "t", actor: "user-\(p)", role: "patient", actorPatient: patients[p], action: "search",
                        resourceType: "MedicationRequest", outcome: "success", result: .ok, purpose: "PATRQT", patients: [patients[p]], source: "p-\(p)",
                        agent: "ua-p")
                } else if k < 98 {
                    let c = Int.random(in: 0..<3, using: &rng)
                    e = DetectorEvent(
                        seq: Int64(i + 1), time: t, tenant: "t", actor: "partner-\(c)", role: "partner", action: "create", resourceType: "MedicationRequest",
                        outcome: "success", result: .created, purpose: "TREAT", patients: [patients[90_000 + Int.random(in: 0..<150, using: &rng)]], source: "c-\(c)")
                } else {
                    e = DetectorEvent(
                        seq: Int64(i + 1), time: t, tenant: "t", actor: "unknown", role: "anonymous", action: "login", outcome: "failure", result: .unauthenticated,
                        purpose: "-", source: "anon-\(Int.random(in: 0..<5000, using: &rng))")
                }
                out.append(e)
            }
            return out
        }
    }
}
#endif
