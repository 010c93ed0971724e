import Foundation
import SafeRxSQL
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStoreCore
import SafeRxVault

extension PharmacyStore {
    /// A resource to write, as prepared and checked before the transaction.
    struct PreparedWrite: Sendable {
        let type: ResourceType
        let id: String
        let json: JSON
        let patients: Set<String>
        let terms: [IndexTerm]
        /// For a Patient created by a partner: the partner that owns it. For a prescription, fill or message
        /// (``AccessScope/partyTypes``) imported by a system job: the partner that is a party to it.
        let owner: String?
    }

    /// FHIR create. The server assigns the id.
    package func create(_ ctx: AccessContext, _ type: ResourceType, _ json: JSON) async throws(FHIRError) -> StoredResource {
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
        if type == .binary { try await checkUploadQuota(ctx, patients: prepared.patients) }
        if type == .medicationRequest {
            if TransferIn.of(body) != nil, body["status"]?.stringValue != "draft" {
                throw FHIRError.invalid("A transfer-in request is created in status 'draft'; a pharmacist accepts it by making it active", at: "MedicationRequest.status")
            }
            try await checkPrescription(ctx, body)
        }
        let tenant = ctx.scope.tenant
        let scope = ctx.scope
        let e = entry(ctx, action: "create", type: type, id: id, patients: prepared.patients, outcome: "success", result: .created)
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
    package func update(
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
            throw FHIRError(kind: .preconditionFailed, code: "conflict", diagnostics: "If-Match version \(ifMatch) is not the current version \(current.version)")
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
            result: .ok)
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
    package func delete(_ ctx: AccessContext, _ type: ResourceType, id: String) async throws(FHIRError) {
        try await requireRight(ctx, type, "delete", id, ctx.scope.rights(for: type).delete)
        let scope = ctx.scope
        let current = try await run { [self] db in
            try scopedRows(db, scope, type: type, where: "v.id = ? AND v.current = 1", [id]).first
        }
        guard let current else { throw await missing(ctx, "delete", type, id) }
        if current.deleted {
            try await commitAudit(entry(ctx, action: "delete", type: type, id: id, patients: [String](), outcome: "success", result: .deleted))
            return
        }
        let tenant = scope.tenant
        let e = entry(ctx, action: "delete", type: type, id: id, patients: current.patients, outcome: "success", result: .deleted)
        try await runWrite { [self] db in
            let latest = try Int.fetchOne(
                db, sql: "SELECT version FROM resource_version WHERE type = ? AND id = ? AND current = 1", arguments: [type.rawValue, id])
            guard latest == current.version else {
                throw FHIRError.conflict("\(type.rawValue)/\(id) was changed by another request; read it again and retry")
            }
            try retire(db, type: type, id: id)
            let pk = try Int64.fetchOne(
                db,
                sql: """
                    INSERT INTO resource_version (tenant, type, id, version, current, deleted, last_updated, body)
                    VALUES (?, ?, ?, ?, 1, 1, ?, NULL) RETURNING pk
                    """,
                arguments: [tenant, type.rawValue, id, current.version + 1, self.timestamp()]) ?? 0
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
    package func importResources(
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
            ctx, action: "create", type: nil, id: nil, patients: prepared.flatMap(\.patients), outcome: "success", result: .created,
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
    func prepare(_ ctx: AccessContext, _ type: ResourceType, id: String, _ body: JSON, previous: StoredResource?) async throws(FHIRError) -> PreparedWrite {
        let scope = ctx.scope
        var json = try await checkServerOwned(ctx, type, body, previous: previous?.json)
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
            if type == .communication {
                // A partner speaks only as itself: the sender is set from its credentials, never from the body.
                let me = JSON.object(["system": .string(Self.apiClientSystem), "value": .string(clientID)])
                if let given = json["sender"], given["reference"] != nil || given["identifier"] != me {
                    throw await deny(ctx, interaction: "create", type: type, id: nil,
                        error: .invalid(
                            "Communication.sender is set by SafeRx from your credentials (\(Self.apiClientSystem)|\(clientID)); leave it out",
                            at: "Communication.sender"),
                        detail: "sender")
                }
                json["sender"] = .object(["identifier": me, "display": .string(clientID)])
            }
        case .tenant:
            if scope.systemReason == nil, type == .communication, let sender = json["sender"] {
                // Staff write as the pharmacy (or one of its practitioners), never as a patient or a partner.
                let ref = sender["reference"]?.stringValue.flatMap(Reference.init)
                guard let ref, ref.type == .organization || ref.type == .practitioner else {
                    throw await deny(ctx, interaction: "create", type: type, id: nil,
                        error: .invalid("Communication.sender of a staff message must be the pharmacy (Organization/…) or a Practitioner", at: "Communication.sender"),
                        detail: "sender")
                }
            }
        case .consented, .patients, .none:
            throw await deny(ctx, interaction: "create", type: type, id: nil, error: .forbidden("No access"))
        }
        return PreparedWrite(
            type: type, id: id, json: json, patients: patients, terms: ResourceIndexer.terms(of: type, json), owner: owner)
    }

    func retire(_ db: any SQLConnection, type: ResourceType, id: String) throws {
        if type == .consent {
            // Ended, not deleted: detection replayed later judges earlier releases by what was in force then.
            try db.execute(
                sql: "UPDATE consent_grant SET ended = ? WHERE consent_id = ? AND ended = ''", arguments: [AuditLog.timestamp(auditLog.clock()), id])
        }
        try db.execute(
            sql: "DELETE FROM search_index WHERE pk IN (SELECT pk FROM resource_version WHERE type = ? AND id = ? AND current = 1)",
            arguments: [type.rawValue, id])
        try db.execute(sql: "UPDATE resource_version SET current = 0 WHERE type = ? AND id = ? AND current = 1", arguments: [type.rawValue, id])
    }

    func insertVersion(_ db: any SQLConnection, tenant: String, _ write: PreparedWrite, version: Int, scope: AccessScope) throws -> StoredResource {
        let now = self.timestamp()
        var w = write
        if w.type == .medicationRequest, version == 1, RxNumber.of(w.json) == nil {
            // Every prescription gets the pharmacy's Rx number (the one on the label, used to sign up and to look up).
            var json = w.json
            json["identifier"] = .array((json["identifier"]?.arrayValue ?? []) + [RxNumber.identifier(try nextRxNumber(db, tenant: tenant))])
            w = PreparedWrite(
                type: w.type, id: w.id, json: json, patients: w.patients, terms: ResourceIndexer.terms(of: w.type, json), owner: w.owner)
        }
        if w.type == .patient, version == 1, !(w.json["identifier"]?.arrayValue ?? []).contains(where: { $0["system"]?.stringValue == MRN.system }) {
            // Every patient gets the pharmacy's medical record number.
            var json = w.json
            json["identifier"] = .array((json["identifier"]?.arrayValue ?? []) + [MRN.identifier(try nextMRN(db, tenant: tenant))])
            w = PreparedWrite(
                type: w.type, id: w.id, json: json, patients: w.patients, terms: ResourceIndexer.terms(of: w.type, json), owner: w.owner)
        }
        var json = w.json
        json["meta"] = nil
        let owner = Self.keyOwner(w.type, id: w.id, w.json, patients: w.patients)
        let (cipher, keyVersion) = try keys.seal(db, tenant: tenant, owner: owner, json.encoded(), context: Self.cipherContext(tenant, w.type, w.id, version))
        let pk = try Int64.fetchOne(
            db,
            sql: """
                INSERT INTO resource_version (tenant, type, id, version, current, deleted, last_updated, body, key_owner, key_version)
                VALUES (?, ?, ?, ?, 1, 0, ?, ?, ?, ?) RETURNING pk
                """,
            arguments: [tenant, w.type.rawValue, w.id, version, now, cipher, owner, Int64(keyVersion)]) ?? 0
        let insertPatient = try db.cachedStatement(sql: "INSERT OR IGNORE INTO resource_patient (pk, patient_id) VALUES (?, ?)")
        for p in w.patients { try insertPatient.execute(arguments: [pk, p]) }
        let insertTerm = try db.cachedStatement(sql: "INSERT INTO search_index (pk, param, value) VALUES (?, ?, ?)")
        for t in Set(w.terms) { try insertTerm.execute(arguments: [pk, t.parameter, blindIndex.stored(t)]) }
        if w.type == .consent, let patient = w.patients.first {
            for g in ConsentGrant.grants(in: w.json) {
                try db.execute(
                    sql: """
                        INSERT INTO consent_grant (tenant, consent_id, patient_id, client_id, purpose, elements, expires, starts, began)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [tenant, w.id, patient, g.clientID, g.purpose, "," + g.elements.joined(separator: ",") + ",",
                                AuditLog.timestamp(g.expires), g.starts.map(AuditLog.timestamp) ?? "", AuditLog.timestamp(auditLog.clock())])
            }
        }
        if let owner = w.owner, w.type == .patient {
            try db.execute(
                sql: "INSERT INTO patient_owner (tenant, patient_id, partner) VALUES (?, ?, ?) ON CONFLICT (tenant, patient_id) DO UPDATE SET partner = excluded.partner", arguments: [tenant, w.id, owner])
        }
        if w.type == .patient { try recordPatientMeta(db, tenant: tenant, id: w.id, w.json) }
        if version == 1, AccessScope.partyTypes.contains(w.type) { try recordParties(db, tenant: tenant, w, scope: scope) }
        json["meta"] = .object(["versionId": .string(String(version)), "lastUpdated": .string(now)])
        if let allowed = scope.visibleElements(of: w.type), case .object(let o) = json {
            json = .object(o.filter { allowed.contains($0.key) })
        }
        return StoredResource(
            type: w.type, id: w.id, version: version, lastUpdated: now, deleted: false, json: json, patients: Array(w.patients).sorted())
    }

    /// Attachments one patient's record may hold: files and stored bytes (ciphertext of base64 content).
    package static let uploadQuota = (files: 500, bytes: 250 * 1024 * 1024)

    /// Refuses a new file when the patient's record already holds ``uploadQuota`` (a bounded amount of work and space
    /// per patient, whoever uploads).
    func checkUploadQuota(_ ctx: AccessContext, patients: Set<String>) async throws(FHIRError) {
        let tenant = ctx.scope.tenant
        for patient in patients {
            let (files, bytes) = try await run { db -> (Int, Int) in
                let row = try SQLRow.fetchOne(
                    db, sql: """
                        SELECT COUNT(*), COALESCE(SUM(length(v.body)), 0) FROM resource_version v JOIN resource_patient rp ON rp.pk = v.pk
                        WHERE v.type = 'Binary' AND v.tenant = ? AND v.current = 1 AND v.deleted = 0 AND rp.patient_id = ?
                        """, arguments: [tenant, patient])
                return (row?[0] ?? 0, row?[1] ?? 0)
            }
            if files >= Self.uploadQuota.files || bytes >= Self.uploadQuota.bytes {
                throw await deny(ctx, interaction: "create", type: .binary, id: nil,
                    error: .businessRule("upload-quota", "This patient's record holds the most attachments it may (\(Self.uploadQuota.files) files or \(Self.uploadQuota.bytes / 1_048_576) MB); delete one first or ask the pharmacy"),
                    detail: "upload quota")
            }
        }
    }

    /// Identifier systems whose values only the pharmacy assigns: Rx numbers and medical record numbers.
    static let pharmacyIdentifierSystems: [ResourceType: String] = [.medicationRequest: RxNumber.system, .patient: MRN.system]

    /// Server-owned fields are the server's: a client may not set the pharmacy's identifiers (Rx number, MRN) on a
    /// new resource, nor change them on an existing one (they would let one record pass for another, for example at
    /// sign-up). An update that leaves them out keeps them. System jobs (the demo seed, the importer of the
    /// pharmacy's own data) may set them.
    /// - returns: the resource with the identifiers on record.
    func checkServerOwned(_ ctx: AccessContext, _ type: ResourceType, _ json: JSON, previous: JSON?) async throws(FHIRError) -> JSON {
        guard let system = Self.pharmacyIdentifierSystems[type] else { return json }
        func owned(_ r: JSON?) -> [JSON] { (r?["identifier"]?.arrayValue ?? []).filter { $0["system"]?.stringValue == system } }
        let given = owned(json)
        guard !given.isEmpty else {
            let kept = owned(previous)
            guard !kept.isEmpty else { return json }
            var out = json
            out["identifier"] = .array((json["identifier"]?.arrayValue ?? []) + kept)
            return out
        }
        guard ctx.scope.systemReason == nil else { return json }
        let kept = owned(previous).map { $0["value"] }
        if given.map({ $0["value"] }) != kept {
            let what = type == .patient ? "medical record number" : "Rx number"
            throw await deny(ctx, interaction: previous == nil ? "create" : "update", type: type, id: nil,
                error: .invalid(
                    "\(type.rawValue).identifier: the \(what) (\(system)) is assigned by the pharmacy; leave it out"
                        + (previous == nil ? "" : " or send the one on record unchanged"),
                    at: "\(type.rawValue).identifier"),
                detail: "server-owned identifier")
        }
        return json
    }

    /// Records which partners are a party to a new prescription, fill or message: the partner that writes it; for a
    /// fill, the partners of the prescription it fills; for a message, the partners of the message it answers and
    /// the partner it is addressed to.
    func recordParties(_ db: any SQLConnection, tenant: String, _ w: PreparedWrite, scope: AccessScope) throws {
        var parties = Set<String>()
        if case .partner(let client) = scope.rows { parties.insert(client) }
        // An import names the partner that sent a prescription (`owner` of a non-Patient item).
        if let owner = w.owner { parties.insert(owner) }
        var sources: [Reference] = []
        switch w.type {
        case .medicationDispense:
            sources = (w.json["authorizingPrescription"]?.arrayValue ?? []).compactMap { $0["reference"]?.stringValue.flatMap(Reference.init) }
        case .communication:
            sources = (w.json["inResponseTo"]?.arrayValue ?? []).compactMap { $0["reference"]?.stringValue.flatMap(Reference.init) }
            for r in w.json["recipient"]?.arrayValue ?? [] where r["identifier"]?["system"]?.stringValue == Self.apiClientSystem {
                if let client = r["identifier"]?["value"]?.stringValue,
                    try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM api_client WHERE client_id = ? AND tenant = ?)", arguments: [client, tenant]) == true
                {
                    parties.insert(client)
                }
            }
        default:
            break
        }
        for source in sources {
            parties.formUnion(try String.fetchAll(
                db, sql: "SELECT party FROM resource_party WHERE tenant = ? AND type = ? AND id = ?",
                arguments: [tenant, source.type.rawValue, source.id]))
        }
        let insert = try db.cachedStatement(sql: "INSERT OR IGNORE INTO resource_party (party, tenant, type, id) VALUES (?, ?, ?, ?)")
        for party in parties { try insert.execute(arguments: [party, tenant, w.type.rawValue, w.id]) }
    }

    /// The identifier system that names an API client (a partner) as the author or addressee of a message.
    package static let apiClientSystem = "urn:saferx:api-client"

    /// The next Rx number of a tenant (`RX` and 7 digits from 5,000,001; the demo seeds lower ones).
    func nextRxNumber(_ db: any SQLConnection, tenant: String) throws -> String {
        let n = try Int64.fetchOne(db, sql: "SELECT next FROM rx_number WHERE tenant = ?", arguments: [tenant]) ?? RxNumber.firstAssigned
        try db.execute(sql: "INSERT INTO rx_number (tenant, next) VALUES (?, ?) ON CONFLICT (tenant) DO UPDATE SET next = excluded.next", arguments: [tenant, n + 1])
        return String(format: "RX%07lld", n)
    }

    /// The next medical record number of a tenant (`MRN` and 7 digits from 1,000,001; the demo seeds 6-digit ones).
    func nextMRN(_ db: any SQLConnection, tenant: String) throws -> String {
        let n = try Int64.fetchOne(db, sql: "SELECT next FROM pharmacy_counter WHERE tenant = ? AND name = 'mrn'", arguments: [tenant]) ?? MRN.firstAssigned
        try db.execute(sql: "INSERT INTO pharmacy_counter (tenant, name, next) VALUES (?, 'mrn', ?) ON CONFLICT (tenant, name) DO UPDATE SET next = excluded.next", arguments: [tenant, n + 1])
        return String(format: "MRN%07lld", n)
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

    package static func newID() -> String {
        UUID().uuidString.lowercased()
    }

    /// The clock's time as stored in rows (ISO 8601, UTC, milliseconds).
    func timestamp() -> String { AuditLog.timestamp(self.clock.now) }
}
