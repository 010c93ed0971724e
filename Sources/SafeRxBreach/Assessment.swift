/// The risk assessment of 45 CFR 164.402(2): four factors, the three statutory exceptions, and the result, with the
/// facts the audit log establishes filled in and each human judgement recorded with who made it and when.
public struct Assessment: Sendable, Codable, Equatable {
    /// What the audit log and the store establish (computed, not edited).
    public struct Facts: Sendable, Codable, Equatable {
        public var affected: Int
        /// Data element → number of individuals for whom it left.
        public var elements: [String: Int]
        public var controlledSubstances: Int
        /// The credentials, clients or files through which data left ("technician (user-0002)", ...).
        public var recipients: [String]
        /// Individuals whose data the audit log shows was actually returned (acquired), not only attempted.
        public var acquired: Int
        /// Refused attempts in the window by the same actors (data did not leave).
        public var refusedAttempts: Int
        public var evidenceRecords: Int
        public var firstExposure: String?
        public var lastExposure: String?
        public var chainVerified: Bool
        public var chainProblem: String?
        /// Every exposure was of data encrypted to a key that is not known to be compromised (HHS guidance on
        /// rendering PHI unusable, unreadable or indecipherable): no breach of *unsecured* PHI.
        public var safeHarbor: Bool
        public var safeHarborReason: String
        /// Suspensions, alerts, revocations: what already limited the exposure.
        public var containment: [String]

        public init(
            affected: Int, elements: [String: Int], controlledSubstances: Int, recipients: [String], acquired: Int, refusedAttempts: Int,
            evidenceRecords: Int, firstExposure: String?, lastExposure: String?, chainVerified: Bool, chainProblem: String?, safeHarbor: Bool,
            safeHarborReason: String, containment: [String]
        ) {
            self.affected = affected
            self.elements = elements
            self.controlledSubstances = controlledSubstances
            self.recipients = recipients
            self.acquired = acquired
            self.refusedAttempts = refusedAttempts
            self.evidenceRecords = evidenceRecords
            self.firstExposure = firstExposure
            self.lastExposure = lastExposure
            self.chainVerified = chainVerified
            self.chainProblem = chainProblem
            self.safeHarbor = safeHarbor
            self.safeHarborReason = safeHarborReason
            self.containment = containment
        }
    }

    /// A person's judgement on one question.
    public struct Judgement: Sendable, Codable, Equatable {
        public var text: String
        public var by: String
        public var at: String
        public init(text: String, by: String, at: String) {
            self.text = text
            self.by = by
            self.at = at
        }
    }

    /// The questions a person answers: the four factors and the three exceptions.
    public enum Question: String, CaseIterable, Sendable, Codable {
        case nature = "factor-1-nature"
        case recipient = "factor-2-recipient"
        case acquired = "factor-3-acquired"
        case mitigation = "factor-4-mitigation"
        case exceptionWorkforce = "exception-1-workforce"
        case exceptionInadvertent = "exception-2-inadvertent"
        case exceptionCannotRetain = "exception-3-cannot-retain"

        public var prompt: String {
            switch self {
            case .nature: "Factor 1 — the nature and extent of the PHI involved, including the types of identifiers and the likelihood of re-identification"
            case .recipient: "Factor 2 — the unauthorized person who used the PHI or to whom the disclosure was made"
            case .acquired: "Factor 3 — whether the PHI was actually acquired or viewed"
            case .mitigation: "Factor 4 — the extent to which the risk to the PHI has been mitigated"
            case .exceptionWorkforce: "Exception (i) — unintentional acquisition, access or use by a workforce member or person acting under the pharmacy's authority, in good faith and within the scope of authority, not further used or disclosed"
            case .exceptionInadvertent: "Exception (ii) — inadvertent disclosure by a person authorized to access PHI to another person authorized at the same covered entity, business associate or organized health care arrangement, not further used or disclosed"
            case .exceptionCannotRetain: "Exception (iii) — a good-faith belief that the unauthorized recipient would not reasonably have been able to retain the information"
            }
        }
    }

    /// The result of the assessment.
    public enum Conclusion: String, Sendable, Codable {
        /// Presumed (164.402(2)) or concluded: notices are due.
        case breach
        /// The four-factor assessment demonstrates a low probability that the PHI has been compromised.
        case lowProbability = "low-probability"
        /// A statutory exception applies.
        case exception
        /// Only secured (encrypted, key not compromised) PHI was involved.
        case notUnsecured = "not-unsecured"
        /// Nobody's data left through what is known of the incident.
        case noneAffected = "none-affected"
    }

    public var facts: Facts
    public var judgements: [String: Judgement]
    /// The person's conclusion, if one was recorded (`breach`, `low-probability` or `exception`), and its reasoning.
    public var concluded: Conclusion?
    public var reasoning: Judgement?

    public init(facts: Facts, judgements: [String: Judgement] = [:], concluded: Conclusion? = nil, reasoning: Judgement? = nil) {
        self.facts = facts
        self.judgements = judgements
        self.concluded = concluded
        self.reasoning = reasoning
    }

    /// The result and why: safe harbor first (a computed fact), then a recorded conclusion, else the presumption.
    public var result: (conclusion: Conclusion, why: String) {
        if facts.affected == 0 {
            return (.noneAffected, "The audit log shows no patient's data leaving through what is known of this incident (\(facts.refusedAttempts) refused attempt(s))")
        }
        if facts.safeHarbor { return (.notUnsecured, "Not a breach of unsecured PHI: \(facts.safeHarborReason)") }
        if let concluded, let reasoning {
            switch concluded {
            case .lowProbability: return (.lowProbability, "Low probability of compromise, per the four-factor assessment by \(reasoning.by): \(reasoning.text)")
            case .exception: return (.exception, "A statutory exception applies, per \(reasoning.by): \(reasoning.text)")
            case .breach: return (.breach, "Breach, per the assessment by \(reasoning.by): \(reasoning.text)")
            case .notUnsecured, .noneAffected: break
            }
        }
        return (.breach, "Presumed a breach (45 CFR 164.402(2)) until a documented four-factor assessment demonstrates a low probability of compromise")
    }

    /// Whether notices are due.
    public var notify: Bool { result.conclusion == .breach }

    /// The computed text for each factor, shown next to the person's judgement.
    public var computed: [Question: String] {
        let elements = facts.elements.sorted { $0.value > $1.value }.map { "\($0.key) (\($0.value))" }.joined(separator: ", ")
        return [
            .nature: "\(facts.affected) individual(s); data elements: \(elements.isEmpty ? "none" : elements)"
                + (facts.controlledSubstances > 0 ? "; \(facts.controlledSubstances) with controlled-substance prescriptions" : ""),
            .recipient: facts.recipients.isEmpty ? "no recipient identified" : "data left through: " + facts.recipients.joined(separator: "; "),
            .acquired: "The audit log shows data of \(facts.acquired) individual(s) returned in \(facts.evidenceRecords) record(s)"
                + (facts.firstExposure.map { " between \($0) and \(facts.lastExposure ?? $0)" } ?? "")
                + "; \(facts.refusedAttempts) attempt(s) refused (no data left)."
                + (facts.chainVerified ? " Audit chain verified." : " AUDIT CHAIN NOT VERIFIED: \(facts.chainProblem ?? "")"),
            .mitigation: facts.containment.isEmpty ? "nothing recorded" : facts.containment.joined(separator: "; "),
        ]
    }
}
