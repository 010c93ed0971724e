import SafeRxSQL

extension Schema {
    /// Caregiver grants.
    enum Caregivers {
        /// Migration `v8-accounts-caregivers-messaging`.
        static func v8(_ db: any SQLConnection) throws {
            try db.execute(sql: """
                CREATE TABLE caregiver_grant (
                    id TEXT PRIMARY KEY,
                    tenant TEXT NOT NULL,
                    patient_id TEXT NOT NULL,
                    caregiver_user_id TEXT NOT NULL,
                    access TEXT NOT NULL,
                    expires REAL NOT NULL,
                    created REAL NOT NULL,
                    granted_by TEXT NOT NULL,
                    revoked_at REAL
                );
                CREATE INDEX caregiver_by_caregiver ON caregiver_grant (caregiver_user_id, patient_id);
                CREATE INDEX caregiver_by_patient ON caregiver_grant (tenant, patient_id);
                """)
        }
    }
}
