import Foundation
import GRDB
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxVault

extension PharmacyStore {
    /// A resource to write, as prepared and checked before the transaction.
    struct PreparedWrite: Sendable {
        let type: ResourceType
        let id: String
        let json: JSON
        let patients: Set<String>
        let terms: [IndexTerm]
        /// For a Patient created by a partner: the partner that owns it.
        let owner: String?
    }

    /// FHIR create. The server assigns the id.
    public func create(_ ctx: AccessContext, _ type: ResourceType, _ json: JSON) async throws(FHIRError) -> StoredResource {
        try await requireRight(ctx, type, "create", nil, ctx.scope.rights(for: type).create)
        var body = json
        body["id"] = nil
        try ResourceValidator.validate(body, as: type)
        let id = Self.newID()
        body["id"] = .string(id)
        if type == .medicationDispense {
            do { try Self.checkDispenseWrite(old: nil, new: body) } catch {
                throw await deny(ctx, interaction: "create", type: type, id: nil, error: error, detail: "fill state")
            }
        }
        let prepared = try await prepare(ctx, type, id: id, body, previous: nil)
        if type == .medicationRequest {
            if TransferIn.of(body) != nil, body["status"]?.stringValue != "draft" {
                throw FHIRError.invalid("A transfer-in request is created in status 'draft'; a pharmacist accepts it by making it active", at: "MedicationRequest.status")
            }
            try await checkPrescription(ctx, body)
        }
        let tenant = ctx.scope.tenant
        let scope = ctx.scope
        let e = entry(ctx, action: "create", type: type, id: id, patients: prepared.patients, outcome: "success", status: 201)
        return try await runWrite { [self] db in
            let r = try insertVersion(db, tenant: tenant, prepared, version: 1, scope: scope)
            if type == .medicationDispense {
                try recordFillEvent(db, tenant: tenant, dispense: id, from: .preparation, to: .preparation, scope: scope, reason: "created")
            }
            if type == .communication { try afterMessageCreated(db, tenant: tenant, r, scope: scope) }
            try auditLog.append([e], in: db)
            return r
        }
    }

    /// FHIR update of an existing resource (no update-as-create). `ifMatch` is the expected current version.
    public func update(
        _ ctx: AccessContext, _ type: ResourceType, id: String, _ json: JSON, ifMatch: Int? = nil
    ) async throws(FHIRError) -> StoredResource {
        try await requireRight(ctx, type, "update", id, ctx.scope.rights(for: type).update)
        try ResourceValidator.validate(json, as: type, id: id)
        let scope = ctx.scope
        let current = try await run { [self] db in
            try scopedRows(db, scope, type: type, where: "v.id = ? AND v.current = 1", [id]).first
        }
        guard let current, !current.deleted, let old = current.json else { throw await missing(ctx, "update", type, id) }
        if let ifMatch, ifMatch != current.version {
            throw FHIRError(status: 412, code: "conflict", diagnostics: "If-Match version \(ifMatch) is not the current version \(current.version)")
        }
        if type == .medicationDispense {
            do { try Self.checkDispenseWrite(old: old, new: json) } catch {
                throw await deny(ctx, interaction: "update", type: type, id: id, error: error, detail: "fill state")
            }
        }
        if (type == .medicationRequest || type == .medicationDispense) && !scope.rights(for: type).changeStatus
            && old["status"] != json["status"]
        {
            throw await deny(ctx, interaction: "update", type: type, id: id,
                error: .forbidden("Only pharmacists may change the status of a \(type.rawValue)"), detail: "status change")
        }
        var json = json
        if type == .medicationRequest, let number = RxNumber.of(old) {
            // The Rx number is the pharmacy's: an update keeps it and may not change it.
            if let given = RxNumber.of(json), given != number {
                throw FHIRError.conflict("The Rx number of MedicationRequest/\(id) is \(number) and cannot be changed")
            }
            if RxNumber.of(json) == nil {
                json["identifier"] = .array((json["identifier"]?.arrayValue ?? []) + [RxNumber.identifier(number)])
            }
        }
        let prepared = try await prepare(ctx, type, id: id, json, previous: current)
        if type == .medicationRequest {
            // Re-checked when what the rules look at changes, or when a pharmacist accepts a transfer-in (draft → active).
            let watched = ["requester", "extension", "dispenseRequest", "medicationReference", "medicationCodeableConcept"]
            let accepted = old["status"]?.stringValue == "draft" && json["status"]?.stringValue == "active"
            if accepted || watched.contains(where: { old[$0] != json[$0] }) { try await checkPrescription(ctx, json) }
        }
        let tenant = scope.tenant
        let e = entry(
            ctx, action: "update", type: type, id: id, patients: prepared.patients.union(current.patients), outcome: "success",
            status: 200)
        return try await runWrite { [self] db in
            let latest = try Int.fetchOne(
                db, sql: "SELECT version FROM resource_version WHERE type = ? AND id = ? AND current = 1", arguments: [type.rawValue, id])
            guard latest == current.version else {
                throw FHIRError.conflict("\(type.rawValue)/\(id) was changed by another request; read it again and retry")
            }
            try retire(db, type: type, id: id)
            let r = try insertVersion(db, tenant: tenant, prepared, version: current.version + 1, scope: scope)
            try auditLog.append([e], in: db)
            return r
        }
    }

    /// FHIR delete: a logical delete that keeps history.
    public func delete(_ ctx: AccessContext, _ type: ResourceType, id: String) async throws(FHIRError) {
        try await requireRight(ctx, type, "delete", id, ctx.scope.rights(for: type).delete)
        let scope = ctx.scope
        let current = try await run { [self] db in
            try scopedRows(db, scope, type: type, where: "v.id = ? AND v.current = 1", [id]).first
        }
        guard let current else { throw await missing(ctx, "delete", type, id) }
        if current.deleted {
            try await commitAudit(entry(ctx, action: "delete", type: type, id: id, patients: [String](), outcome: "success", status: 204))
            return
        }
        let tenant = scope.tenant
        let e = entry(ctx, action: "delete", type: type, id: id, patients: current.patients, outcome: "success", status: 204)
        try await runWrite { [self] db in
            let latest = try Int.fetchOne(
                db, sql: "SELECT version FROM resource_version WHERE type = ? AND id = ? AND current = 1", arguments: [type.rawValue, id])
            guard latest == current.version else {
                throw FHIRError.conflict("\(type.rawValue)/\(id) was changed by another request; read it again and retry")
            }
            try retire(db, type: type, id: id)
            try db.execute(
                sql: """
                    INSERT INTO resource_version (tenant, type, id, version, current, deleted, last_updated, body)
                    VALUES (?, ?, ?, ?, 1, 1, ?, NULL)
                    """,
                arguments: [tenant, type.rawValue, id, current.version + 1, Self.now()])
            let pk = db.lastInsertedRowID
            for p in current.patients {
                try db.execute(sql: "INSERT INTO resource_patient (pk, patient_id) VALUES (?, ?)", arguments: [pk, p])
            }
            if type == .patient {
                try db.execute(
                    sql: "UPDATE patient_meta SET contact = NULL, contact_key_version = NULL WHERE tenant = ? AND patient_id = ?", arguments: [tenant, id])
            }
            try auditLog.append([e], in: db)
        }
    }

    /// Writes many resources in one transaction under an explicit system scope (demo seeding, imports), with one
    /// audit record naming every patient. Ids are the caller's.
    public func importResources(
        _ ctx: AccessContext, _ items: [(type: ResourceType, json: JSON, owner: String?)]
    ) async throws(FHIRError) {
        guard let reason = ctx.scope.systemReason, ctx.scope.tenant != "*" else {
            throw await deny(ctx, interaction: "create", type: nil, id: nil, error: .forbidden("Imports need a system scope for one tenant"))
        }
        var prepared: [PreparedWrite] = []
        for item in items {
            try ResourceValidator.validate(item.json, as: item.type)
            guard let id = item.json["id"]?.stringValue else { throw .invalid("Imported resources need an id") }
            prepared.append(
                PreparedWrite(
                    type: item.type, id: id, json: item.json,
                    patients: ResourceIndexer.compartment(of: item.type, id: id, item.json),
                    terms: ResourceIndexer.terms(of: item.type, item.json), owner: item.owner))
        }
        let tenant = ctx.scope.tenant
        let e = entry(
            ctx, action: "create", type: nil, id: nil, patients: prepared.flatMap(\.patients), outcome: "success", status: 201,
            detail: "\(reason): \(prepared.count) resources")
        let scope = ctx.scope
        let all = prepared
        try await runWrite { [self] db in
            for p in all { _ = try insertVersion(db, tenant: tenant, p, version: 1, scope: scope) }
            try auditLog.append([e], in: db)
        }
    }

    /// Checks a write against the caller's scope: every reference must resolve to a resource the caller may see, and
    /// the resulting compartment must stay within what the caller may write.
    func prepare(_ ctx: AccessContext, _ type: ResourceType, id: String, _ json: JSON, previous: StoredResource?) async throws(FHIRError) -> PreparedWrite {
        let scope = ctx.scope
        let refs = Array(Set(ResourceIndexer.references(in: json)))
        let patients = ResourceIndexer.compartment(of: type, id: id, json)
        for ref in refs {
            // A patient (or their caregiver) may always name the patient whose compartment they write in, even when
            // their token does not read Patient (a caregiver for messages only).
            if case .compartment(let pid) = scope.rows, ref.type == .patient, ref.id == pid { continue }
            let visible = try await run { [self] db in
                if ref.type == .binary || ref.type == .documentReference {
                    // An attachment (its content, or the document a message points at) must be in the same patient's
                    // compartment as what refers to it: staff could otherwise hand one patient another's file.
                    let owners = try String.fetchAll(
                        db,
                        sql: """
                            SELECT rp.patient_id FROM resource_version v JOIN resource_patient rp ON rp.pk = v.pk
                            WHERE v.type = ? AND v.id = ? AND v.current = 1 AND v.tenant = ?
                            """,
                        arguments: [ref.type.rawValue, ref.id, scope.tenant])
                    guard Set(owners) == patients else { return false }
                }
                guard scope.rights(for: ref.type).read else { return false }
                return try scopedCount(db, scope, type: ref.type, where: "v.id = ? AND v.current = 1 AND v.deleted = 0", [ref.id]) > 0
            }
            guard visible else {
                throw await deny(
                    ctx, interaction: previous == nil ? "create" : "update", type: type, id: previous == nil ? nil : id,
                    error: .invalid("Reference \(ref) does not resolve to a resource you can access", at: nil),
                    detail: "unresolvable reference")
            }
        }
        var owner: String? = nil
        switch scope.rows {
        case .compartment(let pid):
            // A patient writes only into their own compartment, and speaks only as themselves.
            guard type != .patient, patients == [pid] else {
                throw await deny(ctx, interaction: "create", type: type, id: nil,
                    error: .invalid("A patient may only write resources about themselves"), detail: "compartment")
            }
            if type == .communication, json["sender"]?["reference"]?.stringValue != "Patient/\(pid)" {
                throw await deny(ctx, interaction: "create", type: type, id: nil,
                    error: .invalid("Communication.sender must be Patient/\(pid)", at: "Communication.sender"), detail: "sender")
            }
        case .partner(let clientID):
            if type == .patient {
                owner = previous == nil ? clientID : nil
            } else if type.isPatientData && patients.isEmpty {
                throw .invalid("\(type.rawValue) must reference one of your patients", at: "\(type.rawValue).subject")
            }
        case .tenant:
            break
        case .consented, .patients, .none:
            throw await deny(ctx, interaction: "create", type: type, id: nil, error: .forbidden("No access"))
        }
        return PreparedWrite(
            type: type, id: id, json: json, patients: patients, terms: ResourceIndexer.terms(of: type, json), owner: owner)
    }

    func retire(_ db: Database, type: ResourceType, id: String) throws {
        if type == .consent {
            try db.execute(sql: "DELETE FROM consent_grant WHERE consent_id = ?", arguments: [id])
        }
        try db.execute(
            sql: """
                DELETE FROM search_index WHERE pk IN (SELECT pk FROM resource_version WHERE type = ? AND id = ? AND current = 1);
                UPDATE resource_version SET current = 0 WHERE type = ? AND id = ? AND current = 1;
                """,
            arguments: [type.rawValue, id, type.rawValue, id])
    }

    func insertVersion(_ db: Database, tenant: String, _ write: PreparedWrite, version: Int, scope: AccessScope) throws -> StoredResource {
        let now = Self.now()
        var w = write
        if w.type == .medicationRequest, version == 1, RxNumber.of(w.json) == nil {
            // Every prescription gets the pharmacy's Rx number (the one on the label, used to sign up and to look up).
            var json = w.json
            json["identifier"] = .array((json["identifier"]?.arrayValue ?? []) + [RxNumber.identifier(try nextRxNumber(db, tenant: tenant))])
            w = PreparedWrite(
                type: w.type, id: w.id, json: json, patients: w.patients, terms: ResourceIndexer.terms(of: w.type, json), owner: w.owner)
        }
        var json = w.json
        json["meta"] = nil
        let owner = Self.keyOwner(w.type, id: w.id, w.json, patients: w.patients)
        let (cipher, keyVersion) = try keys.seal(db, tenant: tenant, owner: owner, json.encoded(), context: Self.cipherContext(tenant, w.type, w.id, version))
        try db.execute(
            sql: """
                INSERT INTO resource_version (tenant, type, id, version, current, deleted, last_updated, body, key_owner, key_version)
                VALUES (?, ?, ?, ?, 1, 0, ?, ?, ?, ?)
                """,
            arguments: [tenant, w.type.rawValue, w.id, version, now, cipher, owner, Int64(keyVersion)])
        let pk = db.lastInsertedRowID
        let insertPatient = try db.cachedStatement(sql: "INSERT OR IGNORE INTO resource_patient (pk, patient_id) VALUES (?, ?)")
        for p in w.patients { try insertPatient.execute(arguments: [pk, p]) }
        let insertTerm = try db.cachedStatement(sql: "INSERT INTO search_index (pk, param, value) VALUES (?, ?, ?)")
        for t in Set(w.terms) { try insertTerm.execute(arguments: [pk, t.parameter, blindIndex.stored(t)]) }
        if w.type == .consent, let patient = w.patients.first {
            for g in ConsentGrant.grants(in: w.json) {
                try db.execute(
                    sql: """
                        INSERT INTO consent_grant (tenant, consent_id, patient_id, client_id, purpose, elements, expires, starts)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [tenant, w.id, patient, g.clientID, g.purpose, "," + g.elements.joined(separator: ",") + ",",
                                AuditLog.timestamp(g.expires), g.starts.map(AuditLog.timestamp) ?? ""])
            }
        }
        if let owner = w.owner {
            try db.execute(
                sql: "INSERT OR REPLACE INTO patient_owner (tenant, patient_id, partner) VALUES (?, ?, ?)", arguments: [tenant, w.id, owner])
        }
        if w.type == .patient { try recordPatientMeta(db, tenant: tenant, id: w.id, w.json) }
        json["meta"] = .object(["versionId": .string(String(version)), "lastUpdated": .string(now)])
        if let allowed = scope.visibleElements(of: w.type), case .object(let o) = json {
            json = .object(o.filter { allowed.contains($0.key) })
        }
        return StoredResource(
            type: w.type, id: w.id, version: version, lastUpdated: now, deleted: false, json: json, patients: Array(w.patients).sorted())
    }

    /// The next Rx number of a tenant (`RX` and 7 digits from 5,000,001; the demo seeds lower ones).
    func nextRxNumber(_ db: Database, tenant: String) throws -> String {
        let n = try Int64.fetchOne(db, sql: "SELECT next FROM rx_number WHERE tenant = ?", arguments: [tenant]) ?? RxNumber.firstAssigned
        try db.execute(sql: "INSERT OR REPLACE INTO rx_number (tenant, next) VALUES (?, ?)", arguments: [tenant, n + 1])
        return String(format: "RX%07lld", n)
    }

    /// Whose data key seals a resource: the patient it is about (its subject, or the one patient in whose
    /// compartment it is), or `""`, the tenant's shared data key, for resources about no patient.
    static func keyOwner(_ type: ResourceType, id: String, _ json: JSON, patients: Set<String>) -> String {
        if type == .patient { return id }
        if let s = json["subject"]?["reference"]?.stringValue, let ref = Reference(s), ref.type == .patient, patients.contains(ref.id) {
            return ref.id
        }
        return patients.sorted().first ?? ""
    }

    static func newID() -> String {
        UUID().uuidString.lowercased()
    }

    static func now() -> String { AuditLog.timestamp(Date()) }
}
