import SafeRxModel

/// One thing the pharmacy must do, by when, and why.
public struct Obligation: Sendable, Equatable, Codable {
    public var id: String
    public var title: String
    /// The rule: `45 CFR 164.404`, `TX state law`, ...
    public var authority: String
    public var recipient: String
    /// The last day it may be done; `nil` when the rule sets none ("without unreasonable delay").
    public var due: String?
    public var dueText: String
    /// Why it applies (counts, thresholds), in a sentence.
    public var basis: String
    /// Whether it applies; state rows that do not apply are listed too, with why not.
    public var required: Bool
    /// For state-law rows: the row's source, confidence and verification; empty for HIPAA.
    public var provenance: String
}

/// What the obligations depend on.
public struct ObligationFacts: Sendable {
    public var discovered: CivilDate
    /// The day the breach was determined (the assessment concluded); state clocks that start at determination use it,
    /// and discovery when there is none yet.
    public var determined: CivilDate?
    /// A breach of unsecured PHI (not safe harbor, not low probability of compromise).
    public var isBreach: Bool
    public var affected: Int
    /// Affected individuals by state of residence (`??` for no address on record).
    public var residents: [String: Int]
    /// Individuals with no postal address on record (or returned mail).
    public var unreachable: Int
    /// Whether medical information left (medications, prescriber, messages...).
    public var medicalExposed: Bool
    /// Whether Social Security numbers left with names (personal information under every state's law).
    public var ssnExposed: Bool
    /// The pharmacy acts as a business associate of these covered entities for some affected individuals
    /// (partner telehealth companies whose patients they are), with counts.
    public var coveredEntities: [String: Int]
    /// A law-enforcement official's written request to delay (164.412(a)), until this day.
    public var lawEnforcementDelayUntil: CivilDate?

    public init(
        discovered: CivilDate, determined: CivilDate? = nil, isBreach: Bool, affected: Int, residents: [String: Int], unreachable: Int,
        medicalExposed: Bool, ssnExposed: Bool = false, coveredEntities: [String: Int] = [:], lawEnforcementDelayUntil: CivilDate? = nil
    ) {
        self.ssnExposed = ssnExposed
        self.discovered = discovered
        self.determined = determined
        self.isBreach = isBreach
        self.affected = affected
        self.residents = residents
        self.unreachable = unreachable
        self.medicalExposed = medicalExposed
        self.coveredEntities = coveredEntities
        self.lawEnforcementDelayUntil = lawEnforcementDelayUntil
    }
}

/// HIPAA's Breach Notification Rule (45 CFR 164.400–414) and the state table, as a dated calendar.
public enum Obligations {
    /// The last day of "within 60 calendar days of discovery", moved by a law-enforcement delay (164.412): the
    /// days of the delay that fall within the period are added (the clock stops while it runs).
    static func sixtyDays(_ f: ObligationFacts) -> CivilDate {
        let plain = f.discovered.adding(days: 60)
        guard let until = f.lawEnforcementDelayUntil, until > f.discovered else { return plain }
        return plain.adding(days: f.discovered.days(until: until))
    }

    /// 164.408(c): breaches of fewer than 500 go in the log due 60 days after the end of the calendar year of discovery.
    public static func annualLogDue(discoveredIn year: Int) -> CivilDate { CivilDate(year: year, month: 12, day: 31)!.adding(days: 60) }

    public static func compute(_ f: ObligationFacts, rules: StateRules) -> [Obligation] {
        var out: [Obligation] = []
        let due60 = sixtyDays(f)
        let delay = f.lawEnforcementDelayUntil.map { " (moved by the law-enforcement delay to \($0))" } ?? ""
        guard f.isBreach else {
            out.append(Obligation(
                id: "hipaa-documentation", title: "Keep the risk assessment and its reasoning", authority: "45 CFR 164.414(b), 164.530(j)",
                recipient: "the pharmacy's records", due: nil, dueText: "keep for 6 years",
                basis: "Not a breach of unsecured PHI: no notice is due, but the burden of proof is the pharmacy's, so the assessment is kept.",
                required: true, provenance: ""))
            return out
        }
        out.append(Obligation(
            id: "hipaa-individual", title: "Notify each affected individual in writing", authority: "45 CFR 164.404",
            recipient: "\(f.affected) individual(s) (first-class mail, or e-mail where they agreed to it)", due: due60.description,
            dueText: "without unreasonable delay, no later than \(due60.longForm)\(delay)",
            basis: "\(f.affected) individual(s) whose unsecured PHI was acquired or disclosed; 60 calendar days from discovery (\(f.discovered)).",
            required: true, provenance: ""))
        if f.unreachable >= 10 {
            out.append(Obligation(
                id: "hipaa-substitute", title: "Substitute notice: website posting for 90 days or major media, with a toll-free number for 90 days",
                authority: "45 CFR 164.404(d)(2)(ii)", recipient: "the public where the \(f.unreachable) unreachable individuals likely live",
                due: due60.description, dueText: "with the individual notice, no later than \(due60.longForm)",
                basis: "\(f.unreachable) individuals have insufficient or out-of-date contact information (10 or more).", required: true, provenance: ""))
        } else if f.unreachable > 0 {
            out.append(Obligation(
                id: "hipaa-substitute", title: "Substitute notice by an alternative written notice, telephone or other means",
                authority: "45 CFR 164.404(d)(2)(i)", recipient: "\(f.unreachable) individual(s) with insufficient contact information",
                due: due60.description, dueText: "no later than \(due60.longForm)",
                basis: "\(f.unreachable) individual(s) cannot be reached by mail (fewer than 10).", required: true, provenance: ""))
        }
        for (state, n) in f.residents.sorted(by: { $0.key < $1.key }) where state != "??" && n > 500 {
            out.append(Obligation(
                id: "hipaa-media-\(state)", title: "Notify prominent media outlets serving \(state)", authority: "45 CFR 164.406",
                recipient: "prominent media outlets in \(state)", due: due60.description, dueText: "no later than \(due60.longForm)",
                basis: "\(n) residents of \(state) affected (more than 500).", required: true, provenance: ""))
        }
        let hhsDue: CivilDate
        if f.affected >= 500 {
            hhsDue = due60
            out.append(Obligation(
                id: "hipaa-hhs", title: "Notify the Secretary of HHS (OCR breach portal) now", authority: "45 CFR 164.408(b)",
                recipient: "HHS Office for Civil Rights", due: due60.description,
                dueText: "contemporaneously with the individual notice, no later than \(due60.longForm)",
                basis: "\(f.affected) individuals affected (500 or more).", required: true, provenance: ""))
        } else {
            hhsDue = annualLogDue(discoveredIn: f.discovered.year)
            out.append(Obligation(
                id: "hipaa-hhs", title: "Record in the annual breach log to the Secretary of HHS", authority: "45 CFR 164.408(c)",
                recipient: "HHS Office for Civil Rights (annual submission)", due: hhsDue.description,
                dueText: "within 60 days after the end of \(f.discovered.year): by \(hhsDue.longForm)",
                basis: "\(f.affected) individual(s) affected (fewer than 500).", required: true, provenance: ""))
        }
        for (entity, n) in f.coveredEntities.sorted(by: { $0.key < $1.key }) {
            out.append(Obligation(
                id: "hipaa-ba-\(entity)", title: "Notify the covered entity \(entity) (the pharmacy is its business associate)", authority: "45 CFR 164.410",
                recipient: entity, due: due60.description, dueText: "without unreasonable delay, no later than \(due60.longForm)",
                basis: "\(n) affected individual(s) are patients of \(entity); name each and say what is known.", required: true, provenance: ""))
        }
        out.append(Obligation(
            id: "hipaa-documentation", title: "Keep the notices, the risk assessment and their reasoning", authority: "45 CFR 164.414(b), 164.530(j)",
            recipient: "the pharmacy's records", due: nil, dueText: "keep for 6 years", basis: "The burden of proof that notices were given is the pharmacy's.",
            required: true, provenance: ""))

        // State laws, for each state with affected residents.
        for (state, n) in f.residents.sorted(by: { $0.key < $1.key }) where state != "??" {
            guard let row = rules.rows[state] else {
                out.append(Obligation(
                    id: "state-\(state)", title: "Check \(state)'s breach law (no row in the state table)", authority: "\(state) state law",
                    recipient: "-", due: nil, dueText: "unknown", basis: "\(n) resident(s) affected; the table has no row for \(state).", required: true,
                    provenance: "no row"))
                continue
            }
            var applies: Bool
            var why: String
            switch row.medicalCovered {
            case "Y":
                applies = f.medicalExposed
                why = f.medicalExposed ? "medical information is personal information under \(state) law" : "no medical information left"
            case "N":
                applies = false
                why = "medical information alone is not personal information under \(state)'s general breach law"
            default:
                applies = f.medicalExposed
                why = "coverage of medical information is \(row.medicalCovered == "?" ? "unknown" : "partial") (\(row.notes.isEmpty ? row.individualText : row.notes)): treat as applying until verified"
            }
            if f.ssnExposed {
                applies = true
                why = "names with Social Security numbers left (personal information under \(state) law)"
            } else if !applies {
                why += "; no Social Security, driver's licence or account number left with a name"
            }
            let start = row.clock == "determination" ? (f.determined ?? f.discovered) : f.discovered
            var individualDue = due60
            if applies, let days = row.individualDays {
                let stateDue = start.adding(days: days)
                if row.hipaaDeemedCompliant == "Y" {
                    out.append(Obligation(
                        id: "state-\(state)-individual", title: "\(state) individual notice", authority: "\(state) state law", recipient: "\(n) resident(s)",
                        due: nil, dueText: "satisfied by the HIPAA notice (\(state) deems HIPAA-compliant entities compliant)",
                        basis: "\(n) resident(s); \(why). State text: \(row.individualText).", required: false, provenance: row.provenance))
                } else {
                    individualDue = min(stateDue, due60)
                    out.append(Obligation(
                        id: "state-\(state)-individual", title: "\(state) individual notice", authority: "\(state) state law", recipient: "\(n) resident(s)",
                        due: individualDue.description, dueText: "within \(days) days of \(row.clock) (\(start)): by \(individualDue.longForm)",
                        basis: "\(n) resident(s); \(why). State text: \(row.individualText).", required: true, provenance: row.provenance))
                }
            } else if applies {
                let deemed = row.hipaaDeemedCompliant == "Y"
                out.append(Obligation(
                    id: "state-\(state)-individual", title: "\(state) individual notice", authority: "\(state) state law", recipient: "\(n) resident(s)",
                    due: nil, dueText: deemed ? "satisfied by the HIPAA notice (\(state) deems HIPAA-compliant entities compliant)" : "\(row.individualText) (no fixed number of days; the HIPAA deadline is the outer limit)",
                    basis: "\(n) resident(s); \(why).", required: !deemed, provenance: row.provenance))
            } else {
                out.append(Obligation(
                    id: "state-\(state)", title: "\(state) breach law", authority: "\(state) state law", recipient: "-", due: nil, dueText: "not triggered",
                    basis: "\(n) resident(s); \(why).", required: false, provenance: row.provenance))
                continue
            }
            guard let minimum = row.regulatorMinimum, !row.regulator.isEmpty else { continue }
            guard n >= minimum else {
                out.append(Obligation(
                    id: "state-\(state)-regulator", title: "Notify the \(row.regulator) of \(state)", authority: "\(state) state law", recipient: row.regulator,
                    due: nil, dueText: "not required", basis: "\(n) resident(s), below the threshold of \(minimum). State text: \(row.regulatorText).",
                    required: false, provenance: row.provenance))
                continue
            }
            let (due, text) = regulatorDue(row.regulatorTiming, start: start, discovered: f.discovered, individual: individualDue, hhs: hhsDue)
            out.append(Obligation(
                id: "state-\(state)-regulator", title: "Notify the \(row.regulator) of \(state)", authority: "\(state) state law", recipient: row.regulator,
                due: due?.description, dueText: text, basis: "\(n) resident(s) (threshold \(minimum)). State text: \(row.regulatorText).",
                required: true, provenance: row.provenance))
        }
        return out.sorted { a, b in
            switch (a.due, b.due) {
            case let (x?, y?): x == y ? a.id < b.id : x < y
            case (_?, nil): true
            case (nil, _?): false
            default: a.id < b.id
            }
        }
    }

    static func regulatorDue(
        _ t: StateRules.Timing, start: CivilDate, discovered: CivilDate, individual: CivilDate, hhs: CivilDate
    ) -> (CivilDate?, String) {
        switch t {
        case .unspecified: return (nil, "without unreasonable delay (the table gives no deadline)")
        case .days(let n):
            let d = start.adding(days: n)
            return (d, "within \(n) days of \(start): by \(d.longForm)")
        case .businessDays(let n):
            let d = discovered.adding(businessDays: n)
            return (d, "within \(n) business days of discovery: by \(d.longForm)")
        case .beforeIndividuals:
            let d = individual.adding(days: -1)
            return (d, "before the individuals are notified: by \(d.longForm) at the latest")
        case .withIndividuals: return (individual, "no later than the individual notice: by \(individual.longForm)")
        case .afterIndividualsDays(let n):
            let d = individual.adding(days: n)
            return (d, "within \(n) days after the individual notice: by \(d.longForm) if that goes out on its last day")
        case .afterIndividualsBusinessDays(let n):
            let d = individual.adding(businessDays: n)
            return (d, "within \(n) business days after the individual notice: by \(d.longForm) if that goes out on its last day")
        case .afterHHSBusinessDays(let n):
            let d = hhs.adding(businessDays: n)
            return (d, "within \(n) business days after notifying HHS: by \(d.longForm) if HHS is notified on its last day")
        case .firstOf(let options):
            let all = options.map { regulatorDue($0, start: start, discovered: discovered, individual: individual, hhs: hhs) }
            let dated = all.compactMap { d, t in d.map { ($0, t) } }
            guard let first = dated.min(by: { $0.0 < $1.0 }) else { return (nil, all.map(\.1).joined(separator: "; or ")) }
            return (first.0, "the earliest of: " + all.map(\.1).joined(separator: "; ") + " → \(first.0.longForm)")
        }
    }
}
