import SafeRxModel

/// What a recorded request came to, in the domain's terms: a success of some kind, or the kind of refusal
/// (``SafeRxModel/FHIRError/Kind``). Audit records store it by name (`"result": "not-found"`), never as a transport's
/// status code; what the server answered over HTTP is the server's business.
///
/// Records written before results existed carry a number instead (`"status": 404`, the HTTP-compatible codes of the
/// first log format); ``init(legacyStatus:)`` reads them, and the record keeps the number so that its body, and so
/// the hash chain, stay exactly as written.
public enum AuditResult: String, Sendable, Codable, Hashable, CaseIterable {
    /// Done: data read or an existing record changed.
    case ok
    /// A new record was made (a resource, a refill, a grant).
    case created
    /// Taken for processing; the answer does not say more (a sign-up that may or may not match a patient).
    case accepted
    /// Deleted.
    case deleted
    /// A command an operator ran outside any request (erasure, demo seeding, maintenance).
    case done
    /// The request was malformed or a value not acceptable.
    case invalid
    /// Well formed, but not something SafeRx does.
    case notSupported = "not-supported"
    /// Refused by a pharmacy rule.
    case businessRule = "business-rule"
    /// Absent, or not visible to the caller (one result for both).
    case notFound = "not-found"
    /// The caller's role may never do this.
    case forbidden
    /// No valid credential, or a second factor was needed.
    case unauthenticated
    /// Conflicted with the current state.
    case conflict
    /// A version precondition did not hold.
    case preconditionFailed = "precondition-failed"
    /// Deleted or erased: only the id is left.
    case gone
    /// The request was over its size limit.
    case tooLarge = "too-large"
    /// A body of a media type SafeRx does not read.
    case unsupportedMediaType = "unsupported-media-type"
    /// The endpoint does not take the method.
    case methodNotAllowed = "method-not-allowed"
    /// Too many requests from the caller.
    case throttled
    /// SafeRx failed; nothing was applied.
    case `internal`
    /// SafeRx could not answer then; nothing was applied.
    case unavailable

    /// The result of a refusal of this kind.
    public init(_ kind: FHIRError.Kind) {
        self =
            switch kind {
            case .invalid: .invalid
            case .notSupported: .notSupported
            case .businessRule: .businessRule
            case .notFound: .notFound
            case .forbidden: .forbidden
            case .unauthenticated: .unauthenticated
            case .conflict: .conflict
            case .preconditionFailed: .preconditionFailed
            case .gone: .gone
            case .tooLarge: .tooLarge
            case .unsupportedMediaType: .unsupportedMediaType
            case .methodNotAllowed: .methodNotAllowed
            case .throttled: .throttled
            case .internal: .internal
            case .unavailable: .unavailable
            }
    }

    /// The result a record of the first log format meant by its number. A number outside the table that format used
    /// still reads, by its class (2xx a success, 5xx a failure of SafeRx, anything else a refusal of the request), so
    /// that no record the log holds drops out of breach scope or an accounting of disclosures.
    public init(legacyStatus status: Int) {
        if let exact = Self(exactLegacyStatus: status) {
            self = exact
        } else {
            self = (200..<300).contains(status) ? .ok : (500..<600).contains(status) ? .internal : .invalid
        }
    }

    private init?(exactLegacyStatus status: Int) {
        switch status {
        case 0: self = .done
        case 200: self = .ok
        case 201: self = .created
        case 202: self = .accepted
        case 204: self = .deleted
        case 400: self = .invalid
        case 401: self = .unauthenticated
        case 403: self = .forbidden
        case 404: self = .notFound
        case 405: self = .methodNotAllowed
        case 409: self = .conflict
        case 410: self = .gone
        case 412: self = .preconditionFailed
        case 413: self = .tooLarge
        case 415: self = .unsupportedMediaType
        case 422: self = .businessRule
        case 429: self = .throttled
        case 500: self = .internal
        case 503: self = .unavailable
        default: return nil
        }
    }

    /// Whether the request was refused or failed (as opposed to carried out).
    public var isRefusal: Bool {
        switch self {
        case .ok, .created, .accepted, .deleted, .done: false
        default: true
        }
    }
}
