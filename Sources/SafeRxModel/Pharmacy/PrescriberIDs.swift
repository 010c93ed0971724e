/// National Provider Identifiers (NPI): ten digits, the last a Luhn check digit computed over the nine before it
/// with the card-issuer prefix `80840` (45 CFR 162.406; CMS "NPI check digit" guidance).
public enum NPI {
    /// The FHIR identifier system of NPIs.
    public static let system = "http://hl7.org/fhir/sid/us-npi"

    /// Whether `value` is ten digits whose check digit is right.
    public static func isValid(_ value: String) -> Bool {
        let digits = value.utf8.map { Int($0) - 48 }
        guard digits.count == 10, digits.allSatisfy({ (0...9).contains($0) }), digits[0] == 1 || digits[0] == 2 else { return false }
        return checkDigit(Array(digits.prefix(9))) == digits[9]
    }

    /// The check digit for the first nine digits of an NPI.
    public static func checkDigit(_ nine: [Int]) -> Int {
        // Luhn over 80840 + nine digits; the constant 24 stands for the prefix's contribution.
        var sum = 24
        for (i, d) in nine.reversed().enumerated() {
            if i % 2 == 0 {
                let doubled = d * 2
                sum += doubled > 9 ? doubled - 9 : doubled
            } else {
                sum += d
            }
        }
        return (10 - sum % 10) % 10
    }

    /// Completes nine digits into a valid NPI (for demo and test data).
    public static func completing(_ nine: String) -> String {
        nine + String(checkDigit(nine.utf8.map { Int($0) - 48 }))
    }
}

/// DEA registration numbers: two letters and seven digits. The first letter is the registrant type, the second the
/// first letter of the registrant's last name (or `9` for some business registrants); the seventh digit is the last
/// digit of (d1 + d3 + d5) + 2 × (d2 + d4 + d6).
public enum DEANumber {
    /// The FHIR identifier system SafeRx reads DEA numbers from.
    public static let system = "http://hl7.org/fhir/sid/us-dea"
    /// Registrant types that may prescribe or dispense (A/B/F/G practitioners, M mid-level practitioners, ...).
    static let registrantTypes: Set<Character> = ["A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "P", "R", "S", "T", "U", "X"]

    /// Why a DEA number is not valid, or `nil` if it is. `lastName`, when known, must start with the second letter.
    public static func problem(_ value: String, lastName: String? = nil) -> String? {
        let chars = Array(value.uppercased())
        guard chars.count == 9 else { return "a DEA number is 2 letters and 7 digits" }
        guard registrantTypes.contains(chars[0]) else { return "'\(chars[0])' is not a DEA registrant type" }
        guard chars[1].isASCII, chars[1].isLetter || chars[1] == "9" else { return "the second character must be a letter or 9" }
        let digits = chars[2...].compactMap { $0.isASCII ? $0.wholeNumberValue : nil }
        guard digits.count == 7 else { return "a DEA number is 2 letters and 7 digits" }
        let sum = digits[0] + digits[2] + digits[4] + 2 * (digits[1] + digits[3] + digits[5])
        guard sum % 10 == digits[6] else { return "the check digit does not match" }
        if let lastName, let initial = lastName.uppercased().first, chars[1] != "9", initial.isLetter, initial != chars[1] {
            return "the second letter must be the prescriber's last-name initial"
        }
        return nil
    }

    /// Completes two letters and six digits into a valid DEA number (for demo and test data).
    public static func completing(_ eight: String) -> String {
        let d = eight.dropFirst(2).compactMap(\.wholeNumberValue)
        let sum = d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])
        return eight + String(sum % 10)
    }
}

/// DEA controlled-substance schedules, as carried by SafeRx's `dea-schedule` extension on Medication and
/// MedicationRequest.
public enum DEASchedule: String, Sendable, CaseIterable {
    case cii = "CII", ciii = "CIII", civ = "CIV", cv = "CV"

    /// The extension URL.
    public static let url = "https://saferx.dev/fhir/StructureDefinition/dea-schedule"

    /// Refills the federal rules allow (21 CFR 1306.12, 1306.22): none for CII, five for CIII–CV.
    public var maxRefills: Int { self == .cii ? 0 : 5 }

    /// The schedule named by a resource's `dea-schedule` extension, if any; a malformed one is an error.
    public static func of(_ resource: JSON) throws(FHIRError) -> DEASchedule? {
        guard let ext = resource["extension"]?.arrayValue?.first(where: { $0["url"]?.stringValue == url }) else { return nil }
        guard let code = ext["valueCode"]?.stringValue, let s = DEASchedule(rawValue: code) else {
            throw .invalid("The dea-schedule extension needs valueCode CII, CIII, CIV or CV", at: "extension")
        }
        return s
    }
}
