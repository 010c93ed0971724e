import Foundation
import SafeRxSQL
import SafeRxModel
import SafeRxStoreCore

extension PharmacyStore {
    /// How long a key is remembered.
    package static let idempotencyWindow: TimeInterval = 24 * 3600

    /// Claims `key` for one caller (tenant and subject) and a request fingerprint (method, path and body hash).
    package func claimIdempotencyKey(tenant: String, actor: String, key: String, requestHash: String) async throws(FHIRError) -> IdempotencyClaim {
        try await runWrite { db in
            let now = self.clock.now.timeIntervalSince1970
            try db.execute(sql: "DELETE FROM idempotency_key WHERE created < ?", arguments: [now - Self.idempotencyWindow])
            guard let row = try SQLRow.fetchOne(
                db, sql: "SELECT * FROM idempotency_key WHERE tenant = ? AND actor = ? AND key = ?", arguments: [tenant, actor, key])
            else {
                try db.execute(
                    sql: "INSERT INTO idempotency_key (tenant, actor, key, request_hash, state, created) VALUES (?, ?, ?, ?, 'pending', ?)",
                    arguments: [tenant, actor, key, requestHash, now])
                return .new
            }
            guard (row["request_hash"] as String) == requestHash else { return .mismatch }
            guard (row["state"] as String) == "done", let status: Int = row["status"] else { return .inFlight }
            if let typeName: String = row["result_type"], let type = ResourceType(name: typeName), let id: String = row["result_id"],
                let version: Int = row["result_version"]
            {
                return .replay(status: status, result: .resource(type, id: id, version: version))
            }
            return .replay(status: status, result: .body(row["result_body"] ?? Data()))
        }
    }

    /// Stores the answer of a successful request under its key.
    package func completeIdempotencyKey(tenant: String, actor: String, key: String, status: Int, result: IdempotentResult) async throws(FHIRError) {
        try await runWrite { db in
            switch result {
            case .resource(let type, let id, let version):
                try db.execute(
                    sql: """
                        UPDATE idempotency_key SET state = 'done', status = ?, result_type = ?, result_id = ?, result_version = ?
                        WHERE tenant = ? AND actor = ? AND key = ?
                        """,
                    arguments: [status, type.rawValue, id, version, tenant, actor, key])
            case .body(let data):
                try db.execute(
                    sql: "UPDATE idempotency_key SET state = 'done', status = ?, result_body = ? WHERE tenant = ? AND actor = ? AND key = ?",
                    arguments: [status, data, tenant, actor, key])
            }
        }
    }

    /// Forgets a key whose request failed, so that the client can retry it (with the same or a corrected body).
    package func releaseIdempotencyKey(tenant: String, actor: String, key: String) async {
        _ = try? await runWrite { db in
            try db.execute(
                sql: "DELETE FROM idempotency_key WHERE tenant = ? AND actor = ? AND key = ? AND state = 'pending'", arguments: [tenant, actor, key])
        }
    }
}
