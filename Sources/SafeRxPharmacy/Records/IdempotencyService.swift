import SafeRxModel
import SafeRxPolicy
import SafeRxStore
import SafeRxStoreCore

/// `Idempotency-Key` for POSTs: keys are per caller (tenant and subject) and kept 24 hours; an answer is remembered
/// as a resource version (read again through the gate on replay) or as a small body without PHI.
public struct IdempotencyService: Sendable {
    let store: PharmacyStore

    /// Claims `key` for a request whose method, path and body hash to `requestHash`.
    public func claim(_ caller: Principal, key: String, requestHash: String) async throws(FHIRError) -> IdempotencyClaim {
        try await store.claimIdempotencyKey(tenant: caller.tenant, actor: caller.subject, key: key, requestHash: requestHash)
    }

    /// Remembers the answer of the request that claimed `key`.
    public func complete(_ caller: Principal, key: String, status: Int, result: IdempotentResult) async throws(FHIRError) {
        try await store.completeIdempotencyKey(tenant: caller.tenant, actor: caller.subject, key: key, status: status, result: result)
    }

    /// Frees `key` after its request failed (a retry runs it again).
    public func release(_ caller: Principal, key: String) async {
        await store.releaseIdempotencyKey(tenant: caller.tenant, actor: caller.subject, key: key)
    }
}
