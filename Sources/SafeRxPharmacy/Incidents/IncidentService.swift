import Foundation
import SafeRxBreach
import SafeRxModel
import SafeRxPolicy
import SafeRxStore
import SafeRxStoreCore

/// Breach response for the privacy officers of one pharmacy (`/incidents`; `saferx incident` runs the same steps):
/// declare, scope, assess with judgements, obligations, report. Each method checks the caller's role, answers 404
/// for another pharmacy's incident exactly as for a missing one, and records its own audit entry (the scope names the
/// affected patients).
public struct IncidentService: Sendable {
    let store: PharmacyStore
    let access: AccessService

    static let officers: Set<Role> = [.privacyOfficer]

    func incident(_ ctx: AccessContext, _ id: String, _ interaction: String) async throws(FHIRError) -> Incident {
        try await access.require(ctx, Self.officers, interaction: interaction, "Incidents are for privacy officers")
        guard let i = try await store.incident(id: id), i.tenant == ctx.scope.tenant else { throw FHIRError.notFoundPath("incident") }
        return i
    }

    /// The pharmacy's incidents, newest first.
    public func list(_ ctx: AccessContext) async throws(FHIRError) -> [Incident] {
        try await access.require(ctx, Self.officers, interaction: "incidents", "Incidents are for privacy officers")
        let list = try await store.incidents().filter { $0.tenant == ctx.scope.tenant }
        try await access.record(ctx, "incidents", detail: "\(list.count) incidents listed")
        return list
    }

    /// Declares an incident of the caller's pharmacy, declared by the caller now.
    ///
    /// - parameter discovered: the first day anyone knew or should have known (`YYYY-MM-DD`).
    /// - parameter actions: what the pharmacy is doing; empty leaves the documents' "TO BE COMPLETED" in place.
    /// - returns: the incident's id.
    public func declare(
        _ ctx: AccessContext, discovered: String, actors: [String], from: String?, to: String?, files: [String], sources: [String],
        resources: [String], fileKeyCompromised: Bool, description: String?, actions: String, role: String
    ) async throws(FHIRError) -> String {
        try await access.require(ctx, Self.officers, interaction: "incident-declare", "Incidents are for privacy officers")
        guard ["covered-entity", "business-associate"].contains(role) else { throw FHIRError.invalid("'role' is covered-entity or business-associate") }
        let id = "inc-" + String(UUID().uuidString.lowercased().prefix(8))
        try await store.declareIncident(
            Incident(
                id: id, tenant: ctx.scope.tenant, discovered: discovered, declared: Instant.now(), declaredBy: ctx.scope.principal.subject,
                actors: actors, from: from, to: to, files: files, sources: sources, resources: resources, fileKeyCompromised: fileKeyCompromised,
                description: description ?? "Someone without authorization used access to our pharmacy system to view patient information.",
                whatWeAreDoing: actions, role: role))
        return id
    }

    /// The incident's certified scope: who was affected, with what and when (audited, naming every affected patient).
    /// - throws: `FHIRError` of kind `conflict` when the audit chain does not verify (the scope cannot be certified).
    public func scope(_ ctx: AccessContext, incident id: String) async throws(FHIRError) -> (Incident, IncidentScope) {
        let i = try await incident(ctx, id, "incident-scope")
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
    public func judge(_ ctx: AccessContext, incident id: String, _ judgement: Judgement) async throws(FHIRError) -> BreachResponse.Package {
        let i = try await incident(ctx, id, "incident-assess")
        let by = ctx.scope.principal.subject
        switch judgement {
        case .answer(let q, let text):
            guard Assessment.Question(rawValue: q) != nil else {
                throw FHIRError.invalid("Unknown question; one of \(Assessment.Question.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            try await store.recordJudgement(incident: i.id, question: q, text: text, by: by)
        case .conclusion(let c, let text):
            guard let conclusion = Assessment.Conclusion(rawValue: c), conclusion != .notUnsecured, conclusion != .noneAffected else {
                throw FHIRError.invalid("'conclusion' is breach, low-probability or exception (safe harbor is computed)")
            }
            try await store.recordJudgement(incident: i.id, question: "conclusion", text: "\(conclusion.rawValue): \(text)", by: by)
        }
        return try await package(ctx, incident: i.id, "incident-assess")
    }

    /// Records that an obligation was met on `day`, and answers the obligations as they now stand.
    public func markDone(_ ctx: AccessContext, incident id: String, obligation: String, on day: String, note: String) async throws(FHIRError) -> BreachResponse.Package {
        let i = try await incident(ctx, id, "incident-obligations")
        try await BreachResponse.markDone(store, i.id, obligation: obligation, on: day, by: ctx.scope.principal.subject, note: note)
        return try await package(ctx, incident: i.id, "incident-obligations")
    }

    /// Scope, residence, assessment and obligations (what the assess, obligations and report steps show), recorded
    /// as `action`.
    public func package(_ ctx: AccessContext, incident id: String, _ action: String) async throws(FHIRError) -> BreachResponse.Package {
        let i = try await incident(ctx, id, action)
        let p = try await BreachResponse.package(store, i.id)
        try await access.record(ctx, action, detail: "incident \(i.id)")
        return p
    }
}
