import Foundation
import SafeRxModel
import SafeRxPolicy

/// A declared breach incident: the day it was discovered and what is known.
public struct Incident: Sendable, Codable, Equatable {
    public var id: String
    public var tenant: String
    /// The first day anyone in the workforce knew, or by exercising reasonable diligence would have known (164.404(a)(2)).
    public var discovered: String
    public var declared: String
    public var declaredBy: String
    /// Compromised actors: user ids, usernames or client ids.
    public var actors: [String]
    /// The window the compromise may cover (ISO instants); `nil` ends are open.
    public var from: String?
    public var to: String?
    /// Exported files involved (fulfillment files by SHA-256 or its first 8+ hex digits).
    public var files: [String]
    /// Source addresses the intruder used (matched through the audit log's blind tokens).
    public var sources: [String]
    /// Resources known to be exposed as such (`Type/id`: a stolen printout, a misdirected message).
    public var resources: [String]
    /// Whether the key of an encrypted file is itself compromised (then the file is unsecured PHI).
    public var fileKeyCompromised: Bool
    public var description: String
    public var whatWeAreDoing: String
    /// `covered-entity` (the pharmacy) or `business-associate` (it processed the data for another covered entity).
    public var role: String
    public var lawEnforcementDelayUntil: String?

    public init(
        id: String, tenant: String, discovered: String, declared: String, declaredBy: String, actors: [String], from: String?, to: String?,
        files: [String], sources: [String] = [], resources: [String] = [], fileKeyCompromised: Bool = false, description: String,
        whatWeAreDoing: String, role: String = "covered-entity", lawEnforcementDelayUntil: String? = nil
    ) {
        self.id = id
        self.tenant = tenant
        self.discovered = discovered
        self.declared = declared
        self.declaredBy = declaredBy
        self.actors = actors
        self.from = from
        self.to = to
        self.files = files
        self.sources = sources
        self.resources = resources
        self.fileKeyCompromised = fileKeyCompromised
        self.description = description
        self.whatWeAreDoing = whatWeAreDoing
        self.role = role
        self.lawEnforcementDelayUntil = lawEnforcementDelayUntil
    }
}

/// One affected individual: what of theirs left, when, and the evidence.
public struct AffectedIndividual: Sendable, Equatable {
    public var patient: String
    /// Data element names (`DataElement` raw values).
    public var elements: Set<String>
    public var first: String
    public var last: String
    /// Audit sequence numbers of the records that show it.
    public var evidence: [Int64]
    /// Every exposure was of data encrypted to a key not known to be compromised.
    public var secured: Bool

    package init(patient: String, elements: Set<String>, first: String, last: String, evidence: [Int64], secured: Bool) {
        self.patient = patient
        self.elements = elements
        self.first = first
        self.last = last
        self.evidence = evidence
        self.secured = secured
    }
}

/// The computed scope of an incident.
public struct IncidentScope: Sendable {
    /// The audit chain verified: the scope can be certified.
    public var certified: Bool
    /// Where the chain breaks, when it does.
    public var chainProblem: String?
    public var affected: [AffectedIndividual]
    /// Records read that are evidence.
    public var evidenceRecords: Int
    /// Refused attempts by the same actors in the window (no data left).
    public var refused: Int
    /// Who received the data: actors with their roles, files with their vendors.
    public var recipients: [String]
    /// What was verified: the whole chain, or the incident's records between signed checkpoints.
    public var verified: String

    package init(certified: Bool, chainProblem: String? = nil, affected: [AffectedIndividual], evidenceRecords: Int, refused: Int, recipients: [String], verified: String) {
        self.certified = certified
        self.chainProblem = chainProblem
        self.affected = affected
        self.evidenceRecords = evidenceRecords
        self.refused = refused
        self.recipients = recipients
        self.verified = verified
    }
}
