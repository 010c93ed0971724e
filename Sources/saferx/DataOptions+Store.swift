import Foundation
import Logging
import SafeRxStore

// The commands not yet moved onto the services (keys, backups, erasure, import, fulfillment, incidents, webhooks,
// simulations, benchmarks) still open the gate itself. scripts/check-layering.py lists the files that may; the list
// only shrinks (issue #18).
extension DataOptions {
    /// The store in `--data`, opened (created if needed) with the master key.
    func openStore() throws -> PharmacyStore {
        let existed = FileManager.default.fileExists(atPath: keyFileURL.path)
        do {
            let store = try PharmacyStore.open(dataDirectory: url, keyFile: keyFileURL, logger: Logger(label: "saferx.store"))
            if !existed { announceNewKey() }
            return store
        } catch {
            throw CLIError("Cannot open the store in \(directory): \(error)")
        }
    }
}
