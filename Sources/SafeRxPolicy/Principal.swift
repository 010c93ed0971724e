import SafeRxModel

/// The roles SafeRx knows. Anything else fails closed.
public enum Role: String, Sendable, CaseIterable, Codable {
    case patient
    case pharmacist
    case technician
    case support
    case partner
    case privacyOfficer = "privacy-officer"
    case admin
}

/// Why data is being used (HL7 v3 PurposeOfUse codes). Every access records one.
public enum PurposeOfUse: String, Sendable, Codable {
    /// Treatment.
    case treatment = "TREAT"
    /// Healthcare operations.
    case operations = "HOPERAT"
    /// Payment.
    case payment = "HPAYMT"
    /// Patient requested (the patient's own access).
    case patientRequest = "PATRQT"
    /// Compliance and privacy oversight.
    case compliance = "HCOMPL"
    /// System administration.
    case systemAdmin = "SYSADMIN"

    /// The default purpose for a role until purposes are requested per token.
    public static func `default`(for role: Role) -> PurposeOfUse {
        switch role {
        case .patient: .patientRequest
        case .pharmacist, .technician, .partner: .treatment
        case .support: .operations
        case .privacyOfficer: .compliance
        case .admin: .systemAdmin
        }
    }
}

/// Who is asking: established once per request from a verified token, never from client-supplied fields.
public struct Principal: Sendable, Hashable {
    /// User id or partner client id.
    public let subject: String
    /// The role string as issued; parsed by ``AccessPolicy`` (unknown → deny).
    public let roleName: String
    /// The pharmacy organization (tenant) the principal belongs to.
    public let tenant: String
    /// For patient users: their Patient id.
    public let patientID: String?
    /// Purpose of use.
    public let purpose: PurposeOfUse
    /// SMART-style scopes granted to the token (`patient/*.read user/Communication.write`); `nil` means the role's
    /// full rights. Parsed by ``AccessPolicy``: a malformed scope denies everything.
    public let grantedScopes: String?

    public init(
        subject: String, roleName: String, tenant: String, patientID: String?, purpose: PurposeOfUse? = nil,
        grantedScopes: String? = nil
    ) {
        self.subject = subject
        self.roleName = roleName
        self.tenant = tenant
        self.patientID = patientID
        self.grantedScopes = grantedScopes
        self.purpose = purpose ?? Role(rawValue: roleName).map { PurposeOfUse.default(for: $0) } ?? .operations
    }

    public var role: Role? { Role(rawValue: roleName) }
}
