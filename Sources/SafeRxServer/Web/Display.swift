import Foundation
import SafeRxModel
import SafeRxPolicy
import SafeRxStoreCore

/// Turns FHIR resources the gate returned into the plain values the page templates show.
enum Display {
    static func medicationName(_ resource: JSON, medications: [String: JSON]) -> String {
        if let ref = resource["medicationReference"]?["reference"]?.stringValue, let m = medications[ref] {
            return m["code"]?["text"]?.stringValue ?? m["code"]?["coding"]?.arrayValue?.first?["display"]?.stringValue ?? ref
        }
        return resource["medicationCodeableConcept"]?["text"]?.stringValue
            ?? resource["medicationCodeableConcept"]?["coding"]?.arrayValue?.first?["display"]?.stringValue ?? "Medication"
    }

    static func medications(_ page: SearchPage) -> [String: JSON] {
        var out: [String: JSON] = [:]
        for r in page.included + page.matches where r.type == .medication {
            if let json = r.json { out["Medication/\(r.id)"] = json }
        }
        return out
    }

    static func rxNumber(_ rx: JSON) -> String {
        RxNumber.of(rx) ?? "–"
    }

    static func dosage(_ resource: JSON) -> String {
        resource["dosageInstruction"]?.arrayValue?.first?["text"]?.stringValue ?? ""
    }

    static func number(_ j: JSON?) -> String {
        switch j {
        case .int(let n)?: String(n)
        case .double(let d)?: String(format: "%g", d)
        default: "–"
        }
    }

    static func shortID(_ id: String) -> String { id.count <= 16 ? id : String(id.prefix(8)) }

    static func stateLabel(_ state: FillState) -> String {
        switch state {
        case .preparation: "Being prepared"
        case .inProgress: "Being filled"
        case .verified: "Checked by a pharmacist"
        case .completed: "Shipped"
        case .delivered: "Delivered"
        case .onHold: "On hold"
        case .cancelled: "Cancelled"
        case .declined: "Declined"
        }
    }

    static func patientID(_ resource: JSON) -> String {
        let ref = resource["subject"]?["reference"]?.stringValue ?? ""
        return ref.hasPrefix("Patient/") ? String(ref.dropFirst(8)) : ref
    }

    /// One order (fill) row: medication, state, shipment and its tracking events.
    static func order(_ r: StoredResource, medications: [String: JSON]) -> [String: Any] {
        let json = r.json ?? .null
        let state = FillState.of(json)
        var o: [String: Any] = [
            "id": r.id, "shortID": shortID(r.id), "state": state.rawValue, "stateLabel": stateLabel(state),
            "medication": medicationName(json, medications: medications), "patient": patientID(json), "updated": String(r.lastUpdated.prefix(16)).replacingOccurrences(of: "T", with: " "),
        ]
        if let carrier = Shipment.carrier(of: json) {
            o["carrier"] = carrier.uppercased()
            o["trackingNumber"] = Shipment.trackingNumber(of: json) ?? ""
            let shipment = json["extension"]?.arrayValue?.first { $0["url"]?.stringValue == Shipment.extensionURL }
            o["events"] = (shipment?["extension"]?.arrayValue ?? []).filter { $0["url"]?.stringValue == "event" }.map { e -> [String: Any] in
                let parts = e["extension"]?.arrayValue ?? []
                func part(_ name: String, _ key: String) -> String? { parts.first { $0["url"]?.stringValue == name }?[key]?.stringValue }
                var ev: [String: Any] = ["status": part("status", "valueCode") ?? "", "time": String((part("time", "valueDateTime") ?? "").prefix(16))]
                if let l = part("location", "valueString") { ev["location"] = l }
                return ev
            }
        }
        return o
    }

    /// A work-queue row: the fill, who it is for (name and birth date, so two patients of one name are told apart), the
    /// drug and when it last changed.
    static func queueEntry(_ e: QueueEntry, medications: [String: JSON]) -> [String: Any] {
        let medication = medications[e.medication].flatMap { m in m["code"]?["text"]?.stringValue ?? m["code"]?["coding"]?.arrayValue?.first?["display"]?.stringValue }
            ?? e.medication
        return [
            "id": e.dispenseID, "shortID": shortID(e.dispenseID), "state": e.state.rawValue, "stateLabel": stateLabel(e.state),
            "medication": medication.isEmpty ? "Medication" : medication, "patient": e.patientName.isEmpty ? e.patientID : e.patientName,
            "birthDate": e.birthDate, "updated": String(e.lastUpdated.prefix(16)).replacingOccurrences(of: "T", with: " "),
        ]
    }

    /// A refusal as a person reads it on a page: the API's machine-readable prefixes (`mfa_invalid: ...`) and rule
    /// notation are for API clients.
    static func forPeople(_ diagnostics: String) -> String {
        // The API's text names its field ('otp'); the page's field is "Code from your authenticator app".
        if diagnostics.hasPrefix("mfa_required") { return "Enter the 6-digit code from your authenticator app (or one of your recovery codes)." }
        if let colon = diagnostics.firstIndex(of: ":") {
            let head = diagnostics[..<colon]
            if head.contains("_"), head.allSatisfy({ $0.isLowercase || $0 == "_" }) {
                let rest = diagnostics[diagnostics.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                return rest.prefix(1).uppercased() + rest.dropFirst()
            }
        }
        return diagnostics
    }

    /// A moment as pages show it (`2026-12-02 16:05`, UTC), never a raw ISO timestamp.
    static func minute(_ date: Date) -> String {
        String(Instant.string(date).prefix(16)).replacingOccurrences(of: "T", with: " ")
    }

    static func humanName(_ patient: JSON) -> String {
        let n = patient["name"]?.arrayValue?.first
        let given = (n?["given"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: " ")
        return [given, n?["family"]?.stringValue ?? ""].filter { !$0.isEmpty }.joined(separator: " ")
    }

    static func address(_ patient: JSON) -> String {
        guard let a = patient["address"]?.arrayValue?.first else { return "" }
        let lines = (a["line"]?.arrayValue ?? []).compactMap(\.stringValue)
        return (lines + [a["city"]?.stringValue, a["state"]?.stringValue, a["postalCode"]?.stringValue].compactMap { $0 }).joined(separator: ", ")
    }

    static func contact(_ patient: JSON) -> String {
        (patient["telecom"]?.arrayValue ?? []).compactMap { t in t["value"]?.stringValue.map { "\(t["system"]?.stringValue ?? ""): \($0)" } }
            .joined(separator: " · ")
    }

    /// A purpose of use in words a patient understands ("TREAT" → "treatment"); unknown codes are shown as they are.
    static func purpose(_ code: String) -> String {
        switch PurposeOfUse(rawValue: code) {
        case .treatment: "your treatment"
        case .emergencyTreatment: "emergency treatment (break-glass)"
        case .payment: "payment"
        case .operations: "pharmacy operations"
        case .patientRequest: "your own request"
        case .familyRequest: "a caregiver you chose"
        case .marketing, .healthcareMarketing: "marketing you authorized"
        case .research: "research"
        case .publicHealth: "public health"
        case .labor: "employment"
        case .legal: "legal requirement"
        case .compliance: "privacy and compliance review"
        case .systemAdmin: "system administration"
        case nil: code
        }
    }

    /// What an access did, in words ("read MedicationRequest/rx-1" → "opened a prescription").
    static func access(action: String, resource: String) -> String {
        let type = resource.split(separator: "/").first.map(String.init) ?? resource
        let one: String, many: String
        switch ResourceType(rawValue: type) {
        case .patient?: (one, many) = ("your details", "patient records")
        case .medicationRequest?: (one, many) = ("a prescription", "prescriptions")
        case .medicationDispense?: (one, many) = ("an order", "orders")
        case .communication?: (one, many) = ("a message", "messages")
        case .documentReference?, .binary?: (one, many) = ("an attachment", "attachments")
        case .consent?: (one, many) = ("an authorization", "authorizations")
        case .auditEvent?: (one, many) = ("your access log", "your access log")
        case .medication?: (one, many) = ("medication information", "medication information")
        default: (one, many) = (type.isEmpty ? "your records" : type, type.isEmpty ? "your records" : type)
        }
        switch action {
        case "read", "vread": return "opened \(one)"
        case "history": return "looked at the history of \(one)"
        case "search": return "searched \(many)"
        case "create": return "added \(one)"
        case "update": return "changed \(one)"
        case "delete": return "removed \(one)"
        case "refill": return "requested a refill"
        case "transition": return "moved an order to its next step"
        case "break-glass": return "used emergency access"
        case "signup-check": return "checked sign-up details against your record"
        case "notify": return "sent you a notification"
        case "export": return "put your shipping address in a file for the shipping vendor"
        case "tracking": return "recorded a carrier's tracking update"
        case "import", "transaction": return "loaded records"
        case "assign": return "assigned a message thread to a pharmacy team member"
        case "caregiver-grant": return "gave a caregiver access"
        case "caregiver-revoke": return "ended a caregiver's access"
        case "caregiver-list": return "listed caregivers"
        case "erase": return "erased the records"
        case "list": return "saw your message thread in an inbox (not its content)"
        case "count": return "counted unread messages"
        case "file-scope": return "checked which patients were in a shipping file"
        case "disclosures", "access-log": return "looked at this access log"
        case let a where a.hasPrefix("incident"): return "reviewed a privacy incident that involves your records"
        case let a where a.hasPrefix("alert"): return "reviewed a security alert that names your records"
        // Never a raw code on a page: anything not named above is described generally.
        default: return resource.isEmpty || resource == "-" ? "worked with your records" : "worked with \(one)"
        }
    }
}
