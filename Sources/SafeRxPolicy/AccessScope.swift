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
        /// Every patient of the tenant.
        case tenant
        /// Patients a partner client created, and the resources about them.
        case partner(clientID: String)
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

        public static let none = Rights(read: false, create: false, update: false, delete: false, changeStatus: false)
        static let readOnly = Rights(read: true, create: false, update: false, delete: false, changeStatus: false)
        static let all = Rights(read: true, create: true, update: true, delete: true, changeStatus: true)
    }

    public let principal: Principal
    public let role: Role
    public let tenant: String
    public let rows: Rows
    let rights: [ResourceType: Rights]
    /// A system job's reason (backups, exports, verification); `nil` for requests.
    public let systemReason: String?

    init(principal: Principal, role: Role, rows: Rows, rights: [ResourceType: Rights], systemReason: String? = nil) {
        self.principal = principal
        self.role = role
        self.tenant = principal.tenant
        self.rows = rows
        self.rights = rights.filter { $0.value != .none }
        self.systemReason = systemReason
    }

    /// The rights for a type; no entry means none.
    public func rights(for type: ResourceType) -> Rights { rights[type] ?? .none }

    /// True if the role may never touch the type: the caller gets 403 rather than 404.
    public func mayAccess(_ type: ResourceType) -> Bool {
        let r = rights(for: type)
        return r.read || r.create || r.update || r.delete
    }

    /// Elements of Patient that a support agent may see (demographics and contact data).
    public static let supportPatientElements: Set<String> = [
        "resourceType", "id", "meta", "identifier", "active", "name", "telecom", "gender", "birthDate", "address",
        "communication", "contact",
    ]

    /// The minimum-necessary element filter for a type, or `nil` for the whole resource.
    public func visibleElements(of type: ResourceType) -> Set<String>? {
        role == .support && type == .patient ? Self.supportPatientElements : nil
    }

    /// An explicit, audited scope for a system job over one tenant (or all with `tenant == "*"`).
    public static func system(reason: String, tenant: String = "*", write: Bool = false) -> AccessScope {
        let p = Principal(subject: "system", roleName: "system", tenant: tenant, patientID: nil, purpose: .systemAdmin)
        var rights: [ResourceType: Rights] = [:]
        for t in ResourceType.allCases { rights[t] = write ? .all : .readOnly }
        return AccessScope(principal: p, role: .admin, rows: .tenant, rights: rights, systemReason: reason)
    }
}

/// Why a scope could not be made. Always a denial.
public enum PolicyError: Error, Sendable, Equatable {
    case unknownRole(String)
    case malformed(String)
}

/// The policy: principal → scope. Unknown roles and malformed principals fail closed.
public enum AccessPolicy {
    /// The scope for a principal: the role's rights, narrowed by the token's granted scopes if any.
    public static func scope(for p: Principal) throws(PolicyError) -> AccessScope {
        let full = try roleScope(for: p)
        guard let granted = p.grantedScopes else { return full }
        let grants = try parseScopes(granted)
        var narrowed: [ResourceType: AccessScope.Rights] = [:]
        for (type, r) in full.rights {
            let read = grants.contains { $0.matches(type) && $0.read }
            let write = grants.contains { $0.matches(type) && $0.write }
            narrowed[type] = .init(
                read: r.read && read, create: r.create && write, update: r.update && write, delete: r.delete && write,
                changeStatus: r.changeStatus && write)
        }
        return AccessScope(principal: p, role: full.role, rows: full.rows, rights: narrowed)
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
        case .patient: "patient/*.read patient/Communication.write"
        case .pharmacist, .technician, .support: "user/*.*"
        case .partner: "system/*.*"
        case .privacyOfficer: "user/AuditEvent.read"
        case .admin: "user/*.read"
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
            r[.medicationRequest] = ro
            r[.medicationDispense] = ro
            r[.communication] = .init(read: true, create: true, update: false, delete: false, changeStatus: false)
            r[.auditEvent] = ro
            return AccessScope(principal: p, role: role, rows: .compartment(patientID: pid), rights: r)
        case .pharmacist:
            var r: [ResourceType: AccessScope.Rights] = [:]
            for t in ResourceType.allCases where t != .auditEvent { r[t] = all }
            return AccessScope(principal: p, role: role, rows: .tenant, rights: r)
        case .technician:
            var r: [ResourceType: AccessScope.Rights] = reference
            let noStatus = AccessScope.Rights(read: true, create: true, update: true, delete: false, changeStatus: false)
            for t in [ResourceType.patient, .medicationRequest, .medicationDispense, .communication] { r[t] = noStatus }
            return AccessScope(principal: p, role: role, rows: .tenant, rights: r)
        case .support:
            var r = reference
            r[.patient] = ro
            return AccessScope(principal: p, role: role, rows: .tenant, rights: r)
        case .partner:
            var r = reference
            let write = AccessScope.Rights(read: true, create: true, update: true, delete: false, changeStatus: true)
            r[.patient] = write
            r[.medicationRequest] = write
            r[.communication] = write
            r[.medicationDispense] = ro
            return AccessScope(principal: p, role: role, rows: .partner(clientID: p.subject), rights: r)
        case .privacyOfficer:
            return AccessScope(principal: p, role: role, rows: .tenant, rights: [.auditEvent: ro])
        case .admin:
            return AccessScope(principal: p, role: role, rows: .none, rights: [:])
        }
    }
}
