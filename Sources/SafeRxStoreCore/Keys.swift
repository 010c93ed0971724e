import Foundation

// What key administration, erasure and backups answer: values a second storage engine answers in too.

/// What `saferx keys status` shows.
public struct KeyStatus: Sendable {
    public struct Tenant: Sendable {
        public var tenant: String
        public var version: Int64
        public var dataKeys: Int
        public var retired: Int

        package init(tenant: String, version: Int64, dataKeys: Int, retired: Int) {
            self.tenant = tenant
            self.version = version
            self.dataKeys = dataKeys
            self.retired = retired
        }
    }

    public var masterKeyID: String
    public var tenants: [Tenant]
    public var pending: Int
    /// Tenant and service keys not yet wrapped under the current master key (the previous key file is still needed).
    public var underOtherMasterKeys: Int
    public var erased: Int

    package init(masterKeyID: String, tenants: [Tenant], pending: Int, underOtherMasterKeys: Int, erased: Int) {
        self.masterKeyID = masterKeyID
        self.tenants = tenants
        self.pending = pending
        self.underOtherMasterKeys = underOtherMasterKeys
        self.erased = erased
    }
}

/// What a re-encryption did.
public struct ReencryptionReport: Sendable {
    /// Data keys given a new version (0 when an interrupted run was resumed).
    public var rotatedKeys: Int
    public var resources: Int
    /// Other sealed values moved: usernames, MFA secrets, notifications, webhook secrets, honeytoken ids, letter contacts.
    public var otherValues: Int
    /// Old data key versions destroyed.
    public var retiredKeys: Int
    /// Old data key versions kept because some value still names them (0 after a complete run; a later run resumes).
    public var keptKeys: Int
    public var seconds: Double

    package init(rotatedKeys: Int, resources: Int, otherValues: Int, retiredKeys: Int, keptKeys: Int, seconds: Double) {
        self.rotatedKeys = rotatedKeys
        self.resources = resources
        self.otherValues = otherValues
        self.retiredKeys = retiredKeys
        self.keptKeys = keptKeys
        self.seconds = seconds
    }
}

/// Why an erasure was refused.
public enum ErasureError: Error, Sendable, CustomStringConvertible {
    case unknownPatient(id: String, tenant: String)
    case alreadyErased(id: String, at: String)
    /// Dispense records younger than the retention period must be kept.
    case retentionHold(id: String, dispenses: Int, newest: String, until: String, years: Int)

    public var description: String {
        switch self {
        case .unknownPatient(let id, let tenant): "No Patient/\(id) in tenant \(tenant)"
        case .alreadyErased(let id, let at): "Patient/\(id) was already erased at \(at)"
        case .retentionHold(let id, let n, let newest, let until, let years):
            "Patient/\(id) is under a retention hold: \(n) dispense record\(n == 1 ? "" : "s"), the newest from \(newest), "
                + "must be kept until \(until) (retention \(years) years). Nothing was erased. "
                + "Use --legal-override (with --reason naming the legal basis) to erase anyway; the override is audited."
        }
    }
}

/// What an erasure did.
public struct ErasureResult: Sendable {
    public var patient: String
    public var tenant: String
    public var resources: Int
    public var versions: Int
    public var accounts: Int
    public var legalOverride: Bool
    /// Resources in the patient's compartment kept because they belong to another patient's record.
    public var sharedResources: Int
    public var auditSequence: Int64
    /// Whether the WAL was checkpointed and truncated at once (else it will be at the next checkpoint).
    public var walTruncated: Bool

    package init(patient: String, tenant: String, resources: Int, versions: Int, accounts: Int, legalOverride: Bool, sharedResources: Int, auditSequence: Int64, walTruncated: Bool) {
        self.patient = patient
        self.tenant = tenant
        self.resources = resources
        self.versions = versions
        self.accounts = accounts
        self.legalOverride = legalOverride
        self.sharedResources = sharedResources
        self.auditSequence = auditSequence
        self.walTruncated = walTruncated
    }
}

/// Why a backup could not be made, read or restored. Messages name the file and what is wrong with it.
public enum BackupError: Error, Sendable, CustomStringConvertible {
    case notABackup(String)
    case truncated(String)
    case corrupted(String)
    case unusable(String)

    public var description: String {
        switch self {
        case .notABackup(let m): "not a SafeRx backup: \(m)"
        case .truncated(let m): "backup truncated: \(m)"
        case .corrupted(let m): "backup corrupted: \(m)"
        case .unusable(let m): m
        }
    }
}

/// What a backup holds, as checked by ``Backup/verify(_:keyProvider:)`` or after a restore.
public struct BackupSummary: Sendable {
    public var created: String
    public var masterKeyID: String
    public var bytes: Int
    public var resources: Int
    public var patients: Int
    public var auditRecords: Int64
    public var checkpoints: Int

    package init(created: String, masterKeyID: String, bytes: Int, resources: Int, patients: Int, auditRecords: Int64, checkpoints: Int) {
        self.created = created
        self.masterKeyID = masterKeyID
        self.bytes = bytes
        self.resources = resources
        self.patients = patients
        self.auditRecords = auditRecords
        self.checkpoints = checkpoints
    }
}
