import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SafeRxModel
import SafeRxPharmacy
import SafeRxPolicy
import SafeRxStoreCore

/// The answer of a POST before it becomes a response: kept apart so that an `Idempotency-Key` can remember it.
struct Answer: Sendable {
    var status: HTTPResponse.Status
    var json: JSON
    var headers: HTTPFields = [:]
    /// The resource version the answer shows, if it shows one (remembered by reference, never by copy).
    var resource: StoredResource? = nil
}

extension FHIRController {
    static let idempotencyHeader = HTTPField.Name("Idempotency-Key")!
    /// Set on an answer repeated for a retried `Idempotency-Key`.
    static let replayedHeader = HTTPField.Name("Idempotent-Replayed")!

    /// Runs a POST under its `Idempotency-Key`, if it has one: the same key with the same request (method, path,
    /// body) answers what the first answered (a resource is read again through the gate, audited); the same key with
    /// another request is 422; while the first is still running, 409. Keys are per caller and kept 24 hours. A request
    /// that fails frees its key.
    func idempotent(_ req: Request, _ ctx: SafeRxContext, _ handler: (Request) async throws -> Answer) async throws -> Response {
        guard let key = req.headers[Self.idempotencyHeader] else { return respond(try await handler(req)) }
        guard (1...255).contains(key.utf8.count), key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw FHIRError.invalid("Idempotency-Key must be 1 to 255 visible ASCII characters")
        }
        // Only a verified caller has keys; without one the handler answers (and audits) the 401.
        guard let header = req.headers[.authorization], header.lowercased().hasPrefix("bearer "),
            let (principal, _) = try? await auth.verify(String(header.dropFirst(7)))
        else { return respond(try await handler(req)) }
        var req = req
        let buffer: ByteBuffer
        let limit = Self.bodyLimit(req)
        do { buffer = try await req.collectBody(upTo: limit) } catch { throw FHIRError.tooLarge(limit: limit) }
        var h = SHA256()
        h.update(data: Data("\(req.method.rawValue) \(req.uri.path)\n".utf8))
        h.update(data: Data(buffer.readableBytesView))
        let hash = h.finalize().map { String(format: "%02x", $0) }.joined()
        let idempotency = pharmacy.idempotency
        switch try await idempotency.claim(principal, key: key, requestHash: hash) {
        case .mismatch:
            throw FHIRError(
                kind: .businessRule, code: "business-rule",
                diagnostics: "This Idempotency-Key was already used with a different request (method, path or body); use a new key for a new request",
                reason: "idempotency-key-reused")
        case .inFlight:
            throw FHIRError(
                kind: .conflict, code: "conflict", diagnostics: "A request with this Idempotency-Key is still being processed; retry shortly",
                reason: "idempotency-key-in-flight")
        case .replay(let status, .body(let data)):
            var headers = HTTPFields()
            headers[Self.replayedHeader] = "true"
            return respond((try? JSON.parse(data)) ?? .null, status: .init(code: status), headers: headers)
        case .replay(let status, .resource(let type, let id, let version)):
            let access = try await access(req, ctx, interaction: "vread", type: type)
            let r = try await pharmacy.records.vread(access, type, id: id, version: String(version))
            var headers = versionHeaders(r)
            headers[Self.replayedHeader] = "true"
            if status == 201 { headers[.location] = "\(baseURL)/\(type.rawValue)/\(id)/_history/\(version)" }
            return respond(r.json ?? .null, status: .init(code: status), headers: headers)
        case .new:
            let answer: Answer
            do {
                answer = try await handler(req)
            } catch {
                await idempotency.release(principal, key: key)
                throw error
            }
            let result: IdempotentResult = answer.resource.map { .resource($0.type, id: $0.id, version: $0.version) } ?? .body(answer.json.encoded())
            try await idempotency.complete(principal, key: key, status: Int(answer.status.code), result: result)
            return respond(answer)
        }
    }

    func respond(_ a: Answer) -> Response { respond(a.json, status: a.status, headers: a.headers) }
}
