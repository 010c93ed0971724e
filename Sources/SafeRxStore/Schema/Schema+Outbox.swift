import SafeRxSQL

extension Schema {
    /// The outbox: webhook endpoints and events, notifications.
    enum Outbox {
        /// Migration `v6-workflows`.
        static func v6(_ db: any SQLConnection) throws {
            try db.execute(sql: """
                CREATE TABLE webhook_endpoint (
                    client_id TEXT PRIMARY KEY,
                    tenant TEXT NOT NULL,
                    url TEXT NOT NULL,
                    secret_enc BLOB NOT NULL,
                    created TEXT NOT NULL
                );
                CREATE TABLE webhook_event (
                    id TEXT PRIMARY KEY,
                    tenant TEXT NOT NULL,
                    client_id TEXT NOT NULL,
                    type TEXT NOT NULL,
                    payload BLOB NOT NULL,
                    created REAL NOT NULL,
                    state TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt REAL NOT NULL,
                    last_status INTEGER,
                    last_error TEXT,
                    delivered REAL
                );
                CREATE INDEX webhook_due ON webhook_event (state, next_attempt);
                CREATE INDEX webhook_by_client ON webhook_event (client_id, created);
                """)
        }

        /// Migration `v8-accounts-caregivers-messaging`.
        static func v8(_ db: any SQLConnection) throws {
            try db.execute(sql: """
                CREATE TABLE notification (
                    id TEXT PRIMARY KEY,
                    tenant TEXT NOT NULL,
                    key_owner TEXT NOT NULL,
                    channel TEXT NOT NULL,
                    recipient_enc BLOB NOT NULL,
                    kind TEXT NOT NULL,
                    body_enc BLOB NOT NULL,
                    created REAL NOT NULL,
                    state TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    sent_at REAL
                );
                CREATE INDEX notification_due ON notification (state, created);
                """)
        }
    }
}
