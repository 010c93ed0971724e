import ArgumentParser
import Foundation
import SafeRxDetect
import SafeRxModel
import SafeRxPharmacy
import SafeRxStoreCore

/// `saferx alerts`: what the exfiltration detector found.
struct Alerts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Alerts raised by the exfiltration detector (it runs inside saferx serve).", subcommands: [List.self, Show.self, Ack.self, Stats.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Alerts, newest first (open ones unless --all).")
        @OptionGroup var data: DataOptions
        @Flag(help: "Include acknowledged alerts.") var all = false
        @Flag(help: "JSON lines instead of a table.") var json = false

        func run() async throws {
            let pharmacy = try await data.openPharmacy()
            let alerts = try await pharmacy.detection.alerts(.operatorCommand(reason: "saferx alerts list"), includeAcknowledged: all)
            if json {
                for a in alerts { say(String(decoding: Alerts.json(a).encoded(), as: UTF8.self)) }
            } else {
                say(all ? plural(alerts.count, "alert") : plural(alerts.count, "open alert"))
                if !alerts.isEmpty { say("ID\tCREATED\tSEVERITY\tRULE\tACTOR\tPATIENTS\tCONTAINED\tACK") }
                var names = ActorNames(pharmacy)
                for a in alerts {
                    say("\(a.id)\t\(Instant.string(a.created))\t\(a.severity)\t\(a.rule)\t\(await names.name(a.actor))\t\(a.patients.count)\t\(a.contained ? "suspended" : "-")\t\(a.acknowledged == nil ? "open" : "acked")")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One alert with its evidence: audit sequence numbers and every patient named.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Alert id.") var id: String
        @Flag(help: "JSON instead of text.") var json = false

        func run() async throws {
            let pharmacy = try await data.openPharmacy()
            let a = try await pharmacy.detection.alert(.operatorCommand(reason: "saferx alerts show"), id: id)
            if json {
                say(String(decoding: Alerts.json(a, full: true).encoded(), as: UTF8.self))
            } else {
                say("Alert \(a.id) (\(a.severity)) rule \(a.rule), tenant \(a.tenant)")
                say("  \(a.summary)")
                say("  Rule: \(a.description)")
                var names = ActorNames(pharmacy)
                say("  Actor: \(a.role) \(await names.name(a.actor))\(a.contained ? " — suspended: every token and session ended (saferx actors reinstate lifts it)" : "")")
                if a.blocked { say("  The request that crossed the rule was refused; the patients below are those whose data left before the cut.") }
                say("  Raised \(Instant.string(a.created)), last evidence \(Instant.string(a.updated)), detector lag \(String(format: "%.2f", a.lagMilliseconds)) ms")
                say("  Evidence (audit seq): \(a.evidence.map(String.init).joined(separator: " "))")
                say("  Patients (\(a.patients.count)): \(a.patients.joined(separator: " "))")
                if let at = a.acknowledged { say("  Acknowledged \(Instant.string(at)) by \(a.acknowledgedBy ?? "?"): \(a.note ?? "")") }
            }
        }
    }

    struct Ack: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Acknowledge an alert with what was found (audited).")
        @OptionGroup var data: DataOptions
        @Argument(help: "Alert id.") var id: String
        @Option(help: "What was found and done (at least 5 characters).") var note: String
        @Option(help: "Who acknowledges (default: $USER).") var by: String?

        func run() async throws {
            let pharmacy = try await data.openPharmacy()
            do {
                try await pharmacy.detection.acknowledge(.operatorCommand(reason: "saferx alerts ack"), id: id, by: by ?? AccessContext.operatorLogin, note: note)
            } catch {
                throw CLIError(error.diagnostics)
            }
            say("Acknowledged \(id). A suspension it caused stays until `saferx actors reinstate`.")
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Alert counts per rule and the detector's lag from append to alert.")
        @OptionGroup var data: DataOptions

        func run() async throws {
            let (byRule, lags) = try await data.openPharmacy().detection.statistics(.operatorCommand(reason: "saferx alerts stats"))
            say("Alerts: \(byRule.reduce(0) { $0 + $1.count }) (\(byRule.reduce(0) { $0 + $1.open }) open)")
            for r in byRule { say("  \(r.rule)\t\(r.severity)\t\(r.count) (\(r.open) open)") }
            if lags.isEmpty {
                say("Detector lag (append → alert): no alerts yet")
            } else {
                func q(_ p: Double) -> Double { lags[min(lags.count - 1, Int((Double(lags.count - 1) * p).rounded()))] }
                say(String(format: "Detector lag (append → alert), %d alerts: p50 %.2f ms, p99 %.2f ms, max %.2f ms", lags.count, q(0.5), q(0.99), lags.last!))
            }
        }
    }

    static func json(_ a: SecurityAlert, full: Bool = false) -> JSON {
        var o: [String: JSON] = [
            "id": .string(a.id), "tenant": .string(a.tenant), "rule": .string(a.rule), "severity": .string(a.severity), "actor": .string(a.actor),
            "role": .string(a.role), "summary": .string(a.summary), "created": .string(Instant.string(a.created)), "contained": .bool(a.contained),
            "blocked": .bool(a.blocked), "patients": .int(Int64(a.patients.count)), "evidence": .int(Int64(a.evidence.count)),
            "lagMs": .double(a.lagMilliseconds), "acknowledged": a.acknowledged.map { .string(Instant.string($0)) } ?? .null,
        ]
        if full {
            o["patients"] = .array(a.patients.map { .string($0) })
            o["evidence"] = .array(a.evidence.map { .int($0) })
            o["description"] = .string(a.description)
            o["note"] = a.note.map { .string($0) } ?? .null
        }
        return .object(o)
    }
}

/// `saferx actors`: accounts and clients the detector suspended.
struct Actors: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Actors (users, API clients) suspended by the detector.", subcommands: [List.self, Reinstate.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Suspended actors (with --all, past suspensions too).")
        @OptionGroup var data: DataOptions
        @Flag(help: "Include lifted suspensions.") var all = false

        func run() async throws {
            let pharmacy = try await data.openPharmacy()
            let list = try await pharmacy.detection.suspensions(.operatorCommand(reason: "saferx actors list"), includeLifted: all)
            say(all ? plural(list.count, "suspension") : plural(list.count, "active suspension"))
            var names = ActorNames(pharmacy)
            for s in list {
                let lifted = s.reinstated.map { " — reinstated \(Instant.string($0)) by \(s.reinstatedBy ?? "?"): \(s.reinstateReason ?? "")" } ?? ""
                say("\(await names.name(s.actor))\t\(s.tenant)\tsince \(Instant.string(s.at))\talert \(s.alertID)\t\(s.reason)\(lifted)")
            }
        }
    }

    struct Reinstate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Lift a suspension (audited). Tokens from before it stay dead: the actor signs in or asks for a token again.")
        @OptionGroup var data: DataOptions
        @Argument(help: "User id, username or client id.") var actor: String
        @Option(help: "Why (at least 10 characters; audited).") var reason: String
        @Option(help: "Who lifts it (default: $USER).") var by: String?

        func run() async throws {
            let pharmacy = try await data.openPharmacy()
            do {
                try await pharmacy.detection.reinstate(.operatorCommand(reason: "saferx actors reinstate"), actor: actor, by: by ?? AccessContext.operatorLogin, reason: reason)
            } catch {
                throw CLIError(error.diagnostics)
            }
            say("Reinstated \(actor).")
        }
    }
}

/// `saferx detect`: the rules and replays over history.
struct Detect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Exfiltration detection rules and replays.", subcommands: [Replay.self, Check.self])

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the detector over the audit log from a date and print what it finds (stores nothing).",
            discussion: "Use it to try new rules on real history (--rules) or to look back after a change of thresholds.")
        @OptionGroup var data: DataOptions
        @Option(help: "First day (YYYY-MM-DD, UTC) or instant.") var from: String
        @Option(help: "Last instant (exclusive; default: now).") var to: String?
        @Option(help: "Rules file (default: the bundled rules).") var rules: String?

        func run() async throws {
            let ruleSet: DetectionRules
            do { ruleSet = try rules.map { try DetectionRules.load($0) } ?? DetectionRules.bundled() } catch { throw CLIError("\(error)") }
            guard FHIRDate.isValidDateTime(from) else { throw ValidationError("--from '\(from.prefix(40))' is not a date (YYYY-MM-DD) or an instant (2026-12-01T08:00:00Z)") }
            let result = try await data.openPharmacy().detection.replay(.operatorCommand(reason: "saferx detect replay"), rules: ruleSet, from: from, to: to) { done in
                FileHandle.standardError.write(Data("\rreplayed \(done) records".utf8))
            }
            FileHandle.standardError.write(Data("\n".utf8))
            let alerts = result.findings.filter { !$0.isUpdate }
            say(String(format: "Replayed %d audit records in %.2f s (%.0f records/s; detector alone %.0f events/s): ",
                       result.records, result.seconds, Double(result.records) / max(result.seconds, 1e-9),
                       Double(result.records) / max(result.detectorSeconds, 1e-9)) + plural(alerts.count, "alert"))
            for f in alerts {
                let extra = result.findings.filter { $0.isUpdate && $0.key == f.key }
                let patients = Set(f.patients + extra.flatMap(\.patients))
                say("\(f.severity.rawValue)\t\(f.rule)\t\(f.actor)\tfirst at seq \(f.triggeredBy)\t\(plural(patients.count, "patient"))\t\(f.summary)")
            }
            say("Peaks (the highest value each rule's measure reached for one actor, against its limit):")
            for line in Simulate.peakLines(result.peaks, rules: ruleSet) { say("  " + line) }
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Validate a rules file the way saferx serve does at start.")
        @Argument(help: "Rules file (JSON).") var file: String

        func run() async throws {
            do {
                let rules = try DetectionRules.load(file)
                say("\(file): \(rules.rules.count) rules, valid")
            } catch {
                throw CLIError("\(error)")
            }
        }
    }
}

/// `saferx honeytokens`: canary patients.
struct Honeytokens: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Honeytoken (canary) patients.", subcommands: [Plant.self, List.self])

    struct Plant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Plant canary patients that look real (name, birth date, address, past prescriptions), appear in no work list, and alert when opened.")
        @OptionGroup var data: DataOptions
        @Option(help: "Tenant (pharmacy).") var tenant = DemoPharmacy.tenant
        @Option(help: "How many.") var count = 3
        @Option(help: "Make them patients of this partner client (a canary inside a partner's scope).") var partner: String?

        func run() async throws {
            let ids = try await data.openPharmacy().detection.plantHoneytokens(.operatorCommand(reason: "saferx honeytokens plant"), tenant: tenant, count: count, partner: partner)
            say("Planted \(plural(ids.count, "honeytoken patient")). Their ids are stored sealed; `saferx honeytokens list` shows them.")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The honeytoken patients (keep this list to the security team).")
        @OptionGroup var data: DataOptions
        @Option(help: "Tenant (pharmacy).") var tenant = DemoPharmacy.tenant

        func run() async throws {
            let ids = try await data.openPharmacy().detection.honeytokens(.operatorCommand(reason: "saferx honeytokens list"), tenant: tenant)
            say("\(plural(ids.count, "honeytoken patient")): \(ids.joined(separator: " "))")
        }
    }
}
