import SafeRxStore
import SafeRxStoreCore

/// Operators know people by username, not by the internal `user-000N` id the audit log keeps.
struct ActorNames {
    let store: PharmacyStore
    private var cache: [String: String] = [:]

    init(_ store: PharmacyStore) { self.store = store }

    /// `username (user-0002)` for a user, the id itself for an API client, `system` or a source address.
    mutating func name(_ id: String) async -> String {
        if let known = cache[id] { return known }
        let shown = (try? await store.user(id: id)).flatMap { $0.map { "\($0.username) (\(id))" } } ?? id
        cache[id] = shown
        return shown
    }
}
