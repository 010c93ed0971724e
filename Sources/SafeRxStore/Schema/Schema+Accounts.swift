import SafeRxSQL

extension Schema {
    /// Accounts: users (usernames sealed), API clients, revoked tokens, second factors, recovery and one-time codes.
    enum Accounts {
        /// Migration `v1`.
        static func v1(_ db: any SQLConnection) throws {
            try db.execute(sql: """
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
        }

        /// Migration `v8-accounts-caregivers-messaging`.
        static func v8(_ db: any SQLConnection) throws {
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
                """)
        }

        /// Migration `v13-resource-party`.
        static func v13(_ db: any SQLConnection) throws {
            try db.execute(sql: """
                ALTER TABLE api_client ADD COLUMN tokens_after REAL NOT NULL DEFAULT 0;
                """)
        }
    }
}
