#if SAFERX_BENCHMARKS
import ArgumentParser
import Foundation
import SafeRxAudit
import SafeRxBreach
import SafeRxModel
import SafeRxPharmacy
@_spi(Benchmark) import SafeRxStore
import SafeRxStoreCore
import SafeRxVault

extension Bench {
    /// Breach scope, obligations and the mail-merge file for a Postmeds-sized incident in a store with a large audit history.
    struct IncidentScale: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "incident",
            abstract: "Scope + obligations + mail-merge letters file for an incident touching --affected patients in an audit history of --patients.",
            discussion: """
                Builds a throw-away store (not timed): --affected encrypted Patient records, an audit history of one staff read for each of \
                --patients patients, and a stolen partner credential's searches (100 patients each) over the affected ones. Then times, end to end, \
                what `saferx incident report` and `documents --vendor` do: verify the audit chain (the incident's window between its signed \
                checkpoints), compute the exact scope, residence and obligations, build the complete mail-merge CSV, audit its disclosure naming \
                every patient and seal it to a print vendor (letters themselves are produced per patient on demand above 10,000). --keep and \
                --reuse time again on the same store without building it. Needs disk: about 700 bytes per audit record. Build with -c release.
                """)
        @Option(name: .customLong("data"), help: "Directory for the throw-away store (default: the system's temporary directory).") var data: String?
        @Option(help: "Patients whose reads make up the audit history.") var patients = 10_000_000
        @Option(help: "Patients the incident touches (their records are seeded).") var affected = 2_300_000
        @Flag(help: "Keep the store afterwards (prints its path).") var keep = false
        @Option(help: "Time again on a store kept by an earlier run with the same --patients and --affected (skips the setup; implies --keep).")
        var reuse: String?

        func run() async throws {
            guard affected <= patients, affected > 0 else { throw ValidationError("--affected must be between 1 and --patients") }
            let bench: BenchStore
            let tenant = DemoPharmacy.tenant
            func clock(_ t0: ContinuousClock.Instant) -> Double {
                let d = ContinuousClock.now - t0
                return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
            }
            let base = Date(timeIntervalSince1970: 1_796_112_000)  // 2026-12-01
            let n = patients
            let intrusionStart = base.addingTimeInterval(Double(n) * 0.005 + 60)
            let pages = (affected + 99) / 100
            let shape = "patients=\(patients) affected=\(affected)\n"
            if let reuse {
                bench = try BenchStore(existing: URL(fileURLWithPath: reuse, isDirectory: true))
                let marker = bench.directory.appendingPathComponent("bench-incident")
                guard (try? String(contentsOf: marker, encoding: .utf8)) == shape else {
                    throw ValidationError("\(reuse) was not kept by a run with --patients \(patients) --affected \(affected)")
                }
                say("reusing \(bench.directory.path) (setup skipped)")
            } else {
                let parent = data.map { URL(fileURLWithPath: $0, isDirectory: true) } ?? FileManager.default.temporaryDirectory
                bench = try BenchStore(parent: parent)
            }
            let keepStore = keep || reuse != nil
            defer { if !keepStore { bench.remove() } else { say("store kept: \(bench.directory.path) (key \(bench.keyFile.path))") } }
            let store = bench.store
            if reuse == nil {
                let auth = await AuthService(store: store, passwordCost: 4)
                _ = try await DemoPharmacy(patientCount: 10, patientAccounts: 1, partnerPatients: 2).seed(into: store, auth: auth)
                var t = ContinuousClock.now
                try await store.benchSeedPatients(tenant: tenant, range: 0..<affected)
                say(String(format: "setup: %d encrypted patient records in %.1f s", affected, clock(t)))
                t = ContinuousClock.now
                try await store.benchAppendAudit(count: n, time: { base.addingTimeInterval(Double($0) * 0.005) }) { i in
                    AuditEntry(
                        actor: .init(id: "staff-\(i % 500)", role: "pharmacist", tenant: tenant), action: "read", resourceType: "Patient",
                        resourceID: String(format: "pat-%08d", i), patients: [String(format: "pat-%08d", i)], outcome: "success", result: .ok,
                        purpose: "TREAT", sourceIP: "10.0.\(i % 250).\(i % 200)", userAgent: "SafeRx console", requestID: "r\(i)")
                }
                let aff = affected
                try await store.benchAppendAudit(count: pages, time: { intrusionStart.addingTimeInterval(Double($0) * 0.05) }) { p in
                    let ids = (p * 100..<min(p * 100 + 100, aff)).map { String(format: "pat-%08d", $0) }
                    return AuditEntry(
                        actor: .init(id: DemoPharmacy.partnerClientID, role: "partner", tenant: tenant), action: "search", resourceType: "Patient",
                        patients: ids, outcome: "success", result: .ok, purpose: "TREAT", sourceIP: "203.0.113.7", userAgent: "python-requests",
                        requestID: "x\(p)", detail: "params: _count,_offset; results: \(ids.count)")
                }
                await store.auditWriter.checkpoint()
                say(String(format: "setup: %d audit records (%d patients read by staff, %d intruder searches) in %.1f s", n + pages, n, pages, clock(t)))
                try shape.write(to: bench.directory.appendingPathComponent("bench-incident"), atomically: true, encoding: .utf8)
            }
            let key = Curve25519KeyAgreementPair()
            let run = String(UUID().uuidString.prefix(8)).lowercased()
            try await store.addVendor(.operatorCommand(reason: "bench incident", write: true), id: "mailhouse-\(run)", tenant: tenant, name: "Mail House", publicKey: key.publicKey)

            // Timed from here: what saferx incident report + documents --vendor do.
            let start = ContinuousClock.now
            let id = "inc-bench-\(run)"
            try await store.declareIncident(.operatorCommand(reason: "saferx bench incident", tenant: tenant), Incident(
                id: id, tenant: tenant, discovered: "2026-12-03", declared: AuditLog.timestamp(Date()), declaredBy: "bench", actors: [DemoPharmacy.partnerClientID],
                from: AuditLog.timestamp(intrusionStart.addingTimeInterval(-1)), to: AuditLog.timestamp(intrusionStart.addingTimeInterval(Double(pages) * 0.05 + 1)),
                files: [], description: "A partner's API credential was stolen.", whatWeAreDoing: "We revoked it."))
            var t = ContinuousClock.now
            let scoped = try await BreachResponse.scope(store, id)
            let scopeSeconds = clock(t)
            t = ContinuousClock.now
            let package = try await BreachResponse.package(store, id, scope: scoped)
            let obligationSeconds = clock(t)
            t = ContinuousClock.now
            let merge = try await BreachResponse.mailMerge(store, package, patients: package.notifiable.map(\.patient))
            let built = clock(t)
            let letters = merge.letters
            // As `incident documents` does: the file is sealed on the other core while the disclosure to the print vendor
            // is audited, naming every patient.
            let csv = merge.csv, vendorKey = key.publicKey, vendor = "mailhouse-\(run)"
            let sealing = Task.detached { try SealedFile.seal(Data(csv), to: vendorKey, recipientID: vendor) }
            try await store.recordAdminEvent(
                action: "incident-documents", tenant: tenant, patients: merge.disclosed, detail: "incident \(id): mail merge sealed to \(vendor)")
            let sealed = try await sealing.value
            let lettersSeconds = clock(t)
            let total = clock(start)
            say("")
            say(String(format: "scope: %d affected of a %d-record log (verified %@: %@) in %.1f s", scoped.1.affected.count, n + pages, scoped.1.verified,
                       scoped.1.certified ? "OK" : "FAILED", scopeSeconds))
            say(String(format: "residence + assessment + obligations: %d obligations, %d states in %.1f s", package.obligations.count, package.residents.count, obligationSeconds))
            say(String(format: "mail-merge CSV: %d letters, %.0f MB sealed to the print vendor in %.1f s (built in %.1f s; audited while sealing, %.1f s)",
                       letters, Double(sealed.count) / 1e6, lettersSeconds, built, lettersSeconds - built))
            say(String(format: "total: %.1f s", total))
        }
    }
}

/// An X25519 pair for the bench's print vendor.
struct Curve25519KeyAgreementPair {
    let publicKey: Data
    init() {
        let (_, pub) = SealedFile.newKeyPair()
        publicKey = pub
    }
}
#endif
