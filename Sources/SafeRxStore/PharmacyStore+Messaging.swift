import Foundation
import SafeRxSQL
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStoreCore

/// Secure messaging on top of Communication: read marks, unread counts, threads and their assignment to staff, and
/// "you have a new message" notifications. Every list goes through the scoped gate and is audited.
extension PharmacyStore {
    /// Whether a message was written by the patient side (the patient or a caregiver speaking for them).
    static func fromPatient(_ json: JSON?) -> Bool {
        (json?["sender"]?["reference"]?.stringValue).flatMap(Reference.init)?.type == .patient
    }

    /// Called in the transaction that creates a Communication: the sender has read it; a message from the pharmacy
    /// notifies the patient and their caregivers with a fixed text, never the message itself.
    func afterMessageCreated(_ db: any SQLConnection, tenant: String, _ r: StoredResource, scope: AccessScope) throws {
        try MessagingRepository(db: db, clock: clock).markRead(user: scope.principal.subject, tenant: tenant, communications: [r.id])
        guard !Self.fromPatient(r.json), let s = r.json?["subject"]?["reference"]?.stringValue, let ref = Reference(s), ref.type == .patient else { return }
        // Who wrote it comes from the token (the sender was set from it), never from the message body.
        let from: String
        if case .partner(let client) = scope.rows {
            from = try String.fetchOne(db, sql: "SELECT name FROM api_client WHERE client_id = ?", arguments: [client]) ?? client
        } else {
            from = try String.fetchOne(db, sql: "SELECT name FROM tenant WHERE id = ?", arguments: [tenant]) ?? "your pharmacy"
        }
        let body = "You have a new message from \(from). Sign in to SafeRx to read it."
        for patient in [ref.id] + (try messageCaregivers(db, tenant: tenant, patient: ref.id)) {
            try enqueueNotification(db, tenant: tenant, patient: patient, kind: .newMessage, subject: "You have a new message", body: body)
        }
    }

    /// Records that the caller opened these messages (after the gate returned them).
    package func markRead(_ ctx: AccessContext, communications ids: [String]) async throws(FHIRError) {
        let user = ctx.scope.principal.subject, tenant = ctx.scope.tenant
        guard !ids.isEmpty, ctx.scope.systemReason == nil else { return }
        try await runWrite { [self] db in try MessagingRepository(db: db, clock: clock).markRead(user: user, tenant: tenant, communications: ids) }
    }

    /// The caller's message threads (a patient's or caregiver's own; every patient's for staff), newest first, with
    /// unread counts and assignees, one page at a time. `assignedTo` limits staff to threads assigned to that user id.
    ///
    /// A thread list is a work list: ids, counts, dates and assignees, no message content. It is audited as action
    /// `list` naming exactly the patients on the page returned, so that opening the inbox is accounted for without
    /// counting as a read of every patient who ever wrote (the detection rules count `list` toward no bulk-read rule).
    /// - parameter count: threads per page (1-100).
    /// - parameter offset: threads to skip.
    package func messageThreads(_ ctx: AccessContext, assignedTo: String? = nil, count: Int = 20, offset: Int = 0) async throws(FHIRError) -> ThreadPage {
        guard (1...100).contains(count) else { throw .invalid("_count must be 1-100 for message threads", at: "_count") }
        guard offset >= 0, offset <= 1_000_000 else { throw .invalid("_offset must be 0 or more", at: "_offset") }
        try await requireRight(ctx, .communication, "list", nil, ctx.scope.rights(for: .communication).read)
        let all = try await allThreads(ctx, assignedTo: assignedTo)
        let page = Array(all.dropFirst(offset).prefix(count))
        try await commitAudit(
            entry(ctx, action: "list", type: .communication, id: nil, patients: Set(page.map(\.patientID)), outcome: "success", result: .ok,
                  detail: "message threads \(page.isEmpty ? 0 : offset + 1)-\(offset + page.count) of \(all.count) (ids, counts and dates; no content)"))
        return ThreadPage(
            threads: page, total: all.count, unread: all.reduce(0) { $0 + $1.unread }, unreadThreads: all.filter { $0.unread > 0 }.count)
    }

    /// How many messages and threads are unread by the caller: numbers only, audited as action `count` naming no patient
    /// (a patient's or caregiver's count names the patient it is about).
    package func unreadMessages(_ ctx: AccessContext) async throws(FHIRError) -> (messages: Int, threads: Int) {
        try await requireRight(ctx, .communication, "count", nil, ctx.scope.rights(for: .communication).read)
        let all = try await allThreads(ctx, assignedTo: nil)
        let own: Set<String> = ctx.scope.role == .patient ? Set(all.map(\.patientID)) : []
        try await commitAudit(
            entry(ctx, action: "count", type: .communication, id: nil, patients: own, outcome: "success", result: .ok, detail: "unread messages"))
        return (all.reduce(0) { $0 + $1.unread }, all.filter { $0.unread > 0 }.count)
    }

    /// Every thread the scope lets the caller see, newest first (not audited: callers audit what they return).
    ///
    /// Built from the search index (reply-to, sender, sent) over the same scoped rows a search returns, so opening an
    /// inbox decrypts nothing; messages stored before `sent` was indexed sort by their last update.
    func allThreads(_ ctx: AccessContext, assignedTo: String?) async throws(FHIRError) -> [MessageThread] {
        let scope = ctx.scope, user = scope.principal.subject, tenant = scope.tenant
        let patientSide = scope.role == .patient
        return try await run { [self] db -> [MessageThread] in
            let rows = try scopedTerms(db, scope, type: .communication, terms: ["part-of", "sender", "sent"])
            let read = Set(try String.fetchAll(db, sql: "SELECT communication_id FROM message_read WHERE user_id = ? AND tenant = ?", arguments: [user, tenant]))
            let assigned = Dictionary(
                try SQLRow.fetchAll(db, sql: "SELECT thread_id, assignee FROM thread_assignment WHERE tenant = ?", arguments: [tenant]).map { ($0[0] as String, $0[1] as String) },
                uniquingKeysWith: { a, _ in a })
            let parent = Dictionary(rows.map { r in (r.id, r.terms["part-of"].flatMap(Reference.init)?.id) }, uniquingKeysWith: { a, _ in a })
            func root(_ id: String) -> String {
                var current = id, seen: Set<String> = []
                while let p = parent[current] ?? nil, parent[p] != nil, seen.insert(current).inserted { current = p }
                return current
            }
            var out: [String: MessageThread] = [:]
            for r in rows {
                let t = root(r.id)
                var thread = out[t] ?? MessageThread(id: t, patientID: r.patients.first ?? "", messages: 0, unread: 0, lastSent: "", assignee: assigned[t])
                thread.messages += 1
                let fromPatient = r.terms["sender"].flatMap(Reference.init)?.type == .patient
                if !read.contains(r.id), fromPatient != patientSide { thread.unread += 1 }
                let sent = r.terms["sent"] ?? r.lastUpdated
                if sent > thread.lastSent { thread.lastSent = sent }
                out[t] = thread
            }
            return out.values.filter { assignedTo == nil || $0.assignee == assignedTo }.sorted { ($0.lastSent, $0.id) > ($1.lastSent, $1.id) }
        }
    }
}
