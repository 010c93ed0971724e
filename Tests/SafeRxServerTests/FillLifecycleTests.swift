import Foundation
import HTTPTypes
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxPharmacy
import SafeRxStore
import SafeRxStoreCore
import Testing

/// Prescriptions, refills and the fill state machine, end to end over HTTP against the shared demo server.
@Suite("Pharmacy workflows: prescriptions, refills, fill lifecycle, shipments")
struct FillLifecycleTests {
    static func prescription(
        patient: String, repeats: Int = 1, days: Int = 30, status: String = "active", extra: [String: JSON] = [:],
        medication: String = "Medication/med-1", requester: JSON = .object(["reference": "Practitioner/prac-1"])
    ) -> JSON {
        var o: [String: JSON] = [
            "resourceType": "MedicationRequest", "status": .string(status), "intent": "order",
            "subject": .object(["reference": .string("Patient/\(patient)")]),
            "medicationReference": .object(["reference": .string(medication)]), "requester": requester,
            "authoredOn": .string(String(AuditTimeForTests.now.prefix(10))),
            "dispenseRequest": .object([
                "numberOfRepeatsAllowed": .int(Int64(repeats)), "quantity": .object(["value": .int(30), "unit": "tablet"]),
                "expectedSupplyDuration": .object(["value": .int(Int64(days)), "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"]),
            ]),
        ]
        for (k, v) in extra { o[k] = v }
        return .object(o)
    }

    static func transition(_ state: String, reason: String? = nil, carrier: String? = nil, tracking: String? = nil) -> JSON {
        var p: [JSON] = [.object(["name": "state", "valueCode": .string(state)])]
        if let reason { p.append(.object(["name": "reason", "valueCode": .string(reason)])) }
        if let carrier { p.append(.object(["name": "carrier", "valueCode": .string(carrier)])) }
        if let tracking { p.append(.object(["name": "trackingNumber", "valueString": .string(tracking)])) }
        return .object(["resourceType": "Parameters", "parameter": .array(p)])
    }

    static func reason(_ r: Reply) -> String? {
        r.json?["issue"]?.arrayValue?.first?["details"]?["coding"]?.arrayValue?.first?["code"]?.stringValue
    }

    static func fillState(_ r: Reply) -> String? {
        r.json?["extension"]?.arrayValue?.first { $0["url"]?.stringValue == FillState.extensionURL }?["valueCode"]?.stringValue
    }

    @Test("refill → fill → verify → ship → deliver, with every illegal transition answered 409 with the allowed next states")
    func lifecycle() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let pharmacist = try await server.token("pharmacist")
            let technician = try await server.token("technician")
            let patient = try await server.token("patient001")

            let rx = try await client.post("/fhir/MedicationRequest", token: pharmacist, Self.prescription(patient: "pat-0001"))
            #expect(rx.status == 201, "\(rx.body)")
            let rxID = rx.json?["id"]?.stringValue ?? ""

            let refill = try await client.post("/fhir/MedicationRequest/\(rxID)/$refill", token: patient, nil)
            #expect(refill.status == 201, "\(refill.body)")
            #expect(refill.json?["status"]?.stringValue == "preparation")
            #expect(Self.fillState(refill) == "preparation")
            #expect(refill.headers[.location]?.contains("/fhir/MedicationDispense/") == true)
            let d = refill.json?["id"]?.stringValue ?? ""
            let path = "/fhir/MedicationDispense/\(d)/$transition"

            let again = try await client.post("/fhir/MedicationRequest/\(rxID)/$refill", token: patient, nil)
            #expect(again.status == 422 && Self.reason(again) == "fill-in-progress", "\(again.body)")

            // Skipping the fill: 409 naming what may come next.
            let skip = try await client.post(path, token: technician, Self.transition("verified"))
            #expect(skip.status == 409, "\(skip.body)")
            #expect(Self.reason(skip) == "illegal-transition")
            #expect(skip.issue.contains("allowed next states: in-progress, on-hold, cancelled, declined"), "\(skip.issue)")

            let filled = try await client.post(path, token: technician, Self.transition("in-progress"))
            #expect(filled.status == 200 && Self.fillState(filled) == "in-progress", "\(filled.body)")
            let techVerify = try await client.post(path, token: technician, Self.transition("verified"))
            #expect(techVerify.status == 403, "\(techVerify.body)")
            // A patient cannot move fills at all.
            let patientMove = try await client.post(path, token: patient, Self.transition("verified"))
            #expect(patientMove.status == 403)

            let verified = try await client.post(path, token: pharmacist, Self.transition("verified"))
            #expect(verified.status == 200 && Self.fillState(verified) == "verified", "\(verified.body)")
            #expect(verified.json?["status"]?.stringValue == "in-progress")
            #expect(verified.json?["whenPrepared"] != nil)

            // A PUT cannot change the state behind the state machine's back.
            var edited = verified.json ?? .null
            edited["status"] = "completed"
            edited["meta"] = nil
            let put = try await client.send(.put, "/fhir/MedicationDispense/\(d)", token: pharmacist, body: String(decoding: edited.encoded(), as: UTF8.self))
            #expect(put.status == 409 && put.issue.contains("$transition"), "\(put.body)")

            let noCarrier = try await client.post(path, token: technician, Self.transition("completed"))
            #expect(noCarrier.status == 400 && noCarrier.issue.contains("carrier"), "\(noCarrier.body)")
            let tracking = "9400111899223\(Int.random(in: 100_000...999_999))"
            let shipped = try await client.post(path, token: technician, Self.transition("completed", carrier: "USPS", tracking: tracking))
            #expect(shipped.status == 200 && Self.fillState(shipped) == "completed", "\(shipped.body)")
            #expect(shipped.json?["whenHandedOver"] != nil)
            let shipment = shipped.json?["extension"]?.arrayValue?.first { $0["url"]?.stringValue == Shipment.extensionURL }
            let shipTo = shipment?["extension"]?.arrayValue?.first { $0["url"]?.stringValue == "shipTo" }?["valueAddress"]
            let patientRecord = try await client.get("/fhir/Patient/pat-0001", token: pharmacist)
            #expect(shipTo != nil && shipTo == patientRecord.json?["address"]?.arrayValue?.first, "ship-to comes from the patient record")

            // The patient sees the shipment, and the next refill is too soon.
            let mine = try await client.get("/fhir/MedicationDispense/\(d)", token: patient)
            #expect(mine.status == 200 && Shipment.trackingNumber(of: mine.json ?? .null) == tracking)
            let soon = try await client.post("/fhir/MedicationRequest/\(rxID)/$refill", token: patient, nil)
            #expect(soon.status == 422 && Self.reason(soon) == "refill-too-soon", "\(soon.body)")
            #expect(soon.issue.contains("you can refill from"))

            let back = try await client.post(path, token: pharmacist, Self.transition("verified"))
            #expect(back.status == 409 && back.issue.contains("allowed next states: delivered"), "\(back.body)")
            let holdShipped = try await client.post(path, token: pharmacist, Self.transition("on-hold", reason: "outofstock"))
            #expect(holdShipped.status == 409)

            // The carrier's tracking feed delivers it; staff find it by tracking number.
            let found = try await client.get("/fhir/MedicationDispense?tracking=\(tracking.lowercased())", token: technician)
            #expect(found.total == 1, "\(found.body)")
            let ctx = AccessContext(scope: .system(reason: "tracking test", tenant: DemoPharmacy.tenant, write: true), requestID: "t", sourceIP: "local", userAgent: "test")
            let result = try await server.pharmacy.fills.applyTracking(ctx, [
                TrackingUpdate(carrier: "usps", trackingNumber: tracking, status: "in-transit", time: "2026-11-20T10:00:00Z", location: "Springfield IL"),
                TrackingUpdate(carrier: "USPS", trackingNumber: tracking, status: "delivered", time: "2026-11-21T15:30:00Z"),
                TrackingUpdate(carrier: "ups", trackingNumber: "1ZNOSUCHPARCEL0001", status: "in-transit", time: "2026-11-21T15:30:00Z"),
                // The right number with the wrong carrier is not applied either.
                TrackingUpdate(carrier: "fedex", trackingNumber: tracking, status: "returned", time: "2026-11-21T15:30:00Z"),
            ])
            #expect(result.applied == 2 && result.unknown == ["1ZNOSUCHPARCEL0001", tracking], "\(result)")
            let delivered = try await client.get("/fhir/MedicationDispense/\(d)", token: patient)
            #expect(Self.fillState(delivered) == "delivered")
            // The same feed again, and a later second "delivered": nothing changes, no new version, no webhook.
            let versionBefore = delivered.json?["meta"]?["versionId"]?.stringValue
            let repeatedFeed = try await server.pharmacy.fills.applyTracking(ctx, [
                TrackingUpdate(carrier: "usps", trackingNumber: tracking, status: "in-transit", time: "2026-11-20T10:00:00Z", location: "Springfield IL"),
                TrackingUpdate(carrier: "usps", trackingNumber: tracking, status: "delivered", time: "2026-11-22T09:00:00Z"),
            ])
            #expect(repeatedFeed.applied == 0 && repeatedFeed.repeated == 2, "\(repeatedFeed)")
            let unchanged = try await client.get("/fhir/MedicationDispense/\(d)", token: patient)
            #expect(unchanged.json?["meta"]?["versionId"]?.stringValue == versionBefore)
            let final = try await client.post(path, token: pharmacist, Self.transition("cancelled", reason: "frr01"))
            #expect(final.status == 409 && final.issue.contains("none (delivered is final)"), "\(final.body)")

            // Every transition and every refusal is in the audit log.
            let records = try await server.store.auditRecords().filter { $0.entry.resourceID == d || $0.entry.resourceID == rxID }
            #expect(records.filter { $0.entry.action == "transition" && $0.entry.outcome == "success" }.count == 3)
            #expect(records.filter { $0.entry.action == "denied" && $0.entry.attempted == "transition" }.count >= 6)
            #expect(records.contains { $0.entry.action == "refill" } && records.contains { $0.entry.action == "denied" && $0.entry.attempted == "refill" })
        }
    }

    @Test("four-eyes: the pharmacist who filled cannot verify; another pharmacist can")
    func fourEyes() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let pharmacist = try await server.token("pharmacist")
            let other = try await server.token("pharmacist-b")
            let rx = try await client.post("/fhir/MedicationRequest", token: pharmacist, Self.prescription(patient: "pat-0002"))
            let rxID = rx.json?["id"]?.stringValue ?? ""
            let refill = try await client.post("/fhir/MedicationRequest/\(rxID)/$refill", token: pharmacist, nil)
            #expect(refill.status == 201, "\(refill.body)")
            let path = "/fhir/MedicationDispense/\(refill.json?["id"]?.stringValue ?? "")/$transition"
            #expect(try await client.post(path, token: pharmacist, Self.transition("in-progress")).status == 200)
            let own = try await client.post(path, token: pharmacist, Self.transition("verified"))
            #expect(own.status == 403 && Self.reason(own) == "four-eyes", "\(own.body)")
            let verified = try await client.post(path, token: other, Self.transition("verified"))
            #expect(verified.status == 200, "\(verified.body)")
            // Holding and resuming starts the fill over: the new filler again may not verify.
            #expect(try await client.post(path, token: other, Self.transition("on-hold", reason: "clarif")).status == 200)
            #expect(try await client.post(path, token: other, Self.transition("preparation")).status == 200)
            #expect(try await client.post(path, token: other, Self.transition("in-progress")).status == 200)
            let again = try await client.post(path, token: other, Self.transition("verified"))
            #expect(again.status == 403 && Self.reason(again) == "four-eyes")
            #expect(try await client.post(path, token: pharmacist, Self.transition("verified")).status == 200)
        }
    }

    @Test("every refill refusal reason, hold/cancel reason codes, and who may request a refill")
    func refusals() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let pharmacist = try await server.token("pharmacist")
            let technician = try await server.token("technician")
            let patient = try await server.token("patient003")
            func newRx(_ rx: JSON) async throws -> String {
                let r = try await client.post("/fhir/MedicationRequest", token: pharmacist, rx)
                #expect(r.status == 201, "\(r.body)")
                return r.json?["id"]?.stringValue ?? ""
            }
            func refill(_ id: String, _ token: String) async throws -> Reply { try await client.post("/fhir/MedicationRequest/\(id)/$refill", token: token, nil) }

            let expired = try await newRx(Self.prescription(patient: "pat-0003", extra: [
                "authoredOn": "2024-01-10",
            ]))
            let e = try await refill(expired, patient)
            #expect(e.status == 422 && Self.reason(e) == "prescription-expired" && e.issue.contains("expired on 2025-01-09"), "\(e.body)")

            let held = try await newRx(Self.prescription(patient: "pat-0003", status: "on-hold"))
            let h = try await refill(held, patient)
            #expect(h.status == 422 && Self.reason(h) == "prescription-not-active", "\(h.body)")

            let transfer = try await newRx(Self.prescription(patient: "pat-0003", status: "draft", extra: [
                "extension": .array([.object([
                    "url": .string(TransferIn.url),
                    "extension": .array([
                        .object(["url": "pharmacy", "valueString": "Corner Drug, Springfield"]), .object(["url": "phone", "valueString": "555-010-2000"]),
                        .object(["url": "rxNumber", "valueString": "CD-448812"]),
                    ]),
                ])]),
            ]))
            let t = try await refill(transfer, patient)
            #expect(t.status == 422 && Self.reason(t) == "transfer-pending", "\(t.body)")
            // The pharmacist accepts the transfer; then it fills.
            var accepted = try await client.get("/fhir/MedicationRequest/\(transfer)", token: pharmacist).json ?? .null
            accepted["status"] = "active"
            accepted["meta"] = nil
            let put = try await client.send(.put, "/fhir/MedicationRequest/\(transfer)", token: pharmacist, body: String(decoding: accepted.encoded(), as: UTF8.self))
            #expect(put.status == 200, "\(put.body)")
            let ok = try await refill(transfer, patient)
            #expect(ok.status == 201, "\(ok.body)")

            // Cancelled fills do not count; dispensed ones do.
            let single = try await newRx(Self.prescription(patient: "pat-0003", repeats: 0))
            let first = try await refill(single, patient)
            let path = "/fhir/MedicationDispense/\(first.json?["id"]?.stringValue ?? "")/$transition"
            let noReason = try await client.post(path, token: pharmacist, Self.transition("cancelled"))
            #expect(noReason.status == 400 && noReason.issue.contains("reason code"), "\(noReason.body)")
            let badReason = try await client.post(path, token: pharmacist, Self.transition("cancelled", reason: "because"))
            #expect(badReason.status == 400 && badReason.issue.contains("frr01"), "\(badReason.body)")
            let techCancel = try await client.post(path, token: technician, Self.transition("cancelled", reason: "frr01"))
            #expect(techCancel.status == 403)
            let cancelled = try await client.post(path, token: pharmacist, Self.transition("cancelled", reason: "frr01"))
            #expect(cancelled.status == 200 && cancelled.json?["status"]?.stringValue == "cancelled", "\(cancelled.body)")
            #expect(cancelled.json?["statusReasonCodeableConcept"]?["coding"]?.arrayValue?.first?["code"]?.stringValue == "frr01")
            let second = try await refill(single, patient)
            #expect(second.status == 201, "\(second.body)")
            let p2 = "/fhir/MedicationDispense/\(second.json?["id"]?.stringValue ?? "")/$transition"
            for (state, token) in [("in-progress", technician), ("verified", pharmacist)] {
                #expect(try await client.post(p2, token: token, Self.transition(state)).status == 200)
            }
            #expect(try await client.post(p2, token: technician, Self.transition("completed", carrier: "ups", tracking: "1Z999AA10123456784")).status == 200)
            let none = try await refill(single, patient)
            #expect(none.status == 422 && Self.reason(none) == "no-refills-left", "\(none.body)")

            // Another patient's prescription is 404 (as if it did not exist); support may not request refills.
            let other = try await refill(single, try await server.token("patient004"))
            #expect(other.status == 404)
            let support = try await refill(single, try await server.token("support"))
            #expect(support.status == 403)
            let missing = try await refill("no-such-rx", patient)
            #expect(missing.status == 404)
            let unknownOp = try await client.post("/fhir/MedicationRequest/\(single)/$refil", token: patient, nil)
            #expect(unknownOp.status == 404 && unknownOp.issue.contains("$refill"))
            let badState = try await client.post(p2, token: pharmacist, Self.transition("shipped"))
            #expect(badState.status == 400 && badState.issue.contains("not a fill state"))
            let notParams = try await client.post(p2, token: pharmacist, .object(["resourceType": "Patient"]))
            #expect(notParams.status == 400)
            // A fill created directly must start in preparation.
            let direct = try await client.post("/fhir/MedicationDispense", token: pharmacist, .object([
                "resourceType": "MedicationDispense", "status": "completed", "subject": .object(["reference": "Patient/pat-0003"]),
                "medicationReference": .object(["reference": "Medication/med-1"]),
            ]))
            #expect(direct.status == 409, "\(direct.body)")
            // ... and may say so in its fill-state extension, beside extensions of its own.
            let created = try await client.post("/fhir/MedicationDispense", token: pharmacist, .object([
                "resourceType": "MedicationDispense", "status": "preparation", "subject": .object(["reference": "Patient/pat-0003"]),
                "medicationReference": .object(["reference": "Medication/med-1"]),
                "extension": .array([
                    .object(["url": .string(FillState.extensionURL), "valueCode": "preparation"]),
                    .object(["url": "https://example.org/fhir/StructureDefinition/bin", "valueString": "B-12"]),
                ]),
            ]))
            #expect(created.status == 201, "\(created.body)")
            let shippedAlready = try await client.post("/fhir/MedicationDispense", token: pharmacist, .object([
                "resourceType": "MedicationDispense", "status": "preparation", "subject": .object(["reference": "Patient/pat-0003"]),
                "medicationReference": .object(["reference": "Medication/med-1"]),
                "extension": .array([.object(["url": .string(Shipment.extensionURL), "extension": .array([.object(["url": "carrier", "valueCode": "usps"])])])]),
            ]))
            #expect(shippedAlready.status == 409, "\(shippedAlready.body)")
        }
    }

    @Test("prescriptions: prescriber NPI check digit, DEA number for controlled substances, quantity, supply and refill limits")
    func prescriptionValidation() async throws {
        let server = try await LiveServer.shared.value
        try await server.client().using { client in
            let partner = try await RoleIsolationTests.partnerToken(client: client, id: DemoPharmacy.partnerClientID, secret: server.partnerSecret)
            let pharmacist = try await server.token("pharmacist")
            let pid = "pat-0055"
            func npi(_ v: String) -> JSON { .object(["identifier": .object(["system": .string(NPI.system), "value": .string(v)]), "display": "Dr. Remote"]) }
            func submit(_ rx: JSON, _ token: String? = nil) async throws -> Reply { try await client.post("/fhir/MedicationRequest", token: token ?? partner, rx) }

            let noPrescriber = try await submit(Self.prescription(patient: pid, requester: .object(["display": "Dr. Nobody"])))
            #expect(noPrescriber.status == 400, "\(noPrescriber.body)")
            let badNPI = try await submit(Self.prescription(patient: pid, requester: npi("1234567890")))
            #expect(badNPI.status == 400 && badNPI.issue.contains("NPI"), "\(badNPI.body)")
            let good = try await submit(Self.prescription(patient: pid, requester: npi("1234567893")))
            #expect(good.status == 201, "\(good.body)")

            let controlled = "Medication/med-17"
            let noDEA = try await submit(Self.prescription(patient: pid, repeats: 0, medication: controlled, requester: npi("1234567893")))
            #expect(noDEA.status == 400 && noDEA.issue.contains("DEA"), "\(noDEA.body)")
            func dea(_ v: String) -> [String: JSON] {
                ["extension": .array([.object(["url": .string(PrescriptionRules.prescriberDEAURL), "valueString": .string(v)])])]
            }
            let badDEA = try await submit(Self.prescription(patient: pid, repeats: 0, extra: dea("AB1234567"), medication: controlled, requester: npi("1234567893")))
            #expect(badDEA.status == 400 && badDEA.issue.contains("check digit"), "\(badDEA.body)")
            let validDEA = DEANumber.completing("AR123456")
            let tooMany = try await submit(Self.prescription(patient: pid, repeats: 2, extra: dea(validDEA), medication: controlled, requester: npi("1234567893")))
            #expect(tooMany.status == 400 && tooMany.issue.contains("CII"), "\(tooMany.body)")
            let cii = try await submit(Self.prescription(patient: pid, repeats: 0, extra: dea(validDEA), medication: controlled, requester: npi("1234567893")))
            #expect(cii.status == 201, "\(cii.body)")
            // A Practitioner here carries NPI and DEA: prac-1 prescribes a CIV with 5 refills, not 6.
            let civ = try await submit(Self.prescription(patient: "pat-0005", repeats: 5, medication: "Medication/med-18"), pharmacist)
            #expect(civ.status == 201, "\(civ.body)")
            let civ6 = try await submit(Self.prescription(patient: "pat-0005", repeats: 6, medication: "Medication/med-18"), pharmacist)
            #expect(civ6.status == 400, "\(civ6.body)")

            var zeroQuantity = Self.prescription(patient: pid, requester: npi("1234567893"))
            zeroQuantity["dispenseRequest"]?["quantity"] = .object(["value": .int(0)])
            #expect(try await submit(zeroQuantity).status == 400)
            let longSupply = try await submit(Self.prescription(patient: pid, days: 400, requester: npi("1234567893")))
            #expect(longSupply.status == 400 && longSupply.issue.contains("365"), "\(longSupply.body)")
            let refills = try await submit(Self.prescription(patient: pid, repeats: 12, requester: npi("1234567893")))
            #expect(refills.status == 400)

            // Practitioners with a wrong NPI check digit are refused.
            let prac = try await client.post("/fhir/Practitioner", token: pharmacist, .object([
                "resourceType": "Practitioner", "name": .array([.object(["family": "Quinn"])]),
                "identifier": .array([.object(["system": .string(NPI.system), "value": "1234567894"])]),
            ]))
            #expect(prac.status == 400 && prac.issue.contains("NPI"), "\(prac.body)")

            // The partner requests the fill of its own prescription.
            let fill = try await client.post("/fhir/MedicationRequest/\(good.json?["id"]?.stringValue ?? "")/$refill", token: partner, nil)
            #expect(fill.status == 201, "\(fill.body)")
        }
    }
}

enum AuditTimeForTests {
    static var now: String { ISO8601DateFormatter().string(from: Date()) }
}
