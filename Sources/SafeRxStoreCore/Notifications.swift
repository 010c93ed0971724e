import Foundation

/// A message waiting in the notification outbox, opened for sending.
public struct OutgoingNotification: Sendable, Equatable {
    /// What a notification is about. Bodies are fixed texts: a code, or "you have a new message"; never PHI.
    public enum Kind: String, Sendable {
        case signupCode = "signup-code"
        case resetCode = "reset-code"
        case newMessage = "new-message"
        /// Someone tried to sign up for a record that already has an account.
        case signupExisting = "signup-existing"
        /// The exfiltration detector raised an alert (to the security contact; ids and rule only).
        case securityAlert = "security-alert"
    }

    public var id: String
    public var tenant: String
    /// The patient whose contact it goes to (the key that seals it).
    public var patientID: String
    /// `email` or `sms`.
    public var channel: String
    public var recipient: String
    public var kind: Kind
    public var subject: String
    public var body: String

    package init(id: String, tenant: String, patientID: String, channel: String, recipient: String, kind: Kind, subject: String, body: String) {
        self.id = id
        self.tenant = tenant
        self.patientID = patientID
        self.channel = channel
        self.recipient = recipient
        self.kind = kind
        self.subject = subject
        self.body = body
    }
}
