/// The one error a caller can see: what kind of failure, in the domain's terms, with a FHIR `IssueType` code and a
/// precise message. It knows no transport: the server maps each ``Kind`` to one HTTP status and the error to an
/// `OperationOutcome` (`FHIRErrorMiddleware`), the CLI prints the message as one line.
///
/// Messages never carry PHI: they name elements, parameters and rules, never values from a stored resource.
public struct FHIRError: Error, Sendable, Equatable {
    /// What went wrong, from the caller's side.
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// The request is malformed or a value is not acceptable.
        case invalid
        /// Well formed, but asks for something SafeRx does not do.
        case notSupported
        /// Well formed, refused by a pharmacy rule (with a ``FHIRError/reason``).
        case businessRule
        /// Does not exist, or the caller may not see it: the same answer for both.
        case notFound
        /// The caller's role may never do this.
        case forbidden
        /// No valid credential, or a second factor is needed.
        case unauthenticated
        /// The request conflicts with the current state.
        case conflict
        /// A version precondition (`If-Match`) does not hold.
        case preconditionFailed
        /// Deleted or erased: only the id is left.
        case gone
        /// The request body is over its limit.
        case tooLarge
        /// The body's media type is not one SafeRx reads.
        case unsupportedMediaType
        /// The endpoint does not take this method.
        case methodNotAllowed
        /// Too many requests from this caller; try again after ``FHIRError/retryAfter``.
        case throttled
        /// SafeRx failed; nothing was applied.
        case `internal`
        /// SafeRx cannot answer now (the audit log cannot be written, too much waiting work); nothing was applied.
        case unavailable
    }

    /// What kind of failure.
    public var kind: Kind
    /// FHIR `IssueType` code (`invalid`, `not-found`, `forbidden`, `login`, ...).
    public var code: String
    /// A precise, human-readable message.
    public var diagnostics: String
    /// FHIRPath of the offending element, when there is one.
    public var expression: String?
    /// A machine-readable reason (`refill-too-soon`, `illegal-transition`, ...) in `issue.details`, system
    /// ``FHIRError/reasonSystem``, for clients that act on the reason rather than show the message.
    public var reason: String?
    /// Seconds after which a refused request (429, 503) may be tried again: the `Retry-After` header.
    public var retryAfter: Int?

    /// The code system of ``reason``.
    public static let reasonSystem = "https://saferx.dev/fhir/CodeSystem/issue-reason"

    public init(kind: Kind, code: String, diagnostics: String, expression: String? = nil, reason: String? = nil, retryAfter: Int? = nil) {
        self.retryAfter = retryAfter
        self.kind = kind
        self.code = code
        self.diagnostics = diagnostics
        self.expression = expression
        self.reason = reason
    }

    /// A request that is well formed but refused by a pharmacy rule (422, `business-rule`), with its reason code.
    public static func businessRule(_ reason: String, _ message: String) -> FHIRError {
        FHIRError(kind: .businessRule, code: "business-rule", diagnostics: message, reason: reason)
    }

    public static func invalid(_ message: String, at expression: String? = nil) -> FHIRError {
        FHIRError(kind: .invalid, code: "invalid", diagnostics: message, expression: expression)
    }

    public static func notSupported(_ message: String) -> FHIRError {
        FHIRError(kind: .notSupported, code: "not-supported", diagnostics: message)
    }

    /// The one answer for "does not exist" and "you may not see it": the same status, body and wording.
    public static func notFound(_ type: ResourceType, _ id: String) -> FHIRError {
        FHIRError(kind: .notFound, code: "not-found", diagnostics: "Resource \(type.rawValue)/\(id) is not known")
    }

    public static func unknownVersion(_ type: ResourceType, _ id: String, _ version: String) -> FHIRError {
        FHIRError(kind: .notFound, code: "not-found", diagnostics: "Resource \(type.rawValue)/\(id) is not known")
    }

    public static func notFoundPath(_ path: String) -> FHIRError {
        FHIRError(kind: .notFound, code: "not-found", diagnostics: "No such endpoint: \(path)")
    }

    public static func forbidden(_ message: String) -> FHIRError {
        FHIRError(kind: .forbidden, code: "forbidden", diagnostics: message)
    }

    public static func unauthorized(_ message: String = "Authentication required: a valid, unexpired bearer token") -> FHIRError {
        FHIRError(kind: .unauthenticated, code: "login", diagnostics: message)
    }

    public static func conflict(_ message: String) -> FHIRError {
        FHIRError(kind: .conflict, code: "conflict", diagnostics: message)
    }

    /// 410 for a resource whose patient was erased (crypto-shredded): only its id is left.
    public static func erased(_ type: ResourceType, _ id: String) -> FHIRError {
        FHIRError(kind: .gone, code: "deleted", diagnostics: "Resource \(type.rawValue)/\(id) was erased; its data no longer exists")
    }

    public static func gone(_ type: ResourceType, _ id: String) -> FHIRError {
        FHIRError(kind: .gone, code: "deleted", diagnostics: "Resource \(type.rawValue)/\(id) has been deleted")
    }

    public static func tooLarge(limit: Int) -> FHIRError {
        FHIRError(kind: .tooLarge, code: "too-costly", diagnostics: "Request body exceeds the limit of \(limit) bytes")
    }

    public static func unsupportedMediaType(_ got: String) -> FHIRError {
        FHIRError(kind: .unsupportedMediaType, code: "not-supported",
            diagnostics: "Content-Type must be application/fhir+json or application/json, got '\(got)'")
    }

    public static func methodNotAllowed(_ message: String) -> FHIRError {
        FHIRError(kind: .methodNotAllowed, code: "not-supported", diagnostics: message)
    }

    public static func tooManyRequests(_ message: String, retryAfter: Int = 1) -> FHIRError {
        FHIRError(kind: .throttled, code: "throttled", diagnostics: message, retryAfter: max(1, retryAfter))
    }

    public static func `internal`() -> FHIRError {
        FHIRError(kind: .internal, code: "exception", diagnostics: "Internal error; the request was not applied")
    }

    public static func unavailable(_ message: String) -> FHIRError {
        FHIRError(kind: .unavailable, code: "transient", diagnostics: message)
    }

    /// The error as a FHIR `OperationOutcome`.
    public var operationOutcome: JSON {
        var issue: [String: JSON] = [
            "severity": .string(kind == .internal || kind == .unavailable ? "fatal" : "error"),
            "code": .string(code),
            "diagnostics": .string(diagnostics),
        ]
        if let expression { issue["expression"] = .array([.string(expression)]) }
        if let reason {
            issue["details"] = .object(["coding": .array([.object(["system": .string(Self.reasonSystem), "code": .string(reason)])])])
        }
        return .object(["resourceType": .string("OperationOutcome"), "issue": .array([.object(issue)])])
    }
}
