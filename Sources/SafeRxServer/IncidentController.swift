import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SafeRxBreach
import SafeRxModel
import SafeRxPharmacy
import SafeRxStoreCore

/// `/incidents`: breach response for privacy officers, mirroring `saferx incident` — declare, scope, assess (with
/// judgements), obligations (and marking them done), report. Documents with names and addresses are written by the
/// command line only (sealed to a print vendor).
struct IncidentController: Sendable {
    let fhir: FHIRController

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

    var incidents: IncidentService { fhir.pharmacy.incidents }

    func access(_ req: Request, _ ctx: SafeRxContext, _ interaction: String) async throws -> AccessContext {
        try await fhir.access(req, ctx, interaction: interaction, type: .auditEvent)
    }

    func list(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let list = try await incidents.list(try await access(req, ctx, "incidents"))
        return AccountController.plain(.object(["incidents": .array(list.map { i in
            .object(["id": .string(i.id), "discovered": .string(i.discovered), "declaredBy": .string(i.declaredBy), "actors": .array(i.actors.map { .string($0) }),
                     "files": .array(i.files.map { .string($0) }), "from": i.from.map { .string($0) } ?? .null, "to": i.to.map { .string($0) } ?? .null])
        })]))
    }

    /// `{"discovered": "YYYY-MM-DD", "actors": [...], "from": ..., "to": ..., "files": [...], "description": ..., "actions": ...}`
    func declare(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let access = try await access(req, ctx, "incident-declare")
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
        let id = try await incidents.declare(
            access, discovered: discovered, actors: try strings("actors"), from: o["from"]?.stringValue, to: o["to"]?.stringValue,
            files: try strings("files"), sources: try strings("sources"), resources: try strings("resources"),
            fileKeyCompromised: o["fileKeyCompromised"] == .bool(true), description: o["description"]?.stringValue,
            // Nothing is claimed that nobody recorded: without "actions" the documents say TO BE COMPLETED.
            actions: o["actions"]?.stringValue ?? "", role: o["role"]?.stringValue ?? "covered-entity")
        return AccountController.plain(.object(["id": .string(id)]), status: .created)
    }

    func scope(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let (i, scope) = try await incidents.scope(try await access(req, ctx, "incident-scope"), incident: ctx.parameters.get("id") ?? "")
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
        let access = try await access(req, ctx, "incident-assess")
        let id = ctx.parameters.get("id") ?? ""
        let p: BreachResponse.Package
        if body {
            guard case .object(let o) = try await fhir.body(req), let text = o["text"]?.stringValue else {
                throw FHIRError.invalid("The body is {\"question\": ..., \"text\": ...} or {\"conclusion\": ..., \"text\": ...}")
            }
            if let q = o["question"]?.stringValue {
                p = try await incidents.judge(access, incident: id, .answer(question: q, text: text))
            } else if let c = o["conclusion"]?.stringValue {
                p = try await incidents.judge(access, incident: id, .conclusion(c, text: text))
            } else {
                throw FHIRError.invalid("Say which 'question' the judgement answers, or give a 'conclusion'")
            }
        } else {
            p = try await incidents.package(access, incident: id, "incident-assess")
        }
        return AccountController.plain(BreachResponse.assessmentJSON(p.assessment))
    }

    /// POST `{"done": "hipaa-individual", "on": "YYYY-MM-DD", "note": "..."}` marks one done.
    func obligations(_ req: Request, _ ctx: SafeRxContext, body: Bool) async throws -> Response {
        let access = try await access(req, ctx, "incident-obligations")
        let id = ctx.parameters.get("id") ?? ""
        let p: BreachResponse.Package
        if body {
            guard case .object(let o) = try await fhir.body(req), let done = o["done"]?.stringValue, let on = o["on"]?.stringValue else {
                throw FHIRError.invalid("The body is {\"done\": OBLIGATION_ID, \"on\": \"YYYY-MM-DD\", \"note\": ...}")
            }
            p = try await incidents.markDone(access, incident: id, obligation: done, on: on, note: o["note"]?.stringValue ?? "")
        } else {
            p = try await incidents.package(access, incident: id, "incident-obligations")
        }
        return AccountController.plain(.object([
            "incident": .string(p.incident.id), "result": .string(p.assessment.result.conclusion.rawValue),
            "obligations": .array(p.obligations.map { BreachResponse.obligationJSON($0, done: p.done[$0.id]) }),
        ]))
    }

    func report(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let p = try await incidents.package(try await access(req, ctx, "incident-report"), incident: ctx.parameters.get("id") ?? "", "incident-report")
        return AccountController.plain(BreachResponse.reportJSON(p))
    }
}
