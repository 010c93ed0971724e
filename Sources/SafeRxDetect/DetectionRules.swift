import Foundation
import SafeRxModel

/// The detection rules, as data: a JSON file (the bundled `Resources/detection-rules.json`, or `saferx serve --rules
/// FILE`), validated completely before the server starts. Anything unknown, missing or out of range is an error
/// naming the rule and the field: a detector that silently ignores a rule it cannot read fails open.
public struct DetectionRules: Sendable {
    public enum Severity: String, Sendable, Comparable, CaseIterable {
        case low, medium, high, critical
        var rank: Int { Self.allCases.firstIndex(of: self)! }
        public static func < (a: Self, b: Self) -> Bool { a.rank < b.rank }
    }

    /// What a rule watches.
    public enum Kind: Sendable {
        /// Any access to a honeytoken patient, except the listed (role, action) pairs (planting them) and records of
        /// the listed resource types (an audit search that names one).
        case honeytoken(ignore: [(role: String, action: String)], ignoreTypes: Set<String>)
        /// More than `threshold` distinct patients touched by one actor of `roles` within `window`, through resources
        /// of `types` (all when `nil`), by records whose action is in `actions` (the file's `touchActions` when
        /// `nil`: a rule with `"actions": ["break-glass"]` counts overrides); with `othersOnly`, patients other than
        /// the one the token acts for.
        case distinctPatients(roles: Set<String>, types: Set<String>?, window: Int64, threshold: Int, othersOnly: Bool, actions: Set<String>?)
        /// More distinct patients in the last `window` than `factor` × the actor's busiest earlier day (of the last
        /// `days`), and at least `minimum`.
        case volumeBaseline(roles: Set<String>, window: Int64, factor: Double, minimum: Int, days: Int)
        /// More than `threshold` refused requests (denied, not found, failed sign-in) within `window`, counted per actor
        /// or per source address.
        case denials(bySource: Bool, roles: Set<String>?, window: Int64, threshold: Int)
        /// An export (a file of patient data) outside the allowed hours (minutes after midnight in UTC + offset), or
        /// naming more than `maxPatients` patients.
        case export(actions: Set<String>, fromMinute: Int, toMinute: Int, utcOffsetMinutes: Int, maxPatients: Int)
        /// A staff account seen from a source address or user agent it never used before, then touching more than
        /// `threshold` distinct patients within `window` of that first request.
        case newSourceBulk(roles: Set<String>, window: Int64, threshold: Int)
        /// A business-line client receiving a patient's data without an authorization on record for it.
        case unconsentedRelease(roles: Set<String>)
    }

    public struct Rule: Sendable {
        public var id: String
        public var kind: Kind
        public var severity: Severity
        /// Suspend the actor at once (their tokens and sessions stop working before their next request).
        public var contain: Bool
        public var description: String

        /// The rule's limit in words ("50 in 10 min"), `nil` for rules without one (honeytokens, unconsented release).
        public var limit: String? {
            switch kind {
            case .distinctPatients(_, _, let window, let threshold, _, _), .newSourceBulk(_, let window, let threshold),
                .denials(_, _, let window, let threshold):
                return "\(threshold) in \(Detector.describe(window))"
            case .volumeBaseline(_, let window, let factor, let minimum, let days):
                return "\(factor)× busiest of \(days) days, ≥ \(minimum), in \(Detector.describe(window))"
            case .export(_, _, _, _, let maxPatients): return "\(maxPatients) patients per export"
            case .honeytoken, .unconsentedRelease: return nil
            }
        }

        /// The largest value of the rule's measure that raises no alert, when it is a fixed number.
        public var threshold: Int? {
            switch kind {
            case .distinctPatients(_, _, _, let t, _, _), .newSourceBulk(_, _, let t), .denials(_, _, _, let t): return t
            case .volumeBaseline(_, _, _, let minimum, _): return minimum
            case .export(_, _, _, _, let maxPatients): return maxPatients
            case .honeytoken, .unconsentedRelease: return nil
            }
        }

        /// Whether records with `action` count toward this rule: its own `actions` for a distinct-patients rule that
        /// names them, every action another rule counts for a honeytoken rule (a break-glass into a canary is
        /// caught), else the file's `touchActions`.
        @inline(__always) func counts(_ action: String, touchActions: Set<String>) -> Bool {
            switch kind {
            case .distinctPatients(_, _, _, _, _, let actions?): return actions.contains(action)
            case .honeytoken: return true
            default: return touchActions.contains(action)
            }
        }
    }

    public var rules: [Rule]
    /// The actions that count as touching a patient's data (reads and writes that return or change it).
    public var touchActions: Set<String>

    /// The rules SafeRx ships with.
    public static func bundled() throws(DetectionRulesError) -> DetectionRules {
        guard let url = Bundle.module.url(forResource: "detection-rules", withExtension: "json"), let data = try? Data(contentsOf: url) else {
            throw DetectionRulesError("the bundled detection-rules.json is missing from the build")
        }
        return try parse(data, source: "bundled detection-rules.json")
    }

    /// Reads a rules file; every error names the file, the rule and the field.
    public static func load(_ path: String) throws(DetectionRulesError) -> DetectionRules {
        guard let data = FileManager.default.contents(atPath: path) else { throw DetectionRulesError("\(path): cannot read the file") }
        return try parse(data, source: path)
    }

    public static func parse(_ data: Data, source: String) throws(DetectionRulesError) -> DetectionRules {
        let root: JSON
        do { root = try JSON.parse(data) } catch { throw DetectionRulesError("\(source): not valid JSON (\(error))") }
        guard case .object(let top) = root else { throw DetectionRulesError("\(source): the file must be a JSON object with \"rules\"") }
        for key in top.keys where !["version", "touchActions", "rules", "comment"].contains(key) {
            throw DetectionRulesError("\(source): unknown top-level field '\(key)'")
        }
        guard top["version"] == .int(1) else { throw DetectionRulesError("\(source): \"version\" must be 1") }
        let touch = try strings(top["touchActions"], "\(source): touchActions")
        guard !touch.isEmpty else { throw DetectionRulesError("\(source): touchActions must list at least one action") }
        guard let list = top["rules"]?.arrayValue, !list.isEmpty else { throw DetectionRulesError("\(source): \"rules\" must be a non-empty array") }
        var rules: [Rule] = []
        var ids = Set<String>()
        for (i, item) in list.enumerated() {
            let rule = try parseRule(item, at: "\(source): rules[\(i)]")
            guard ids.insert(rule.id).inserted else { throw DetectionRulesError("\(source): rules[\(i)]: duplicate id '\(rule.id)'") }
            rules.append(rule)
        }
        return DetectionRules(rules: rules, touchActions: Set(touch))
    }

    static let commonFields: Set<String> = ["id", "kind", "severity", "contain", "description"]

    static func parseRule(_ item: JSON, at where0: String) throws(DetectionRulesError) -> Rule {
        guard case .object(let o) = item else { throw DetectionRulesError("\(where0): a rule must be an object") }
        guard let id = o["id"]?.stringValue, id.wholeMatch(of: /[a-z0-9][a-z0-9-]{0,62}/) != nil else {
            throw DetectionRulesError("\(where0): \"id\" must be 1-63 lower-case letters, digits or '-'")
        }
        let at = "\(where0) '\(id)'"
        guard let kindName = o["kind"]?.stringValue else { throw DetectionRulesError("\(at): \"kind\" is required") }
        guard let sev = o["severity"]?.stringValue, let severity = Severity(rawValue: sev) else {
            throw DetectionRulesError("\(at): \"severity\" must be one of low, medium, high, critical")
        }
        var contain = false
        if let c = o["contain"] {
            guard case .bool(let b) = c else { throw DetectionRulesError("\(at): \"contain\" must be true or false") }
            contain = b
        }
        guard let description = o["description"]?.stringValue, !description.isEmpty else {
            throw DetectionRulesError("\(at): \"description\" is required (it is what the alert says)")
        }
        func fields(_ allowed: Set<String>) throws(DetectionRulesError) {
            for key in o.keys.sorted() where !commonFields.contains(key) && !allowed.contains(key) {
                throw DetectionRulesError("\(at): unknown field '\(key)' for kind \(kindName) (allowed: \(allowed.sorted().joined(separator: ", ")))")
            }
        }
        func int(_ key: String, min: Int, max: Int) throws(DetectionRulesError) -> Int {
            guard let v = o[key]?.intValue, v >= min, v <= max else { throw DetectionRulesError("\(at): \"\(key)\" must be a whole number from \(min) to \(max)") }
            return Int(v)
        }
        func roles() throws(DetectionRulesError) -> Set<String> {
            let r = try strings(o["roles"], "\(at): roles")
            guard !r.isEmpty else { throw DetectionRulesError("\(at): \"roles\" must name at least one role") }
            for role in r where !knownRoles.contains(role) {
                throw DetectionRulesError("\(at): unknown role '\(role)' (known: \(knownRoles.sorted().joined(separator: ", ")))")
            }
            return Set(r)
        }
        func window(_ key: String = "window") throws(DetectionRulesError) -> Int64 {
            guard let text = o[key]?.stringValue, let ms = duration(text), ms >= 1000, ms <= 31 * 86_400_000 else {
                throw DetectionRulesError("\(at): \"\(key)\" must be a duration like \"90s\", \"10m\", \"24h\" or \"7d\" (1 s to 31 days)")
            }
            return ms
        }
        let kind: Kind
        switch kindName {
        case "honeytoken":
            try fields(["ignore", "ignoreTypes"])
            var ignore: [(String, String)] = []
            for (k, pair) in (o["ignore"]?.arrayValue ?? []).enumerated() {
                guard let role = pair["role"]?.stringValue, let action = pair["action"]?.stringValue, pair.objectValue?.count == 2 else {
                    throw DetectionRulesError("\(at): ignore[\(k)] must be {\"role\": ..., \"action\": ...}")
                }
                ignore.append((role, action))
            }
            let types = try strings(o["ignoreTypes"], "\(at): ignoreTypes")
            for t in types where ResourceType(rawValue: t) == nil { throw DetectionRulesError("\(at): ignoreTypes: unknown resource type '\(t)'") }
            kind = .honeytoken(ignore: ignore, ignoreTypes: Set(types))
        case "distinct-patients":
            try fields(["roles", "types", "window", "threshold", "count", "actions"])
            let count = o["count"]?.stringValue ?? "all"
            guard count == "all" || count == "others" else { throw DetectionRulesError("\(at): \"count\" must be \"all\" or \"others\"") }
            var types: Set<String>? = nil
            if o["types"] != nil {
                let t = try strings(o["types"], "\(at): types")
                guard !t.isEmpty else { throw DetectionRulesError("\(at): \"types\" must name at least one resource type") }
                for name in t where ResourceType(rawValue: name) == nil { throw DetectionRulesError("\(at): types: unknown resource type '\(name)'") }
                types = Set(t)
            }
            var actions: Set<String>? = nil
            if o["actions"] != nil {
                let a = try strings(o["actions"], "\(at): actions")
                guard !a.isEmpty else { throw DetectionRulesError("\(at): \"actions\" must name at least one audit action") }
                actions = Set(a)
            }
            kind = .distinctPatients(
                roles: try roles(), types: types, window: try window(), threshold: try int("threshold", min: 0, max: 10_000_000),
                othersOnly: count == "others", actions: actions)
        case "volume-baseline":
            try fields(["roles", "window", "factor", "minimum", "days"])
            let factor: Double
            switch o["factor"] {
            case .int(let n)?: factor = Double(n)
            case .double(let d)?: factor = d
            default: factor = 0
            }
            guard factor >= 1, factor <= 1000 else {
                throw DetectionRulesError("\(at): \"factor\" must be a number from 1 to 1000")
            }
            kind = .volumeBaseline(
                roles: try roles(), window: try window(), factor: factor, minimum: try int("minimum", min: 1, max: 10_000_000),
                days: try int("days", min: 1, max: 31))
        case "denials":
            try fields(["by", "roles", "window", "threshold"])
            guard let by = o["by"]?.stringValue, by == "actor" || by == "source" else {
                throw DetectionRulesError("\(at): \"by\" must be \"actor\" or \"source\"")
            }
            kind = .denials(bySource: by == "source", roles: o["roles"] == nil ? nil : try roles(), window: try window(), threshold: try int("threshold", min: 1, max: 1_000_000))
        case "export":
            try fields(["actions", "hours", "utcOffset", "maxPatients"])
            let actions = try strings(o["actions"], "\(at): actions")
            guard !actions.isEmpty else { throw DetectionRulesError("\(at): \"actions\" must name at least one action") }
            guard let hours = o["hours"]?.stringValue, let m = hours.wholeMatch(of: /([0-2][0-9]):([0-5][0-9])-([0-2][0-9]):([0-5][0-9])/),
                let h1 = Int(m.1), let m1 = Int(m.2), let h2 = Int(m.3), let m2 = Int(m.4), h1 < 24, h2 <= 24, h1 * 60 + m1 < h2 * 60 + m2
            else { throw DetectionRulesError("\(at): \"hours\" must be like \"06:00-20:00\" (start before end)") }
            let offset = o["utcOffset"]?.stringValue ?? "+00:00"
            guard let om = offset.wholeMatch(of: /([+-])([01][0-9]):([0-5][0-9])/), let oh = Int(om.2), let omin = Int(om.3) else {
                throw DetectionRulesError("\(at): \"utcOffset\" must be like \"-05:00\"")
            }
            kind = .export(
                actions: Set(actions), fromMinute: h1 * 60 + m1, toMinute: h2 * 60 + m2, utcOffsetMinutes: (om.1 == "-" ? -1 : 1) * (oh * 60 + omin),
                maxPatients: try int("maxPatients", min: 1, max: 100_000_000))
        case "new-source-bulk":
            try fields(["roles", "window", "threshold"])
            kind = .newSourceBulk(roles: try roles(), window: try window(), threshold: try int("threshold", min: 1, max: 10_000_000))
        case "unconsented-release":
            try fields(["roles"])
            kind = .unconsentedRelease(roles: try roles())
        default:
            throw DetectionRulesError(
                "\(at): unknown kind '\(kindName)' (known: honeytoken, distinct-patients, volume-baseline, denials, export, new-source-bulk, unconsented-release)")
        }
        return Rule(id: id, kind: kind, severity: severity, contain: contain, description: description)
    }

    /// Roles as the audit log names them (patients acting for someone they care for are `caregiver`).
    static let knownRoles: Set<String> = [
        "patient", "caregiver", "pharmacist", "technician", "support", "partner", "business-line", "privacy-officer", "admin", "anonymous",
    ]

    static func strings(_ v: JSON?, _ at: String) throws(DetectionRulesError) -> [String] {
        guard let v else { return [] }
        guard let a = v.arrayValue else { throw DetectionRulesError("\(at) must be an array of strings") }
        var out: [String] = []
        for item in a {
            guard let s = item.stringValue, !s.isEmpty else { throw DetectionRulesError("\(at) must be an array of non-empty strings") }
            out.append(s)
        }
        return out
    }

    /// "90s", "10m", "24h", "7d" → milliseconds.
    static func duration(_ s: String) -> Int64? {
        guard let m = s.wholeMatch(of: /([0-9]{1,6})([smhd])/), let n = Int64(m.1) else { return nil }
        switch m.2 {
        case "s": return n * 1000
        case "m": return n * 60_000
        case "h": return n * 3_600_000
        default: return n * 86_400_000
        }
    }
}

/// A rules file that cannot be used; the message names the file, the rule and the field.
public struct DetectionRulesError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}
