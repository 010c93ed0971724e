import SafeRxModel

/// The rows a caller may see, as a value the store compiles into SQL.
///
/// An `AccessScope` is made only by ``AccessPolicy/scope(for:)`` (or ``AccessScope/system(reason:tenant:)`` for
/// audited system jobs); its initialiser is internal so that no other module can invent one.
public struct AccessScope: Sendable, Hashable {
    /// Which rows of patient data are visible.
    public enum Rows: Sendable, Hashable {
        /// Only the Patient compartment of one patient.
        case compartment(patientID: String)
        /// The compartments of a few patients (break-glass grants).
        case patients([String])
        /// Every patient of the tenant.
        case tenant
        /// Patients a partner client created, and the resources about them; of the ``AccessScope/partyTypes``, only
        /// those the partner is a party to (it wrote them, or they answer or fill what it wrote).
        case partner(clientID: String)
        /// Patients who hold an active, unexpired Consent naming this business-line client and the request's purpose;
        /// each patient's consent also limits which elements are returned.
        case consented(clientID: String)
        /// Nothing.
        case none
    }

    /// What a role may do with a resource type.
    public struct Rights: Sendable, Hashable {
        public var read: Bool
        public var create: Bool
        public var update: Bool
        public var delete: Bool
        /// May change `status` of MedicationRequest and MedicationDispense.
        public var changeStatus: Bool
        /// May run the type's write operations (`$refill` of a MedicationRequest, `$transition` of a
        /// MedicationDispense). Like every write it needs a token with write scope on the type and a purpose that
        /// shows the whole resource; break-glass (ETREAT) never has it.
        public var operate: Bool = false

        public static let none = Rights(read: false, create: false, update: false, delete: false, changeStatus: false)
        public static let readOnly = Rights(read: true, create: false, update: false, delete: false, changeStatus: false)
        static let all = Rights(read: true, create: true, update: true, delete: true, changeStatus: true, operate: true)

        /// Whether these rights change anything.
        public var writes: Bool { create || update || delete || changeStatus || operate }
    }

    public let principal: Principal
    public let role: Role
    public let tenant: String
    public let rows: Rows
    let rights: [ResourceType: Rights]
    /// Minimum necessary: the elements the purpose may see, per type (absent: the whole resource).
    let fields: [ResourceType: Set<String>]
    /// A system job's reason (backups, exports, verification); `nil` for requests.
    public let systemReason: String?
    /// The role's rights before the purpose and the token narrowed them (to say why something is refused).
    let roleRights: [ResourceType: Rights]
    /// The types the purpose covers (`nil`: not narrowed by a purpose).
    let purposeTypes: Set<ResourceType>?

    init(
        principal: Principal, role: Role, rows: Rows, rights: [ResourceType: Rights], fields: [ResourceType: Set<String>] = [:],
        systemReason: String? = nil, roleRights: [ResourceType: Rights]? = nil, purposeTypes: Set<ResourceType>? = nil
    ) {
        self.principal = principal
        self.role = role
        self.tenant = principal.tenant
        self.rows = rows
        self.rights = rights.filter { $0.value != .none }
        self.fields = fields
        self.systemReason = systemReason
        self.roleRights = roleRights ?? rights
        self.purposeTypes = purposeTypes
    }

    /// Why this scope may not `verb` (read, create, update, delete…) resources of `type`, in one sentence: the
    /// role, the purpose of use, a partial view, a caregiver's grant or the token's scopes, whichever cut it first.
    public func refusal(_ verb: String, _ type: ResourceType) -> String {
        let write = verb != "read"
        let full = roleRights[type] ?? .none
        let roleAllows = write ? full.writes : full.read
        if !roleAllows {
            return "Role '\(principal.auditRole)' may not \(verb) \(type.rawValue) resources"
        }
        if let purposeTypes, !purposeTypes.contains(type) {
            return "Purpose of use \(purpose.rawValue) does not cover \(type.rawValue) resources"
        }
        if write, fields[type] != nil {
            return "Purpose of use \(purpose.rawValue) shows only part of \(type.rawValue), so it may read but not \(verb) it (saving the part would drop the rest)"
        }
        if principal.caregiverGrant != nil {
            return "This caregiver access does not reach \(type.rawValue) resources: the patient's grant covers \(principal.grantedScopes.map(Self.describe) ?? "less")"
        }
        return "This access token's scopes (\(principal.grantedScopes ?? "none")) do not allow \(verb) on \(type.rawValue)"
    }

    /// `patient/Communication.read patient/Binary.read` → "Communication, Binary".
    static func describe(_ scopes: String) -> String {
        var types: [String] = []
        for item in scopes.split(separator: " ") {
            let t = item.split(separator: "/").last?.split(separator: ".").first.map(String.init) ?? ""
            if !t.isEmpty, !types.contains(t) { types.append(t == "*" ? "everything" : t) }
        }
        return types.joined(separator: ", ")
    }

    /// The types a partner sees only where it is a party: the prescriptions it wrote, the fills of those, the
    /// messages between it and the patient. Not the pharmacy's own threads with the patient, nor other prescribers'
    /// prescriptions for the same patient.
    public static let partyTypes: Set<ResourceType> = [.medicationRequest, .medicationDispense, .communication]

    /// The purpose this scope acts under.
    public var purpose: PurposeOfUse { principal.purpose }

    /// The rights for a type; no entry means none.
    public func rights(for type: ResourceType) -> Rights { rights[type] ?? .none }

    /// True if the role may never touch the type: the caller gets 403 rather than 404.
    public func mayAccess(_ type: ResourceType) -> Bool {
        let r = rights(for: type)
        return r.read || r.create || r.update || r.delete
    }

    /// The minimum-necessary element filter for a type under this scope's purpose, or `nil` for the whole resource.
    public func visibleElements(of type: ResourceType) -> Set<String>? { fields[type] }

    /// An explicit, audited scope for a system job over one tenant (or all with `tenant == "*"`).
    ///
    /// - parameter subject: who the audit log names: `system` for jobs, `operator:<login>` for an operator's command.
    public static func system(reason: String, tenant: String = "*", write: Bool = false, subject: String = "system") -> AccessScope {
        let p = Principal(subject: subject, roleName: "system", tenant: tenant, patientID: nil, purpose: .systemAdmin)
        var rights: [ResourceType: Rights] = [:]
        for t in ResourceType.allCases { rights[t] = write ? .all : .readOnly }
        return AccessScope(principal: p, role: .admin, rows: .tenant, rights: rights, systemReason: reason)
    }
}

/// Why a scope could not be made. Always a denial.
public enum PolicyError: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownRole(String)
    case malformed(String)
    /// The purpose is valid but not one this token or role may act under (403).
    case purposeRefused(String)

    public var description: String {
        switch self {
        case .unknownRole(let r): "unknown role '\(r)'"
        case .malformed(let m): m
        case .purposeRefused(let m): m
        }
    }
}

/// The policy: principal → scope. Unknown roles and malformed principals fail closed.
public enum AccessPolicy {
    /// The scope for a principal: the role's rights, limited to what the request's purpose allows in `table`
    /// (types and elements), and narrowed by the token's granted scopes if any. A purpose that the token does not
    /// carry, or that the role may not act under, is refused.
    public static func scope(for p: Principal, table: PolicyTable = .standard, breakGlass: [String] = []) throws(PolicyError) -> AccessScope {
        var full = try roleScope(for: p)
        let carried = p.purposes ?? [PurposeOfUse.default(for: full.role)]
        guard carried.contains(p.purpose) else {
            throw .purposeRefused(
                "This token does not carry purpose of use \(p.purpose.rawValue); it carries "
                    + carried.map(\.rawValue).sorted().joined(separator: ", "))
        }
        if p.purpose == .emergencyTreatment {
            // Break-glass: read-only access to the compartments of the patients this user holds a live override for.
            guard full.role == .pharmacist || full.role == .support else {
                throw .purposeRefused("Only pharmacists and support staff may act under ETREAT (break-glass)")
            }
            guard !breakGlass.isEmpty else {
                throw .purposeRefused(
                    "ETREAT needs an active break-glass override: POST /fhir/Patient/{id}/$break-glass with a reason first")
            }
            var rights: [ResourceType: AccessScope.Rights] = [:]
            for t in ResourceType.allCases where t != .auditEvent { rights[t] = .readOnly }
            full = AccessScope(principal: p, role: full.role, rows: .patients(breakGlass), rights: rights)
        }
        guard let allowed = table.types(for: full.role, p.purpose) else {
            let mine = table.purposes(for: full.role).map(\.rawValue).sorted().joined(separator: ", ")
            throw .purposeRefused(
                "Role '\(full.role.rawValue)' may not act under purpose of use \(p.purpose.rawValue) (policy allows: \(mine.isEmpty ? "none" : mine))")
        }
        let grants = try p.grantedScopes.map(parseScopes)
        var narrowed: [ResourceType: AccessScope.Rights] = [:]
        var fields: [ResourceType: Set<String>] = [:]
        for (type, fullRights) in full.rights {
            guard let visible = allowed[type] else { continue }
            var r = fullRights
            if let visible {
                fields[type] = visible
                // A caller who sees part of a resource may not write it: saving the part would drop what it cannot see.
                r = .readOnly
                r.read = fullRights.read
            }
            guard let grants else {
                narrowed[type] = r
                continue
            }
            let read = grants.contains { $0.matches(type) && $0.read }
            let write = grants.contains { $0.matches(type) && $0.write }
            narrowed[type] = .init(
                read: r.read && read, create: r.create && write, update: r.update && write, delete: r.delete && write,
                changeStatus: r.changeStatus && write, operate: r.operate && write)
        }
        return AccessScope(
            principal: p, role: full.role, rows: full.rows, rights: narrowed, fields: fields, roleRights: full.rights,
            purposeTypes: Set(allowed.keys))
    }

    struct Grant {
        let type: ResourceType?
        let read: Bool
        let write: Bool
        func matches(_ t: ResourceType) -> Bool { type == nil || type == t }
    }

    /// Parses `context/Type.permission` scopes (SMART v1: `patient|user|system`, a type or `*`, `read|write|*`).
    /// Anything else is malformed and denies everything.
    static func parseScopes(_ s: String) throws(PolicyError) -> [Grant] {
        var out: [Grant] = []
        for item in s.split(separator: " ") {
            let parts = item.split(separator: "/")
            guard parts.count == 2, ["patient", "user", "system"].contains(parts[0]) else {
                throw .malformed("scope '\(item)'")
            }
            let tp = parts[1].split(separator: ".")
            guard tp.count == 2 else { throw .malformed("scope '\(item)'") }
            let type: ResourceType?
            if tp[0] == "*" { type = nil } else {
                guard let t = ResourceType(name: String(tp[0])) else { throw .malformed("scope '\(item)'") }
                type = t
            }
            switch tp[1] {
            case "read": out.append(Grant(type: type, read: true, write: false))
            case "write": out.append(Grant(type: type, read: false, write: true))
            case "*": out.append(Grant(type: type, read: true, write: true))
            default: throw .malformed("scope '\(item)'")
            }
        }
        guard !out.isEmpty else { throw .malformed("empty scope") }
        return out
    }

    /// The default SMART-style scope string for a role (what a token carries when none was requested).
    public static func defaultScopes(for role: Role) -> String {
        switch role {
        case .patient:
            "patient/*.read patient/MedicationRequest.write patient/Communication.write patient/DocumentReference.write patient/Binary.write patient/Consent.write"
        case .pharmacist, .technician, .support: "user/*.*"
        case .partner: "system/*.*"
        case .privacyOfficer: "user/AuditEvent.read"
        case .admin: "user/*.read"
        case .businessLine: "system/Patient.read"
        }
    }

    static func roleScope(for p: Principal) throws(PolicyError) -> AccessScope {
        guard let role = p.role else { throw .unknownRole(p.roleName) }
        guard !p.tenant.isEmpty, !p.subject.isEmpty else { throw .malformed("principal without tenant or subject") }
        let ro = AccessScope.Rights.readOnly
        let all = AccessScope.Rights.all
        let reference: [ResourceType: AccessScope.Rights] = [.medication: ro, .practitioner: ro, .organization: ro]
        switch role {
        case .patient:
            guard let pid = p.patientID, FHIRID.isValid(pid) else { throw .malformed("patient principal without patient id") }
            var r = reference
            r[.patient] = ro
            // Patients read their prescriptions and request refills ($refill), nothing else.
            r[.medicationRequest] = .init(read: true, create: false, update: false, delete: false, changeStatus: false, operate: true)
            r[.medicationDispense] = ro
            let createOnly = AccessScope.Rights(read: true, create: true, update: false, delete: false, changeStatus: false)
            r[.communication] = createOnly
            r[.documentReference] = createOnly
            r[.binary] = createOnly
            // Patients give and revoke their own authorizations.
            r[.consent] = .init(read: true, create: true, update: true, delete: false, changeStatus: false)
            r[.auditEvent] = ro
            return AccessScope(principal: p, role: role, rows: .compartment(patientID: pid), rights: r)
        case .pharmacist:
            var r: [ResourceType: AccessScope.Rights] = [:]
            for t in ResourceType.allCases where t != .auditEvent { r[t] = all }
            return AccessScope(principal: p, role: role, rows: .tenant, rights: r)
        case .technician:
            var r: [ResourceType: AccessScope.Rights] = reference
            let noStatus = AccessScope.Rights(read: true, create: true, update: true, delete: false, changeStatus: false, operate: true)
            for t in [ResourceType.patient, .medicationRequest, .medicationDispense, .communication, .documentReference, .binary] { r[t] = noStatus }
            return AccessScope(principal: p, role: role, rows: .tenant, rights: r)
        case .support:
            var r = reference
            r[.patient] = ro
            r[.consent] = ro
            return AccessScope(principal: p, role: role, rows: .tenant, rights: r)
        case .partner:
            // A partner reads and writes only what it is a party to (AccessScope.partyTypes): its prescriptions, the
            // fills of those, and the messages between it and the patient. Messages, once sent, are not rewritten.
            var r = reference
            r[.patient] = AccessScope.Rights(read: true, create: true, update: true, delete: false, changeStatus: false)
            r[.medicationRequest] = AccessScope.Rights(read: true, create: true, update: true, delete: false, changeStatus: true, operate: true)
            r[.communication] = AccessScope.Rights(read: true, create: true, update: false, delete: false, changeStatus: false)
            r[.medicationDispense] = AccessScope.Rights(read: true, create: false, update: false, delete: false, changeStatus: false, operate: true)
            return AccessScope(principal: p, role: role, rows: .partner(clientID: p.subject), rights: r)
        case .privacyOfficer:
            return AccessScope(principal: p, role: role, rows: .tenant, rights: [.auditEvent: ro])
        case .admin:
            return AccessScope(principal: p, role: role, rows: .none, rights: [:])
        case .businessLine:
            return AccessScope(principal: p, role: role, rows: .consented(clientID: p.subject), rights: [.patient: ro])
        }
    }
}
