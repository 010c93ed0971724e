import Foundation
import SafeRxSQL
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStoreCore
import SafeRxVault

extension PharmacyStore {
    /// Registers (or replaces) a partner client's webhook endpoint and returns its new signing secret. The URL must
    /// be https, or http on a loopback address (for development); the secret is sealed at rest.
    package func registerWebhook(_ ctx: AccessContext, clientID: String, url: String, tenant securityTenant: String? = nil) async throws(FHIRError) -> String {
        let tenant: String
        if clientID == Self.securityWebhookClient {
            // The security endpoint: alert notices, not partner events.
            tenant = securityTenant ?? "demo-pharmacy"
        } else {
            guard let client = try await client(id: clientID), client.role == Role.partner.rawValue else {
                throw .invalid("'\(String(clientID.prefix(40)))' is not a partner client")
            }
            tenant = client.tenant
        }
        guard let u = URL(string: url), let scheme = u.scheme?.lowercased(), let host = u.host, !host.isEmpty else {
            throw .invalid("'\(String(url.prefix(80)))' is not an absolute URL")
        }
        let loopback = ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host.lowercased())
        guard scheme == "https" || (scheme == "http" && loopback) else {
            throw .invalid("Webhook URLs must use https (plain http only to a loopback address, for development)")
        }
        let secret = "whsec_" + RandomSecret.urlSafe(bytes: 32)
        try await write(ctx) { [self] tx in
            let (sealed, _) = try keys.seal(tx.db, tenant: tenant, owner: "", Data(secret.utf8), context: "webhook/\(clientID)")
            try tx.db.execute(
                sql: "INSERT INTO webhook_endpoint (client_id, tenant, url, secret_enc, created) VALUES (?, ?, ?, ?, ?) ON CONFLICT (client_id) DO UPDATE SET tenant = excluded.tenant, url = excluded.url, secret_enc = excluded.secret_enc, created = excluded.created",
                arguments: [clientID, tenant, url, sealed, self.timestamp()])
            try tx.record("webhook-register", tenant: tenant, detail: "client \(clientID) -> \(url)")
        }
        return secret
    }

    /// The endpoint of a partner client, with its secret (for the dispatcher).
    package func webhookEndpoint(clientID: String) async throws(FHIRError) -> WebhookEndpoint? {
        try await run { [self] db in
            guard let row = try SQLRow.fetchOne(db, sql: "SELECT * FROM webhook_endpoint WHERE client_id = ?", arguments: [clientID]) else { return nil }
            let tenant: String = row["tenant"]
            let secret = try keys.open(db, tenant: tenant, owner: "", row["secret_enc"], context: "webhook/\(clientID)")
            return WebhookEndpoint(clientID: clientID, tenant: tenant, url: row["url"], secret: String(decoding: secret, as: UTF8.self))
        }
    }

    /// Adds an event to the outbox if the patient belongs to a partner with a registered endpoint. Runs inside the
    /// transaction that made the change, so an event exists exactly when the change does.
    func enqueueWebhook(_ db: any SQLConnection, tenant: String, patient: String, type: String, data: [String: JSON]) throws {
        guard let client = try String.fetchOne(
            db, sql: """
                SELECT po.partner FROM patient_owner po JOIN webhook_endpoint we ON we.client_id = po.partner
                WHERE po.tenant = ? AND po.patient_id = ?
                """, arguments: [tenant, patient])
        else { return }
        try outbox.webhookEvent(db, tenant: tenant, client: client, type: type, data: data)
    }

    /// How long a delivery claimed by one server is left to it before another may try it (its process died).
    package static let deliveryLease: TimeInterval = 60

    /// Claims the pending events whose next attempt is due, oldest first, for this process's delivery: their next
    /// attempt moves `deliveryLease` ahead, so that another SafeRx server polling the same database does not send
    /// them too. The attempt's outcome
    /// (``recordWebhookAttempt(id:status:error:policy:now:)``) sets the real next attempt; if this process dies
    /// first, the event is due again when the lease ends (delivery is once in normal operation, at least once
    /// across a crash: receivers deduplicate by `SafeRx-Event-Id`).
    package func claimDueWebhooks(now: Date? = nil, limit: Int = 50) async throws(FHIRError) -> [WebhookEvent] {
        let now = now ?? self.clock.now
        return try await runWrite { db in
            let due = try SQLRow.fetchAll(
                db, sql: "SELECT * FROM webhook_event WHERE state = 'pending' AND next_attempt <= ? ORDER BY next_attempt LIMIT ?",
                arguments: [now.timeIntervalSince1970, limit]
            ).map(Self.webhookEvent)
            // The claim is the conditional update, not the select: under PostgreSQL's read committed, a second
            // server's update of the same row waits for the first to commit, re-reads the row and then no longer
            // matches, so exactly one server owns each event.
            return try due.filter { event in
                try db.execute(
                    sql: "UPDATE webhook_event SET next_attempt = ? WHERE id = ? AND state = 'pending' AND next_attempt <= ?",
                    arguments: [now.timeIntervalSince1970 + Self.deliveryLease, event.id, now.timeIntervalSince1970])
                return db.changesCount == 1
            }
        }
    }

    /// Records one delivery attempt: delivered on a 2xx, else retried per `policy` or dead-lettered once the event
    /// is older than `policy.maxAge` and was tried `policy.minAttempts` times.
    package func recordWebhookAttempt(
        id: String, status: Int?, error: String?, policy: WebhookRetryPolicy, now: Date? = nil
    ) async throws(FHIRError) -> WebhookEvent.State {
        let now = now ?? self.clock.now
        return try await runWrite { db in
            guard let row = try SQLRow.fetchOne(db, sql: "SELECT created, attempts FROM webhook_event WHERE id = ?", arguments: [id]) else {
                return .dead
            }
            let attempts: Int = row["attempts"] + 1
            let created: Double = row["created"]
            let ok = status.map { (200..<300).contains($0) } ?? false
            let next = now.addingTimeInterval(policy.delay(afterFailures: attempts))
            let expired = next.timeIntervalSince1970 - created > policy.maxAge && attempts >= policy.minAttempts
            let state: WebhookEvent.State = ok ? .delivered : (expired ? .dead : .pending)
            try db.execute(
                sql: """
                    UPDATE webhook_event SET attempts = ?, state = ?, next_attempt = ?, last_status = ?, last_error = ?, delivered = ?
                    WHERE id = ?
                    """,
                arguments: [attempts, state.rawValue, next.timeIntervalSince1970, status, error.map { String($0.prefix(200)) },
                            ok ? now.timeIntervalSince1970 : nil, id])
            return state
        }
    }

    /// A partner's events, newest first (`GET /partner/webhooks`), or every client's for an operator (`clientID` nil),
    /// optionally of one pharmacy only.
    package func webhookEvents(clientID: String?, tenant: String? = nil, state: WebhookEvent.State? = nil, limit: Int = 100) async throws(FHIRError) -> [WebhookEvent] {
        try await run { db in
            var sql = "SELECT * FROM webhook_event WHERE TRUE"
            var args: [any SQLValueConvertible] = []
            if let clientID { sql += " AND client_id = ?"; args.append(clientID) }
            if let tenant { sql += " AND tenant = ?"; args.append(tenant) }
            if let state { sql += " AND state = ?"; args.append(state.rawValue) }
            sql += " ORDER BY created DESC, id LIMIT ?"
            args.append(limit)
            return try SQLRow.fetchAll(db, sql: sql, arguments: SQLArguments(args)).map(Self.webhookEvent)
        }
    }

    /// Queues an event again for immediate delivery (a partner's replay, or an operator's for a dead-lettered one).
    /// Returns false if the event does not exist or belongs to another client.
    package func replayWebhook(id: String, clientID: String?) async throws(FHIRError) -> Bool {
        try await runWrite { db in
            var sql = "UPDATE webhook_event SET state = 'pending', next_attempt = ?, created = ? WHERE id = ?"
            var args: [any SQLValueConvertible] = [self.clock.now.timeIntervalSince1970, self.clock.now.timeIntervalSince1970, id]
            if let clientID { sql += " AND client_id = ?"; args.append(clientID) }
            try db.execute(sql: sql, arguments: SQLArguments(args))
            return db.changesCount > 0
        }
    }

    static func webhookEvent(_ row: SQLRow) -> WebhookEvent {
        WebhookEvent(
            id: row["id"], tenant: row["tenant"], clientID: row["client_id"], type: row["type"], payload: row["payload"],
            created: Date(timeIntervalSince1970: row["created"]), state: WebhookEvent.State(rawValue: row["state"]) ?? .dead,
            attempts: row["attempts"], nextAttempt: Date(timeIntervalSince1970: row["next_attempt"]), lastStatus: row["last_status"],
            lastError: row["last_error"], delivered: (row["delivered"] as Double?).map { Date(timeIntervalSince1970: $0) })
    }
}
