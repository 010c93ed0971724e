/// What a prescription (MedicationRequest) must satisfy to be accepted: prescriber identifiers with valid check
/// digits, a plausible quantity, days' supply and refill count, the federal refill limits for controlled substances,
/// and complete transfer-in details.
///
/// ``validate(_:)`` checks what the resource itself says; ``check(_:prescriber:medication:)`` adds what the
/// referenced Practitioner and Medication say (the store calls it with those resources).
public enum PrescriptionRules {
    /// The extension that carries the prescriber's DEA number when the prescriber is not a Practitioner here.
    public static let prescriberDEAURL = "https://saferx.dev/fhir/StructureDefinition/prescriber-dea"

    /// Refill counts above this are refused (a year of monthly fills).
    public static let maxRefills = 11

    /// Checks the prescription's own elements.
    public static func validate(_ rx: JSON) throws(FHIRError) {
        if let ident = rx["requester"]?["identifier"], ident["system"]?.stringValue == NPI.system {
            let v = ident["value"]?.stringValue ?? ""
            guard NPI.isValid(v) else {
                throw .invalid("The prescriber NPI is not valid: an NPI is 10 digits starting with 1 or 2, the last a check digit (Luhn with prefix 80840)", at: "MedicationRequest.requester.identifier")
            }
        }
        for ext in rx["extension"]?.arrayValue ?? [] {
            switch ext["url"]?.stringValue {
            case prescriberDEAURL:
                guard let dea = ext["valueString"]?.stringValue else {
                    throw .invalid("The prescriber-dea extension needs a valueString", at: "MedicationRequest.extension")
                }
                if let problem = DEANumber.problem(dea) {
                    throw .invalid("The prescriber DEA number is not valid: \(problem)", at: "MedicationRequest.extension")
                }
            case TransferIn.url:
                guard TransferIn.of(rx) != nil else {
                    throw .invalid(
                        "A transfer-from extension needs pharmacy, phone and rxNumber (each a valueString)", at: "MedicationRequest.extension")
                }
            default:
                break
            }
        }
        _ = try DEASchedule.of(rx)
        guard let dr = rx["dispenseRequest"] else { return }
        if let n = dr["numberOfRepeatsAllowed"] {
            guard let refills = n.intValue, refills >= 0, refills <= Int64(maxRefills) else {
                throw .invalid("numberOfRepeatsAllowed must be a whole number from 0 to \(maxRefills)", at: "MedicationRequest.dispenseRequest.numberOfRepeatsAllowed")
            }
        }
        if let q = dr["quantity"] {
            guard let v = FHIRQuantity.number(q["value"]), v > 0, v <= 10_000 else {
                throw .invalid("dispenseRequest.quantity.value must be a number above 0 (at most 10000)", at: "MedicationRequest.dispenseRequest.quantity")
            }
        }
        if let d = dr["expectedSupplyDuration"] {
            guard let days = FHIRQuantity.days(d), days >= 1, days <= 365 else {
                throw .invalid(
                    "dispenseRequest.expectedSupplyDuration must be 1 to 365 days (value with code 'd', 'wk' or 'mo')",
                    at: "MedicationRequest.dispenseRequest.expectedSupplyDuration")
            }
        }
        if let end = dr["validityPeriod"]?["end"] {
            guard let s = end.stringValue, FHIRDate.isValidDateTime(s) else {
                throw .invalid("dispenseRequest.validityPeriod.end must be a FHIR dateTime", at: "MedicationRequest.dispenseRequest.validityPeriod.end")
            }
        }
    }

    /// Checks a new prescription against its prescriber and medication (both may be `nil` when the prescription names
    /// them only by identifier or by code): a prescriber with a valid NPI is required, and a controlled substance
    /// needs the prescriber's valid DEA number and stays within the schedule's refill limit.
    public static func check(_ rx: JSON, prescriber: JSON?, medication: JSON?) throws(FHIRError) {
        var npi: String? = nil
        var dea: String? = nil
        var lastName: String? = nil
        if let ident = rx["requester"]?["identifier"], ident["system"]?.stringValue == NPI.system { npi = ident["value"]?.stringValue }
        if let p = prescriber {
            for ident in p["identifier"]?.arrayValue ?? [] {
                switch ident["system"]?.stringValue {
                case NPI.system: npi = npi ?? ident["value"]?.stringValue
                case DEANumber.system: dea = ident["value"]?.stringValue
                default: break
                }
            }
            lastName = p["name"]?.arrayValue?.first?["family"]?.stringValue
        }
        if let ext = rx["extension"]?.arrayValue?.first(where: { $0["url"]?.stringValue == prescriberDEAURL }) {
            dea = ext["valueString"]?.stringValue
        }
        guard let npi else {
            throw .invalid(
                "A prescription needs its prescriber's NPI: requester.identifier with system \(NPI.system), or a requester Practitioner that has one",
                at: "MedicationRequest.requester")
        }
        guard NPI.isValid(npi) else {
            throw .invalid("The prescriber NPI is not valid: an NPI is 10 digits starting with 1 or 2, the last a check digit (Luhn with prefix 80840)", at: "MedicationRequest.requester")
        }
        let schedule = try DEASchedule.of(rx) ?? medication.flatMap { try? DEASchedule.of($0) }
        guard let schedule else { return }
        guard let dea else {
            throw .invalid(
                "\(schedule.rawValue) controlled substance: the prescriber's DEA number is required (Practitioner identifier \(DEANumber.system) or the prescriber-dea extension)",
                at: "MedicationRequest.requester")
        }
        if let problem = DEANumber.problem(dea, lastName: lastName) {
            throw .invalid("The prescriber DEA number is not valid: \(problem)", at: "MedicationRequest.requester")
        }
        let refills = RefillRules.refillsAuthorized(rx)
        guard refills <= schedule.maxRefills else {
            throw .invalid(
                "\(schedule.rawValue) controlled substances allow at most \(schedule.maxRefills) refill\(schedule.maxRefills == 1 ? "" : "s"), got \(refills)",
                at: "MedicationRequest.dispenseRequest.numberOfRepeatsAllowed")
        }
    }

    /// Checks identifiers on a Practitioner or Organization: NPIs and DEA numbers must have valid check digits.
    public static func validateIdentifiers(_ r: JSON, type: ResourceType) throws(FHIRError) {
        for (i, ident) in (r["identifier"]?.arrayValue ?? []).enumerated() {
            let value = ident["value"]?.stringValue ?? ""
            switch ident["system"]?.stringValue {
            case NPI.system where !NPI.isValid(value):
                throw .invalid("identifier[\(i)] is not a valid NPI (10 digits starting with 1 or 2, the last a check digit)", at: "\(type.rawValue).identifier[\(i)]")
            case DEANumber.system:
                if let problem = DEANumber.problem(value, lastName: r["name"]?.arrayValue?.first?["family"]?.stringValue) {
                    throw .invalid("identifier[\(i)] is not a valid DEA number: \(problem)", at: "\(type.rawValue).identifier[\(i)]")
                }
            default:
                break
            }
        }
    }
}
