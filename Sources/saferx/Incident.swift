import ArgumentParser
import Foundation
import SafeRxBreach
import SafeRxModel
import SafeRxPharmacy
import SafeRxStoreCore

/// `saferx incident`: breach response from the audit log — declare, scope, assess, obligations, documents, report.
struct IncidentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incident",
        abstract: "Breach response: exact scope from the audit log, the HIPAA risk assessment, notice obligations with deadlines, notices.",
        subcommands: [Declare.self, Scope.self, Assess.self, Obligations.self, Documents.self, Report.self, List.self])

    struct Declare: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Declare an incident with what is known; prints its id.")
        @OptionGroup var data: DataOptions
        @Option(help: "The day anyone in the workforce knew or should have known (YYYY-MM-DD).") var discovered: String
        @Option(help: "A compromised user (username or id) or API client id; repeat for several.") var actor: [String] = []
        @Option(help: "Start of the window (ISO date or time).") var from: String?
        @Option(help: "End of the window, exclusive (ISO date or time).") var to: String?
        @Option(help: "An exported file involved: its SHA-256 (or first 8+ hex digits); repeat for several.") var file: [String] = []
        @Option(help: "A source address the intruder used; repeat for several.") var source: [String] = []
        @Option(help: "A resource known to be exposed as such (Type/id); repeat for several.") var resource: [String] = []
        @Flag(help: "The key an exported file is encrypted to is itself compromised.") var fileKeyCompromised = false
        @Option(help: "Tenant (pharmacy).") var tenant = "demo-pharmacy"
        @Option(help: "What happened, in plain language (it goes into every letter).") var description: String?
        @Option(help: "What the pharmacy has done about it (it goes into every letter and the HHS report; without it they say TO BE COMPLETED).") var actions: String?
        @Option(help: "covered-entity, or business-associate when the pharmacy processed the data for another covered entity.") var role = "covered-entity"
        @Option(help: "Who declares (default: $USER).") var by: String?
        @Flag(help: "Print {\"id\": ...}.") var json = false

        func run() async throws {
            guard ["covered-entity", "business-associate"].contains(role) else { throw ValidationError("--role '\(role.prefix(40))' is not covered-entity or business-associate") }
            let pharmacy = try await data.openPharmacy()
            let id = try await pharmacy.incidents.declare(
                .operatorCommand(reason: "saferx incident declare", tenant: tenant), discovered: discovered, actors: actor, from: from, to: to,
                files: file, sources: source, resources: resource, fileKeyCompromised: fileKeyCompromised, description: description,
                actions: actions ?? "", role: role, by: by)
            await pharmacy.checkpoint()
            if json { say(#"{"id":"\#(id)"}"#) } else { say("Incident \(id) declared (discovered \(discovered)). Next: saferx incident scope \(id)") }
        }
    }

    struct Scope: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Who was affected: each patient with the data elements exposed, the exposure window and the audit evidence.",
            discussion: "Verifies the audit chain first and refuses to certify (exit 1) when it is broken, naming the record where it breaks.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Incident id.") var id: String
        @Flag(help: "JSON instead of a table.") var json = false

        func run() async throws {
            let pharmacy = try await data.openPharmacy()
            // Audited (naming every affected patient) before anything is printed: the list ties them to an incident.
            let scope: IncidentScope
            do throws(FHIRError) {
                (_, scope) = try await pharmacy.incidents.scope(.operatorCommand(reason: "saferx incident scope"), incident: id)
            } catch where error.kind == .conflict {
                say("\(error.diagnostics). The evidence may have been tampered with; restore the log from a verified backup (saferx backup verify) before relying on any scope.")
                throw ExitCode(1)
            } catch {
                throw CLIError(error.diagnostics)
            }
            await pharmacy.checkpoint()
            if json {
                let out = JSON.object([
                    "incident": .string(id), "certified": .bool(true), "affected": .int(Int64(scope.affected.count)),
                    "evidenceRecords": .int(Int64(scope.evidenceRecords)), "refusedAttempts": .int(Int64(scope.refused)),
                    "recipients": .array(scope.recipients.map { .string($0) }),
                    "patients": .array(scope.affected.map { a in
                        .object([
                            "patient": .string(a.patient), "elements": .array(a.elements.sorted().map { .string($0) }), "first": .string(a.first),
                            "last": .string(a.last), "secured": .bool(a.secured), "evidence": .array(a.evidence.prefix(1000).map { .int($0) }),
                        ])
                    }),
                ])
                say(String(decoding: out.encoded(), as: UTF8.self))
            } else {
                say("Incident \(id): \(plural(scope.affected.count, "affected individual")); audit chain verified; \(plural(scope.evidenceRecords, "evidence record")), \(plural(scope.refused, "refused attempt"))")
                say("  verified: \(scope.verified)")
                for r in scope.recipients { say("  through: \(r)") }
                say("PATIENT\tELEMENTS\tFIRST\tLAST\tSECURED\tEVIDENCE (audit seq)")
                for a in scope.affected {
                    say("Patient/\(a.patient)\t\(a.elements.sorted().joined(separator: ","))\t\(a.first)\t\(a.last)\t\(a.secured ? "yes" : "no")\t\(a.evidence.prefix(20).map(String.init).joined(separator: " "))\(a.evidence.count > 20 ? " …" : "")")
                }
            }
        }
    }

    struct Assess: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The HIPAA risk assessment (45 CFR 164.402): the four factors with the audit log's facts, the exceptions, the result.",
            discussion: """
                Record a judgement with --question Q --text "..." (questions: \(Assessment.Question.allCases.map(\.rawValue).joined(separator: ", "))), \
                and the conclusion with --conclusion breach|low-probability|exception --text "reasoning". Every judgement is kept, with who made \
                it and when, for six years (164.530(j)).
                """)
        @OptionGroup var data: DataOptions
        @Argument(help: "Incident id.") var id: String
        @Option(help: "A question to answer.") var question: String?
        @Option(help: "breach, low-probability or exception.") var conclusion: String?
        @Option(help: "The judgement or the reasoning, in words.") var text: String?
        @Option(help: "Who judges (default: $USER).") var by: String?
        @Flag(help: "JSON.") var json = false

        func run() async throws {
            if let question, Assessment.Question(rawValue: question) == nil { throw CLIError("Unknown question '\(question.prefix(40))'") }
            if let conclusion, Assessment.Conclusion(rawValue: conclusion).map({ $0 == .notUnsecured || $0 == .noneAffected }) ?? true {
                throw CLIError("--conclusion '\(conclusion.prefix(40))' is not breach, low-probability or exception (safe harbor is computed, not chosen)")
            }
            let pharmacy = try await data.openPharmacy()
            let ctx = AccessContext.operatorCommand(reason: "saferx incident assess")
            let package = try await pharmacy.signing {
                var answered: BreachResponse.Package?
                if let question { answered = try await pharmacy.incidents.judge(ctx, incident: id, .answer(question: question, text: text ?? ""), by: by) }
                if let conclusion { answered = try await pharmacy.incidents.judge(ctx, incident: id, .conclusion(conclusion, text: text ?? ""), by: by) }
                if let answered { return answered }
                return try await pharmacy.incidents.package(ctx, incident: id, "incident-assess")
            }
            let a = package.assessment
            if json {
                say(String(decoding: IncidentCommand.assessmentJSON(a).encoded(), as: UTF8.self))
                return
            }
            say("Risk assessment of incident \(id) (45 CFR 164.402)")
            for q in Assessment.Question.allCases {
                say("\n\(q.prompt)")
                if let c = a.computed[q] { say("  From the audit log: \(c)") }
                if let j = a.judgements[q.rawValue] { say("  Judgement (\(j.by), \(j.at)): \(j.text)") } else { say("  Judgement: not recorded yet") }
            }
            let r = a.result
            say("\nResult: \(r.conclusion.rawValue) — \(r.why)")
        }
    }

    struct Obligations: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What must be done by when: HIPAA individual, substitute, media, HHS and business-associate notices and state laws, earliest first.",
            discussion: "Mark one done with --done OBLIGATION_ID --on YYYY-MM-DD. State rows come from a table with sources and confidence; none is verified until someone records a date.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Incident id.") var id: String
        @Option(help: "An obligation id to mark done.") var done: String?
        @Option(help: "The day it was done.") var on: String?
        @Option(help: "Who (default: $USER).") var by: String?
        @Option(help: "A note (how, to whom).") var note = ""
        @Option(help: "A law-enforcement official's written request to delay notices, until this day (164.412).") var lawEnforcementDelayUntil: String?
        @Flag(help: "JSON.") var json = false

        func run() async throws {
            if let until = lawEnforcementDelayUntil, CivilDate(until) == nil {
                throw ValidationError("--law-enforcement-delay-until '\(until.prefix(40))' is not a date like 2027-01-31 (YYYY-MM-DD)")
            }
            let pharmacy = try await data.openPharmacy()
            let ctx = AccessContext.operatorCommand(reason: "saferx incident obligations")
            let package = try await pharmacy.signing {
                if let until = lawEnforcementDelayUntil { try await pharmacy.incidents.delayNotices(ctx, incident: id, until: until, by: by) }
                if let done {
                    return try await pharmacy.incidents.markDone(ctx, incident: id, obligation: done, on: on ?? String(Instant.now().prefix(10)), note: note, by: by)
                }
                return try await pharmacy.incidents.package(ctx, incident: id, "incident-obligations")
            }
            if json {
                say(String(decoding: JSON.array(package.obligations.map { o in IncidentCommand.obligationJSON(o, done: package.done[o.id]) }).encoded(), as: UTF8.self))
                return
            }
            say("Obligations of incident \(id) (discovered \(package.incident.discovered)); \(package.assessment.result.conclusion.rawValue): \(package.assessment.result.why)")
            say("DUE\tSTATUS\tID\tWHAT\tWHO\tBASIS")
            for o in package.obligations {
                let status = package.done[o.id].map { "done \($0.on)" } ?? (o.required ? "open" : "not required")
                say("\(o.due ?? "-")\t\(status)\t\(o.id)\t\(o.title) — \(o.dueText)\t\(o.recipient)\t\(o.basis)\(o.provenance.isEmpty ? "" : " [\(o.provenance)]")")
            }
        }
    }

    struct Documents: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the notices: HHS report (JSON and summary), substitute, media and regulator notices; letters and the mail-merge file sealed to a print vendor.",
            discussion: """
                Files without personal information are written in clear. Letters (HTML and PDF) and the complete mail-merge CSV hold names and \
                addresses, so they are encrypted to the print vendor's key (--vendor, a fulfillment vendor: saferx fulfillment vendor-add) and \
                audited naming every patient; --letter PATIENT writes one patient's letter in clear for review (mode 0600, audited). Letters are \
                bundled for up to --bundle-limit individuals; above that they are generated per patient on demand (--letter).
                """)
        @OptionGroup var data: DataOptions
        @Argument(help: "Incident id.") var id: String
        @Option(help: "Directory to write to.") var out: String
        @Option(help: "Print vendor (a fulfillment vendor) whose key seals letters and the mail-merge file.") var vendor: String?
        @Option(help: "A patient whose letter to write in clear for review; repeat for several.") var letter: [String] = []
        @Option(help: "Bundle letters (HTML, PDF) for at most this many individuals.") var bundleLimit = 10_000
        @Option(help: "Toll-free number in the notices.") var tollFree = "1-800-555-0199"
        @Option(help: "E-mail address in the notices.") var email = "privacy@saferx.example"
        @Option(help: "Postal address in the notices.") var postal = "SafeRx Demo Pharmacy, Privacy Office, 100 Main St, Springfield, IL 62701"
        @Option(help: "Website in the notices.") var website = "https://saferx.example/notice"

        func run() async throws {
            let pharmacy = try await data.openPharmacy()
            let ctx = AccessContext.operatorCommand(reason: "saferx incident documents")
            let package = try await pharmacy.incidents.package(ctx, incident: id, "incident-documents")
            let dir = URL(fileURLWithPath: out, isDirectory: true)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let facts = package.facts(tollFree: tollFree, email: email, postal: postal, website: website)
            var written: [String] = []
            func write(_ name: String, _ data: Data, private p: Bool = false) throws {
                let url = dir.appendingPathComponent(name)
                _ = FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: p ? 0o600 : 0o644])
                try data.write(to: url)
                written.append(name)
            }
            // Notices concern the individuals this pharmacy notifies: unsecured exposure, not a covered entity's patients.
            let notifiable = package.notifiable
            var names = Set<String>()
            for a in notifiable where !a.elements.isSubset(of: names) { names.formUnion(a.elements) }
            let elements = names.compactMap(DataElement.init(rawValue:)).sorted()
            let obligations = package.obligations
            // Letters are dated the day they are produced (the deadline is in the obligations).
            let letterDay = String(Instant.now().prefix(10))
            let report = Notices.hhsReport(
                facts, affected: notifiable.count, elements: elements, businessAssociate: package.incident.role == "business-associate",
                typeOfBreach: package.incident.files.isEmpty ? "Unauthorized Access/Disclosure" : "Hacking/IT Incident",
                location: package.incident.files.isEmpty ? "Network Server" : "Network Server; Other (encrypted fulfillment file)",
                safeguards: ["Privacy Rule Safeguards (training, policies and procedures, etc.)", "Security Rule Administrative Safeguards",
                             "Security Rule Technical Safeguards (encryption at rest, audit controls, access controls)"],
                actions: package.actionsTaken,
                individualNotice: package.done["hipaa-individual"]?.on, substituteNotice: obligations.contains { $0.id == "hipaa-substitute" && $0.required },
                mediaNotice: obligations.contains { $0.id.hasPrefix("hipaa-media-") }, stateAGs: obligations.filter { $0.id.hasSuffix("-regulator") && $0.required }.map(\.recipient))
            try write("hhs-report.json", report.encoded())
            try write("hhs-report.txt", Data(Notices.hhsSummary(report).utf8))
            if obligations.contains(where: { $0.id == "hipaa-substitute" }) {
                try write("substitute-notice.txt", Data(Notices.substituteNotice(facts, unreachable: package.unreachable, elements: elements).utf8))
            }
            for o in obligations where o.id.hasPrefix("hipaa-media-") {
                let state = String(o.id.dropFirst("hipaa-media-".count))
                try write("media-notice-\(state).txt", Data(Notices.mediaNotice(facts, state: state, residents: package.notifiableResidents[state] ?? 0, elements: elements).utf8))
            }
            for o in obligations where o.id.hasSuffix("-regulator") && o.required {
                let state = String(o.id.dropFirst("state-".count).prefix(2))
                try write("regulator-notice-\(state).txt", Data(Notices.regulatorNotice(
                    facts, state: state, regulator: o.recipient, residents: package.notifiableResidents[state] ?? 0, elements: elements, letterDate: letterDay).utf8))
            }
            // Letters: to each individual (and a copy to a caregiver on record), with that person's own elements. They are
            // prepared first and audited, naming every patient, before any of them is written.
            var disclosed: [String] = []
            var pending: [(name: String, private: Bool, data: Task<Data, any Error>)] = []
            func letters(for patients: [String]) async throws -> [Letter] {
                let list = try await pharmacy.incidents.letters(ctx, package, patients: patients)
                disclosed += BreachResponse.disclosed(list)
                return list
            }
            if let vendor {
                let printer = try await pharmacy.incidents.printVendor(ctx, incident: package, vendor: vendor)
                let notify = notifiable.map(\.patient)
                let merge = try await pharmacy.incidents.mailMerge(ctx, package, patients: notify)
                disclosed += merge.disclosed
                let csv = merge.csv
                // Sealing hundreds of megabytes takes seconds: on the other core, while the rest is prepared and audited.
                pending.append(("mail-merge.csv.srxf", false, Task.detached { try printer.seal(Data(csv)) }))
                let bundle = notify.count <= bundleLimit
                if bundle, !notify.isEmpty {
                    var html = ""
                    var text: [String] = []
                    for l in try await letters(for: notify) {
                        html += Notices.letterHTML(l, facts, date: letterDay) + "\n<div style=\"page-break-after: always\"></div>\n"
                        text += Notices.letterText(l, facts, date: letterDay) + ["\u{0C}"]
                    }
                    let sealedHTML = try printer.seal(Data(html.utf8))
                    let sealedPDF = try printer.seal(MinimalPDF.document(lines: text))
                    pending.append(("letters.html.srxf", false, Task { sealedHTML }))
                    pending.append(("letters.pdf.srxf", false, Task { sealedPDF }))
                }
                say("Letters: \(plural(notify.count, "individual"))\(bundle ? "" : " (more than \(bundleLimit): letters are generated per patient with --letter; the mail-merge file is complete)"), sealed to \(vendor)'s key")
            } else if letter.isEmpty {
                say("No --vendor: letters and the mail-merge file (they hold names and addresses) were not written.")
            }
            let notified = Set(letter.isEmpty ? [] : notifiable.map(\.patient))
            for p in letter {
                guard notified.contains(p) else { throw CLIError("Patient \(p) is not among the individuals \(id) notifies") }
                for l in try await letters(for: [p]) {
                    let name = "letter-\(l.letterID)"
                    let html = Data(Notices.letterHTML(l, facts, date: letterDay).utf8), pdf = Notices.letterPDF(l, facts, date: letterDay)
                    pending.append(("\(name).html", true, Task { html }))
                    pending.append(("\(name).pdf", true, Task { pdf }))
                }
            }
            try await pharmacy.incidents.recordDocuments(
                ctx, incident: id, patients: Array(Set(disclosed)),
                detail: "\(written.count + pending.count) files written to \(dir.path)\(vendor.map { ", letters sealed to \($0)" } ?? "")")
            await pharmacy.checkpoint()
            for p in pending { try write(p.name, try await p.data.value, private: p.private) }
            for w in written { say("wrote \(dir.appendingPathComponent(w).path)") }
        }
    }

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The whole package: affected by state, data elements, deadlines, what is done and what is not.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Incident id.") var id: String
        @Flag(help: "JSON.") var json = false

        func run() async throws {
            let pharmacy = try await data.openPharmacy()
            let p = try await pharmacy.incidents.package(.operatorCommand(reason: "saferx incident report"), incident: id, "incident-report")
            await pharmacy.checkpoint()
            if json {
                say(String(decoding: BreachResponse.reportJSON(p).encoded(), as: UTF8.self))
                return
            }
            let r = p.assessment.result
            say("INCIDENT \(id) — \(p.incident.tenant)")
            say("Discovered \(p.incident.discovered); declared \(p.incident.declared.prefix(10)) by \(p.incident.declaredBy)")
            say("What happened: \(p.incident.description)")
            say("Evidence: \(p.scope.certified ? "audit chain verified (\(p.scope.verified))" : "NOT CERTIFIED — \(p.scope.chainProblem ?? "")"); \(p.scope.evidenceRecords) records; \(p.scope.refused) refused attempts")
            for x in p.scope.recipients { say("  through: \(x)") }
            say("\nAffected individuals: \(p.scope.affected.count)" + (p.assessment.facts.firstExposure.map { " (exposed \($0) to \(p.assessment.facts.lastExposure ?? $0))" } ?? ""))
            say("By state of residence: " + p.residents.sorted { $0.value == $1.value ? $0.key < $1.key : $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            say("Without a postal address (substitute notice): \(p.unreachable)")
            say("Data elements: " + p.assessment.facts.elements.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            say("\nAssessment: \(r.conclusion.rawValue) — \(r.why)")
            let open = Assessment.Question.allCases.filter { p.assessment.judgements[$0.rawValue] == nil }
            if !open.isEmpty { say("  Judgements not yet recorded: \(open.map(\.rawValue).joined(separator: ", "))") }
            for missing in p.missingFacts { say("  Not recorded (the documents say TO BE COMPLETED): \(missing)") }
            say("\nDeadlines (earliest first):")
            for o in p.obligations where o.required {
                let status = p.done[o.id].map { "DONE \($0.on) by \($0.by)" } ?? "NOT DONE"
                say("  \(o.due ?? "—        ")  \(status.count < 24 ? status + String(repeating: " ", count: 24 - status.count) : status)  \(o.title) — \(o.dueText)\(o.provenance.isEmpty ? "" : " [\(o.provenance)]")")
            }
            let notRequired = p.obligations.filter { !$0.required }
            if !notRequired.isEmpty {
                say("\nConsidered, not required:")
                for o in notRequired { say("  \(o.title): \(o.dueText) — \(o.basis)") }
            }
            let doneCount = p.obligations.filter { $0.required && p.done[$0.id] != nil }.count
            say("\nDone: \(doneCount) of \(p.obligations.filter(\.required).count) required. Documents: saferx incident documents \(id) --out DIR --vendor PRINT_VENDOR")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Declared incidents.")
        @OptionGroup var data: DataOptions

        func run() async throws {
            let pharmacy = try await data.openPharmacy()
            let list = try await pharmacy.incidents.list(.operatorCommand(reason: "saferx incident list"))
            await pharmacy.checkpoint()
            for i in list {
                say("\(i.id)\t\(i.tenant)\tdiscovered \(i.discovered)\tactors \(i.actors.joined(separator: ","))\tfiles \(i.files.joined(separator: ","))")
            }
        }
    }

    static func assessmentJSON(_ a: Assessment) -> JSON { BreachResponse.assessmentJSON(a) }

    static func obligationJSON(_ o: SafeRxBreach.Obligation, done: (on: String, by: String, note: String)?) -> JSON { BreachResponse.obligationJSON(o, done: done) }
}
