import Foundation
import SafeRxModel
import Testing

@Suite("Pharmacy rules: NPI, DEA, refills, fill states")
struct PharmacyRulesTests {
    @Test("NPI check digits (Luhn with prefix 80840)")
    func npi() {
        #expect(NPI.isValid("1234567893"))
        #expect(NPI.isValid("1999999984"))
        #expect(!NPI.isValid("1234567890"))
        #expect(!NPI.isValid("123456789"))
        #expect(!NPI.isValid("12345678931"))
        #expect(!NPI.isValid("3234567893"), "NPIs start with 1 or 2")
        #expect(!NPI.isValid("12345678a3"))
        for i in 1...9 { #expect(NPI.isValid(NPI.completing("12345678\(i)"))) }
    }

    @Test("DEA numbers: format, registrant type, check digit, last-name initial")
    func dea() {
        // 1+3+5 = 9; 2*(2+4+6) = 24; 33 → check digit 3.
        #expect(DEANumber.problem("AB1234563") == nil)
        #expect(DEANumber.problem("ab1234563") == nil)
        #expect(DEANumber.problem("AB1234564")?.contains("check digit") == true)
        #expect(DEANumber.problem("ZB1234563")?.contains("registrant") == true)
        #expect(DEANumber.problem("AB123456") != nil)
        #expect(DEANumber.problem("AB1234563", lastName: "Brennan") == nil)
        #expect(DEANumber.problem("AB1234563", lastName: "Chen")?.contains("initial") == true)
        #expect(DEANumber.completing("AB123456") == "AB1234563")
    }

    static func rx(status: String = "active", repeats: Int = 2, days: Int = 30, authored: String = "2026-10-01") -> JSON {
        .object([
            "resourceType": "MedicationRequest", "status": .string(status), "authoredOn": .string(authored),
            "requester": .object(["reference": "Practitioner/prac-1"]),
            "dispenseRequest": .object([
                "numberOfRepeatsAllowed": .int(Int64(repeats)),
                "expectedSupplyDuration": .object(["value": .int(Int64(days)), "code": "d"]),
            ]),
        ])
    }

    @Test("an incomplete prescription (no quantity and no days' supply, or no prescriber) is never filled")
    func incompletePrescriptions() {
        let now = FHIRDate.instant("2026-11-23T12:00:00Z", end: false)!
        var noAmount = Self.rx()
        noAmount["dispenseRequest"] = .object(["numberOfRepeatsAllowed": .int(2)])
        #expect(RefillRules().check(prescription: noAmount, fills: [], now: now)?.reason == "prescription-incomplete")
        var noPrescriber = Self.rx()
        noPrescriber["requester"] = nil
        #expect(RefillRules().check(prescription: noPrescriber, fills: [], now: now)?.reason == "prescription-incomplete")
        var byNPI = Self.rx()
        byNPI["requester"] = .object(["identifier": .object(["system": .string(NPI.system), "value": .string(NPI.completing("123456789"))])])
        #expect(RefillRules().check(prescription: byNPI, fills: [], now: now) == nil)
    }

    @Test("refill decisions: too soon at the configured share of the supply, refills left, expiry, open fills")
    func refills() {
        let now = FHIRDate.instant("2026-11-23T12:00:00Z", end: false)!
        let rules = RefillRules()
        func fill(_ daysAgo: Double, _ state: FillState = .completed) -> RefillRules.Fill {
            .init(state: state, date: now.addingTimeInterval(-daysAgo * 86400), daysSupply: 30)
        }
        #expect(rules.check(prescription: Self.rx(), fills: [], now: now) == nil)
        // 75 % of 30 days is 22.5 days.
        #expect(rules.check(prescription: Self.rx(), fills: [fill(22)], now: now)?.reason == "refill-too-soon")
        #expect(rules.check(prescription: Self.rx(), fills: [fill(23)], now: now) == nil)
        #expect(RefillRules(tooSoonFraction: 0.8).check(prescription: Self.rx(), fills: [fill(23)], now: now)?.reason == "refill-too-soon")
        #expect(rules.check(prescription: Self.rx(), fills: [fill(90), fill(60), fill(30)], now: now)?.reason == "no-refills-left")
        #expect(rules.check(prescription: Self.rx(), fills: [fill(90), fill(60), fill(30, .cancelled)], now: now) == nil)
        #expect(rules.check(prescription: Self.rx(), fills: [fill(1, .onHold)], now: now)?.reason == "fill-in-progress")
        #expect(rules.check(prescription: Self.rx(status: "stopped"), fills: [], now: now)?.reason == "prescription-not-active")
        #expect(rules.check(prescription: Self.rx(authored: "2025-11-01"), fills: [], now: now)?.reason == "prescription-expired")
        #expect(RefillRules.refillsLeft(Self.rx(), fills: [fill(60)]) == 2)
        #expect(rules.check(prescription: Self.rx(), fills: [fill(22)], now: now)?.kind == .businessRule)
    }

    @Test("fill state machine: final states, reasons, FHIR statuses")
    func states() {
        for s in FillState.allCases {
            #expect(s.isFinal == s.next.isEmpty)
            for n in s.next { #expect(n != s) }
        }
        #expect(FillState.verified.fhirStatus == "in-progress")
        #expect(FillState.delivered.fhirStatus == "completed")
        #expect(FillState.of(.object(["status": "in-progress"])) == .inProgress)
        #expect(FillReason.codes.count == 21)
    }
}
