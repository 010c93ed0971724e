import Foundation

/// The demo pharmacy's drug information pages (the "health encyclopedia"): public, not PHI, bundled as
/// `Resources/formulary.json`. Searches run here, in memory, and are never logged or stored.
public struct Formulary: Sendable {
    public struct Drug: Sendable, Codable {
        public var slug: String
        public var name: String
        public var strength: String
        public var rxnorm: String
        public var `class`: String
        public var uses: String
        public var howToTake: String
        public var sideEffects: [String]
        public var warnings: [String]
        /// Brand names it is sold under ("Tylenol"): people search by what is on their bottle.
        public var brands: [String]
        /// The words people use for what it does ("blood thinner", "water pill").
        public var keywords: [String]

        public var values: [String: Any] {
            var v: [String: Any] = [
                "slug": slug, "name": name, "strength": strength, "rxnorm": rxnorm, "drugClass": `class`, "uses": uses,
                "howToTake": howToTake, "sideEffects": sideEffects, "warnings": warnings,
            ]
            if !brands.isEmpty { v["brands"] = brands.joined(separator: ", ") }
            return v
        }
    }

    public let drugs: [Drug]

    public static func load() throws -> Formulary {
        guard let url = Bundle.module.url(forResource: "formulary", withExtension: "json") else { throw Pages.LoadError.missing("formulary") }
        let drugs = try JSONDecoder().decode([Drug].self, from: Data(contentsOf: url))
        return Formulary(drugs: drugs.sorted { $0.name < $1.name })
    }

    public func drug(_ slug: String) -> Drug? { drugs.first { $0.slug == slug } }

    /// Drugs whose name, brand names, class, uses, everyday words or RxNorm code contain every word of the query (case-
    /// and accent-insensitive): "Tylenol" and "blood thinner" find what a patient means.
    public func search(_ query: String) -> [Drug] {
        let words = query.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init).filter { !$0.isEmpty }.prefix(8)
        guard !words.isEmpty else { return [] }
        return drugs.filter { d in
            let text = ([d.name, d.class, d.uses, d.rxnorm, d.strength] + d.brands + d.keywords).joined(separator: " ").folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil)
            return words.allSatisfy { text.contains($0.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil)) }
        }
    }
}
