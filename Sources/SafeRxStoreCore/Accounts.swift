import Foundation
import SafeRxModel

/// A user account as stored. The username is kept encrypted with a blind index for lookup.
public struct UserAccount: Sendable, Equatable {
    public var id: String
    public var username: String
    public var passwordHash: String
    public var role: String
    public var tenant: String
    public var patientID: String?
    public var disabled: Bool
    public var failedAttempts: Int
    /// Seconds since 1970; 0 when not locked.
    public var lockedUntil: Double

    public init(
        id: String, username: String, passwordHash: String, role: String, tenant: String, patientID: String?,
        disabled: Bool = false, failedAttempts: Int = 0, lockedUntil: Double = 0
    ) {
        self.id = id
        self.username = username
        self.passwordHash = passwordHash
        self.role = role
        self.tenant = tenant
        self.patientID = patientID
        self.disabled = disabled
        self.failedAttempts = failedAttempts
        self.lockedUntil = lockedUntil
    }
}

/// A partner (API) client.
public struct APIClient: Sendable, Equatable {
    public var clientID: String
    public var secretHash: String
    public var role: String
    public var tenant: String
    public var name: String
    public var disabled: Bool

    public init(clientID: String, secretHash: String, role: String, tenant: String, name: String, disabled: Bool = false) {
        self.clientID = clientID
        self.secretHash = secretHash
        self.role = role
        self.tenant = tenant
        self.name = name
        self.disabled = disabled
    }
}

/// A user's second factor as stored: the TOTP secret (opened from its seal), whether enrolment was confirmed, and the
/// last time step accepted (a code is never accepted twice).
public struct MFAState: Sendable, Equatable {
    public var secret: Data?
    public var enabled: Bool
    public var lastStep: Int64
    public var recoveryCodesLeft: Int

    package init(secret: Data? = nil, enabled: Bool, lastStep: Int64, recoveryCodesLeft: Int) {
        self.secret = secret
        self.enabled = enabled
        self.lastStep = lastStep
        self.recoveryCodesLeft = recoveryCodesLeft
    }
}

/// A one-time code (sign-up, password reset) as stored: only an HMAC of the code is kept.
public struct OneTimeCode: Sendable, Equatable {
    public enum Purpose: String, Sendable { case signup, reset }
    public var id: String
    public var purpose: Purpose
    public var tenant: String
    public var userID: String?
    public var patientID: String?

    package init(id: String, purpose: Purpose, tenant: String, userID: String? = nil, patientID: String? = nil) {
        self.id = id
        self.purpose = purpose
        self.tenant = tenant
        self.userID = userID
        self.patientID = patientID
    }
}

/// Why a one-time code was not accepted (all answered the same way to the client).
public enum OneTimeCodeFailure: Error, Sendable, Equatable {
    case unknown, expired, wrongCode, tooManyAttempts, used
}

/// What a person gives to prove they are a patient of the pharmacy when creating an account: nothing imported from
/// elsewhere, only facts the pharmacy's own record holds.
public struct IdentityClaim: Sendable {
    public var family: String
    public var given: String
    /// YYYY-MM-DD.
    public var birthDate: String
    /// A prescription number printed on one of their labels.
    public var rxNumber: String

    public init(family: String, given: String, birthDate: String, rxNumber: String) {
        self.family = family
        self.given = given
        self.birthDate = birthDate
        self.rxNumber = rxNumber
    }

    /// The identifier system of prescription numbers.
    public static let rxNumberSystem = RxNumber.system
}
