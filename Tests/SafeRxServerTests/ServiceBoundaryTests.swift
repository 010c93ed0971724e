import Foundation
import SafeRxModel
import SafeRxPharmacy
import SafeRxPolicy
import SafeRxStore
import SafeRxStoreCore
import Testing

/// What the services answer for one pharmacy's caller, tried against the demo's two pharmacies.
@Suite("Services answer for the caller's pharmacy only") struct ServiceBoundaryTests {
    @Test("the directory names accounts of the caller's pharmacy only, never another pharmacy's")
    func directoryStaysInThePharmacy() async throws {
        let server = try await LiveServer.shared.value
        let pharmacy = Pharmacy(store: server.store, auth: server.auth)
        let users = try await server.store.users()
        let own = try #require(users.first { $0.tenant == DemoPharmacy.tenant && $0.role == "pharmacist" })
        let other = try #require(users.first { $0.tenant == DemoPharmacy.secondTenant })
        let ctx = AccessContext.system(reason: "service boundary test", tenant: DemoPharmacy.tenant)
        let names = try await pharmacy.directory.usernames(ctx, ids: [own.id, other.id, "no-such-user"])
        #expect(names == [own.id: own.username])
        #expect(try await pharmacy.directory.id(ctx, username: other.username) == nil)
        #expect(try await pharmacy.directory.id(ctx, username: own.username) == own.id)
        let staff = try await pharmacy.directory.accounts(ctx, roles: [.pharmacist])
        #expect(staff.contains { $0.id == own.id })
        #expect(!staff.contains { $0.id == other.id })
    }
}
