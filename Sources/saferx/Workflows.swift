import ArgumentParser
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SafeRxModel
import SafeRxPharmacy
import SafeRxPolicy
import SafeRxStoreCore
import SafeRxVault
import Synchronization

/// `saferx webhooks register|list|replay|receive`: partner webhook endpoints and deliveries.
struct Webhooks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Partner webhooks: register an endpoint, list and replay deliveries, run a verifying receiver.",
        subcommands: [Register.self, List.self, Replay.self, Receive.self])

    struct Register: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register (or replace) a partner client's webhook URL and print its new signing secret once.",
            discussion: "Only registered URLs are ever called. https, or http to a loopback address for development.")
        @OptionGroup var data: DataOptions
        @Option(help: "Partner client id.") var client: String?
        @Flag(help: "Register the security endpoint instead: it receives signed alert.created events from the detector.") var security = false
        @Option(help: "With --security: the pharmacy (tenant) whose key seals its secret.") var tenant = "demo-pharmacy"
        @Option(help: "Endpoint URL.") var url: String

        func validate() throws {
            guard (client != nil) != security else { throw ValidationError("Give --client CLIENT or --security") }
        }

        func run() async throws {
            let admin = try await data.openPharmacy().admin
            let client = security ? Administration.securityWebhookClient : self.client!
            do {
                let (secret, previous) = try await admin.registerWebhook(.operatorCommand(reason: "saferx webhooks register"), client: client, url: url, securityTenant: security ? tenant : nil)
                if let previous {
                    say("Replaced \(client)'s webhook \(previous) (a partner has one endpoint; the old secret no longer signs anything).")
                }
                say("Webhook for \(client): \(url)")
                say("Signing secret (shown once; give it to the partner): \(secret)")
            } catch {
                throw CLIError("\(error.diagnostics)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Webhook events and their delivery state, newest first.")
        @OptionGroup var data: DataOptions
        @Option(help: "Only this partner client.") var client: String?
        @Option(help: "Only this state: pending, delivered or dead.") var state: String?

        func run() async throws {
            let filter: WebhookEvent.State?
            if let state {
                guard let s = WebhookEvent.State(rawValue: state) else { throw ValidationError("--state '\(state.prefix(40))' is not pending, delivered or dead") }
                filter = s
            } else {
                filter = nil
            }
            let events = try await data.openPharmacy().admin.webhookEvents(.operatorCommand(reason: "saferx webhooks events"), client: client, state: filter)
            say("CREATED\tEVENT\tCLIENT\tTYPE\tSTATE\tATTEMPTS\tLAST")
            for e in events {
                say("\(Instant.string(e.created))\t\(e.id)\t\(e.clientID)\t\(e.type)\t\(e.state.rawValue)\t\(e.attempts)\t\(e.lastError ?? e.lastStatus.map(String.init) ?? "-")")
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Queue an event (delivered or dead-lettered) for delivery again.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Event id (evt_...).") var event: String

        func run() async throws {
            try await data.openPharmacy().admin.replayWebhook(.operatorCommand(reason: "saferx webhooks replay"), event: event)
            say("Queued \(event); a running server delivers it within a second.")
        }
    }

    /// A receiver that verifies signatures exactly as the recipe in docs/pharmacy.md says, for trying webhooks locally.
    struct Receive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a local webhook receiver that verifies each signature and prints each event.",
            discussion: "Answers 200 for a valid signature, 401 otherwise; --fail N answers 503 to the first N deliveries (to watch retries).")
        @Option(help: "Address to listen on.") var host = "127.0.0.1"
        @Option(help: "Port to listen on.") var port = 9000
        @Option(help: "The endpoint's signing secret (whsec_...). Visible to other users in the process list: prefer --secret-file or SAFERX_WEBHOOK_SECRET.")
        var secret: String?
        @Option(help: "A file holding the signing secret.") var secretFile: String?
        @Option(help: "Answer 503 to this many deliveries first.") var fail = 0

        func run() async throws {
            let router = Router()
            let failures = Mutex(fail)
            let seen = Mutex(Set<String>())
            let fromFile = try secretFile.map { f in
                do { return try String(contentsOfFile: f, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) } catch {
                    throw CLIError("Cannot read \(f): \(error.localizedDescription)")
                }
            }
            guard let secret = fromFile ?? secret ?? ProcessInfo.processInfo.environment["SAFERX_WEBHOOK_SECRET"], secret.hasPrefix("whsec_") else {
                throw ValidationError("Give the endpoint's signing secret (whsec_...) with --secret-file FILE, SAFERX_WEBHOOK_SECRET or --secret")
            }
            router.post("/**") { req, _ -> Response in
                var req = req
                let body = Data((try await req.collectBody(upTo: 1 << 20)).readableBytesView)
                let header = req.headers[HTTPField.Name(WebhookSignature.header)!] ?? ""
                if let problem = WebhookSignature.problem(header: header, body: body, secret: secret) {
                    say("REJECTED (\(problem))")
                    return Response(status: .unauthorized)
                }
                if failures.withLock({ n in defer { n = max(0, n - 1) }; return n > 0 }) {
                    say("answering 503 to \(req.headers[HTTPField.Name("SafeRx-Event-Id")!] ?? "?") (--fail)")
                    return Response(status: .serviceUnavailable)
                }
                let id = req.headers[HTTPField.Name("SafeRx-Event-Id")!] ?? ""
                let duplicate = seen.withLock { !$0.insert(id).inserted }
                say("\(duplicate ? "duplicate " : "")\(String(decoding: body, as: UTF8.self))")
                return Response(status: .ok)
            }
            var logger = Logger(label: "saferx.receiver")
            logger.logLevel = .warning
            let app = Application(
                router: router, configuration: .init(address: .hostname(host, port: port)),
                onServerRunning: { _ in say("Receiving webhooks on http://\(host):\(port)/ (signatures verified)") }, logger: logger)
            try await app.runService()
        }
    }
}

/// `saferx tracking import FILE`: carrier tracking updates (or a fulfillment vendor's returned tracking file).
struct Tracking: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Carrier tracking updates.", subcommands: [Import.self])

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply a CSV of tracking updates: carrier,tracking_number,status,time[,location] (header line first).",
            discussion: "Statuses: \(Shipment.statuses.sorted().joined(separator: ", ")). 'delivered' completes the fill. Audited with every patient touched.")
        @OptionGroup var data: DataOptions
        @Option(help: "Tenant (pharmacy).") var tenant = "demo-pharmacy"
        @Argument(help: "CSV file.") var file: String

        func run() async throws {
            let text: String
            do { text = try String(contentsOfFile: file, encoding: .utf8) } catch { throw CLIError("Cannot read \(file): \(error.localizedDescription)") }
            let updates = try Self.parse(text)
            let pharmacy = try await data.openPharmacy()
            let ctx = AccessContext.system(
                reason: "tracking import \(URL(fileURLWithPath: file).lastPathComponent)", tenant: tenant, write: true, agent: "saferx tracking import")
            do {
                let (applied, unknown, repeated) = try await pharmacy.fills.applyTracking(ctx, updates)
                say("Applied \(applied) of \(updates.count) tracking updates.")
                if repeated > 0 { say("Already recorded, skipped: \(repeated).") }
                if !unknown.isEmpty { say("Not found (no shipment with that carrier and tracking number): \(unknown.joined(separator: ", "))") }
            } catch {
                throw CLIError("\(error.diagnostics)")
            }
        }

        /// Reads the CSV; a bad line is named by its number in the file, with the value and what was expected.
        static func parse(_ text: String) throws -> [TrackingUpdate] {
            let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map(String.init).enumerated()
                .filter { !$0.element.trimmingCharacters(in: .whitespaces).isEmpty }
            guard let header = lines.first?.element.lowercased().replacingOccurrences(of: " ", with: ""),
                header.hasPrefix("carrier,tracking_number,status,time")
            else { throw CLIError("The first line must be the header carrier,tracking_number,status,time[,location]") }
            return try lines.dropFirst().map { (i, line) in
                let f = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                guard f.count == 4 || f.count == 5 else { throw CLIError("Line \(i + 1): expected 4 or 5 fields, got \(f.count)") }
                guard Shipment.carriers.contains(f[0].lowercased()) else {
                    throw CLIError("Line \(i + 1): carrier '\(f[0].prefix(40))' is not one of \(Shipment.carriers.sorted().joined(separator: ", "))")
                }
                guard Shipment.statuses.contains(f[2]) else {
                    throw CLIError("Line \(i + 1): status '\(f[2].prefix(40))' is not one of \(Shipment.statuses.sorted().joined(separator: ", "))")
                }
                guard FHIRDate.isValidDateTime(f[3]), f[3].contains("T") else {
                    throw CLIError("Line \(i + 1): time '\(f[3].prefix(40))' is not a date and time like 2026-12-01T15:30:00Z")
                }
                return TrackingUpdate(carrier: f[0].lowercased(), trackingNumber: f[1], status: f[2], time: f[3], location: f.count == 5 && !f[4].isEmpty ? f[4] : nil)
            }
        }
    }
}
