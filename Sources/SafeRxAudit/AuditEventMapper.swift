import SafeRxModel

/// FHIR R4 AuditEvent shaped after IHE Basic Audit Log Patterns (BALP).
public enum AuditEventMapper {
    static let interactionSystem = "http://hl7.org/fhir/restful-interaction"

    public static func auditEvent(_ r: AuditRecord, includeHash: Bool = true) -> JSON {
        let e = r.entry
        let interaction = e.attempted ?? e.action
        let isREST = ["read", "vread", "history", "search", "create", "update", "delete"].contains(interaction)
        let type: JSON =
            isREST
            ? .object([
                "system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest",
                "display": "RESTful Operation",
            ])
            : .object(["system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110114", "display": "User Authentication"])
        let action: String =
            switch interaction {
            case "create": "C"
            case "read", "vread", "history": "R"
            case "update": "U"
            case "delete": "D"
            default: "E"
            }
        let outcome: String =
            switch e.outcome {
            case "success": "0"
            case "denied", "not-found", "failure": "4"
            default: "8"
            }
        var agent: [String: JSON] = [
            "type": .object([
                "coding": .array([
                    .object([
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP",
                        "display": "information recipient",
                    ])
                ])
            ]),
            "who": .object(["identifier": .object(["system": "urn:saferx:actor", "value": .string(e.actor.id)])]),
            "requestor": true,
            "role": .array([.object(["text": .string(e.actor.role)])]),
        ]
        if !e.sourceIP.isEmpty { agent["network"] = .object(["address": .string(e.sourceIP), "type": "2"]) }
        var entities: [JSON] = e.patients.map { pid in
            .object([
                "what": .object(["reference": .string("Patient/\(pid)")]),
                "type": .object(["system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"]),
                "role": .object(["system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"]),
            ])
        }
        if let t = e.resourceType {
            var what: [String: JSON] = ["type": .string(t)]
            if let id = e.resourceID { what["reference"] = .string("\(t)/\(id)") }
            var entity: [String: JSON] = [
                "what": .object(what),
                "type": .object(["system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"]),
            ]
            if let d = e.detail { entity["description"] = .string(d) }
            // The elements released to every patient named (per-patient releases stay out: they would tell one
            // patient what another authorized).
            if let r = e.released, !r.elements.isEmpty {
                entity["detail"] = .array([.object(["type": "released-elements", "valueString": .string(r.elements.joined(separator: ","))])])
            }
            entities.append(.object(entity))
        }
        var request: [String: JSON] = [
            "what": .object(["identifier": .object(["system": "urn:saferx:request-id", "value": .string(e.requestID)])]),
            "type": .object(["system": "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType", "code": "XrequestId"]),
        ]
        if !e.userAgent.isEmpty { request["detail"] = .array([.object(["type": "user-agent", "valueString": .string(e.userAgent)])]) }
        entities.append(.object(request))
        var event: [String: JSON] = [
            "resourceType": "AuditEvent",
            "id": .string(String(r.seq)),
            "meta": .object(["versionId": "1", "lastUpdated": .string(r.time)]),
            "type": type,
            "subtype": .array([.object(["system": .string(interactionSystem), "code": .string(interaction)])]),
            "action": .string(action),
            "recorded": .string(r.time),
            "outcome": .string(outcome),
            "outcomeDesc": .string(e.outcome + " (\(e.result.rawValue))" + (e.action == "denied" ? ": \(interaction) denied" : "")),
            "purposeOfEvent": .array([
                .object(["coding": .array([.object(["system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": .string(e.purpose)])])])
            ]),
            "agent": .array([.object(agent)]),
            "source": .object([
                "site": .string(e.actor.tenant),
                "observer": .object(["display": "SafeRx"]),
                "type": .array([.object(["system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"])]),
            ]),
            "entity": .array(entities),
        ]
        if includeHash {
            event["extension"] = .array([
                .object(["url": "urn:saferx:audit-hash", "valueString": .string(r.hash ?? AuditLog.hash(prev: r.prevHash, body: r.canonicalBody(cipher: nil)))])
            ])
        }
        return .object(event)
    }
}

