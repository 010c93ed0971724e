import Foundation
import Hummingbird
import SafeRxModel
import SafeRxPharmacy
import SafeRxPolicy
import SafeRxStoreCore
import SafeRxWeb

/// The pharmacy console (`/console`): the work queue by fill state, fill and verify screens (four-eyes is enforced by
/// the store; the screen also hides "verify" from the person who filled), patient lookup by exact name and birth date
/// or by Rx number (never by browsing), the message inbox with assignment, and partner webhook deliveries.
extension WebFront {
    func registerConsole(on router: Router<SafeRxContext>) {
        registerSignIn(.console, on: router)
        registerAccount(.console, on: router)
        registerMessages(.console, on: router)
        router.get("/console") { req, ctx in
            try await self.page(req, ctx, area: .console, signedIn: true) { s in
                let access = try await self.access(req, ctx, s, "list", .medicationDispense)
                let meds = try await self.medications(access)
                var groups: [[String: Any]] = []
                var counts: [[String: Any]] = []
                // Every list pages and says how many there are: `?state=S&page=N` shows one state's page N. The queue is
                // a work list (patient name and birth date, drug, state), audited as `list`; opening a fill is the read.
                let only = req.uri.queryParameters.get("state").flatMap { FillState(rawValue: String($0)) }
                let pageNumber = max(1, min(10_000, Int(req.uri.queryParameters.get("page") ?? "1") ?? 1))
                let pageSize = 50
                let states = [FillState.preparation, .inProgress, .verified, .onHold]
                let totals = try await pharmacy.fills.counts(access, states: states)
                for state in states {
                    counts.append(["label": Display.stateLabel(state), "count": totals[state] ?? 0])
                    guard only == nil || only == state else { continue }
                    let offset = state == only ? (pageNumber - 1) * pageSize : 0
                    let page = try await pharmacy.fills.queue(access, state: state, count: pageSize, offset: offset)
                    let fills = page.entries.map { Display.queueEntry($0, medications: meds) }
                    var group: [String: Any] = ["state": state.rawValue, "label": Display.stateLabel(state), "fills": fills]
                    if page.total > 0 { group["paging"] = "\(fills.isEmpty ? 0 : offset + 1)–\(offset + fills.count) of \(page.total)" }
                    if offset > 0 { group["previous"] = "/console?state=\(state.rawValue)&page=\(offset / pageSize)" }
                    if offset + fills.count < page.total { group["next"] = "/console?state=\(state.rawValue)&page=\(offset / pageSize + 2)" }
                    groups.append(group)
                }
                return ("console-queue", ["title": "Work queue", "current": "/console", "groups": groups, "counts": counts])
            }
        }
        router.get("/console/fills/:id") { req, ctx in
            let id = ctx.parameters.get("id") ?? ""
            return try await self.page(req, ctx, area: .console, signedIn: true) { s in try await self.fillPage(req, ctx, s, id: id) }
        }
        router.get("/console/fills/:id/confirm") { req, ctx in
            let id = ctx.parameters.get("id") ?? ""
            return try await self.page(req, ctx, area: .console, signedIn: true) { s in
                guard let state = req.uri.queryParameters.get("state").flatMap({ FillState(rawValue: String($0)) }), state.needsReason else {
                    throw Redirect(location: "/console/fills/\(id)")
                }
                let (page, values) = try await self.fillPage(req, ctx, s, id: id)
                guard page == "console-fill", (values["next"] as? [[String: Any]] ?? []).contains(where: { $0["state"] as? String == state.rawValue }) else {
                    throw Redirect(location: "/console/fills/\(id)")
                }
                let verb: String =
                    switch state {
                    case .onHold: "Put this fill on hold"
                    case .cancelled: "Cancel this fill"
                    default: "Decline this fill"
                    }
                var v = values
                v["title"] = "\(verb)?"
                v["verb"] = verb
                v["confirmState"] = state.rawValue
                v["confirmLabel"] = state == .onHold ? "Put on hold" : state == .cancelled ? "Cancel the fill" : "Decline the fill"
                v["final"] = state != .onHold
                v["reasons"] = FillReason.codes.sorted { $0.value < $1.value }.map { ["code": $0.key, "display": $0.value] }
                return ("console-confirm", v)
            }
        }
        router.post("/console/fills/:id/transition") { req, ctx in
            let id = ctx.parameters.get("id") ?? ""
            return try await self.post(req, ctx, area: .console, back: "/console/fills/\(id)") { s, form in
                guard let state = FillState(rawValue: form.value("state") ?? "") else { throw FHIRError.invalid("Choose a next state") }
                if state.needsReason, form.value("reason") == nil { throw FHIRError.invalid("Choose a reason for “\(Display.stateLabel(state))”") }
                let access = try await self.access(req, ctx, s, "transition", .medicationDispense)
                _ = try await pharmacy.fills.transition(
                    access, dispense: id,
                    FillTransition(to: state, reason: form.value("reason"), carrier: form.value("carrier"), trackingNumber: form.value("trackingNumber")))
                s.flash.append(.init(.info, "Fill moved to “\(Display.stateLabel(state))”."))
                return "/console/fills/\(id)"
            }
        }
        router.get("/console/patients") { req, ctx in
            try await self.page(req, ctx, area: .console, signedIn: true) { _ in ("console-lookup", ["title": "Find a patient", "current": "/console/patients"]) }
        }
        router.post("/console/patients") { req, ctx in
            try await self.postPage(req, ctx, area: .console, signedIn: true) { s, form in try await self.lookup(req, ctx, s, form) }
        }
        router.get("/console/patients/:id") { req, ctx in
            let id = ctx.parameters.get("id") ?? ""
            return try await self.page(req, ctx, area: .console, signedIn: true) { s in try await self.patientPage(req, ctx, s, id: id) }
        }
        router.get("/console/webhooks") { req, ctx in
            try await self.page(req, ctx, area: .console, signedIn: true) { s in
                let access = try await self.access(req, ctx, s, "webhooks", nil)
                let state = req.uri.queryParameters.get("state").flatMap { WebhookEvent.State(rawValue: $0) }
                let events = try await pharmacy.partners.pharmacyEvents(access, state: state)
                return ("console-webhooks", [
                    "title": "Partner webhooks", "current": "/console/webhooks",
                    "events": events.map { e -> [String: Any] in
                        ["id": e.id, "client": e.clientID, "type": e.type, "state": e.state.rawValue, "attempts": e.attempts,
                         "lastStatus": e.lastStatus.map(String.init) ?? (e.lastError ?? "–"), "created": Display.minute(e.created)]
                    },
                ])
            }
        }
    }

    func fillPage(_ req: Request, _ ctx: SafeRxContext, _ s: WebSession, id: String) async throws -> (String, [String: Any]) {
        let access = try await access(req, ctx, s, "read", .medicationDispense)
        let (dispense, events) = try await pharmacy.fills.history(access, dispense: id)
        let json = dispense.json ?? .null
        var meds: [String: JSON] = [:]
        if let ref = json["medicationReference"]?["reference"]?.stringValue, ref.hasPrefix("Medication/"),
            let m = try? await pharmacy.records.read(access, .medication, id: String(ref.dropFirst(11))).json
        {
            meds[ref] = m
        }
        let names = try await pharmacy.directory.usernames(access, ids: events.map(\.actorID))
        let state = FillState.of(json)
        let me = access.scope.principal.subject
        let filler = events.last { $0.to == FillState.inProgress.rawValue }?.actorID
        let isPharmacist = s.role == Role.pharmacist.rawValue
        let next: [[String: Any]] = state.next.compactMap { to in
            if to == .verified && (!isPharmacist || filler == me) { return nil }
            let label: String =
                switch to {
                case .inProgress: "Start filling"
                case .verified: "Verify (pharmacist check)"
                case .completed: "Ship"
                case .preparation: "Resume"
                case .onHold: "Put on hold"
                case .cancelled: "Cancel the fill"
                case .declined: "Decline the fill"
                case .delivered: "Mark delivered"
                }
            // Hold, cancel and decline stop a patient's medication: they open a confirmation with a reason to choose
            // (none preset) instead of acting on one click.
            return ["id": id, "state": to.rawValue, "label": label, "ship": to == .completed, "confirm": to.needsReason, "act": !to.needsReason]
        }
        var v = Display.order(dispense, medications: meds)
        v["title"] = "Fill \(Display.shortID(id))"
        v["current"] = "/console"
        v["dosage"] = Display.dosage(json)
        v["quantity"] = Display.number(json["quantity"]?["value"])
        v["daysSupply"] = Display.number(json["daysSupply"]?["value"])
        if let filler { v["filledBy"] = names[filler] ?? filler }
        v["history"] = events.map { e -> [String: Any] in
            var h: [String: Any] = ["time": String(e.at.prefix(16)).replacingOccurrences(of: "T", with: " "),
                                    "from": FillState(rawValue: e.from).map(Display.stateLabel) ?? e.from,
                                    "to": FillState(rawValue: e.to).map(Display.stateLabel) ?? e.to, "actor": names[e.actorID] ?? e.actorRole]
            if let r = e.reason { h["reason"] = FillReason.codes[r] ?? r }
            return h
        }
        v["next"] = next
        v["hasNext"] = !next.isEmpty
        if state == .inProgress && filler == me {
            v["fourEyesNote"] = "You filled this prescription, so another pharmacist must verify it (four-eyes check)."
        }
        return ("console-fill", v)
    }

    /// The formulary's Medication resources by reference (not PHI; read through the gate like everything else).
    func medications(_ access: AccessContext) async throws -> [String: JSON] {
        Display.medications(try await search(access, .medication, [("_count", "100")]))
    }

    func lookup(_ req: Request, _ ctx: SafeRxContext, _ s: WebSession, _ form: FormData) async throws -> (String, [String: Any]) {
        let access = try await access(req, ctx, s, "search", .patient)
        var ids: [String] = []
        if let rx = form.value("rxNumber") {
            let page = try await search(access, .medicationRequest, [("identifier", "urn:saferx:rx-number|\(rx.uppercased())"), ("_count", "5")])
            ids = Array(Set(page.matches.map { Display.patientID($0.json ?? .null) })).sorted()
        } else if let family = form.value("family"), let given = form.value("given"), let birth = form.value("birthDate") {
            let page = try await search(access, .patient, [("family:exact", family), ("given", given), ("birthdate", birth), ("_count", "10")])
            ids = page.matches.map(\.id)
        } else {
            // The form stays as it was typed, with the message beside it.
            return ("console-lookup", [
                "title": "Find a patient", "current": "/console/patients", "problem": "Enter the family name, given name and birth date, or an Rx number.",
                "family": form.value("family") ?? "", "given": form.value("given") ?? "", "birthDate": form.value("birthDate") ?? "",
            ])
        }
        var results: [[String: Any]] = []
        for id in ids.prefix(10) {
            guard let p = try? await pharmacy.records.read(access, .patient, id: id).json else { continue }
            results.append(["id": id, "name": Display.humanName(p), "birthDate": p["birthDate"]?.stringValue ?? ""])
        }
        return ("console-lookup", ["title": "Find a patient", "current": "/console/patients", "searched": true, "results": results])
    }

    func patientPage(_ req: Request, _ ctx: SafeRxContext, _ s: WebSession, id: String) async throws -> (String, [String: Any]) {
        let access = try await access(req, ctx, s, "read", .patient)
        let patient = try await pharmacy.records.read(access, .patient, id: id).json ?? .null
        let rx = try await search(access, .medicationRequest, [("patient", id), ("_include", "MedicationRequest:medication"), ("_count", "100")])
        let fills = try await search(access, .medicationDispense, [("patient", id), ("_count", "100")])
        let meds = Display.medications(rx).merging(try await medications(access)) { a, _ in a }
        return ("console-patient", [
            "title": Display.humanName(patient), "current": "/console/patients", "id": id, "name": Display.humanName(patient),
            "birthDate": patient["birthDate"]?.stringValue ?? "", "address": Display.address(patient), "contact": Display.contact(patient),
            "prescriptions": rx.matches.filter { $0.type == .medicationRequest }.map { r -> [String: Any] in
                let json = r.json ?? .null
                return ["medication": Display.medicationName(json, medications: meds), "rxNumber": Display.rxNumber(json),
                        "status": json["status"]?.stringValue ?? "", "refillsLeft": RefillRules.refillsAuthorized(json)]
            },
            "orders": fills.matches.filter { $0.type == .medicationDispense }.map { Display.order($0, medications: meds) },
        ])
    }
}
