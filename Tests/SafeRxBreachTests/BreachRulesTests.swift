import Foundation
@testable import SafeRxBreach
import SafeRxModel
import Testing

/// Breach notification rules as pure values: HIPAA thresholds at their edges, deadlines across leap days and year
/// ends, the state table, and letters that carry every element 164.404(c) requires.
@Suite("Breach rules and notices")
struct BreachRulesTests {
    static let rules = try! StateRules.bundled()

    static func facts(
        discovered: String = "2027-03-01", affected: Int, residents: [String: Int]? = nil, unreachable: Int = 0, medical: Bool = true,
        delay: String? = nil, coveredEntities: [String: Int] = [:]
    ) -> ObligationFacts {
        ObligationFacts(
            discovered: CivilDate(discovered)!, isBreach: true, affected: affected, residents: residents ?? ["MS": affected], unreachable: unreachable,
            medicalExposed: medical, coveredEntities: coveredEntities, lawEnforcementDelayUntil: delay.flatMap(CivilDate.init))
    }

    static func ids(_ o: [Obligation]) -> Set<String> { Set(o.map(\.id)) }

    @Test("Calendar days: 60 days after discovery across a leap day and a year end; the annual log's date in leap and common years")
    func deadlines() {
        #expect(CivilDate("2028-01-15")!.adding(days: 60).description == "2028-03-15", "2028 is a leap year: February has 29 days")
        #expect(CivilDate("2027-01-15")!.adding(days: 60).description == "2027-03-16")
        #expect(CivilDate("2027-12-15")!.adding(days: 60).description == "2028-02-13", "across the year end")
        #expect(CivilDate("2099-12-31")!.adding(days: 60).description == "2100-03-01", "2100 is not a leap year")
        #expect(Obligations.annualLogDue(discoveredIn: 2027).description == "2028-02-29", "60 days after 2027 ends is a leap day")
        #expect(Obligations.annualLogDue(discoveredIn: 2026).description == "2027-03-01")
        #expect(CivilDate("2026-12-04")!.adding(businessDays: 5).description == "2026-12-11", "Friday + 5 business days")
        #expect(CivilDate("2024-02-30") == nil && CivilDate("2024-02-29") != nil && CivilDate("2023-02-29") == nil)
        let o = Obligations.compute(Self.facts(discovered: "2027-12-15", affected: 20), rules: Self.rules)
        #expect(o.first { $0.id == "hipaa-individual" }?.due == "2028-02-13")
    }

    @Test("HHS: 499 affected go in the annual log, 500 are reported now")
    func hhsThreshold() {
        let small = Obligations.compute(Self.facts(affected: 499), rules: Self.rules).first { $0.id == "hipaa-hhs" }!
        #expect(small.authority == "45 CFR 164.408(c)" && small.due == "2028-02-29")
        let large = Obligations.compute(Self.facts(affected: 500), rules: Self.rules).first { $0.id == "hipaa-hhs" }!
        #expect(large.authority == "45 CFR 164.408(b)" && large.due == "2027-04-30")
    }

    @Test("Media: 500 residents of one state is not more than 500, 501 is")
    func mediaThreshold() {
        let at500 = Obligations.compute(Self.facts(affected: 700, residents: ["MS": 500, "AL": 200]), rules: Self.rules)
        #expect(!Self.ids(at500).contains { $0.hasPrefix("hipaa-media-") })
        let at501 = Obligations.compute(Self.facts(affected: 701, residents: ["MS": 501, "AL": 200]), rules: Self.rules)
        #expect(Self.ids(at501).contains("hipaa-media-MS") && !Self.ids(at501).contains("hipaa-media-AL"))
    }

    @Test("Substitute notice: 9 unreachable get an alternative notice, 10 need the website or media and a toll-free number")
    func substituteThreshold() {
        let nine = Obligations.compute(Self.facts(affected: 50, unreachable: 9), rules: Self.rules).first { $0.id == "hipaa-substitute" }!
        #expect(nine.authority == "45 CFR 164.404(d)(2)(i)")
        let ten = Obligations.compute(Self.facts(affected: 50, unreachable: 10), rules: Self.rules).first { $0.id == "hipaa-substitute" }!
        #expect(ten.authority == "45 CFR 164.404(d)(2)(ii)" && ten.title.contains("toll-free"))
        #expect(!Self.ids(Obligations.compute(Self.facts(affected: 50, unreachable: 0), rules: Self.rules)).contains("hipaa-substitute"))
    }

    @Test("State laws from the table: shorter deadlines, thresholds, regulators first; every row says it is unverified")
    func stateLaws() throws {
        #expect(Self.rules.rows.count == 51)
        // Texas: not deemed compliant, 60 days after determination, AG within 30 days for 250 or more.
        var o = Obligations.compute(Self.facts(discovered: "2027-03-01", affected: 300, residents: ["TX": 300]), rules: Self.rules)
        let tx = try #require(o.first { $0.id == "state-TX-regulator" })
        #expect(tx.required && tx.due == "2027-03-31" && tx.provenance.contains("not verified"))
        o = Obligations.compute(Self.facts(affected: 249, residents: ["TX": 249]), rules: Self.rules)
        #expect(o.first { $0.id == "state-TX-regulator" }?.required == false)
        // Maryland: the AG before the individuals.
        o = Obligations.compute(Self.facts(discovered: "2027-03-01", affected: 10, residents: ["MD": 10]), rules: Self.rules)
        let md = try #require(o.first { $0.id == "state-MD-regulator" })
        #expect(md.dueText.contains("before the individuals") && md.due == "2027-04-29")
        // Vermont: preliminary notice within 14 business days, earlier than anything else.
        o = Obligations.compute(Self.facts(discovered: "2027-03-01", affected: 10, residents: ["VT": 10]), rules: Self.rules)
        #expect(o.first?.id == "state-VT-regulator" && o.first?.due == "2027-03-19", "the calendar starts with the earliest deadline")
        // Georgia: medical information alone is not covered.
        o = Obligations.compute(Self.facts(affected: 10, residents: ["GA": 10]), rules: Self.rules)
        #expect(o.first { $0.id == "state-GA" }?.required == false)
        // Sorted earliest first.
        let dated = o.compactMap(\.due)
        #expect(dated == dated.sorted())
    }

    @Test("Names with SSNs trigger every state's law, medical or not")
    func ssnTriggersStateLaw() {
        var f = Self.facts(affected: 10, residents: ["GA": 10], medical: false)
        #expect(Obligations.compute(f, rules: Self.rules).first { $0.id == "state-GA" }?.required == false)
        f.ssnExposed = true
        #expect(Obligations.compute(f, rules: Self.rules).contains { $0.id.hasPrefix("state-GA") && $0.required == false && $0.dueText.contains("not triggered") } == false)
    }

    @Test("A law-enforcement delay stops the clock; a business associate tells each covered entity")
    func delayAndBusinessAssociate() {
        let o = Obligations.compute(Self.facts(discovered: "2027-03-01", affected: 20, delay: "2027-03-31", coveredEntities: ["telehealth-demo": 7]), rules: Self.rules)
        #expect(o.first { $0.id == "hipaa-individual" }?.due == "2027-05-30", "60 days plus the 30-day delay")
        #expect(o.first { $0.id == "hipaa-ba-telehealth-demo" }?.basis.contains("7 affected") == true)
    }

    @Test("Not a breach: no notices, only the documentation")
    func notABreach() {
        var f = Self.facts(affected: 1000)
        f.isBreach = false
        let o = Obligations.compute(f, rules: Self.rules)
        #expect(o.map(\.id) == ["hipaa-documentation"])
    }

    @Test("A state table with an error is refused, naming the line")
    func badTable() {
        func error(_ text: String) -> String {
            do {
                _ = try StateRules.parse(text, source: "t.csv")
                return "ok"
            } catch {
                return "\(error)"
            }
        }
        let header = "state,individual_days,individual_clock,individual_text,medical_covered,regulator,regulator_min_affected,regulator_timing,regulator_text,hipaa_deemed_compliant,source,confidence,last_verified,notes"
        #expect(error(header + "\nTX,60,determination,x,Y,AG,250,days:30,x,N,BL,high,,") == "ok")
        #expect(error(header + "\nTX,60,determination,x,Y,AG,250,soonish,x,N,BL,high,,").contains("line 2: regulator_timing"))
        #expect(error(header + "\nTX,600,determination,x,Y,AG,250,days:30,x,N,BL,high,,").contains("individual_days"))
        #expect(error(header + "\nTX,60,determination,x,maybe,AG,250,days:30,x,N,BL,high,,").contains("medical_covered"))
        #expect(error("state,days\nTX,60").contains("header"))
    }

    static let incident = IncidentFacts(
        id: "inc-1", pharmacy: "SafeRx Demo Pharmacy", breachStart: "2027-02-20", breachEnd: "2027-02-21", discovered: "2027-03-01",
        whatHappened: "Someone used a stolen employee password to view patient records.", whatWeAreDoing: "We suspended the account and reset passwords.",
        tollFree: "1-800-555-0199", email: "privacy@saferx.example", postalAddress: "100 Main St, Springfield, IL 62701", website: "https://saferx.example/notice")

    @Test("A letter has every element 164.404(c) requires, per person, with and without medications")
    func letters() {
        let base = Letter(
            letterID: "inc-1-pat-1", patientID: "pat-1", recipientName: "Ava Chen", onBehalfOf: nil, addressLines: ["12 Oak St"], city: "Springfield",
            state: "IL", postalCode: "62701", elements: [.name, .address, .medications, .prescriber], firstExposure: "2027-02-20T10:00:00.000Z",
            lastExposure: "2027-02-21T11:00:00.000Z")
        var noMeds = base
        noMeds.elements = [.name, .address]
        for l in [base, noMeds] {
            let text = Notices.letterText(l, Self.incident, date: "2027-03-10").joined(separator: "\n")
            // (A) what happened, with the dates of the breach and of discovery
            #expect(text.contains("stolen employee password") && text.contains("February 20, 2027") && text.contains("March 1, 2027"))
            // (B) the types of PHI involved, for this person
            #expect(text.contains("name") && text.contains("postal address"))
            // (C) steps to protect themselves, (D) what the pharmacy is doing, (E) contact procedures with a toll-free number
            #expect(text.contains("WHAT YOU CAN DO") && text.contains("We suspended the account") && text.contains("1-800-555-0199") && text.contains("privacy@saferx.example"))
            #expect(text.contains("Ava Chen") && text.contains("12 Oak St"))
        }
        let withMeds = Notices.letterText(base, Self.incident, date: "2027-03-10").joined(separator: "\n")
        let without = Notices.letterText(noMeds, Self.incident, date: "2027-03-10").joined(separator: "\n")
        #expect(withMeds.contains("medication names") && !without.contains("medication names"))
        #expect(without.contains("No medication or other health information of yours was involved"))
        // To a caregiver on record, on the patient's behalf.
        var carer = base
        carer.recipientName = "Liam Chen"
        carer.onBehalfOf = "Ava Chen"
        let c = Notices.letterText(carer, Self.incident, date: "2027-03-10").joined(separator: "\n")
        #expect(c.contains("caregiver or personal representative on record for Ava Chen") && c.contains("the person you care for, Ava Chen"))
        // HTML escapes, the PDF is a PDF, the mail-merge row lists this person's elements.
        var tricky = base
        tricky.recipientName = "<script>x</script>"
        #expect(!Notices.letterHTML(tricky, Self.incident, date: "2027-03-10").contains("<script>"))
        let pdf = Notices.letterPDF(base, Self.incident, date: "2027-03-10")
        #expect(String(decoding: pdf.prefix(8), as: UTF8.self) == "%PDF-1.4" && String(decoding: pdf.suffix(6), as: UTF8.self) == "%%EOF\n")
        #expect(Notices.mailMergeRow(noMeds).contains("name and postal address"))
    }

    @Test("Mail-merge fields: quoted when they hold a comma, quote or line break; spreadsheet formulas neutralised; UTF-8 kept")
    func mailMergeFields() {
        #expect(CSV.field("Ava Chen") == "Ava Chen")
        #expect(CSV.field("12 Oak St, Apt 4") == "\"12 Oak St, Apt 4\"")
        #expect(CSV.field("The \"Oaks\"") == "\"The \"\"Oaks\"\"\"")
        #expect(CSV.field("line\nbreak") == "\"line\nbreak\"" && CSV.field("cr\r") == "\"cr\r\"")
        for f in ["=HYPERLINK(\"x\")", "+1", "-2", "@SUM(A1)"] { #expect(CSV.field(f).hasPrefix("'") || CSV.field(f).hasPrefix("\"'")) }
        #expect(CSV.field("=1,2") == "\"'=1,2\"")
        #expect(CSV.field("José Ñúñez") == "José Ñúñez" && CSV.field("") == "")
        var l = Letter(
            letterID: "inc-1-pat-1", patientID: "pat-1", recipientName: "Chen, Ava", onBehalfOf: nil, addressLines: ["12 Oak St", "Apt 4"], city: "Springfield",
            state: "IL", postalCode: "62701", elements: [.name, .address], firstExposure: "2027-02-20T10:00:00.000Z", lastExposure: "2027-02-21T11:00:00.000Z")
        #expect(Notices.mailMergeRow(l) == "inc-1-pat-1,pat-1,\"Chen, Ava\",,12 Oak St,Apt 4,Springfield,IL,62701,name and postal address,2027-02-20T10:00:00.000Z,2027-02-21T11:00:00.000Z")
        l.onBehalfOf = "Liam Chen"
        var bytes: [UInt8] = []
        Notices.appendMailMergeRow(l, to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == Notices.mailMergeRow(l) + "\r\n")
        #expect(CSV.rows(Notices.mailMergeRow(l))[0].count == Notices.mailMergeHeader.count)
    }

    @Test("The HHS report carries the OCR portal's fields")
    func hhsReport() {
        let r = Notices.hhsReport(
            Self.incident, affected: 612, elements: [.name, .medications], businessAssociate: false, typeOfBreach: "Hacking/IT Incident",
            location: "Network Server", safeguards: ["Security Rule Technical Safeguards"], actions: ["Took steps to mitigate harm"], individualNotice: nil,
            substituteNotice: false, mediaNotice: true, stateAGs: ["Attorney General"])
        for key in ["breachStartDate", "breachEndDate", "discoveryDate", "approximateNumberOfIndividualsAffected", "typeOfBreach",
                    "locationOfBreachedInformation", "safeguardsInPlacePriorToBreach", "actionsTakenInResponse", "typeOfProtectedHealthInformationInvolved"] {
            #expect(r[key] != nil, "\(key)")
        }
        #expect(r["typeOfProtectedHealthInformationInvolved"] == .array(["Clinical", "Demographic"]))
        #expect(Notices.hhsSummary(r).contains("Individuals affected: 612"))
    }

    @Test("letters: one day reads 'on', US spelling, sources named in words (walk-through finding 10)")
    func letterWording() {
        #expect(Notices.period("2026-12-02", "2026-12-02") == "on December 2, 2026")
        #expect(Notices.period("2026-12-01", "2026-12-02") == "between December 1, 2026 and December 2, 2026")
        #expect(StateRules.Row.sourceName("BL+2024/25 pages").hasPrefix("Bloomberg Law"))
    }
}
