import Foundation
import SafeRxAudit
import SafeRxDetect
import SafeRxModel
import SafeRxStore
import SafeRxStoreCore

/// The operator's side of exfiltration detection (`saferx alerts`, `actors`, `detect replay`, `honeytokens`): every
/// pharmacy's alerts and suspensions, reinstatement, replays of history with other rules, and canary patients. Every
/// method takes an operator's context (a person's is refused); reads that name patients are recorded as the
/// operator's.
public struct DetectionAdministration: Sendable {
    let store: PharmacyStore
    let access: AccessService

    /// Alerts of every pharmacy, newest first (only open ones unless `includeAcknowledged`); recorded as a list.
    public func alerts(_ ctx: AccessContext, includeAcknowledged: Bool) async throws(FHIRError) -> [SecurityAlert] {
        try await access.requireOperator(ctx, interaction: "alerts-list")
        let alerts = try await store.alerts(open: !includeAcknowledged)
        try await store.recordAdminEvent(action: "alerts-list", tenant: "*", detail: "\(alerts.count) alerts listed")
        return alerts
    }

    /// One alert with its evidence; recorded naming every patient it names.
    /// - throws: `FHIRError` of kind `notFound` for an unknown id.
    public func alert(_ ctx: AccessContext, id: String) async throws(FHIRError) -> SecurityAlert {
        try await access.requireOperator(ctx, interaction: "alert-show")
        guard let a = try await store.alert(id: id) else { throw FHIRError(kind: .notFound, code: "not-found", diagnostics: "No alert \(id)") }
        try await store.recordAdminEvent(action: "alert-show", tenant: a.tenant, patients: a.patients, detail: "alert \(a.id) shown")
        return a
    }

    /// Acknowledges an alert with what was found (at least 5 characters; audited). A suspension it caused stays.
    public func acknowledge(_ ctx: AccessContext, id: String, by: String, note: String) async throws(FHIRError) {
        try await access.requireOperator(ctx, interaction: "alert-ack")
        try await store.acknowledgeAlert(ctx, id: id, by: by, note: note)
        await store.auditWriter.checkpoint()
    }

    /// Alert counts per rule and the detector's lags from append to alert (sorted), in milliseconds.
    public func statistics(_ ctx: AccessContext) async throws(FHIRError) -> (byRule: [(rule: String, severity: String, count: Int, open: Int)], lags: [Double]) {
        try await access.requireOperator(ctx, interaction: "alert-statistics")
        return try await store.alertStatistics()
    }

    /// Suspensions the detector made (only those in force unless `includeLifted`).
    public func suspensions(_ ctx: AccessContext, includeLifted: Bool) async throws(FHIRError) -> [ActorSuspension] {
        try await access.requireOperator(ctx, interaction: "suspensions")
        return try await store.suspensions(activeOnly: !includeLifted)
    }

    /// Lifts a suspension (audited). Tokens from before it stay dead.
    /// - parameter actor: a user id, a username or a client id.
    public func reinstate(_ ctx: AccessContext, actor: String, by: String, reason: String) async throws(FHIRError) {
        try await access.requireOperator(ctx, interaction: "reinstate")
        let id = try await store.user(named: actor)?.id ?? actor
        try await store.reinstate(ctx, actor: id, by: by, reason: reason)
        await store.auditWriter.checkpoint()
    }

    /// Runs `rules` over the audit log from `from` to `to` (exclusive) and answers what they find; stores nothing but
    /// the record that the operator replayed.
    public func replay(
        _ ctx: AccessContext, rules: DetectionRules, from: String, to: String?, progress: (@Sendable (Int) -> Void)? = nil
    ) async throws(FHIRError) -> DetectionReplay {
        try await access.requireOperator(ctx, interaction: "detect-replay")
        let result = try await store.replayDetection(rules: rules, from: from, to: to, progress: progress)
        try await store.recordAdminEvent(
            action: "detect-replay", tenant: "*",
            detail: "replay from \(from): \(result.records) records, \(result.findings.filter { !$0.isUpdate }.count) alerts")
        return result
    }

    /// Plants canary patients that look real, appear in no work list, and alert when opened.
    /// - parameter partner: makes them patients of this partner client (a canary inside a partner's scope).
    /// - returns: their ids.
    public func plantHoneytokens(_ ctx: AccessContext, tenant: String, count: Int, partner: String?) async throws -> [String] {
        try await access.requireOperator(ctx, interaction: "honeytoken-plant")
        let ids = try await DemoPharmacy.plantHoneytokens(into: store, tenant: tenant, count: count, partner: partner)
        await store.auditWriter.checkpoint()
        return ids
    }

    /// What an actor (a user id, a username or a client id) took: the patients whose data left for it in successful
    /// answers (work lists, counts and break-glass grants show no record content and are not counted), other than a
    /// patient user's own record. Recorded as the operator's, naming nobody (it answers a count).
    public func exposure(_ ctx: AccessContext, actor: String) async throws -> (patients: Int, contained: Bool, rules: [String]) {
        try await access.requireOperator(ctx, interaction: "exposure")
        let user = try await store.user(named: actor)
        let id = user?.id ?? actor
        let records = try await store.auditRecords().filter {
            $0.entry.actor.id == id && $0.entry.outcome == "success" && !["list", "count", "break-glass"].contains($0.entry.action)
        }
        let patients = Set(records.flatMap(\.entry.patients)).subtracting(user?.patientID.map { [$0] } ?? [])
        let rules = try await store.alerts().filter { $0.actor == id && $0.contained }.map(\.rule)
        try await store.recordAdminEvent(action: "exposure", tenant: "*", detail: "exposure of \(id): \(patients.count) patients")
        return (patients.count, try await store.isSuspended(id), rules)
    }

    /// The honeytoken patients of a pharmacy (for the security team); recorded.
    public func honeytokens(_ ctx: AccessContext, tenant: String) async throws(FHIRError) -> [String] {
        try await access.requireOperator(ctx, interaction: "honeytoken-list")
        let ids = try await store.honeytokens(tenant: tenant)
        try await store.recordAdminEvent(action: "honeytoken-list", tenant: tenant, detail: "\(ids.count) listed")
        return ids
    }
}
