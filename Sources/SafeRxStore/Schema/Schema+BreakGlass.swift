import SafeRxSQL

extension Schema {
    /// Break-glass overrides.
    enum BreakGlass {
        /// Migration `v5-break-glass`.
        static func v5(_ db: any SQLConnection) throws {
            try db.execute(sql: """
                CREATE TABLE break_glass (
                    id TEXT PRIMARY KEY,
                    tenant TEXT NOT NULL,
                    user_id TEXT NOT NULL,
                    role TEXT NOT NULL,
                    patient_id TEXT NOT NULL,
                    granted TEXT NOT NULL,
                    expires TEXT NOT NULL,
                    audit_seq INTEGER NOT NULL
                );
                CREATE INDEX break_glass_by_user ON break_glass (user_id, tenant, expires);
                CREATE INDEX break_glass_by_day ON break_glass (tenant, granted);
                """)
        }
    }
}
