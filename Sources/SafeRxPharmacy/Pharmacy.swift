import Foundation
import Logging
import SafeRxAudit
import SafeRxDetect
import SafeRxModel
import SafeRxPolicy
import SafeRxStore
import SafeRxStoreCore
import SafeRxVault
import ServiceLifecycle

/// SafeRx as its front ends use it: one value per feature, all over one gate. The HTTP server is built on this
/// alone (it cannot reach the gate); every service that returns patient data takes the caller's ``AccessContext``,
/// which ``AccessService`` resolves from a token.
public struct Pharmacy: Sendable {
    public let auth: AuthService
    public let access: AccessService
    public let records: RecordService
    public let fills: FillService
    public let fulfillment: FulfillmentService
    public let messaging: MessagingService
    public let caregivers: CaregiverService
    public let privacy: PrivacyService
    public let incidents: IncidentService
    public let partners: PartnerService
    public let idempotency: IdempotencyService
    public let directory: Directory
    public let admin: Administration
    public let detection: DetectionAdministration
    public let keys: KeyAdministration
    let store: PharmacyStore

    /// - parameter store: the gate.
    /// - parameter auth: accounts and tokens over the same gate.
    package init(store: PharmacyStore, auth: AuthService) {
        self.store = store
        self.auth = auth
        let access = AccessService(store: store, auth: auth)
        self.access = access
        records = RecordService(store: store, policy: auth.policy)
        fills = FillService(store: store)
        fulfillment = FulfillmentService(store: store, access: access)
        messaging = MessagingService(store: store)
        caregivers = CaregiverService(store: store)
        privacy = PrivacyService(store: store, access: access)
        incidents = IncidentService(store: store, access: access)
        partners = PartnerService(store: store, access: access)
        idempotency = IdempotencyService(store: store)
        directory = Directory(store: store)
        admin = Administration(store: store, auth: auth, access: access)
        detection = DetectionAdministration(store: store, access: access)
        keys = KeyAdministration(store: store, access: access)
    }

    /// Opens (creating if needed) the store with the master key in `keyFile` (created, mode 0600, only together with a
    /// new store), and the services over it: the SQLite store in `dataDirectory`, or the PostgreSQL database that
    /// `database` names (`dataDirectory` then holds the signed audit head and this process's files).
    ///
    /// - parameter database: a `postgres://user:password@host:port/database` URL; nil for SQLite in `dataDirectory`.
    /// - parameter policy: the access policy table tokens are issued and checked against.
    /// - throws: the store's error when the directory cannot be opened, the key file is missing or is the wrong key.
    /// - parameter auditClock: the time audit records are stamped with (a simulation's clock; the real one by default).
    /// - parameter passwordCost: bcrypt's cost for new password hashes (lower only for throw-away stores).
    /// - parameter clock: the time the services and the gate decide by: token, grant and key expiry, refill timing,
    ///   sign-in locks, stamps on new rows (a ``ManualClock`` in tests; the system clock by default).
    public static func open(
        dataDirectory: URL, database: String? = nil, keyFile: URL, policy: PolicyTable = .standard, logger: Logger = Logger(label: "saferx.store"),
        auditClock: (@Sendable () -> Date)? = nil, passwordCost: UInt8 = 12, clock: PharmacyClock = .system
    ) async throws -> Pharmacy {
        var options = PharmacyStore.Options()
        options.database = database
        if let auditClock { options.auditClock = auditClock }
        options.clock = clock
        let store = try PharmacyStore.open(dataDirectory: dataDirectory, keyFile: keyFile, options: options, logger: logger)
        return Pharmacy(store: store, auth: await AuthService(store: store, passwordCost: passwordCost, policy: policy))
    }

    /// The pharmacy's refill rules (too-soon threshold, default validity), set by `saferx serve`.
    public var refillRules: RefillRules {
        get { store.refillRules }
        nonmutating set { store.refillRules = newValue }
    }

    /// The time the services decide by (see ``open(dataDirectory:database:keyFile:policy:logger:auditClock:passwordCost:clock:)``).
    public var clock: PharmacyClock { store.clock }

    /// Whether the store holds no tenant yet (a new data directory).
    public func isEmpty() async throws(FHIRError) -> Bool { try await store.isEmpty() }

    /// Seeds the demo pharmacy (synthetic data) and answers the credentials it created; the audit log is
    /// checkpointed after.
    public func seedDemo(_ demo: DemoPharmacy) async throws -> [DemoCredential] {
        let creds = try await demo.seed(into: store, auth: auth)
        await store.auditWriter.checkpoint()
        return creds
    }

    /// Adds a staff account of the demo's kind to `tenant` with a random password and an enabled authenticator
    /// (for simulations and demos: the caller gets the password and the TOTP secret to sign in with).
    public func addDemoStaff(_ ctx: AccessContext, username: String, role: Role, tenant: String) async throws -> (password: String, totpSecret: Data) {
        let password = DemoPharmacy.randomSecret(bytes: 12)
        let id = try await admin.addUser(ctx, username: username, role: role, tenant: tenant, patient: nil, password: password)
        let secret = TOTP.random().secret
        try await store.beginTOTP(userID: id, secret: secret)
        _ = try await store.useTOTPStep(userID: id, step: 1, enable: true)
        return (password, secret)
    }

    /// Signs a checkpoint of the audit log now (command-line commands end with one).
    public func checkpoint() async { await store.auditWriter.checkpoint() }

    /// What runs beside the HTTP server in `saferx serve`.
    public struct Background: Sendable {
        /// How partner webhooks are sent and retried.
        public var webhookTransport: any WebhookTransport
        public var webhookPolicy: WebhookRetryPolicy
        public var webhookPollInterval: Duration
        /// Where patient notifications (codes, "you have a new message") go.
        public var notificationSender: any NotificationSender
        /// The exfiltration detector's rules and notices; `nil` runs without one.
        public var detection: DetectionSettings?

        public init(
            webhookTransport: any WebhookTransport, webhookPolicy: WebhookRetryPolicy, webhookPollInterval: Duration,
            notificationSender: any NotificationSender, detection: DetectionSettings?
        ) {
            self.webhookTransport = webhookTransport
            self.webhookPolicy = webhookPolicy
            self.webhookPollInterval = webhookPollInterval
            self.notificationSender = notificationSender
            self.detection = detection
        }
    }

    /// Starts the detector in this process (every later append goes through it) and answers the services that run
    /// beside the HTTP server: audit checkpoints (also once more at shutdown), webhook and notification delivery, and
    /// the detector's catch-up on records other processes append.
    ///
    /// - throws: `FHIRError` when the detector cannot start (the server must not run without it when it was asked for).
    public func background(_ b: Background, logger: Logger) throws(FHIRError) -> [any Service] {
        var services: [any Service] = [
            AuditCheckpointService(writer: store.auditWriter),
            WebhookDispatcher(store: store, transport: b.webhookTransport, policy: b.webhookPolicy, pollInterval: b.webhookPollInterval, logger: logger),
            NotificationDispatcher(store: store, sender: b.notificationSender, logger: logger),
        ]
        if let detection = b.detection {
            try store.startDetection(rules: detection.rules, securityContact: detection.securityContact)
            services.append(DetectionService(store: store, logger: logger))
        }
        return services
    }
}

/// How the detector runs inside `saferx serve`.
public struct DetectionSettings: Sendable {
    public var rules: DetectionRules
    /// Where alert notices go through the notification outbox (an e-mail address); `nil` for none.
    public var securityContact: String?

    public init(rules: DetectionRules, securityContact: String? = nil) {
        self.rules = rules
        self.securityContact = securityContact
    }
}

/// Checkpoints the audit log on a timer, and once more after the HTTP server has drained at shutdown.
struct AuditCheckpointService: Service {
    let writer: AuditWriter

    func run() async throws {
        await cancelWhenGracefulShutdown { await writer.runCheckpoints() }
        await writer.checkpoint()
    }
}
