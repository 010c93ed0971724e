import SafeRxModel
import SafeRxPolicy

/// A parsed FHIR search, checked against the parameters SafeRx supports (strict handling: unknown → 400).
public struct SearchQuery: Sendable {
    public enum Comparison: String, Sendable {
        case eq, ne, gt, lt, ge, le, sa, eb, ap
    }

    public enum Filter: Sendable {
        case ids([String])
        case lastUpdated(Comparison, String)
        /// Any of `values` under `parameter` in the search index (sensitive values blinded by the store).
        case terms(parameter: String, values: [String], sensitive: Bool)
        case dateRange(parameter: String, Comparison, String)
        /// AuditEvent only.
        case auditPatient([String])
        case auditDate(Comparison, String)
        /// An AuditEvent token (`action`, `outcome`, `agent`): any of `values` in that field of the record.
        case auditField(parameter: String, values: [String])
    }

    public var type: ResourceType
    public var filters: [Filter] = []
    public var count: Int = 20
    public var offset: Int = 0
    public var includes: [IncludePath] = []
    public var revincludes: [IncludePath] = []
    /// The parameters as given, minus paging, for self/next links (client input: never logged).
    public var linkParameters: [(String, String)] = []
    /// Parameter names only, for the audit record.
    public var parameterNames: [String] = []

    public static let maxCount = 100
    /// Binary searches decrypt whole files (up to 5 MB each): a page holds at most this many.
    public static let maxBinaryCount = 5
    static let resultParameters: Set<String> = ["_count", "_offset", "_include", "_revinclude", "_format", "_total"]

    /// Parses query items for a search on `type` by a caller with `scope`.
    public static func parse(
        _ type: ResourceType, _ items: [(String, String)], scope: AccessScope
    ) throws(FHIRError) -> SearchQuery {
        var q = SearchQuery(type: type)
        if type == .binary { q.count = min(q.count, maxBinaryCount) }
        let params = SearchParameter.all(for: type)
        let isStaff = scope.role == .pharmacist || scope.role == .technician || scope.role == .support
        for (rawName, rawValue) in items {
            guard rawName.count <= 64, rawValue.utf8.count <= 1024 else {
                throw .invalid("Search parameter too long")
            }
            let parts = rawName.split(separator: ":", maxSplits: 1).map(String.init)
            let name = parts.first ?? ""
            let modifier = parts.count > 1 ? parts[1] : nil
            q.parameterNames.append(rawName)
            if !["_count", "_offset"].contains(name) { q.linkParameters.append((rawName, rawValue)) }
            guard !rawValue.isEmpty else { throw .invalid("Search parameter '\(clip(rawName))' has an empty value") }
            switch name {
            case "_count":
                guard modifier == nil, let n = Int(rawValue), n >= 0 else {
                    throw .invalid("_count must be a non-negative integer")
                }
                q.count = min(n, type == .binary ? maxBinaryCount : maxCount)
            case "_offset":
                guard modifier == nil, let n = Int(rawValue), n >= 0, n <= 1_000_000 else {
                    throw .invalid("_offset must be a non-negative integer")
                }
                q.offset = n
            case "_format":
                guard ["json", "application/fhir+json", "application/json"].contains(rawValue) else {
                    throw .notSupported("_format '\(clip(rawValue))' is not supported; SafeRx serves application/fhir+json")
                }
            case "_total":
                guard ["accurate", "estimate", "none"].contains(rawValue) else { throw .invalid("_total must be none, estimate or accurate") }
            case "_include", "_revinclude":
                if case .consented = scope.rows { throw .forbidden("\(name) is not available under a patient authorization") }
                let table = name == "_include" ? IncludePath.includes : IncludePath.revincludes
                guard modifier == nil || modifier == "iterate" else { throw .invalid("\(name) does not support ':\(clip(modifier!))'") }
                guard let path = table[rawValue] else {
                    throw .notSupported("\(name)=\(clip(rawValue)) is not supported; supported: \(table.keys.sorted().joined(separator: ", "))")
                }
                try checkVisible(path.parameter, type: path.source, scope: scope)
                if name == "_include" {
                    guard path.source == type else {
                        throw .invalid("_include=\(rawValue) does not start from \(type.rawValue)")
                    }
                    q.includes.append(path)
                } else {
                    guard path.target == type else {
                        throw .invalid("_revinclude=\(rawValue) does not point at \(type.rawValue)")
                    }
                    q.revincludes.append(path)
                }
            case "_id":
                guard modifier == nil else { throw .invalid("_id does not support modifiers") }
                let ids = rawValue.split(separator: ",").map(String.init)
                for id in ids where !FHIRID.isValid(id) { throw .invalid("_id '\(clip(id))' is not a valid id") }
                q.filters.append(type == .auditEvent ? .ids(ids) : .ids(ids))
            case "_lastUpdated":
                if case .consented = scope.rows { throw .forbidden("_lastUpdated is not available under a patient authorization") }
                let (cmp, value) = try date(rawValue, name: name)
                q.filters.append(type == .auditEvent ? .auditDate(cmp, value) : .lastUpdated(cmp, value))
            default:
                guard let p = params[name] else {
                    let known = (["_id", "_lastUpdated", "_count", "_include", "_revinclude"] + params.keys.sorted())
                    throw .invalid(
                        "Unknown search parameter '\(clip(name))' for \(type.rawValue). Supported: \(known.joined(separator: ", "))")
                }
                if p.staffOnly && !isStaff {
                    throw .forbidden("Search by '\(name)' is limited to pharmacy staff")
                }
                try checkVisible(name, type: type, scope: scope)
                try q.filters.append(filter(for: p, type: type, modifier: modifier, value: rawValue))
            }
        }
        return q
    }

    /// Refuses a parameter over an element the scope's purpose (or a business line's authorization) does not show.
    static func checkVisible(_ name: String, type: ResourceType, scope: AccessScope) throws(FHIRError) {
        if case .consented = scope.rows {
            throw .forbidden("Search by '\(clip(name))' is not available under a patient authorization; list or read by id")
        }
        guard let visible = scope.visibleElements(of: type) else { return }
        guard let element = SearchParameter.element(of: name, in: type) else {
            throw .forbidden("Search by '\(clip(name))' is not available under purpose of use \(scope.purpose.rawValue)")
        }
        guard visible.contains(element) else {
            throw .forbidden(
                "Search by '\(clip(name))' needs \(type.rawValue).\(element), which purpose of use \(scope.purpose.rawValue) may not see")
        }
    }

    static func filter(for p: SearchParameter, type: ResourceType, modifier: String?, value: String) throws(FHIRError) -> Filter {
        let values = value.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard values.allSatisfy({ !$0.isEmpty }), values.count <= 50 else {
            throw .invalid("Parameter '\(p.name)' has an empty or too long list of values")
        }
        switch p.kind {
        case .token:
            guard modifier == nil else { throw .invalid("Parameter '\(p.name)' does not support ':\(clip(modifier!))'") }
            let normalized = values.map { $0.hasPrefix("|") ? String($0.dropFirst()) : $0 }.map { p.name == "tracking" ? $0.uppercased() : $0 }
            if type == .auditEvent { return .auditField(parameter: p.name, values: normalized) }
            return .terms(parameter: p.name, values: normalized, sensitive: p.sensitive)
        case .reference(let target):
            guard modifier == nil || modifier == target.rawValue else {
                throw .invalid("Parameter '\(p.name)' does not support ':\(clip(modifier!))'")
            }
            var refs: [String] = []
            for v in values {
                if let r = Reference(v) {
                    guard r.type == target else { throw .invalid("Parameter '\(p.name)' refers to \(target.rawValue), not \(r.type.rawValue)") }
                    refs.append(r.description)
                } else if FHIRID.isValid(v) {
                    refs.append("\(target.rawValue)/\(v)")
                } else {
                    throw .invalid("Parameter '\(p.name)' must be a reference '\(target.rawValue)/id' or an id")
                }
            }
            if type == .auditEvent { return .auditPatient(refs.map { String($0.split(separator: "/")[1]) }) }
            return .terms(parameter: p.name, values: refs, sensitive: false)
        case .string:
            let exact: Bool
            switch modifier {
            case nil: exact = false
            case "exact": exact = true
            default: throw .invalid("Parameter '\(p.name)' supports only ':exact'")
            }
            var words: [String] = []
            for v in values {
                guard let w = ResourceIndexer.normalizedWord(v) else { throw .invalid("Parameter '\(p.name)' needs letters or digits") }
                guard w.count >= ResourceIndexer.minimumPrefix else {
                    throw .invalid("Parameter '\(p.name)' needs at least \(ResourceIndexer.minimumPrefix) characters")
                }
                words.append(exact ? w : String(w.prefix(24)))
            }
            return .terms(parameter: exact ? "\(p.name):exact" : p.name, values: words, sensitive: p.sensitive)
        case .contact(let system):
            guard modifier == nil else { throw .invalid("Parameter '\(p.name)' does not support ':\(clip(modifier!))'") }
            var normalized: [String] = []
            for v in values {
                let n = system.map { ResourceIndexer.normalizedContact($0, v) }
                    ?? (ResourceIndexer.normalizedContact(v.contains("@") ? "email" : "phone", v))
                guard let n else {
                    throw .invalid("Parameter '\(p.name)' must be \(system == "email" ? "an e-mail address" : system == "phone" ? "a phone number" : "an e-mail address or a phone number")")
                }
                normalized.append(n)
            }
            return .terms(parameter: p.name, values: normalized, sensitive: p.sensitive)
        case .date(let rangeable):
            guard modifier == nil else { throw .invalid("Parameter '\(p.name)' does not support modifiers") }
            guard values.count == 1 else { throw .invalid("Parameter '\(p.name)' takes one date; repeat the parameter for a range") }
            let (cmp, d) = try date(value, name: p.name)
            if type == .auditEvent { return .auditDate(cmp, d) }
            if !rangeable {
                guard cmp == .eq else { throw .notSupported("Parameter '\(p.name)' supports equality only (it is stored blinded)") }
                guard FHIRDate.isValidDate(d) else { throw .invalid("Parameter '\(p.name)' must be a date YYYY, YYYY-MM or YYYY-MM-DD") }
                return .terms(parameter: p.name, values: [d], sensitive: p.sensitive)
            }
            return .dateRange(parameter: p.name, cmp, d)
        }
    }

    static func date(_ raw: String, name: String) throws(FHIRError) -> (Comparison, String) {
        var cmp = Comparison.eq
        var v = Substring(raw)
        if raw.count > 2, let c = Comparison(rawValue: String(raw.prefix(2))) {
            cmp = c
            v = raw.dropFirst(2)
        }
        guard [.eq, .gt, .lt, .ge, .le].contains(cmp) else { throw .notSupported("Date prefix '\(cmp.rawValue)' is not supported on '\(name)'") }
        guard FHIRDate.isValidDateTime(String(v)) else {
            throw .invalid("Parameter '\(name)' must be a date or dateTime with an optional prefix eq, gt, lt, ge, le")
        }
        return (cmp, String(v))
    }

    static func clip(_ s: String) -> String { s.count > 40 ? String(s.prefix(40)) + "…" : s }
}
