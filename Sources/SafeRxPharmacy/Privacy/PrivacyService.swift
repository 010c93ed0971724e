import Foundation
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStore
import SafeRxStoreCore

/// What the privacy office sees and does: the detector's alerts and suspensions, the overview of the audit log, the
/// break-glass report, and patients' accounting of disclosures. Every method takes the caller's context, answers
/// for the caller's pharmacy only, and records its own audit entry (naming the patients an answer names).
public struct PrivacyService: Sendable {
    let store: PharmacyStore
    let access: AccessService

    static let officers: Set<Role> = [.privacyOfficer]

    /// The chain's state and fourteen days of accesses, aggregated (no patient named).
    public struct Overview: Sendable {
        public var chainOK: Bool
        public var records: Int64
        public var checkpoints: Int
        /// The first bad record and why, when the chain does not verify.
        public var chainProblem: String?
        /// `YYYY-MM-DD`, oldest first.
        public var days: [String]
        /// Successful accesses per day, by role.
        public var accessesByRole: [String: [Int]]
        /// Refused requests per day.
        public var denials: [Int]
        /// The actors who touched the most distinct patients, most first (at most ten).
        public var topActors: [(actor: String, role: String, patients: Int)]
    }

    /// The overview of the privacy console: the chain verified incrementally (bounded work per view) and the last
    /// `days` days of the audit log, for the caller's pharmacy.
    public func overview(_ ctx: AccessContext, days: Int = 14, today: Date? = nil) async throws(FHIRError) -> Overview {
        let today = today ?? store.clock.now
        try await access.require(ctx, Self.officers, interaction: "privacy-overview", "The privacy overview is for privacy officers")
        let tenant = ctx.scope.tenant
        let verification: AuditVerification
        let records: [AuditRecord]
        do {
            verification = try await store.verifyAuditIncrementally()
            records = try await store.auditRecords(since: Instant.daysAgo(days)).filter { $0.entry.actor.tenant == tenant || $0.entry.actor.tenant == "-" }
        } catch let e as FHIRError {
            throw e
        } catch {
            throw FHIRError(kind: .internal, code: "exception", diagnostics: "The audit log could not be read")
        }
        // The overview itself reads the audit log: record that it did, naming no patients (aggregates only).
        try await access.record(ctx, "privacy-overview", detail: "aggregates over \(records.count) audit records")
        let dayNames = (0..<days).reversed().map { String(Instant.string(today.addingTimeInterval(-Double($0) * 86400)).prefix(10)) }
        let dayIndex = Dictionary(uniqueKeysWithValues: dayNames.enumerated().map { ($1, $0) })
        var byRole: [String: [Int]] = [:]
        var denials = [Int](repeating: 0, count: days)
        var touched: [String: (role: String, patients: Set<String>)] = [:]
        for r in records {
            let e = r.entry
            if let i = dayIndex[String(r.time.prefix(10))] {
                if e.outcome == "denied" || e.result == .unauthenticated || e.result == .forbidden {
                    denials[i] += 1
                } else if e.outcome == "success" {
                    byRole[e.actor.role, default: [Int](repeating: 0, count: days)][i] += 1
                }
            }
            if e.outcome == "success", !e.patients.isEmpty, e.actor.id != "system" {
                touched[e.actor.id, default: (e.actor.role, [])].patients.formUnion(e.patients)
            }
        }
        let top = touched.map { (actor: $0.key, role: $0.value.role, patients: $0.value.patients.count) }.sorted { $0.patients > $1.patients }
        return Overview(
            chainOK: verification.ok, records: verification.records, checkpoints: verification.checkpoints,
            chainProblem: verification.ok ? nil : "first bad record \(verification.firstBad ?? 0): \(verification.reason ?? "")",
            days: dayNames, accessesByRole: byRole, denials: denials, topActors: Array(top.prefix(10)))
    }

    /// The pharmacy's alerts, newest first, and the actors the detector suspended (still suspended).
    public func alerts(_ ctx: AccessContext, limit: Int = 200) async throws(FHIRError) -> (alerts: [SecurityAlert], suspensions: [ActorSuspension]) {
        try await access.require(ctx, Self.officers, interaction: "alerts", "Alerts are for privacy officers")
        let tenant = ctx.scope.tenant
        let alerts = try await store.alerts(tenant: tenant, limit: limit)
        let suspensions = try await store.suspensions().filter { $0.tenant == tenant }
        try await access.record(ctx, "alerts-list", detail: "\(alerts.count) alerts listed")
        return (alerts, suspensions)
    }

    /// One alert with its evidence; opening it is an access to the patients it names.
    /// - throws: `FHIRError` of kind `notFound` for an alert of another pharmacy, as for one that does not exist.
    public func alert(_ ctx: AccessContext, id: String) async throws(FHIRError) -> SecurityAlert {
        try await access.require(ctx, Self.officers, interaction: "alert", "Alerts are for privacy officers")
        guard let a = try await store.alert(id: id), a.tenant == ctx.scope.tenant else { throw FHIRError.notFoundPath("alert") }
        try await access.record(ctx, "alert-view", patients: a.patients, detail: "alert \(a.id)")
        return a
    }

    /// Acknowledges an alert (`by`: the name the console shows). A suspension it caused stays until it is lifted.
    public func acknowledge(_ ctx: AccessContext, alert id: String, by: String, note: String) async throws(FHIRError) {
        try await access.require(ctx, Self.officers, interaction: "alert-ack", "Alerts are for privacy officers")
        guard let a = try await store.alert(id: id), a.tenant == ctx.scope.tenant else { throw FHIRError.notFoundPath("alert") }
        try await store.acknowledgeAlert(ctx, id: a.id, by: by, note: note)
    }

    /// The break-glass overrides granted on `day` (`YYYY-MM-DD`) in the caller's pharmacy, with the accesses made
    /// under each (audited, naming the patients).
    public func breakGlassReport(_ ctx: AccessContext, day: String) async throws(FHIRError) -> [BreakGlassGrant] {
        try await store.breakGlassReport(ctx, day: day)
    }

    /// How long a break-glass override lasts.
    public static let breakGlassDuration: TimeInterval = 60 * 60

    /// `Patient/{id}/$break-glass`: ``breakGlassDuration`` of read-only access to one patient under ETREAT, for a
    /// pharmacist or support user, with a typed reason. The override and its audit record (`break-glass`, the reason
    /// sealed in its detail) commit together; a patient the pharmacy does not have answers 404.
    /// - throws: `FHIRError` of kind `forbidden` for other roles and `invalid` for a reason under 10 or over 500
    ///   characters (both recorded as refusals), `notFound` for an unknown patient.
    public func breakGlass(_ ctx: AccessContext, patient: String, reason: String) async throws(FHIRError) -> BreakGlassGrant {
        let role = ctx.scope.role
        guard role == .pharmacist || role == .support else {
            throw await store.deny(
                ctx, interaction: "break-glass", type: .patient, id: patient, error: .forbidden("Only pharmacists and support staff may break the glass"))
        }
        let trimmed = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.count >= 10, trimmed.count <= 500 else {
            throw await store.deny(
                ctx, interaction: "break-glass", type: .patient, id: patient,
                error: .invalid("A break-glass override needs a typed reason of 10 to 500 characters", at: "Parameters.parameter.reason"),
                detail: "no reason")
        }
        let tenant = ctx.scope.tenant
        let now = store.clock.now
        let grant = BreakGlassGrant(
            id: UUID().uuidString.lowercased(), tenant: tenant, userID: ctx.scope.principal.subject, role: role.rawValue, patientID: patient,
            granted: AuditLog.timestamp(now), expires: AuditLog.timestamp(now.addingTimeInterval(Self.breakGlassDuration)), reason: trimmed,
            accesses: 0)
        do {
            return try await store.write(ctx) { tx in
                guard try tx.breakGlass.patientExists(patient, tenant: tenant) else { throw FHIRError.notFound(.patient, patient) }
                let seq = try tx.record(
                    "break-glass", type: .patient, id: patient, patients: [patient], detail: "break-glass until \(grant.expires); reason: \(trimmed)",
                    result: .created)
                try tx.breakGlass.insert(grant, auditSeq: seq)
                return grant
            }
        } catch where error.kind == .notFound {
            throw await store.missing(ctx, "break-glass", .patient, patient)
        }
    }

    /// A patient's accounting of disclosures (`everyAccess` false) or access log (true), from the audit log, over
    /// the last `years` years (six: HIPAA 164.528).
    public func accessLog(_ ctx: AccessContext, patient: String, everyAccess: Bool, years: Int = 6) async throws(FHIRError) -> [AccessLogEntry] {
        try await store.accessLog(ctx, patient: patient, everyAccess: everyAccess, years: years)
    }
}
