import SafeRxModel
import SafeRxPolicy
import SafeRxStore
import SafeRxStoreCore

/// Who is who inside one pharmacy, for display: usernames and roles of the accounts that a page or an answer names
/// (assignees, a fill's actors, a patient's caregivers, alerts' actors). Only accounts of the caller's own pharmacy
/// are named; nothing else of an account (its password hash, its lock state) leaves the store.
public struct Directory: Sendable {
    let store: PharmacyStore

    /// An account as others may see it.
    public struct Entry: Sendable, Equatable {
        public var id: String
        public var username: String
        public var role: String
    }

    /// The accounts among `ids` that belong to the caller's pharmacy, by id (ids of others, and of API clients, are
    /// left out: show them as ids).
    public func accounts(_ ctx: AccessContext, ids: some Sequence<String>) async throws(FHIRError) -> [String: Entry] {
        var out: [String: Entry] = [:]
        for id in Set(ids) {
            guard let u = try await store.user(id: id), u.tenant == ctx.scope.tenant else { continue }
            out[id] = Entry(id: u.id, username: u.username, role: u.role)
        }
        return out
    }

    /// Usernames by id (see ``accounts(_:ids:)``).
    public func usernames(_ ctx: AccessContext, ids: some Sequence<String>) async throws(FHIRError) -> [String: String] {
        try await accounts(ctx, ids: ids).mapValues(\.username)
    }

    /// The enabled accounts of the caller's pharmacy in `roles` (whom a thread can be assigned to), by role and creation.
    public func accounts(_ ctx: AccessContext, roles: Set<Role>) async throws(FHIRError) -> [Entry] {
        try await store.users(tenant: ctx.scope.tenant, roles: Set(roles.map(\.rawValue))).filter { !$0.disabled }
            .map { Entry(id: $0.id, username: $0.username, role: $0.role) }
    }

    /// The id of the account named `username` in the caller's pharmacy.
    public func id(_ ctx: AccessContext, username: String) async throws(FHIRError) -> String? {
        guard let u = try await store.user(named: username), u.tenant == ctx.scope.tenant else { return nil }
        return u.id
    }
}
