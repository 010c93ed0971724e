import Foundation
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStore
import SafeRxStoreCore

/// A fill's moves through its states (``FillState``): which role may make which move, the four-eyes rule, what each
/// move writes into the MedicationDispense, and the webhook events it raises. The pharmacy's rules live here; the
/// gate supplies the transaction: the fill as the caller's scope sees it, its next version, the fill history, the
/// outbox and the audit record, all committed together.
struct FillLifecycle: Sendable {
    let store: PharmacyStore

    /// Who may move a fill to `state`.
    static func mayMove(_ role: Role, to state: FillState) -> Bool {
        switch state {
        case .inProgress, .completed, .delivered, .onHold: role == .technician || role == .pharmacist
        case .verified, .preparation, .declined: role == .pharmacist
        case .cancelled: role == .pharmacist || role == .partner
        }
    }

    /// Checks what a move asks for before anything is read: a known reason code where one is needed, a carrier and a
    /// tracking number for shipping.
    static func validate(_ t: FillTransition) throws(FHIRError) {
        if let reason = t.reason, FillReason.codes[reason] == nil {
            throw .invalid(
                "'\(String(reason.prefix(20)))' is not a reason code; use one of \(FillReason.codes.keys.sorted().joined(separator: ", ")) (\(FillReason.system))",
                at: "Parameters.parameter.reason")
        }
        if t.to.needsReason && t.reason == nil {
            throw .invalid("Moving a fill to \(t.to.rawValue) needs a reason code (\(FillReason.system))", at: "Parameters.parameter.reason")
        }
        if t.to == .completed {
            guard let carrier = t.carrier, Shipment.carriers.contains(carrier) else {
                throw .invalid("Shipping needs a carrier: one of \(Shipment.carriers.sorted().joined(separator: ", "))", at: "Parameters.parameter.carrier")
            }
            guard let number = t.trackingNumber.map(Shipment.normalizedTrackingNumber), Shipment.isValidTrackingNumber(number) else {
                throw .invalid("Shipping needs a tracking number of 8 to 40 letters and digits", at: "Parameters.parameter.trackingNumber")
            }
        }
    }

    /// Whether the caller may make the move `from` → `t.to`; the refusal says why.
    static func check(_ scope: AccessScope, from: FillState, _ t: FillTransition, filler: () throws -> String?) throws -> FHIRError? {
        guard from.next.contains(t.to) else {
            let allowed = from.next.map(\.rawValue)
            return FHIRError(
                kind: .conflict, code: "business-rule",
                diagnostics: "A fill in state \(from.rawValue) cannot move to \(t.to.rawValue); allowed next states: "
                    + (allowed.isEmpty ? "none (\(from.rawValue) is final)" : allowed.joined(separator: ", ")),
                reason: "illegal-transition")
        }
        // System jobs (a fulfillment vendor's returned tracking file) may only record shipping and delivery.
        let allowed = scope.systemReason != nil ? [.completed, .delivered].contains(t.to) : mayMove(scope.role, to: t.to)
        guard allowed else { return .forbidden("Role '\(scope.principal.roleName)' may not move a fill to \(t.to.rawValue)") }
        if scope.role == .partner, t.to == .cancelled, from != .preparation && from != .onHold {
            return FHIRError(
                kind: .conflict, code: "business-rule",
                diagnostics: "A partner may cancel a fill only before it is filled (preparation or on-hold); this one is \(from.rawValue)",
                reason: "illegal-transition")
        }
        // Four-eyes: the person who filled (moved it to in-progress last) may not verify it.
        if t.to == .verified, try filler() == scope.principal.subject {
            return FHIRError(
                kind: .forbidden, code: "forbidden",
                diagnostics: "Four-eyes rule: you filled this prescription, so another pharmacist must verify it", reason: "four-eyes")
        }
        return nil
    }

    /// The fill after the move: status and state extension, reason, performer (the role, never the person: patients
    /// and partners read this resource), preparation and hand-over times, the shipment, a note.
    static func apply(_ t: FillTransition, to body: JSON, scope: AccessScope, now: String, shipTo: () throws -> JSON?) rethrows -> JSON {
        var body = body
        body["status"] = .string(t.to.fhirStatus)
        var extensions = (body["extension"]?.arrayValue ?? []).filter { $0["url"]?.stringValue != FillState.extensionURL }
        extensions.append(.object(["url": .string(FillState.extensionURL), "valueCode": .string(t.to.rawValue)]))
        if let reason = t.reason {
            body["statusReasonCodeableConcept"] = .object([
                "coding": .array([.object(["system": .string(FillReason.system), "code": .string(reason), "display": .string(FillReason.codes[reason] ?? "")])]),
            ])
        } else {
            body["statusReasonCodeableConcept"] = nil
        }
        func performer(_ function: String) -> JSON {
            .object([
                "function": .object(["coding": .array([.object([
                    "system": "http://terminology.hl7.org/CodeSystem/medicationdispense-performer-function", "code": .string(function),
                ])])]),
                "actor": .object(["display": .string(scope.principal.roleName)]),
            ])
        }
        switch t.to {
        case .inProgress:
            body["performer"] = .array((body["performer"]?.arrayValue ?? []) + [performer("packager")])
        case .verified:
            body["performer"] = .array((body["performer"]?.arrayValue ?? []) + [performer("finalchecker")])
            body["whenPrepared"] = .string(now)
        case .completed:
            body["whenHandedOver"] = .string(now)
            var parts: [JSON] = [
                .object(["url": "carrier", "valueCode": .string(t.carrier ?? "")]),
                .object(["url": "trackingNumber", "valueString": .string(t.trackingNumber.map(Shipment.normalizedTrackingNumber) ?? "")]),
            ]
            if let address = try shipTo() { parts.append(.object(["url": "shipTo", "valueAddress": address])) }
            parts.append(PharmacyStore.shipmentEvent(status: "label-created", time: now, location: nil))
            extensions = extensions.filter { $0["url"]?.stringValue != Shipment.extensionURL }
            extensions.append(.object(["url": .string(Shipment.extensionURL), "extension": .array(parts)]))
        case .preparation:
            // Resumed from hold: filled and verified again from the start.
            body["performer"] = nil
            body["whenPrepared"] = nil
        default:
            break
        }
        body["extension"] = .array(extensions)
        if let note = t.note?.trimmingCharacters(in: .whitespacesAndNewlines), !note.isEmpty {
            body["note"] = .array((body["note"]?.arrayValue ?? []) + [.object(["text": .string(String(note.prefix(1000))), "time": .string(now)])])
        }
        return body
    }

    /// `POST MedicationRequest/{id}/$refill`: checks the prescription against the refill rules (status, expiry,
    /// refills left, an open fill, too soon) and creates a MedicationDispense in `preparation`. Refusals are 422 with
    /// the reason, recorded as refusals; a prescription the caller cannot see answers 404.
    func refill(_ ctx: AccessContext, prescription id: String) async throws(FHIRError) -> StoredResource {
        let scope = ctx.scope
        guard [.patient, .partner, .pharmacist, .technician].contains(scope.role) else {
            throw await store.deny(
                ctx, interaction: "refill", type: .medicationRequest, id: id, error: .forbidden("Role '\(scope.principal.roleName)' may not request refills"))
        }
        // A write: a read-only token or break-glass may not request one (the same rights check as every write path).
        let rights = scope.rights(for: .medicationRequest)
        try await store.requireRight(ctx, .medicationRequest, "refill", id, rights.read && rights.operate)
        let rules = store.refillRules
        let dispenseID = PharmacyStore.newID()
        return try await change(ctx, "refill", .medicationRequest, id: id, refusalDetail: "refused") { tx in
            guard let rx = try tx.current(.medicationRequest, id: id), let body = rx.json else { throw FHIRError.notFound(.medicationRequest, id) }
            if let refusal = rules.check(prescription: body, fills: try tx.fills.ofPrescription(id), now: tx.clock.now) { throw refusal }
            guard let subject = body["subject"]?["reference"]?.stringValue, let patient = Reference(subject), patient.type == .patient else {
                throw FHIRError.invalid("The prescription has no patient subject")
            }
            var d: [String: JSON] = [
                "resourceType": "MedicationDispense", "id": .string(dispenseID), "status": "preparation",
                "extension": .array([.object(["url": .string(FillState.extensionURL), "valueCode": "preparation"])]),
                "subject": .object(["reference": .string(subject)]),
                "authorizingPrescription": .array([.object(["reference": .string("MedicationRequest/\(id)")])]),
            ]
            for key in ["medicationReference", "medicationCodeableConcept", "dosageInstruction"] { d[key] = body[key] }
            if let q = body["dispenseRequest"]?["quantity"] { d["quantity"] = q }
            if let days = RefillRules.daysSupply(body) {
                d["daysSupply"] = .object(["value": .double(days), "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"])
            }
            let r = try tx.insertNew(.medicationDispense, id: dispenseID, .object(d), patients: [patient.id])
            try tx.fills.recordMove(dispense: dispenseID, from: .preparation, to: .preparation, reason: "refill requested")
            try tx.record(
                "refill", type: .medicationDispense, id: dispenseID, patients: [patient.id], detail: "refill of MedicationRequest/\(id)",
                released: PharmacyStore.releasedElements(r.json), result: .created)
            try tx.enqueueWebhook(patient: patient.id, type: "fill.created", data: [
                "dispense": .string(dispenseID), "prescription": .string(id), "patient": .string(patient.id), "state": "preparation",
                "status": "preparation",
            ])
        return r
        }
    }

    /// `POST MedicationDispense/{id}/$transition`: moves a fill along the state machine. Illegal moves answer 409
    /// with the allowed next states; the pharmacist who verifies must not be the person who filled (four-eyes,
    /// checked against the server-side fill history); every move is audited and, for a partner's patient, becomes a
    /// signed webhook event. A refusal is recorded as one, and a fill the caller cannot see answers 404.
    func transition(_ ctx: AccessContext, dispense id: String, _ t: FillTransition) async throws(FHIRError) -> StoredResource {
        let rights = ctx.scope.rights(for: .medicationDispense)
        try await store.requireRight(ctx, .medicationDispense, "transition", id, rights.read && rights.operate)
        try Self.validate(t)
        return try await change(ctx, "transition", .medicationDispense, id: id) { tx in
            guard let current = try tx.current(.medicationDispense, id: id), let body = current.json else {
                throw FHIRError.notFound(.medicationDispense, id)
            }
            let from = FillState.of(body)
            if let refusal = try Self.check(tx.context.scope, from: from, t, filler: { try tx.fills.lastFiller(dispense: id) }) { throw refusal }
            let moved = try Self.apply(t, to: body, scope: tx.context.scope, now: tx.now, shipTo: { try tx.fills.shipTo(body) })
            let r = try tx.replace(current, with: moved)
            try tx.fills.recordMove(dispense: id, from: from, to: t.to, reason: t.reason)
            try tx.record(
                "transition", type: .medicationDispense, id: id, patients: current.patients,
                detail: "fill \(from.rawValue) -> \(t.to.rawValue)\(t.reason.map { " (\($0))" } ?? "")", released: PharmacyStore.releasedElements(r.json))
            var data: [String: JSON] = [
                "dispense": .string(id), "state": .string(t.to.rawValue), "status": .string(t.to.fhirStatus), "previousState": .string(from.rawValue),
            ]
            if let p = current.patients.first { data["patient"] = .string(p) }
            if let rx = moved["authorizingPrescription"]?.arrayValue?.first?["reference"]?.stringValue.flatMap(Reference.init) {
                data["prescription"] = .string(rx.id)
            }
            if let reason = t.reason { data["reason"] = .string(reason) }
            for p in current.patients {
                try tx.enqueueWebhook(patient: p, type: "fill.\(t.to.rawValue)", data: data)
                if t.to == .completed {
                    try tx.enqueueWebhook(patient: p, type: "shipment.label-created", data: [
                        "dispense": .string(id), "patient": .string(p), "shipmentStatus": "label-created", "carrier": .string(t.carrier ?? ""),
                    ])
                }
            }
        return r
        }
    }

    /// Runs a change of `type/id` in one gate transaction. A refusal thrown inside rolls everything back and is
    /// recorded as a refusal of `interaction` (its reason as detail, else `refusalDetail`); a resource the caller
    /// cannot see answers 404 exactly like one that does not exist.
    private func change<T: Sendable>(
        _ ctx: AccessContext, _ interaction: String, _ type: ResourceType, id: String, refusalDetail: String? = nil,
        _ body: @escaping @Sendable (GateTransaction) throws -> T
    ) async throws(FHIRError) -> T {
        do {
            return try await store.write(ctx, body)
        } catch where error.kind == .notFound {
            throw await store.missing(ctx, interaction, type, id)
        } catch where error.kind == .internal || error.kind == .unavailable {
            throw error
        } catch {
            throw await store.deny(ctx, interaction: interaction, type: type, id: id, error: error, detail: error.reason ?? refusalDetail)
        }
    }

    /// Applies carrier tracking updates (a carrier's feed or a fulfillment vendor's returned file) under a system
    /// scope for one pharmacy: each is found by its blind-indexed tracking number, appended to the shipment's events,
    /// and a `delivered` update completes the fill; one audit record names every patient touched.
    /// - returns: how many applied, the tracking numbers no shipment has, and how many were already recorded.
    func applyTracking(_ ctx: AccessContext, _ updates: [TrackingUpdate]) async throws(FHIRError) -> (applied: Int, unknown: [String], repeated: Int) {
        guard ctx.scope.systemReason != nil, ctx.scope.tenant != "*" else {
            throw await store.deny(
                ctx, interaction: "tracking", type: .medicationDispense, id: nil, error: .forbidden("Tracking imports need a system scope for one tenant"))
        }
        for u in updates {
            guard Shipment.carriers.contains(u.carrier) else { throw .invalid("Unknown carrier '\(String(u.carrier.prefix(20)))'") }
            guard Shipment.statuses.contains(u.status) else {
                throw .invalid("Unknown tracking status '\(String(u.status.prefix(30)))'; use one of \(Shipment.statuses.sorted().joined(separator: ", "))")
            }
            guard Shipment.isValidTrackingNumber(u.trackingNumber) else { throw .invalid("Tracking number '\(String(u.trackingNumber.prefix(40)))' is not valid") }
            guard FHIRDate.isValidDateTime(u.time) else { throw .invalid("Tracking time '\(String(u.time.prefix(40)))' is not a FHIR dateTime") }
        }
        return try await store.write(ctx) { tx in
            var applied = 0, repeated = 0
            var unknown: [String] = []
            var touched = Set<String>()
            for u in updates {
                guard let current = try tx.fills.shipped(trackingNumber: u.trackingNumber), var body = current.json,
                    Shipment.carrier(of: body) == u.carrier
                else {
                    unknown.append(u.trackingNumber)
                    continue
                }
                var extensions = body["extension"]?.arrayValue ?? []
                guard let i = extensions.firstIndex(where: { $0["url"]?.stringValue == Shipment.extensionURL }) else { continue }
                var parts = extensions[i]["extension"]?.arrayValue ?? []
                let known = parts.contains { p in
                    guard p["url"]?.stringValue == "event" else { return false }
                    let fields = p["extension"]?.arrayValue ?? []
                    func field(_ name: String, _ key: String) -> String? { fields.first { $0["url"]?.stringValue == name }?[key]?.stringValue }
                    return field("status", "valueCode") == u.status && field("time", "valueDateTime") == u.time
                }
                let from = FillState.of(body)
                if known || (u.status == "delivered" && from == .delivered) {
                    repeated += 1
                    continue
                }
                parts.append(PharmacyStore.shipmentEvent(status: u.status, time: u.time, location: u.location))
                extensions[i]["extension"] = .array(parts)
                var to = from
                if u.status == "delivered", from == .completed {
                    to = .delivered
                    extensions = extensions.filter { $0["url"]?.stringValue != FillState.extensionURL }
                    extensions.append(.object(["url": .string(FillState.extensionURL), "valueCode": "delivered"]))
                }
                body["extension"] = .array(extensions)
                _ = try tx.replace(current, with: body)
                if to != from { try tx.fills.recordMove(dispense: current.id, from: from, to: to, reason: "carrier: delivered") }
                for p in current.patients {
                    try tx.enqueueWebhook(patient: p, type: "shipment.\(u.status)", data: [
                        "dispense": .string(current.id), "patient": .string(p), "shipmentStatus": .string(u.status), "carrier": .string(u.carrier),
                    ])
                    if to == .delivered {
                        try tx.enqueueWebhook(patient: p, type: "fill.delivered", data: [
                            "dispense": .string(current.id), "patient": .string(p), "state": "delivered", "status": "completed", "previousState": "completed",
                        ])
                    }
                }
                touched.formUnion(current.patients)
                applied += 1
            }
            try tx.record(
                "tracking", type: .medicationDispense, patients: touched.sorted(),
                detail: "\(tx.context.scope.systemReason ?? "tracking"): \(applied) applied, \(repeated) repeated, \(unknown.count) unknown")
            return (applied, unknown, repeated)
        }
    }
}
