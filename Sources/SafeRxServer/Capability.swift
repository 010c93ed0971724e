import SafeRxModel

/// The CapabilityStatement: exactly what this server does.
enum Capability {
    static func statement(baseURL: String) -> JSON {
        let resources: [JSON] = ResourceType.allCases.map { type in
            var interactions = ["read", "vread", "history-instance", "search-type"]
            if type.isWritable { interactions += ["create", "update", "delete"] }
            var params: [JSON] = [
                .object(["name": "_id", "type": "token"]), .object(["name": "_lastUpdated", "type": "date"]),
                .object(["name": "_count", "type": "number"]),
            ]
            for (name, p) in SearchParameter.all(for: type).sorted(by: { $0.key < $1.key }) {
                let kind: String =
                    switch p.kind {
                    case .token: "token"
                    case .reference: "reference"
                    case .string: "string"
                    case .date: "date"
                    case .contact: "token"
                    }
                var doc = ""
                if p.staffOnly { doc += "Pharmacy staff only. " }
                if case .date(rangeable: false) = p.kind { doc += "Equality only (stored blinded). " }
                if case .string = p.kind { doc += "Prefix of at least \(ResourceIndexer.minimumPrefix) characters, or :exact. " }
                if case .contact = p.kind { doc += "Exact match after normalization (stored blinded). " }
                var o: [String: JSON] = ["name": .string(name), "type": .string(kind)]
                if !doc.isEmpty { o["documentation"] = .string(String(doc.dropLast())) }
                params.append(.object(o))
            }
            var o: [String: JSON] = [
                "type": .string(type.rawValue),
                "interaction": .array(interactions.map { .object(["code": .string($0)]) }),
                "versioning": "versioned", "readHistory": true, "updateCreate": false, "conditionalCreate": false,
                "conditionalUpdate": false, "conditionalDelete": "not-supported",
                "searchParam": .array(params),
            ]
            let inc = IncludePath.includes.filter { $0.value.source == type }.keys.sorted()
            if !inc.isEmpty { o["searchInclude"] = .array(inc.map { .string($0) }) }
            let rev = IncludePath.revincludes.filter { $0.value.target == type }.keys.sorted()
            if !rev.isEmpty { o["searchRevInclude"] = .array(rev.map { .string($0) }) }
            return .object(o)
        }
        return .object([
            "resourceType": "CapabilityStatement", "status": "active", "date": "2026-11-22", "kind": "instance",
            "software": .object(["name": "SafeRx", "version": "0.1.0"]),
            "implementation": .object(["description": "SafeRx pharmacy FHIR server", "url": .string(baseURL)]),
            "fhirVersion": "4.0.1", "format": .array(["application/fhir+json", "json"]),
            "rest": .array([
                .object([
                    "mode": "server",
                    "documentation": "All interactions except metadata need a bearer token from /auth/login (users) or /auth/token (OAuth2 client_credentials, client_secret_basic). Access is limited to the caller's scope inside the data layer; resources outside it answer 404. Unknown search parameters are rejected (strict handling).",
                    "security": .object([
                        "cors": false,
                        "service": .array([.object(["coding": .array([.object(["system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "OAuth"])])])]),
                        "description": "Ed25519-signed JWT bearer tokens, 15-minute lifetime, revocable via /auth/logout.",
                    ]),
                    "resource": .array(resources),
                ])
            ]),
        ])
    }
}
