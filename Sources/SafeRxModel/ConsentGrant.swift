import Foundation

/// A HIPAA authorization as SafeRx enforces it: an active `Consent` whose provision permits one business-line client
/// (an actor identified as `urn:saferx:client|<client id>`) to receive named data elements (provision.class codes
/// `Type.element` in `urn:saferx:data-element`) for named purposes (provision.purpose, HL7 v3 PurposeOfUse), until
/// provision.period.end.
///
/// ```json
/// "provision": {"type": "permit", "period": {"end": "2027-11-01T00:00:00Z"},
///   "actor": [{"role": {"coding": [{"code": "IRCP"}]},
///              "reference": {"identifier": {"system": "urn:saferx:client", "value": "retail-loyalty"}}}],
///   "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "MKT"}],
///   "class": [{"system": "urn:saferx:data-element", "code": "Patient.telecom"}]}
/// ```
public struct ConsentGrant: Sendable, Hashable {
    public static let clientSystem = "urn:saferx:client"
    public static let elementSystem = "urn:saferx:data-element"
    /// Largest signed authorization accepted as `sourceAttachment.data` (decoded).
    public static let maxAttachmentBytes = AttachmentRules.maxBytes

    public var clientID: String
    public var purpose: String
    /// `Type.element` codes.
    public var elements: [String]
    /// When the authorization ends (UTC instant).
    public var expires: Date
    /// When it starts (UTC instant); an authorization dated in the future grants nothing before then.
    public var starts: Date?

    /// The grants an active consent makes (none for any other status).
    public static func grants(in consent: JSON) -> [ConsentGrant] {
        guard consent["status"]?.stringValue == "active", let p = consent["provision"],
            (p["type"]?.stringValue ?? "permit") == "permit", p["provision"] == nil, p["data"] == nil,
            let endText = p["period"]?["end"]?.stringValue, let end = FHIRDate.instant(endText, end: true)
        else { return [] }
        let start = p["period"]?["start"]?.stringValue.flatMap { FHIRDate.instant($0, end: false) }
        let clients = (p["actor"]?.arrayValue ?? []).compactMap { actor -> String? in
            guard let ident = actor["reference"]?["identifier"], ident["system"]?.stringValue == clientSystem else { return nil }
            return ident["value"]?.stringValue
        }
        let purposes = (p["purpose"]?.arrayValue ?? []).compactMap { $0["code"]?.stringValue }
        let elements = (p["class"]?.arrayValue ?? []).filter { $0["system"]?.stringValue == elementSystem }.compactMap { $0["code"]?.stringValue }
        var out: [ConsentGrant] = []
        for c in clients {
            for purpose in purposes {
                out.append(ConsentGrant(clientID: c, purpose: purpose, elements: elements, expires: end, starts: start))
            }
        }
        return out
    }

    /// Checks what a consent naming a business-line client must hold; throws a precise error otherwise. Consents
    /// that name no client (ordinary privacy consents) are only structurally validated.
    public static func validate(_ consent: JSON) throws(FHIRError) {
        guard let p = consent["provision"] else { return }
        let namesClient = (p["actor"]?.arrayValue ?? []).contains { $0["reference"]?["identifier"]?["system"]?.stringValue == clientSystem }
        guard namesClient else { return }
        guard let end = p["period"]?["end"]?.stringValue, FHIRDate.instant(end, end: true) != nil else {
            throw .invalid("An authorization for a client must end: provision.period.end as a dateTime", at: "Consent.provision.period.end")
        }
        if let start = p["period"]?["start"]?.stringValue, FHIRDate.instant(start, end: false) == nil {
            throw .invalid("provision.period.start must be a dateTime", at: "Consent.provision.period.start")
        }
        guard p["provision"] == nil, p["data"] == nil else {
            throw .invalid(
                "An authorization for a client must not nest provisions or name resources in provision.data; list the released elements in provision.class",
                at: "Consent.provision")
        }
        guard (p["type"]?.stringValue ?? "permit") == "permit" else {
            throw .invalid("An authorization for a client must be a permit", at: "Consent.provision.type")
        }
        for actor in p["actor"]?.arrayValue ?? [] {
            if let ident = actor["reference"]?["identifier"], ident["system"]?.stringValue == clientSystem {
                guard let v = ident["value"]?.stringValue, FHIRID.isValid(v) else {
                    throw .invalid("The client in provision.actor needs an identifier value (the client id)", at: "Consent.provision.actor")
                }
            }
        }
        let purposes = (p["purpose"]?.arrayValue ?? []).compactMap { $0["code"]?.stringValue }
        guard !purposes.isEmpty else {
            throw .invalid("An authorization must name its purposes of use in provision.purpose", at: "Consent.provision.purpose")
        }
        let elements = (p["class"]?.arrayValue ?? []).filter { $0["system"]?.stringValue == elementSystem }.compactMap { $0["code"]?.stringValue }
        guard !elements.isEmpty else {
            throw .invalid("An authorization must name the data elements it releases in provision.class (\(elementSystem), e.g. Patient.telecom)",
                at: "Consent.provision.class")
        }
        for e in elements {
            let parts = e.split(separator: ".")
            guard parts.count == 2, let type = ResourceType(name: String(parts[0])),
                ResourceDefinition.of(type).elements[String(parts[1])] != nil
            else { throw .invalid("'\(String(e.prefix(60)))' is not a data element SafeRx knows (Type.element)", at: "Consent.provision.class") }
        }
        // The kind of file is judged by its content, not by its declared type or name.
        try AttachmentRules.check(
            base64: consent["sourceAttachment"]?["data"]?.stringValue, declared: consent["sourceAttachment"]?["contentType"]?.stringValue,
            path: "Consent.sourceAttachment.data", allowed: ["application/pdf", "image/png", "image/jpeg"])
    }
}
