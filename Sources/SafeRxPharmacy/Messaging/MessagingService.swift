import SafeRxModel
import SafeRxStore
import SafeRxStoreCore

/// Secure messages between patients (or their caregivers) and the pharmacy: threads, read marks, unread counts and
/// assignment to staff. Messages themselves are Communications written through ``RecordService``.
public struct MessagingService: Sendable {
    let store: PharmacyStore

    /// One page of the caller's threads (a patient's own, or the pharmacy's inbox), optionally those assigned to one
    /// staff member.
    public func threads(_ ctx: AccessContext, assignedTo: String? = nil, count: Int = 20, offset: Int = 0) async throws(FHIRError) -> ThreadPage {
        try await store.messageThreads(ctx, assignedTo: assignedTo, count: count, offset: offset)
    }

    /// Marks messages opened by the caller.
    public func markRead(_ ctx: AccessContext, communications ids: [String]) async throws(FHIRError) {
        try await store.markRead(ctx, communications: ids)
    }

    /// Unread messages and threads with unread messages.
    public func unread(_ ctx: AccessContext) async throws(FHIRError) -> (messages: Int, threads: Int) {
        try await store.unreadMessages(ctx)
    }

    /// Assigns the thread of `message` to a pharmacist or technician of the caller's pharmacy (by username).
    /// - returns: the thread's id and the assignee's user id.
    public func assign(_ ctx: AccessContext, message id: String, to username: String) async throws(FHIRError) -> (thread: String, assignee: String) {
        try await store.assignThread(ctx, message: id, assignee: username)
    }
}
