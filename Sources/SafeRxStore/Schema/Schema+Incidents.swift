import SafeRxSQL

extension Schema {
    /// Breach incidents: declarations, judgements, obligations done, per-patient residence and letter contact, and the audit indexes breach scope uses.
    enum Incidents {
        /// Migration `v11-incidents`.
        static func v11(_ db: any SQLConnection) throws {
            try db.execute(sql: """
                CREATE TABLE incident (
                    id TEXT PRIMARY KEY,
                    tenant TEXT NOT NULL,
                    discovered TEXT NOT NULL,
                    declared REAL NOT NULL,
                    declared_by TEXT NOT NULL,
                    spec TEXT NOT NULL
                );
                CREATE TABLE incident_judgement (
                    incident_id TEXT NOT NULL,
                    question TEXT NOT NULL,
                    text TEXT NOT NULL,
                    by TEXT NOT NULL,
                    at TEXT NOT NULL,
                    retain_until TEXT NOT NULL
                );
                CREATE TRIGGER incident_judgement_append_only BEFORE UPDATE ON incident_judgement
                    BEGIN SELECT RAISE(ABORT, 'assessment records are kept unchanged'); END;
                CREATE TRIGGER incident_judgement_no_delete BEFORE DELETE ON incident_judgement
                    BEGIN SELECT RAISE(ABORT, 'assessment records are kept for six years'); END;
                CREATE TABLE obligation_done (
                    incident_id TEXT NOT NULL,
                    obligation_id TEXT NOT NULL,
                    done_on TEXT NOT NULL,
                    by TEXT NOT NULL,
                    note TEXT NOT NULL,
                    PRIMARY KEY (incident_id, obligation_id)
                ) WITHOUT ROWID;
                CREATE TABLE patient_meta (
                    tenant TEXT NOT NULL,
                    patient_id TEXT NOT NULL,
                    state TEXT NOT NULL,
                    has_postal INTEGER NOT NULL,
                    has_email INTEGER NOT NULL,
                    has_ssn INTEGER NOT NULL,
                    PRIMARY KEY (tenant, patient_id)
                ) WITHOUT ROWID;
                CREATE INDEX audit_time ON audit_log (time);
                CREATE INDEX audit_patient_seq ON audit_patient (seq);
                CREATE INDEX audit_actor ON audit_log (json_extract(body, '$.entry.actor.id'), time);
                """)
        }

        /// Migration `v12-patient-contact`.
        static func v12(_ db: any SQLConnection) throws {
            try db.execute(sql: """
                ALTER TABLE patient_meta ADD COLUMN contact BLOB;
                ALTER TABLE patient_meta ADD COLUMN contact_key_version INTEGER;
                """)
        }
    }
}
