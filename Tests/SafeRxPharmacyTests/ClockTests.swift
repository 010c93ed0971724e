import Foundation
import SafeRxModel
@testable import SafeRxPharmacy
import SafeRxPolicy
import SafeRxStoreCore
import Testing

/// The services decide by the pharmacy's clock, not the machine's: with a ``ManualClock`` a test moves time past an
/// expiry instead of waiting for it (no HTTP, no sleeping).
@Suite("Services on a manual clock") struct ClockTests {
    struct Fixture {
        let dir: URL
        let time: ManualClock
        let pharmacy: Pharmacy
        let credentials: [DemoCredential]

        static func make() async throws -> Fixture {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("saferx-clock-\(UUID().uuidString)")
            let time = ManualClock(Date())
            let pharmacy = try await Pharmacy.open(
                dataDirectory: dir.appendingPathComponent("data"), keyFile: dir.appendingPathComponent("master.key"), passwordCost: 4,
                clock: time.clock)
            let credentials = try await pharmacy.seedDemo(DemoPharmacy(patientCount: 6, patientAccounts: 2, partnerPatients: 1, consentPatients: 1))
            return Fixture(dir: dir, time: time, pharmacy: pharmacy, credentials: credentials)
        }

        func password(_ username: String) throws -> String {
            try #require(credentials.first { $0.username == username }?.password)
        }

        func remove() { try? FileManager.default.removeItem(at: dir) }
    }

    static let request = RequestInfo(requestID: "clock-test", sourceIP: "192.0.2.10", userAgent: "clock test")

    static func isRefused(_ kind: FHIRError.Kind, _ body: () async throws -> some Any) async -> Bool {
        do {
            _ = try await body()
            return false
        } catch let e as FHIRError {
            return e.kind == kind
        } catch {
            return false
        }
    }

    @Test("an access token expires when the clock passes its lifetime, also when its verification was cached")
    func tokenExpiry() async throws {
        let f = try await Fixture.make()
        defer { f.remove() }
        let issued = try await f.pharmacy.auth.login(username: "patient001", password: try f.password("patient001"), request: Self.request)
        let (principal, _) = try await f.pharmacy.auth.verify(issued.accessToken)
        #expect(principal.roleName == "patient")
        f.time.advance(AuthService.tokenLifetime - 5)
        _ = try await f.pharmacy.auth.verify(issued.accessToken)
        f.time.advance(10)
        #expect(await Self.isRefused(.unauthenticated) { try await f.pharmacy.auth.verify(issued.accessToken) })
    }

    @Test("five wrong passwords lock the account for this address only, and the lock lifts when the clock passes it")
    func signInLock() async throws {
        let f = try await Fixture.make()
        defer { f.remove() }
        let password = try f.password("patient002")
        for _ in 0..<AuthService.lockAfter {
            #expect(await Self.isRefused(.unauthenticated) {
                try await f.pharmacy.auth.login(username: "patient002", password: "wrong-\(UUID())", request: Self.request)
            })
        }
        #expect(await Self.isRefused(.throttled) { try await f.pharmacy.auth.login(username: "patient002", password: password, request: Self.request) })
        let elsewhere = RequestInfo(requestID: "clock-test-2", sourceIP: "198.51.100.7", userAgent: "clock test")
        _ = try await f.pharmacy.auth.login(username: "patient002", password: password, request: elsewhere)
        f.time.advance(AuthService.lockDuration + 1)
        _ = try await f.pharmacy.auth.login(username: "patient002", password: password, request: Self.request)
    }

    @Test("a caregiver grant ends on the clock: a caregiver token is issued under it before, refused after")
    func caregiverGrantExpiry() async throws {
        let f = try await Fixture.make()
        defer { f.remove() }
        let password = try f.password("patient001")
        func caregiverToken() async throws -> IssuedToken {
            let own = try await f.pharmacy.auth.login(username: "patient001", password: password, request: Self.request)
            let (user, claims) = try await f.pharmacy.auth.account(fromToken: own.accessToken)
            return try await f.pharmacy.auth.caregiverToken(user, patient: DemoPharmacy.patientID(2), parent: claims, request: Self.request)
        }
        let token = try await caregiverToken()
        let (principal, _) = try await f.pharmacy.auth.verify(token.accessToken)
        #expect(principal.patientID == DemoPharmacy.patientID(2) && principal.caregiverGrant != nil)
        f.time.advance(366 * 86_400)  // the demo's grant runs a year
        #expect(await Self.isRefused(.forbidden) { try await caregiverToken() })
    }

    @Test("a refill is too soon until the clock passes most of the last fill's days' supply (fill, verify and ship through the services)")
    func refillTooSoon() async throws {
        let f = try await Fixture.make()
        defer { f.remove() }
        func ctx(_ subject: String, _ role: Role, patient: String? = nil) throws -> AccessContext {
            let principal = Principal(subject: subject, roleName: role.rawValue, tenant: DemoPharmacy.tenant, patientID: patient)
            return AccessContext(scope: try AccessPolicy.scope(for: principal), requestID: UUID().uuidString, sourceIP: "127.0.0.1", userAgent: "clock test")
        }
        let pharmacist = try ctx("user-pharmacist-a", .pharmacist), technician = try ctx("user-technician-a", .technician)
        let patient = try ctx("user-patient-1", .patient, patient: DemoPharmacy.patientID(1))
        let rx = try await f.pharmacy.records.create(pharmacist, .medicationRequest, .object([
            "resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "subject": .object(["reference": .string("Patient/\(DemoPharmacy.patientID(1))")]),
            "medicationReference": .object(["reference": "Medication/med-1"]), "requester": .object(["reference": "Practitioner/prac-1"]),
            "authoredOn": .string(String(Instant.string(f.time.now).prefix(10))),
            "dispenseRequest": .object([
                "numberOfRepeatsAllowed": .int(3), "quantity": .object(["value": .int(30), "unit": "tablet"]),
                "expectedSupplyDuration": .object(["value": .int(30), "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"]),
            ]),
        ]))
        let fill = try await f.pharmacy.fills.refill(patient, prescription: rx.id)
        _ = try await f.pharmacy.fills.transition(technician, dispense: fill.id, FillTransition(to: .inProgress))
        _ = try await f.pharmacy.fills.transition(pharmacist, dispense: fill.id, FillTransition(to: .verified))
        _ = try await f.pharmacy.fills.transition(technician, dispense: fill.id, FillTransition(to: .completed, carrier: "usps", trackingNumber: "9400111899223100000001"))
        f.time.advance(10 * 86_400)
        do {
            _ = try await f.pharmacy.fills.refill(patient, prescription: rx.id)
            Issue.record("a refill 10 days into a 30-day supply was accepted")
        } catch {
            #expect(error.kind == .businessRule && error.reason == "refill-too-soon", "\(error)")
        }
        f.time.advance(15 * 86_400)
        let next = try await f.pharmacy.fills.refill(patient, prescription: rx.id)
        #expect(next.id != fill.id)
    }
}
