import Foundation
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
    /// A non-pharmacy business line (a retail loyalty program): data only with the patient's authorization.
    case businessLine = "business-line"
}

/// Why data is being used: an HL7 v3 PurposeOfUse code. Every request acts under exactly one, and every audit
/// record names it (`purposeOfEvent`).
public enum PurposeOfUse: String, Sendable, Codable, CaseIterable {
    /// Treatment.
    case treatment = "TREAT"
    /// Emergency treatment (break-glass).
    case emergencyTreatment = "ETREAT"
    /// Payment.
    case payment = "HPAYMT"
    /// Healthcare operations.
    case operations = "HOPERAT"
    /// Patient requested (the patient's own access).
    case patientRequest = "PATRQT"
    /// Family or caregiver requested.
    case familyRequest = "FAMRQT"
    /// Marketing (needs the patient's authorization).
    case marketing = "MKT"
    /// Healthcare marketing (needs the patient's authorization).
    case healthcareMarketing = "HMARKT"
    /// Research.
    case research = "HRESCH"
    /// Public health.
    case publicHealth = "PUBHLTH"
    /// Labor relations / employment.
    case labor = "LABOR"
    /// Legal (subpoena, court order).
    case legal = "HLEGAL"
    /// Compliance and privacy oversight.
    case compliance = "HCOMPL"
    /// System administration.
    case systemAdmin = "SYSADMIN"

    /// Parses a code from a header or claim. Errors say whether the code is malformed or merely unknown.
    public static func parse(_ raw: String) throws(PolicyError) -> PurposeOfUse {
        let code = raw.trimmingCharacters(in: .whitespaces)
        guard !code.isEmpty, code.count <= 16, code.allSatisfy({ $0.isASCII && ($0.isUppercase || $0.isNumber) }) else {
            throw .malformed("purpose of use '\(String(code.prefix(20)))' is not an HL7 v3 PurposeOfUse code (upper-case letters, e.g. TREAT)")
        }
        guard let p = PurposeOfUse(rawValue: code) else {
            throw .malformed("purpose of use '\(code)' is not one SafeRx knows: \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return p
    }

    /// Purposes whose disclosures are exempt from the HIPAA accounting of disclosures (§164.528(a)(1)): treatment,
    /// payment, operations, and the patient's own access.
    public var isTPO: Bool {
        switch self {
        case .treatment, .emergencyTreatment, .payment, .operations, .patientRequest, .systemAdmin, .compliance: true
        default: false
        }
    }

    /// The purpose a role acts under when a request names none.
    public static func `default`(for role: Role) -> PurposeOfUse {
        switch role {
        case .patient: .patientRequest
        case .pharmacist, .technician, .partner: .treatment
        case .support: .operations
        case .privacyOfficer: .compliance
        case .admin: .systemAdmin
        case .businessLine: .marketing
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
    /// The purpose this request acts under.
    public let purpose: PurposeOfUse
    /// The purposes the token carries (`nil`: the role's default purpose only).
    public let purposes: Set<PurposeOfUse>?
    /// SMART-style scopes granted to the token (`patient/*.read user/Communication.write`); `nil` means the role's
    /// full rights. Parsed by ``AccessPolicy``: a malformed scope denies everything.
    public let grantedScopes: String?
    /// For a caregiver acting for a patient: the caregiver grant the token was issued under (the principal's
    /// `subject` is the caregiver's own account, `patientID` the patient cared for). Audited as role `caregiver`.
    public let caregiverGrant: String?

    public init(
        subject: String, roleName: String, tenant: String, patientID: String?, purpose: PurposeOfUse? = nil,
        grantedScopes: String? = nil, purposes: Set<PurposeOfUse>? = nil, caregiverGrant: String? = nil
    ) {
        self.caregiverGrant = caregiverGrant
        self.purposes = purposes
        self.subject = subject
        self.roleName = roleName
        self.tenant = tenant
        self.patientID = patientID
        self.grantedScopes = grantedScopes
        // With no purpose named: the role's default if the token carries it, else the first purpose the token carries
        // (in the order of PurposeOfUse.allCases), so that a narrowed token works without a header.
        let roleDefault = Role(rawValue: roleName).map { PurposeOfUse.default(for: $0) } ?? .operations
        if let purpose {
            self.purpose = purpose
        } else if let purposes, !purposes.contains(roleDefault), let first = PurposeOfUse.allCases.first(where: purposes.contains) {
            self.purpose = first
        } else {
            self.purpose = roleDefault
        }
    }

    public var role: Role? { Role(rawValue: roleName) }

    /// The same principal acting under another purpose (checked against ``purposes`` by ``AccessPolicy``).
    public func acting(for purpose: PurposeOfUse) -> Principal {
        Principal(
            subject: subject, roleName: roleName, tenant: tenant, patientID: patientID, purpose: purpose, grantedScopes: grantedScopes,
            purposes: purposes, caregiverGrant: caregiverGrant)
    }

    /// The role written in audit records: `caregiver` for a caregiver acting for a patient, else the role.
    public var auditRole: String { caregiverGrant == nil ? roleName : "caregiver"
    }
}
