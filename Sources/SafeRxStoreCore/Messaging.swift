import Foundation
import SafeRxModel

/// A message thread: Communications linked by `inResponseTo`, named by the first message.
public struct MessageThread: Sendable, Equatable {
    public var id: String
    public var patientID: String
    public var messages: Int
    /// Messages in the thread the caller has not opened and did not send (for a patient or caregiver: from the
    /// pharmacy; for staff: from the patient side).
    public var unread: Int
    public var lastSent: String
    /// The user id of the staff member the thread is assigned to.
    public var assignee: String?

    package init(id: String, patientID: String, messages: Int, unread: Int, lastSent: String, assignee: String? = nil) {
        self.id = id
        self.patientID = patientID
        self.messages = messages
        self.unread = unread
        self.lastSent = lastSent
        self.assignee = assignee
    }
}

/// One page of message threads, with the totals over all of the caller's threads.
public struct ThreadPage: Sendable {
    public var threads: [MessageThread]
    /// Threads in all (for "21-40 of 88").
    public var total: Int
    /// Unread messages and threads with unread messages, over all threads.
    public var unread: Int
    public var unreadThreads: Int

    package init(threads: [MessageThread], total: Int, unread: Int, unreadThreads: Int) {
        self.threads = threads
        self.total = total
        self.unread = unread
        self.unreadThreads = unreadThreads
    }
}
