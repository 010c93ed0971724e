import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStore

/// `/partner/webhooks`: a partner's webhook deliveries (ids, types, states; never payload PHI, which they do not
/// carry anyway) and replay of one event.
struct PartnerController: Sendable {
    let fhir: FHIRController

    func register(on router: Router<SafeRxContext>) {
        router.get("/partner/webhooks") { req, ctx in try await self.list(req, ctx) }
        router.post("/partner/webhooks/:event/replay") { req, ctx in try await self.replay(req, ctx) }
    }

    func partner(_ req: Request, _ ctx: SafeRxContext, _ interaction: String) async throws -> AccessContext {
        let access = try await fhir.access(req, ctx, interaction: interaction, type: nil)
        guard access.scope.role == .partner else {
            throw await fhir.store.deny(access, interaction: interaction, type: nil, id: nil, error: .forbidden("Webhook deliveries are for partner clients"))
        }
        return access
    }

    func list(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let access = try await partner(req, ctx, "webhooks")
        var state: WebhookEvent.State? = nil
        for (k, v) in try fhir.queryItems(req) {
            guard k == "state", let s = WebhookEvent.State(rawValue: v) else {
                throw FHIRError.invalid("Unknown parameter '\(String(k.prefix(20)))=\(String(v.prefix(20)))'; use state=pending|delivered|dead")
            }
            state = s
        }
        let events = try await fhir.store.webhookEvents(clientID: access.scope.principal.subject, state: state)
        try await record(access, "webhooks", detail: "\(events.count) events listed")
        return json(.object(["events": .array(events.map(Self.describe))]))
    }

    func replay(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let access = try await partner(req, ctx, "webhook-replay")
        let id = ctx.parameters.get("event") ?? ""
        guard try await fhir.store.replayWebhook(id: id, clientID: access.scope.principal.subject) else {
            throw FHIRError(kind: .notFound, code: "not-found", diagnostics: "No webhook event '\(String(id.prefix(60)))' for this client")
        }
        try await record(access, "webhook-replay", detail: "replay \(id)")
        return json(.object(["id": .string(id), "state": "pending"]), status: .accepted)
    }

    func record(_ access: AccessContext, _ action: String, detail: String) async throws {
        let p = access.scope.principal
        try await fhir.store.recordEvent(
            AuditEntry(
                actor: .init(id: p.subject, role: p.roleName, tenant: p.tenant), action: action, outcome: "success", status: 200,
                purpose: p.purpose.rawValue, sourceIP: access.sourceIP, userAgent: access.userAgent, requestID: access.requestID, detail: detail))
    }

    static func describe(_ e: WebhookEvent) -> JSON {
        var o: [String: JSON] = [
            "id": .string(e.id), "type": .string(e.type), "created": .string(AuditLog.timestamp(e.created)), "state": .string(e.state.rawValue),
            "attempts": .int(Int64(e.attempts)),
        ]
        if e.state == .pending { o["nextAttempt"] = .string(AuditLog.timestamp(e.nextAttempt)) }
        if let s = e.lastStatus { o["lastStatus"] = .int(Int64(s)) }
        if let err = e.lastError { o["lastError"] = .string(err) }
        if let d = e.delivered { o["delivered"] = .string(AuditLog.timestamp(d)) }
        return .object(o)
    }

    func json(_ value: JSON, status: HTTPResponse.Status = .ok) -> Response {
        var h = HTTPFields()
        h[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: value.encoded())))
    }
}
