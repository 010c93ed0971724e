import SafeRxSQL
import SafeRxAudit
import SafeRxStoreCore

/// The database schema, as migrations (``SafeRxSQL/SQLMigrator``).
///
/// Resource bodies are stored only as ciphertext (`resource_version.body`), each under its patient's data key
/// (`key_owner`, `key_version`). Searchable PHI is stored only as blind index tokens (`search_index.value` for
/// sensitive parameters). Keys are stored only wrapped (`tenant_key`, `data_key`, `service_key`; see ``KeyRing``).
/// Patient ids, statuses, dates of last update and prescription authoring dates are stored in clear so that access
/// scopes and range searches compile to SQL.
enum Schema {
    /// The migrations for a store on `dialect`'s engine.
    ///
    /// SQLite stores run every migration from v1. A PostgreSQL store starts from ``postgreSQLBaseline`` (what v1...v14
    /// make, generated from the pinned SQLite schema), recorded as those identifiers; migrations written after v14
    /// are in SQL both engines accept and run on both.
    static func migrator(for dialect: SQLDialect) -> SQLMigrator {
        switch dialect {
        case .sqlite:
            return migrator
        case .postgres:
            var m = SQLMigrator()
            m.registerMigration("postgresql-baseline-v14") { db in
                try db.execute(sql: postgreSQLBaseline)
                for id in sqliteMigrationsInBaseline {
                    try db.execute(sql: "INSERT OR IGNORE INTO \(SQLMigrator.table) (identifier) VALUES (?)", arguments: [id])
                }
            }
            return m
        }
    }

    /// The SQLite migrations ``postgreSQLBaseline`` stands for.
    static let sqliteMigrationsInBaseline = [
        "v1", "v2-envelope-keys", "v3-lookup-index", "v4-consent-grants", "v5-break-glass", "v6-workflows", "v7-fulfillment",
        "v8-accounts-caregivers-messaging", "v9-rx-numbers", "v10-detection", "v11-incidents", "v12-patient-contact",
        "v13-resource-party", "v14-consent-history",
    ]

    /// Every SQLite migration, in order. Identifiers never change (a store records the ones it ran); each runs the
    /// parts of its features, in the order they were written, in one transaction.
    static var migrator: SQLMigrator {
        var m = SQLMigrator()
        m.registerMigration("v1") { db in
            try Resources.v1(db)
            try Accounts.v1(db)
            try AuditLog.migrate(db)
        }
        m.registerMigration("v2-envelope-keys") { db in
            try Keys.v2(db)
        }
        // Reads by id must not scan every current row of a type: with (tenant, type, current) alone the planner
        // preferred `resource_current` and read time grew with the number of patients.
        m.registerMigration("v3-lookup-index") { db in
            try Resources.v3(db)
        }
        // Derived from active Consent resources (maintained in the same transaction as each Consent version):
        // which business-line client may receive which elements of which patient, for which purpose, until when.
        m.registerMigration("v4-consent-grants") { db in
            try Consent.v4(db)
        }
        // Live break-glass overrides (the reason is in the sealed detail of the audit record that granted it).
        m.registerMigration("v5-break-glass") { db in
            try BreakGlass.v5(db)
        }
        // fill_event: who moved each fill to which state (four-eyes is checked against it, not against the
        // client-editable resource). idempotency_key: partners' POST retries (results are kept as a reference
        // to the resource version, never as a copy of PHI). webhook_*: partner endpoints (secret sealed) and the
        // outbox of events with their delivery state; payloads hold ids and statuses only.
        m.registerMigration("v6-workflows") { db in
            try Fills.v6(db)
            try Idempotency.v6(db)
            try Outbox.v6(db)
        }
        // Fulfillment vendors (their public keys) and every manifest file exported to them, by SHA-256 of the
        // encrypted file; the patients in each file are those of the file's audit record.
        m.registerMigration("v7-fulfillment") { db in
            try Fills.v7(db)
        }
        // MFA: the TOTP secret sealed under the tenant's shared key, the last accepted step (no replay), and
        // recovery codes as SHA-256 hashes. one_time_code: sign-up and reset codes as HMACs, with expiry and an
        // attempt count. notification: the outbox; the recipient (a contact from the patient record) and the
        // body are sealed under the patient's key. caregiver_grant: a patient's grant of access to another
        // account. message_read / thread_assignment: unread counts and staff assignment of message threads.
        m.registerMigration("v8-accounts-caregivers-messaging") { db in
            try Accounts.v8(db)
            try Outbox.v8(db)
            try Caregivers.v8(db)
            try Messaging.v8(db)
        }
        // The pharmacy's own Rx numbers for prescriptions that arrive without one (partners, imports): the next
        // number per tenant, taken inside the transaction that stores the prescription.
        m.registerMigration("v9-rx-numbers") { db in
            try Resources.v9(db)
        }
        // security_alert: what the detector found, with the audit seqs of the evidence and the patients they name
        // (opaque ids). actor_suspension: actors the detector cut off (their tokens stop at once; reinstatement is
        // recorded, never deleted). honeytoken: canary patients, their ids sealed under the tenant key so that a
        // copy of the database does not say which records are canaries.
        m.registerMigration("v10-detection") { db in
            try Detection.v10(db)
        }
        // incident: a declared breach incident and what is known (JSON spec). incident_judgement and
        // incident_conclusion: the risk assessment's human judgements, append-only and kept six years
        // (164.530(j)). obligation_done: notices given.
        // patient_meta: per patient, the state of residence (a state alone is not an identifier under the
        // HIPAA de-identification standard) and whether a postal address, e-mail or SSN is on record, so that
        // obligations are computed without decrypting every record. audit_time / audit_actor: breach scope
        // finds the records of a window and an actor without scanning the log.
        m.registerMigration("v11-incidents") { db in
            try Incidents.v11(db)
        }
        // patient_meta.contact: the name and postal address a breach letter needs, sealed under the patient's data
        // key (version in contact_key_version) like the record itself, so that millions of letters do not decrypt
        // and parse millions of whole Patient records. NULL for records written before (letters fall back to the
        // record) and for deleted patients; the row goes when the patient is erased.
        m.registerMigration("v12-patient-contact") { db in
            try Incidents.v12(db)
        }
        // resource_party: which partner client is a party to a prescription, a fill or a message (it wrote it, or
        // it fills or answers what the partner wrote). A partner's scope reads and writes only these (see
        // AccessScope.partyTypes). Existing stores: what partners created, from the audit log. pharmacy_counter:
        // the next medical record number per tenant. api_client.tokens_after: a rotated secret ends older tokens.
        // fulfillment_row: which file sent each fill, so a second export of the same day does not ship it twice.
        m.registerMigration("v13-resource-party") { db in
            try Resources.v13(db)
            try Accounts.v13(db)
            try Fills.v13(db)
        }
        // An authorization's grants are kept when it ends (`ended`), so that detection replayed over history judges
        // each release by the authorization in force at the time, as the live detector did. `began`/`ended` are
        // audit-clock instants; '' means "before anyone recorded" / "still in force".
        m.registerMigration("v14-consent-history") { db in
            try Consent.v14(db)
        }
        return m
    }
}
