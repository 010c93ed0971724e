import Foundation

/// Whether a prescription may be refilled now: status, expiry, refills left, an open fill, and too-soon.
public struct RefillRules: Sendable {
    /// The share of the last fill's days' supply that must have elapsed before the next fill (0.75 = 75 %).
    public var tooSoonFraction: Double
    /// How long a prescription without `dispenseRequest.validityPeriod.end` stays fillable after it was written
    /// (one year, the common state limit for non-controlled drugs; six months for CIII–CV, 21 CFR 1306.22).
    public var defaultValidity: TimeInterval

    public init(tooSoonFraction: Double = 0.75, defaultValidity: TimeInterval = 365 * 86400) {
        self.tooSoonFraction = tooSoonFraction
        self.defaultValidity = defaultValidity
    }

    /// An earlier fill of the prescription, as the rules see it.
    public struct Fill: Sendable {
        public var state: FillState
        /// When it was handed over (shipped) or, if not yet, prepared/created.
        public var date: Date
        public var daysSupply: Double?

        public init(state: FillState, date: Date, daysSupply: Double?) {
            self.state = state
            self.date = date
            self.daysSupply = daysSupply
        }
    }

    /// The refusal reasons, as codes (``FHIRError/reason``).
    public enum Refusal: String, Sendable {
        case notActive = "prescription-not-active"
        case transferPending = "transfer-pending"
        case expired = "prescription-expired"
        case noRefillsLeft = "no-refills-left"
        case fillInProgress = "fill-in-progress"
        case tooSoon = "refill-too-soon"
        case incomplete = "prescription-incomplete"
    }

    /// The decision for `prescription` given its earlier `fills`: `nil` if a refill may be made now, else the
    /// refusal as a 422 error with its reason code and a message for the patient.
    public func check(prescription rx: JSON, fills: [Fill], now: Date = Date()) -> FHIRError? {
        let status = rx["status"]?.stringValue ?? "unknown"
        if status == "draft", TransferIn.of(rx) != nil {
            return refuse(.transferPending, "This prescription is being transferred from another pharmacy; a pharmacist must accept it before it can be filled")
        }
        guard status == "active" else {
            return refuse(.notActive, "This prescription is \(status), not active; ask your prescriber for a new prescription")
        }
        // Nothing is dispensed from an incomplete prescription (an import may carry one): how much, and who wrote it.
        let quantity: Double
        switch rx["dispenseRequest"]?["quantity"]?["value"] {
        case .int(let n)?: quantity = Double(n)
        case .double(let d)?: quantity = d
        default: quantity = 0
        }
        guard quantity > 0 || Self.daysSupply(rx) != nil else {
            return refuse(.incomplete, "This prescription has no quantity or days' supply to dispense; the pharmacy completes it with the prescriber before it can be filled")
        }
        let prescriber = rx["requester"]?["reference"]?.stringValue?.hasPrefix("Practitioner/") == true
            || (rx["requester"]?["identifier"]?["system"]?.stringValue == NPI.system && rx["requester"]?["identifier"]?["value"]?.stringValue.map(NPI.isValid) == true)
        guard prescriber else {
            return refuse(.incomplete, "This prescription names no prescriber (a Practitioner or an NPI); the pharmacy completes it with the prescriber before it can be filled")
        }
        if let expires = expiry(of: rx), expires <= now {
            return refuse(.expired, "This prescription expired on \(Self.day(expires)); ask your prescriber for a new prescription")
        }
        if fills.contains(where: { $0.state.isOpen }) {
            return refuse(.fillInProgress, "A fill of this prescription is already being prepared")
        }
        let used = fills.filter { $0.state.countsAsFill }
        let allowed = 1 + Self.refillsAuthorized(rx)
        guard used.count < allowed else {
            return refuse(.noRefillsLeft, "No refills left: all \(allowed) fill\(allowed == 1 ? "" : "s") of this prescription have been dispensed")
        }
        if let last = used.max(by: { $0.date < $1.date }) {
            let days = last.daysSupply ?? Self.daysSupply(rx) ?? 30
            let eligible = last.date.addingTimeInterval(days * tooSoonFraction * 86400)
            if eligible > now {
                return refuse(
                    .tooSoon,
                    "Too soon to refill: the last fill was \(Int(days)) days' supply on \(Self.day(last.date)); "
                        + "you can refill from \(Self.day(eligible)) (\(Int((tooSoonFraction * 100).rounded())) % of the supply used)")
            }
        }
        return nil
    }

    /// Refills left after `fills`.
    public static func refillsLeft(_ rx: JSON, fills: [Fill]) -> Int {
        max(0, 1 + refillsAuthorized(rx) - fills.filter { $0.state.countsAsFill }.count)
    }

    /// `dispenseRequest.numberOfRepeatsAllowed` (refills beyond the first fill), 0 if absent.
    public static func refillsAuthorized(_ rx: JSON) -> Int {
        Int(rx["dispenseRequest"]?["numberOfRepeatsAllowed"]?.intValue ?? 0)
    }

    /// Days' supply of one fill: `dispenseRequest.expectedSupplyDuration` in days.
    public static func daysSupply(_ rx: JSON) -> Double? {
        FHIRQuantity.days(rx["dispenseRequest"]?["expectedSupplyDuration"])
    }

    /// When the prescription stops being fillable.
    public func expiry(of rx: JSON) -> Date? {
        if let end = rx["dispenseRequest"]?["validityPeriod"]?["end"]?.stringValue { return FHIRDate.instant(end, end: true) }
        guard let authored = rx["authoredOn"]?.stringValue, let written = FHIRDate.instant(authored, end: false) else { return nil }
        let controlled = (try? DEASchedule.of(rx)) ?? nil
        return written.addingTimeInterval(controlled == nil ? defaultValidity : min(defaultValidity, 182 * 86400))
    }

    func refuse(_ r: Refusal, _ message: String) -> FHIRError { .businessRule(r.rawValue, message) }

    static func day(_ d: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd"
        return f.string(from: d)
    }
}

/// FHIR `Duration`/`Quantity` helpers.
public enum FHIRQuantity {
    /// A Duration in days (`d`, `day`, `days`, `wk`, `mo` accepted), or `nil`.
    public static func days(_ q: JSON?) -> Double? {
        guard let q, let value = number(q["value"]) else { return nil }
        switch q["code"]?.stringValue ?? q["unit"]?.stringValue {
        case "d", "day", "days": return value
        case "wk", "week", "weeks": return value * 7
        case "mo", "month", "months": return value * 30
        default: return nil
        }
    }

    /// A JSON number as a Double.
    public static func number(_ v: JSON?) -> Double? {
        switch v {
        case .int(let n): Double(n)
        case .double(let d): d
        default: nil
        }
    }
}

/// A transfer-in request: a prescription that exists at another pharmacy and is to be moved here. It is a
/// MedicationRequest in status `draft` with the `transfer-from` extension (pharmacy name, phone, their Rx number);
/// a pharmacist accepts it by making it `active`.
public enum TransferIn {
    public static let url = "https://saferx.dev/fhir/StructureDefinition/transfer-from"

    public struct Source: Sendable, Equatable {
        public var pharmacy: String
        public var phone: String
        public var rxNumber: String
    }

    /// The transfer source of a MedicationRequest, if it is a transfer-in request.
    public static func of(_ rx: JSON) -> Source? {
        guard let ext = rx["extension"]?.arrayValue?.first(where: { $0["url"]?.stringValue == url }) else { return nil }
        let parts = ext["extension"]?.arrayValue ?? []
        func value(_ name: String) -> String? { parts.first { $0["url"]?.stringValue == name }?["valueString"]?.stringValue }
        guard let pharmacy = value("pharmacy"), let phone = value("phone"), let rx = value("rxNumber") else { return nil }
        return Source(pharmacy: pharmacy, phone: phone, rxNumber: rx)
    }
}
