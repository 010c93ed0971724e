import Foundation
import SafeRxSQL
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStoreCore
import SafeRxVault

extension PharmacyStore {
    /// The columns of a shipping manifest: what a vendor needs to ship a parcel, nothing else (no birth date, phone,
    /// medication or prescriber).
    package static let manifestColumns = ["order_id", "ship_to_name", "address_line1", "address_line2", "city", "state", "postal_code", "country"]

    /// Registers (or replaces) a fulfillment vendor and the X25519 public key its files are encrypted to.
    package func addVendor(_ ctx: AccessContext, id: String, tenant: String, name: String, publicKey: Data) async throws(FHIRError) {
        guard FHIRID.isValid(id) else { throw .invalid("Vendor ids are 1-64 characters of A-Z, a-z, 0-9, '-' and '.'") }
        guard publicKey.count == 32 else { throw .invalid("The vendor public key must be a raw 32-byte X25519 key (base64)") }
        try await write(ctx) { tx in
            try tx.db.execute(
                sql: "INSERT INTO fulfillment_vendor (id, tenant, name, public_key, created) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET tenant = excluded.tenant, name = excluded.name, public_key = excluded.public_key, created = excluded.created",
                arguments: [id, tenant, name, publicKey, self.timestamp()])
            try tx.record("vendor-add", tenant: tenant, detail: "fulfillment vendor \(id) (\(name))")
        }
    }

    /// Builds the day's shipping manifest for `vendor`: every fill of the tenant verified on `day` (UTC) and not yet
    /// shipped, as CSV, encrypted to the vendor's key inside this call. Plaintext never leaves it: the caller gets
    /// only the sealed file. The export is audited naming every patient in the file, and the file's SHA-256 is
    /// recorded so that ``fulfillmentFile(sha256:)`` can later say exactly who was in it.
    /// Fills already sent in an earlier file are left out (`alreadySent` counts them), so exporting twice never
    /// ships a fill twice.
    package func exportManifest(
        _ ctx: AccessContext, vendor: String, day: String
    ) async throws(FHIRError) -> (file: Data, rows: Int, sha256: String, alreadySent: Int) {
        guard let reason = ctx.scope.systemReason, ctx.scope.tenant != "*" else {
            throw await deny(ctx, interaction: "export", type: .medicationDispense, id: nil, error: .forbidden("Manifest exports need a system scope for one tenant"))
        }
        guard day.count == 10, FHIRDate.isValidDate(day) else { throw .invalid("The day must be YYYY-MM-DD") }
        let scope = ctx.scope
        let tenant = scope.tenant
        return try await runWrite { [self] db in
            guard let key: Data = try Data.fetchOne(
                db, sql: "SELECT public_key FROM fulfillment_vendor WHERE id = ? AND tenant = ?", arguments: [vendor, tenant])
            else { throw FHIRError.invalid("No fulfillment vendor '\(String(vendor.prefix(64)))' for \(tenant); add it with saferx fulfillment vendor-add") }
            let ids = try String.fetchAll(
                db, sql: "SELECT DISTINCT dispense_id FROM fill_event WHERE tenant = ? AND to_state = 'verified' AND at LIKE ? ORDER BY dispense_id",
                arguments: [tenant, day + "%"])
            var lines = [Self.manifestColumns.joined(separator: ",")]
            var patients: [String] = []
            var included: [String] = []
            let sent = Set(try String.fetchAll(db, sql: "SELECT dispense_id FROM fulfillment_row WHERE tenant = ?", arguments: [tenant]))
            var alreadySent = 0
            for id in ids {
                if sent.contains(id) {
                    alreadySent += 1
                    continue
                }
                guard let d = try scopedRows(db, scope, type: .medicationDispense, where: "v.id = ? AND v.current = 1 AND v.deleted = 0", [id]).first,
                    let body = d.json, FillState.of(body) == .verified,
                    let pid = d.patients.first,
                    let patient = try scopedRows(db, scope, type: .patient, where: "v.id = ? AND v.current = 1 AND v.deleted = 0", [pid]).first?.json
                else { continue }
                let name = patient["name"]?.arrayValue?.first
                let fullName = ((name?["given"]?.arrayValue?.compactMap(\.stringValue) ?? []) + [name?["family"]?.stringValue ?? ""])
                    .joined(separator: " ").trimmingCharacters(in: .whitespaces)
                let addresses = patient["address"]?.arrayValue ?? []
                let a = addresses.first { $0["use"]?.stringValue == "home" } ?? addresses.first
                let street = a?["line"]?.arrayValue?.compactMap(\.stringValue) ?? []
                let fields = [
                    id, fullName, street.first ?? "", street.dropFirst().joined(separator: " "), a?["city"]?.stringValue ?? "",
                    a?["state"]?.stringValue ?? "", a?["postalCode"]?.stringValue ?? "", a?["country"]?.stringValue ?? "US",
                ]
                lines.append(fields.map(Self.csvField).joined(separator: ","))
                patients.append(pid)
                included.append(id)
            }
            let csv = Data((lines.joined(separator: "\r\n") + "\r\n").utf8)
            let file = try SealedFile.seal(csv, to: key, recipientID: vendor)
            let sha = SealedFile.digest(file)
            let e = entry(
                ctx, action: "export", type: .medicationDispense, id: nil, patients: patients, outcome: "success", result: .ok,
                detail: "\(reason): fulfillment manifest for \(vendor), \(day), \(patients.count) rows, sha256=\(sha)")
            let seq = try auditLog.append([e], in: db).first ?? 0
            try db.execute(
                sql: "INSERT INTO fulfillment_file (sha256, vendor, tenant, day, rows, created, audit_seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [sha, vendor, tenant, day, patients.count, self.timestamp(), seq])
            let row = try db.cachedStatement(sql: "INSERT OR IGNORE INTO fulfillment_row (tenant, dispense_id, sha256) VALUES (?, ?, ?)")
            for id in included { try row.execute(arguments: [tenant, id, sha]) }
            return (file, patients.count, sha, alreadySent)
        }
    }

    /// The export a file came from (by the SHA-256 of its bytes) and every patient in it: for breach scope when a
    /// file turns up where it should not be.
    package func fulfillmentFile(sha256: String) async throws(FHIRError) -> FulfillmentFile? {
        try await run { db in
            guard let row = try SQLRow.fetchOne(db, sql: "SELECT * FROM fulfillment_file WHERE sha256 = ?", arguments: [sha256.lowercased()]) else { return nil }
            let seq: Int64 = row["audit_seq"]
            let patients = try String.fetchAll(db, sql: "SELECT patient_id FROM audit_patient WHERE seq = ? ORDER BY patient_id", arguments: [seq])
            return FulfillmentFile(
                sha256: row["sha256"], vendor: row["vendor"], tenant: row["tenant"], day: row["day"], rows: row["rows"], created: row["created"],
                auditSeq: seq, patients: patients)
        }
    }

    /// A vendor's X25519 public key (fulfillment and print vendors).
    package func vendorKey(id: String, tenant: String) async throws(FHIRError) -> Data? {
        try await run { db in try Data.fetchOne(db, sql: "SELECT public_key FROM fulfillment_vendor WHERE id = ? AND tenant = ?", arguments: [id, tenant]) }
    }

    /// Every manifest exported, newest first.
    package func fulfillmentFiles() async throws(FHIRError) -> [FulfillmentFile] {
        let shas = try await run { db in try String.fetchAll(db, sql: "SELECT sha256 FROM fulfillment_file ORDER BY created DESC") }
        var out: [FulfillmentFile] = []
        for sha in shas { if let f = try await fulfillmentFile(sha256: sha) { out.append(f) } }
        return out
    }

    static func csvField(_ s: String) -> String {
        // Quote every field that needs it; neutralise spreadsheet formulas.
        var v = s
        if let first = v.first, "=+-@".contains(first) { v = "'" + v }
        return v.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) ? "\"" + v.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : v
    }
}
