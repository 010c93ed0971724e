import SafeRxSQL

extension Schema {
    /// The detector's alerts, suspensions and sealed honeytoken ids.
    enum Detection {
        /// Migration `v10-detection`.
        static func v10(_ db: any SQLConnection) throws {
            try db.execute(sql: """
                CREATE TABLE security_alert (
                    id TEXT PRIMARY KEY,
                    tenant TEXT NOT NULL,
                    rule TEXT NOT NULL,
                    severity TEXT NOT NULL,
                    actor TEXT NOT NULL,
                    role TEXT NOT NULL,
                    summary TEXT NOT NULL,
                    description TEXT NOT NULL,
                    created REAL NOT NULL,
                    updated REAL NOT NULL,
                    evidence TEXT NOT NULL,
                    patients TEXT NOT NULL,
                    contained INTEGER NOT NULL,
                    blocked INTEGER NOT NULL,
                    lag_ms REAL NOT NULL,
                    acked_at REAL,
                    acked_by TEXT,
                    ack_note TEXT
                );
                CREATE INDEX security_alert_open ON security_alert (rule, actor, acked_at);
                CREATE INDEX security_alert_created ON security_alert (created);
                CREATE TABLE actor_suspension (
                    actor_id TEXT NOT NULL,
                    tenant TEXT NOT NULL,
                    alert_id TEXT NOT NULL,
                    at REAL NOT NULL,
                    reason TEXT NOT NULL,
                    reinstated_at REAL,
                    reinstated_by TEXT,
                    reinstate_reason TEXT
                );
                CREATE INDEX actor_suspension_actor ON actor_suspension (actor_id, reinstated_at);
                CREATE TABLE honeytoken (
                    token_id TEXT PRIMARY KEY,
                    tenant TEXT NOT NULL,
                    id_enc BLOB NOT NULL,
                    created REAL NOT NULL
                );
                """)
        }
    }
}
