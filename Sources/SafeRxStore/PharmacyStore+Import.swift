import Foundation
import SafeRxSQL
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStoreCore
import SafeRxVault

extension PharmacyStore {
    /// Resolves a reference from an imported Bundle to a stored resource the scope can see: a literal `Type/id`, or a
    /// conditional `Type?identifier=system|value` (through the blind index, within the scope). `nil` if none or ambiguous.
    package func resolveReference(_ raw: String, scope: AccessScope) -> String? {
        if let ref = Reference(raw) {
            let n = (try? readOnCallingThread { db in
                try scopedCount(db, scope, type: ref.type, where: "v.id = ? AND v.current = 1 AND v.deleted = 0", [ref.id])
            }) ?? 0
            return n > 0 ? raw : nil
        }
        guard let (type, identifier) = BundleImport.conditional(raw) else { return nil }
        let sensitive = SearchParameter.all(for: type)["identifier"]?.sensitive ?? true
        let token = blindIndex.stored(IndexTerm("identifier", identifier, sensitive: sensitive))
        let rows = (try? readOnCallingThread { db in
            try scopedRows(
                db, scope, type: type,
                where: "v.current = 1 AND v.deleted = 0 AND v.pk IN (SELECT pk FROM search_index WHERE param = 'identifier' AND value = ?)", [token],
                suffix: "LIMIT 2")
        }) ?? []
        return rows.count == 1 ? "\(type.rawValue)/\(rows[0].id)" : nil
    }

    /// A FHIR `transaction` Bundle through the caller's scope: every resource is created (ids from the Bundle, never
    /// one already stored), each type needs the create right, references must point inside the Bundle or at
    /// resources the caller can see, and a partner's new patients become theirs. All or nothing, one audit record.
    package func transaction(_ ctx: AccessContext, _ items: [BundleImport.Item]) async throws(FHIRError) -> [StoredResource] {
        let scope = ctx.scope
        switch scope.rows {
        case .tenant, .partner: break
        default:
            throw await deny(ctx, interaction: "transaction", type: nil, id: nil, error: .forbidden("Only pharmacy staff and partners may post transaction Bundles"))
        }
        guard !items.isEmpty else { throw .invalid("The Bundle holds no resource SafeRx can store") }
        guard items.count <= 5000 else { throw .invalid("A transaction may hold at most 5000 resources; split the Bundle") }
        let inBundle = Set(items.compactMap { i in i.json["id"]?.stringValue.map { "\(i.type.rawValue)/\($0)" } })
        var prepared: [PreparedWrite] = []
        let byReference = Dictionary(items.compactMap { i in i.json["id"]?.stringValue.map { ("\(i.type.rawValue)/\($0)", i.json) } }, uniquingKeysWith: { a, _ in a })
        for item in items {
            try await requireRight(ctx, item.type, "create", nil, scope.rights(for: item.type).create)
            if item.type == .medicationDispense || (item.type == .medicationRequest && item.json["status"]?.stringValue != "draft"
                && !scope.rights(for: .medicationRequest).changeStatus) {
                throw await deny(ctx, interaction: "transaction", type: item.type, id: nil,
                    error: .forbidden("\(item.type.rawValue) cannot be created in a transaction by this role; use the FHIR API"))
            }
            guard let id = item.json["id"]?.stringValue, FHIRID.isValid(id) else { throw .invalid("Every resource in the transaction needs an id") }
            if item.type == .medicationRequest { try await checkPrescription(ctx, item.json, bundle: byReference) }
            for ref in Set(ResourceIndexer.references(in: item.json)) where !inBundle.contains(ref.description) {
                let visible = try await run { [self] db in
                    guard scope.rights(for: ref.type).read else { return false }
                    return try scopedCount(db, scope, type: ref.type, where: "v.id = ? AND v.current = 1 AND v.deleted = 0", [ref.id]) > 0
                }
                guard visible else {
                    throw await deny(ctx, interaction: "transaction", type: item.type, id: nil,
                        error: .invalid("Reference \(ref) does not resolve to a resource in the Bundle or one you can access"), detail: "unresolvable reference")
                }
            }
            var owner: String? = nil
            let patients = ResourceIndexer.compartment(of: item.type, id: id, item.json)
            if case .partner(let clientID) = scope.rows {
                if item.type == .patient { owner = clientID } else if item.type.isPatientData && patients.isEmpty {
                    throw .invalid("\(item.type.rawValue)/\(id) must reference one of your patients")
                }
            }
            prepared.append(PreparedWrite(type: item.type, id: id, json: item.json, patients: patients, terms: ResourceIndexer.terms(of: item.type, item.json), owner: owner))
        }
        return try await writeImport(ctx, prepared, action: "transaction")
    }

    /// Writes prepared resources in one transaction with one audit record; refuses ids already stored.
    func writeImport(_ ctx: AccessContext, _ prepared: [PreparedWrite], action: String) async throws(FHIRError) -> [StoredResource] {
        let tenant = ctx.scope.tenant, scope = ctx.scope
        let e = entry(
            ctx, action: action, type: nil, id: nil, patients: Set(prepared.flatMap(\.patients)), outcome: "success", result: .ok,
            detail: "\(ctx.scope.systemReason.map { "\($0): " } ?? "")\(prepared.count) resources")
        return try await runWrite { [self] db in
            var out: [StoredResource] = []
            let taken = try db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM resource_version WHERE type = ? AND id = ?)")
            for p in prepared {
                if try Bool.fetchOne(taken, arguments: [p.type.rawValue, p.id]) == true {
                    throw FHIRError.conflict("\(p.type.rawValue)/\(p.id) already exists (was this Bundle imported before?); nothing was written")
                }
                out.append(try insertVersion(db, tenant: tenant, p, version: 1, scope: scope))
            }
            try auditLog.append([e], in: db)
            return out
        }
    }

    /// Imports planned Bundles under an audited system scope for one tenant (`saferx import`).
    package func importBundle(_ ctx: AccessContext, _ items: [BundleImport.Item]) async throws(FHIRError) -> Int {
        guard ctx.scope.systemReason != nil, ctx.scope.tenant != "*" else {
            throw await deny(ctx, interaction: "create", type: nil, id: nil, error: .forbidden("Imports need a system scope for one tenant"))
        }
        let prepared = items.compactMap { item -> PreparedWrite? in
            guard let id = item.json["id"]?.stringValue else { return nil }
            return PreparedWrite(
                type: item.type, id: id, json: item.json, patients: ResourceIndexer.compartment(of: item.type, id: id, item.json),
                terms: ResourceIndexer.terms(of: item.type, item.json), owner: nil)
        }
        return try await writeImport(ctx, prepared, action: "import").count
    }
}
