import Foundation

/// Checks a client-supplied resource against ``ResourceDefinition`` before anything is written.
///
/// Strict: an unknown element, a wrong JSON kind, an invalid code, date or reference is an error naming the element.
/// `contained` resources are refused: they would carry data past the access checks on references.
public enum ResourceValidator {
    /// Validates `json` as a resource of `type`. `id`, when given, must match the body's id (update).
    public static func validate(_ json: JSON, as type: ResourceType, id: String? = nil) throws(FHIRError) {
        guard case .object(let object) = json else {
            throw .invalid("A resource must be a JSON object, got \(json.kindName)")
        }
        guard let declared = object["resourceType"] else {
            throw .invalid("Missing element 'resourceType'", at: "resourceType")
        }
        guard declared.stringValue == type.rawValue else {
            throw .invalid(
                "resourceType must be '\(type.rawValue)' for this endpoint, got \(describe(declared))", at: "resourceType")
        }
        guard type.isWritable else { throw .methodNotAllowed("\(type.rawValue) is read-only") }
        let definition = ResourceDefinition.of(type)
        if let bodyID = object["id"] {
            guard let s = bodyID.stringValue, FHIRID.isValid(s) else {
                throw .invalid("id must be 1-64 characters of A-Z, a-z, 0-9, '-' or '.'", at: "\(type.rawValue).id")
            }
            if let id, s != id {
                throw .invalid("Resource id '\(s)' does not match the id '\(id)' in the URL", at: "\(type.rawValue).id")
            }
        } else if id != nil {
            throw .invalid("An update must carry the resource id in the body", at: "\(type.rawValue).id")
        }
        for key in object.keys.sorted() {
            guard let rule = definition.elements[key] else {
                throw .invalid("Unknown element '\(key)' in \(type.rawValue)", at: "\(type.rawValue).\(key)")
            }
            if key == "meta" || key == "resourceType" || key == "id" { continue }
            try check(object[key]!, rule, path: "\(type.rawValue).\(key)")
        }
        for key in definition.required where object[key] == nil {
            throw .invalid("Missing required element '\(key)'", at: "\(type.rawValue).\(key)")
        }
        if type == .communication, let payload = object["payload"]?.arrayValue { try checkPayload(payload) }
        if type == .consent { try ConsentGrant.validate(json) }
        if type == .binary { try AttachmentRules.checkBinary(json) }
        if type == .documentReference { try AttachmentRules.checkDocumentReference(json) }
        if type == .practitioner || type == .organization { try PrescriptionRules.validateIdentifiers(json, type: type) }
        if type == .medicationRequest { try PrescriptionRules.validate(json) }
        if type == .medicationRequest || type == .medicationDispense {
            let hasMedication = object["medicationCodeableConcept"] != nil || object["medicationReference"] != nil
            guard hasMedication else {
                throw .invalid("One of medicationCodeableConcept or medicationReference is required", at: "\(type.rawValue).medication[x]")
            }
        }
    }

    /// A message part is text or a reference to a DocumentReference (whose Binary was checked by content); inline
    /// attachments are refused, since they would bypass the attachment checks.
    static func checkPayload(_ payload: [JSON]) throws(FHIRError) {
        for (i, part) in payload.enumerated() {
            let path = "Communication.payload[\(i)]"
            guard case .object(let o) = part else { throw mismatch(path, "an object", part) }
            for key in o.keys where !["contentString", "contentReference", "contentAttachment", "extension"].contains(key) {
                throw .invalid("Unknown element '\(key)' in \(path)", at: "\(path).\(key)")
            }
            if o["contentAttachment"] != nil {
                throw .invalid(
                    "\(path).contentAttachment is not accepted: upload the file as a Binary, describe it with a DocumentReference and send contentReference",
                    at: "\(path).contentAttachment")
            }
            switch (o["contentString"], o["contentReference"]) {
            case (let text?, nil):
                try check(text, .string, path: "\(path).contentString")
            case (nil, let ref?):
                try check(ref, .reference([.documentReference]), path: "\(path).contentReference")
            default:
                throw .invalid("\(path) needs exactly one of contentString or contentReference", at: path)
            }
        }
    }

    static func check(_ value: JSON, _ rule: ElementRule, path: String) throws(FHIRError) {
        switch rule {
        case .string:
            guard case .string(let s) = value, !s.isEmpty else { throw mismatch(path, "a non-empty string", value) }
        case .boolean:
            guard case .bool = value else { throw mismatch(path, "a boolean", value) }
        case .code(let allowed):
            guard case .string(let s) = value else { throw mismatch(path, "a code (string)", value) }
            guard allowed.contains(s) else {
                throw .invalid("'\(clip(s))' is not a valid code for \(path); expected one of \(allowed.sorted().joined(separator: ", "))", at: path)
            }
        case .date:
            guard case .string(let s) = value else { throw mismatch(path, "a FHIR date (string)", value) }
            guard FHIRDate.isValidDate(s) else {
                throw .invalid("\(path) '\(clip(s))' is not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)", at: path)
            }
        case .dateTime:
            guard case .string(let s) = value else { throw mismatch(path, "a FHIR dateTime (string)", value) }
            guard FHIRDate.isValidDateTime(s) else {
                throw .invalid("\(path) '\(clip(s))' is not a FHIR dateTime (YYYY-MM-DD or YYYY-MM-DDThh:mm:ss+zz:zz)", at: path)
            }
        case .reference(let targets):
            guard case .object(let o) = value else { throw mismatch(path, "a Reference object", value) }
            for key in o.keys where !["reference", "display", "type", "identifier"].contains(key) {
                throw .invalid("Unknown element '\(key)' in Reference", at: "\(path).\(key)")
            }
            guard let raw = o["reference"] else {
                throw .invalid("\(path).reference is required (a literal reference Type/id)", at: "\(path).reference")
            }
            guard let s = raw.stringValue, let ref = Reference(s) else {
                throw .invalid("\(path).reference must be a relative reference 'Type/id'", at: "\(path).reference")
            }
            guard targets.contains(ref.type) else {
                let allowed = targets.map(\.rawValue).sorted().joined(separator: ", ")
                throw .invalid("\(path) may reference only \(allowed), not \(ref.type.rawValue)", at: "\(path).reference")
            }
        case .referenceOrIdentifier(let targets):
            guard case .object(let o) = value else { throw mismatch(path, "a Reference object", value) }
            if o["reference"] != nil { return try check(value, .reference(targets), path: path) }
            for key in o.keys where !["display", "type", "identifier"].contains(key) {
                throw .invalid("Unknown element '\(key)' in Reference", at: "\(path).\(key)")
            }
            guard let ident = o["identifier"] else {
                throw .invalid("\(path) needs a reference (Type/id) or an identifier (system and value)", at: path)
            }
            try check(ident, .identifier, path: "\(path).identifier")
            guard ident["system"]?.stringValue != nil, ident["value"]?.stringValue != nil else {
                throw .invalid("\(path).identifier needs a system and a value", at: "\(path).identifier")
            }
        case .object:
            guard case .object = value else { throw mismatch(path, "an object", value) }
        case .array(let element):
            guard case .array(let items) = value else { throw mismatch(path, "an array", value) }
            guard !items.isEmpty else { throw .invalid("\(path) must not be an empty array", at: path) }
            for (i, item) in items.enumerated() { try check(item, element, path: "\(path)[\(i)]") }
        case .identifier:
            guard case .object(let o) = value else { throw mismatch(path, "an Identifier object", value) }
            for key in o.keys where !["use", "type", "system", "value", "period", "assigner", "extension"].contains(key) {
                throw .invalid("Unknown element '\(key)' in Identifier", at: "\(path).\(key)")
            }
            for key in ["system", "value", "use"] where o[key] != nil {
                try check(o[key]!, .string, path: "\(path).\(key)")
            }
        case .humanName:
            guard case .object(let o) = value else { throw mismatch(path, "a HumanName object", value) }
            for key in o.keys where !["use", "text", "family", "given", "prefix", "suffix", "period", "extension"].contains(key) {
                throw .invalid("Unknown element '\(key)' in HumanName", at: "\(path).\(key)")
            }
            for key in ["use", "text", "family"] where o[key] != nil { try check(o[key]!, .string, path: "\(path).\(key)") }
            for key in ["given", "prefix", "suffix"] where o[key] != nil {
                try check(o[key]!, .array(.string), path: "\(path).\(key)")
            }
        case .contactPoint:
            guard case .object(let o) = value else { throw mismatch(path, "a ContactPoint object", value) }
            for key in o.keys where !["system", "value", "use", "rank", "period", "extension"].contains(key) {
                throw .invalid("Unknown element '\(key)' in ContactPoint", at: "\(path).\(key)")
            }
            if let system = o["system"] {
                try check(system, .code(["phone", "fax", "email", "pager", "url", "sms", "other"]), path: "\(path).system")
            }
            if let v = o["value"] { try check(v, .string, path: "\(path).value") }
        }
    }

    static func mismatch(_ path: String, _ expected: String, _ got: JSON) -> FHIRError {
        .invalid("\(path) must be \(expected), got \(got.kindName)", at: path)
    }

    static func describe(_ v: JSON) -> String {
        if let s = v.stringValue { return "'\(clip(s))'" }
        return v.kindName
    }

    /// Echoes at most 40 characters of a client's own input, so messages stay short.
    static func clip(_ s: String) -> String { s.count > 40 ? String(s.prefix(40)) + "…" : s }
}

/// FHIR date and dateTime syntax.
public enum FHIRDate {
    nonisolated(unsafe) static let date = /^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?$/
    nonisolated(unsafe) static let dateTime =
        /^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$/

    public static func isValidDate(_ s: String) -> Bool { s.wholeMatch(of: date) != nil }
    public static func isValidDateTime(_ s: String) -> Bool { s.wholeMatch(of: dateTime) != nil }

    /// A FHIR date or dateTime as an instant, for comparisons. A partial date (year, month, day) or a time without a
    /// zone is read as the *end* of the period it names when `end` is true (an authorization "until 2027-03-01"
    /// lasts through that day) and as its start otherwise; offsets are applied; fractions of any length are allowed.
    public static func instant(_ s: String, end: Bool) -> Date? {
        guard isValidDateTime(s) else { return nil }
        let chars = Array(s.utf8)
        func num(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= chars.count else { return nil }
            var n = 0
            for c in chars[from..<from + count] {
                guard c >= 48 && c <= 57 else { return nil }
                n = n * 10 + Int(c - 48)
            }
            return n
        }
        guard let year = num(0, 4) else { return nil }
        var c = DateComponents(calendar: Calendar(identifier: .gregorian), timeZone: TimeZone(identifier: "UTC"), year: year, month: 1, day: 1)
        var unit: Calendar.Component = .year
        if let m = num(5, 2) { c.month = m; unit = .month }
        if let d = num(8, 2) { c.day = d; unit = .day }
        var offset = 0
        if chars.count > 10 {
            c.hour = num(11, 2)
            c.minute = num(14, 2)
            c.second = min(num(17, 2) ?? 0, 59)
            unit = .second
            var i = 19
            var fraction = 0.0, scale = 0.1
            if i < chars.count && chars[i] == UInt8(ascii: ".") {
                i += 1
                while i < chars.count, chars[i] >= 48, chars[i] <= 57 {
                    fraction += Double(chars[i] - 48) * scale
                    scale /= 10
                    i += 1
                }
            }
            c.nanosecond = Int(fraction * 1e9)
            if i < chars.count, chars[i] == UInt8(ascii: "+") || chars[i] == UInt8(ascii: "-"), let h = num(i + 1, 2), let m = num(i + 4, 2) {
                offset = (chars[i] == UInt8(ascii: "+") ? 1 : -1) * (h * 3600 + m * 60)
            }
        }
        guard let start = c.date else { return nil }
        let instant = start.addingTimeInterval(TimeInterval(-offset))
        guard end, unit != .second else { return instant }
        return Calendar(identifier: .gregorian).date(byAdding: unit, value: 1, to: instant)
    }
}
