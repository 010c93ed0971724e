import Foundation
import SafeRxSQL
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStoreCore

#if SAFERX_BENCHMARKS
/// Bulk loaders for `saferx bench` only: millions of patients and audit records in a few minutes, through the same
/// encryption and hash chain as normal writes but without search terms (no benchmark searches them).
extension PharmacyStore {
    static let benchStates = [
        "CA", "TX", "FL", "NY", "PA", "IL", "OH", "GA", "NC", "MI", "NJ", "VA", "WA", "AZ", "TN", "MA", "IN", "MO", "MD", "WI", "CO", "MN", "SC",
        "AL", "LA", "KY", "OR", "OK", "CT", "UT", "IA", "NV", "AR", "MS", "KS", "NM", "NE", "ID", "WV", "HI", "NH", "ME", "MT", "RI", "DE", "SD",
        "ND", "AK", "DC", "VT", "WY",
    ]

    /// Patients `pat-NNNNNNNN` for `range`, each sealed under its own data key, with residence metadata.
    @_spi(Benchmark) public func benchSeedPatients(tenant: String, range: Range<Int>) async throws(FHIRError) {
        let scope = AccessScope.system(reason: "bench seed", tenant: tenant, write: true)
        for start in stride(from: range.lowerBound, to: range.upperBound, by: 20_000) {
            let end = min(start + 20_000, range.upperBound)
            try await runWrite { [self] db in
                for i in start..<end {
                    let id = String(format: "pat-%08d", i)
                    let json: JSON = .object([
                        "resourceType": "Patient", "id": .string(id),
                        "name": .array([.object(["family": .string("Family\(i % 9973)"), "given": .array([.string("Given\(i % 997)")])])]),
                        "birthDate": .string(String(format: "%04d-%02d-%02d", 1940 + i % 60, 1 + i % 12, 1 + i % 28)),
                        "address": .array([.object([
                            "line": .array([.string("\(100 + i % 9000) Main St")]), "city": "Springfield",
                            "state": .string(Self.benchStates[i % Self.benchStates.count]), "postalCode": .string(String(format: "%05d", 10000 + i % 89999)),
                        ])]),
                        "telecom": .array([.object(["system": "email", "value": .string("p\(i)@example.org")])]),
                    ])
                    let w = PreparedWrite(type: .patient, id: id, json: json, patients: [id], terms: [], owner: nil)
                    _ = try insertVersion(db, tenant: tenant, w, version: 1, scope: scope)
                }
            }
        }
    }

    /// Appends audit entries in transactions of 20,000, stamped `time(i)`.
    @_spi(Benchmark) public func benchAppendAudit(
        count: Int, time: @escaping @Sendable (Int) -> Date, entry: @escaping @Sendable (Int) -> AuditEntry
    ) async throws(FHIRError) {
        for start in stride(from: 0, to: count, by: 20_000) {
            let end = min(start + 20_000, count)
            try await runWrite { [self] db in
                for i in start..<end { _ = try auditLog.append([entry(i)], in: db, now: time(i)) }
            }
        }
    }
}

extension PharmacyStore {
    /// ``unprotectedRead(_:id:)`` for `saferx bench reads` (the baseline), in a build with the `Benchmarks` trait only.
    @_spi(Benchmark) public func benchUnprotectedRead(_ type: ResourceType, id: String) throws -> JSON? { try unprotectedRead(type, id: id) }
}
#endif
