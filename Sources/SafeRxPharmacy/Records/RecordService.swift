import SafeRxModel
import SafeRxPolicy
import SafeRxStore
import SafeRxStoreCore

/// The FHIR interactions on patient records: read, vread, history, search, create, update, delete and transactions,
/// each through the gate with the caller's access context (the scope is compiled into the gate's SQL; every answer
/// is audited there). What the interactions add on top of the gate lives here: a Consent names only elements the
/// pharmacy may release, a transaction Bundle is planned before it is written.
public struct RecordService: Sendable {
    let store: PharmacyStore
    let policy: PolicyTable

    /// One resource as the caller may see it.
    ///
    /// - throws: `FHIRError` of kind `notFound` (missing or not visible: the same answer), `forbidden` (the role may
    ///   never read the type), `gone` (deleted).
    public func read(_ ctx: AccessContext, _ type: ResourceType, id: String) async throws(FHIRError) -> StoredResource {
        try await store.read(ctx, type, id: id)
    }

    /// One version of a resource.
    public func vread(_ ctx: AccessContext, _ type: ResourceType, id: String, version: String) async throws(FHIRError) -> StoredResource {
        try await store.vread(ctx, type, id: id, version: version)
    }

    /// The largest `_count` of a history page.
    public static let maxHistoryPage = PharmacyStore.maxHistoryPage

    /// A resource's versions, newest first.
    public func history(_ ctx: AccessContext, _ type: ResourceType, id: String, count: Int, offset: Int) async throws(FHIRError) -> [StoredResource] {
        try await store.history(ctx, type, id: id, count: count, offset: offset)
    }

    /// Parses a search against the caller's scope and runs it.
    ///
    /// - parameter items: the query's name/value pairs as sent.
    /// - returns: the parsed query (for the Bundle's links) and one page.
    /// - throws: `FHIRError` of kind `invalid` (unknown or malformed parameters) or `forbidden` (a parameter over
    ///   elements the caller's purpose hides, audited as a denial).
    public func search(_ ctx: AccessContext, _ type: ResourceType, _ items: [(String, String)]) async throws(FHIRError) -> (query: SearchQuery, page: SearchPage) {
        let query: SearchQuery
        do {
            query = try SearchQuery.parse(type, items, scope: ctx.scope)
        } catch {
            if error.kind == .forbidden { throw await store.deny(ctx, interaction: "search", type: type, id: nil, error: error) }
            throw error
        }
        return (query, try await store.search(ctx, query))
    }

    /// Creates a resource; a Consent is first checked against what the pharmacy ever releases.
    public func create(_ ctx: AccessContext, _ type: ResourceType, _ json: JSON) async throws(FHIRError) -> StoredResource {
        if type == .consent { try await checkReleasable(json) }
        return try await store.create(ctx, type, json)
    }

    /// Writes a new version (`ifMatch`: the version the caller last saw, else 412).
    public func update(_ ctx: AccessContext, _ type: ResourceType, id: String, _ json: JSON, ifMatch: Int?) async throws(FHIRError) -> StoredResource {
        if type == .consent { try await checkReleasable(json) }
        return try await store.update(ctx, type, id: id, json, ifMatch: ifMatch)
    }

    /// Deletes a resource (a tombstone version).
    public func delete(_ ctx: AccessContext, _ type: ResourceType, id: String) async throws(FHIRError) {
        try await store.delete(ctx, type, id: id)
    }

    /// A `transaction` Bundle, all or nothing: planned (``BundleImport``: references resolved through the caller's
    /// scope, unsupported types skipped, unknown elements dropped), then written in one transaction.
    ///
    /// - returns: the plan (what was skipped and dropped) and the stored resources in entry order.
    public func transaction(_ ctx: AccessContext, _ bundle: JSON) async throws(FHIRError) -> (plan: BundleImport, stored: [StoredResource]) {
        guard bundle["type"]?.stringValue == "transaction" || bundle["resourceType"]?.stringValue != "Bundle" else {
            throw FHIRError.invalid("POST /fhir takes a Bundle of type 'transaction'", at: "Bundle.type")
        }
        let scope = ctx.scope
        let store = store
        let plan = try BundleImport.plan(bundle) { raw in store.resolveReference(raw, scope: scope) }
        return (plan, try await store.transaction(ctx, plan.items))
    }

    /// Imports one Bundle as other systems write it (Synthea's transaction Bundles included) under a system context
    /// for one pharmacy: planned like a transaction, then written all or nothing and audited with every patient it
    /// holds.
    ///
    /// - parameter known: conditional references (`Type?identifier=system|value`) of the other files of the same
    ///   import, so that patients' references to reference data in other files resolve (``BundleImport/identifierKeys(in:)``).
    /// - returns: what was imported, skipped and dropped.
    public func importBundle(_ ctx: AccessContext, _ bundle: JSON, known: [String: String]) async throws(FHIRError) -> BundleImport.Summary {
        let scope = ctx.scope
        let store = store
        let plan = try BundleImport.plan(bundle, known: known) { raw in store.resolveReference(raw, scope: scope) }
        if !plan.items.isEmpty { _ = try await store.importBundle(ctx, plan.items) }
        return plan.summary
    }

    /// An authorization may name only elements the policy table ever releases to that client for that purpose: one
    /// that names others is refused when it is signed (walk-through finding 13), instead of being accepted and then
    /// silently not released.
    func checkReleasable(_ consent: JSON) async throws(FHIRError) {
        try ConsentGrant.validate(consent)  // unknown elements are named as such first
        for g in ConsentGrant.grants(in: consent) {
            guard let client = try await store.client(id: g.clientID), let role = Role(rawValue: client.role),
                let purpose = PurposeOfUse(rawValue: g.purpose)
            else { continue }
            let never = policy.neverReleased(g.elements, to: role, for: purpose)
            guard never.isEmpty else {
                throw FHIRError.invalid(
                    "This authorization names \(never.joined(separator: ", ")), which the pharmacy never releases to \(client.name) for "
                        + "purpose \(purpose.rawValue); remove \(never.count == 1 ? "it" : "them") (it would be signed and then not released)",
                    at: "Consent.provision")
            }
        }
    }
}
