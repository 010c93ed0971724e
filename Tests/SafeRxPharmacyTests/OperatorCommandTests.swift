import Foundation
import SafeRxAudit
import SafeRxModel
@testable import SafeRxPharmacy
import SafeRxPolicy
import SafeRxStore
import SafeRxStoreCore
import Testing

/// The services an operator's commands use (`saferx incident`, `keys`, `patients erase`), with no HTTP and no CLI:
/// they take the same `AccessContext` as requests, refuse a person's context where only an operator may act, answer
/// 404 across pharmacies, and record who acted.
@Suite("Operator commands through the services") struct OperatorCommandTests {
    /// A small demo pharmacy (and the demo's second pharmacy) in a temporary directory.
    struct Fixture {
        let dir: URL
        let pharmacy: Pharmacy

        static func make() async throws -> Fixture {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("saferx-operator-\(UUID().uuidString)")
            let pharmacy = try await Pharmacy.open(
                dataDirectory: dir.appendingPathComponent("data"), keyFile: dir.appendingPathComponent("master.key"), passwordCost: 4)
            _ = try await pharmacy.seedDemo(DemoPharmacy(patientCount: 12, patientAccounts: 2, partnerPatients: 2, consentPatients: 1))
            return Fixture(dir: dir, pharmacy: pharmacy)
        }

        func staff(_ role: Role, tenant: String = DemoPharmacy.tenant) throws -> AccessContext {
            let principal = Principal(subject: "user-\(role.rawValue)-\(tenant)", roleName: role.rawValue, tenant: tenant, patientID: nil)
            return AccessContext(scope: try AccessPolicy.scope(for: principal), requestID: UUID().uuidString, sourceIP: "127.0.0.1", userAgent: "test")
        }

        /// The audit records of an action, newest last.
        func records(_ action: String) async throws -> [AuditEntryView] {
            try await pharmacy.store.auditRecords().filter { $0.entry.action == action }.map {
                AuditEntryView(actor: $0.entry.actor.id, role: $0.entry.actor.role, tenant: $0.entry.actor.tenant, detail: $0.entry.detail ?? "")
            }
        }

        func remove() { try? FileManager.default.removeItem(at: dir) }
    }

    struct AuditEntryView: Equatable {
        var actor: String
        var role: String
        var tenant: String
        var detail: String
    }

    @Test("key administration refuses a person's context (and records the refusal); an operator's rotation is recorded as theirs, per tenant")
    func keysAreForOperators() async throws {
        let f = try await Fixture.make()
        defer { f.remove() }
        let admin = try f.staff(.admin)
        await #expect(throws: FHIRError.self) { _ = try await f.pharmacy.keys.rotateTenantKeys(admin, only: nil) }
        #expect(try await f.records("denied").contains { $0.actor == admin.scope.principal.subject })
        #expect(try await f.records("key-rotate").isEmpty)

        let ctx = AccessContext.operatorCommand(reason: "test rotation", write: true)
        let rotated = try await f.pharmacy.keys.rotateTenantKeys(ctx, only: DemoPharmacy.tenant)
        #expect(rotated.map(\.tenant) == [DemoPharmacy.tenant])
        let recorded = try await f.records("key-rotate")
        #expect(recorded == [AuditEntryView(
            actor: "operator:\(AccessContext.operatorLogin)", role: "system", tenant: DemoPharmacy.tenant,
            detail: "tenant key rotated to v\(rotated[0].version); \(rotated[0].rewrapped) data keys re-wrapped")])
        let master = try await f.pharmacy.keys.rotateMaster(ctx)
        #expect(f.pharmacy.keys.masterKeyID == master.new)
        #expect(try await f.records("key-rotate").last?.detail.hasPrefix("master key rotated from \(master.old) to \(master.new)") == true)
        #expect(try await f.pharmacy.admin.verifyAudit(ctx).ok)
    }

    @Test("operators' tools (accounts, tokens, the audit export, alerts, replays) refuse a person's context, even an admin's or an officer's")
    func operatorToolsRefusePeople() async throws {
        let f = try await Fixture.make()
        defer { f.remove() }
        let admin = try f.staff(.admin), officer = try f.staff(.privacyOfficer)
        await #expect(throws: FHIRError.self) { _ = try await f.pharmacy.admin.accounts(admin) }
        await #expect(throws: FHIRError.self) { _ = try await f.pharmacy.admin.issueToken(admin, username: "pharmacist", scope: nil, purposes: nil) }
        await #expect(throws: FHIRError.self) { _ = try await f.pharmacy.admin.exportAudit(officer, includeSealed: true) }
        await #expect(throws: FHIRError.self) { _ = try await f.pharmacy.detection.alerts(officer, includeAcknowledged: true) }
        #expect(try await f.records("denied").count >= 4)
        let ctx = AccessContext.operatorCommand(reason: "test")
        #expect(try await f.pharmacy.admin.accounts(ctx).contains { $0.name == "pharmacist" })
        #expect(try await !f.pharmacy.admin.issueToken(ctx, username: "pharmacist", scope: nil, purposes: nil).isEmpty)
        #expect(try await f.records("token").last?.actor == "operator:\(AccessContext.operatorLogin)")
    }

    @Test("an operator declares an incident for one pharmacy; officers of another pharmacy get 404; the steps name who took them")
    func incidentsAcrossContexts() async throws {
        let f = try await Fixture.make()
        defer { f.remove() }
        func declare(_ ctx: AccessContext) async throws -> String {
            try await f.pharmacy.incidents.declare(
                ctx, discovered: "2026-12-01", actors: [DemoPharmacy.partnerClientID], from: nil, to: nil, files: [], sources: [],
                resources: [], fileKeyCompromised: false, description: nil, actions: "", role: "covered-entity", by: "Pat Privacy")
        }
        await #expect(throws: FHIRError.self) { _ = try await declare(.operatorCommand(reason: "test", tenant: "*")) }
        let id = try await declare(.operatorCommand(reason: "test", tenant: DemoPharmacy.tenant))
        let everyPharmacy = AccessContext.operatorCommand(reason: "test")
        #expect(try await f.pharmacy.incidents.list(everyPharmacy).map(\.id) == [id])
        #expect(try await f.pharmacy.incidents.list(everyPharmacy).first?.declaredBy == "Pat Privacy")

        let otherOfficer = try f.staff(.privacyOfficer, tenant: DemoPharmacy.secondTenant)
        do throws(FHIRError) {
            _ = try await f.pharmacy.incidents.scope(otherOfficer, incident: id)
            Issue.record("another pharmacy's officer saw the incident")
        } catch {
            #expect(error.kind == .notFound)
        }
        #expect(try await f.pharmacy.incidents.list(otherOfficer).isEmpty)
        let pharmacist = try f.staff(.pharmacist)
        await #expect(throws: FHIRError.self) { _ = try await f.pharmacy.incidents.list(pharmacist) }

        let officer = try f.staff(.privacyOfficer)
        let (_, scope) = try await f.pharmacy.incidents.scope(officer, incident: id)
        #expect(scope.certified)
        _ = try await f.pharmacy.incidents.judge(officer, incident: id, .answer(question: "factor-2-recipient", text: "the partner's own systems"))
        try await f.pharmacy.incidents.delayNotices(everyPharmacy, incident: id, until: "2027-01-31")
        let declared = try #require(try await f.records("incident-declare").last)
        #expect(declared.actor == "operator:\(AccessContext.operatorLogin)" && declared.tenant == DemoPharmacy.tenant)
        #expect(try await f.records("incident-assess").last?.actor == officer.scope.principal.subject)
        #expect(try await f.records("incident-update").last?.detail.contains("law-enforcement delay until 2027-01-31") == true)
        // An operator's steps over every pharmacy belong to the incident's pharmacy (its trail, its patients' access logs).
        #expect(try await f.records("incident-update").last?.tenant == DemoPharmacy.tenant)
        _ = try await f.pharmacy.incidents.scope(everyPharmacy, incident: id)
        #expect(try await f.records("incident-scope").last?.tenant == DemoPharmacy.tenant)

        // Documents: another pharmacy's officer cannot record a disclosure on it; a package changed by its holder is refused.
        await #expect(throws: FHIRError.self) {
            try await f.pharmacy.incidents.recordDocuments(otherOfficer, incident: id, patients: ["pat-0001"], detail: "forged")
        }
        var pkg = try await f.pharmacy.incidents.package(officer, incident: id, "incident-documents")
        #expect(try await f.pharmacy.incidents.letters(officer, pkg, patients: []).isEmpty)
        pkg.incident.tenant = DemoPharmacy.secondTenant
        do throws(FHIRError) {
            _ = try await f.pharmacy.incidents.mailMerge(officer, pkg, patients: [])
            Issue.record("a package naming another pharmacy was used")
        } catch {
            #expect(error.kind == .conflict)
        }
    }

    @Test("an operator's account change commits with its audit record; a refused one leaves neither the change nor a record")
    func accountChangesAndTheirRecords() async throws {
        let f = try await Fixture.make()
        defer { f.remove() }
        let ctx = AccessContext.operatorCommand(reason: "test accounts", write: true)
        let id = try await f.pharmacy.admin.addUser(
            ctx, username: "new-tech", role: .technician, tenant: DemoPharmacy.tenant, patient: nil, password: "a-long-enough-password-1")
        let added = try await f.records("user-add")
        #expect(added.count == 1 && added[0].detail.contains(id) && added[0].actor.hasPrefix("operator:") && added[0].tenant == DemoPharmacy.tenant)

        // Refused inside the transaction (username taken; a patient account for no patient): nothing written, nothing recorded.
        for (username, role, patient) in [("new-tech", Role.technician, nil), ("someone", Role.patient, "pat-none")] as [(String, Role, String?)] {
            await #expect(throws: FHIRError.self) {
                _ = try await f.pharmacy.admin.addUser(
                    ctx, username: username, role: role, tenant: DemoPharmacy.tenant, patient: patient, password: "a-long-enough-password-2")
            }
        }
        #expect(try await f.records("user-add").count == 1)
        #expect(try await f.pharmacy.admin.accounts(ctx).filter { $0.name == "someone" }.isEmpty)

        _ = try await f.pharmacy.admin.resetPassword(ctx, username: "patient001", password: "another-long-password-3", reason: "identity checked by phone")
        let reset = try await f.records("password-reset")
        #expect(reset.count == 1 && reset[0].detail.hasSuffix("identity checked by phone"))

        try await f.pharmacy.admin.setClientDisabled(ctx, id: DemoPharmacy.partnerClientID, true)
        try await f.pharmacy.admin.setClientDisabled(ctx, id: DemoPharmacy.partnerClientID, false)
        let disables = try await f.records("client-disable").count, enables = try await f.records("client-enable").count
        #expect(disables == 1 && enables == 1)
        _ = try await f.pharmacy.admin.registerWebhook(ctx, client: DemoPharmacy.partnerClientID, url: "https://partner.example/hooks", securityTenant: nil)
        #expect(try await f.records("webhook-register").map(\.tenant) == [DemoPharmacy.tenant])
        try await f.pharmacy.fulfillment.addVendor(ctx, id: "mailhouse", tenant: DemoPharmacy.tenant, name: "Mail House", publicKey: Data(count: 32))
        #expect(try await f.records("vendor-add").count == 1)
        await #expect(throws: FHIRError.self) {
            try await f.pharmacy.fulfillment.addVendor(try f.staff(.admin), id: "other", tenant: DemoPharmacy.tenant, name: "Other", publicKey: Data(count: 32))
        }
    }
}
