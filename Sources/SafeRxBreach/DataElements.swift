import SafeRxModel

/// The kinds of protected health information a breach notice names (45 CFR 164.404(c)(1)(B): "the types of
/// unsecured protected health information that were involved").
public enum DataElement: String, CaseIterable, Codable, Sendable, Comparable {
    case name
    case address
    case birthDate = "birth-date"
    case sex
    case contact
    case identifiers
    case ssn
    case medications
    case prescriber
    case diagnoses
    case insurance
    case messages
    case attachments
    case authorizations

    /// Plain words for a letter ("your name", ...).
    public var label: String {
        switch self {
        case .name: "name"
        case .address: "postal address"
        case .birthDate: "date of birth"
        case .sex: "sex"
        case .contact: "phone number and e-mail address"
        case .identifiers: "pharmacy record and prescription numbers"
        case .ssn: "Social Security number"
        case .medications: "medication names, strengths and directions"
        case .prescriber: "the name and identifiers of the prescriber"
        case .diagnoses: "the reason for a prescription, where the prescriber gave one"
        case .insurance: "health insurance information"
        case .messages: "secure messages with the pharmacy"
        case .attachments: "documents attached to messages"
        case .authorizations: "authorizations you signed"
        }
    }

    /// Whether the element is medical or health-insurance information in the sense of state breach laws.
    public var isMedical: Bool {
        switch self {
        case .medications, .prescriber, .diagnoses, .messages, .attachments: true
        case .insurance: true
        default: false
        }
    }

    /// The OCR breach portal's "type of PHI" category.
    public var hhsCategory: String {
        switch self {
        case .name, .address, .birthDate, .sex, .contact, .identifiers, .ssn: "Demographic"
        case .insurance: "Financial"
        case .medications, .prescriber, .diagnoses: "Clinical"
        case .messages, .attachments, .authorizations: "Other"
        }
    }

    static var order: [DataElement] { allCases }
    public static func < (a: DataElement, b: DataElement) -> Bool { order.firstIndex(of: a)! < order.firstIndex(of: b)! }
}

/// Which data elements leave with a resource: the whole resource, or only the FHIR elements a restricted purpose or
/// authorization released (as the audit record says).
public enum ExposureMap {
    /// FHIR element → data element.
    static let byElement: [String: DataElement] = [
        "Patient.name": .name, "Patient.address": .address, "Patient.birthDate": .birthDate, "Patient.gender": .sex,
        "Patient.telecom": .contact, "Patient.identifier": .identifiers,
        "MedicationRequest.medicationCodeableConcept": .medications, "MedicationRequest.medicationReference": .medications,
        "MedicationRequest.dosageInstruction": .medications, "MedicationRequest.dispenseRequest": .medications,
        "MedicationRequest.requester": .prescriber, "MedicationRequest.reasonCode": .diagnoses, "MedicationRequest.identifier": .identifiers,
        "MedicationDispense.medicationCodeableConcept": .medications, "MedicationDispense.medicationReference": .medications,
        "MedicationDispense.quantity": .medications, "MedicationDispense.daysSupply": .medications,
        "MedicationDispense.dosageInstruction": .medications, "MedicationDispense.extension": .address,
        "Communication.payload": .messages, "DocumentReference.content": .attachments, "Binary.data": .attachments,
        "Consent.provision": .authorizations, "Consent.sourceAttachment": .authorizations,
    ]

    /// The data elements of a resource of `type` as a whole.
    public static func whole(_ type: String) -> Set<DataElement> {
        switch type {
        case "Patient": [.name, .address, .birthDate, .sex, .contact, .identifiers]
        case "MedicationRequest": [.medications, .prescriber, .diagnoses, .identifiers]
        case "MedicationDispense": [.medications, .address]
        case "Communication": [.messages]
        case "DocumentReference", "Binary": [.attachments]
        case "Consent": [.authorizations]
        default: []
        }
    }

    /// The data elements released of `type`: all of them, or only those of `visible` FHIR elements.
    public static func elements(_ type: String, visible: Set<String>?) -> Set<DataElement> {
        guard let visible else { return whole(type) }
        return Set(visible.compactMap { byElement[$0.contains(".") ? $0 : "\(type).\($0)"] })
    }
}
