import Foundation
import SafeRxSQL
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStoreCore

/// The notification outbox: rows are written in the same transaction as the event they announce, with recipient and
/// body sealed under the patient's key; a sender (``SafeRxPharmacy/NotificationDispatcher``) delivers them.
extension PharmacyStore {
    /// The one writer of notifications and webhook events.
    var outbox: Outbox { Outbox(keys: keys, clock: clock) }

    /// The contact a patient record holds, preferring e-mail: (`email` or `sms`, address).
    func contact(_ db: any SQLConnection, tenant: String, patient: String) throws -> (channel: String, address: String)? {
        let record = try scopedRows(
            db, .system(reason: "notification contact", tenant: tenant), type: .patient, where: "v.id = ? AND v.current = 1 AND v.deleted = 0", [patient]
        ).first?.json
        let telecom = record?["telecom"]?.arrayValue ?? []
        if let email = telecom.first(where: { $0["system"]?.stringValue == "email" })?["value"]?.stringValue { return ("email", email) }
        if let phone = telecom.first(where: { $0["system"]?.stringValue == "phone" || $0["system"]?.stringValue == "sms" })?["value"]?.stringValue {
            return ("sms", phone)
        }
        return nil
    }

    /// Queues a notification to the contact on a patient's record; returns the channel used, or `nil` when the record
    /// has no contact.
    @discardableResult
    func enqueueNotification(
        _ db: any SQLConnection, tenant: String, patient: String, kind: OutgoingNotification.Kind, subject: String, body: String
    ) throws -> String? {
        guard let (channel, address) = try contact(db, tenant: tenant, patient: patient) else { return nil }
        try outbox.notification(db, tenant: tenant, owner: patient, channel: channel, address: address, kind: kind, subject: subject, body: body)
        return channel
    }

    /// Queues a notification outside another write (sign-up and reset codes).
    @discardableResult
    package func queueNotification(
        tenant: String, patient: String, kind: OutgoingNotification.Kind, subject: String, body: String
    ) async throws(FHIRError) -> String? {
        try await runWrite { [self] db in try enqueueNotification(db, tenant: tenant, patient: patient, kind: kind, subject: subject, body: body) }
    }

    /// Claims pending notifications for this process's sender, opened: they become `sending` with `sent_at` holding
    /// the end of the claim, so that another SafeRx server polling the same database does not send them too. A claim whose process died before
    /// ``finishNotification(id:sent:)`` is taken again once it ends (`PharmacyStore.deliveryLease`). The caller
    /// records who was notified.
    package func claimNotifications(limit: Int = 50) async throws(FHIRError) -> [OutgoingNotification] {
        let now = clock.now.timeIntervalSince1970
        return try await runWrite { [self] db in
            let rows = try SQLRow.fetchAll(
                db, sql: """
                    SELECT * FROM notification WHERE state = 'pending' OR (state = 'sending' AND sent_at <= ?) ORDER BY created LIMIT ?
                    """, arguments: [now, limit])
            // The conditional update is the claim (see ``claimDueWebhooks(now:limit:)``): a row another server
            // claimed since the select no longer matches.
            let claimed = try rows.filter { row in
                try db.execute(
                    sql: "UPDATE notification SET state = 'sending', sent_at = ? WHERE id = ? AND (state = 'pending' OR (state = 'sending' AND sent_at <= ?))",
                    arguments: [now + Self.deliveryLease, row["id"] as String, now])
                return db.changesCount == 1
            }
            return claimed.map { row in
                let id: String = row["id"], tenant: String = row["tenant"], owner: String = row["key_owner"]
                // A patient erased since: the seal no longer opens and the notification is dropped by the dispatcher.
                guard let to = try? keys.open(db, tenant: tenant, owner: owner, row["recipient_enc"], context: "notification/\(id)/to"),
                    let payload = try? keys.open(db, tenant: tenant, owner: owner, row["body_enc"], context: "notification/\(id)/body"),
                    let json = try? JSON.parse(payload), let kind = OutgoingNotification.Kind(rawValue: row["kind"])
                else {
                    return OutgoingNotification(
                        id: id, tenant: tenant, patientID: owner, channel: row["channel"], recipient: "", kind: .newMessage, subject: "", body: "")
                }
                return OutgoingNotification(
                    id: id, tenant: tenant, patientID: owner, channel: row["channel"], recipient: String(decoding: to, as: UTF8.self), kind: kind,
                    subject: json["subject"]?.stringValue ?? "", body: json["body"]?.stringValue ?? "")
            }
        }
    }

    /// Marks a notification sent (its sealed recipient and body are then removed) or failed.
    package func finishNotification(id: String, sent: Bool) async throws(FHIRError) {
        try await runWrite { db in
            if sent {
                try db.execute(
                    sql: "UPDATE notification SET state = 'sent', sent_at = ?, recipient_enc = ?, body_enc = ? WHERE id = ?",
                    arguments: [self.clock.now.timeIntervalSince1970, Data(), Data(), id])
            } else {
                try db.execute(
                    sql: "UPDATE notification SET attempts = attempts + 1, sent_at = NULL, state = CASE WHEN attempts + 1 >= 10 THEN 'failed' ELSE 'pending' END WHERE id = ?",
                    arguments: [id])
            }
        }
    }
}
