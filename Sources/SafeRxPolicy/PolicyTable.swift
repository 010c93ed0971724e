import Foundation
import SafeRxModel

/// The access policy as data: role × purpose of use × resource type → the elements that purpose may see.
///
/// Loaded once at start from `access-policy.tsv` (bundled; `saferx serve --policy FILE` replaces it), validated
/// against the roles, purposes, resource types and elements SafeRx knows: anything unknown refuses to start.
/// ``AccessPolicy/scope(for:table:)`` applies it: a purpose the role may not act under is refused, a type the
/// purpose may not touch has no rights, and elements the purpose may not see are removed when a resource is
/// serialized.
public struct PolicyTable: Sendable {
    struct Key: Hashable {
        let role: Role
        let purpose: PurposeOfUse
    }

    /// For each (role, purpose): each resource type it may touch → visible elements (`nil`: all).
    let rules: [Key: [ResourceType: Set<String>?]]
    /// Where the table came from (a path, or "bundled").
    public let source: String

    /// Elements every resource keeps, whatever the purpose.
    public static let alwaysVisible: Set<String> = ["resourceType", "id", "meta"]

    /// Parses the table text. Errors name the line and what is wrong with it.
    public static func parse(_ text: String, source: String) throws(PolicyError) -> PolicyTable {
        var rules: [Key: [ResourceType: Set<String>?]] = [:]
        var seen = Set<String>()
        // "\r\n" is one Character in Swift; splitting on isNewline handles CRLF files and keeps line numbers.
        for (n, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            func bad(_ why: String) -> PolicyError { .malformed("policy \(source), line \(n + 1): \(why)") }
            let cols = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard cols.count == 4 else { throw bad("expected 4 columns (role, purpose, resource, fields), found \(cols.count)") }
            guard let role = Role(rawValue: cols[0]) else {
                throw bad("unknown role '\(cols[0])'; roles are \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard let purpose = PurposeOfUse(rawValue: cols[1]) else {
                throw bad("unknown purpose of use '\(cols[1])'; known: \(PurposeOfUse.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard seen.insert("\(cols[0]) \(cols[1]) \(cols[2])").inserted else { throw bad("duplicate row for \(cols[0]) \(cols[1]) \(cols[2])") }
            let key = Key(role: role, purpose: purpose)
            var entry = rules[key] ?? [:]
            switch cols[2] {
            case "none":
                guard cols[3] == "-" else { throw bad("resource 'none' takes '-' as fields") }
            case "*":
                guard cols[3] == "*" else { throw bad("resource '*' takes '*' as fields (list elements per type instead)") }
                for t in ResourceType.allCases where entry[t] == nil { entry[t] = .some(nil) }
            default:
                guard let type = ResourceType(name: cols[2]) else {
                    throw bad("unknown resource type '\(cols[2])'; known: \(ResourceType.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                if cols[3] == "*" {
                    entry[type] = .some(nil)
                } else {
                    let known = Set(ResourceDefinition.of(type).elements.keys)
                    var fields = Set<String>()
                    for f in cols[3].split(separator: ",").map(String.init) {
                        guard known.contains(f) else {
                            throw bad("unknown element '\(f)' of \(type.rawValue); known: \(known.sorted().joined(separator: ", "))")
                        }
                        fields.insert(f)
                    }
                    guard !fields.isEmpty else { throw bad("no elements listed for \(type.rawValue)") }
                    entry[type] = fields.union(alwaysVisible)
                }
            }
            rules[key] = entry
        }
        guard !rules.isEmpty else { throw .malformed("policy \(source) has no rules") }
        return PolicyTable(rules: rules, source: source)
    }

    /// Loads and validates a policy file.
    public static func load(_ file: URL) throws(PolicyError) -> PolicyTable {
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw .malformed("policy file \(file.path) cannot be read")
        }
        return try parse(String(decoding: data, as: UTF8.self), source: file.path)
    }

    /// The table shipped with SafeRx (`Sources/SafeRxPolicy/Resources/access-policy.tsv`).
    public static func loadBundled() throws(PolicyError) -> PolicyTable {
        guard let url = Bundle.module.url(forResource: "access-policy", withExtension: "tsv", subdirectory: nil) else {
            throw .malformed("the bundled access-policy.tsv is missing from this build")
        }
        return try load(url)
    }

    /// The bundled table. `saferx serve` loads it with ``loadBundled()`` first, so a bad file stops the server
    /// with a message; if it cannot be loaded here, this is an empty table, which refuses every purpose.
    public static let standard: PolicyTable = (try? loadBundled()) ?? PolicyTable(rules: [:], source: "unavailable")

    /// The purposes a role may act under.
    public func purposes(for role: Role) -> Set<PurposeOfUse> {
        Set(rules.keys.filter { $0.role == role }.map(\.purpose))
    }

    /// Of `elements` (`Patient.birthDate`), those `role` never sees under `purpose` in this table: an authorization
    /// naming them would be signed and then silently not released.
    public func neverReleased(_ elements: [String], to role: Role, for purpose: PurposeOfUse) -> [String] {
        guard let types = types(for: role, purpose) else { return elements }
        return elements.filter { e in
            let parts = e.split(separator: ".", maxSplits: 1).map(String.init)
            guard parts.count == 2, let type = ResourceType(rawValue: parts[0]), let visible = types[type] else { return true }
            guard let visible else { return false }
            return !visible.contains(parts[1])
        }
    }

    /// For (role, purpose): the types it may touch and their visible elements; `nil` if it may not act at all.
    func types(for role: Role, _ purpose: PurposeOfUse) -> [ResourceType: Set<String>?]? {
        rules[Key(role: role, purpose: purpose)]
    }
}
