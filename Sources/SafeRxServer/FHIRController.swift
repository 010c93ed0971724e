import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SafeRxModel
import SafeRxPharmacy
import SafeRxPolicy
import SafeRxStoreCore

/// The FHIR REST API under `/fhir`: HTTP only. Every handler resolves the caller's access context
/// (``AccessService``) and hands it to a service, which hands it to the gate; handlers never filter rows themselves.
struct FHIRController: Sendable {
    static let maxBodySize = 1 << 20
    /// Binary uploads carry an attachment of up to ``AttachmentRules/maxBytes`` as base64 (4/3 larger) in JSON.
    static let maxBinaryBodySize = 7 << 20

    /// The body limit of a request: larger for `POST /fhir/Binary` only.
    static func bodyLimit(_ req: Request) -> Int {
        req.uri.path.hasSuffix("/fhir/Binary") ? maxBinaryBodySize : maxBodySize
    }
    static let fhirJSON = "application/fhir+json; charset=utf-8"

    let pharmacy: Pharmacy
    var auth: AuthService { pharmacy.auth }
    let baseURL: String
    /// Requests per account or API client, counted once its token verified (a forged token cannot spend another's).
    let accountLimiter: RateLimiter

    func register(on router: Router<SafeRxContext>) {
        router.get("/fhir/metadata") { _, _ in self.respond(Capability.statement(baseURL: self.baseURL)) }
        router.post("/fhir") { req, ctx in try await self.idempotent(req, ctx) { req in try await self.transaction(req, ctx) } }
        router.get("/fhir/:type") { req, ctx in try await self.search(req, ctx) }
        router.post("/fhir/:type") { req, ctx in try await self.idempotent(req, ctx) { req in try await self.create(req, ctx) } }
        router.get("/fhir/:type/:id") { req, ctx in try await self.read(req, ctx) }
        router.put("/fhir/:type/:id") { req, ctx in try await self.update(req, ctx) }
        router.delete("/fhir/:type/:id") { req, ctx in try await self.delete(req, ctx) }
        router.get("/fhir/:type/:id/_history") { req, ctx in try await self.history(req, ctx) }
        router.get("/fhir/:type/:id/_history/:vid") { req, ctx in try await self.vread(req, ctx) }
        router.get("/fhir/:type/:id/:operation") { req, ctx in try await self.instanceOperation(req, ctx) }
        router.post("/fhir/:type/:id/:operation") { req, ctx in
            try await self.idempotent(req, ctx) { req in try await self.postOperation(req, ctx) }
        }
        // An interaction an endpoint does not have is 405 with the methods it takes (Hummingbird alone answers 404).
        for (path, methods, allowed, hint) in [
            ("/fhir/:type", [HTTPRequest.Method.put, .delete, .patch], "GET, POST", "conditional update and delete are not supported; name the resource: /fhir/[type]/[id]"),
            ("/fhir/:type/:id", [.post, .patch], "GET, PUT, DELETE", "create with POST /fhir/[type]; change with PUT of the whole resource"),
        ] {
            for method in methods {
                router.on(RouterPath(path), method: method) { _, _ in
                    let shown = path.replacingOccurrences(of: ":type", with: "[type]").replacingOccurrences(of: ":id", with: "[id]")
                    return Self.methodNotAllowed("\(method.rawValue) is not allowed on \(shown): \(hint)", allow: allowed)
                }
            }
        }
    }

    /// 405 with the `Allow` header HTTP requires and an `OperationOutcome` saying what to do instead.
    static func methodNotAllowed(_ message: String, allow: String) -> Response {
        var response = FHIRErrorMiddleware.outcome(.methodNotAllowed(message))
        response.headers[.allow] = allow
        return response
    }

    // MARK: Authentication and parameters

    func requestInfo(_ req: Request, _ ctx: SafeRxContext) -> RequestInfo {
        RequestInfo(requestID: ctx.requestID, sourceIP: ctx.remoteAddress, userAgent: req.headers[.userAgent] ?? "")
    }

    /// The caller's access context, or a 401/403 that is itself audited (``AccessService``); the per-account rate
    /// limit is the transport's part.
    func access(_ req: Request, _ ctx: SafeRxContext, interaction: String, type: ResourceType?) async throws(FHIRError) -> AccessContext {
        let limiter = accountLimiter
        return try await pharmacy.access.context(
            authorization: req.headers[.authorization], purpose: req.headers[Self.purposeHeader], request: requestInfo(req, ctx),
            interaction: interaction, type: type
        ) { subject in
            guard let refusal = limiter.take("account:" + subject) else { return .admit }
            // One audit record per limited burst, not one per refused request.
            return .refuse(
                .tooManyRequests("Too many requests for this account; slow down", retryAfter: refusal.retryAfter),
                audit: refusal.first ? "rate limited: over \(Int(limiter.limit.rate)) requests/s" : nil)
        }
    }

    /// The request header that names the purpose of use (HL7 v3 PurposeOfUse code).
    static let purposeHeader = HTTPField.Name("X-Purpose-Of-Use")!

    func resourceType(_ ctx: SafeRxContext) throws(FHIRError) -> ResourceType {
        let name = ctx.parameters.get("type") ?? ""
        guard let t = ResourceType(name: name) else {
            let known = ResourceType.allCases.map(\.rawValue).joined(separator: ", ")
            throw FHIRError(
                kind: .notFound, code: "not-supported",
                diagnostics: "Unknown resource type '\(String(name.prefix(40)))'; this server supports \(known)")
        }
        return t
    }

    func resourceID(_ ctx: SafeRxContext) throws(FHIRError) -> String {
        let id = ctx.parameters.get("id") ?? ""
        guard FHIRID.isValid(id) else {
            throw .invalid("Invalid resource id: ids are 1-64 characters of A-Z, a-z, 0-9, '-' and '.'")
        }
        return id
    }

    func queryItems(_ req: Request) throws(FHIRError) -> [(String, String)] {
        guard let q = req.uri.query, !q.isEmpty else { return [] }
        guard q.utf8.count <= 8192 else { throw .invalid("Query string too long") }
        var items: [(String, String)] = []
        for pair in q.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = String(kv[0]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding,
                let value = (kv.count > 1 ? String(kv[1]) : "").replacingOccurrences(of: "+", with: " ").removingPercentEncoding
            else { throw .invalid("Query string is not valid percent-encoded UTF-8") }
            guard !key.isEmpty else { throw .invalid("Query string has an empty parameter name") }
            items.append((key, value))
        }
        return items
    }

    func body(_ req: Request) async throws(FHIRError) -> JSON {
        let contentType = req.headers[.contentType] ?? ""
        let media = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        guard media == "application/fhir+json" || media == "application/json" else { throw .unsupportedMediaType(String(contentType.prefix(60))) }
        let limit = Self.bodyLimit(req)
        if let length = req.headers[.contentLength].flatMap(Int.init), length > limit {
            throw .tooLarge(limit: limit)
        }
        let buffer: ByteBuffer
        do {
            buffer = try await req.body.collect(upTo: limit)
        } catch {
            throw .tooLarge(limit: limit)
        }
        guard buffer.readableBytes > 0 else { throw .invalid("Request body is empty") }
        return try JSON.parse(Data(buffer.readableBytesView))
    }

    // MARK: Interactions

    func read(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let type = try resourceType(ctx)
        let id = try resourceID(ctx)
        let access = try await access(req, ctx, interaction: "read", type: type)
        let r = try await pharmacy.records.read(access, type, id: id)
        // A message read through the API is a message opened.
        if type == .communication { try await pharmacy.messaging.markRead(access, communications: [id]) }
        if type == .binary, Self.wantsNativeContent(req.headers[.accept]), let native = Self.nativeContent(r) {
            var h = versionHeaders(r)
            h[.contentType] = native.contentType
            h[.contentDisposition] = "attachment; filename=\"\(id)\(native.fileExtension)\""
            return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: native.data)))
        }
        return respond(r.json ?? .null, headers: versionHeaders(r))
    }

    /// A Binary read answers the file itself, not the FHIR resource, when the client asks for a non-FHIR type (FHIR
    /// R4 Binary "serving content"): an `Accept` that names no JSON type and is not just `*/*`.
    static func wantsNativeContent(_ accept: String?) -> Bool {
        guard let accept = accept?.lowercased(), !accept.isEmpty else { return false }
        let types = accept.split(separator: ",").map { $0.split(separator: ";")[0].trimmingCharacters(in: .whitespaces) }
        return !types.contains(where: { $0.contains("json") }) && types != ["*/*"]
    }

    /// The decoded bytes of a Binary, with its (checked at write) content type and a file extension for downloads.
    static func nativeContent(_ r: StoredResource) -> (data: Data, contentType: String, fileExtension: String)? {
        guard let json = r.json, let type = json["contentType"]?.stringValue,
            let data = json["data"]?.stringValue.flatMap({ Data(base64Encoded: $0) })
        else { return nil }
        let ext = ["application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg", "text/plain": ".txt"]
        return (data, type, ext[type.split(separator: ";")[0].lowercased()] ?? "")
    }

    func vread(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let type = try resourceType(ctx)
        let id = try resourceID(ctx)
        let vid = ctx.parameters.get("vid") ?? ""
        let access = try await access(req, ctx, interaction: "vread", type: type)
        let r = try await pharmacy.records.vread(access, type, id: id, version: vid)
        return respond(r.json ?? .null, headers: versionHeaders(r))
    }

    func history(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let type = try resourceType(ctx)
        let id = try resourceID(ctx)
        let access = try await access(req, ctx, interaction: "history", type: type)
        var count = 50, offset = 0
        for (k, v) in try queryItems(req) {
            switch k {
            case "_count": guard let n = Int(v) else { throw FHIRError.invalid("_count must be a whole number", at: "_count") }; count = n
            case "_offset": guard let n = Int(v) else { throw FHIRError.invalid("_offset must be a whole number", at: "_offset") }; offset = n
            default: throw FHIRError.invalid("_history takes only _count (at most \(RecordService.maxHistoryPage)) and _offset")
            }
        }
        let versions = try await pharmacy.records.history(access, type, id: id, count: count, offset: offset)
        let entries: [JSON] = versions.map { v in
            var e: [String: JSON] = [
                "fullUrl": .string("\(baseURL)/\(type.rawValue)/\(id)"),
                "request": .object([
                    "method": .string(v.deleted ? "DELETE" : (v.version == 1 ? "POST" : "PUT")),
                    "url": .string(v.version == 1 && !v.deleted ? type.rawValue : "\(type.rawValue)/\(id)"),
                ]),
                "response": .object([
                    "status": .string(v.deleted ? "204" : (v.version == 1 ? "201" : "200")),
                    "etag": .string("W/\"\(v.version)\""), "lastModified": .string(v.lastUpdated),
                ]),
            ]
            if let json = v.json { e["resource"] = json }
            return .object(e)
        }
        return respond(.object([
            "resourceType": "Bundle", "id": .string(UUID().uuidString.lowercased()), "type": "history",
            "total": .int(Int64(versions.count)), "entry": .array(entries),
        ]))
    }

    func search(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let type = try resourceType(ctx)
        let items = try queryItems(req)
        let access = try await access(req, ctx, interaction: "search", type: type)
        let (query, page) = try await pharmacy.records.search(access, type, items)
        return respond(searchBundle(type, query, page))
    }

    func create(_ req: Request, _ ctx: SafeRxContext) async throws -> Answer {
        let type = try resourceType(ctx)
        let access = try await access(req, ctx, interaction: "create", type: type)
        let json = try await body(req)
        let r = try await pharmacy.records.create(access, type, json)
        return created(r)
    }

    /// `POST /fhir` with a `transaction` Bundle (Synthea's shape included): see ``BundleImport`` for what is
    /// rewritten, dropped and skipped, and ``RecordService/transaction(_:_:)`` for the checks. All or nothing. The
    /// answer is a `transaction-response` Bundle: one entry per stored resource, then an OperationOutcome entry with
    /// what was skipped or dropped.
    func transaction(_ req: Request, _ ctx: SafeRxContext) async throws -> Answer {
        let access = try await access(req, ctx, interaction: "transaction", type: nil)
        let json = try await body(req)
        let (plan, stored) = try await pharmacy.records.transaction(access, json)
        var entries: [JSON] = stored.map { r in
            .object([
                "fullUrl": .string("\(baseURL)/\(r.type.rawValue)/\(r.id)"),
                "response": .object([
                    "status": "201 Created", "location": .string("\(r.type.rawValue)/\(r.id)/_history/\(r.version)"),
                    "etag": .string("W/\"\(r.version)\""), "lastModified": .string(r.lastUpdated),
                ]),
            ])
        }
        entries.append(.object([
            "resource": .object([
                "resourceType": "OperationOutcome",
                "issue": .array(plan.summary.lines.map { .object(["severity": "information", "code": "informational", "diagnostics": .string($0)]) }),
            ]),
            "response": .object(["status": "200 OK"]),
        ]))
        return Answer(status: .ok, json: .object(["resourceType": "Bundle", "type": "transaction-response", "entry": .array(entries)]), headers: [:], resource: nil)
    }

    /// A 201 for a new resource, with its Location.
    func created(_ r: StoredResource) -> Answer {
        var headers = versionHeaders(r)
        headers[.location] = "\(baseURL)/\(r.type.rawValue)/\(r.id)/_history/\(r.version)"
        return Answer(status: .created, json: r.json ?? .null, headers: headers, resource: r)
    }

    func update(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let type = try resourceType(ctx)
        let id = try resourceID(ctx)
        let access = try await access(req, ctx, interaction: "update", type: type)
        let json = try await body(req)
        var ifMatch: Int? = nil
        if let raw = req.headers[.ifMatch] {
            let digits = raw.filter(\.isNumber)
            guard let v = Int(digits) else { throw FHIRError.invalid("If-Match must be an ETag like W/\"3\"") }
            ifMatch = v
        }
        let r = try await pharmacy.records.update(access, type, id: id, json, ifMatch: ifMatch)
        return respond(r.json ?? .null, headers: versionHeaders(r))
    }

    func delete(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let type = try resourceType(ctx)
        let id = try resourceID(ctx)
        let access = try await access(req, ctx, interaction: "delete", type: type)
        try await pharmacy.records.delete(access, type, id: id)
        return Response(status: .noContent)
    }

    // MARK: Responses

    /// POST instance operations: `Patient/{id}/$break-glass`, `MedicationRequest/{id}/$refill`,
    /// `MedicationDispense/{id}/$transition`.
    func postOperation(_ req: Request, _ ctx: SafeRxContext) async throws -> Answer {
        let type = try resourceType(ctx)
        let id = try resourceID(ctx)
        let operation = ctx.parameters.get("operation") ?? ""
        switch (type, operation) {
        case (.patient, "$break-glass"):
            let access = try await access(req, ctx, interaction: "break-glass", type: .patient)
            let body = try await body(req)
            // A body that is not Parameters is treated as giving no reason: refused and audited by the store.
            let reason = body["resourceType"]?.stringValue == "Parameters"
                ? body["parameter"]?.arrayValue?.first { $0["name"]?.stringValue == "reason" }?["valueString"]?.stringValue ?? "" : ""
            let grant = try await pharmacy.privacy.breakGlass(access, patient: id, reason: reason)
            return Answer(status: .created, json: .object([
                "resourceType": "Parameters",
                "parameter": .array([
                    .object(["name": "patient", "valueReference": .object(["reference": .string("Patient/\(id)")])]),
                    .object(["name": "purposeOfUse", "valueCode": "ETREAT"]),
                    .object(["name": "expires", "valueInstant": .string(grant.expires)]),
                ]),
            ]))
        case (.medicationRequest, "$refill"):
            let access = try await access(req, ctx, interaction: "refill", type: .medicationRequest)
            if req.headers[.contentLength].flatMap(Int.init) ?? 0 > 0 || req.headers[.contentType] != nil {
                // The operation takes no parameters; a body, if sent, must at least be an empty Parameters resource.
                let body = try await body(req)
                guard body["resourceType"]?.stringValue == "Parameters", body["parameter"] == nil else {
                    throw FHIRError.invalid("$refill takes no parameters: send no body or an empty Parameters resource")
                }
            }
            return created(try await pharmacy.fills.refill(access, prescription: id))
        case (.medicationDispense, "$transition"):
            let access = try await access(req, ctx, interaction: "transition", type: .medicationDispense)
            let p = try Self.parameters(try await body(req), allowed: [
                "state": "valueCode", "reason": "valueCode", "note": "valueString", "carrier": "valueCode", "trackingNumber": "valueString",
            ])
            guard let raw = p["state"] else {
                throw FHIRError.invalid("$transition needs a 'state' parameter (valueCode): one of \(FillState.allCases.map(\.rawValue).joined(separator: ", "))", at: "Parameters.parameter")
            }
            guard let state = FillState(rawValue: raw) else {
                throw FHIRError.invalid(
                    "'\(String(raw.prefix(20)))' is not a fill state; use one of \(FillState.allCases.map(\.rawValue).joined(separator: ", "))",
                    at: "Parameters.parameter.state")
            }
            let r = try await pharmacy.fills.transition(
                access, dispense: id, FillTransition(to: state, reason: p["reason"], note: p["note"], carrier: p["carrier"], trackingNumber: p["trackingNumber"]))
            return Answer(status: .ok, json: r.json ?? .null, headers: versionHeaders(r), resource: r)
        default:
            _ = try await access(req, ctx, interaction: "operation", type: type)
            throw Self.unknownOperation(operation, type)
        }
    }

    static func unknownOperation(_ operation: String, _ type: ResourceType) -> FHIRError {
        FHIRError(
            kind: .notFound, code: "not-supported",
            diagnostics: "Unknown operation '\(String(operation.prefix(40)))' on \(type.rawValue); supported: POST Patient/{id}/$break-glass, "
                + "GET Patient/{id}/$disclosures, GET Patient/{id}/$access-log, POST MedicationRequest/{id}/$refill, "
                + "POST MedicationDispense/{id}/$transition")
    }

    /// The named parameters of a `Parameters` body, each of the one value type allowed for its name.
    static func parameters(_ body: JSON, allowed: [String: String]) throws(FHIRError) -> [String: String] {
        guard body["resourceType"]?.stringValue == "Parameters" else {
            throw .invalid("The body must be a FHIR Parameters resource", at: "resourceType")
        }
        var out: [String: String] = [:]
        for (i, item) in (body["parameter"]?.arrayValue ?? []).enumerated() {
            guard let name = item["name"]?.stringValue, let kind = allowed[name] else {
                throw .invalid(
                    "Unknown parameter '\(String((item["name"]?.stringValue ?? "").prefix(40)))'; expected \(allowed.keys.sorted().joined(separator: ", "))",
                    at: "Parameters.parameter[\(i)]")
            }
            guard let value = item[kind]?.stringValue, !value.isEmpty else {
                throw .invalid("Parameter '\(name)' needs a non-empty \(kind)", at: "Parameters.parameter[\(i)]")
            }
            guard out[name] == nil else { throw .invalid("Parameter '\(name)' is given twice", at: "Parameters.parameter[\(i)]") }
            out[name] = value
        }
        return out
    }

    /// GET instance operations: `Patient/{id}/$disclosures`, `Patient/{id}/$access-log`.
    func instanceOperation(_ req: Request, _ ctx: SafeRxContext) async throws -> Response {
        let type = try resourceType(ctx)
        let id = try resourceID(ctx)
        let operation = ctx.parameters.get("operation") ?? ""
        switch (req.method, type, operation) {
        case (.get, .patient, "$disclosures"), (.get, .patient, "$access-log"):
            let every = operation == "$access-log"
            let access = try await access(req, ctx, interaction: every ? "access-log" : "disclosures", type: .auditEvent)
            let entries = try await pharmacy.privacy.accessLog(access, patient: id, everyAccess: every)
            return respond(.object([
                "resourceType": "Parameters",
                "parameter": .array([.object(["name": "patient", "valueReference": .object(["reference": .string("Patient/\(id)")])])]
                    + entries.map { e in
                        .object([
                            "name": every ? "access" : "disclosure",
                            "part": .array([
                                .object(["name": "date", "valueInstant": .string(e.time)]),
                                .object(["name": "recipient", "valueString": .string(e.recipient)]),
                                .object(["name": "purpose", "valueCode": .string(e.purpose)]),
                                .object(["name": "action", "valueCode": .string(e.action)]),
                                .object(["name": "resource", "valueString": .string(e.resource)]),
                                .object(["name": "disclosed", "valueString": .string(e.detail)]),
                                .object(["name": "auditEvent", "valueReference": .object(["reference": .string("AuditEvent/\(e.seq)")])]),
                            ]),
                        ])
                    }),
            ]))
        default:
            // Authenticated (and so audited) like any other request before the answer.
            _ = try await access(req, ctx, interaction: "operation", type: type)
            throw Self.unknownOperation(operation, type)
        }
    }

    func versionHeaders(_ r: StoredResource) -> HTTPFields {
        var h = HTTPFields()
        h[.eTag] = "W/\"\(r.version)\""
        h[.lastModified] = r.lastUpdated
        return h
    }

    func respond(_ json: JSON, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var h = headers
        h[.contentType] = Self.fhirJSON
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: json.encoded())))
    }

    func searchBundle(_ type: ResourceType, _ query: SearchQuery, _ page: SearchPage) -> JSON {
        func link(offset: Int) -> String {
            var parts = query.linkParameters.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }
            parts.append("_count=\(query.count)")
            parts.append("_offset=\(offset)")
            return "\(baseURL)/\(type.rawValue)?" + parts.joined(separator: "&")
        }
        var links: [JSON] = [.object(["relation": "self", "url": .string(link(offset: query.offset))])]
        if query.count > 0, query.offset + query.count < page.total {
            links.append(.object(["relation": "next", "url": .string(link(offset: query.offset + query.count))]))
        }
        if query.offset > 0 {
            links.append(.object(["relation": "previous", "url": .string(link(offset: max(0, query.offset - max(query.count, 1))))]))
        }
        func entry(_ r: StoredResource, mode: String) -> JSON {
            .object([
                "fullUrl": .string("\(baseURL)/\(r.type.rawValue)/\(r.id)"), "resource": r.json ?? .null,
                "search": .object(["mode": .string(mode)]),
            ])
        }
        return .object([
            "resourceType": "Bundle", "id": .string(UUID().uuidString.lowercased()), "type": "searchset",
            "meta": .object(["lastUpdated": .string(ISO8601DateFormatter().string(from: Date()))]),
            "total": .int(Int64(page.total)), "link": .array(links),
            "entry": .array(page.matches.map { entry($0, mode: "match") } + page.included.map { entry($0, mode: "include") }),
        ])
    }

    static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:,|")
    static func encode(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: unreserved) ?? "" }
}
