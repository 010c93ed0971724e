import Foundation
import Logging
import SafeRxModel
import SafeRxStore
import SafeRxStoreCore
import ServiceLifecycle

/// The detector's part of `saferx serve` that is not in the request path: records other processes append (the
/// command line's exports, imports and tracking files) are read back and run through the detector every
/// `interval`, and honeytokens planted meanwhile are picked up. Records this process appends are checked inside
/// their own transaction (``PharmacyStore/startDetection(rules:securityContact:)``).
public struct DetectionService: Service {
    package let store: PharmacyStore
    public let interval: Duration
    let logger: Logger

    package init(store: PharmacyStore, interval: Duration = .seconds(1), logger: Logger = Logger(label: "saferx.detect")) {
        self.store = store
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await store.detectForeignRecords()
                } catch let error as FHIRError {
                    logger.error("detector catch-up failed", metadata: ["error": "\(error.diagnostics)"])
                } catch {
                    logger.error("detector catch-up failed", metadata: ["error": "\(type(of: error))"])
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
