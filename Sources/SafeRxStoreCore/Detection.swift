import Foundation
import SafeRxModel

/// An alert the detector raised, with its evidence.
public struct SecurityAlert: Sendable, Equatable {
    public var id: String
    public var tenant: String
    public var rule: String
    public var severity: String
    /// The actor's user or client id, or `source:<blind token>` for a rule counted per source address.
    public var actor: String
    public var role: String
    public var summary: String
    public var description: String
    public var created: Date
    public var updated: Date
    /// Audit sequence numbers of the evidence, oldest first.
    public var evidence: [Int64]
    /// Patients whose data the evidence names (for a refused request: the ones read before the cut).
    public var patients: [String]
    /// The actor was suspended by this alert.
    public var contained: Bool
    /// The request that crossed the rule was refused before its data left.
    public var blocked: Bool
    /// Append → alert, in milliseconds.
    public var lagMilliseconds: Double
    public var acknowledged: Date?
    public var acknowledgedBy: String?
    public var note: String?

    public var key: String { "\(rule)|\(actor)" }

    package init(id: String, tenant: String, rule: String, severity: String, actor: String, role: String, summary: String, description: String, created: Date, updated: Date, evidence: [Int64], patients: [String], contained: Bool, blocked: Bool, lagMilliseconds: Double, acknowledged: Date? = nil, acknowledgedBy: String? = nil, note: String? = nil) {
        self.id = id
        self.tenant = tenant
        self.rule = rule
        self.severity = severity
        self.actor = actor
        self.role = role
        self.summary = summary
        self.description = description
        self.created = created
        self.updated = updated
        self.evidence = evidence
        self.patients = patients
        self.contained = contained
        self.blocked = blocked
        self.lagMilliseconds = lagMilliseconds
        self.acknowledged = acknowledged
        self.acknowledgedBy = acknowledgedBy
        self.note = note
    }
}

/// An actor the detector suspended.
public struct ActorSuspension: Sendable, Equatable {
    public var actor: String
    public var tenant: String
    public var alertID: String
    public var at: Date
    public var reason: String
    public var reinstated: Date?
    public var reinstatedBy: String?
    public var reinstateReason: String?

    package init(actor: String, tenant: String, alertID: String, at: Date, reason: String, reinstated: Date? = nil, reinstatedBy: String? = nil, reinstateReason: String? = nil) {
        self.actor = actor
        self.tenant = tenant
        self.alertID = alertID
        self.at = at
        self.reason = reason
        self.reinstated = reinstated
        self.reinstatedBy = reinstatedBy
        self.reinstateReason = reinstateReason
    }
}
