import Foundation
import SafeRxSQL
import Logging

/// Group commit for the audit log: requests hand over their entry and await its commit.
///
/// Entries that arrive while a transaction is being written are appended together in the next one, so each
/// acknowledged request's record is durable (SQLite WAL, `synchronous = FULL`) before its response is sent, while
/// many requests share one fsync.
public actor AuditWriter {
    let log: AuditLog
    let writer: any SQLDatabase
    let logger: Logger
    var pending: [(AuditEntry, CheckedContinuation<Void, any Error>)] = []
    var flushing = false

    public init(log: AuditLog, writer: any SQLDatabase, logger: Logger = Logger(label: "saferx.audit")) {
        self.log = log
        self.writer = writer
        self.logger = logger
    }

    /// Appends one entry; returns when it is committed. Throws if it could not be written.
    public func record(_ entry: AuditEntry) async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            pending.append((entry, c))
            if !flushing {
                flushing = true
                Task { await self.flush() }
            }
        }
    }

    func flush() async {
        while !pending.isEmpty {
            let batch = pending
            pending.removeAll(keepingCapacity: true)
            let entries = batch.map(\.0)
            do {
                // Reads' answers wait for this commit, so the detector may still refuse them (blockable).
                let refused = try await writer.write { [log] db in try log.append(entries, in: db, blockable: true).refused }
                for (i, (_, c)) in batch.enumerated() {
                    if refused.contains(i) { c.resume(throwing: AuditRefusal(reason: "contained")) } else { c.resume() }
                }
            } catch {
                logger.error("audit append failed", metadata: ["error": "\(error)", "count": "\(batch.count)"])
                for (_, c) in batch { c.resume(throwing: error) }
            }
        }
        flushing = false
    }

    /// Signs the head now if it moved (called on a timer and at shutdown).
    public func checkpoint() async {
        // In a task of its own: the checkpoint at shutdown runs in a cancelled task, and GRDB's async write would
        // refuse to start there (the records are committed; only their signed checkpoint would be missing).
        let writer = self.writer, log = self.log
        let failure = await Task.detached { () -> (any Error)? in
            do {
                try await writer.write { db in _ = try log.checkpoint(db) }
                return nil
            } catch {
                return error
            }
        }.value
        if let failure {
            logger.error("audit checkpoint failed", metadata: ["error": "\(type(of: failure))"])
        }
    }

    /// Checkpoints every ``AuditLog/checkpointInterval`` until cancelled.
    public func runCheckpoints() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: AuditLog.checkpointInterval)
            if Task.isCancelled { break }
            await checkpoint()
        }
    }
}
