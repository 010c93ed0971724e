/// The pharmacy's prescription number: printed on the label, used by patients to sign up and by staff to look a
/// prescription up. Assigned by SafeRx to every prescription that arrives without one; never changed afterwards.
public enum RxNumber {
    /// The identifier system of Rx numbers.
    public static let system = "urn:saferx:rx-number"
    /// The first number SafeRx assigns (the demo pharmacy seeds numbers below it).
    public static let firstAssigned: Int64 = 5_000_001

    /// The Rx number of a MedicationRequest, if it has one.
    public static func of(_ prescription: JSON) -> String? {
        prescription["identifier"]?.arrayValue?.first { $0["system"]?.stringValue == system }?["value"]?.stringValue
    }

    /// The identifier element for a number.
    public static func identifier(_ number: String) -> JSON {
        .object(["use": "official", "system": .string(system), "value": .string(number)])
    }
}

/// The pharmacy's medical record number of a patient (`urn:saferx:mrn`), assigned by the server.
public enum MRN {
    public static let system = "urn:saferx:mrn"
    /// The first number SafeRx assigns (the demo pharmacy seeds 6-digit numbers below it).
    public static let firstAssigned: Int64 = 1_000_001

    /// The identifier element for a number.
    public static func identifier(_ number: String) -> JSON {
        .object(["use": "usual", "system": .string(system), "value": .string(number)])
    }
}
