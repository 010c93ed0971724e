import Foundation
import Hummingbird
import SafeRxModel
import SafeRxPharmacy
import SafeRxStoreCore
import SafeRxWeb

/// The patient portal (`/portal`): sign-up, sign-in with MFA, prescriptions and refills, orders and shipments,
/// messages with attachments, caregivers, the access log and accounting of disclosures, account settings.
extension WebFront {
    func registerPortal(on router: Router<SafeRxContext>) {
        registerSignIn(.portal, on: router)
        registerAccount(.portal, on: router)
        router.get("/portal") { req, ctx in
            try await self.page(req, ctx, area: .portal, signedIn: true) { s in try await self.portalHome(req, ctx, s) }
        }
        router.post("/portal/prescriptions/:id/refill") { req, ctx in
            let id = ctx.parameters.get("id") ?? ""
            return try await self.post(req, ctx, area: .portal, back: "/portal") { s, _ in
                let access = try await self.access(req, ctx, s, "refill", .medicationRequest)
                do {
                    _ = try await pharmacy.fills.refill(access, prescription: id)
                    s.flash.append(.init(.info, "Refill requested. We will let you know when it ships."))
                } catch let e as FHIRError where e.kind == .businessRule {
                    s.flash.append(.init(.error, "We could not request this refill: \(e.diagnostics)"))
                } catch let e as FHIRError where e.kind == .notFound {
                    // Another patient's prescription and one that does not exist read the same.
                    s.flash.append(.init(.error, "We could not request this refill: there is no such prescription on this account."))
                }
                return "/portal#orders"
            }
        }
        registerSignup(on: router)
        registerMessages(.portal, on: router)
        registerCaregivers(on: router)
        router.get("/portal/access-log") { req, ctx in
            try await self.page(req, ctx, area: .portal, signedIn: true) { s in
                let patient = try self.ownPatient(s)
                let access = try await self.access(req, ctx, s, "access-log", .auditEvent)
                let all = try await pharmacy.privacy.accessLog(access, patient: patient, everyAccess: true)
                let disclosures = try await pharmacy.privacy.accessLog(access, patient: patient, everyAccess: false)
                func row(_ e: AccessLogEntry) -> [String: Any] {
                    ["date": String(e.time.prefix(16)).replacingOccurrences(of: "T", with: " "), "recipient": e.recipient,
                     "purpose": Display.purpose(e.purpose), "code": e.purpose, "what": Display.access(action: e.action, resource: e.resource),
                     "resource": e.resource, "disclosed": e.detail.isEmpty ? e.resource : e.detail]
                }
                return ("portal-access", [
                    "title": "Who looked at my data", "current": "/portal/access-log",
                    "accesses": all.reversed().filter { $0.recipient != "you" }.prefix(200).map(row),
                    "own": all.reversed().filter { $0.recipient == "you" }.prefix(200).map(row), "ownCount": all.filter { $0.recipient == "you" }.count,
                    "disclosures": disclosures.reversed().map(row),
                ])
            }
        }
    }

    /// The signed-in user's own patient id (not the one they care for): the access log is never a caregiver's.
    func ownPatient(_ s: WebSession) throws -> String {
        guard s.ownPatient == nil, let p = s.patient else {
            throw FHIRError.forbidden("Switch back to your own records to see this page")
        }
        return p
    }

    func portalHome(_ req: Request, _ ctx: SafeRxContext, _ s: WebSession) async throws -> (String, [String: Any]) {
        guard let patient = s.patient else { throw FHIRError.forbidden("This account has no patient record") }
        var values: [String: Any] = ["title": "Prescriptions", "current": "/portal"]
        if s.ownPatient != nil { values["actingFor"] = patient }
        // A caregiver with a messages-only grant has no prescriptions: show what the grant allows.
        let rxAccess = try await accessUnlessForbidden(req, ctx, s, .medicationRequest)
        if let rxAccess {
            let rx = try await search(rxAccess, .medicationRequest, [("patient", patient), ("_include", "MedicationRequest:medication"), ("_count", "100")])
            let fills = try await search(rxAccess, .medicationDispense, [("patient", patient), ("_count", "100")])
            let meds = Display.medications(rx)
            var byRx: [String: [RefillRules.Fill]] = [:]
            for f in fills.matches {
                guard let json = f.json else { continue }
                for p in json["authorizingPrescription"]?.arrayValue ?? [] {
                    if let ref = p["reference"]?.stringValue {
                        byRx[ref, default: []].append(RefillRules.Fill(state: FillState.of(json), date: Date(), daysSupply: nil))
                    }
                }
            }
            values["prescriptions"] = rx.matches.filter { $0.type == .medicationRequest }.compactMap { r -> [String: Any]? in
                guard let json = r.json else { return nil }
                return [
                    "id": r.id, "medication": Display.medicationName(json, medications: meds), "dosage": Display.dosage(json),
                    "rxNumber": Display.rxNumber(json), "status": json["status"]?.stringValue ?? "",
                    "refillsLeft": RefillRules.refillsLeft(json, fills: byRx["MedicationRequest/\(r.id)"] ?? []),
                ]
            }
            values["orders"] = fills.matches.filter { $0.type == .medicationDispense }.sorted { $0.lastUpdated > $1.lastUpdated }
                .map { Display.order($0, medications: meds) }
        }
        if let mAccess = try await accessUnlessForbidden(req, ctx, s, .communication) {
            let unread = try await pharmacy.messaging.unread(mAccess).messages
            if unread > 0 { values["unread"] = unread == 1 ? "1 unread message" : "\(unread) unread messages" }
        }
        return ("portal-home", values)
    }

    /// The access context for searching `type`, or `nil` when the grant does not cover it (403, audited as a denial);
    /// a dead token still ends the session.
    func accessUnlessForbidden(_ req: Request, _ ctx: SafeRxContext, _ s: WebSession, _ type: ResourceType) async throws -> AccessContext? {
        do {
            return try await access(req, ctx, s, "search", type)
        } catch let e as FHIRError where e.kind == .forbidden {
            return nil
        }
    }

    // MARK: Sign-up and password reset

    func registerSignup(on router: Router<SafeRxContext>) {
        router.get("/portal/signup") { req, ctx in
            try await self.page(req, ctx, area: .portal, form: true) { s in
                (s.pending["signup"] == nil ? "portal-signup" : "portal-signup-verify", ["title": "Create your account"])
            }
        }
        router.post("/portal/signup") { req, ctx in
            try await self.post(req, ctx, area: .portal, signedIn: false, back: "/portal/signup") { s, form in
                guard let family = form.value("family"), let given = form.value("given"), let birth = form.value("birthDate"),
                    let rx = form.value("rxNumber")
                else { throw FHIRError.invalid("Fill in every field") }
                let id = try await auth.startSignup(
                    tenant: signupTenant, IdentityClaim(family: family, given: given, birthDate: birth, rxNumber: rx), request: fhir.requestInfo(req, ctx))
                s.pending["signup"] = id
                return "/portal/signup"
            }
        }
        router.post("/portal/signup/verify") { req, ctx in
            try await self.post(req, ctx, area: .portal, signedIn: false, back: "/portal/signup") { s, form in
                guard let id = s.pending["signup"] else { throw Redirect(location: "/portal/signup") }
                _ = try await auth.completeSignup(
                    id: id, code: form.value("code") ?? "", username: form.value("username") ?? "", password: form["password"] ?? "",
                    request: fhir.requestInfo(req, ctx))
                s.pending["signup"] = nil
                s.flash.append(.init(.info, "Your account is ready. Sign in, then turn on two-step sign-in under Account."))
                return "/portal/login"
            }
        }
        router.get("/portal/reset") { req, ctx in
            try await self.page(req, ctx, area: .portal, form: true) { s in
                ("portal-reset", ["title": "Reset your password", "resetStarted": s.pending["reset"] != nil])
            }
        }
        router.post("/portal/reset") { req, ctx in
            try await self.post(req, ctx, area: .portal, signedIn: false, back: "/portal/reset") { s, form in
                s.pending["reset"] = try await auth.startPasswordReset(username: form.value("username") ?? "", request: fhir.requestInfo(req, ctx))
                s.flash.append(.init(.info, "If the username belongs to a patient account, a code is on its way to the contact on the pharmacy record."))
                return "/portal/reset"
            }
        }
        router.post("/portal/reset/verify") { req, ctx in
            try await self.post(req, ctx, area: .portal, signedIn: false, back: "/portal/reset") { s, form in
                guard let id = s.pending["reset"] else { throw Redirect(location: "/portal/reset") }
                try await auth.completePasswordReset(id: id, code: form.value("code") ?? "", password: form["password"] ?? "", request: fhir.requestInfo(req, ctx))
                s.pending["reset"] = nil
                s.flash.append(.init(.info, "Password changed. Every session of the account has ended; sign in again."))
                return "/portal/login"
            }
        }
    }

    // MARK: Caregivers

    func registerCaregivers(on router: Router<SafeRxContext>) {
        router.get("/portal/caregivers") { req, ctx in
            try await self.page(req, ctx, area: .portal, signedIn: true) { s in
                let access = try await self.ownAccess(req, ctx, s, "caregiver-list")
                let (given, received) = try await pharmacy.caregivers.grants(access)
                let day = ISO8601DateFormatter.day
                func row(_ g: CaregiverGrant, username: String?) -> [String: Any] {
                    ["id": g.id, "caregiver": username ?? "", "patient": g.patientID, "access": g.access.rawValue,
                     "expires": day.string(from: g.expires), "status": g.revoked != nil ? "revoked" : g.isLive ? "active" : "expired", "active": g.isLive]
                }
                let names = try await pharmacy.directory.usernames(access, ids: given.map(\.caregiverUserID))
                let givenRows = given.map { row($0, username: names[$0.caregiverUserID]) }
                var v: [String: Any] = ["title": "Caregivers", "current": "/portal/caregivers", "given": givenRows, "received": received.map { row($0, username: nil) }]
                if s.ownPatient != nil { v["actingFor"] = s.patient ?? "" }
                return ("portal-caregivers", v)
            }
        }
        router.post("/portal/caregivers") { req, ctx in
            try await self.post(req, ctx, area: .portal, back: "/portal/caregivers") { s, form in
                let access = try await self.ownAccess(req, ctx, s, "caregiver-grant")
                guard let access_ = CaregiverGrant.Access(rawValue: form.value("access") ?? "") else { throw FHIRError.invalid("Choose what the caregiver may see") }
                guard let day = form.value("expires"), let expires = FHIRDate.instant(day, end: true)?.addingTimeInterval(-0.001) else {
                    throw FHIRError.invalid("Choose until when (a date)")
                }
                _ = try await pharmacy.caregivers.grant(access, caregiverUsername: form.value("caregiver") ?? "", access: access_, expires: expires)
                s.flash.append(.init(.info, "Access given."))
                return "/portal/caregivers"
            }
        }
        router.post("/portal/caregivers/:grant/revoke") { req, ctx in
            let id = ctx.parameters.get("grant") ?? ""
            return try await self.post(req, ctx, area: .portal, back: "/portal/caregivers") { s, _ in
                let access = try await self.ownAccess(req, ctx, s, "caregiver-revoke")
                _ = try await pharmacy.caregivers.revoke(access, grant: id)
                s.flash.append(.init(.info, "Access revoked. It ended at once."))
                return "/portal/caregivers"
            }
        }
        router.post("/portal/caregiving/stop") { req, ctx in
            try await self.post(req, ctx, area: .portal, back: "/portal/caregivers") { s, _ in
                if let own = s.pending["ownToken"] {
                    if let token = s.token, let claims = try? await auth.account(fromToken: token).1 { try? await auth.revoke(claims) }
                    s.token = own
                    s.tokenExpires = Date().addingTimeInterval(60)  // renewed on the next page
                    s.patient = s.ownPatient
                    s.ownPatient = nil
                    s.pending["ownToken"] = nil
                }
                return "/portal"
            }
        }
        router.post("/portal/caregiving/:patient") { req, ctx in
            let patient = ctx.parameters.get("patient") ?? ""
            return try await self.post(req, ctx, area: .portal, back: "/portal/caregivers") { s, _ in
                guard s.ownPatient == nil, let token = s.token else { throw FHIRError.invalid("Switch back to your own records first") }
                let (user, claims) = try await auth.account(fromToken: token)
                let issued = try await auth.caregiverToken(user, patient: patient, parent: claims, request: fhir.requestInfo(req, ctx))
                s.pending["ownToken"] = token
                s.ownPatient = s.patient
                s.patient = patient
                s.token = issued.accessToken
                s.tokenExpires = Date().addingTimeInterval(TimeInterval(issued.expiresIn))
                s.flash.append(.init(.info, "You are now acting as a caregiver. Everything you open is recorded in the patient's access log."))
                return "/portal"
            }
        }
    }

    /// The access context of the user's own token (caregiver management is never done under a caregiver token).
    func ownAccess(_ req: Request, _ ctx: SafeRxContext, _ s: WebSession, _ interaction: String) async throws -> AccessContext {
        var own = s
        if let token = s.pending["ownToken"] { own.token = token }
        return try await access(req, ctx, own, interaction, .patient)
    }
}

extension ISO8601DateFormatter {
    /// `YYYY-MM-DD` in UTC, as an HTML date input sends it.
    nonisolated(unsafe) static let day: ISO8601DateFormatter = {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withFullDate]
        return f
    }()
}
