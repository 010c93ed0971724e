import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SafeRxAudit
import SafeRxBreach
import SafeRxModel
import SafeRxPharmacy
import SafeRxPolicy
import SafeRxStore

/// `/incidents`: breach response for privacy officers, mirroring `saferx incident` — declare, scope, assess (with
/// judgements), obligations (and marking them done), report. Documents with names and addresses are written by the
/// command line only (sealed to a print vendor).
struct IncidentController: Sendable {
    let fhir: FHIRController
    var store: PharmacyStore { fhir.store }

    func register(on router: Router<SafeRxContext>) {
        router.get("/incidents") { req, ctx in try await self.list(req, ctx) }
        router.post("/incidents") { req, ctx in try await self.declare(req, ctx) }
        router.get("/incidents/:id/scope") { req, ctx in try await self.scope(req, ctx) }
        router.get("/incidents/:id/assess") { req, ctx in try await self.assess(req, ctx, body: false) }
        router.post("/incidents/:id/assess") { req, ctx in try await self.assess(req, ctx, body: true) }
        router.get("/incidents/:id/obligations") { req, ctx in try await self.obligations(req, ctx, body: false) }
        router.post("/incidents/:id/obligations") { req, ctx in try await self.obligations(req, ctx, body: true) }
        router.get("/incidents/:id/report") { req, ctx in try await self.report(req, ctx) }
    }

    /// Privacy officers only; audited like any access.
    func officer(_ req: Request, _ ctx: SafeRxContext, _ interaction: String) async throws -> AccessContext {
        let access = try await fhir.access(req, ctx, interaction: interaction, type: .auditEvent)
        guard access.scope.role == .privacyOfficer else {
            throw await store.deny(access, interaction: interaction, type: nil, id: nil, error: .forbidden("Incidents are for privacy officers"))
        }
        return access
    }

    func incident(_ access: AccessContext, _ ctx: SafeRxContext) async throws -> Incident {
        let id = ctx.parameters.get("id") ?? ""
        guard let i = try await store.incident(id: id), i.tenant == access.scope.tenant else { throw FHIRError.notFoundPath("incident") }
        return i
    }

    func record(_ access: AccessContext, _ action: String, patients: [String] = [], detail: String) async throws {
        let p = access.scope.principal
        try await store.recordEvent(
            AuditEntry(
                actor: .init(id: p.subject, role: p.roleName, tenant: p.tenant), action: action, patients: patients, outcome: "success", status: 200,
                purpose: p.purpose.rawValue, sourceIP: access.sourceIP, userAgent: access.userAgent, requestID: access.requestID, detail: detail))
    }

    func list(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let access = try await officer(req, ctx, "incidents")
        let list = try await store.incidents().filter { $0.tenant == access.scope.tenant }
        try await record(access, "incidents", detail: "\(list.count) incidents listed")
        return AccountController.plain(.object(["incidents": .array(list.map { i in
            .object(["id": .string(i.id), "discovered": .string(i.discovered), "declaredBy": .string(i.declaredBy), "actors": .array(i.actors.map { .string($0) }),
                     "files": .array(i.files.map { .string($0) }), "from": i.from.map { .string($0) } ?? .null, "to": i.to.map { .string($0) } ?? .null])
        })]))
    }

    /// `{"discovered": "YYYY-MM-DD", "actors": [...], "from": ..., "to": ..., "files": [...], "description": ..., "actions": ...}`
    func declare(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let access = try await officer(req, ctx, "incident-declare")
        let body = try await fhir.body(req)
        guard case .object(let o) = body else { throw FHIRError.invalid("The body must be a JSON object") }
        let known: Set<String> = ["discovered", "actors", "from", "to", "files", "sources", "resources", "fileKeyCompromised", "description", "actions", "role"]
        for k in o.keys where !known.contains(k) { throw FHIRError.invalid("Unknown field '\(String(k.prefix(40)))'; known: \(known.sorted().joined(separator: ", "))") }
        func strings(_ k: String) throws -> [String] {
            guard let v = o[k] else { return [] }
            guard let a = v.arrayValue, a.allSatisfy({ $0.stringValue != nil }) else { throw FHIRError.invalid("'\(k)' must be an array of strings") }
            return a.compactMap(\.stringValue)
        }
        guard let discovered = o["discovered"]?.stringValue else { throw FHIRError.invalid("'discovered' (YYYY-MM-DD) is required") }
        let role = o["role"]?.stringValue ?? "covered-entity"
        guard ["covered-entity", "business-associate"].contains(role) else { throw FHIRError.invalid("'role' is covered-entity or business-associate") }
        let id = "inc-" + String(UUID().uuidString.lowercased().prefix(8))
        let incident = Incident(
            id: id, tenant: access.scope.tenant, discovered: discovered, declared: AuditLog.timestamp(Date()), declaredBy: access.scope.principal.subject,
            actors: try strings("actors"), from: o["from"]?.stringValue, to: o["to"]?.stringValue, files: try strings("files"), sources: try strings("sources"),
            resources: try strings("resources"), fileKeyCompromised: o["fileKeyCompromised"] == .bool(true),
            description: o["description"]?.stringValue ?? "Someone without authorization used access to our pharmacy system to view patient information.",
            // Nothing is claimed that nobody recorded: without "actions" the documents say TO BE COMPLETED.
            whatWeAreDoing: o["actions"]?.stringValue ?? "",
            role: role)
        try await store.declareIncident(incident)
        return AccountController.plain(.object(["id": .string(id)]), status: .created)
    }

    func scope(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let access = try await officer(req, ctx, "incident-scope")
        let i = try await incident(access, ctx)
        let (_, scope) = try await BreachResponse.scope(store, i.id)
        guard scope.certified else {
            throw FHIRError.conflict("REFUSING TO CERTIFY incident \(i.id): \(scope.chainProblem ?? "the audit chain does not verify")")
        }
        try await record(access, "incident-scope", patients: scope.affected.map(\.patient), detail: "incident \(i.id): \(scope.affected.count) affected")
        return AccountController.plain(.object([
            "incident": .string(i.id), "certified": .bool(true), "affected": .int(Int64(scope.affected.count)),
            "evidenceRecords": .int(Int64(scope.evidenceRecords)), "refusedAttempts": .int(Int64(scope.refused)),
            "recipients": .array(scope.recipients.map { .string($0) }),
            "patients": .array(scope.affected.map { a in
                .object(["patient": .string(a.patient), "elements": .array(a.elements.sorted().map { .string($0) }), "first": .string(a.first),
                         "last": .string(a.last), "secured": .bool(a.secured), "evidence": .array(a.evidence.prefix(1000).map { .int($0) })])
            }),
        ]))
    }

    /// POST `{"question": "factor-2-recipient", "text": "..."}` or `{"conclusion": "low-probability", "text": "..."}`.
    func assess(_ req: Request, _ ctx: SafeRxContext, body: Bool) async throws -> Response {
        let access = try await officer(req, ctx, "incident-assess")
        let i = try await incident(access, ctx)
        if body {
            guard case .object(let o) = try await fhir.body(req), let text = o["text"]?.stringValue else {
                throw FHIRError.invalid("The body is {\"question\": ..., \"text\": ...} or {\"conclusion\": ..., \"text\": ...}")
            }
            if let q = o["question"]?.stringValue {
                guard Assessment.Question(rawValue: q) != nil else {
                    throw FHIRError.invalid("Unknown question; one of \(Assessment.Question.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                try await store.recordJudgement(incident: i.id, question: q, text: text, by: access.scope.principal.subject)
            } else if let c = o["conclusion"]?.stringValue {
                guard let conclusion = Assessment.Conclusion(rawValue: c), conclusion != .notUnsecured, conclusion != .noneAffected else {
                    throw FHIRError.invalid("'conclusion' is breach, low-probability or exception (safe harbor is computed)")
                }
                try await store.recordJudgement(incident: i.id, question: "conclusion", text: "\(conclusion.rawValue): \(text)", by: access.scope.principal.subject)
            } else {
                throw FHIRError.invalid("Say which 'question' the judgement answers, or give a 'conclusion'")
            }
        }
        let p = try await BreachResponse.package(store, i.id)
        try await record(access, "incident-assess", detail: "incident \(i.id)")
        return AccountController.plain(BreachResponse.assessmentJSON(p.assessment))
    }

    /// POST `{"done": "hipaa-individual", "on": "YYYY-MM-DD", "note": "..."}` marks one done.
    func obligations(_ req: Request, _ ctx: SafeRxContext, body: Bool) async throws -> Response {
        let access = try await officer(req, ctx, "incident-obligations")
        let i = try await incident(access, ctx)
        if body {
            guard case .object(let o) = try await fhir.body(req), let done = o["done"]?.stringValue, let on = o["on"]?.stringValue else {
                throw FHIRError.invalid("The body is {\"done\": OBLIGATION_ID, \"on\": \"YYYY-MM-DD\", \"note\": ...}")
            }
            try await BreachResponse.markDone(store, i.id, obligation: done, on: on, by: access.scope.principal.subject, note: o["note"]?.stringValue ?? "")
        }
        let p = try await BreachResponse.package(store, i.id)
        try await record(access, "incident-obligations", detail: "incident \(i.id)")
        return AccountController.plain(.object([
            "incident": .string(i.id), "result": .string(p.assessment.result.conclusion.rawValue),
            "obligations": .array(p.obligations.map { BreachResponse.obligationJSON($0, done: p.done[$0.id]) }),
        ]))
    }

    func report(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let access = try await officer(req, ctx, "incident-report")
        let i = try await incident(access, ctx)
        let p = try await BreachResponse.package(store, i.id)
        try await record(access, "incident-report", detail: "incident \(i.id)")
        return AccountController.plain(BreachResponse.reportJSON(p))
    }
}
