import Foundation
import SafeRxSQL
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStoreCore
import SafeRxVault
import Synchronization

extension PharmacyStore {
    /// The pharmacy's refill rules (too-soon threshold, default validity), set by `saferx serve`.
    package var refillRules: RefillRules {
        get { rules.withLock { $0 } }
        set { rules.withLock { $0 = newValue } }
    }

    /// What a fill operation's answer holds (the audit record's ``AuditEntry/released``), so that a breach scope
    /// counts only what left: `extension` (the ship-to address) only when the fill carries a shipment.
    package static func releasedElements(_ dispense: JSON?) -> AuditEntry.Released {
        guard case .object(let o)? = dispense else { return AuditEntry.Released(elements: []) }
        let shipped = (o["extension"]?.arrayValue ?? []).contains { $0["url"]?.stringValue == Shipment.extensionURL }
        let keys = o.keys.filter { $0 != "extension" || shipped }.filter { !["resourceType", "id", "meta"].contains($0) }
        return AuditEntry.Released(elements: keys.map { "MedicationDispense.\($0)" })
    }

    /// Earlier fills of a prescription (system read inside the caller's transaction; ids and states only leave it).
    func fillsOf(_ db: any SQLConnection, tenant: String, prescription: String) throws -> [(String, RefillRules.Fill)] {
        let rows = try scopedRows(
            db, .system(reason: "refill check", tenant: tenant), type: .medicationDispense,
            where: "v.current = 1 AND v.deleted = 0 AND v.pk IN (SELECT pk FROM search_index WHERE param = 'prescription' AND value = ?)",
            ["MedicationRequest/\(prescription)"])
        return rows.compactMap { r in
            guard let json = r.json else { return nil }
            let when = json["whenHandedOver"]?.stringValue ?? json["whenPrepared"]?.stringValue ?? r.lastUpdated
            let date = FHIRDate.instant(when, end: false) ?? self.clock.now
            return (r.id, RefillRules.Fill(state: FillState.of(json), date: date, daysSupply: FHIRQuantity.days(json["daysSupply"])))
        }
    }

    func recordFillEvent(_ db: any SQLConnection, tenant: String, dispense: String, from: FillState, to: FillState, scope: AccessScope, reason: String?) throws {
        try db.execute(
            sql: "INSERT INTO fill_event (tenant, dispense_id, from_state, to_state, actor_id, actor_role, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            arguments: [tenant, dispense, from.rawValue, to.rawValue, scope.principal.subject, scope.principal.roleName, reason, self.timestamp()])
    }

    /// The patient's first address (home first), read inside the shipping transaction.
    func shipToAddress(_ db: any SQLConnection, tenant: String, dispense: JSON) throws -> JSON? {
        guard let s = dispense["subject"]?["reference"]?.stringValue, let ref = Reference(s) else { return nil }
        let patient = try scopedRows(
            db, .system(reason: "ship-to address", tenant: tenant), type: .patient, where: "v.id = ? AND v.current = 1 AND v.deleted = 0", [ref.id]
        ).first?.json
        let addresses = patient?["address"]?.arrayValue ?? []
        return addresses.first { $0["use"]?.stringValue == "home" } ?? addresses.first
    }

    package static func shipmentEvent(status: String, time: String, location: String?) -> JSON {
        var parts: [JSON] = [.object(["url": "status", "valueCode": .string(status)]), .object(["url": "time", "valueDateTime": .string(time)])]
        if let location { parts.append(.object(["url": "location", "valueString": .string(location)])) }
        return .object(["url": "event", "extension": .array(parts)])
    }

}

// MARK: - Prescriptions and direct writes of fills

extension PharmacyStore {
    /// Checks a new or changed prescription against its prescriber (NPI, DEA) and its medication's schedule.
    func checkPrescription(_ ctx: AccessContext, _ rx: JSON, bundle: [String: JSON] = [:]) async throws(FHIRError) {
        let tenant = ctx.scope.tenant
        func fetch(_ type: ResourceType, _ ref: String?) async throws(FHIRError) -> JSON? {
            guard let ref, let r = Reference(ref), r.type == type else { return nil }
            if let inBundle = bundle[r.description] { return inBundle }
            return try await run { [self] db in
                try scopedRows(db, .system(reason: "prescription check", tenant: tenant), type: type, where: "v.id = ? AND v.current = 1 AND v.deleted = 0", [r.id]).first?.json
            }
        }
        let prescriber = try await fetch(.practitioner, rx["requester"]?["reference"]?.stringValue)
        let medication = try await fetch(.medication, rx["medicationReference"]?["reference"]?.stringValue)
        do {
            try PrescriptionRules.check(rx, prescriber: prescriber, medication: medication)
        } catch {
            throw await deny(ctx, interaction: "create", type: .medicationRequest, id: rx["id"]?.stringValue, error: error, detail: "prescription check")
        }
    }

    /// The elements of a MedicationDispense that only the fill lifecycle changes.
    static let managedDispenseElements = ["status", "performer", "statusReasonCodeableConcept", "whenPrepared", "whenHandedOver"]

    /// Refuses a direct write that would change a fill's state or its record of who filled and verified it.
    static func checkDispenseWrite(old: JSON?, new: JSON) throws(FHIRError) {
        func managed(_ j: JSON?) -> [JSON?] {
            let ext = (j?["extension"]?.arrayValue ?? []).filter {
                [FillState.extensionURL, Shipment.extensionURL].contains($0["url"]?.stringValue ?? "")
            }
            return managedDispenseElements.map { j?[$0] } + [ext.isEmpty ? nil : .array(ext)]
        }
        guard let old else {
            // A new fill: in preparation (a fill-state extension may say so), nobody has filled, checked or shipped it.
            let untouched = managedDispenseElements.dropFirst().allSatisfy { new[$0] == nil }
                && !(new["extension"]?.arrayValue ?? []).contains { $0["url"]?.stringValue == Shipment.extensionURL }
            guard new["status"]?.stringValue == "preparation", FillState.of(new) == .preparation, untouched else {
                throw FHIRError(
                    kind: .conflict, code: "business-rule",
                    diagnostics: "A fill starts in status preparation without performers or shipment; it then moves only through POST MedicationDispense/{id}/$transition",
                    reason: "illegal-transition")
            }
            return
        }
        guard managed(old) == managed(new) else {
            let state = FillState.of(old)
            throw FHIRError(
                kind: .conflict, code: "business-rule",
                diagnostics: "The state of a fill changes only through POST MedicationDispense/{id}/$transition; from \(state.rawValue) the allowed next states are: "
                    + (state.next.isEmpty ? "none" : state.next.map(\.rawValue).joined(separator: ", ")),
                reason: "illegal-transition")
        }
    }
}

extension PharmacyStore {
    /// Who moved a fill to which state, oldest first. The fill is read through the gate first (audited; 404 when the
    /// caller may not see it), so the history is never shown for a fill the caller cannot read.
    package func fillHistory(_ ctx: AccessContext, dispense id: String) async throws(FHIRError) -> (dispense: StoredResource, events: [FillEvent]) {
        let dispense = try await read(ctx, .medicationDispense, id: id)
        let tenant = ctx.scope.principal.tenant
        let events = try await run { db in
            try SQLRow.fetchAll(
                db, sql: "SELECT from_state, to_state, actor_id, actor_role, reason, at FROM fill_event WHERE tenant = ? AND dispense_id = ? ORDER BY seq",
                arguments: [tenant, id]
            ).map { FillEvent(from: $0[0], to: $0[1], actorID: $0[2], actorRole: $0[3], reason: $0[4], at: $0[5]) }
        }
        return (dispense, events)
    }
}
