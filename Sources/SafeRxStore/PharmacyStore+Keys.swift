import Foundation
import SafeRxSQL
import SafeRxAudit
import SafeRxModel
import SafeRxStoreCore
import SafeRxVault

extension PharmacyStore {
    /// The id of the master key the store's keys are wrapped under.
    package var masterKeyID: String { keys.provider.keyID }

    /// Re-wraps every tenant and service key under a new master key (see ``KeyRing/rotateMaster(_:audit:)``); the
    /// `key-rotate` audit record, naming `ctx`, is appended in the transaction that re-wraps them.
    package func rotateMasterKey(_ ctx: AccessContext) throws -> (old: String, new: String, rewrapped: Int) {
        try keys.rotateMaster(dbPool) { [self] db, old, new, n in
            try GateTransaction(db: db, context: ctx, store: self).record("key-rotate", detail: "master key rotated from \(old) to \(new); \(n) keys re-wrapped")
        }
    }

    /// Gives each tenant (or only `only`) a new tenant key (see ``KeyRing/rotateTenantKeys(_:only:audit:)``); each
    /// tenant's `key-rotate` audit record is appended in that tenant's transaction.
    package func rotateTenantKeys(_ ctx: AccessContext, only: String?) throws -> [(tenant: String, version: Int64, rewrapped: Int)] {
        try keys.rotateTenantKeys(dbPool, only: only) { [self] db, tenant, version, n in
            try GateTransaction(db: db, context: ctx, store: self).record(
                "key-rotate", tenant: tenant, detail: "tenant key rotated to v\(version); \(n) data keys re-wrapped")
        }
    }
}
