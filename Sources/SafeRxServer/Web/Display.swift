import Foundation
import SafeRxModel
import SafeRxStore

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
        rx["identifier"]?.arrayValue?.first(where: { $0["system"]?.stringValue == "urn:saferx:rx-number" })?["value"]?.stringValue ?? "–"
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
            "medication": medicationName(json, medications: medications), "patient": patientID(json), "updated": String(r.lastUpdated.prefix(16)),
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
}
