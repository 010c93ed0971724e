import Foundation
import SafeRxModel

/// A requested move of a fill to another state (`POST MedicationDispense/{id}/$transition`).
public struct FillTransition: Sendable {
    public var to: FillState
    /// A ``FillReason`` code; required for on-hold, cancelled and declined.
    public var reason: String?
    /// Free text for the pharmacy's own notes (stored in the encrypted resource).
    public var note: String?
    /// Shipping (to `completed`): carrier (``Shipment/carriers``, any letter case) and tracking number. The ship-to
    /// address comes from the patient record.
    public var carrier: String?
    public var trackingNumber: String?

    public init(to: FillState, reason: String? = nil, note: String? = nil, carrier: String? = nil, trackingNumber: String? = nil) {
        self.to = to
        self.reason = reason
        self.note = note
        self.carrier = carrier?.lowercased()
        self.trackingNumber = trackingNumber
    }
}

/// A carrier's tracking update for one shipment.
public struct TrackingUpdate: Sendable {
    public var carrier: String
    public var trackingNumber: String
    public var status: String
    public var time: String
    public var location: String?

    public init(carrier: String, trackingNumber: String, status: String, time: String, location: String? = nil) {
        self.carrier = carrier.lowercased()
        self.trackingNumber = trackingNumber
        self.status = status
        self.time = time
        self.location = location
    }
}

/// One recorded move of a fill (from SafeRx's own fill history, not the resource).
public struct FillEvent: Sendable, Equatable {
    public var from: String
    public var to: String
    public var actorID: String
    public var actorRole: String
    public var reason: String?
    public var at: String

    package init(from: String, to: String, actorID: String, actorRole: String, reason: String? = nil, at: String) {
        self.from = from
        self.to = to
        self.actorID = actorID
        self.actorRole = actorRole
        self.reason = reason
        self.at = at
    }
}

/// One fill on the work queue: what a technician or pharmacist needs to pick the next job and tell patients apart
/// (name and birth date), and nothing else: no address, no dosage, no prescriber.
public struct QueueEntry: Sendable, Equatable {
    public var dispenseID: String
    public var patientID: String
    /// The patient's name and birth date as the caller's scope shows them (empty when its policy hides them).
    public var patientName: String
    public var birthDate: String
    /// `Medication/<id>` or the dispense's medication text.
    public var medication: String
    public var state: FillState
    public var lastUpdated: String

    package init(dispenseID: String, patientID: String, patientName: String, birthDate: String, medication: String, state: FillState, lastUpdated: String) {
        self.dispenseID = dispenseID
        self.patientID = patientID
        self.patientName = patientName
        self.birthDate = birthDate
        self.medication = medication
        self.state = state
        self.lastUpdated = lastUpdated
    }
}

/// One page of one state's queue.
public struct QueuePage: Sendable {
    public var entries: [QueueEntry]
    /// Fills in this state in all (for "51-100 of 312").
    public var total: Int
    public var offset: Int

    package init(entries: [QueueEntry], total: Int, offset: Int) {
        self.entries = entries
        self.total = total
        self.offset = offset
    }
}

/// An exported fulfillment file, as the breach-scope lookup finds it.
public struct FulfillmentFile: Sendable {
    public var sha256: String
    public var vendor: String
    public var tenant: String
    public var day: String
    public var rows: Int
    public var created: String
    public var auditSeq: Int64
    /// Every patient whose data is in the file (from the file's audit record).
    public var patients: [String]

    package init(sha256: String, vendor: String, tenant: String, day: String, rows: Int, created: String, auditSeq: Int64, patients: [String]) {
        self.sha256 = sha256
        self.vendor = vendor
        self.tenant = tenant
        self.day = day
        self.rows = rows
        self.created = created
        self.auditSeq = auditSeq
        self.patients = patients
    }
}
