import Foundation
import GRDB
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

    // MARK: - Refills

    /// `POST MedicationRequest/{id}/$refill`: checks the prescription (status, expiry, refills left, an open fill,
    /// too-soon) and creates a MedicationDispense in `preparation`. Refusals are 422 with the reason, audited.
    package func refill(_ ctx: AccessContext, prescription id: String) async throws(FHIRError) -> StoredResource {
        let scope = ctx.scope
        guard [.patient, .partner, .pharmacist, .technician].contains(scope.role) else {
            throw await deny(ctx, interaction: "refill", type: .medicationRequest, id: id,
                error: .forbidden("Role '\(scope.principal.roleName)' may not request refills"))
        }
        // A write: a read-only token or break-glass may not request one (the same rights check as every write path).
        let rights = scope.rights(for: .medicationRequest)
        try await requireRight(ctx, .medicationRequest, "refill", id, rights.read && rights.operate)
        let rules = refillRules
        let tenant = scope.tenant
        let dispenseID = Self.newID()
        let outcome: Result<(StoredResource, Set<String>), FHIRError> = try await runWrite { [self] db in
            guard let rx = try scopedRows(db, scope, type: .medicationRequest, where: "v.id = ? AND v.current = 1 AND v.deleted = 0", [id]).first,
                let body = rx.json
            else { return .failure(.notFound(.medicationRequest, id)) }
            let fills = try fillsOf(db, tenant: tenant, prescription: id)
            if let refusal = rules.check(prescription: body, fills: fills.map(\.1), now: self.clock.now) { return .failure(refusal) }
            guard let subject = body["subject"]?["reference"]?.stringValue, let patient = Reference(subject), patient.type == .patient else {
                return .failure(.invalid("The prescription has no patient subject"))
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
            let json = JSON.object(d)
            let prepared = PreparedWrite(
                type: .medicationDispense, id: dispenseID, json: json, patients: [patient.id],
                terms: ResourceIndexer.terms(of: .medicationDispense, json), owner: nil)
            let r = try insertVersion(db, tenant: tenant, prepared, version: 1, scope: scope)
            try recordFillEvent(db, tenant: tenant, dispense: dispenseID, from: .preparation, to: .preparation, scope: scope, reason: "refill requested")
            let e = entry(
                ctx, action: "refill", type: .medicationDispense, id: dispenseID, patients: [patient.id], outcome: "success", result: .created,
                detail: "refill of MedicationRequest/\(id)", released: Self.releasedElements(r.json))
            try auditLog.append([e], in: db)
            try enqueueWebhook(db, tenant: tenant, patient: patient.id, type: "fill.created", data: [
                "dispense": .string(dispenseID), "prescription": .string(id), "patient": .string(patient.id), "state": "preparation",
                "status": "preparation",
            ])
            return .success((r, [patient.id]))
        }
        switch outcome {
        case .success(let (r, _)): return r
        case .failure(let e) where e.kind == .notFound: throw await missing(ctx, "refill", .medicationRequest, id)
        case .failure(let e): throw await deny(ctx, interaction: "refill", type: .medicationRequest, id: id, error: e, detail: e.reason ?? "refused")
        }
    }

    /// What a fill operation's answer holds (the audit record's ``AuditEntry/released``), so that a breach scope
    /// counts only what left: `extension` (the ship-to address) only when the fill carries a shipment.
    static func releasedElements(_ dispense: JSON?) -> AuditEntry.Released {
        guard case .object(let o)? = dispense else { return AuditEntry.Released(elements: []) }
        let shipped = (o["extension"]?.arrayValue ?? []).contains { $0["url"]?.stringValue == Shipment.extensionURL }
        let keys = o.keys.filter { $0 != "extension" || shipped }.filter { !["resourceType", "id", "meta"].contains($0) }
        return AuditEntry.Released(elements: keys.map { "MedicationDispense.\($0)" })
    }

    /// Earlier fills of a prescription (system read inside the caller's transaction; ids and states only leave it).
    func fillsOf(_ db: Database, tenant: String, prescription: String) throws -> [(String, RefillRules.Fill)] {
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

    // MARK: - Fill lifecycle

    /// Who may move a fill to `state`.
    static func mayMove(_ role: Role, to state: FillState) -> Bool {
        switch state {
        case .inProgress, .completed, .delivered, .onHold: role == .technician || role == .pharmacist
        case .verified, .preparation, .declined: role == .pharmacist
        case .cancelled: role == .pharmacist || role == .partner
        }
    }

    /// `POST MedicationDispense/{id}/$transition`: moves a fill along the state machine (``FillState``).
    /// Illegal moves answer 409 with the allowed next states; the pharmacist who verifies must not be the person who
    /// filled (four-eyes, checked against the server-side fill history); every move is audited and, for a partner's
    /// patient, becomes a signed webhook event.
    package func transition(_ ctx: AccessContext, dispense id: String, _ t: FillTransition) async throws(FHIRError) -> StoredResource {
        let scope = ctx.scope
        let rights = scope.rights(for: .medicationDispense)
        try await requireRight(ctx, .medicationDispense, "transition", id, rights.read && rights.operate)
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
        let tenant = scope.tenant
        let actor = scope.principal.subject
        let outcome: Result<StoredResource, FHIRError> = try await runWrite { [self] db in
            guard let current = try scopedRows(db, scope, type: .medicationDispense, where: "v.id = ? AND v.current = 1 AND v.deleted = 0", [id]).first,
                var body = current.json
            else { return .failure(.notFound(.medicationDispense, id)) }
            let from = FillState.of(body)
            guard from.next.contains(t.to) else {
                let allowed = from.next.map(\.rawValue)
                return .failure(FHIRError(
                    kind: .conflict, code: "business-rule",
                    diagnostics: "A fill in state \(from.rawValue) cannot move to \(t.to.rawValue); allowed next states: "
                        + (allowed.isEmpty ? "none (\(from.rawValue) is final)" : allowed.joined(separator: ", ")),
                    reason: "illegal-transition"))
            }
            // System jobs (a fulfillment vendor's returned tracking file) may only record shipping and delivery.
            let allowed = scope.systemReason != nil ? [.completed, .delivered].contains(t.to) : Self.mayMove(scope.role, to: t.to)
            guard allowed else {
                return .failure(.forbidden("Role '\(scope.principal.roleName)' may not move a fill to \(t.to.rawValue)"))
            }
            if scope.role == .partner, t.to == .cancelled, from != .preparation && from != .onHold {
                return .failure(FHIRError(
                    kind: .conflict, code: "business-rule",
                    diagnostics: "A partner may cancel a fill only before it is filled (preparation or on-hold); this one is \(from.rawValue)",
                    reason: "illegal-transition"))
            }
            if t.to == .verified {
                // Four-eyes: the person who filled (moved it to in-progress last) may not verify it.
                let filler = try String.fetchOne(
                    db, sql: "SELECT actor_id FROM fill_event WHERE tenant = ? AND dispense_id = ? AND to_state = 'in-progress' ORDER BY seq DESC LIMIT 1",
                    arguments: [tenant, id])
                if filler == actor {
                    return .failure(FHIRError(
                        kind: .forbidden, code: "forbidden",
                        diagnostics: "Four-eyes rule: you filled this prescription, so another pharmacist must verify it", reason: "four-eyes"))
                }
            }
            let now = self.timestamp()
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
                    // The role, not the person: patients and partners read this resource; who it was is in fill_event.
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
                let shipTo = try shipToAddress(db, tenant: tenant, dispense: body)
                var parts: [JSON] = [
                    .object(["url": "carrier", "valueCode": .string(t.carrier ?? "")]),
                    .object(["url": "trackingNumber", "valueString": .string(t.trackingNumber.map(Shipment.normalizedTrackingNumber) ?? "")]),
                ]
                if let shipTo { parts.append(.object(["url": "shipTo", "valueAddress": shipTo])) }
                parts.append(Self.shipmentEvent(status: "label-created", time: now, location: nil))
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
            body["meta"] = nil
            try ResourceValidator.validate(body, as: .medicationDispense, id: id)
            let prepared = PreparedWrite(
                type: .medicationDispense, id: id, json: body, patients: Set(current.patients),
                terms: ResourceIndexer.terms(of: .medicationDispense, body), owner: nil)
            try retire(db, type: .medicationDispense, id: id)
            let r = try insertVersion(db, tenant: tenant, prepared, version: current.version + 1, scope: scope)
            try recordFillEvent(db, tenant: tenant, dispense: id, from: from, to: t.to, scope: scope, reason: t.reason)
            let e = entry(
                ctx, action: "transition", type: .medicationDispense, id: id, patients: current.patients, outcome: "success", result: .ok,
                detail: "fill \(from.rawValue) -> \(t.to.rawValue)\(t.reason.map { " (\($0))" } ?? "")", released: Self.releasedElements(r.json))
            try auditLog.append([e], in: db)
            var data: [String: JSON] = [
                "dispense": .string(id), "state": .string(t.to.rawValue), "status": .string(t.to.fhirStatus), "previousState": .string(from.rawValue),
            ]
            if let p = current.patients.first { data["patient"] = .string(p) }
            if let rx = body["authorizingPrescription"]?.arrayValue?.first?["reference"]?.stringValue.flatMap(Reference.init) { data["prescription"] = .string(rx.id) }
            if let reason = t.reason { data["reason"] = .string(reason) }
            for p in current.patients {
                try enqueueWebhook(db, tenant: tenant, patient: p, type: "fill.\(t.to.rawValue)", data: data)
                if t.to == .completed {
                    try enqueueWebhook(db, tenant: tenant, patient: p, type: "shipment.label-created", data: [
                        "dispense": .string(id), "patient": .string(p), "shipmentStatus": "label-created", "carrier": .string(t.carrier ?? ""),
                    ])
                }
            }
            return .success(r)
        }
        switch outcome {
        case .success(let r): return r
        case .failure(let e) where e.kind == .notFound: throw await missing(ctx, "transition", .medicationDispense, id)
        case .failure(let e): throw await deny(ctx, interaction: "transition", type: .medicationDispense, id: id, error: e, detail: e.reason)
        }
    }

    func recordFillEvent(_ db: Database, tenant: String, dispense: String, from: FillState, to: FillState, scope: AccessScope, reason: String?) throws {
        try db.execute(
            sql: "INSERT INTO fill_event (tenant, dispense_id, from_state, to_state, actor_id, actor_role, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            arguments: [tenant, dispense, from.rawValue, to.rawValue, scope.principal.subject, scope.principal.roleName, reason, self.timestamp()])
    }

    /// The patient's first address (home first), read inside the shipping transaction.
    func shipToAddress(_ db: Database, tenant: String, dispense: JSON) throws -> JSON? {
        guard let s = dispense["subject"]?["reference"]?.stringValue, let ref = Reference(s) else { return nil }
        let patient = try scopedRows(
            db, .system(reason: "ship-to address", tenant: tenant), type: .patient, where: "v.id = ? AND v.current = 1 AND v.deleted = 0", [ref.id]
        ).first?.json
        let addresses = patient?["address"]?.arrayValue ?? []
        return addresses.first { $0["use"]?.stringValue == "home" } ?? addresses.first
    }

    static func shipmentEvent(status: String, time: String, location: String?) -> JSON {
        var parts: [JSON] = [.object(["url": "status", "valueCode": .string(status)]), .object(["url": "time", "valueDateTime": .string(time)])]
        if let location { parts.append(.object(["url": "location", "valueString": .string(location)])) }
        return .object(["url": "event", "extension": .array(parts)])
    }

    // MARK: - Carrier tracking

    /// Applies carrier tracking updates (a carrier's feed or a fulfillment vendor's returned file) under a system
    /// scope: each is found by its blind-indexed tracking number, appended to the shipment's events, and a
    /// `delivered` update completes the fill. Returns how many were applied and the tracking numbers not found.
    ///
    /// Applying the same file twice changes nothing: an update whose status and time the shipment already records is
    /// counted in `repeated` and sends no webhook, and only the first `delivered` completes the fill.
    package func applyTracking(
        _ ctx: AccessContext, _ updates: [TrackingUpdate]
    ) async throws(FHIRError) -> (applied: Int, unknown: [String], repeated: Int) {
        guard ctx.scope.systemReason != nil, ctx.scope.tenant != "*" else {
            throw await deny(ctx, interaction: "tracking", type: .medicationDispense, id: nil, error: .forbidden("Tracking imports need a system scope for one tenant"))
        }
        for u in updates {
            guard Shipment.carriers.contains(u.carrier) else { throw .invalid("Unknown carrier '\(String(u.carrier.prefix(20)))'") }
            guard Shipment.statuses.contains(u.status) else {
                throw .invalid("Unknown tracking status '\(String(u.status.prefix(30)))'; use one of \(Shipment.statuses.sorted().joined(separator: ", "))")
            }
            guard Shipment.isValidTrackingNumber(u.trackingNumber) else { throw .invalid("Tracking number '\(String(u.trackingNumber.prefix(40)))' is not valid") }
            guard FHIRDate.isValidDateTime(u.time) else { throw .invalid("Tracking time '\(String(u.time.prefix(40)))' is not a FHIR dateTime") }
        }
        let scope = ctx.scope
        let tenant = scope.tenant
        let index = blindIndex
        return try await runWrite { [self] db in
            var applied = 0
            var repeated = 0
            var unknown: [String] = []
            var touched = Set<String>()
            for u in updates {
                guard let current = try scopedRows(
                    db, scope, type: .medicationDispense,
                    where: "v.current = 1 AND v.deleted = 0 AND v.pk IN (SELECT pk FROM search_index WHERE param = 'tracking' AND value = ?)",
                    [index.token(parameter: "tracking", value: u.trackingNumber.uppercased())]
                ).first, var body = current.json, Shipment.carrier(of: body) == u.carrier else {
                    unknown.append(u.trackingNumber)
                    continue
                }
                var extensions = body["extension"]?.arrayValue ?? []
                guard let i = extensions.firstIndex(where: { $0["url"]?.stringValue == Shipment.extensionURL }) else { continue }
                var parts = extensions[i]["extension"]?.arrayValue ?? []
                let event = Self.shipmentEvent(status: u.status, time: u.time, location: u.location)
                let known = parts.contains { p in
                    guard p["url"]?.stringValue == "event" else { return false }
                    let fields = p["extension"]?.arrayValue ?? []
                    func field(_ name: String, _ key: String) -> String? { fields.first { $0["url"]?.stringValue == name }?[key]?.stringValue }
                    return field("status", "valueCode") == u.status && field("time", "valueDateTime") == u.time
                }
                let alreadyDelivered = u.status == "delivered" && FillState.of(body) == .delivered
                if known || alreadyDelivered {
                    repeated += 1
                    continue
                }
                parts.append(event)
                extensions[i]["extension"] = .array(parts)
                let from = FillState.of(body)
                var to = from
                if u.status == "delivered", from == .completed {
                    to = .delivered
                    extensions = extensions.filter { $0["url"]?.stringValue != FillState.extensionURL }
                    extensions.append(.object(["url": .string(FillState.extensionURL), "valueCode": "delivered"]))
                }
                body["extension"] = .array(extensions)
                body["meta"] = nil
                let prepared = PreparedWrite(
                    type: .medicationDispense, id: current.id, json: body, patients: Set(current.patients),
                    terms: ResourceIndexer.terms(of: .medicationDispense, body), owner: nil)
                try retire(db, type: .medicationDispense, id: current.id)
                _ = try insertVersion(db, tenant: tenant, prepared, version: current.version + 1, scope: scope)
                if to != from { try recordFillEvent(db, tenant: tenant, dispense: current.id, from: from, to: to, scope: scope, reason: "carrier: delivered") }
                for p in current.patients {
                    try enqueueWebhook(db, tenant: tenant, patient: p, type: "shipment.\(u.status)", data: [
                        "dispense": .string(current.id), "patient": .string(p), "shipmentStatus": .string(u.status), "carrier": .string(u.carrier),
                    ])
                    if to == .delivered {
                        try enqueueWebhook(db, tenant: tenant, patient: p, type: "fill.delivered", data: [
                            "dispense": .string(current.id), "patient": .string(p), "state": "delivered", "status": "completed", "previousState": "completed",
                        ])
                    }
                }
                touched.formUnion(current.patients)
                applied += 1
            }
            let e = entry(
                ctx, action: "tracking", type: .medicationDispense, id: nil, patients: touched.sorted(), outcome: "success", result: .ok,
                detail: "\(scope.systemReason ?? "tracking"): \(applied) applied, \(repeated) repeated, \(unknown.count) unknown")
            try auditLog.append([e], in: db)
            return (applied, unknown, repeated)
        }
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
            try Row.fetchAll(
                db, sql: "SELECT from_state, to_state, actor_id, actor_role, reason, at FROM fill_event WHERE tenant = ? AND dispense_id = ? ORDER BY seq",
                arguments: [tenant, id]
            ).map { FillEvent(from: $0[0], to: $0[1], actorID: $0[2], actorRole: $0[3], reason: $0[4], at: $0[5]) }
        }
        return (dispense, events)
    }
}
