import Foundation
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStore
import SafeRxStoreCore

/// What an operator does on the command line (`saferx users`, `clients`, `token`, `audit`): accounts and API clients
/// created, listed, disabled and given new secrets; tokens issued; the audit log verified and exported. The operator
/// holds the master key and is trusted with the store; every method takes their
/// ``AccessContext/operatorCommand(reason:tenant:write:)`` (a person's or partner's context is refused and the
/// refusal recorded), and what they do is recorded, by the method that does it, as an `operator:<login>` entry naming
/// the patients it concerns.
public struct Administration: Sendable {
    let store: PharmacyStore
    let auth: AuthService
    let access: AccessService

    /// An account or API client as `saferx users list` shows it.
    public struct Account: Sendable {
        public var name: String
        public var role: String
        public var tenant: String
        public var patientID: String?
        /// `active`, `disabled` or `suspended` (by the detector).
        public var status: String
        public var id: String
        public var isClient: Bool
        /// An API client's display name.
        public var displayName: String?
    }

    /// Adds a password user.
    ///
    /// - parameter password: checked against the password policy by the caller; stored as a bcrypt hash only.
    /// - returns: the new account's id.
    /// - throws: `FHIRError` of kind `conflict` for a username already taken, `businessRule` for a patient user
    ///   whose patient is not in `tenant`.
    public func addUser(_ ctx: AccessContext, username: String, role: Role, tenant: String, patient: String?, password: String) async throws(FHIRError) -> String {
        try await access.requireOperator(ctx, interaction: "user-add")
        let id = "user-" + String(UUID().uuidString.lowercased().prefix(12))
        let account = UserAccount(
            id: id, username: username, passwordHash: auth.hashPassword(password), role: role.rawValue, tenant: tenant, patientID: patient)
        try await store.write(ctx) { tx in
            try tx.accounts.insertUser(account)
            try tx.record("user-add", tenant: tenant, detail: "added \(role.rawValue) account \(id)")
        }
        return id
    }

    /// Every user, then every API client.
    public func accounts(_ ctx: AccessContext) async throws(FHIRError) -> [Account] {
        try await access.requireOperator(ctx, interaction: "users-list")
        var out: [Account] = []
        for u in try await store.users() {
            let status = u.disabled ? "disabled" : try await store.isSuspended(u.id) ? "suspended" : "active"
            out.append(Account(name: u.username, role: u.role, tenant: u.tenant, patientID: u.patientID, status: status, id: u.id, isClient: false))
        }
        for c in try await store.clients() {
            let status = c.disabled ? "disabled" : try await store.isSuspended(c.clientID) ? "suspended" : "active"
            out.append(Account(name: c.clientID, role: c.role, tenant: c.tenant, status: status, id: c.clientID, isClient: true, displayName: c.name))
        }
        return out
    }

    /// The username of a user id (operators know people by username, the audit log by id); `nil` for API clients,
    /// `system` and source addresses.
    public func username(_ ctx: AccessContext, id: String) async throws(FHIRError) -> String? {
        try await access.requireOperator(ctx, interaction: "username")
        return try await store.user(id: id)?.username
    }

    /// The API clients only.
    public func clients(_ ctx: AccessContext) async throws(FHIRError) -> [Account] { try await accounts(ctx).filter(\.isClient) }

    func user(_ username: String, clientHint: String) async throws(FHIRError) -> UserAccount {
        guard let user = try await store.user(named: username) else {
            if try await store.client(id: username) != nil { throw FHIRError(kind: .notFound, code: "not-found", diagnostics: "'\(username)' is an API client, not a user: \(clientHint)") }
            throw FHIRError(kind: .notFound, code: "not-found", diagnostics: "No user named '\(username)' (saferx users list)")
        }
        return user
    }

    /// Disables a user; their tokens stop working at once.
    public func disableUser(_ ctx: AccessContext, username: String) async throws(FHIRError) {
        try await access.requireOperator(ctx, interaction: "user-disable")
        let user = try await user(username, clientHint: "saferx clients disable \(username)")
        try await store.write(ctx) { tx in
            try tx.accounts.setUserDisabled(username: username, true)
            try tx.record("user-disable", tenant: user.tenant, detail: "disabled account \(user.id)")
        }
    }

    /// Gives a user a new password; every session ends. Staff also lose their second factor and enrol a new one at
    /// their next sign-in.
    ///
    /// - parameter reason: why, and how the person's identity was checked (kept in the audit log).
    /// - returns: whether the second factor was removed.
    public func resetPassword(_ ctx: AccessContext, username: String, password: String, reason: String) async throws(FHIRError) -> Bool {
        try await access.requireOperator(ctx, interaction: "reset-password")
        let user = try await user(username, clientHint: "saferx clients rotate-secret \(username)")
        let hash = auth.hashPassword(password)
        let staff = AuthService.requiresMFA(user.role)
        try await store.write(ctx) { tx in
            try tx.accounts.setPassword(userID: user.id, hash: hash)
            if staff { try tx.accounts.removeSecondFactor(userID: user.id) }
            try tx.record(
                "password-reset", patients: user.patientID.map { [$0] } ?? [], tenant: user.tenant,
                detail: "password reset for \(user.id)\(staff ? " (second factor removed)" : ""): \(reason)")
        }
        return staff
    }

    /// Removes a user's second factor (a lost phone).
    /// - returns: whether the user must enrol a new one at their next sign-in (staff).
    public func resetMFA(_ ctx: AccessContext, username: String, reason: String) async throws(FHIRError) -> Bool {
        try await access.requireOperator(ctx, interaction: "mfa-reset")
        let user = try await user(username, clientHint: "API clients have no second factor")
        try await store.write(ctx) { tx in
            try tx.accounts.removeSecondFactor(userID: user.id)
            try tx.record(
                "mfa-reset", patients: user.patientID.map { [$0] } ?? [], tenant: user.tenant, detail: "second factor removed for \(user.id): \(reason)")
        }
        return AuthService.requiresMFA(user.role)
    }

    /// A short-lived access token for a user, issued on the command line (operators and tests).
    public func issueToken(_ ctx: AccessContext, username: String, scope: String?, purposes: Set<PurposeOfUse>?) async throws(FHIRError) -> String {
        try await access.requireOperator(ctx, interaction: "token")
        let u = try await user(username, clientHint: "clients get tokens at /auth/token")
        guard !u.disabled else { throw FHIRError(kind: .forbidden, code: "forbidden", diagnostics: "User '\(username)' is disabled") }
        let t = try await auth.issue(subject: u.id, role: u.role, tenant: u.tenant, patient: u.patientID, kind: "user", scope: scope, purposes: purposes)
        try await store.recordAdminEvent(action: "token", tenant: u.tenant, detail: "token issued on the command line for \(u.id)")
        return t.accessToken
    }

    // MARK: API clients

    /// Adds an API client (partner or business line).
    /// - returns: its secret, to be shown once (only a hash is kept).
    public func addClient(_ ctx: AccessContext, id clientID: String, role: Role, name: String, tenant: String, secret: String) async throws(FHIRError) {
        try await access.requireOperator(ctx, interaction: "client-add")
        guard try await store.client(id: clientID) == nil, try await store.user(named: clientID) == nil else {
            throw FHIRError(kind: .conflict, code: "duplicate", diagnostics: "'\(clientID)' is already a client or user id; choose another")
        }
        let client = APIClient(clientID: clientID, secretHash: AuthService.hashClientSecret(secret), role: role.rawValue, tenant: tenant, name: name)
        try await store.write(ctx) { tx in
            try tx.accounts.insertClient(client)
            try tx.record("client-add", tenant: tenant, detail: "added \(role.rawValue) client \(clientID)")
        }
    }

    func client(_ clientID: String) async throws(FHIRError) -> APIClient {
        guard let client = try await store.client(id: clientID) else {
            throw FHIRError(kind: .notFound, code: "not-found", diagnostics: "No API client '\(clientID)' (saferx clients list)")
        }
        return client
    }

    /// Gives an API client a new secret; the old secret and every token issued with it stop working.
    public func rotateClientSecret(_ ctx: AccessContext, id clientID: String, secret: String) async throws(FHIRError) {
        try await access.requireOperator(ctx, interaction: "client-rotate-secret")
        let client = try await client(clientID)
        let hash = AuthService.hashClientSecret(secret)
        try await store.write(ctx) { tx in
            try tx.accounts.rotateClientSecret(id: clientID, secretHash: hash)
            try tx.record("client-rotate-secret", tenant: client.tenant, detail: "new secret for client \(clientID)")
        }
    }

    /// Disables (its tokens stop working at once) or enables an API client.
    public func setClientDisabled(_ ctx: AccessContext, id clientID: String, _ disabled: Bool) async throws(FHIRError) {
        try await access.requireOperator(ctx, interaction: "client-disable")
        let client = try await client(clientID)
        try await store.write(ctx) { tx in
            try tx.accounts.setClientDisabled(id: clientID, disabled)
            try tx.record(
                disabled ? "client-disable" : "client-enable", tenant: client.tenant, detail: "\(disabled ? "disabled" : "enabled") client \(clientID)")
        }
    }

    // MARK: Partners' webhooks

    /// The client id under which security alerts go to the pharmacy's own webhook (`saferx webhooks register --security`).
    public static let securityWebhookClient = PharmacyStore.securityWebhookClient

    /// Registers (or replaces: a client has one endpoint) a partner's webhook endpoint, or the security webhook's for
    /// `tenant`.
    /// - returns: the signing secret (to be shown once) and the endpoint it replaced, if any.
    public func registerWebhook(_ ctx: AccessContext, client: String, url: String, securityTenant: String?) async throws(FHIRError) -> (secret: String, replaced: String?) {
        try await access.requireOperator(ctx, interaction: "webhook-register")
        let previous = try await store.webhookEndpoint(clientID: client)
        let secret = try await store.registerWebhook(ctx, clientID: client, url: url, tenant: securityTenant)
        return (secret, previous?.url)
    }

    /// Webhook events of every pharmacy (or of one client), newest first.
    public func webhookEvents(_ ctx: AccessContext, client: String?, state: WebhookEvent.State?, limit: Int = 1000) async throws(FHIRError) -> [WebhookEvent] {
        try await access.requireOperator(ctx, interaction: "webhook-events")
        return try await store.webhookEvents(clientID: client, state: state, limit: limit)
    }

    /// Queues an event (delivered or dead-lettered) for delivery again; recorded.
    public func replayWebhook(_ ctx: AccessContext, event: String) async throws(FHIRError) {
        try await access.requireOperator(ctx, interaction: "webhook-replay")
        guard try await store.replayWebhook(id: event, clientID: nil) else {
            throw FHIRError(kind: .notFound, code: "not-found", diagnostics: "No webhook event \(event)")
        }
        try await store.recordAdminEvent(action: "webhook-replay", tenant: "*", detail: "replay \(event)")
    }

    // MARK: The audit log

    /// Checks every hash, link and signed checkpoint, and the head kept outside the database.
    public func verifyAudit(_ ctx: AccessContext) async throws(FHIRError) -> AuditCheck {
        try await access.requireOperator(ctx, interaction: "audit-verify")
        do {
            let v = try await store.verifyAudit()
            return AuditCheck(records: v.records, checkpoints: v.checkpoints, firstBad: v.firstBad, reason: v.reason)
        } catch let e as FHIRError { throw e } catch {
            throw FHIRError(kind: .internal, code: "exception", diagnostics: "The audit log could not be read: \(error)")
        }
    }

    /// What a verification of the whole audit chain found.
    public struct AuditCheck: Sendable, Equatable {
        public var records: Int64
        public var checkpoints: Int
        /// The first bad sequence number, `nil` when the log verifies.
        public var firstBad: Int64?
        /// Why that record does not verify.
        public var reason: String?

        public var ok: Bool { firstBad == nil }
    }

    /// The audit log as NDJSON of FHIR AuditEvent; sealed fields (source address, user agent, detail) only with
    /// `includeSealed`. The export is itself recorded, naming every patient it names.
    /// - returns: the NDJSON and the number of records.
    public func exportAudit(_ ctx: AccessContext, includeSealed: Bool) async throws(FHIRError) -> (ndjson: Data, records: Int) {
        try await access.requireOperator(ctx, interaction: "export")
        let records: [AuditRecord]
        do { records = try await store.auditRecords() } catch let e as FHIRError { throw e } catch {
            throw FHIRError(kind: .internal, code: "exception", diagnostics: "The audit log could not be read: \(error)")
        }
        var out = Data()
        var patients = Set<String>()
        for var record in records {
            patients.formUnion(record.entry.patients)
            if !includeSealed {
                record.entry.sourceIP = ""
                record.entry.userAgent = ""
                record.entry.detail = nil
            }
            out.append(AuditEventMapper.auditEvent(record).encoded())
            out.append(0x0A)
        }
        try await store.recordAdminEvent(
            action: "export", tenant: "*", patients: patients,
            detail: "audit export: \(records.count) records\(includeSealed ? ", sealed fields included" : "")")
        return (out, records.count)
    }

    /// An operator's action that no other method records (a file written by the command line, a check run).
    public func record(_ ctx: AccessContext, action: String, tenant: String, patients: some Sequence<String> = [String](), detail: String) async throws(FHIRError) {
        try await access.requireOperator(ctx, interaction: "record")
        try await store.recordAdminEvent(action: action, tenant: tenant, patients: patients, detail: detail)
    }
}
