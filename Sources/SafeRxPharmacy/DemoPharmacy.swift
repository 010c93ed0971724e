import Crypto
import Foundation
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStore
import SafeRxStoreCore
import SafeRxVault

/// A demo account, as written to `demo-credentials.json`.
public struct DemoCredential: Codable, Sendable, Equatable {
    public var username: String?
    public var password: String?
    public var client_id: String?
    public var client_secret: String?
    public var role: String
    public var tenant: String
    public var patient: String?
    /// Staff accounts' TOTP secret (base32): `saferx mfa code --secret S` prints the current code, as an
    /// authenticator app would.
    public var totp_secret: String? = nil
}

/// A deterministic, entirely synthetic pharmacy: the same resources every time (passwords are random).
///
/// Tenant `demo-pharmacy` holds the patients, prescriptions, dispenses and message threads, staff of every role and
/// one partner (telehealth) client that owns the last ``partnerPatients`` patients. Tenant `second-pharmacy` holds a
/// few patients and a pharmacist, so that crossing tenants can be tried.
public struct DemoPharmacy: Sendable {
    public static let tenant = "demo-pharmacy"
    public static let secondTenant = "second-pharmacy"
    public static let partnerClientID = "telehealth-demo"
    /// The demo's non-pharmacy business line: a retail loyalty program (role `business-line`).
    public static let loyaltyClientID = "retail-loyalty"

    public var patientCount: Int
    public var patientAccounts: Int
    public var partnerPatients: Int
    /// Patients (pat-0003, pat-0007, ...) who signed a marketing authorization for the loyalty program.
    public var consentPatients: Int
    /// Honeytoken (canary) patients planted among the real ones (`saferx serve --demo` plants 3).
    public var honeytokens: Int

    /// `YYYY-MM-DD` plus `days` (UTC).
    static func plusDays(_ day: String, _ days: Int) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withFullDate]
        guard let d = f.date(from: day) else { return day }
        return f.string(from: d.addingTimeInterval(Double(days) * 86_400))
    }

    /// The elements of a dispense that shipped on the day it was written and was delivered two days later, as a
    /// carrier feed would say.
    static func delivered(authored: String, address: JSON, tracking: String) -> [String: JSON] {
        let day = String(authored.prefix(10))
        func event(_ status: String, _ time: String, _ location: String? = nil) -> JSON {
            var parts: [JSON] = [.object(["url": "status", "valueCode": .string(status)]), .object(["url": "time", "valueDateTime": .string(time)])]
            if let location { parts.append(.object(["url": "location", "valueString": .string(location)])) }
            return .object(["url": "event", "extension": .array(parts)])
        }
        let city = address["city"]?.stringValue ?? ""
        return [
            "whenHandedOver": .string(authored),
            "extension": .array([
                .object(["url": .string(FillState.extensionURL), "valueCode": "delivered"]),
                .object(["url": .string(Shipment.extensionURL), "extension": .array([
                    .object(["url": "carrier", "valueCode": "usps"]),
                    .object(["url": "trackingNumber", "valueString": .string(tracking)]),
                    .object(["url": "shipTo", "valueAddress": address]),
                    event("label-created", authored), event("in-transit", "\(day)T21:00:00Z", "USPS regional facility"),
                    event("delivered", Self.plusDays(day, 2) + "T15:30:00Z", city),
                ])]),
            ]),
        ]
    }

    public init(patientCount: Int = 200, patientAccounts: Int = 20, partnerPatients: Int = 20, consentPatients: Int = 5, honeytokens: Int = 0) {
        self.honeytokens = honeytokens
        self.patientCount = patientCount
        self.patientAccounts = min(patientAccounts, patientCount)
        self.partnerPatients = min(partnerPatients, patientCount)
        self.consentPatients = consentPatients
    }

    /// A HIPAA authorization letting `client` receive `elements` of `patient` for `purpose` until `expires`, with a
    /// (synthetic) signed form attached.
    public static func authorization(
        id: String?, patient: String, client: String = loyaltyClientID, purpose: String = "MKT",
        elements: [String] = ["Patient.name", "Patient.telecom"], expires: Date, status: String = "active"
    ) -> JSON {
        let form = Data("%PDF-1.4\n% SafeRx demo: signed HIPAA authorization for \(patient)\n%%EOF\n".utf8)
        var c: [String: JSON] = [
            "resourceType": "Consent", "status": .string(status),
            "scope": .object(["coding": .array([.object(["system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"])])]),
            "category": .array([.object(["coding": .array([.object(["system": "http://loinc.org", "code": "64292-6", "display": "Release of information consent"])])])]),
            "patient": .object(["reference": .string("Patient/\(patient)")]),
            "dateTime": .string(AuditLog.timestamp(Date())),
            "sourceAttachment": .object(["contentType": "application/pdf", "title": "Signed HIPAA authorization", "data": .string(form.base64EncodedString())]),
            "provision": .object([
                "type": "permit", "period": .object(["end": .string(AuditLog.timestamp(expires))]),
                "actor": .array([.object([
                    "role": .object(["coding": .array([.object(["system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"])])]),
                    "reference": .object(["identifier": .object(["system": .string(ConsentGrant.clientSystem), "value": .string(client)])]),
                ])]),
                "purpose": .array([.object(["system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": .string(purpose)])]),
                "class": .array(elements.map { .object(["system": .string(ConsentGrant.elementSystem), "code": .string($0)]) }),
            ]),
        ]
        if let id { c["id"] = .string(id) }
        return .object(c)
    }

    public static func patientID(_ i: Int) -> String { String(format: "pat-%04d", i) }

    /// Seeds the store and returns the credentials created.
    package func seed(into store: PharmacyStore, auth: AuthService) async throws -> [DemoCredential] {
        try await store.addTenant(id: Self.tenant, name: "SafeRx Demo Pharmacy")
        try await store.addTenant(id: Self.secondTenant, name: "Second Street Pharmacy")
        var rng = SplitMix64(seed: 0x5AFE_0001)
        var items: [(type: ResourceType, json: JSON, owner: String?)] = []
        items.append((.organization, .object([
            "resourceType": "Organization", "id": "org-demo", "name": "SafeRx Demo Pharmacy", "active": true,
            "identifier": .array([.object(["system": .string(NPI.system), "value": "1999999984"])]),
        ]), nil))
        let prescribers = (1...6).map { i -> String in
            let id = "prac-\(i)"
            let family = Self.family[(i * 7) % Self.family.count]
            items.append((.practitioner, .object([
                "resourceType": "Practitioner", "id": .string(id), "active": true,
                "name": .array([.object(["family": .string(family), "given": .array([.string(Self.given[(i * 5) % Self.given.count])]), "prefix": .array(["Dr."])])]),
                "identifier": .array([
                    .object(["system": .string(NPI.system), "value": .string(Self.prescriberNPI(i))]),
                    .object(["system": .string(DEANumber.system), "value": .string(DEANumber.completing("A\(family.prefix(1))\(String(format: "%06d", 123_450 + i))"))]),
                ]),
            ]), nil))
            return id
        }
        for (i, m) in Self.medications.enumerated() {
            items.append((.medication, .object([
                "resourceType": "Medication", "id": .string("med-\(i + 1)"), "status": "active",
                "code": .object(["coding": .array([.object(["system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": .string(m.0), "display": .string(m.1)])]), "text": .string(m.1)]),
            ]), nil))
        }
        for (i, m) in Self.controlledMedications.enumerated() {
            items.append((.medication, .object([
                "resourceType": "Medication", "id": .string("med-\(Self.medications.count + i + 1)"), "status": "active",
                "code": .object(["coding": .array([.object(["system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": .string(m.0), "display": .string(m.1)])]), "text": .string(m.1)]),
                "extension": .array([.object(["url": .string(DEASchedule.url), "valueCode": .string(m.2.rawValue)])]),
            ]), nil))
        }
        let partnerStart = patientCount - partnerPatients + 1
        for i in 1...patientCount {
            let pid = Self.patientID(i)
            let given = Self.given[rng.next(Self.given.count)]
            let family = Self.family[rng.next(Self.family.count)]
            let year = 1940 + rng.next(65), month = 1 + rng.next(12), day = 1 + rng.next(28)
            let birth = String(format: "%04d-%02d-%02d", year, month, day)
            // Drawn in the same order as before the address was kept for shipments: demo data stays the same.
            let gender = rng.next(2) == 0 ? "female" : "male"
            let phone = String(format: "555-%03d-%04d", rng.next(1000), rng.next(10000))
            let address: JSON = .object([
                "line": .array([.string("\(100 + rng.next(9900)) \(Self.streets[rng.next(Self.streets.count)])")]),
                "city": .string(Self.cities[rng.next(Self.cities.count)].0), "state": .string(Self.cities[i % Self.cities.count].1),
                "postalCode": .string(String(format: "%05d", 10000 + rng.next(89999))),
            ])
            items.append((.patient, .object([
                "resourceType": "Patient", "id": .string(pid), "active": true,
                "identifier": .array([.object(["system": "urn:saferx:mrn", "value": .string(String(format: "MRN%06d", 100_000 + i))])]),
                "name": .array([.object(["use": "official", "family": .string(family), "given": .array([.string(given)])])]),
                "gender": .string(gender), "birthDate": .string(birth),
                "telecom": .array([
                    .object(["system": "phone", "value": .string(phone), "use": "mobile"]),
                    .object(["system": "email", "value": .string("\(given.lowercased()).\(family.lowercased())\(i)@example.org")]),
                ]),
                "address": .array([address]),
            ]), i >= partnerStart ? Self.partnerClientID : nil))
            let prescriptionCount = 1 + rng.next(4)
            for j in 1...prescriptionCount {
                let rxID = "rx-\(pid)-\(j)"
                let med = 1 + rng.next(Self.medications.count)
                let authored = String(format: "2026-%02d-%02dT%02d:%02d:00Z", 1 + rng.next(10), 1 + rng.next(28), 8 + rng.next(10), rng.next(60))
                items.append((.medicationRequest, .object([
                    "resourceType": "MedicationRequest", "id": .string(rxID),
                    "status": .string(["active", "active", "active", "completed", "on-hold"][rng.next(5)]), "intent": "order",
                    "identifier": .array([.object(["system": "urn:saferx:rx-number", "value": .string(String(format: "RX%07d", i * 10 + j))])]),
                    "medicationReference": .object(["reference": .string("Medication/med-\(med)")]),
                    "subject": .object(["reference": .string("Patient/\(pid)")]),
                    "requester": .object(["reference": .string("Practitioner/\(prescribers[rng.next(prescribers.count)])")]),
                    "authoredOn": .string(authored),
                    "dosageInstruction": .array([.object(["text": .string(["Take 1 tablet by mouth daily", "Take 1 tablet twice daily", "Take 1 capsule at bedtime"][rng.next(3)])])]),
                    "dispenseRequest": .object(["numberOfRepeatsAllowed": .int(Int64(rng.next(6))), "quantity": .object(["value": .int(30), "unit": "tablet"])]),
                ]), i >= partnerStart ? Self.partnerClientID : nil))  // the partner's patients' prescriptions came from the partner
                if rng.next(3) > 0 {
                    let status = ["completed", "completed", "in-progress", "preparation"][rng.next(4)]
                    var dispense: [String: JSON] = [
                        "resourceType": "MedicationDispense", "id": .string("disp-\(pid)-\(j)"), "status": .string(status),
                        "medicationReference": .object(["reference": .string("Medication/med-\(med)")]),
                        "subject": .object(["reference": .string("Patient/\(pid)")]),
                        "authorizingPrescription": .array([.object(["reference": .string("MedicationRequest/\(rxID)")])]),
                        "quantity": .object(["value": .int(30), "unit": "tablet"]),
                        "daysSupply": .object(["value": .int(30), "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"]),
                    ]
                    if status == "completed" {
                        for (k, v) in Self.delivered(authored: authored, address: address, tracking: String(format: "9400100000%06d%06d", i, j)) { dispense[k] = v }
                    }
                    items.append((.medicationDispense, .object(dispense), nil))
                }
            }
            let threadLength = 1 + rng.next(3)
            var previous: String? = nil
            // A thread happens on one day, each message a few minutes after the one it answers.
            let (threadMonth, threadDay, threadMinute) = (1 + rng.next(10), 1 + rng.next(28), rng.next(20))
            for k in 1...threadLength {
                let cid = "msg-\(pid)-\(k)"
                let fromPatient = k % 2 == 1
                var c: [String: JSON] = [
                    "resourceType": "Communication", "id": .string(cid), "status": "completed",
                    "subject": .object(["reference": .string("Patient/\(pid)")]),
                    "sent": .string(String(format: "2026-%02d-%02dT10:%02d:00Z", threadMonth, threadDay, threadMinute + 12 * (k - 1) + rng.next(10))),
                    "sender": .object(["reference": .string(fromPatient ? "Patient/\(pid)" : "Organization/org-demo")]),
                    "recipient": .array([.object(["reference": .string(fromPatient ? "Organization/org-demo" : "Patient/\(pid)")])]),
                    "payload": .array([.object(["contentString": .string(fromPatient ? Self.patientMessages[rng.next(Self.patientMessages.count)] : Self.pharmacyMessages[rng.next(Self.pharmacyMessages.count)])])]),
                ]
                if let previous { c["inResponseTo"] = .array([.object(["reference": .string("Communication/\(previous)")])]) }
                items.append((.communication, .object(c), nil))
                previous = cid
            }
        }
        for i in stride(from: 3, through: patientCount, by: 4).prefix(consentPatients) {
            let pid = Self.patientID(i)
            items.append((.consent, Self.authorization(id: "consent-\(pid)", patient: pid, expires: store.clock.now.addingTimeInterval(365 * 86400)), nil))
        }
        // Honeytokens take the next ids in the sequence and sit among the real patients in storage order, so a sweep
        // through search pages meets them wherever it stops.
        let canaryIDs = (0..<honeytokens).map { Self.patientID(patientCount + 1 + $0) }
        var canaryRNG = SystemRandomNumberGenerator()
        for (k, id) in canaryIDs.enumerated().reversed() {
            let before = Self.patientID(max(1, (k + 1) * patientCount / (honeytokens + 1)))
            let at = items.firstIndex { $0.type == .patient && $0.json["id"]?.stringValue == before } ?? items.count
            items.insert(contentsOf: Self.canary(id: id, rng: &canaryRNG, partner: nil, prescribers: prescribers), at: at)
        }
        let ctx = AccessContext(
            scope: .system(reason: "demo seed", tenant: Self.tenant, write: true), requestID: "demo-seed", sourceIP: "local",
            userAgent: "saferx serve --demo")
        try await store.importResources(ctx, items)
        if !canaryIDs.isEmpty { try await store.markHoneytokens(tenant: Self.tenant, patients: canaryIDs) }

        // The second tenant: a few patients nobody in the first may see.
        var second: [(type: ResourceType, json: JSON, owner: String?)] = []
        for i in 1...5 {
            let pid = "other-\(i)"
            second.append((.patient, .object([
                "resourceType": "Patient", "id": .string(pid),
                "name": .array([.object(["family": .string(Self.family[(i * 11) % Self.family.count]), "given": .array([.string(Self.given[(i * 13) % Self.given.count])])])]),
                "birthDate": .string("197\(i)-0\(i)-1\(i)"),
            ]), nil))
            second.append((.medicationRequest, .object([
                "resourceType": "MedicationRequest", "id": .string("rx-\(pid)"), "status": "active", "intent": "order",
                "medicationCodeableConcept": .object(["text": "Atorvastatin 20 mg tablet"]),
                "subject": .object(["reference": .string("Patient/\(pid)")]),
            ]), nil))
        }
        let ctx2 = AccessContext(
            scope: .system(reason: "demo seed", tenant: Self.secondTenant, write: true), requestID: "demo-seed-2", sourceIP: "local",
            userAgent: "saferx serve --demo")
        try await store.importResources(ctx2, second)

        // Accounts. Passwords are random: a predictable demo password would be a real one on a forgotten server.
        var plan: [(username: String, role: Role, tenant: String, patient: String?)] = [
            ("pharmacist", .pharmacist, Self.tenant, nil), ("technician", .technician, Self.tenant, nil),
            ("support", .support, Self.tenant, nil), ("privacy", .privacyOfficer, Self.tenant, nil),
            ("admin", .admin, Self.tenant, nil), ("pharmacist2", .pharmacist, Self.secondTenant, nil),
        ]
        for i in 1...patientAccounts { plan.append((String(format: "patient%03d", i), .patient, Self.tenant, Self.patientID(i))) }
        // A second pharmacist of the demo pharmacy, so that a fill can be verified by someone other than its filler.
        plan.append(("pharmacist-b", .pharmacist, Self.tenant, nil))
        let hashed = await withTaskGroup(of: (Int, String, String).self) { group in
            for (n, _) in plan.enumerated() {
                group.addTask {
                    let password = Self.randomSecret(bytes: 12)
                    return (n, password, auth.hashPassword(password))
                }
            }
            var out: [(Int, String, String)] = []
            for await r in group { out.append(r) }
            return out.sorted { $0.0 < $1.0 }
        }
        var credentials: [DemoCredential] = []
        for (n, password, hash) in hashed {
            let p = plan[n]
            try await store.addUser(
                UserAccount(
                    id: String(format: "user-%04d", n + 1), username: p.username, passwordHash: hash, role: p.role.rawValue, tenant: p.tenant,
                    patientID: p.patient, disabled: false, failedAttempts: 0, lockedUntil: 0))
            var credential = DemoCredential(username: p.username, password: password, role: p.role.rawValue, tenant: p.tenant, patient: p.patient.map { "Patient/\($0)" })
            if AuthService.requiresMFA(p.role.rawValue) {
                // Staff must sign in with a second factor: the demo enrols one and hands out its secret.
                let totp = TOTP.random()
                let id = String(format: "user-%04d", n + 1)
                try await store.beginTOTP(userID: id, secret: totp.secret)
                _ = try await store.useTOTPStep(userID: id, step: 1, enable: true)
                credential.totp_secret = totp.base32
            }
            credentials.append(credential)
        }
        // patient001 is a caregiver of patient002 (everything, for a year): the caregiver flow works out of the box.
        if patientAccounts >= 2, let carer = try await store.user(named: "patient001") {
            try await store.seedCaregiverGrant(
                tenant: Self.tenant, patient: Self.patientID(2), caregiverUserID: carer.id, access: .all, expires: store.clock.now.addingTimeInterval(365 * 86400))
        }
        let secret = Self.randomSecret(bytes: 32)
        try await store.addClient(
            APIClient(
                clientID: Self.partnerClientID, secretHash: AuthService.hashClientSecret(secret), role: Role.partner.rawValue,
                tenant: Self.tenant, name: "Demo Telehealth Partner", disabled: false))
        credentials.append(DemoCredential(client_id: Self.partnerClientID, client_secret: secret, role: Role.partner.rawValue, tenant: Self.tenant))
        let loyaltySecret = Self.randomSecret(bytes: 32)
        try await store.addClient(
            APIClient(
                clientID: Self.loyaltyClientID, secretHash: AuthService.hashClientSecret(loyaltySecret), role: Role.businessLine.rawValue,
                tenant: Self.tenant, name: "Retail loyalty program (non-pharmacy business line)", disabled: false))
        credentials.append(
            DemoCredential(client_id: Self.loyaltyClientID, client_secret: loyaltySecret, role: Role.businessLine.rawValue, tenant: Self.tenant))
        return credentials
    }

    /// Plants honeytoken patients: records that look like any other in every field a reader sees (an id shaped like
    /// the tenant's own and next in its sequence, a common name, birth date, phone, e-mail in the patients' pattern,
    /// address, an MRN, prescriptions with Rx numbers and prescribers, fills that were shipped and delivered) but have
    /// no account, no open fill and no messages, so no work list shows them and nobody has a reason to open one. A
    /// bulk reader that sweeps patients, prescriptions or fills meets them. With `partner`, they are that partner's
    /// patients and prescriptions (a canary in its scope).
    package static func plantHoneytokens(into store: PharmacyStore, tenant: String, count: Int, partner: String?) async throws -> [String] {
        var rng = SystemRandomNumberGenerator()
        let ids = try await store.honeytokenPatientIDs(tenant: tenant, count: count)
        var prescribers: [String] = []
        for i in 1...6 where try await store.resourceExists(.practitioner, id: "prac-\(i)") { prescribers.append("prac-\(i)") }
        var items: [(type: ResourceType, json: JSON, owner: String?)] = []
        for id in ids { items += canary(id: id, rng: &rng, partner: partner, prescribers: prescribers) }
        let ctx = AccessContext(
            scope: .system(reason: "honeytoken plant", tenant: tenant, write: true), requestID: "honeytoken-plant", sourceIP: "local",
            userAgent: "saferx honeytokens")
        try await store.importResources(ctx, items)
        try await store.markHoneytokens(tenant: tenant, patients: ids)
        return ids
    }

    /// One canary patient with two or three prescriptions (the first still active with no refills left), each filled,
    /// shipped and delivered months ago.
    static func canary(
        id: String, rng: inout some RandomNumberGenerator, partner: String?, prescribers: [String]
    ) -> [(type: ResourceType, json: JSON, owner: String?)] {
        let number = Int(id.reversed().prefix { $0.isASCII && $0.isNumber }.reversed().map(String.init).joined()) ?? Int.random(in: 1...999_999, using: &rng)
        let given = Self.given.randomElement(using: &rng)!, family = Self.family.randomElement(using: &rng)!
        let city = Self.cities.randomElement(using: &rng)!
        let birth = String(format: "%04d-%02d-%02d", Int.random(in: 1940...2004, using: &rng), Int.random(in: 1...12, using: &rng), Int.random(in: 1...28, using: &rng))
        let address: JSON = .object([
            "line": .array([.string("\(Int.random(in: 100...9999, using: &rng)) \(Self.streets.randomElement(using: &rng)!)")]),
            "city": .string(city.0), "state": .string(city.1), "postalCode": .string(String(format: "%05d", Int.random(in: 10000...99999, using: &rng))),
        ])
        var items: [(type: ResourceType, json: JSON, owner: String?)] = []
        items.append((.patient, .object([
            "resourceType": "Patient", "id": .string(id), "active": true,
            "identifier": .array([.object(["system": "urn:saferx:mrn", "value": .string(String(format: "MRN%06d", 100_000 + number % 900_000))])]),
            "name": .array([.object(["use": "official", "family": .string(family), "given": .array([.string(given)])])]),
            "gender": .string(Bool.random(using: &rng) ? "female" : "male"), "birthDate": .string(birth),
            "telecom": .array([
                .object(["system": "phone", "value": .string(String(format: "555-%03d-%04d", Int.random(in: 0...999, using: &rng), Int.random(in: 0...9999, using: &rng))), "use": "mobile"]),
                .object(["system": "email", "value": .string("\(given.lowercased()).\(family.lowercased())\(number)@example.org")]),
            ]),
            "address": .array([address]),
        ]), partner))
        for j in 1...Int.random(in: 2...3, using: &rng) {
            let med = Int.random(in: 1...Self.medications.count, using: &rng)
            let rxID = "rx-\(id)-\(j)"
            let authored = String(format: "2026-%02d-%02dT%02d:%02d:00Z", Int.random(in: 1...9, using: &rng), Int.random(in: 1...28, using: &rng),
                                  Int.random(in: 8...17, using: &rng), Int.random(in: 0...59, using: &rng))
            var rx: [String: JSON] = [
                "resourceType": "MedicationRequest", "id": .string(rxID), "status": .string(j == 1 ? "active" : "completed"), "intent": "order",
                "identifier": .array([.object(["system": "urn:saferx:rx-number", "value": .string(String(format: "RX%07d", (number * 10 + j) % 10_000_000))])]),
                "medicationReference": .object(["reference": .string("Medication/med-\(med)")]),
                "subject": .object(["reference": .string("Patient/\(id)")]),
                "authoredOn": .string(authored),
                "dosageInstruction": .array([.object(["text": .string(["Take 1 tablet by mouth daily", "Take 1 tablet twice daily"].randomElement(using: &rng)!)])]),
                "dispenseRequest": .object(["numberOfRepeatsAllowed": .int(0), "quantity": .object(["value": .int(30), "unit": "tablet"])]),
            ]
            if let p = prescribers.randomElement(using: &rng) { rx["requester"] = .object(["reference": .string("Practitioner/\(p)")]) }
            items.append((.medicationRequest, .object(rx), partner))
            var dispense: [String: JSON] = [
                "resourceType": "MedicationDispense", "id": .string("disp-\(id)-\(j)"), "status": "completed",
                "medicationReference": .object(["reference": .string("Medication/med-\(med)")]),
                "subject": .object(["reference": .string("Patient/\(id)")]),
                "authorizingPrescription": .array([.object(["reference": .string("MedicationRequest/\(rxID)")])]),
                "quantity": .object(["value": .int(30), "unit": "tablet"]),
                "daysSupply": .object(["value": .int(30), "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"]),
            ]
            for (k, v) in delivered(authored: authored, address: address, tracking: String(format: "9400100000%06d%06d", number % 1_000_000, j)) { dispense[k] = v }
            items.append((.medicationDispense, .object(dispense), nil))
        }
        return items
    }

    /// URL-safe random text.
    public static func randomSecret(bytes: Int) -> String { RandomSecret.urlSafe(bytes: bytes) }

    static let given = ["Ava", "Liam", "Maya", "Noah", "Zoe", "Ethan", "Chloe", "Mateo", "Priya", "Omar", "Hana", "Lucas", "Sofia",
                        "Kenji", "Amara", "Diego", "Nora", "Felix", "Ines", "Tariq", "Leah", "Ravi", "Elena", "Samuel"]
    static let family = ["Alvarez", "Brennan", "Chen", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ivanova", "Jensen",
                         "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov", "Quinn", "Rossi", "Sato", "Turner",
                         "Ueda", "Varga", "Whitaker", "Yilmaz", "Zhou"]
    static let streets = ["Maple Ave", "Oak St", "Cedar Ln", "Harbor Rd", "Hillcrest Dr", "Lakeview Blvd", "Mill St", "Pine Ct"]
    static let cities = [("Springfield", "IL"), ("Riverton", "WY"), ("Fairview", "OR"), ("Madison", "WI"), ("Georgetown", "TX"),
                         ("Franklin", "TN"), ("Clinton", "IA"), ("Salem", "MA")]
    static let medications: [(String, String)] = [
        ("314076", "Lisinopril 10 MG Oral Tablet"), ("197361", "Amlodipine 5 MG Oral Tablet"),
        ("860975", "Metformin 500 MG Oral Tablet"), ("617312", "Atorvastatin 20 MG Oral Tablet"),
        ("966222", "Levothyroxine 50 MCG Oral Tablet"), ("312961", "Simvastatin 20 MG Oral Tablet"),
        ("198211", "Omeprazole 20 MG Delayed Release Oral Capsule"), ("310798", "Hydrochlorothiazide 25 MG Oral Tablet"),
        ("311989", "Losartan 50 MG Oral Tablet"), ("310965", "Ibuprofen 200 MG Oral Tablet"),
        ("313782", "Acetaminophen 325 MG Oral Tablet"), ("197517", "Clarithromycin 500 MG Oral Tablet"),
        ("308136", "Amoxicillin 500 MG Oral Capsule"), ("312938", "Sertraline 50 MG Oral Tablet"),
        ("200064", "Gabapentin 300 MG Oral Capsule"), ("855332", "Warfarin 5 MG Oral Tablet"),
    ]
    /// Controlled substances in the formulary (med-17, med-18), never picked for the random demo prescriptions.
    static let controlledMedications: [(String, String, DEASchedule)] = [
        ("1049621", "Oxycodone Hydrochloride 5 MG Oral Tablet", .cii), ("308048", "Alprazolam 0.5 MG Oral Tablet", .civ),
    ]

    /// The NPI of demo prescriber `prac-i` (valid check digit).
    public static func prescriberNPI(_ i: Int) -> String { NPI.completing("12345678\(i)") }

    static let patientMessages = [
        "Is my refill ready for pickup?", "Can you ship my next fill to my new address?",
        "I have a question about a side effect.", "Could you check whether my insurance covers this?",
    ]
    static let pharmacyMessages = [
        "Your refill has shipped and should arrive in 2-3 days.", "Your prescription is ready.",
        "A pharmacist will call you today about your question.", "We need a new prescription from your prescriber.",
    ]
}

/// A small deterministic random number generator (SplitMix64), so the demo (and a simulated day) is the same on every
/// machine.
public struct SplitMix64: Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    public mutating func next(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}
