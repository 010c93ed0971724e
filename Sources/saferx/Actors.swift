import SafeRxPharmacy
import SafeRxStoreCore

/// Operators know people by username, not by the internal `user-000N` id the audit log keeps.
struct ActorNames {
    let admin: Administration
    private var cache: [String: String] = [:]

    init(_ pharmacy: Pharmacy) { admin = pharmacy.admin }

    /// `username (user-0002)` for a user, the id itself for an API client, `system` or a source address.
    mutating func name(_ id: String) async -> String {
        if let known = cache[id] { return known }
        let shown = (try? await admin.username(.operatorCommand(reason: "saferx names"), id: id)).flatMap { $0.map { "\($0) (\(id))" } } ?? id
        cache[id] = shown
        return shown
    }
}
