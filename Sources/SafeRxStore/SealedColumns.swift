import Foundation
import SafeRxSQL
import SafeRxModel
import SafeRxStoreCore
import SafeRxVault

/// A column whose values are sealed under a data key (a patient's, or the tenant's shared one, owner `""`).
///
/// Every such column is listed in ``SealedColumn/all``: re-encryption moves each of them to the active key version,
/// backup verification opens each of them, and a data key version is destroyed only after a pass over all of them has
/// shown that no value still names it. A schema test fails when a BLOB column is neither listed here nor in
/// ``SealedColumn/notSealedUnderDataKeys`` with a reason, so a new sealed column cannot be forgotten.
struct SealedColumn: Sendable {
    /// The table and column.
    let table: String
    let column: String
    /// SQL expressions for the row's identity (used in the UPDATE's WHERE), its tenant and its key owner.
    let keyColumns: [String]
    let tenant: String
    let owner: String
    /// A column beside the value that records its key version (kept equal to the envelope header), if any.
    let versionColumn: String?
    /// Extra columns the associated data needs, after the key columns.
    let contextColumns: [String]
    /// The associated data the value is bound to, from the key columns followed by the context columns.
    let context: @Sendable (_ tenant: String, _ values: [SQLValue]) throws -> String

    var name: String { "\(table).\(column)" }

    static let all: [SealedColumn] = [
        SealedColumn(
            table: "resource_version", column: "body", keyColumns: ["pk"], tenant: "tenant", owner: "key_owner", versionColumn: "key_version",
            contextColumns: ["type", "id", "version"],
            context: { tenant, v in
                guard let typeName = String.fromSQLValue(v[1]), let type = ResourceType(rawValue: typeName),
                    let id = String.fromSQLValue(v[2]), let version = Int.fromSQLValue(v[3])
                else { throw VaultError.integrity("resource_version row \(v[0]) has an unknown type or id") }
                return PharmacyStore.cipherContext(tenant, type, id, version)
            }),
        SealedColumn(
            table: "user_account", column: "username_enc", keyColumns: ["id"], tenant: "tenant", owner: "key_owner", versionColumn: nil,
            contextColumns: [], context: { _, v in "user/\(String.fromSQLValue(v[0]) ?? "")" }),
        SealedColumn(
            table: "user_account", column: "totp_secret_enc", keyColumns: ["id"], tenant: "tenant", owner: "key_owner", versionColumn: nil,
            contextColumns: [], context: { _, v in "totp/\(String.fromSQLValue(v[0]) ?? "")" }),
        SealedColumn(
            table: "notification", column: "recipient_enc", keyColumns: ["id"], tenant: "tenant", owner: "key_owner", versionColumn: nil,
            contextColumns: [], context: { _, v in "notification/\(String.fromSQLValue(v[0]) ?? "")/to" }),
        SealedColumn(
            table: "notification", column: "body_enc", keyColumns: ["id"], tenant: "tenant", owner: "key_owner", versionColumn: nil,
            contextColumns: [], context: { _, v in "notification/\(String.fromSQLValue(v[0]) ?? "")/body" }),
        SealedColumn(
            table: "webhook_endpoint", column: "secret_enc", keyColumns: ["client_id"], tenant: "tenant", owner: "''", versionColumn: nil,
            contextColumns: [], context: { _, v in "webhook/\(String.fromSQLValue(v[0]) ?? "")" }),
        SealedColumn(
            table: "honeytoken", column: "id_enc", keyColumns: ["token_id"], tenant: "tenant", owner: "''", versionColumn: nil,
            contextColumns: [], context: { _, v in "honeytoken/\(String.fromSQLValue(v[0]) ?? "")" }),
        SealedColumn(
            table: "patient_meta", column: "contact", keyColumns: ["tenant", "patient_id"], tenant: "tenant", owner: "patient_id",
            versionColumn: "contact_key_version", contextColumns: [],
            context: { tenant, v in LetterContact.context(tenant, String.fromSQLValue(v[1]) ?? "") }),
    ]

    /// BLOB columns that are not sealed under a data key, and why.
    static let notSealedUnderDataKeys: [String: String] = [
        "tenant_key.wrapped": "a key wrapped by the master key (rotate --master re-wraps it)",
        "data_key.wrapped": "a key wrapped by the tenant key (rotate --tenant re-wraps it)",
        "service_key.wrapped": "a key wrapped by the master key (rotate --master re-wraps it)",
        "idempotency_key.result_body": "operation outcomes without PHI; resources are read again through the gate",
        "webhook_event.payload": "event payloads carry ids and types only, never PHI",
        "fulfillment_vendor.public_key": "a public key",
    ]

    private var selectList: String {
        (keyColumns + contextColumns).joined(separator: ", ") + ", \(tenant), \(owner), \(column)"
    }

    /// Calls `body` with every non-empty value: its tenant, owner, ciphertext, associated data and key columns.
    func forEach(
        _ db: any SQLConnection, where extra: String? = nil,
        _ body: (_ tenant: String, _ owner: String, _ cipher: Data, _ context: String, _ key: [SQLValue]) throws -> Void
    ) throws {
        let n = keyColumns.count + contextColumns.count
        let filter = extra.map { " AND \($0)" } ?? ""
        // Empty values are blanked ones (a sent notification keeps no recipient or text): nothing sealed to move.
        let rows = try SQLRow.fetchCursor(db, sql: "SELECT \(selectList) FROM \(table) WHERE length(\(column)) > 0\(filter)")
        while let row = try rows.next() {
            let values = (0..<n).map { row[$0] as SQLValue }
            let tenant: String = row[n], owner: String = row[n + 1], cipher: Data = row[n + 2]
            try body(tenant, owner, cipher, try context(tenant, values), Array(values.prefix(keyColumns.count)))
        }
    }

    /// Replaces one value (and its version column) identified by its key columns, if it is still `old` (a value
    /// the server rewrote meanwhile is already under the active key and stays as it is).
    func update(_ db: any SQLConnection, key: [SQLValue], old: Data, cipher: Data, version: UInt32) throws {
        var set = "\(column) = ?"
        var args: [any SQLValueConvertible] = [cipher]
        if let versionColumn {
            set += ", \(versionColumn) = ?"
            args.append(Int64(version))
        }
        let whereSQL = (keyColumns + [column]).map { "\($0) = ?" }.joined(separator: " AND ")
        try db.execute(sql: "UPDATE \(table) SET \(set) WHERE \(whereSQL)", arguments: SQLArguments(args + key + [old]))
    }
}

/// A data key version: the tenant, the owner (a patient id or `""`) and the version.
struct DataKeyVersion: Hashable, Sendable {
    var tenant: String
    var owner: String
    var version: UInt32
}

extension KeyRing {
    /// Every data key version some sealed value still names (read from each envelope's header, or from the version
    /// column kept beside large tables). A key version outside this set protects nothing and may be destroyed.
    static func versionsInUse(_ db: any SQLConnection) throws -> Set<DataKeyVersion> {
        var used = Set<DataKeyVersion>()
        for column in SealedColumn.all {
            if let versionColumn = column.versionColumn {
                let rows = try SQLRow.fetchCursor(
                    db, sql: """
                        SELECT DISTINCT \(column.tenant), \(column.owner), \(versionColumn) FROM \(column.table)
                        WHERE \(column.column) IS NOT NULL
                        """)
                while let row = try rows.next() {
                    used.insert(DataKeyVersion(tenant: row[0], owner: row[1], version: try keyVersion(row[2])))
                }
            } else {
                try column.forEach(db) { tenant, owner, cipher, context, _ in
                    guard let version = Envelope.keyVersion(of: cipher) else {
                        throw VaultError.integrity("\(column.name) (\(context)) is not a SafeRx ciphertext")
                    }
                    used.insert(DataKeyVersion(tenant: tenant, owner: owner, version: version))
                }
            }
        }
        return used
    }
}
