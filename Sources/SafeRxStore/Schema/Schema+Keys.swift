import SafeRxSQL

extension Schema {
    /// The key hierarchy: wrapped tenant, patient and service keys, erasure tombstones.
    enum Keys {
        /// Migration `v2-envelope-keys`.
        static func v2(_ db: any SQLConnection) throws {
            try db.execute(sql: """
                CREATE TABLE keyring_meta (
                    name TEXT PRIMARY KEY,
                    value TEXT NOT NULL
                );
                CREATE TABLE tenant_key (
                    tenant TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    wrapped BLOB NOT NULL,
                    master_key_id TEXT NOT NULL,
                    active INTEGER NOT NULL,
                    created TEXT NOT NULL,
                    PRIMARY KEY (tenant, version)
                ) WITHOUT ROWID;
                CREATE TABLE data_key (
                    tenant TEXT NOT NULL,
                    owner TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    wrapped BLOB NOT NULL,
                    tenant_key_version INTEGER NOT NULL,
                    active INTEGER NOT NULL,
                    created TEXT NOT NULL,
                    PRIMARY KEY (tenant, owner, version)
                ) WITHOUT ROWID;
                CREATE TABLE service_key (
                    name TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    wrapped BLOB NOT NULL,
                    master_key_id TEXT NOT NULL,
                    active INTEGER NOT NULL,
                    created TEXT NOT NULL,
                    PRIMARY KEY (name, version)
                ) WITHOUT ROWID;
                CREATE TABLE erasure (
                    tenant TEXT NOT NULL,
                    patient_id TEXT NOT NULL,
                    erased_at TEXT NOT NULL,
                    legal_override INTEGER NOT NULL,
                    PRIMARY KEY (tenant, patient_id)
                ) WITHOUT ROWID;
                ALTER TABLE resource_version ADD COLUMN key_owner TEXT NOT NULL DEFAULT '';
                ALTER TABLE resource_version ADD COLUMN key_version INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE resource_version ADD COLUMN erased INTEGER NOT NULL DEFAULT 0;
                CREATE INDEX resource_key ON resource_version (tenant, key_owner, key_version);
                ALTER TABLE user_account ADD COLUMN key_owner TEXT NOT NULL DEFAULT '';
                """)
        }
    }
}
