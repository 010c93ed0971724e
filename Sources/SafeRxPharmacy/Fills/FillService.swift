import SafeRxAudit
import SafeRxModel
import SafeRxStore
import SafeRxStoreCore

/// Fills: a patient's refill request, the pharmacy's work queue, moving a fill through its states
/// (``FillLifecycle``: role rules and four-eyes, in one gate transaction) and a fill's history.
public struct FillService: Sendable {
    let store: PharmacyStore
    var lifecycle: FillLifecycle { FillLifecycle(store: store) }

    /// `MedicationRequest/{id}/$refill`: a new fill of the prescription, if the prescription allows one now.
    public func refill(_ ctx: AccessContext, prescription id: String) async throws(FHIRError) -> StoredResource {
        try await lifecycle.refill(ctx, prescription: id)
    }

    /// `MedicationDispense/{id}/$transition`.
    ///
    /// - throws: `FHIRError` of kind `businessRule` for a move the state machine or the role rules refuse.
    public func transition(_ ctx: AccessContext, dispense id: String, _ t: FillTransition) async throws(FHIRError) -> StoredResource {
        try await lifecycle.transition(ctx, dispense: id, t)
    }

    /// Applies carriers' tracking updates (a system context for one pharmacy; audited with every patient touched);
    /// `delivered` completes the fill.
    /// - returns: how many applied, the tracking numbers no shipment has, and how many were already recorded.
    public func applyTracking(_ ctx: AccessContext, _ updates: [TrackingUpdate]) async throws(FHIRError) -> (applied: Int, unknown: [String], repeated: Int) {
        let result = try await lifecycle.applyTracking(ctx, updates)
        await store.auditWriter.checkpoint()
        return result
    }

    /// One page of one state's work queue (audited as a list naming the page's patients).
    public func queue(_ ctx: AccessContext, state: FillState, count: Int = 50, offset: Int = 0) async throws(FHIRError) -> QueuePage {
        try await store.fillQueue(ctx, state: state, count: count, offset: offset)
    }

    /// How many fills are in each of `states` (audited as a count).
    public func counts(_ ctx: AccessContext, states: [FillState]) async throws(FHIRError) -> [FillState: Int] {
        try await store.fillCounts(ctx, states: states)
    }

    /// A fill and who moved it to which state, oldest first; 404 when the caller may not read the fill.
    public func history(_ ctx: AccessContext, dispense id: String) async throws(FHIRError) -> (dispense: StoredResource, events: [FillEvent]) {
        try await store.fillHistory(ctx, dispense: id)
    }
}
