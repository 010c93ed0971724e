import Foundation
import SafeRxModel

/// What happened, as SafeRx records it. One per request that touches PHI or credentials.
public struct AuditEntry: Sendable, Codable, Hashable {
    public struct Actor: Sendable, Codable, Hashable {
        /// User id or client id (never a username, which may be an e-mail address).
        public var id: String
        public var role: String
        public var tenant: String

        public init(id: String, role: String, tenant: String) {
            self.id = id
            self.role = role
            self.tenant = tenant
        }
    }

    public var actor: Actor
    /// login, logout, token, read, vread, history, search, create, update, delete, denied.
    public var action: String
    /// For `denied`: the interaction that was refused.
    public var attempted: String?
    public var resourceType: String?
    public var resourceID: String?
    /// The ids of every patient whose data was returned or changed (sorted, unique).
    public var patients: [String]
    /// success, denied, not-found, failure.
    public var outcome: String
    /// HTTP status answered.
    public var status: Int
    /// HL7 PurposeOfUse code.
    public var purpose: String
    public var sourceIP: String
    public var userAgent: String
    public var requestID: String
    /// Non-PHI detail: search parameter names, a reason code, a system job's reason.
    public var detail: String?

    public init(
        actor: Actor, action: String, attempted: String? = nil, resourceType: String? = nil, resourceID: String? = nil,
        patients: some Sequence<String> = [String](), outcome: String, status: Int, purpose: String, sourceIP: String,
        userAgent: String, requestID: String, detail: String? = nil
    ) {
        self.actor = actor
        self.action = action
        self.attempted = attempted
        self.resourceType = resourceType
        self.resourceID = resourceID
        self.patients = Array(Set(patients)).sorted()
        self.outcome = outcome
        self.status = status
        self.purpose = purpose
        self.sourceIP = sourceIP
        self.userAgent = String(userAgent.prefix(256))
        self.requestID = requestID
        self.detail = detail
    }
}

/// A record in the chain: the entry plus its place and hashes.
public struct AuditRecord: Sendable, Codable, Hashable {
    public var seq: Int64
    /// ISO 8601 with milliseconds, UTC.
    public var time: String
    public var entry: AuditEntry
    public var prevHash: String

    public init(seq: Int64, time: String, entry: AuditEntry, prevHash: String) {
        self.seq = seq
        self.time = time
        self.entry = entry
        self.prevHash = prevHash
    }

    /// The canonical encoding hashed into the chain: JSON with sorted keys, no insignificant whitespace, absent
    /// optionals omitted (the same shape `Codable` reads back).
    public func canonicalBody() -> String {
        let e = entry
        var o: [String: JSON] = [
            "actor": .object(["id": .string(e.actor.id), "role": .string(e.actor.role), "tenant": .string(e.actor.tenant)]),
            "action": .string(e.action), "patients": .array(e.patients.map { .string($0) }), "outcome": .string(e.outcome),
            "status": .int(Int64(e.status)), "purpose": .string(e.purpose), "sourceIP": .string(e.sourceIP),
            "userAgent": .string(e.userAgent), "requestID": .string(e.requestID),
        ]
        if let v = e.attempted { o["attempted"] = .string(v) }
        if let v = e.resourceType { o["resourceType"] = .string(v) }
        if let v = e.resourceID { o["resourceID"] = .string(v) }
        if let v = e.detail { o["detail"] = .string(v) }
        let record: JSON = .object(["seq": .int(seq), "time": .string(time), "entry": .object(o), "prevHash": .string(prevHash)])
        return String(decoding: record.encodedBytes(), as: UTF8.self)
    }

    public static func decode(body: String) -> AuditRecord? {
        try? JSONDecoder().decode(AuditRecord.self, from: Data(body.utf8))
    }
}
