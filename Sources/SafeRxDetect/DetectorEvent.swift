import SafeRxAudit

/// One audit record as the detector sees it: who did what to which patients, when and from where, with the source
/// address and user agent as blind tokens (never in clear), so that history can be replayed without any key.
public struct DetectorEvent: Sendable, Hashable {
    public var seq: Int64
    /// Milliseconds since 1970 (UTC), from the record's timestamp.
    public var time: Int64
    public var tenant: String
    public var actor: String
    public var role: String
    /// For patient and caregiver tokens: the patient the token acts for.
    public var actorPatient: String?
    public var action: String
    public var attempted: String?
    public var resourceType: String?
    public var resourceID: String?
    public var outcome: String
    public var result: AuditResult
    public var purpose: String
    public var patients: [String]
    /// For answers that mixed resource types (`_include`): the patients named through each type.
    public var typePatients: [String: [String]]?
    /// Blind token of the source address (`sourceToken` in the record).
    public var source: String
    /// Blind token of the user agent (`agentToken`), empty in records written before it existed.
    public var agent: String

    public init(
        seq: Int64, time: Int64, tenant: String, actor: String, role: String, actorPatient: String? = nil, action: String,
        attempted: String? = nil, resourceType: String? = nil, resourceID: String? = nil, outcome: String, result: AuditResult, purpose: String = "",
        patients: [String] = [], typePatients: [String: [String]]? = nil, source: String = "", agent: String = ""
    ) {
        self.typePatients = typePatients
        self.seq = seq
        self.time = time
        self.tenant = tenant
        self.actor = actor
        self.role = role
        self.actorPatient = actorPatient
        self.action = action
        self.attempted = attempted
        self.resourceType = resourceType
        self.resourceID = resourceID
        self.outcome = outcome
        self.result = result
        self.purpose = purpose
        self.patients = patients
        self.source = source
        self.agent = agent
    }

    /// The event of a record; `source` and `agent` are the record's blind tokens (computed by `cipher` when the
    /// record is still in memory with its clear fields).
    public init(_ r: AuditRecord, cipher: AuditFieldCipher?) {
        let e = r.entry
        self.init(
            seq: r.seq, time: Self.milliseconds(r.time) ?? 0, tenant: e.actor.tenant, actor: e.actor.id, role: e.actor.role,
            actorPatient: e.actor.patient, action: e.action, attempted: e.attempted, resourceType: e.resourceType, resourceID: e.resourceID, outcome: e.outcome,
            result: e.result, purpose: e.purpose, patients: e.patients, typePatients: e.typePatients,
            source: r.sourceToken ?? cipher?.sourceToken(e.sourceIP) ?? e.sourceIP,
            agent: r.agentToken ?? cipher?.agentToken(e.userAgent) ?? "")
    }

    /// Whether the request succeeded.
    public var succeeded: Bool { outcome == "success" }

    /// `YYYY-MM-DDThh:mm:ss.sssZ` → milliseconds since 1970, without Foundation's date parsing (replay speed).
    public static func milliseconds(_ s: String) -> Int64? {
        let b = Array(s.utf8)
        guard b.count >= 20, b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x54, b[13] == 0x3A, b[16] == 0x3A else { return nil }
        func num(_ from: Int, _ count: Int) -> Int64? {
            var v: Int64 = 0
            for i in from..<(from + count) {
                let d = b[i]
                guard d >= 0x30, d <= 0x39 else { return nil }
                v = v * 10 + Int64(d - 0x30)
            }
            return v
        }
        guard let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2), let sec = num(17, 2),
            (1...12).contains(mo), (1...31).contains(d)
        else { return nil }
        var ms: Int64 = 0
        if b.count >= 24, b[19] == 0x2E, let f = num(20, 3) { ms = f }
        return (daysFromCivil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec) * 1000 + ms
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(_ year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
