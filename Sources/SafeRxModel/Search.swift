import Foundation

/// How a search parameter matches.
public enum SearchKind: Sendable, Equatable {
    /// Exact match on a code or identifier token (`system|value` or `value`).
    case token
    /// A reference to another resource (`Type/id` or bare id).
    case reference(ResourceType)
    /// FHIR string search: starts-with on any word, case and accent insensitive; `:exact` for a whole word.
    case string
    /// Dates with prefixes (eq, ge, gt, le, lt); `rangeable` false means eq only (blind-indexed dates).
    case date(rangeable: Bool)
    /// An e-mail address or phone number, matched exactly after normalization (``ResourceIndexer/normalizedContact(_:_:)``);
    /// `nil` system matches either.
    case contact(String?)
}

/// One search parameter SafeRx supports on one resource type.
public struct SearchParameter: Sendable {
    public let name: String
    public let kind: SearchKind
    /// Index values are blinded (HMAC) because they are PHI (names, identifiers, birth dates).
    public let sensitive: Bool
    /// Only pharmacy staff may search by it (searching patients by name or birth date).
    public let staffOnly: Bool
    /// The element of `type` the parameter searches: a caller whose purpose may not see that element may not search
    /// by it either (a match would reveal it). `nil` for a parameter SafeRx cannot map (refused when elements are
    /// restricted).
    public func element(in type: ResourceType) -> String? {
        Self.element(of: name, in: type)
    }

    /// The element behind a search or include parameter name.
    public static func element(of name: String, in type: ResourceType) -> String? {
        switch name {
        case "name", "family", "given": "name"
        case "birthdate": "birthDate"
        case "email", "phone", "telecom": "telecom"
        case "identifier": "identifier"
        case "gender": "gender"
        case "status": "status"
        case "intent": "intent"
        case "authoredon": "authoredOn"
        case "code": "code"
        case "patient": type == .consent ? "patient" : "subject"
        case "subject": "subject"
        case "medication": "medicationReference"
        case "prescription": "authorizingPrescription"
        case "sender": "sender"
        case "recipient": "recipient"
        case "part-of": "inResponseTo"
        case "sent": "sent"
        case "fill-state", "tracking": "extension"
        default: nil
        }
    }

    init(_ name: String, _ kind: SearchKind, sensitive: Bool = false, staffOnly: Bool = false) {
        self.name = name
        self.kind = kind
        self.sensitive = sensitive
        self.staffOnly = staffOnly
    }

    /// The parameters of `type` (beyond `_id` and `_lastUpdated`, which every type has).
    public static func all(for type: ResourceType) -> [String: SearchParameter] {
        let list: [SearchParameter]
        switch type {
        case .patient:
            list = [
                .init("identifier", .token, sensitive: true),
                .init("name", .string, sensitive: true, staffOnly: true),
                .init("family", .string, sensitive: true, staffOnly: true),
                .init("given", .string, sensitive: true, staffOnly: true),
                .init("birthdate", .date(rangeable: false), sensitive: true, staffOnly: true),
                .init("email", .contact("email"), sensitive: true, staffOnly: true),
                .init("phone", .contact("phone"), sensitive: true, staffOnly: true),
                .init("telecom", .contact(nil), sensitive: true, staffOnly: true),
                .init("gender", .token, staffOnly: true),
            ]
        case .practitioner:
            list = [.init("identifier", .token, sensitive: true), .init("name", .string, sensitive: true),
                    .init("family", .string, sensitive: true)]
        case .organization:
            list = [.init("identifier", .token), .init("name", .string, sensitive: true)]
        case .medication:
            list = [.init("identifier", .token), .init("code", .token), .init("status", .token)]
        case .medicationRequest:
            list = [
                .init("patient", .reference(.patient)), .init("subject", .reference(.patient)),
                .init("status", .token), .init("intent", .token), .init("identifier", .token, sensitive: true),
                .init("authoredon", .date(rangeable: true)), .init("medication", .reference(.medication)),
            ]
        case .medicationDispense:
            list = [
                .init("patient", .reference(.patient)), .init("subject", .reference(.patient)),
                .init("status", .token), .init("identifier", .token, sensitive: true),
                .init("prescription", .reference(.medicationRequest)), .init("medication", .reference(.medication)),
                .init("fill-state", .token), .init("tracking", .token, sensitive: true, staffOnly: true),
            ]
        case .communication:
            list = [
                .init("patient", .reference(.patient)), .init("subject", .reference(.patient)),
                .init("status", .token), .init("identifier", .token, sensitive: true),
                .init("part-of", .reference(.communication)),
                .init("sender", .reference(.patient)), .init("recipient", .reference(.patient)),
                .init("sent", .date(rangeable: true)),
            ]
        case .consent:
            list = [.init("patient", .reference(.patient)), .init("status", .token)]
        case .documentReference:
            list = [.init("patient", .reference(.patient)), .init("subject", .reference(.patient)), .init("status", .token)]
        case .binary:
            list = []
        case .auditEvent:
            list = [.init("patient", .reference(.patient)), .init("date", .date(rangeable: true)),
                    .init("action", .token), .init("outcome", .token), .init("agent", .token)]
        }
        return Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0) })
    }
}

/// The `_include` and `_revinclude` forms SafeRx supports.
public struct IncludePath: Sendable, Hashable {
    public let source: ResourceType
    public let parameter: String
    public let target: ResourceType

    public static let includes: [String: IncludePath] = [
        "MedicationRequest:medication": .init(source: .medicationRequest, parameter: "medication", target: .medication),
        "MedicationDispense:prescription": .init(
            source: .medicationDispense, parameter: "prescription", target: .medicationRequest),
        "Communication:sender": .init(source: .communication, parameter: "sender", target: .patient),
        "MedicationRequest:patient": .init(source: .medicationRequest, parameter: "patient", target: .patient),
        "MedicationDispense:patient": .init(source: .medicationDispense, parameter: "patient", target: .patient),
    ]
    public static let revincludes: [String: IncludePath] = [
        "MedicationDispense:prescription": .init(
            source: .medicationDispense, parameter: "prescription", target: .medicationRequest),
    ]
}

/// One value a resource is found by. Sensitive values are blinded before they reach the database.
public struct IndexTerm: Sendable, Hashable {
    public let parameter: String
    public let value: String
    public let sensitive: Bool

    public init(_ parameter: String, _ value: String, sensitive: Bool) {
        self.parameter = parameter
        self.value = value
        self.sensitive = sensitive
    }
}

/// What a resource is indexed under and which patients' compartments it belongs to.
public enum ResourceIndexer {
    /// Shortest string-search prefix SafeRx indexes and accepts: shorter prefixes would group so many rows under
    /// one blind token that the token itself says too much (how many names start with "s").
    public static let minimumPrefix = 3
    static let maximumPrefix = 24

    /// Patient ids whose compartment holds this resource (FHIR R4 CompartmentDefinition/patient).
    public static func compartment(of type: ResourceType, id: String, _ r: JSON) -> Set<String> {
        var out = Set<String>()
        func add(_ v: JSON?) {
            guard let v else { return }
            if let a = v.arrayValue {
                a.forEach { add($0) }
                return
            }
            if let s = v["reference"]?.stringValue, let ref = Reference(s), ref.type == .patient { out.insert(ref.id) }
        }
        switch type {
        case .patient: out.insert(id)
        case .medicationRequest: add(r["subject"])
        case .medicationDispense:
            add(r["subject"])
            add(r["receiver"])
        case .communication:
            add(r["subject"])
            add(r["sender"])
            add(r["recipient"])
        case .consent: add(r["patient"])
        case .documentReference: add(r["subject"])
        case .binary: add(r["securityContext"])
        case .practitioner, .organization, .medication, .auditEvent: break
        }
        return out
    }

    /// Every reference in the resource (to check that the writer may see each target).
    public static func references(in value: JSON) -> [Reference] {
        var out: [Reference] = []
        func walk(_ v: JSON) {
            switch v {
            case .object(let o):
                if let s = o["reference"]?.stringValue, let ref = Reference(s) { out.append(ref) }
                // An attachment's content held here (DocumentReference.content.attachment.url = "Binary/{id}").
                if let s = o["url"]?.stringValue, let ref = Reference(s), ref.type == .binary { out.append(ref) }
                for (k, child) in o where k != "reference" { walk(child) }
            case .array(let a): a.forEach(walk)
            default: break
            }
        }
        walk(value)
        return out
    }

    /// The search index terms of a resource.
    public static func terms(of type: ResourceType, _ r: JSON) -> [IndexTerm] {
        var out: [IndexTerm] = []
        func ref(_ param: String, _ v: JSON?) {
            guard let v else { return }
            if let a = v.arrayValue { a.forEach { ref(param, $0) }; return }
            if let s = v["reference"]?.stringValue, let r = Reference(s) { out.append(IndexTerm(param, r.description, sensitive: false)) }
        }
        func token(_ param: String, _ v: JSON?, sensitive: Bool) {
            if let s = v?.stringValue { out.append(IndexTerm(param, s, sensitive: sensitive)) }
        }
        func identifiers(sensitive: Bool) {
            for ident in r["identifier"]?.arrayValue ?? [] {
                guard let value = ident["value"]?.stringValue else { continue }
                out.append(IndexTerm("identifier", value, sensitive: sensitive))
                if let system = ident["system"]?.stringValue {
                    out.append(IndexTerm("identifier", "\(system)|\(value)", sensitive: sensitive))
                }
            }
        }
        func names(_ names: JSON?) {
            for name in names?.arrayValue ?? [] {
                var all: [String] = []
                if let f = name["family"]?.stringValue {
                    let family = Self.words(of: f)
                    for w in family { out += prefixes(w).map { IndexTerm("family", $0, sensitive: true) } }
                    for w in family { out.append(IndexTerm("family:exact", w, sensitive: true)) }
                    all += family
                }
                var given: [String] = []
                for g in name["given"]?.arrayValue ?? [] { given += Self.words(of: g.stringValue ?? "") }
                for w in Set(given) {
                    out += prefixes(w).map { IndexTerm("given", $0, sensitive: true) }
                    out.append(IndexTerm("given:exact", w, sensitive: true))
                }
                all += given
                if let t = name["text"]?.stringValue { all += Self.words(of: t) }
                for w in Set(all) {
                    out += prefixes(w).map { IndexTerm("name", $0, sensitive: true) }
                    out.append(IndexTerm("name:exact", w, sensitive: true))
                }
            }
        }
        switch type {
        case .patient:
            identifiers(sensitive: true)
            names(r["name"])
            if let b = r["birthDate"]?.stringValue {
                for p in datePrefixes(b) { out.append(IndexTerm("birthdate", p, sensitive: true)) }
            }
            token("gender", r["gender"], sensitive: false)
            for t in r["telecom"]?.arrayValue ?? [] {
                guard let system = t["system"]?.stringValue, system == "email" || system == "phone",
                    let v = t["value"]?.stringValue, let n = normalizedContact(system, v)
                else { continue }
                out.append(IndexTerm(system, n, sensitive: true))
                out.append(IndexTerm("telecom", n, sensitive: true))
            }
        case .practitioner:
            identifiers(sensitive: true)
            names(r["name"])
        case .organization:
            identifiers(sensitive: false)
            if let n = r["name"]?.stringValue {
                for w in Set(Self.words(of: n)) {
                    out += prefixes(w).map { IndexTerm("name", $0, sensitive: true) }
                    out.append(IndexTerm("name:exact", w, sensitive: true))
                }
            }
        case .medication:
            identifiers(sensitive: false)
            token("status", r["status"], sensitive: false)
            for c in r["code"]?["coding"]?.arrayValue ?? [] {
                if let code = c["code"]?.stringValue {
                    out.append(IndexTerm("code", code, sensitive: false))
                    if let s = c["system"]?.stringValue { out.append(IndexTerm("code", "\(s)|\(code)", sensitive: false)) }
                }
            }
        case .medicationRequest:
            identifiers(sensitive: true)
            token("status", r["status"], sensitive: false)
            token("intent", r["intent"], sensitive: false)
            ref("patient", r["subject"])
            ref("subject", r["subject"])
            ref("medication", r["medicationReference"])
            if let a = r["authoredOn"]?.stringValue { out.append(IndexTerm("authoredon", a, sensitive: false)) }
        case .medicationDispense:
            identifiers(sensitive: true)
            token("status", r["status"], sensitive: false)
            ref("patient", r["subject"])
            ref("subject", r["subject"])
            ref("prescription", r["authorizingPrescription"])
            ref("medication", r["medicationReference"])
            out.append(IndexTerm("fill-state", FillState.of(r).rawValue, sensitive: false))
            if let number = Shipment.trackingNumber(of: r) { out.append(IndexTerm("tracking", number, sensitive: true)) }
        case .communication:
            identifiers(sensitive: true)
            token("status", r["status"], sensitive: false)
            ref("patient", r["subject"])
            ref("subject", r["subject"])
            ref("part-of", r["inResponseTo"])
            ref("sender", r["sender"])
            ref("recipient", r["recipient"])
            if let sent = r["sent"]?.stringValue { out.append(IndexTerm("sent", sent, sensitive: false)) }
        case .consent:
            token("status", r["status"], sensitive: false)
            ref("patient", r["patient"])
        case .documentReference:
            token("status", r["status"], sensitive: false)
            ref("patient", r["subject"])
            ref("subject", r["subject"])
        case .binary:
            break
        case .auditEvent:
            break
        }
        return out
    }

    /// Lower-cased, accent-folded words of a name.
    public static func words(of s: String) -> [String] {
        let folded = s.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil).lowercased()
        return folded.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init)
    }

    /// Normalises one search value the same way the index does; `nil` if nothing searchable remains.
    public static func normalizedWord(_ s: String) -> String? {
        let w = words(of: s)
        return w.count == 1 ? w[0] : (w.isEmpty ? nil : w.joined())
    }

    /// E-mail addresses lower-cased and trimmed; phone numbers as their digits, without a leading US country code
    /// ("(555) 010-2000", "555.010.2000" and "+1 555 010 2000" all give "5550102000"). `nil` if nothing is left.
    public static func normalizedContact(_ system: String, _ value: String) -> String? {
        switch system {
        case "email":
            let v = value.trimmingCharacters(in: .whitespaces).lowercased()
            return v.contains("@") ? v : nil
        default:
            var digits = value.filter(\.isASCII).filter(\.isNumber)
            if digits.count == 11 && digits.hasPrefix("1") { digits.removeFirst() }
            return digits.count >= 5 ? digits : nil
        }
    }

    static func prefixes(_ w: String) -> [String] {
        let chars = Array(w)
        guard chars.count >= minimumPrefix else { return [w] }
        return (minimumPrefix...min(chars.count, maximumPrefix)).map { String(chars[0..<$0]) }
    }

    /// "1980-05-17" → ["1980", "1980-05", "1980-05-17"]: blind tokens for eq search at each precision.
    public static func datePrefixes(_ d: String) -> [String] {
        var out: [String] = []
        if d.count >= 4 { out.append(String(d.prefix(4))) }
        if d.count >= 7 { out.append(String(d.prefix(7))) }
        if d.count >= 10 { out.append(String(d.prefix(10))) }
        return out
    }
}
