import Foundation
import SafeRxModel

/// What a POST with an `Idempotency-Key` should do.
public enum IdempotencyClaim: Sendable {
    /// First use of the key: run the request, then ``PharmacyStore/completeIdempotencyKey(tenant:actor:key:status:result:)``
    /// or ``PharmacyStore/releaseIdempotencyKey(tenant:actor:key:)``.
    case new
    /// The same request was answered before: answer the same again.
    case replay(status: Int, result: IdempotentResult)
    /// The key was used with a different request (422).
    case mismatch
    /// The first request with this key is still running (409).
    case inFlight
}

/// A stored answer: a resource version (read again through the gate on replay, never kept as a copy) or a small
/// body without PHI (operation outcomes such as a break-glass grant).
public enum IdempotentResult: Sendable {
    case resource(ResourceType, id: String, version: Int)
    case body(Data)
}
