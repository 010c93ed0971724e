import SafeRxModel
import SafeRxPolicy
import SafeRxStore
import SafeRxStoreCore

/// Partners' webhook deliveries: a partner client sees and replays its own events; the pharmacy's staff see every
/// partner's events of their pharmacy. Events carry ids and statuses only.
public struct PartnerService: Sendable {
    let store: PharmacyStore
    let access: AccessService

    /// The calling partner client's events, newest first (audited).
    /// - throws: `FHIRError` of kind `forbidden` unless the caller is a partner client.
    public func events(_ ctx: AccessContext, state: WebhookEvent.State?) async throws(FHIRError) -> [WebhookEvent] {
        try await access.require(ctx, [.partner], interaction: "webhooks", "Webhook deliveries are for partner clients")
        let events = try await store.webhookEvents(clientID: ctx.scope.principal.subject, tenant: ctx.scope.tenant, state: state)
        try await access.record(ctx, "webhooks", detail: "\(events.count) events listed")
        return events
    }

    /// Queues one of the calling partner's events again for delivery.
    /// - throws: `FHIRError` of kind `notFound` for an event that is not the caller's.
    public func replay(_ ctx: AccessContext, event id: String) async throws(FHIRError) {
        try await access.require(ctx, [.partner], interaction: "webhook-replay", "Webhook deliveries are for partner clients")
        guard try await store.replayWebhook(id: id, clientID: ctx.scope.principal.subject) else {
            throw FHIRError(kind: .notFound, code: "not-found", diagnostics: "No webhook event '\(String(id.prefix(60)))' for this client")
        }
        try await access.record(ctx, "webhook-replay", detail: "replay \(id)")
    }

    /// Every partner's events of the caller's pharmacy, newest first, for the pharmacy's staff (audited).
    public func pharmacyEvents(_ ctx: AccessContext, state: WebhookEvent.State?, limit: Int = 200) async throws(FHIRError) -> [WebhookEvent] {
        try await access.require(ctx, [.pharmacist, .technician], interaction: "webhooks", "Partner webhooks are for the pharmacy's staff")
        let events = try await store.webhookEvents(clientID: nil, tenant: ctx.scope.tenant, state: state, limit: limit)
        try await access.record(ctx, "webhooks", detail: "\(events.count) events listed")
        return events
    }
}
