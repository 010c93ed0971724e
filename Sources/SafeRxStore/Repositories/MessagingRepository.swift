import Foundation
import SafeRxSQL
import SafeRxModel
import SafeRxStoreCore

/// The messaging tables: `message_read` (who opened which message, for unread counts) and `thread_assignment` (which
/// staff member a thread is assigned to). Works in the caller's transaction (``GateTransaction/messaging``); who may
/// assign what is the messaging service's rule.
package struct MessagingRepository {
    let db: any SQLConnection
    let clock: PharmacyClock

    /// Marks messages read by `user` (a message already marked keeps its first time).
    package func markRead(user: String, tenant: String, communications ids: some Sequence<String>) throws {
        let now = clock.now.timeIntervalSince1970
        for id in ids {
            try db.execute(
                sql: "INSERT OR IGNORE INTO message_read (user_id, tenant, communication_id, read_at) VALUES (?, ?, ?, ?)",
                arguments: [user, tenant, id, now])
        }
    }

    /// Assigns `thread` (the id of its first message) to the staff member `assignee`, replacing any assignment.
    package func assign(tenant: String, thread: String, to assignee: String, by: String) throws {
        try db.execute(
            sql: "INSERT INTO thread_assignment (tenant, thread_id, assignee, assigned_by, assigned_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, thread_id) DO UPDATE SET assignee = excluded.assignee, assigned_by = excluded.assigned_by, assigned_at = excluded.assigned_at",
            arguments: [tenant, thread, assignee, by, clock.now.timeIntervalSince1970])
    }
}

extension GateTransaction {
    /// The messaging tables, in this transaction.
    package var messaging: MessagingRepository { MessagingRepository(db: db, clock: store.clock) }
}
