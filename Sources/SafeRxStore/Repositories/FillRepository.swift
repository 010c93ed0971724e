import Foundation
import SafeRxSQL
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStoreCore
import SafeRxVault

/// The fill tables: `fill_event`, who moved each fill to which state (the four-eyes rule is checked against it, never
/// against the client-editable resource). Works in the caller's transaction (``GateTransaction/fills``).
package struct FillRepository {
    let tx: GateTransaction

    /// Records a move of `dispense`, naming the transaction's caller.
    package func recordMove(dispense: String, from: FillState, to: FillState, reason: String?) throws {
        try tx.store.recordFillEvent(tx.db, tenant: tx.context.scope.tenant, dispense: dispense, from: from, to: to, scope: tx.context.scope, reason: reason)
    }

    /// The fills of a prescription so far, as the refill rules weigh them (read under a system scope of the caller's
    /// pharmacy; only states and dates leave the transaction).
    package func ofPrescription(_ id: String) throws -> [RefillRules.Fill] {
        try tx.store.fillsOf(tx.db, tenant: tx.context.scope.tenant, prescription: id).map(\.1)
    }

    /// The current fill (as the caller's scope sees it) that shipped under `trackingNumber`, found through its blind
    /// index term.
    package func shipped(trackingNumber: String) throws -> StoredResource? {
        let token = tx.store.blindIndex.token(parameter: "tracking", value: trackingNumber.uppercased())
        return try tx.store.scopedRows(
            tx.db, tx.context.scope, type: .medicationDispense,
            where: "v.current = 1 AND v.deleted = 0 AND v.pk IN (SELECT pk FROM search_index WHERE param = 'tracking' AND value = ?)", [token]
        ).first
    }

    /// Who last moved `dispense` to in-progress (filled it), if anyone.
    package func lastFiller(dispense: String) throws -> String? {
        try String.fetchOne(
            tx.db, sql: "SELECT actor_id FROM fill_event WHERE tenant = ? AND dispense_id = ? AND to_state = 'in-progress' ORDER BY seq DESC LIMIT 1",
            arguments: [tx.context.scope.tenant, dispense])
    }

    /// The address a fill ships to: its patient's home address (else the first), read under a system scope of the
    /// caller's pharmacy inside this transaction; it leaves only inside the fill.
    package func shipTo(_ dispense: JSON) throws -> JSON? {
        try tx.store.shipToAddress(tx.db, tenant: tx.context.scope.tenant, dispense: dispense)
    }
}

extension GateTransaction {
    /// The fill tables, in this transaction.
    package var fills: FillRepository { FillRepository(tx: self) }

    /// The current version of a resource the context may see, to change it in this transaction; `nil` when it does
    /// not exist or the scope does not reach it (the caller answers both alike).
    package func current(_ type: ResourceType, id: String) throws -> StoredResource? {
        try store.scopedRows(db, context.scope, type: type, where: "v.id = ? AND v.current = 1 AND v.deleted = 0", [id]).first
    }

    /// Stores `body` as the next version of `current`: validated, indexed and sealed for the same patients, in this
    /// transaction. The caller records the change (``record(_:type:id:patients:tenant:detail:released:)``).
    ///
    /// - throws: `FHIRError` of kind `invalid` when `body` is not a valid resource of its type.
    package func replace(_ current: StoredResource, with body: JSON) throws -> StoredResource {
        var body = body
        body["meta"] = nil
        try ResourceValidator.validate(body, as: current.type, id: current.id)
        let prepared = PharmacyStore.PreparedWrite(
            type: current.type, id: current.id, json: body, patients: Set(current.patients),
            terms: ResourceIndexer.terms(of: current.type, body), owner: nil)
        try store.retire(db, type: current.type, id: current.id)
        return try store.insertVersion(db, tenant: context.scope.tenant, prepared, version: current.version + 1, scope: context.scope)
    }

    /// Stores a new resource built by a service (a refill's MedicationDispense) as version 1 in the compartments of
    /// `patients`, in this transaction. The caller records it.
    package func insertNew(_ type: ResourceType, id: String, _ body: JSON, patients: Set<String>) throws -> StoredResource {
        let prepared = PharmacyStore.PreparedWrite(
            type: type, id: id, json: body, patients: patients, terms: ResourceIndexer.terms(of: type, body), owner: nil)
        return try store.insertVersion(db, tenant: context.scope.tenant, prepared, version: 1, scope: context.scope)
    }

    /// The time the gate decides by.
    package var clock: PharmacyClock { store.clock }

    /// Queues a webhook event for `patient`'s partner, if the patient has one with an endpoint (``Outbox``).
    package func enqueueWebhook(patient: String, type: String, data: [String: JSON]) throws {
        try store.enqueueWebhook(db, tenant: context.scope.tenant, patient: patient, type: type, data: data)
    }

    /// The clock's time as stored in resources (ISO 8601, UTC, milliseconds).
    package var now: String { store.timestamp() }
}
