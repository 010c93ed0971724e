import Foundation
import SafeRxAudit
import SafeRxModel
import SafeRxStore
import SafeRxStoreCore

/// Fulfillment vendors (`saferx fulfillment`): a day's shipping manifest encrypted to the vendor's key, the tracking
/// file the vendor sends back, and, for a file found where it should not be, which export it is and who is in it.
/// Each runs under a system context for one pharmacy and is audited with every patient it names.
public struct FulfillmentService: Sendable {
    let store: PharmacyStore
    let access: AccessService

    /// The columns of a shipping manifest: what a vendor needs to ship a parcel, nothing else.
    public static let manifestColumns = PharmacyStore.manifestColumns

    /// Registers (or replaces) a vendor and the X25519 public key its files are encrypted to; recorded in the same
    /// transaction.
    /// - throws: `FHIRError` of kind `forbidden` for a context that is not an operator's.
    public func addVendor(_ ctx: AccessContext, id: String, tenant: String, name: String, publicKey: Data) async throws(FHIRError) {
        try await access.requireOperator(ctx, interaction: "vendor-add")
        try await store.addVendor(ctx, id: id, tenant: tenant, name: name, publicKey: publicKey)
    }

    /// The day's manifest for `vendor` (fills verified that day, not yet sent), encrypted to its key.
    /// - returns: the sealed file, its rows, its SHA-256 and how many fills were left out as already sent.
    public func exportManifest(_ ctx: AccessContext, vendor: String, day: String) async throws(FHIRError) -> (file: Data, rows: Int, sha256: String, alreadySent: Int) {
        let result = try await store.exportManifest(ctx, vendor: vendor, day: day)
        await store.auditWriter.checkpoint()
        return result
    }

    /// Which export has this SHA-256, and every patient in it (recorded as the operator's read of the file's scope).
    /// - throws: `FHIRError` of kind `notFound` when no export has it, `forbidden` for a context that is not an
    ///   operator's.
    public func file(_ ctx: AccessContext, sha256 digest: String) async throws(FHIRError) -> FulfillmentFile {
        try await access.requireOperator(ctx, interaction: "file-scope")
        guard let f = try await store.fulfillmentFile(sha256: digest) else {
            throw FHIRError(kind: .notFound, code: "not-found", diagnostics: "No export with sha256 \(digest)")
        }
        try await store.recordAdminEvent(action: "file-scope", tenant: f.tenant, patients: f.patients, detail: "patients of export \(digest)")
        return f
    }

    /// One line of a vendor's tracking file: the fill (order id), the carrier and the tracking number.
    public struct Shipped: Sendable {
        public var line: Int
        public var dispense: String
        public var carrier: String
        public var trackingNumber: String

        public init(line: Int, dispense: String, carrier: String, trackingNumber: String) {
            self.line = line
            self.dispense = dispense
            self.carrier = carrier
            self.trackingNumber = trackingNumber
        }
    }

    /// Marks each fill shipped (`completed`) with its carrier and tracking number. A fill already shipped with the
    /// same tracking number (the same file applied again) is counted, not refused.
    /// - returns: how many were marked, how many were already, and each line refused with why.
    public func applyVendorTracking(_ ctx: AccessContext, _ lines: [Shipped]) async -> (shipped: Int, already: Int, refused: [(line: Int, dispense: String, why: String)]) {
        var shipped = 0, already = 0
        var refused: [(Int, String, String)] = []
        for l in lines {
            do {
                _ = try await FillLifecycle(store: store).transition(ctx, dispense: l.dispense, FillTransition(to: .completed, carrier: l.carrier, trackingNumber: l.trackingNumber))
                shipped += 1
            } catch {
                if let d = try? await store.read(ctx, .medicationDispense, id: l.dispense).json, [.completed, .delivered].contains(FillState.of(d)),
                    Shipment.trackingNumber(of: d) == Shipment.normalizedTrackingNumber(l.trackingNumber)
                {
                    already += 1
                } else {
                    refused.append((l.line, l.dispense, error.diagnostics))
                }
            }
        }
        await store.auditWriter.checkpoint()
        return (shipped, already, refused)
    }
}
