import Foundation
import SafeRxModel

/// A patient's grant of access to their records to another account (a family member, a carer).
public struct CaregiverGrant: Sendable, Equatable {
    /// What the caregiver may see and do.
    public enum Access: String, Sendable, CaseIterable {
        /// Everything the patient sees, requesting refills and messaging included (not consents, not the access log).
        case all
        /// Message threads and their attachments.
        case messages
        /// Prescriptions and fills, and requesting refills.
        case prescriptions

        /// The SMART scopes a caregiver's token carries for this access.
        public var scopes: String {
            switch self {
            case .all:
                "patient/Patient.read patient/MedicationRequest.* patient/MedicationDispense.read patient/Medication.read "
                    + "patient/Practitioner.read patient/Organization.read patient/Communication.* patient/DocumentReference.* patient/Binary.*"
            case .messages: "patient/Communication.* patient/DocumentReference.* patient/Binary.* patient/Organization.read"
            case .prescriptions:
                "patient/MedicationRequest.* patient/MedicationDispense.read patient/Medication.read patient/Practitioner.read patient/Organization.read"
            }
        }
    }

    public var id: String
    public var tenant: String
    public var patientID: String
    public var caregiverUserID: String
    public var access: Access
    public var expires: Date
    public var created: Date
    public var revoked: Date?

    public var isLive: Bool { revoked == nil && expires > Date() }

    package init(id: String, tenant: String, patientID: String, caregiverUserID: String, access: Access, expires: Date, created: Date, revoked: Date? = nil) {
        self.id = id
        self.tenant = tenant
        self.patientID = patientID
        self.caregiverUserID = caregiverUserID
        self.access = access
        self.expires = expires
        self.created = created
        self.revoked = revoked
    }
}
