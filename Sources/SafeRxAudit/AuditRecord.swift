import Crypto
import Foundation
import SafeRxModel
import SafeRxVault

/// What happened, as SafeRx records it. One per request that touches PHI or credentials.
public struct AuditEntry: Sendable, Codable, Hashable {
    public struct Actor: Sendable, Codable, Hashable {
        /// User id or client id (never a username, which may be an e-mail address).
        public var id: String
        public var role: String
        public var tenant: String
        /// For patient and caregiver tokens: the patient the token acts for (so that the detector can tell a
        /// patient's own records from anyone else's).
        public var patient: String?

        public init(id: String, role: String, tenant: String, patient: String? = nil) {
            self.id = id
            self.role = role
            self.tenant = tenant
            self.patient = patient
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
    /// What the request came to: a kind of success, or the kind of refusal.
    public var result: AuditResult
    /// For a record of the first log format, the number it stored instead of ``result`` (kept so that re-encoding
    /// the record gives back the body its hash covers). `nil` for every record written since.
    public internal(set) var legacyStatus: Int?
    /// HL7 PurposeOfUse code.
    public var purpose: String
    public var sourceIP: String
    public var userAgent: String
    public var requestID: String
    /// Non-PHI detail: search parameter names, a reason code, a system job's reason.
    public var detail: String?
    /// When an answer held resources of several types (`_include`, `_revinclude`): the patients named through each
    /// type, so that breach scope knows exactly which data of whom left. `nil`: every patient through `resourceType`.
    public var typePatients: [String: [String]]?
    /// What left when less than whole resources did. `nil`: the whole resources of `resourceType` (or of each type
    /// in `typePatients`) for every patient named.
    public var released: Released?

    /// The FHIR elements (`Type.element`) an answer released, when a purpose, a patient's authorization or the
    /// answer's own shape (a work list, a fill without a ship-to) limited them. Element names, never values: breach
    /// scope turns them into the data elements a notice names (`ExposureMap`).
    public struct Released: Sendable, Codable, Hashable {
        /// Released for every patient the record names.
        public var elements: [String]
        /// Per patient, where each authorization released its own elements (replaces `elements` for that patient).
        public var byPatient: [String: [String]]?

        public init(elements: some Sequence<String>, byPatient: [String: [String]]? = nil) {
            self.elements = Array(Set(elements)).sorted()
            self.byPatient = byPatient?.mapValues { Array(Set($0)).sorted() }
        }

        /// The elements released for `patient`.
        public func elements(for patient: String) -> [String] { byPatient?[patient] ?? elements }
    }

    public init(
        actor: Actor, action: String, attempted: String? = nil, resourceType: String? = nil, resourceID: String? = nil,
        patients: some Sequence<String> = [String](), outcome: String, result: AuditResult, purpose: String, sourceIP: String,
        userAgent: String, requestID: String, detail: String? = nil
    ) {
        self.actor = actor
        self.action = action
        self.attempted = attempted
        self.resourceType = resourceType
        self.resourceID = resourceID
        self.patients = Array(Set(patients)).sorted()
        self.outcome = outcome
        self.result = result
        self.purpose = purpose
        self.sourceIP = sourceIP
        self.userAgent = String(userAgent.prefix(256))
        self.requestID = requestID
        self.detail = detail
    }
}

/// Seals the PHI-bearing fields of audit records (source address, user agent, free-text detail) under the
/// audit-field key, and blinds the source address so that records can still be grouped by address without it.
///
/// Everything needed to verify the chain (sequence, time, hashes) and to compute the scope of a breach (actor,
/// action, resource, patients, outcome, purpose) stays in clear.
public struct AuditFieldCipher: Sendable {
    let key: SymmetricKey
    let index: BlindIndex

    public init(key: SymmetricKey, index: BlindIndex) {
        self.key = key
        self.index = index
    }

    /// The blind token of a source address, as stored in `sourceToken`.
    public func sourceToken(_ address: String) -> String { index.token(parameter: "audit-source", value: address) }

    /// The blind token of a user agent, as stored in `agentToken` (the detector notices a new one without reading it).
    public func agentToken(_ userAgent: String) -> String { index.token(parameter: "audit-agent", value: userAgent) }

    func seal(_ e: AuditEntry, seq: Int64) -> String {
        var o: [String: JSON] = ["sourceIP": .string(e.sourceIP), "userAgent": .string(e.userAgent)]
        if let d = e.detail { o["detail"] = .string(d) }
        return Envelope.seal(JSON.object(o).encodedBytes(), key: key, keyVersion: 1, context: "audit/\(seq)").base64EncodedString()
    }

    func open(_ sealed: String, seq: Int64) -> (sourceIP: String, userAgent: String, detail: String?)? {
        guard let data = Data(base64Encoded: sealed),
            let plain = try? Envelope.open(data, key: key, context: "audit/\(seq)", what: "audit record \(seq)"),
            let o = try? JSON.parse(plain)
        else { return nil }
        return (o["sourceIP"]?.stringValue ?? "", o["userAgent"]?.stringValue ?? "", o["detail"]?.stringValue)
    }
}

/// A record in the chain: the entry plus its place and hashes.
public struct AuditRecord: Sendable, Hashable {
    public var seq: Int64
    /// ISO 8601 with milliseconds, UTC.
    public var time: String
    public var entry: AuditEntry
    public var prevHash: String
    /// This record's chain hash, when it was read from the log.
    public var hash: String?
    /// Whether the sealed fields could be opened (false without the key, or if they were tampered with).
    public var sealedFieldsOpened: Bool = true
    /// The blind tokens stored with the record (read from the log; `nil` for a record not yet stored).
    public var sourceToken: String?
    public var agentToken: String?

    public init(seq: Int64, time: String, entry: AuditEntry, prevHash: String) {
        self.seq = seq
        self.time = time
        self.entry = entry
        self.prevHash = prevHash
    }

    /// The canonical encoding stored and hashed into the chain: JSON with sorted keys, no insignificant whitespace,
    /// absent optionals omitted. With a cipher, the source address, user agent and detail are replaced by `sealed`
    /// (their ciphertext, bound to the sequence number) and `sourceToken` (a blind token of the address).
    public func canonicalBody(cipher: AuditFieldCipher?) -> String {
        let e = entry
        var actor: [String: JSON] = ["id": .string(e.actor.id), "role": .string(e.actor.role), "tenant": .string(e.actor.tenant)]
        if let p = e.actor.patient { actor["patient"] = .string(p) }
        var o: [String: JSON] = [
            "actor": .object(actor),
            "action": .string(e.action), "patients": .array(e.patients.map { .string($0) }), "outcome": .string(e.outcome),
            "purpose": .string(e.purpose), "requestID": .string(e.requestID),
        ]
        if let legacy = e.legacyStatus { o["status"] = .int(Int64(legacy)) } else { o["result"] = .string(e.result.rawValue) }
        if let cipher {
            o["sealed"] = .string(cipher.seal(e, seq: seq))
            o["sourceToken"] = .string(cipher.sourceToken(e.sourceIP))
            o["agentToken"] = .string(cipher.agentToken(e.userAgent))
        } else {
            o["sourceIP"] = .string(e.sourceIP)
            o["userAgent"] = .string(e.userAgent)
            if let v = e.detail { o["detail"] = .string(v) }
        }
        if let v = e.attempted { o["attempted"] = .string(v) }
        if let v = e.resourceType { o["resourceType"] = .string(v) }
        if let v = e.resourceID { o["resourceID"] = .string(v) }
        if let tp = e.typePatients {
            o["typePatients"] = .object(tp.mapValues { .array(Array(Set($0)).sorted().map { .string($0) }) })
        }
        if let r = e.released {
            var released: [String: JSON] = ["elements": .array(r.elements.map { .string($0) })]
            if let by = r.byPatient { released["byPatient"] = .object(by.mapValues { .array($0.map { .string($0) }) }) }
            o["released"] = .object(released)
        }
        let record: JSON = .object(["seq": .int(seq), "time": .string(time), "entry": .object(o), "prevHash": .string(prevHash)])
        return String(decoding: record.encodedBytes(), as: UTF8.self)
    }

    /// Decodes a stored body. Sealed fields are opened with `cipher`; without it (or if they do not open) they read
    /// as empty and ``sealedFieldsOpened`` is false. The chain can be verified either way.
    public static func decode(body: String, hash: String? = nil, cipher: AuditFieldCipher?) -> AuditRecord? {
        guard let j = try? JSON.parse(Data(body.utf8)), let seq = j["seq"]?.intValue, let time = j["time"]?.stringValue,
            let prev = j["prevHash"]?.stringValue, let e = j["entry"], let actor = e["actor"],
            let actorID = actor["id"]?.stringValue, let role = actor["role"]?.stringValue, let tenant = actor["tenant"]?.stringValue,
            let action = e["action"]?.stringValue, let outcome = e["outcome"]?.stringValue,
            let (result, legacy) = Self.result(of: e),
            let purpose = e["purpose"]?.stringValue, let requestID = e["requestID"]?.stringValue
        else { return nil }
        var sourceIP = e["sourceIP"]?.stringValue ?? "", userAgent = e["userAgent"]?.stringValue ?? ""
        var detail = e["detail"]?.stringValue
        var opened = true
        if let sealed = e["sealed"]?.stringValue {
            if let fields = cipher?.open(sealed, seq: seq) {
                (sourceIP, userAgent, detail) = fields
            } else {
                opened = false
            }
        }
        var r = AuditRecord(
            seq: seq, time: time,
            entry: AuditEntry(
                actor: .init(id: actorID, role: role, tenant: tenant, patient: actor["patient"]?.stringValue), action: action, attempted: e["attempted"]?.stringValue,
                resourceType: e["resourceType"]?.stringValue, resourceID: e["resourceID"]?.stringValue,
                patients: (e["patients"]?.arrayValue ?? []).compactMap(\.stringValue), outcome: outcome, result: result,
                purpose: purpose, sourceIP: sourceIP, userAgent: userAgent, requestID: requestID, detail: detail),
            prevHash: prev)
        r.entry.legacyStatus = legacy
        r.hash = hash
        r.sealedFieldsOpened = opened
        if let tp = e["typePatients"]?.objectValue {
            r.entry.typePatients = tp.mapValues { ($0.arrayValue ?? []).compactMap(\.stringValue) }
        }
        if let rel = e["released"] {
            r.entry.released = AuditEntry.Released(
                elements: (rel["elements"]?.arrayValue ?? []).compactMap(\.stringValue),
                byPatient: rel["byPatient"]?.objectValue?.mapValues { ($0.arrayValue ?? []).compactMap(\.stringValue) })
        }
        r.sourceToken = e["sourceToken"]?.stringValue
        r.agentToken = e["agentToken"]?.stringValue
        return r
    }

    /// The result a stored entry records: by name, or (first log format) by number.
    private static func result(of e: JSON) -> (AuditResult, legacy: Int?)? {
        if let name = e["result"]?.stringValue { return AuditResult(rawValue: name).map { ($0, nil) } }
        guard let status = e["status"]?.intValue else { return nil }
        return (AuditResult(legacyStatus: Int(status)), Int(status))
    }
}
