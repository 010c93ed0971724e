import SafeRxSQL

extension Schema {
    /// Fill events (four-eyes) and fulfillment: vendors, exported files and the fills each file sent.
    enum Fills {
        /// Migration `v6-workflows`.
        static func v6(_ db: any SQLConnection) throws {
            try db.execute(sql: """
                CREATE TABLE fill_event (
                    seq INTEGER PRIMARY KEY,
                    tenant TEXT NOT NULL,
                    dispense_id TEXT NOT NULL,
                    from_state TEXT NOT NULL,
                    to_state TEXT NOT NULL,
                    actor_id TEXT NOT NULL,
                    actor_role TEXT NOT NULL,
                    reason TEXT,
                    at TEXT NOT NULL
                );
                CREATE INDEX fill_event_by_dispense ON fill_event (tenant, dispense_id, seq);
                """)
        }

        /// Migration `v7-fulfillment`.
        static func v7(_ db: any SQLConnection) throws {
            try db.execute(sql: """
                CREATE TABLE fulfillment_vendor (
                    id TEXT PRIMARY KEY,
                    tenant TEXT NOT NULL,
                    name TEXT NOT NULL,
                    public_key BLOB NOT NULL,
                    created TEXT NOT NULL
                );
                CREATE TABLE fulfillment_file (
                    sha256 TEXT PRIMARY KEY,
                    vendor TEXT NOT NULL,
                    tenant TEXT NOT NULL,
                    day TEXT NOT NULL,
                    rows INTEGER NOT NULL,
                    created TEXT NOT NULL,
                    audit_seq INTEGER NOT NULL
                );
                """)
        }

        /// Migration `v13-resource-party`.
        static func v13(_ db: any SQLConnection) throws {
            try db.execute(sql: """
                CREATE TABLE fulfillment_row (
                    tenant TEXT NOT NULL,
                    dispense_id TEXT NOT NULL,
                    sha256 TEXT NOT NULL,
                    PRIMARY KEY (tenant, dispense_id)
                ) WITHOUT ROWID;
                """)
        }
    }
}
