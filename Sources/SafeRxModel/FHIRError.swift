/// The one error a client can see. Each case maps to exactly one HTTP status and one `OperationOutcome`.
///
/// Messages never carry PHI: they name elements, parameters and rules, never values from a stored resource.
public struct FHIRError: Error, Sendable, Equatable {
    /// The HTTP status code.
    public var status: Int
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

    public init(status: Int, code: String, diagnostics: String, expression: String? = nil, reason: String? = nil, retryAfter: Int? = nil) {
        self.retryAfter = retryAfter
        self.status = status
        self.code = code
        self.diagnostics = diagnostics
        self.expression = expression
        self.reason = reason
    }

    /// A request that is well formed but refused by a pharmacy rule (422, `business-rule`), with its reason code.
    public static func businessRule(_ reason: String, _ message: String) -> FHIRError {
        FHIRError(status: 422, code: "business-rule", diagnostics: message, reason: reason)
    }

    public static func invalid(_ message: String, at expression: String? = nil) -> FHIRError {
        FHIRError(status: 400, code: "invalid", diagnostics: message, expression: expression)
    }

    public static func notSupported(_ message: String) -> FHIRError {
        FHIRError(status: 400, code: "not-supported", diagnostics: message)
    }

    /// The one answer for "does not exist" and "you may not see it": the same status, body and wording.
    public static func notFound(_ type: ResourceType, _ id: String) -> FHIRError {
        FHIRError(status: 404, code: "not-found", diagnostics: "Resource \(type.rawValue)/\(id) is not known")
    }

    public static func unknownVersion(_ type: ResourceType, _ id: String, _ version: String) -> FHIRError {
        FHIRError(status: 404, code: "not-found", diagnostics: "Resource \(type.rawValue)/\(id) is not known")
    }

    public static func notFoundPath(_ path: String) -> FHIRError {
        FHIRError(status: 404, code: "not-found", diagnostics: "No such endpoint: \(path)")
    }

    public static func forbidden(_ message: String) -> FHIRError {
        FHIRError(status: 403, code: "forbidden", diagnostics: message)
    }

    public static func unauthorized(_ message: String = "Authentication required: a valid, unexpired bearer token") -> FHIRError {
        FHIRError(status: 401, code: "login", diagnostics: message)
    }

    public static func conflict(_ message: String) -> FHIRError {
        FHIRError(status: 409, code: "conflict", diagnostics: message)
    }

    /// 410 for a resource whose patient was erased (crypto-shredded): only its id is left.
    public static func erased(_ type: ResourceType, _ id: String) -> FHIRError {
        FHIRError(status: 410, code: "deleted", diagnostics: "Resource \(type.rawValue)/\(id) was erased; its data no longer exists")
    }

    public static func gone(_ type: ResourceType, _ id: String) -> FHIRError {
        FHIRError(status: 410, code: "deleted", diagnostics: "Resource \(type.rawValue)/\(id) has been deleted")
    }

    public static func tooLarge(limit: Int) -> FHIRError {
        FHIRError(status: 413, code: "too-costly", diagnostics: "Request body exceeds the limit of \(limit) bytes")
    }

    public static func unsupportedMediaType(_ got: String) -> FHIRError {
        FHIRError(
            status: 415, code: "not-supported",
            diagnostics: "Content-Type must be application/fhir+json or application/json, got '\(got)'")
    }

    public static func methodNotAllowed(_ message: String) -> FHIRError {
        FHIRError(status: 405, code: "not-supported", diagnostics: message)
    }

    public static func tooManyRequests(_ message: String, retryAfter: Int = 1) -> FHIRError {
        FHIRError(status: 429, code: "throttled", diagnostics: message, retryAfter: max(1, retryAfter))
    }

    public static func `internal`() -> FHIRError {
        FHIRError(status: 500, code: "exception", diagnostics: "Internal error; the request was not applied")
    }

    public static func unavailable(_ message: String) -> FHIRError {
        FHIRError(status: 503, code: "transient", diagnostics: message)
    }

    /// The error as a FHIR `OperationOutcome`.
    public var operationOutcome: JSON {
        var issue: [String: JSON] = [
            "severity": .string(status >= 500 ? "fatal" : "error"),
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
