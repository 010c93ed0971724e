import Foundation
import SafeRxModel
import SafeRxPolicy

/// A request as the store sees it: the caller's scope plus what the audit record needs to name the request.
public struct AccessContext: Sendable {
    public let scope: AccessScope
    public let requestID: String
    public let sourceIP: String
    public let userAgent: String

    public init(scope: AccessScope, requestID: String, sourceIP: String, userAgent: String) {
        self.scope = scope
        self.requestID = requestID
        self.sourceIP = sourceIP
        self.userAgent = userAgent
    }

    /// A system job's context (``AccessScope/system(reason:tenant:write:)``): the reason names the job in every
    /// audit record it causes; run from this machine (`local`).
    ///
    /// - parameter tenant: the pharmacy the job is for, or `*` for all.
    public static func system(reason: String, tenant: String, write: Bool = false, agent: String = "saferx cli") -> AccessContext {
        AccessContext(
            scope: .system(reason: reason, tenant: tenant, write: write), requestID: UUID().uuidString.lowercased(), sourceIP: "local",
            userAgent: agent)
    }

    /// An operator's command on this machine (`saferx incident`, `keys`, ...): a system context whose audit records
    /// name the operator's login (`operator:<login>`, from `$USER`) rather than an anonymous job.
    ///
    /// - parameter tenant: the pharmacy the command is for, or `*` for all.
    public static func operatorCommand(reason: String, tenant: String = "*", write: Bool = false) -> AccessContext {
        AccessContext(
            scope: .system(reason: reason, tenant: tenant, write: write, subject: "operator:\(operatorLogin)"),
            requestID: UUID().uuidString.lowercased(), sourceIP: "local", userAgent: "saferx cli")
    }

    /// The operator's login (`$USER`), as command-line records name them.
    public static var operatorLogin: String { ProcessInfo.processInfo.environment["USER"] ?? "operator" }

    /// Whether this is a system or operator context (not a person's or partner's request).
    public var isSystem: Bool { scope.systemReason != nil }

    /// This system context narrowed to one pharmacy, so that what it records belongs to that pharmacy (an operator's
    /// step on one pharmacy's incident appears in that pharmacy's audit trail and its patients' access logs); any other
    /// context as it is.
    public func narrowed(to tenant: String) -> AccessContext {
        guard isSystem, scope.tenant == "*", let reason = scope.systemReason else { return self }
        return AccessContext(
            scope: .system(reason: reason, tenant: tenant, write: scope.rights(for: .patient).create, subject: scope.principal.subject),
            requestID: requestID, sourceIP: sourceIP, userAgent: userAgent)
    }

    /// Whether this context may act for `tenant`: its own pharmacy, or any for a system context over `*`.
    public func covers(tenant: String) -> Bool {
        scope.tenant == tenant || (isSystem && scope.tenant == "*")
    }
}

/// A resource version as returned by the gate: decrypted, with `meta` set, minimum-necessary filtered.
public struct StoredResource: Sendable {
    public let type: ResourceType
    public let id: String
    public let version: Int
    public let lastUpdated: String
    public let deleted: Bool
    /// `nil` for a deletion tombstone.
    public let json: JSON?
    /// Patients in whose compartment this version is.
    public let patients: [String]
    /// The patient was erased (crypto-shredded): only the tombstone is left.
    public var erased: Bool = false

    package init(type: ResourceType, id: String, version: Int, lastUpdated: String, deleted: Bool, json: JSON?, patients: [String], erased: Bool = false) {
        self.type = type
        self.id = id
        self.version = version
        self.lastUpdated = lastUpdated
        self.deleted = deleted
        self.json = json
        self.patients = patients
        self.erased = erased
    }
}

/// One page of a search.
public struct SearchPage: Sendable {
    public let total: Int
    public let offset: Int
    public let count: Int
    public let matches: [StoredResource]
    public let included: [StoredResource]

    package init(total: Int, offset: Int, count: Int, matches: [StoredResource], included: [StoredResource]) {
        self.total = total
        self.offset = offset
        self.count = count
        self.matches = matches
        self.included = included
    }
}
