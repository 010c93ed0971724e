import SafeRxModel

// `DataElement` and `ExposureMap` live in SafeRxModel (one map for the gate and breach response); here, how a
// notice words them.
extension DataElement {
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

}
