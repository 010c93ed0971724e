import Foundation
import SafeRxModel

/// One line of an accounting of disclosures or of a patient's access log.
public struct AccessLogEntry: Sendable, Equatable {
    public var seq: Int64
    public var time: String
    /// Who received the data: for staff their role and pharmacy (never a personal name or user id); for API clients
    /// the client's name.
    public var recipient: String
    public var role: String
    public var purpose: String
    /// read, vread, history, search, break-glass...
    public var action: String
    /// `Type/id`, or `Type` for a search.
    public var resource: String
    /// What was disclosed, as recorded with the access (elements released, search results).
    public var detail: String

    package init(seq: Int64, time: String, recipient: String, role: String, purpose: String, action: String, resource: String, detail: String) {
        self.seq = seq
        self.time = time
        self.recipient = recipient
        self.role = role
        self.purpose = purpose
        self.action = action
        self.resource = resource
        self.detail = detail
    }
}

/// A break-glass override as the daily report lists it.
public struct BreakGlassGrant: Sendable {
    public var id: String
    public var tenant: String
    public var userID: String
    public var role: String
    public var patientID: String
    public var granted: String
    public var expires: String
    public var reason: String
    /// Requests made under this override (purpose ETREAT, this user, this patient, before it expired).
    public var accesses: Int

    package init(id: String, tenant: String, userID: String, role: String, patientID: String, granted: String, expires: String, reason: String, accesses: Int) {
        self.id = id
        self.tenant = tenant
        self.userID = userID
        self.role = role
        self.patientID = patientID
        self.granted = granted
        self.expires = expires
        self.reason = reason
        self.accesses = accesses
    }
}
