import SafeRxSQL

extension Schema {
    /// Idempotency keys of partners' retried writes.
    enum Idempotency {
        /// Migration `v6-workflows`.
        static func v6(_ db: any SQLConnection) throws {
            try db.execute(sql: """
                CREATE TABLE idempotency_key (
                    tenant TEXT NOT NULL,
                    actor TEXT NOT NULL,
                    key TEXT NOT NULL,
                    request_hash TEXT NOT NULL,
                    state TEXT NOT NULL,
                    status INTEGER,
                    result_type TEXT,
                    result_id TEXT,
                    result_version INTEGER,
                    result_body BLOB,
                    created REAL NOT NULL,
                    PRIMARY KEY (tenant, actor, key)
                ) WITHOUT ROWID;
                CREATE INDEX idempotency_by_age ON idempotency_key (created);
                """)
        }
    }
}
