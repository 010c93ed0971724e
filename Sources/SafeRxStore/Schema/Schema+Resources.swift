import SafeRxSQL

extension Schema {
    /// Resources: versions (ciphertext bodies), compartments, blind search terms, partner ownership and party, Rx and record numbers.
    enum Resources {
        /// Migration `v1`.
        static func v1(_ db: any SQLConnection) throws {
            try db.execute(sql: """
                CREATE TABLE tenant (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL
                );
                CREATE TABLE resource_version (
                    pk INTEGER PRIMARY KEY,
                    tenant TEXT NOT NULL,
                    type TEXT NOT NULL,
                    id TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    current INTEGER NOT NULL,
                    deleted INTEGER NOT NULL,
                    last_updated TEXT NOT NULL,
                    body BLOB,
                    UNIQUE (type, id, version)
                );
                CREATE INDEX resource_current ON resource_version (tenant, type, current, pk);
                CREATE TABLE resource_patient (
                    pk INTEGER NOT NULL,
                    patient_id TEXT NOT NULL,
                    PRIMARY KEY (pk, patient_id)
                ) WITHOUT ROWID;
                CREATE INDEX resource_patient_by_patient ON resource_patient (patient_id, pk);
                CREATE TABLE search_index (
                    pk INTEGER NOT NULL,
                    param TEXT NOT NULL,
                    value TEXT NOT NULL
                );
                CREATE INDEX search_index_lookup ON search_index (param, value, pk);
                CREATE INDEX search_index_pk ON search_index (pk);
                CREATE TABLE patient_owner (
                    tenant TEXT NOT NULL,
                    patient_id TEXT NOT NULL,
                    partner TEXT NOT NULL,
                    PRIMARY KEY (tenant, patient_id)
                ) WITHOUT ROWID;
                CREATE INDEX patient_owner_by_partner ON patient_owner (partner, patient_id);
                """)
        }

        /// Migration `v3-lookup-index`.
        static func v3(_ db: any SQLConnection) throws {
            try db.execute(sql: "CREATE INDEX resource_lookup ON resource_version (type, id, tenant, current)")
        }

        /// Migration `v9-rx-numbers`.
        static func v9(_ db: any SQLConnection) throws {
            try db.execute(sql: """
                CREATE TABLE rx_number (
                    tenant TEXT PRIMARY KEY,
                    next INTEGER NOT NULL
                );
                """)
        }

        /// Migration `v13-resource-party`.
        static func v13(_ db: any SQLConnection) throws {
            try db.execute(sql: """
                CREATE TABLE resource_party (
                    party TEXT NOT NULL,
                    tenant TEXT NOT NULL,
                    type TEXT NOT NULL,
                    id TEXT NOT NULL,
                    PRIMARY KEY (party, tenant, type, id)
                ) WITHOUT ROWID;
                CREATE INDEX resource_party_by_resource ON resource_party (tenant, type, id);
                CREATE TABLE pharmacy_counter (
                    tenant TEXT NOT NULL,
                    name TEXT NOT NULL,
                    next INTEGER NOT NULL,
                    PRIMARY KEY (tenant, name)
                ) WITHOUT ROWID;
                INSERT OR IGNORE INTO resource_party (party, tenant, type, id)
                    SELECT json_extract(body, '$.entry.actor.id'), tenant, json_extract(body, '$.entry.resourceType'),
                           json_extract(body, '$.entry.resourceID')
                    FROM audit_log
                    WHERE json_extract(body, '$.entry.actor.role') = 'partner' AND json_extract(body, '$.entry.action') = 'create'
                      AND json_extract(body, '$.entry.outcome') = 'success'
                      AND json_extract(body, '$.entry.resourceType') IN ('MedicationRequest', 'MedicationDispense', 'Communication')
                      AND json_extract(body, '$.entry.resourceID') IS NOT NULL;
                """)
        }
    }
}
