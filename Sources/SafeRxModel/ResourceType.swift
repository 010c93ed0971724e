/// The FHIR R4 resource types SafeRx serves.
public enum ResourceType: String, Sendable, CaseIterable, Hashable, Codable {
    case patient = "Patient"
    case practitioner = "Practitioner"
    case organization = "Organization"
    case medication = "Medication"
    case medicationRequest = "MedicationRequest"
    case medicationDispense = "MedicationDispense"
    case communication = "Communication"
    case consent = "Consent"
    /// A document (a message attachment) whose content is a ``binary``.
    case documentReference = "DocumentReference"
    /// Raw content (base64), checked by content against the allowed types (``AttachmentRules``).
    case binary = "Binary"
    case auditEvent = "AuditEvent"

    /// Parses a type name from a URL or reference; `nil` for anything SafeRx does not serve.
    public init?(name: String) { self.init(rawValue: name) }

    /// Types whose instances hold data about one or more patients (members of the Patient compartment).
    public var isPatientData: Bool {
        switch self {
        case .patient, .medicationRequest, .medicationDispense, .communication, .consent, .auditEvent, .documentReference, .binary: true
        case .practitioner, .organization, .medication: false
        }
    }

    /// Types that clients may create, update and delete. AuditEvent is written only by SafeRx itself.
    public var isWritable: Bool { self != .auditEvent }
}

/// Validation of FHIR logical ids: `[A-Za-z0-9\-\.]{1,64}`.
public enum FHIRID {
    public static func isValid(_ s: some StringProtocol) -> Bool {
        guard !s.isEmpty, s.utf8.count <= 64 else { return false }
        return s.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x2E
        }
    }
}

/// A literal relative reference `Type/id`.
public struct Reference: Sendable, Hashable, CustomStringConvertible {
    public var type: ResourceType
    public var id: String

    public init(type: ResourceType, id: String) {
        self.type = type
        self.id = id
    }

    /// Parses `Type/id`; `nil` if it is not a relative reference to a type SafeRx serves with a valid id.
    public init?(_ string: String) {
        let parts = string.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let type = ResourceType(name: String(parts[0])), FHIRID.isValid(parts[1]) else { return nil }
        self.init(type: type, id: String(parts[1]))
    }

    public var description: String { "\(type.rawValue)/\(id)" }
}
