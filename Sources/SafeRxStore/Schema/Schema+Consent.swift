import SafeRxSQL

extension Schema {
    /// Patients' authorizations to disclose to partners, per purpose and element.
    enum Consent {
        /// Migration `v4-consent-grants`.
        static func v4(_ db: any SQLConnection) throws {
            try db.execute(sql: """
                CREATE TABLE consent_grant (
                    tenant TEXT NOT NULL,
                    consent_id TEXT NOT NULL,
                    patient_id TEXT NOT NULL,
                    client_id TEXT NOT NULL,
                    purpose TEXT NOT NULL,
                    elements TEXT NOT NULL,
                    expires TEXT NOT NULL,
                    starts TEXT NOT NULL DEFAULT ''
                );
                CREATE INDEX consent_grant_by_client ON consent_grant (client_id, purpose, tenant, patient_id);
                CREATE INDEX consent_grant_by_consent ON consent_grant (tenant, consent_id);
                """)
        }

        /// Migration `v14-consent-history`.
        static func v14(_ db: any SQLConnection) throws {
            try db.execute(sql: """
                ALTER TABLE consent_grant ADD COLUMN began TEXT NOT NULL DEFAULT '';
                ALTER TABLE consent_grant ADD COLUMN ended TEXT NOT NULL DEFAULT '';
                """)
        }
    }
}
