import Foundation

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

    public static func < (a: DataElement, b: DataElement) -> Bool {
        (allCases.firstIndex(of: a) ?? 0) < (allCases.firstIndex(of: b) ?? 0)
    }
}

/// Which data elements leave with a resource: the whole resource, or only the FHIR elements a restricted purpose or
/// authorization released (as the audit record says).
///
/// The one map from FHIR elements to the data elements breach notices name: the gate's audit records say which FHIR
/// elements left (``AuditEntry/released``), breach scope turns them into data elements here.
public enum ExposureMap {
    /// FHIR element → data element.
    public static let byElement: [String: DataElement] = [
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

    /// The data elements released of `type`: the whole resource's when `visible` is `nil` (nothing restricted the
    /// release), else only those of the `visible` FHIR elements (`Type.element`, or bare for `type`; elements of
    /// other types are ignored).
    public static func elements(_ type: String, visible: [String]?) -> Set<DataElement> {
        guard let visible else { return whole(type) }
        return Set(visible.compactMap { e in
            let qualified = e.contains(".") ? e : "\(type).\(e)"
            return qualified.hasPrefix(type + ".") ? byElement[qualified] : nil
        })
    }
}
