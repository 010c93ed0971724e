/// What an element of a resource may hold. The validator checks every element it knows and rejects the rest.
public indirect enum ElementRule: Sendable {
    case string
    case boolean
    case code(Set<String>)
    case date
    case dateTime
    case reference(Set<ResourceType>)
    /// A complex datatype SafeRx does not inspect further (CodeableConcept, Quantity, Dosage, ...).
    case object
    case array(ElementRule)
    case identifier
    /// A Reference that may be a literal `Type/id` to one of the types, or only an Identifier (a prescriber known by
    /// NPI who is not a Practitioner here).
    case referenceOrIdentifier(Set<ResourceType>)
    case humanName
    case contactPoint
}

/// The structure SafeRx accepts for each resource type: allowed elements, required elements, and references.
public struct ResourceDefinition: Sendable {
    public let type: ResourceType
    public let elements: [String: ElementRule]
    public let required: [String]

    static let common: [String: ElementRule] = [
        "resourceType": .string, "id": .string, "meta": .object, "text": .object, "extension": .array(.object),
        "language": .string,
    ]

    public static func of(_ type: ResourceType) -> ResourceDefinition {
        switch type {
        case .patient: patient
        case .practitioner: practitioner
        case .organization: organization
        case .medication: medication
        case .medicationRequest: medicationRequest
        case .medicationDispense: medicationDispense
        case .communication: communication
        case .consent: consent
        case .auditEvent: auditEvent
        case .documentReference: documentReference
        case .binary: binary
        }
    }

    static let gender: ElementRule = .code(["male", "female", "other", "unknown"])

    static let patient = ResourceDefinition(
        type: .patient,
        elements: common.merging([
            "identifier": .array(.identifier), "active": .boolean, "name": .array(.humanName),
            "telecom": .array(.contactPoint), "gender": gender, "birthDate": .date, "deceasedBoolean": .boolean,
            "deceasedDateTime": .dateTime, "address": .array(.object), "maritalStatus": .object,
            "communication": .array(.object), "contact": .array(.object),
            "generalPractitioner": .array(.reference([.practitioner, .organization])),
            "managingOrganization": .reference([.organization]),
        ]) { a, _ in a },
        required: [])

    static let practitioner = ResourceDefinition(
        type: .practitioner,
        elements: common.merging([
            "identifier": .array(.identifier), "active": .boolean, "name": .array(.humanName),
            "telecom": .array(.contactPoint), "address": .array(.object), "gender": gender, "birthDate": .date,
            "qualification": .array(.object),
        ]) { a, _ in a },
        required: [])

    static let organization = ResourceDefinition(
        type: .organization,
        elements: common.merging([
            "identifier": .array(.identifier), "active": .boolean, "type": .array(.object), "name": .string,
            "alias": .array(.string), "telecom": .array(.contactPoint), "address": .array(.object),
        ]) { a, _ in a },
        required: [])

    static let medication = ResourceDefinition(
        type: .medication,
        elements: common.merging([
            "identifier": .array(.identifier), "code": .object, "status": .code(["active", "inactive", "entered-in-error"]),
            "manufacturer": .reference([.organization]), "form": .object, "amount": .object, "ingredient": .array(.object),
            "batch": .object,
        ]) { a, _ in a },
        required: [])

    public static let medicationRequestStatuses: Set<String> = [
        "active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft", "unknown",
    ]

    static let medicationRequest = ResourceDefinition(
        type: .medicationRequest,
        elements: common.merging([
            "identifier": .array(.identifier), "status": .code(medicationRequestStatuses), "statusReason": .object,
            "intent": .code([
                "proposal", "plan", "order", "original-order", "reflex-order", "filler-order", "instance-order", "option",
            ]),
            "category": .array(.object), "priority": .code(["routine", "urgent", "asap", "stat"]),
            "medicationCodeableConcept": .object, "medicationReference": .reference([.medication]),
            "subject": .reference([.patient]), "authoredOn": .dateTime,
            "requester": .referenceOrIdentifier([.practitioner, .organization, .patient]),
            "reasonCode": .array(.object), "note": .array(.object), "dosageInstruction": .array(.object),
            "dispenseRequest": .object, "substitution": .object, "courseOfTherapyType": .object,
        ]) { a, _ in a },
        required: ["status", "intent", "subject"])

    public static let medicationDispenseStatuses: Set<String> = [
        "preparation", "in-progress", "cancelled", "on-hold", "completed", "entered-in-error", "stopped", "declined",
        "unknown",
    ]

    static let medicationDispense = ResourceDefinition(
        type: .medicationDispense,
        elements: common.merging([
            "identifier": .array(.identifier), "status": .code(medicationDispenseStatuses), "category": .object,
            "statusReasonCodeableConcept": .object,
            "medicationCodeableConcept": .object, "medicationReference": .reference([.medication]),
            "subject": .reference([.patient]), "performer": .array(.object),
            "authorizingPrescription": .array(.reference([.medicationRequest])), "type": .object, "quantity": .object,
            "daysSupply": .object, "whenPrepared": .dateTime, "whenHandedOver": .dateTime, "destination": .object,
            "receiver": .array(.reference([.patient, .practitioner])), "note": .array(.object),
            "dosageInstruction": .array(.object), "substitution": .object,
        ]) { a, _ in a },
        required: ["status", "subject"])

    static let communication = ResourceDefinition(
        type: .communication,
        elements: common.merging([
            "identifier": .array(.identifier),
            "status": .code([
                "preparation", "in-progress", "not-done", "on-hold", "stopped", "completed", "entered-in-error", "unknown",
            ]),
            "category": .array(.object), "priority": .code(["routine", "urgent", "asap", "stat"]),
            "subject": .reference([.patient]), "topic": .object,
            "about": .array(.reference([.medicationRequest, .medicationDispense, .medication])),
            "inResponseTo": .array(.reference([.communication])), "sent": .dateTime, "received": .dateTime,
            // A partner (an API client) is named by identifier (urn:saferx:api-client), as sender (set by the server from
            // its token) or recipient.
            "recipient": .array(.referenceOrIdentifier([.patient, .practitioner, .organization])),
            "sender": .referenceOrIdentifier([.patient, .practitioner, .organization]), "payload": .array(.object),
            "note": .array(.object), "reasonCode": .array(.object),
        ]) { a, _ in a },
        required: ["status", "subject"])

    /// A patient's consent; SafeRx reads HIPAA authorizations for business-line clients from it (see ``ConsentGrant``).
    static let consent = ResourceDefinition(
        type: .consent,
        elements: common.merging([
            "identifier": .array(.identifier),
            "status": .code(["draft", "proposed", "active", "rejected", "inactive", "entered-in-error"]),
            "scope": .object, "category": .array(.object), "patient": .reference([.patient]), "dateTime": .dateTime,
            "performer": .array(.reference([.patient, .practitioner, .organization])),
            "organization": .array(.reference([.organization])), "sourceAttachment": .object, "policy": .array(.object),
            "policyRule": .object, "verification": .array(.object), "provision": .object,
        ]) { a, _ in a },
        required: ["status", "scope", "category", "patient"])

    /// A document about one patient; SafeRx uses it for message attachments, whose content is a Binary in the same
    /// compartment (`content.attachment.url` = `Binary/{id}`).
    static let documentReference = ResourceDefinition(
        type: .documentReference,
        elements: common.merging([
            "identifier": .array(.identifier), "status": .code(["current", "superseded", "entered-in-error"]),
            "docStatus": .code(["preliminary", "final", "amended", "entered-in-error"]), "type": .object,
            "category": .array(.object), "subject": .reference([.patient]), "date": .dateTime,
            "author": .array(.reference([.patient, .practitioner, .organization])), "description": .string,
            "content": .array(.object), "context": .object,
        ]) { a, _ in a },
        required: ["status", "subject", "content"])

    /// Raw content. `securityContext` names the patient whose compartment it is in; `data` is checked by
    /// ``AttachmentRules`` (size, and type by content).
    static let binary = ResourceDefinition(
        type: .binary,
        elements: [
            "resourceType": .string, "id": .string, "meta": .object, "contentType": .string,
            "securityContext": .reference([.patient]), "data": .string,
        ],
        required: ["contentType", "securityContext", "data"])

    static let auditEvent = ResourceDefinition(type: .auditEvent, elements: [:], required: [])
}
