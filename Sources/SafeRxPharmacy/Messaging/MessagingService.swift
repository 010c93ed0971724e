import SafeRxModel
import SafeRxPolicy
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

    /// Assigns the thread of `message` to a pharmacist or technician of the caller's pharmacy (by username). The
    /// message and every message up its thread are read through the gate (a thread the caller cannot see is a 404);
    /// the assignment and its audit record commit together.
    /// - returns: the thread's id and the assignee's user id.
    /// - throws: `FHIRError` of kind `forbidden` for other roles (recorded as a refusal), `invalid` for an assignee who
    ///   is not staff of this pharmacy.
    public func assign(_ ctx: AccessContext, message id: String, to username: String) async throws(FHIRError) -> (thread: String, assignee: String) {
        guard ctx.scope.role == .pharmacist || ctx.scope.role == .technician, ctx.scope.rights(for: .communication).update else {
            throw await store.deny(
                ctx, interaction: "assign", type: .communication, id: id, error: .forbidden("Only pharmacists and technicians assign message threads"))
        }
        guard let staff = try await store.user(named: username), staff.tenant == ctx.scope.tenant,
            staff.role == Role.pharmacist.rawValue || staff.role == Role.technician.rawValue, !staff.disabled
        else { throw .invalid("'\(String(username.prefix(64)))' is not a pharmacist or technician of this pharmacy", at: "assignee") }
        // Through the gate: the message must be visible to the caller, and so must every message up the thread.
        var current = try await store.read(ctx, .communication, id: id)
        var seen: Set<String> = [current.id]
        while let s = current.json?["inResponseTo"]?.arrayValue?.first?["reference"]?.stringValue, let ref = Reference(s), seen.insert(ref.id).inserted,
            let up = try? await store.read(ctx, .communication, id: ref.id)
        {
            current = up
        }
        let thread = current.id, patients = current.patients
        try await store.write(ctx) { tx in
            try tx.messaging.assign(tenant: ctx.scope.tenant, thread: thread, to: staff.id, by: ctx.scope.principal.subject)
            try tx.record("assign", type: .communication, id: thread, patients: patients, detail: "thread assigned to user \(staff.id)")
        }
        return (thread, staff.id)
    }
}
