import Foundation

/// Turns FHIR R4 Bundles as Synthea writes them (type `transaction`, `fullUrl` = `urn:uuid:...`, conditional references
/// such as `Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999999999`) into resources SafeRx can store.
///
/// - Resource types SafeRx does not model (Encounter, Condition, Observation, Claim, ...) are counted and skipped.
/// - Elements SafeRx does not model on a type it does model (Patient.multipleBirthBoolean, MedicationRequest.encounter)
///   are dropped and counted, never stored unvalidated.
/// - `urn:uuid:` and conditional references are rewritten to `Type/id`; a reference that resolves to nothing in the
///   files being imported (a skipped Encounter, a practitioner file not given) is dropped and counted.
/// - Every resource is then validated exactly like an API write; one invalid resource refuses the whole Bundle.
public struct BundleImport: Sendable {
    public struct Item: Sendable {
        public var type: ResourceType
        public var json: JSON
    }

    /// What happened to a Bundle's content.
    public struct Summary: Sendable, Equatable {
        public var imported: [String: Int] = [:]
        public var skipped: [String: Int] = [:]
        public var droppedElements: [String: Int] = [:]
        public var droppedReferences = 0

        public init() {}

        public mutating func merge(_ o: Summary) {
            imported.merge(o.imported, uniquingKeysWith: +)
            skipped.merge(o.skipped, uniquingKeysWith: +)
            droppedElements.merge(o.droppedElements, uniquingKeysWith: +)
            droppedReferences += o.droppedReferences
        }

        /// A few lines for people.
        public var lines: [String] {
            func list(_ d: [String: Int]) -> String { d.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") }
            let count = imported.values.reduce(0, +)
            var out = [count == 0 ? "imported: 0" : "imported: \(count) (\(list(imported)))"]
            if !skipped.isEmpty { out.append("skipped, not modelled by SafeRx: \(skipped.values.reduce(0, +)) (\(list(skipped)))") }
            if !droppedElements.isEmpty { out.append("elements dropped: \(droppedElements.values.reduce(0, +)) (\(list(droppedElements)))") }
            if droppedReferences > 0 { out.append("references to resources not imported, dropped: \(droppedReferences)") }
            return out
        }
    }

    public var items: [Item]
    public var summary: Summary

    /// Types an import may create (AuditEvent is written only by SafeRx).
    static func importable(_ name: String) -> ResourceType? {
        guard let t = ResourceType(name: name), t.isWritable else { return nil }
        return t
    }

    /// The entries' resources, checked to be a Bundle SafeRx can import.
    static func entries(_ bundle: JSON) throws(FHIRError) -> [JSON] {
        guard case .object = bundle, bundle["resourceType"]?.stringValue == "Bundle" else {
            throw .invalid("Expected a FHIR Bundle (resourceType 'Bundle')", at: "Bundle")
        }
        let kind = bundle["type"]?.stringValue ?? ""
        guard ["transaction", "batch", "collection"].contains(kind) else {
            throw .invalid("Bundle.type must be transaction, batch or collection, got '\(String(kind.prefix(30)))'", at: "Bundle.type")
        }
        guard let entries = bundle["entry"]?.arrayValue else { throw .invalid("Bundle.entry is missing", at: "Bundle.entry") }
        for (i, e) in entries.enumerated() {
            guard case .object = e, case .object = e["resource"] ?? .null, e["resource"]?["resourceType"]?.stringValue != nil else {
                throw .invalid("Bundle.entry[\(i)] has no resource with a resourceType", at: "Bundle.entry[\(i)].resource")
            }
            if let method = e["request"]?["method"]?.stringValue, method != "POST", method != "PUT" {
                throw .invalid("Bundle.entry[\(i)].request.method \(String(method.prefix(10))) is not supported in an import (POST or PUT)", at: "Bundle.entry[\(i)].request.method")
            }
        }
        return entries
    }

    /// Conditional-reference keys (`Type?identifier=system|value`) of the resources in a Bundle, to resolve references
    /// from other files of the same import (Synthea writes practitioners and organizations to their own files).
    public static func identifierKeys(in bundle: JSON) -> [String: String] {
        var out: [String: String] = [:]
        for e in (try? entries(bundle)) ?? [] {
            guard let r = e["resource"], let name = r["resourceType"]?.stringValue, importable(name) != nil, let id = r["id"]?.stringValue, FHIRID.isValid(id)
            else { continue }
            for ident in r["identifier"]?.arrayValue ?? [] {
                guard let system = ident["system"]?.stringValue, let value = ident["value"]?.stringValue else { continue }
                out["\(name)?identifier=\(system)|\(value)"] = "\(name)/\(id)"
            }
        }
        return out
    }

    /// Plans one Bundle. `known` resolves conditional references to resources of other files (``identifierKeys(in:)``);
    /// `stored` resolves a reference that is not in the Bundle (a literal `Type/id` or a conditional
    /// `Type?identifier=system|value`) to a stored resource as `Type/id`, or `nil`.
    public static func plan(
        _ bundle: JSON, known: [String: String] = [:], stored: (String) -> String? = { _ in nil }
    ) throws(FHIRError) -> BundleImport {
        let entries = try entries(bundle)
        var summary = Summary()
        var targets = known
        var kept: [(Int, ResourceType, JSON)] = []
        var ids = Set<String>()
        for (i, e) in entries.enumerated() {
            guard var r = e["resource"], let name = r["resourceType"]?.stringValue else { continue }
            guard let type = importable(name) else {
                summary.skipped[name, default: 0] += 1
                continue
            }
            if type == .documentReference, (r["content"]?.arrayValue ?? []).contains(where: { $0["attachment"]?["data"] != nil }) {
                // Synthea's clinical notes carry their text inline; SafeRx documents point at a checked Binary.
                summary.skipped["DocumentReference (inline content)", default: 0] += 1
                continue
            }
            var id = r["id"]?.stringValue ?? ""
            if !FHIRID.isValid(id) || ids.contains("\(name)/\(id)") { id = UUID().uuidString.lowercased() }
            ids.insert("\(name)/\(id)")
            let old = r["id"]?.stringValue
            r["id"] = .string(id)
            if let full = e["fullUrl"]?.stringValue { targets[full] = "\(name)/\(id)" }
            if let old { targets["\(name)/\(old)"] = "\(name)/\(id)" }
            for ident in r["identifier"]?.arrayValue ?? [] {
                guard let system = ident["system"]?.stringValue, let value = ident["value"]?.stringValue else { continue }
                targets["\(name)?identifier=\(system)|\(value)"] = "\(name)/\(id)"
            }
            kept.append((i, type, r))
        }
        var items: [Item] = []
        for (i, type, resource) in kept {
            guard case .object(var o) = resource else { continue }
            let definition = ResourceDefinition.of(type)
            for key in o.keys.sorted() where definition.elements[key] == nil {
                o[key] = nil
                summary.droppedElements["\(type.rawValue).\(key)", default: 0] += 1
            }
            o["meta"] = nil
            var dropped = 0
            let rewritten = rewrite(.object(o), targets: targets, exists: stored, dropped: &dropped)
            summary.droppedReferences += dropped
            do {
                try ResourceValidator.validate(rewritten, as: type)
            } catch {
                throw FHIRError(
                    kind: error.kind, code: error.code,
                    diagnostics: "Bundle.entry[\(i)] (\(type.rawValue)): \(error.diagnostics)", expression: error.expression)
            }
            summary.imported[type.rawValue, default: 0] += 1
            items.append(Item(type: type, json: rewritten))
        }
        return BundleImport(items: items, summary: summary)
    }

    /// Rewrites every `reference` through `targets`; references that resolve to nothing are removed with the
    /// Reference that holds them.
    static func rewrite(_ v: JSON, targets: [String: String], exists: (String) -> String?, dropped: inout Int) -> JSON {
        switch v {
        case .object(var o):
            for (k, child) in o {
                if case .object(let c) = child, let raw = c["reference"]?.stringValue {
                    if let target = resolve(raw, targets, exists) {
                        var ref = c
                        ref["reference"] = .string(target)
                        o[k] = .object(ref)
                    } else {
                        o[k] = nil
                        dropped += 1
                    }
                } else {
                    let r = rewrite(child, targets: targets, exists: exists, dropped: &dropped)
                    // An array left empty by dropped references goes too (FHIR arrays are never empty).
                    if case .array(let a) = r, a.isEmpty, case .array(let before) = child, !before.isEmpty { o[k] = nil } else { o[k] = r }
                }
            }
            return .object(o)
        case .array(let a):
            var out: [JSON] = []
            for item in a {
                if case .object(let c) = item, let raw = c["reference"]?.stringValue {
                    if let target = resolve(raw, targets, exists) {
                        var ref = c
                        ref["reference"] = .string(target)
                        out.append(.object(ref))
                    } else {
                        dropped += 1
                    }
                } else {
                    out.append(rewrite(item, targets: targets, exists: exists, dropped: &dropped))
                }
            }
            return .array(out)
        default:
            return v
        }
    }

    static func resolve(_ raw: String, _ targets: [String: String], _ stored: (String) -> String?) -> String? {
        targets[raw] ?? stored(raw)
    }

    /// Splits a conditional reference `Type?identifier=system|value` (the one form Synthea writes).
    public static func conditional(_ raw: String) -> (type: ResourceType, identifier: String)? {
        let parts = raw.split(separator: "?", maxSplits: 1)
        guard parts.count == 2, let type = ResourceType(name: String(parts[0])), parts[1].hasPrefix("identifier=") else { return nil }
        let value = String(parts[1].dropFirst("identifier=".count))
        return value.isEmpty ? nil : (type, value.removingPercentEncoding ?? value)
    }
}
