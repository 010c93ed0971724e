import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SafeRxModel
import SafeRxPharmacy
import SafeRxPolicy
import SafeRxStoreCore

/// `/partner/webhooks`: a partner's webhook deliveries (ids, types, states; never payload PHI, which they do not
/// carry anyway) and replay of one event.
struct PartnerController: Sendable {
    let fhir: FHIRController

    func register(on router: Router<SafeRxContext>) {
        router.get("/partner/webhooks") { req, ctx in try await self.list(req, ctx) }
        router.post("/partner/webhooks/:event/replay") { req, ctx in try await self.replay(req, ctx) }
    }

    func list(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let access = try await fhir.access(req, ctx, interaction: "webhooks", type: nil)
        var state: WebhookEvent.State? = nil
        for (k, v) in try fhir.queryItems(req) {
            guard k == "state", let s = WebhookEvent.State(rawValue: v) else {
                throw FHIRError.invalid("Unknown parameter '\(String(k.prefix(20)))=\(String(v.prefix(20)))'; use state=pending|delivered|dead")
            }
            state = s
        }
        let events = try await fhir.pharmacy.partners.events(access, state: state)
        return json(.object(["events": .array(events.map(Self.describe))]))
    }

    func replay(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let access = try await fhir.access(req, ctx, interaction: "webhook-replay", type: nil)
        let id = ctx.parameters.get("event") ?? ""
        try await fhir.pharmacy.partners.replay(access, event: id)
        return json(.object(["id": .string(id), "state": "pending"]), status: .accepted)
    }

    static func describe(_ e: WebhookEvent) -> JSON {
        var o: [String: JSON] = [
            "id": .string(e.id), "type": .string(e.type), "created": .string(Instant.string(e.created)), "state": .string(e.state.rawValue),
            "attempts": .int(Int64(e.attempts)),
        ]
        if e.state == .pending { o["nextAttempt"] = .string(Instant.string(e.nextAttempt)) }
        if let s = e.lastStatus { o["lastStatus"] = .int(Int64(s)) }
        if let err = e.lastError { o["lastError"] = .string(err) }
        if let d = e.delivered { o["delivered"] = .string(Instant.string(d)) }
        return .object(o)
    }

    func json(_ value: JSON, status: HTTPResponse.Status = .ok) -> Response {
        var h = HTTPFields()
        h[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: value.encoded())))
    }
}
