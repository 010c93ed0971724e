import Foundation
import SafeRxSQL
import SafeRxAudit
import SafeRxModel
import SafeRxStoreCore

/// One write transaction of the gate, opened for a caller's ``AccessContext`` by ``PharmacyStore/write(_:_:)``: the
/// repositories' changes and the audit record that accounts for them commit together, or neither does.
///
/// Repositories take the transaction (GRDB's `Record+Insert` style: persistence methods take the database, so that
/// the caller composes several of them in one transaction); only the storage layer sees ``db``.
package struct GateTransaction {
    /// The database connection, inside the transaction.
    package let db: any SQLConnection
    /// Who the change is made for; the audit record names them.
    package let context: AccessContext
    let store: PharmacyStore

    /// Appends the audit record of this change, naming ``context``, inside this transaction.
    ///
    /// - parameter action: what was done (`incident-declare`, `key-rotate`, ...).
    /// - parameter patients: the patients whose data the change concerns (none for changes without patient data).
    /// - parameter tenant: the pharmacy the record belongs to, when the context spans every pharmacy (`*`).
    /// - parameter detail: non-PHI detail (ids, counts, reasons).
    /// - parameter released: the elements that left when less than whole resources did.
    /// - parameter result: what the change came to (`created` for a new record).
    /// - returns: the record's sequence number.
    /// - throws: the database's error; the whole transaction is then rolled back.
    @discardableResult
    package func record(
        _ action: String, type: ResourceType? = nil, id: String? = nil, patients: some Sequence<String> = [String](), tenant: String? = nil,
        detail: String, released: AuditEntry.Released? = nil, result: AuditResult = .ok
    ) throws -> Int64 {
        var e = store.entry(
            context, action: action, type: type, id: id, patients: patients, outcome: "success", result: result, detail: detail, released: released)
        if let tenant { e.actor.tenant = tenant }
        return try store.auditLog.append([e], in: db).first ?? 0
    }
}

extension PharmacyStore {
    /// Runs `body` in one write transaction for `ctx`: what it changes through the repositories and the audit record
    /// it appends with ``GateTransaction/record(_:type:id:patients:detail:)`` commit together.
    ///
    /// - parameter ctx: the caller; a change without an audit record is a programming error the body must not make.
    /// - parameter body: the change; throwing rolls everything back.
    /// - returns: what `body` returns.
    /// - throws: `FHIRError` thrown by `body` as it is; any other failure as `internal` (logged without content).
    package func write<T: Sendable>(_ ctx: AccessContext, _ body: @escaping @Sendable (GateTransaction) throws -> T) async throws(FHIRError) -> T {
        try await runWrite { [self] db in try body(GateTransaction(db: db, context: ctx, store: self)) }
    }
}
