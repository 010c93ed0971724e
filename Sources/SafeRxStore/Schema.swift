import GRDB
import SafeRxAudit
import SafeRxStoreCore

/// The database schema, as GRDB migrations.
///
/// Resource bodies are stored only as ciphertext (`resource_version.body`), each under its patient's data key
/// (`key_owner`, `key_version`). Searchable PHI is stored only as blind index tokens (`search_index.value` for
/// sensitive parameters). Keys are stored only wrapped (`tenant_key`, `data_key`, `service_key`; see ``KeyRing``).
/// Patient ids, statuses, dates of last update and prescription authoring dates are stored in clear so that access
/// scopes and range searches compile to SQL.
enum Schema {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
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
                CREATE TABLE user_account (
                    id TEXT PRIMARY KEY,
                    username_index TEXT NOT NULL UNIQUE,
                    username_enc BLOB NOT NULL,
                    password_hash TEXT NOT NULL,
                    role TEXT NOT NULL,
                    tenant TEXT NOT NULL,
                    patient_id TEXT,
                    disabled INTEGER NOT NULL DEFAULT 0,
                    failed_attempts INTEGER NOT NULL DEFAULT 0,
                    locked_until REAL NOT NULL DEFAULT 0,
                    created TEXT NOT NULL
                );
                CREATE TABLE api_client (
                    client_id TEXT PRIMARY KEY,
                    secret_hash TEXT NOT NULL,
                    role TEXT NOT NULL,
                    tenant TEXT NOT NULL,
                    name TEXT NOT NULL,
                    disabled INTEGER NOT NULL DEFAULT 0,
                    created TEXT NOT NULL
                );
                CREATE TABLE revoked_token (
                    jti TEXT PRIMARY KEY,
                    expires REAL NOT NULL
                );
                """)
            try AuditLog.migrate(db)
        }
        m.registerMigration("v2-envelope-keys") { db in
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
        m.registerMigration("v3-lookup-index") { db in
            // Reads by id must not scan every current row of a type: with (tenant, type, current) alone the planner
            // preferred `resource_current` and read time grew with the number of patients.
            try db.execute(sql: "CREATE INDEX resource_lookup ON resource_version (type, id, tenant, current)")
        }
        m.registerMigration("v4-consent-grants") { db in
            // Derived from active Consent resources (maintained in the same transaction as each Consent version):
            // which business-line client may receive which elements of which patient, for which purpose, until when.
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
        m.registerMigration("v5-break-glass") { db in
            // Live break-glass overrides (the reason is in the sealed detail of the audit record that granted it).
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
        m.registerMigration("v6-workflows") { db in
            // fill_event: who moved each fill to which state (four-eyes is checked against it, not against the
            // client-editable resource). idempotency_key: partners' POST retries (results are kept as a reference
            // to the resource version, never as a copy of PHI). webhook_*: partner endpoints (secret sealed) and the
            // outbox of events with their delivery state; payloads hold ids and statuses only.
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
                CREATE TABLE webhook_endpoint (
                    client_id TEXT PRIMARY KEY,
                    tenant TEXT NOT NULL,
                    url TEXT NOT NULL,
                    secret_enc BLOB NOT NULL,
                    created TEXT NOT NULL
                );
                CREATE TABLE webhook_event (
                    id TEXT PRIMARY KEY,
                    tenant TEXT NOT NULL,
                    client_id TEXT NOT NULL,
                    type TEXT NOT NULL,
                    payload BLOB NOT NULL,
                    created REAL NOT NULL,
                    state TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt REAL NOT NULL,
                    last_status INTEGER,
                    last_error TEXT,
                    delivered REAL
                );
                CREATE INDEX webhook_due ON webhook_event (state, next_attempt);
                CREATE INDEX webhook_by_client ON webhook_event (client_id, created);
                """)
        }
        m.registerMigration("v7-fulfillment") { db in
            // Fulfillment vendors (their public keys) and every manifest file exported to them, by SHA-256 of the
            // encrypted file; the patients in each file are those of the file's audit record.
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
        m.registerMigration("v8-accounts-caregivers-messaging") { db in
            // MFA: the TOTP secret sealed under the tenant's shared key, the last accepted step (no replay), and
            // recovery codes as SHA-256 hashes. one_time_code: sign-up and reset codes as HMACs, with expiry and an
            // attempt count. notification: the outbox; the recipient (a contact from the patient record) and the
            // body are sealed under the patient's key. caregiver_grant: a patient's grant of access to another
            // account. message_read / thread_assignment: unread counts and staff assignment of message threads.
            try db.execute(sql: """
                ALTER TABLE user_account ADD COLUMN totp_secret_enc BLOB;
                ALTER TABLE user_account ADD COLUMN totp_enabled INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE user_account ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE user_account ADD COLUMN tokens_after REAL NOT NULL DEFAULT 0;
                CREATE TABLE recovery_code (
                    user_id TEXT NOT NULL,
                    code_hash TEXT NOT NULL,
                    used_at REAL,
                    PRIMARY KEY (user_id, code_hash)
                ) WITHOUT ROWID;
                CREATE TABLE one_time_code (
                    id TEXT PRIMARY KEY,
                    purpose TEXT NOT NULL,
                    tenant TEXT NOT NULL,
                    user_id TEXT,
                    patient_id TEXT,
                    code_hash TEXT NOT NULL,
                    expires REAL NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    consumed INTEGER NOT NULL DEFAULT 0,
                    created REAL NOT NULL
                );
                CREATE TABLE notification (
                    id TEXT PRIMARY KEY,
                    tenant TEXT NOT NULL,
                    key_owner TEXT NOT NULL,
                    channel TEXT NOT NULL,
                    recipient_enc BLOB NOT NULL,
                    kind TEXT NOT NULL,
                    body_enc BLOB NOT NULL,
                    created REAL NOT NULL,
                    state TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    sent_at REAL
                );
                CREATE INDEX notification_due ON notification (state, created);
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
        m.registerMigration("v9-rx-numbers") { db in
            // The pharmacy's own Rx numbers for prescriptions that arrive without one (partners, imports): the next
            // number per tenant, taken inside the transaction that stores the prescription.
            try db.execute(sql: """
                CREATE TABLE rx_number (
                    tenant TEXT PRIMARY KEY,
                    next INTEGER NOT NULL
                );
                """)
        }
        m.registerMigration("v10-detection") { db in
            // security_alert: what the detector found, with the audit seqs of the evidence and the patients they name
            // (opaque ids). actor_suspension: actors the detector cut off (their tokens stop at once; reinstatement is
            // recorded, never deleted). honeytoken: canary patients, their ids sealed under the tenant key so that a
            // copy of the database does not say which records are canaries.
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
        m.registerMigration("v11-incidents") { db in
            // incident: a declared breach incident and what is known (JSON spec). incident_judgement and
            // incident_conclusion: the risk assessment's human judgements, append-only and kept six years
            // (164.530(j)). obligation_done: notices given.
            // patient_meta: per patient, the state of residence (a state alone is not an identifier under the
            // HIPAA de-identification standard) and whether a postal address, e-mail or SSN is on record, so that
            // obligations are computed without decrypting every record. audit_time / audit_actor: breach scope
            // finds the records of a window and an actor without scanning the log.
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
        m.registerMigration("v12-patient-contact") { db in
            // patient_meta.contact: the name and postal address a breach letter needs, sealed under the patient's data
            // key (version in contact_key_version) like the record itself, so that millions of letters do not decrypt
            // and parse millions of whole Patient records. NULL for records written before (letters fall back to the
            // record) and for deleted patients; the row goes when the patient is erased.
            try db.execute(sql: """
                ALTER TABLE patient_meta ADD COLUMN contact BLOB;
                ALTER TABLE patient_meta ADD COLUMN contact_key_version INTEGER;
                """)
        }
        m.registerMigration("v13-resource-party") { db in
            // resource_party: which partner client is a party to a prescription, a fill or a message (it wrote it, or
            // it fills or answers what the partner wrote). A partner's scope reads and writes only these (see
            // AccessScope.partyTypes). Existing stores: what partners created, from the audit log. pharmacy_counter:
            // the next medical record number per tenant. api_client.tokens_after: a rotated secret ends older tokens. fulfillment_row: which file sent
            // each fill, so a second export of the same day does not ship it twice.
            try db.execute(sql: """
                CREATE TABLE resource_party (
                    party TEXT NOT NULL,
                    tenant TEXT NOT NULL,
                    type TEXT NOT NULL,
                    id TEXT NOT NULL,
                    PRIMARY KEY (party, tenant, type, id)
                ) WITHOUT ROWID;
                CREATE INDEX resource_party_by_resource ON resource_party (tenant, type, id);
                ALTER TABLE api_client ADD COLUMN tokens_after REAL NOT NULL DEFAULT 0;
                CREATE TABLE fulfillment_row (
                    tenant TEXT NOT NULL,
                    dispense_id TEXT NOT NULL,
                    sha256 TEXT NOT NULL,
                    PRIMARY KEY (tenant, dispense_id)
                ) WITHOUT ROWID;
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
        m.registerMigration("v14-consent-history") { db in
            // An authorization's grants are kept when it ends (`ended`), so that detection replayed over history judges
            // each release by the authorization in force at the time, as the live detector did. `began`/`ended` are
            // audit-clock instants; '' means "before anyone recorded" / "still in force".
            try db.execute(sql: """
                ALTER TABLE consent_grant ADD COLUMN began TEXT NOT NULL DEFAULT '';
                ALTER TABLE consent_grant ADD COLUMN ended TEXT NOT NULL DEFAULT '';
                """)
        }
        return m
    }
}
