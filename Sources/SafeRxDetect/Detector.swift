import SafeRxAudit
/// What the detector needs to know beyond the audit record.
public protocol DetectionContext {
    /// Whether a patient id is a honeytoken (a canary record nobody has a reason to open).
    func isHoneytoken(_ patient: String) -> Bool
    /// Whether `client` holds an authorization (Consent) of `patient` for `purpose`, at `time` (ms since 1970).
    func hasAuthorization(tenant: String, client: String, patient: String, purpose: String, at time: Int64) -> Bool
}

/// A rule's verdict on an event: a new alert, or more evidence for one still open.
public struct Finding: Sendable, Hashable {
    public var rule: String
    public var severity: DetectionRules.Severity
    public var contain: Bool
    public var tenant: String
    /// The actor's id, or `source:<blind token>` for rules counted per source address.
    public var actor: String
    public var role: String
    public var summary: String
    /// Audit sequence numbers of the records that are the evidence.
    public var seqs: [Int64]
    /// The patients whose data those records name.
    public var patients: [String]
    /// The seq of the record that triggered this finding (its append time gives the lag).
    public var triggeredBy: Int64
    /// True when it adds to an alert already open for the same rule and actor.
    public var isUpdate: Bool
    /// The triggering request was refused before its data left (it would have crossed a containing rule).
    public var blocked: Bool = false
    /// `rule|actor`: one open alert per rule and actor.
    public var key: String { "\(rule)|\(actor)" }
}

/// The streaming detector: every audit record goes through `consume` in order, and the rules' state (sliding windows
/// of distinct patients, denial counts, known sources, daily volumes) is kept in memory, per actor and rule.
///
/// Not thread-safe: the store feeds it inside its (serialized) write transactions. Events may arrive slightly out of
/// order (records written by another process are read back later); windows expire against the newest time seen.
public final class Detector {
    public let rules: DetectionRules
    public private(set) var processed: Int = 0
    /// The newest record time seen (ms).
    public private(set) var now: Int64 = 0
    /// Per rule (in file order), the highest value its measure reached for any one actor (distinct patients in a
    /// window, refusals in a window, patients in one export), and who reached it: what calibrates the thresholds
    /// (`saferx simulate workday` reports it).
    public private(set) var peaks: [Peak]

    /// The highest value a rule's measure reached.
    public struct Peak: Sendable, Equatable {
        public var rule: String
        public var value: Int = 0
        public var actor: String = ""
        public var role: String = ""
        /// Record time (ms since 1970) when it was reached.
        public var time: Int64 = 0
    }

    func peak(_ i: Int, _ value: Int, _ who: String, _ e: DetectorEvent) {
        if value > peaks[i].value { peaks[i] = Peak(rule: peaks[i].rule, value: value, actor: who, role: e.role, time: e.time) }
    }

    /// One actor's (or, for rules counted per source, one source address's) state, indexed by rule.
    final class Subject {
        var windows: [PatientWindow?]
        var counts: [CountWindow?]
        var days: [DailyVolume?]
        /// An alert of this rule is open (not acknowledged): later events add evidence instead of new alerts.
        var open: [Bool]
        /// Suspended by a containing rule: every further read that has not been answered is refused.
        var contained = false
        var known: KnownSources?
        var watch: (start: Int64, window: PatientWindow)?

        init(rules: Int) {
            windows = Array(repeating: nil, count: rules)
            counts = Array(repeating: nil, count: rules)
            days = Array(repeating: nil, count: rules)
            open = Array(repeating: false, count: rules)
        }
    }

    var subjects: [String: Subject] = [:]
    /// The current event's role bit (set by `consume`).
    var roleBit: UInt32 = 0
    let ruleIndex: [String: Int]
    let containing: [Int]
    /// Actions outside `touchActions` that some rule counts (`"actions"` of a distinct-patients rule).
    let countedOnly: Set<String>
    /// Role → bit, and per rule the bits of the roles it watches (all bits when it names none): one dictionary
    /// lookup per event instead of a set lookup per rule.
    let roleBits: [String: UInt32]
    let ruleRoles: [UInt32]

    public init(rules: DetectionRules) {
        self.rules = rules
        self.ruleIndex = Dictionary(uniqueKeysWithValues: rules.rules.enumerated().map { ($1.id, $0) })
        self.peaks = rules.rules.map { Peak(rule: $0.id) }
        self.containing = rules.rules.indices.filter { rules.rules[$0].contain }
        self.countedOnly = Set(rules.rules.flatMap { rule -> Set<String> in
            if case .distinctPatients(_, _, _, _, _, let actions?) = rule.kind { return actions }
            return []
        }).subtracting(rules.touchActions)
        let bits = Dictionary(uniqueKeysWithValues: DetectionRules.knownRoles.sorted().enumerated().map { ($1, UInt32(1) << UInt32($0)) })
        self.roleBits = bits
        self.ruleRoles = rules.rules.map { rule in
            let roles: Set<String>?
            switch rule.kind {
            case .honeytoken, .export: roles = nil
            case .distinctPatients(let r, _, _, _, _, _), .volumeBaseline(let r, _, _, _, _), .newSourceBulk(let r, _, _), .unconsentedRelease(let r): roles = r
            case .denials(_, let r, _, _): roles = r
            }
            return roles.map { $0.reduce(UInt32(0)) { $0 | (bits[$1] ?? 0) } } ?? UInt32.max
        }
    }

    func subject(_ who: String) -> Subject {
        if let s = subjects[who] { return s }
        let s = Subject(rules: rules.rules.count)
        subjects[who] = s
        return s
    }

    /// Marks alerts (`rule|actor`) as open (at start, from the store) so that they are not raised twice.
    public func markOpen(_ keys: some Sequence<String>) {
        for key in keys { setOpen(key, true) }
    }

    /// An acknowledged alert: the next breach of the same rule by the same actor raises a new one.
    public func close(_ key: String) { setOpen(key, false) }

    func setOpen(_ key: String, _ value: Bool) {
        guard let bar = key.firstIndex(of: "|"), let i = ruleIndex[String(key[..<bar])] else { return }
        subject(String(key[key.index(after: bar)...])).open[i] = value
    }

    /// A reinstated actor starts afresh: no open alert blocks it, and its windows are empty.
    public func forget(actor: String) { subjects[actor] = nil }

    /// After replaying history at start: no alert is open but those the store says are, and the actors it says are
    /// suspended stay contained.
    public func restore(open keys: some Sequence<String>, contained actors: some Sequence<String>) {
        for s in subjects.values {
            for i in s.open.indices { s.open[i] = false }
            s.contained = false
        }
        markOpen(keys)
        for a in actors { subject(a).contained = true }
    }

    /// Whether an alert of `rule` is open for `who`.
    public func isOpen(rule: String, actor who: String) -> Bool {
        guard let i = ruleIndex[rule], let s = subjects[who] else { return false }
        return s.open[i]
    }

    /// Feeds one event; returns the findings it causes.
    ///
    /// With `blockable` (a read whose answer has not been sent yet), an event that would breach a containing rule —
    /// open a honeytoken, or take an actor past a distinct-patient limit — is refused instead: the findings say
    /// `blocked`, `refused` is true, and the event is counted as the denial it becomes (no patients), so that the
    /// alert lists exactly the patients whose data left before the cut.
    public func consume(_ e: DetectorEvent, context: some DetectionContext, blockable: Bool = false) -> (findings: [Finding], refused: Bool) {
        processed += 1
        if e.time > now { now = e.time }
        roleBit = roleBits[e.role] ?? 0
        let actor = subject(e.actor)
        if blockable, Self.containable(e) {
            let blocking = blockingFindings(e, actor, context: context)
            if !blocking.isEmpty {
                for f in blocking { if let i = ruleIndex[f.rule] { actor.open[i] = true } }
                actor.contained = true
                var denied = e
                denied.outcome = "denied"
                denied.result = .unauthenticated
                denied.attempted = e.action
                denied.action = "denied"
                denied.patients = []
                return (blocking + evaluate(denied, actor, context: context), true)
            }
        }
        let found = evaluate(e, actor, context: context)
        if Self.containable(e), found.contains(where: { $0.contain && !$0.isUpdate && $0.actor == e.actor }) { actor.contained = true }
        return (found, false)
    }

    /// Whether an actor can be suspended (a person or client with tokens; not system jobs or unattributed requests).
    public static func containable(_ e: DetectorEvent) -> Bool {
        e.actor != "unknown" && e.actor != "system" && e.role != "system" && e.role != "anonymous"
    }

    /// The patients an event names through resources of `types` (all, when `nil`): per type when the answer mixed
    /// types (an `_include` of Patient in a dispense search counts as Patient).
    func patients(_ e: DetectorEvent, types: Set<String>?) -> [String] {
        guard let types else { return e.patients }
        if let byType = e.typePatients {
            var out = Set<String>()
            for (t, ps) in byType where types.contains(t) { out.formUnion(ps) }
            return out.sorted()
        }
        guard let t = e.resourceType, types.contains(t) else { return [] }
        return e.patients
    }

    /// The containing rules this event would breach, evaluated without changing any state.
    func blockingFindings(_ e: DetectorEvent, _ actor: Subject, context: some DetectionContext) -> [Finding] {
        guard e.succeeded, !e.patients.isEmpty else { return [] }
        let touching = rules.touchActions.contains(e.action)
        guard touching || countedOnly.contains(e.action) else { return [] }
        var out: [Finding] = []
        if actor.contained, let i = actor.open.indices.first(where: { actor.open[$0] && rules.rules[$0].contain }) ?? containing.first {
            // Already cut off (a request in flight when the suspension was written): refused like the rest.
            var f = finding(rules.rules[i], e, actor: e.actor, open: true, seqs: [e.seq], patients: []) { "" }
            f.blocked = true
            return [f]
        }
        for i in containing {
            let rule = rules.rules[i]
            if !touching, !rule.counts(e.action, touchActions: rules.touchActions) { continue }
            switch rule.kind {
            case .honeytoken(let ignore, let ignoreTypes):
                if ignore.contains(where: { $0.role == e.role && $0.action == e.action }) { continue }
                if let t = e.resourceType, ignoreTypes.contains(t) { continue }
                guard e.patients.contains(where: { context.isHoneytoken($0) }) else { continue }
                let canaries = e.patients.filter { context.isHoneytoken($0) }
                var f = finding(rule, e, actor: e.actor, open: actor.open[i], seqs: [e.seq], patients: canaries) {
                    "\(e.role) \(e.actor) tried to open \(canaries.count) honeytoken patient(s) (\(e.action)\(e.resourceType.map { " \($0)" } ?? "")); the request was refused"
                }
                f.blocked = true
                out.append(f)
            case .distinctPatients(_, let types, let window, let threshold, let othersOnly, _):
                guard rule.counts(e.action, touchActions: rules.touchActions), ruleRoles[i] & roleBit != 0 else { continue }
                let named = patients(e, types: types)
                let patients = othersOnly ? named.filter { $0 != e.actorPatient } : named
                guard !patients.isEmpty else { continue }
                var w = actor.windows[i] ?? PatientWindow(window: window)
                w.expire(now: max(now, e.time))
                var fresh = Set<String>()
                for p in patients where w.last[p] == nil { fresh.insert(p) }
                let after = w.distinct + fresh.count
                guard !actor.open[i], after > threshold else { continue }
                var f = finding(rule, e, actor: e.actor, open: actor.open[i], seqs: w.seqs + [e.seq], patients: w.patients) {
                    "\(e.role) \(e.actor) had touched \(w.distinct) distinct \(othersOnly ? "other " : "")patients within \(Self.describe(window)); the next request (\(after)) would pass the limit of \(threshold), so it was refused"
                }
                f.blocked = true
                out.append(f)
            case .volumeBaseline(_, let window, let factor, let minimum, let dayCount):
                guard ruleRoles[i] & roleBit != 0, !actor.open[i] else { continue }
                var w = actor.windows[i] ?? PatientWindow(window: window)
                w.expire(now: max(now, e.time))
                var fresh = Set<String>()
                for p in e.patients where w.last[p] == nil { fresh.insert(p) }
                let after = w.distinct + fresh.count
                let busiest = actor.days[i]?.busiestEarlierDay(before: e.time) ?? 0
                let limit = max(minimum, Int((Double(busiest) * factor).rounded(.up)))
                guard after > limit else { continue }
                var f = finding(rule, e, actor: e.actor, open: false, seqs: w.seqs + [e.seq], patients: w.patients) {
                    "\(e.role) \(e.actor) had touched \(w.distinct) distinct patients within \(Self.describe(window)); the next request (\(after)) would pass \(limit) (\(factor)× its busiest day of the last \(dayCount), at least \(minimum)), so it was refused"
                }
                f.blocked = true
                out.append(f)
            case .unconsentedRelease:
                guard ruleRoles[i] & roleBit != 0 else { continue }
                let missing = e.patients.filter {
                    !context.hasAuthorization(tenant: e.tenant, client: e.actor, patient: $0, purpose: e.purpose, at: e.time)
                }
                guard !missing.isEmpty else { continue }
                var f = finding(rule, e, actor: e.actor, open: actor.open[i], seqs: [e.seq], patients: []) {
                    "\(e.role) \(e.actor) was about to receive data of \(missing.count) patient(s) with no authorization on record for purpose \(e.purpose); the request was refused"
                }
                f.blocked = true
                out.append(f)
            default:
                continue
            }
        }
        return out
    }

    func evaluate(_ e: DetectorEvent, _ actor: Subject, context: some DetectionContext) -> [Finding] {
        var out: [Finding] = []
        let touching = e.succeeded && !e.patients.isEmpty && rules.touchActions.contains(e.action)
        let canaryTouch = touching || (e.succeeded && !e.patients.isEmpty && countedOnly.contains(e.action))
        for (i, rule) in rules.rules.enumerated() {
            switch rule.kind {
            case .honeytoken(let ignore, let ignoreTypes):
                // Data of a canary touched, or a refused attempt at a canary's record (someone knows its id).
                let attempt = e.action == "denied" && e.resourceType == "Patient" && e.resourceID.map { context.isHoneytoken($0) } == true
                guard canaryTouch || attempt else { continue }
                if ignore.contains(where: { $0.role == e.role && $0.action == e.action }) { continue }
                if let t = e.resourceType, ignoreTypes.contains(t) { continue }
                var canaries = canaryTouch && e.patients.contains(where: { context.isHoneytoken($0) }) ? e.patients.filter { context.isHoneytoken($0) } : []
                if attempt, let id = e.resourceID, !canaries.contains(id) { canaries.append(id) }
                guard !canaries.isEmpty else { continue }
                out.append(finding(rule, e, actor: e.actor, open: actor.open[i], seqs: [e.seq], patients: canaries) {
                    "\(e.role) \(e.actor) \(e.succeeded ? "opened" : "tried to open") \(canaries.count) honeytoken patient(s) (\(e.action)\(e.resourceType.map { " \($0)" } ?? ""))"
                })
                actor.open[i] = true

            case .distinctPatients(_, let types, let window, let threshold, let othersOnly, _):
                guard e.succeeded, !e.patients.isEmpty, rule.counts(e.action, touchActions: rules.touchActions), ruleRoles[i] & roleBit != 0 else { continue }
                let named = patients(e, types: types)
                let patients = othersOnly ? named.filter { $0 != e.actorPatient } : named
                guard !patients.isEmpty else { continue }
                if actor.windows[i] == nil { actor.windows[i] = PatientWindow(window: window) }
                actor.windows[i]!.add(patients, time: e.time, seq: e.seq)
                actor.windows[i]!.expire(now: now)
                let w = actor.windows[i]!
                peak(i, w.distinct, e.actor, e)
                if actor.open[i] {
                    out.append(finding(rule, e, actor: e.actor, open: true, seqs: [e.seq], patients: patients) { "" })
                } else if w.distinct > threshold {
                    out.append(finding(rule, e, actor: e.actor, open: false, seqs: w.seqs, patients: w.patients) {
                        "\(e.role) \(e.actor) touched \(w.distinct) distinct \(othersOnly ? "other " : "")patients within \(Self.describe(window)) (limit \(threshold))"
                    })
                    actor.open[i] = true
                }

            case .volumeBaseline(_, let window, let factor, let minimum, let dayCount):
                guard touching, ruleRoles[i] & roleBit != 0 else { continue }
                if actor.days[i] == nil { actor.days[i] = DailyVolume(keep: dayCount) }
                actor.days[i]!.add(e.patients, time: e.time)
                if actor.windows[i] == nil { actor.windows[i] = PatientWindow(window: window) }
                actor.windows[i]!.add(e.patients, time: e.time, seq: e.seq)
                actor.windows[i]!.expire(now: now)
                let w = actor.windows[i]!
                peak(i, w.distinct, e.actor, e)
                let limit = max(minimum, Int((Double(actor.days[i]!.busiestEarlierDay(before: e.time)) * factor).rounded(.up)))
                if actor.open[i] {
                    out.append(finding(rule, e, actor: e.actor, open: true, seqs: [e.seq], patients: e.patients) { "" })
                } else if w.distinct > limit {
                    out.append(finding(rule, e, actor: e.actor, open: false, seqs: w.seqs, patients: w.patients) {
                        "\(e.role) \(e.actor) touched \(w.distinct) distinct patients within \(Self.describe(window)), above \(limit) (\(factor)× its busiest day of the last \(dayCount), at least \(minimum))"
                    })
                    actor.open[i] = true
                }

            case .denials(let bySource, _, let window, let threshold):
                guard !e.succeeded, [.unauthenticated, .forbidden, .notFound, .throttled].contains(e.result) else { continue }
                if ruleRoles[i] & roleBit == 0 { continue }
                let who: String
                let counted: Subject
                if bySource {
                    guard !e.source.isEmpty, e.source != "local" else { continue }
                    who = "source:\(e.source)"
                    counted = subject(who)
                } else {
                    guard e.actor != "unknown", e.role != "anonymous", e.role != "system" else { continue }
                    who = e.actor
                    counted = actor
                }
                if counted.counts[i] == nil { counted.counts[i] = CountWindow(window: window) }
                counted.counts[i]!.add(time: e.time, seq: e.seq)
                counted.counts[i]!.expire(now: now)
                let c = counted.counts[i]!
                peak(i, c.count, who, e)
                if counted.open[i] {
                    out.append(finding(rule, e, actor: who, open: true, seqs: [e.seq], patients: []) { "" })
                } else if c.count > threshold {
                    out.append(finding(rule, e, actor: who, open: false, seqs: c.seqs, patients: []) {
                        "\(c.count) refused requests within \(Self.describe(window)) from \(bySource ? "one source address" : "\(e.role) \(e.actor)") (limit \(threshold))"
                    })
                    counted.open[i] = true
                }

            case .export(let actions, let from, let to, let offset, let maxPatients):
                guard e.succeeded, actions.contains(e.action) else { continue }
                let minute = Int((((e.time / 60_000) + Int64(offset)) % 1440 + 1440) % 1440)
                let offHours = minute < from || minute >= to
                peak(i, e.patients.count, e.actor, e)
                let bulk = e.patients.count > maxPatients
                guard offHours || bulk else { continue }
                let reasons = [offHours ? "outside \(Self.clock(from))-\(Self.clock(to))" : nil, bulk ? "\(e.patients.count) patients (limit \(maxPatients))" : nil]
                    .compactMap { $0 }.joined(separator: ", ")
                out.append(finding(rule, e, actor: e.actor, open: actor.open[i], seqs: [e.seq], patients: e.patients) {
                    "\(e.action) by \(e.role) \(e.actor): \(reasons)"
                })
                actor.open[i] = true

            case .newSourceBulk(_, let window, let threshold):
                guard ruleRoles[i] & roleBit != 0 else { continue }
                if actor.known == nil { actor.known = KnownSources(firstSeen: e.time) }
                let isNew = actor.known!.learn(source: e.source, agent: e.agent)
                if let w = actor.watch, e.time - w.start > window { actor.watch = nil }
                if isNew, e.time - actor.known!.firstSeen > window, actor.watch == nil {
                    actor.watch = (e.time, PatientWindow(window: window))
                }
                guard touching, actor.watch != nil else { continue }
                if e.time - actor.watch!.start > window {
                    actor.watch = nil
                    continue
                }
                actor.watch!.window.add(e.patients, time: e.time, seq: e.seq)
                let w = actor.watch!.window
                peak(i, w.distinct, e.actor, e)
                if actor.open[i] {
                    out.append(finding(rule, e, actor: e.actor, open: true, seqs: [e.seq], patients: e.patients) { "" })
                } else if w.distinct > threshold {
                    out.append(finding(rule, e, actor: e.actor, open: false, seqs: w.seqs, patients: w.patients) {
                        "\(e.role) \(e.actor) signed in from a new address or browser and touched \(w.distinct) distinct patients within \(Self.describe(window)) (limit \(threshold))"
                    })
                    actor.open[i] = true
                }

            case .unconsentedRelease:
                guard touching, ruleRoles[i] & roleBit != 0 else { continue }
                let missing = e.patients.filter {
                    !context.hasAuthorization(tenant: e.tenant, client: e.actor, patient: $0, purpose: e.purpose, at: e.time)
                }
                guard !missing.isEmpty else { continue }
                out.append(finding(rule, e, actor: e.actor, open: actor.open[i], seqs: [e.seq], patients: missing) {
                    "\(e.role) \(e.actor) received data of \(missing.count) patient(s) with no authorization on record for purpose \(e.purpose)"
                })
                actor.open[i] = true
            }
        }
        return out
    }

    func finding(
        _ rule: DetectionRules.Rule, _ e: DetectorEvent, actor: String, open: Bool, seqs: [Int64], patients: [String], summary: () -> String
    ) -> Finding {
        Finding(
            rule: rule.id, severity: rule.severity, contain: rule.contain, tenant: e.tenant, actor: actor, role: e.role,
            summary: open ? "" : summary(), seqs: seqs, patients: patients, triggeredBy: e.seq, isUpdate: open)
    }

    static func describe(_ ms: Int64) -> String {
        if ms % 86_400_000 == 0 { return "\(ms / 86_400_000) d" }
        if ms % 3_600_000 == 0 { return "\(ms / 3_600_000) h" }
        if ms % 60_000 == 0 { return "\(ms / 60_000) min" }
        return "\(ms / 1000) s"
    }

    static func clock(_ minute: Int) -> String {
        let h = minute / 60, m = minute % 60
        return (h < 10 ? "0" : "") + "\(h):" + (m < 10 ? "0" : "") + "\(m)"
    }
}

/// Distinct patients seen within a sliding window, with the records that named them.
struct PatientWindow {
    let window: Int64
    /// patient → the newest time it was seen.
    var last: [String: Int64] = [:]
    var queue: [(time: Int64, patient: String)] = []
    var head = 0
    var records: [(time: Int64, seq: Int64)] = []
    var recordHead = 0

    init(window: Int64) { self.window = window }

    var distinct: Int { last.count }
    var patients: [String] { last.keys.sorted() }
    var seqs: [Int64] { records[recordHead...].map(\.seq) }

    mutating func add(_ patients: [String], time: Int64, seq: Int64) {
        for p in patients {
            last[p] = max(time, last[p] ?? time)
            queue.append((time, p))
        }
        records.append((time, seq))
    }

    mutating func expire(now: Int64) {
        let cutoff = now - window
        while head < queue.count, queue[head].time <= cutoff {
            let (t, p) = queue[head]
            if last[p] == t { last[p] = nil }
            head += 1
        }
        while recordHead < records.count, records[recordHead].time <= cutoff { recordHead += 1 }
        if head > 4096, head * 2 > queue.count {
            queue.removeFirst(head)
            head = 0
        }
        if recordHead > 4096, recordHead * 2 > records.count {
            records.removeFirst(recordHead)
            recordHead = 0
        }
    }
}

/// Events counted within a sliding window.
struct CountWindow {
    let window: Int64
    var events: [(time: Int64, seq: Int64)] = []
    var head = 0

    init(window: Int64) { self.window = window }

    var count: Int { events.count - head }
    var seqs: [Int64] { events[head...].map(\.seq) }

    mutating func add(time: Int64, seq: Int64) { events.append((time, seq)) }

    mutating func expire(now: Int64) {
        let cutoff = now - window
        while head < events.count, events[head].time <= cutoff { head += 1 }
        if head > 1024, head * 2 > events.count {
            events.removeFirst(head)
            head = 0
        }
    }
}

/// Distinct patients per UTC day, for the last few days.
struct DailyVolume {
    let keep: Int
    var byDay: [Int64: Set<String>] = [:]

    init(keep: Int) { self.keep = keep }

    mutating func add(_ patients: [String], time: Int64) {
        let day = time / 86_400_000
        byDay[day, default: []].formUnion(patients)
        if byDay.count > keep + 1 {
            for d in byDay.keys where d < day - Int64(keep) { byDay[d] = nil }
        }
    }

    func busiestEarlierDay(before time: Int64) -> Int {
        let today = time / 86_400_000
        return byDay.filter { $0.key < today && $0.key >= today - Int64(keep) }.map(\.value.count).max() ?? 0
    }
}

/// The source addresses and user agents (blind tokens) an actor has used.
struct KnownSources {
    let firstSeen: Int64
    var sources = Set<String>()
    var agents = Set<String>()
    var lastSource = ""
    var lastAgent = ""

    init(firstSeen: Int64) { self.firstSeen = firstSeen }

    /// Records the pair; true if either was never seen for this actor.
    mutating func learn(source: String, agent: String) -> Bool {
        // Most requests come from the same address and browser as the one before.
        if source == lastSource, agent == lastAgent { return false }
        lastSource = source
        lastAgent = agent
        var new = false
        if !source.isEmpty, sources.insert(source).inserted { new = true }
        if !agent.isEmpty, agents.insert(agent).inserted { new = true }
        return new
    }
}
