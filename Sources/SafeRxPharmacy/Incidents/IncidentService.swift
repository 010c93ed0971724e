import Foundation
import SafeRxBreach
import SafeRxModel
import SafeRxPolicy
import SafeRxStore
import SafeRxStoreCore
import SafeRxVault

/// Breach response for the privacy officers of one pharmacy (`/incidents`; `saferx incident` runs the same steps):
/// declare, scope, assess with judgements, obligations, documents, report. Each method checks the caller (a privacy
/// officer of the incident's pharmacy, or an operator's ``AccessContext/operatorCommand(reason:tenant:write:)`` on
/// the command line), answers 404 for another pharmacy's incident exactly as for a missing one, and records its own
/// audit entry (the scope, letters and mail merge name the patients).
public struct IncidentService: Sendable {
    let store: PharmacyStore
    let access: AccessService

    static let officers: Set<Role> = [.privacyOfficer]

    /// Privacy officers, and operators' and system contexts (made in code, never from a token).
    func authorize(_ ctx: AccessContext, _ interaction: String) async throws(FHIRError) {
        guard !ctx.isSystem else { return }
        try await access.require(ctx, Self.officers, interaction: interaction, "Incidents are for privacy officers")
    }

    /// The incident `id` if the caller may act on it (404 for another pharmacy's exactly as for a missing one), and
    /// the caller's context narrowed to the incident's pharmacy: what the step records belongs to that pharmacy.
    func incident(_ ctx: AccessContext, _ id: String, _ interaction: String) async throws(FHIRError) -> (Incident, AccessContext) {
        try await authorize(ctx, interaction)
        guard let i = try await store.incident(id: id), ctx.covers(tenant: i.tenant) else {
            throw FHIRError(kind: .notFound, code: "not-found", diagnostics: "No incident \(String(id.prefix(40)))")
        }
        return (i, ctx.narrowed(to: i.tenant))
    }

    /// The incident of a package the caller holds, checked as ``incident(_:_:_:)`` does; the package must be the one
    /// this service answered for it (its tenant and declaration unchanged).
    func incident(_ ctx: AccessContext, of p: BreachResponse.Package, _ interaction: String) async throws(FHIRError) -> (Incident, AccessContext) {
        let (i, scoped) = try await incident(ctx, p.incident.id, interaction)
        guard i == p.incident else { throw FHIRError.conflict("Incident \(i.id) changed since its package was made; make it again") }
        return (i, scoped)
    }

    /// Who a step is recorded as taken by: the officer themselves, or for an operator the name given (`--by`) or
    /// their login.
    static func who(_ ctx: AccessContext, _ by: String?) -> String {
        guard ctx.isSystem else { return ctx.scope.principal.subject }
        return by ?? AccessContext.operatorLogin
    }

    /// The pharmacy's incidents (every pharmacy's for an operator over `*`), newest first.
    public func list(_ ctx: AccessContext) async throws(FHIRError) -> [Incident] {
        try await authorize(ctx, "incidents")
        let list = try await store.incidents().filter { ctx.covers(tenant: $0.tenant) }
        try await access.record(ctx, "incidents", detail: "\(list.count) incidents listed")
        return list
    }

    /// Declares an incident of the caller's pharmacy, declared by the caller now.
    ///
    /// - parameter discovered: the first day anyone knew or should have known (`YYYY-MM-DD`).
    /// - parameter actions: what the pharmacy is doing; empty leaves the documents' "TO BE COMPLETED" in place.
    /// - parameter by: for an operator, who declares (default: their login); an officer declares as themselves.
    /// - returns: the incident's id.
    public func declare(
        _ ctx: AccessContext, discovered: String, actors: [String], from: String?, to: String?, files: [String], sources: [String],
        resources: [String], fileKeyCompromised: Bool, description: String?, actions: String, role: String, by: String? = nil
    ) async throws(FHIRError) -> String {
        try await authorize(ctx, "incident-declare")
        guard ctx.scope.tenant != "*" else { throw FHIRError.invalid("An incident is declared for one pharmacy (--tenant)") }
        guard ["covered-entity", "business-associate"].contains(role) else { throw FHIRError.invalid("'role' is covered-entity or business-associate") }
        let id = "inc-" + String(UUID().uuidString.lowercased().prefix(8))
        try await store.declareIncident(
            ctx,
            Incident(
                id: id, tenant: ctx.scope.tenant, discovered: discovered, declared: Instant.now(), declaredBy: Self.who(ctx, by),
                actors: actors, from: from, to: to, files: files, sources: sources, resources: resources, fileKeyCompromised: fileKeyCompromised,
                description: description ?? "Someone without authorization used access to our pharmacy system to view patient information.",
                whatWeAreDoing: actions, role: role))
        return id
    }

    /// The incident's certified scope: who was affected, with what and when (audited, naming every affected patient).
    /// - throws: `FHIRError` of kind `conflict` when the audit chain does not verify (the scope cannot be certified).
    public func scope(_ ctx: AccessContext, incident id: String) async throws(FHIRError) -> (Incident, IncidentScope) {
        let (i, ctx) = try await incident(ctx, id, "incident-scope")
        let (_, scope) = try await BreachResponse.scope(store, i.id)
        guard scope.certified else {
            throw FHIRError.conflict("REFUSING TO CERTIFY incident \(i.id): \(scope.chainProblem ?? "the audit chain does not verify")")
        }
        try await access.record(ctx, "incident-scope", patients: scope.affected.map(\.patient), detail: "incident \(i.id): \(scope.affected.count) affected")
        return (i, scope)
    }

    /// A judgement for the risk assessment: an answer to one of ``Assessment/Question``, or the conclusion
    /// (`breach`, `low-probability` or `exception`; safe harbor is computed, never judged).
    public enum Judgement: Sendable {
        case answer(question: String, text: String)
        case conclusion(String, text: String)
    }

    /// Records a judgement and answers the assessment as it now stands.
    /// - parameter by: for an operator, who judges (default: their login).
    public func judge(_ ctx: AccessContext, incident id: String, _ judgement: Judgement, by: String? = nil) async throws(FHIRError) -> BreachResponse.Package {
        let (i, ctx) = try await incident(ctx, id, "incident-assess")
        let by = Self.who(ctx, by)
        switch judgement {
        case .answer(let q, let text):
            guard Assessment.Question(rawValue: q) != nil else {
                throw FHIRError.invalid("Unknown question; one of \(Assessment.Question.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            try await store.recordJudgement(ctx, incident: i.id, question: q, text: text, by: by)
        case .conclusion(let c, let text):
            guard let conclusion = Assessment.Conclusion(rawValue: c), conclusion != .notUnsecured, conclusion != .noneAffected else {
                throw FHIRError.invalid("'conclusion' is breach, low-probability or exception (safe harbor is computed)")
            }
            try await store.recordJudgement(ctx, incident: i.id, question: "conclusion", text: "\(conclusion.rawValue): \(text)", by: by)
        }
        return try await package(ctx, incident: i.id, "incident-assess")
    }

    /// Records that an obligation was met on `day`, and answers the obligations as they now stand.
    public func markDone(
        _ ctx: AccessContext, incident id: String, obligation: String, on day: String, note: String, by: String? = nil
    ) async throws(FHIRError) -> BreachResponse.Package {
        let (i, ctx) = try await incident(ctx, id, "incident-obligations")
        try await BreachResponse.markDone(store, ctx, i.id, obligation: obligation, on: day, by: Self.who(ctx, by), note: note)
        return try await package(ctx, incident: i.id, "incident-obligations")
    }

    /// Records a law-enforcement official's written request to delay notices until `day` (164.412).
    public func delayNotices(_ ctx: AccessContext, incident id: String, until day: String, by: String? = nil) async throws(FHIRError) {
        let (found, ctx) = try await incident(ctx, id, "incident-update")
        var i = found
        guard CivilDate(day) != nil, day.count == 10 else {
            throw FHIRError.invalid("'\(String(day.prefix(40)))' is not a date like 2027-01-31 (YYYY-MM-DD)")
        }
        i.lawEnforcementDelayUntil = day
        try await store.updateIncident(ctx, i, by: Self.who(ctx, by), what: "law-enforcement delay until \(day)")
    }

    /// A print vendor (a fulfillment vendor of the incident's pharmacy): letters and the mail merge are sealed to its key.
    public struct PrintVendor: Sendable {
        public let id: String
        let publicKey: Data

        /// `data` encrypted to the vendor's key (only the vendor can open it).
        public func seal(_ data: Data) throws -> Data { try SealedFile.seal(data, to: publicKey, recipientID: id) }
    }

    /// The print vendor `vendor` of the incident's pharmacy.
    /// - throws: `FHIRError` of kind `notFound` when the pharmacy has no such vendor.
    public func printVendor(_ ctx: AccessContext, incident: BreachResponse.Package, vendor: String) async throws(FHIRError) -> PrintVendor {
        let (i, _) = try await self.incident(ctx, of: incident, "incident-documents")
        guard let key = try await store.vendorKey(id: vendor, tenant: i.tenant) else {
            throw FHIRError(
                kind: .notFound, code: "not-found",
                diagnostics: "No print vendor '\(String(vendor.prefix(40)))' in \(i.tenant): add it with saferx fulfillment vendor-add")
        }
        return PrintVendor(id: vendor, publicKey: key)
    }

    /// The letters to `patients` (each individual, plus a copy to a caregiver on record) with each person's own data
    /// elements. Names and addresses: the caller records their disclosure with ``recordDocuments(_:incident:patients:detail:)``
    /// before anything is written.
    public func letters(_ ctx: AccessContext, _ p: BreachResponse.Package, patients: [String]) async throws(FHIRError) -> [Letter] {
        _ = try await incident(ctx, of: p, "incident-documents")
        return try await BreachResponse.letters(store, p, patients: patients)
    }

    /// The complete mail-merge file for a print vendor (see ``letters(_:_:patients:)``).
    public func mailMerge(_ ctx: AccessContext, _ p: BreachResponse.Package, patients: [String]) async throws(FHIRError) -> BreachResponse.MailMerge {
        _ = try await incident(ctx, of: p, "incident-documents")
        return try await BreachResponse.mailMerge(store, p, patients: patients)
    }

    /// Records that the incident's documents were produced, naming every patient whose data they carry.
    public func recordDocuments(_ ctx: AccessContext, incident id: String, patients: [String], detail: String) async throws(FHIRError) {
        let (i, ctx) = try await incident(ctx, id, "incident-documents")
        try await access.record(ctx, "incident-documents", patients: patients, detail: "incident \(i.id): \(detail)")
    }

    /// Scope, residence, assessment and obligations (what the assess, obligations and report steps show), recorded
    /// as `action`.
    public func package(_ ctx: AccessContext, incident id: String, _ action: String) async throws(FHIRError) -> BreachResponse.Package {
        let (i, ctx) = try await incident(ctx, id, action)
        let p = try await BreachResponse.package(store, i.id)
        try await access.record(ctx, action, detail: "incident \(i.id)")
        return p
    }
}
