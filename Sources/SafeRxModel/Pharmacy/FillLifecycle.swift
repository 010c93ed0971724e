/// The life of one fill (a MedicationDispense), as a state machine.
///
/// ```
/// preparation ──▶ in-progress ──▶ verified ──▶ completed ──▶ delivered
///      │   (technician fills)  (pharmacist, not   (shipped)
///      │                        the filler)
///      └─ on-hold / cancelled / declined (reason code) from preparation, in-progress, verified, on-hold
///         on-hold ──▶ preparation (resumed: filled and verified again)
/// ```
///
/// FHIR R4 has no "verified" or "delivered" dispense status, so the fill state travels in the `fill-state`
/// extension and `status` carries the nearest FHIR code (``FillState/fhirStatus``).
public enum FillState: String, Sendable, CaseIterable, Codable {
    case preparation
    case inProgress = "in-progress"
    case verified
    case completed
    case delivered
    case onHold = "on-hold"
    case cancelled
    case declined

    /// The extension that carries the fill state on a MedicationDispense.
    public static let extensionURL = "https://saferx.dev/fhir/StructureDefinition/fill-state"

    /// The FHIR MedicationDispense status for this state.
    public var fhirStatus: String {
        switch self {
        case .preparation: "preparation"
        case .inProgress, .verified: "in-progress"
        case .completed, .delivered: "completed"
        case .onHold: "on-hold"
        case .cancelled: "cancelled"
        case .declined: "declined"
        }
    }

    /// No transition leaves a final state.
    public var isFinal: Bool { self == .delivered || self == .cancelled || self == .declined }

    /// A fill that is still being worked on (blocks another refill of the same prescription).
    public var isOpen: Bool { [.preparation, .inProgress, .verified, .onHold].contains(self) }

    /// A fill that counts against the prescription's refills.
    public var countsAsFill: Bool { self != .cancelled && self != .declined }

    /// The states this one may move to.
    public var next: [FillState] {
        switch self {
        case .preparation: [.inProgress, .onHold, .cancelled, .declined]
        case .inProgress: [.verified, .onHold, .cancelled, .declined]
        case .verified: [.completed, .onHold, .cancelled, .declined]
        case .onHold: [.preparation, .cancelled, .declined]
        case .completed: [.delivered]
        case .delivered, .cancelled, .declined: []
        }
    }

    /// Moving to this state needs a reason code (``FillReason``).
    public var needsReason: Bool { self == .onHold || self == .cancelled || self == .declined }

    /// The fill state of a stored MedicationDispense: its extension, else derived from `status` (imported data).
    public static func of(_ dispense: JSON) -> FillState {
        if let code = dispense["extension"]?.arrayValue?.first(where: { $0["url"]?.stringValue == extensionURL })?["valueCode"]?.stringValue,
            let s = FillState(rawValue: code)
        {
            return s
        }
        switch dispense["status"]?.stringValue {
        case "in-progress": return .inProgress
        case "completed": return .completed
        case "on-hold": return .onHold
        case "cancelled", "stopped", "entered-in-error": return .cancelled
        case "declined": return .declined
        default: return .preparation
        }
    }
}

/// Why a fill was held, cancelled or declined: the FHIR R4 MedicationDispense status reason codes.
public enum FillReason {
    public static let system = "http://terminology.hl7.org/CodeSystem/medicationdispense-status-reason"
    public static let codes: [String: String] = [
        "frr01": "Order Stopped", "frr02": "Stale-dated Order", "frr03": "Incomplete data", "frr04": "Product unavailable",
        "frr05": "Ethical/religious", "frr06": "Unable to provide care", "altchoice": "Try another treatment first",
        "clarif": "Prescription/Request requires clarification", "drughigh": "Drug level too high",
        "hospadm": "Admission to hospital", "labint": "Lab interference issues", "non-avail": "Patient not available",
        "preg": "Patient is pregnant or breastfeeding", "saig": "Allergy", "sddi": "Drug interacts with another drug",
        "sdupther": "Duplicate therapy", "sintol": "Suspected intolerance", "surg": "Patient scheduled for surgery",
        "washout": "Washout", "outofstock": "Drug not available - out of stock", "offmarket": "Drug not available - off market",
    ]
}

/// A carrier shipment of a completed fill.
public enum Shipment {
    /// The extension on MedicationDispense that carries the shipment (carrier, tracking number, ship-to, events).
    public static let extensionURL = "https://saferx.dev/fhir/StructureDefinition/shipment"
    /// Carriers SafeRx can ship with and import tracking from.
    public static let carriers: Set<String> = ["usps", "ups", "fedex", "dhl"]
    /// Carrier tracking statuses SafeRx records (`delivered` also moves the fill to ``FillState/delivered``).
    public static let statuses: Set<String> = [
        "label-created", "in-transit", "out-for-delivery", "delivered", "exception", "returned",
    ]

    /// The tracking number of a dispense's shipment, upper-cased, if it has been shipped.
    public static func trackingNumber(of dispense: JSON) -> String? {
        part("trackingNumber", of: dispense)?["valueString"]?.stringValue?.uppercased()
    }

    /// The carrier of a dispense's shipment.
    public static func carrier(of dispense: JSON) -> String? { part("carrier", of: dispense)?["valueCode"]?.stringValue }

    static func part(_ name: String, of dispense: JSON) -> JSON? {
        dispense["extension"]?.arrayValue?.first { $0["url"]?.stringValue == extensionURL }?["extension"]?.arrayValue?
            .first { $0["url"]?.stringValue == name }
    }

    /// A tracking number as carriers print it ("9400 1000 0000 0000 0000 00", "1Z-999-AA1") in the form SafeRx
    /// stores and compares: spaces and dashes removed, upper case.
    public static func normalizedTrackingNumber(_ s: String) -> String {
        String(s.filter { $0 != " " && $0 != "-" && $0 != "\u{00A0}" }).uppercased()
    }

    /// Whether a tracking number is plausible: 8 to 40 letters and digits.
    public static func isValidTrackingNumber(_ s: String) -> Bool {
        (8...40).contains(s.count) && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }
    }
}
