import Foundation
import Hummingbird
import SafeRxModel
import SafeRxWeb

/// Drug information (`/drugs`), public: one page per medication in the demo formulary and a search that is sent by
/// POST (never in a URL), answered from memory, and neither logged nor audited with any identifier: the search terms
/// a person types about their health are theirs (the Kaiser "health encyclopedia" leak).
extension WebFront {
    func registerDrugs(on router: Router<SafeRxContext>) {
        router.get("/drugs") { req, ctx in
            try await self.page(req, ctx, area: nil, form: true) { _ in
                ("drugs", ["title": "Drug information", "drugs": formulary.drugs.map(\.values)])
            }
        }
        router.post("/drugs/search") { req, ctx in
            try await self.postPage(req, ctx, area: nil, signedIn: false) { _, form in
                let query = String((form.value("q") ?? "").prefix(100))
                return ("drugs", ["title": "Drug information", "query": query, "searched": true, "results": formulary.search(query).map(\.values)])
            }
        }
        router.get("/drugs/:slug") { req, ctx in
            let slug = ctx.parameters.get("slug") ?? ""
            return try await self.page(req, ctx, area: nil, form: true) { _ in
                guard let drug = formulary.drug(slug) else { throw FHIRError.notFoundPath("drugs") }
                var v = drug.values
                v["title"] = drug.name
                return ("drug", v)
            }
        }
    }
}
