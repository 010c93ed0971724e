-- index actor_suspension_actor on actor_suspension
CREATE INDEX actor_suspension_actor ON actor_suspension (actor_id, reinstated_at);

-- index audit_actor on audit_log
CREATE INDEX audit_actor ON audit_log (json_extract(body, '$.entry.actor.id'), time);

-- index audit_patient_seq on audit_patient
CREATE INDEX audit_patient_seq ON audit_patient (seq);

-- index audit_time on audit_log
CREATE INDEX audit_time ON audit_log (time);

-- index break_glass_by_day on break_glass
CREATE INDEX break_glass_by_day ON break_glass (tenant, granted);

-- index break_glass_by_user on break_glass
CREATE INDEX break_glass_by_user ON break_glass (user_id, tenant, expires);

-- index caregiver_by_caregiver on caregiver_grant
CREATE INDEX caregiver_by_caregiver ON caregiver_grant (caregiver_user_id, patient_id);

-- index caregiver_by_patient on caregiver_grant
CREATE INDEX caregiver_by_patient ON caregiver_grant (tenant, patient_id);

-- index consent_grant_by_client on consent_grant
CREATE INDEX consent_grant_by_client ON consent_grant (client_id, purpose, tenant, patient_id);

-- index consent_grant_by_consent on consent_grant
CREATE INDEX consent_grant_by_consent ON consent_grant (tenant, consent_id);

-- index fill_event_by_dispense on fill_event
CREATE INDEX fill_event_by_dispense ON fill_event (tenant, dispense_id, seq);

-- index idempotency_by_age on idempotency_key
CREATE INDEX idempotency_by_age ON idempotency_key (created);

-- index notification_due on notification
CREATE INDEX notification_due ON notification (state, created);

-- index patient_owner_by_partner on patient_owner
CREATE INDEX patient_owner_by_partner ON patient_owner (partner, patient_id);

-- index resource_current on resource_version
CREATE INDEX resource_current ON resource_version (tenant, type, current, pk);

-- index resource_key on resource_version
CREATE INDEX resource_key ON resource_version (tenant, key_owner, key_version);

-- index resource_lookup on resource_version
CREATE INDEX resource_lookup ON resource_version (type, id, tenant, current);

-- index resource_party_by_resource on resource_party
CREATE INDEX resource_party_by_resource ON resource_party (tenant, type, id);

-- index resource_patient_by_patient on resource_patient
CREATE INDEX resource_patient_by_patient ON resource_patient (patient_id, pk);

-- index search_index_lookup on search_index
CREATE INDEX search_index_lookup ON search_index (param, value, pk);

-- index search_index_pk on search_index
CREATE INDEX search_index_pk ON search_index (pk);

-- index security_alert_created on security_alert
CREATE INDEX security_alert_created ON security_alert (created);

-- index security_alert_open on security_alert
CREATE INDEX security_alert_open ON security_alert (rule, actor, acked_at);

-- index webhook_by_client on webhook_event
CREATE INDEX webhook_by_client ON webhook_event (client_id, created);

-- index webhook_due on webhook_event
CREATE INDEX webhook_due ON webhook_event (state, next_attempt);

-- table actor_suspension on actor_suspension
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

-- table api_client on api_client
CREATE TABLE api_client (
    client_id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL
, tokens_after REAL NOT NULL DEFAULT 0);

-- table audit_checkpoint on audit_checkpoint
CREATE TABLE audit_checkpoint (
    seq INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    time TEXT NOT NULL,
    signature TEXT NOT NULL
);

-- table audit_log on audit_log
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    time TEXT NOT NULL,
    body TEXT NOT NULL,
    hash TEXT NOT NULL
);

-- table audit_patient on audit_patient
CREATE TABLE audit_patient (
    patient_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (patient_id, seq)
) WITHOUT ROWID;

-- table break_glass on break_glass
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

-- table caregiver_grant on caregiver_grant
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

-- table consent_grant on consent_grant
CREATE TABLE consent_grant (
    tenant TEXT NOT NULL,
    consent_id TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    elements TEXT NOT NULL,
    expires TEXT NOT NULL,
    starts TEXT NOT NULL DEFAULT ''
, began TEXT NOT NULL DEFAULT '', ended TEXT NOT NULL DEFAULT '');

-- table data_key on data_key
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

-- table erasure on erasure
CREATE TABLE erasure (
    tenant TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    erased_at TEXT NOT NULL,
    legal_override INTEGER NOT NULL,
    PRIMARY KEY (tenant, patient_id)
) WITHOUT ROWID;

-- table fill_event on fill_event
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

-- table fulfillment_file on fulfillment_file
CREATE TABLE fulfillment_file (
    sha256 TEXT PRIMARY KEY,
    vendor TEXT NOT NULL,
    tenant TEXT NOT NULL,
    day TEXT NOT NULL,
    rows INTEGER NOT NULL,
    created TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
);

-- table fulfillment_row on fulfillment_row
CREATE TABLE fulfillment_row (
    tenant TEXT NOT NULL,
    dispense_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (tenant, dispense_id)
) WITHOUT ROWID;

-- table fulfillment_vendor on fulfillment_vendor
CREATE TABLE fulfillment_vendor (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    public_key BLOB NOT NULL,
    created TEXT NOT NULL
);

-- table grdb_migrations on grdb_migrations
CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);

-- table honeytoken on honeytoken
CREATE TABLE honeytoken (
    token_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    id_enc BLOB NOT NULL,
    created REAL NOT NULL
);

-- table idempotency_key on idempotency_key
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

-- table incident on incident
CREATE TABLE incident (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    discovered TEXT NOT NULL,
    declared REAL NOT NULL,
    declared_by TEXT NOT NULL,
    spec TEXT NOT NULL
);

-- table incident_judgement on incident_judgement
CREATE TABLE incident_judgement (
    incident_id TEXT NOT NULL,
    question TEXT NOT NULL,
    text TEXT NOT NULL,
    by TEXT NOT NULL,
    at TEXT NOT NULL,
    retain_until TEXT NOT NULL
);

-- table keyring_meta on keyring_meta
CREATE TABLE keyring_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- table message_read on message_read
CREATE TABLE message_read (
    user_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    communication_id TEXT NOT NULL,
    read_at REAL NOT NULL,
    PRIMARY KEY (user_id, tenant, communication_id)
) WITHOUT ROWID;

-- table notification on notification
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

-- table obligation_done on obligation_done
CREATE TABLE obligation_done (
    incident_id TEXT NOT NULL,
    obligation_id TEXT NOT NULL,
    done_on TEXT NOT NULL,
    by TEXT NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (incident_id, obligation_id)
) WITHOUT ROWID;

-- table one_time_code on one_time_code
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

-- table patient_meta on patient_meta
CREATE TABLE patient_meta (
    tenant TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    state TEXT NOT NULL,
    has_postal INTEGER NOT NULL,
    has_email INTEGER NOT NULL,
    has_ssn INTEGER NOT NULL, contact BLOB, contact_key_version INTEGER,
    PRIMARY KEY (tenant, patient_id)
) WITHOUT ROWID;

-- table patient_owner on patient_owner
CREATE TABLE patient_owner (
    tenant TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    partner TEXT NOT NULL,
    PRIMARY KEY (tenant, patient_id)
) WITHOUT ROWID;

-- table pharmacy_counter on pharmacy_counter
CREATE TABLE pharmacy_counter (
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    next INTEGER NOT NULL,
    PRIMARY KEY (tenant, name)
) WITHOUT ROWID;

-- table recovery_code on recovery_code
CREATE TABLE recovery_code (
    user_id TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    used_at REAL,
    PRIMARY KEY (user_id, code_hash)
) WITHOUT ROWID;

-- table resource_party on resource_party
CREATE TABLE resource_party (
    party TEXT NOT NULL,
    tenant TEXT NOT NULL,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (party, tenant, type, id)
) WITHOUT ROWID;

-- table resource_patient on resource_patient
CREATE TABLE resource_patient (
    pk INTEGER NOT NULL,
    patient_id TEXT NOT NULL,
    PRIMARY KEY (pk, patient_id)
) WITHOUT ROWID;

-- table resource_version on resource_version
CREATE TABLE resource_version (
    pk INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    current INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    last_updated TEXT NOT NULL,
    body BLOB, key_owner TEXT NOT NULL DEFAULT '', key_version INTEGER NOT NULL DEFAULT 0, erased INTEGER NOT NULL DEFAULT 0,
    UNIQUE (type, id, version)
);

-- table revoked_token on revoked_token
CREATE TABLE revoked_token (
    jti TEXT PRIMARY KEY,
    expires REAL NOT NULL
);

-- table rx_number on rx_number
CREATE TABLE rx_number (
    tenant TEXT PRIMARY KEY,
    next INTEGER NOT NULL
);

-- table search_index on search_index
CREATE TABLE search_index (
    pk INTEGER NOT NULL,
    param TEXT NOT NULL,
    value TEXT NOT NULL
);

-- table security_alert on security_alert
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

-- table service_key on service_key
CREATE TABLE service_key (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    wrapped BLOB NOT NULL,
    master_key_id TEXT NOT NULL,
    active INTEGER NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (name, version)
) WITHOUT ROWID;

-- table tenant on tenant
CREATE TABLE tenant (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL
);

-- table tenant_key on tenant_key
CREATE TABLE tenant_key (
    tenant TEXT NOT NULL,
    version INTEGER NOT NULL,
    wrapped BLOB NOT NULL,
    master_key_id TEXT NOT NULL,
    active INTEGER NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (tenant, version)
) WITHOUT ROWID;

-- table thread_assignment on thread_assignment
CREATE TABLE thread_assignment (
    tenant TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    assignee TEXT NOT NULL,
    assigned_by TEXT NOT NULL,
    assigned_at REAL NOT NULL,
    PRIMARY KEY (tenant, thread_id)
) WITHOUT ROWID;

-- table user_account on user_account
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
, key_owner TEXT NOT NULL DEFAULT '', totp_secret_enc BLOB, totp_enabled INTEGER NOT NULL DEFAULT 0, totp_last_step INTEGER NOT NULL DEFAULT 0, tokens_after REAL NOT NULL DEFAULT 0);

-- table webhook_endpoint on webhook_endpoint
CREATE TABLE webhook_endpoint (
    client_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    url TEXT NOT NULL,
    secret_enc BLOB NOT NULL,
    created TEXT NOT NULL
);

-- table webhook_event on webhook_event
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

-- trigger audit_log_no_delete on audit_log
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- trigger audit_log_no_update on audit_log
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- trigger incident_judgement_append_only on incident_judgement
CREATE TRIGGER incident_judgement_append_only BEFORE UPDATE ON incident_judgement
    BEGIN SELECT RAISE(ABORT, 'assessment records are kept unchanged'); END;

-- trigger incident_judgement_no_delete on incident_judgement
CREATE TRIGGER incident_judgement_no_delete BEFORE DELETE ON incident_judgement
    BEGIN SELECT RAISE(ABORT, 'assessment records are kept for six years'); END;

