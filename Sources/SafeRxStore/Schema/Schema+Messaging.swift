import SafeRxSQL

extension Schema {
    /// Read marks and staff assignment of message threads.
    enum Messaging {
        /// Migration `v8-accounts-caregivers-messaging`.
        static func v8(_ db: any SQLConnection) throws {
            try db.execute(sql: """
                CREATE TABLE message_read (
                    user_id TEXT NOT NULL,
                    tenant TEXT NOT NULL,
                    communication_id TEXT NOT NULL,
                    read_at REAL NOT NULL,
                    PRIMARY KEY (user_id, tenant, communication_id)
                ) WITHOUT ROWID;
                CREATE TABLE thread_assignment (
                    tenant TEXT NOT NULL,
                    thread_id TEXT NOT NULL,
                    assignee TEXT NOT NULL,
                    assigned_by TEXT NOT NULL,
                    assigned_at REAL NOT NULL,
                    PRIMARY KEY (tenant, thread_id)
                ) WITHOUT ROWID;
                """)
        }
    }
}
