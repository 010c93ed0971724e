import Foundation
import SafeRxSQL
import SafeRxAudit
import SafeRxModel
import SafeRxStoreCore

/// The outbox tables: `notification` (recipient and body sealed under the patient's key, or the pharmacy's for a
/// notice to staff; delivered by ``SafeRxPharmacy/NotificationDispatcher``) and `webhook_event` (partner and
/// security webhooks; delivered by ``SafeRxPharmacy/WebhookDispatcher``).
///
/// The only code that inserts into either table: the gate's writes (a new message, a fill's move) and the detector's
/// alerts queue through it. Every method takes the database of the caller's transaction, so a message exists exactly
/// when the change it announces does.
struct Outbox {
    let keys: KeyRing
    let clock: PharmacyClock

    /// Queues a notification.
    ///
    /// - parameter owner: the patient whose key seals recipient and body (`""`: the pharmacy's key, for staff).
    /// - parameter channel: `email` or `sms`.
    /// - returns: the notification's id.
    /// - throws: when the key ring cannot seal or the row cannot be written.
    @discardableResult
    func notification(
        _ db: any SQLConnection, tenant: String, owner: String, channel: String, address: String, kind: OutgoingNotification.Kind,
        subject: String, body: String
    ) throws -> String {
        let id = UUID().uuidString.lowercased()
        let (recipient, _) = try keys.seal(db, tenant: tenant, owner: owner, Data(address.utf8), context: "notification/\(id)/to")
        let payload = JSON.object(["subject": .string(subject), "body": .string(body)]).encoded()
        let (sealed, _) = try keys.seal(db, tenant: tenant, owner: owner, payload, context: "notification/\(id)/body")
        try db.execute(
            sql: """
                INSERT INTO notification (id, tenant, key_owner, channel, recipient_enc, kind, body_enc, created, state)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending')
                """,
            arguments: [id, tenant, owner, channel, recipient, kind.rawValue, sealed, clock.now.timeIntervalSince1970])
        return id
    }

    /// Queues a webhook event for `client`, due at once. Payloads carry ids and states, never PHI.
    ///
    /// - returns: the event's id (`evt_…`, also the payload's `id`).
    /// - throws: when the row cannot be written.
    @discardableResult
    func webhookEvent(_ db: any SQLConnection, tenant: String, client: String, type: String, data: [String: JSON]) throws -> String {
        let id = "evt_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let now = clock.now
        let payload = JSON.object([
            "id": .string(id), "type": .string(type), "created": .string(AuditLog.timestamp(now)), "data": .object(data),
        ])
        try db.execute(
            sql: """
                INSERT INTO webhook_event (id, tenant, client_id, type, payload, created, state, attempts, next_attempt)
                VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?)
                """,
            arguments: [id, tenant, client, type, payload.encoded(), now.timeIntervalSince1970, now.timeIntervalSince1970])
        return id
    }
}
