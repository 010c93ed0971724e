import Crypto
import SafeRxStoreCore
import Synchronization
import Foundation
import HummingbirdBcrypt
import JWTKit
import Logging
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStore
import SafeRxVault

/// The claims of a SafeRx access token (a JWT signed with Ed25519).
public struct AccessClaims: JWTPayload, Equatable {
    public var iss: IssuerClaim
    public var aud: AudienceClaim
    public var sub: SubjectClaim
    public var exp: ExpirationClaim
    public var iat: IssuedAtClaim
    public var jti: IDClaim
    public var role: String
    public var tenant: String
    public var patient: String?
    public var scope: String
    /// "user" or "client".
    public var kind: String
    /// The purposes of use the holder may act under (HL7 v3 PurposeOfUse codes, space-separated).
    public var pou: String?
    /// A caregiver's token: the caregiver grant it was issued under (checked live on every request).
    public var grant: String?
    /// A caregiver's token: the `jti` of the caregiver's own token that asked for it. Signing that one out (revoking
    /// it) ends this one too.
    public var parent: String?

    public init(
        iss: IssuerClaim, aud: AudienceClaim, sub: SubjectClaim, exp: ExpirationClaim, iat: IssuedAtClaim, jti: IDClaim,
        role: String, tenant: String, patient: String?, scope: String, kind: String, pou: String? = nil, grant: String? = nil,
        parent: String? = nil
    ) {
        self.grant = grant
        self.parent = parent
        self.pou = pou
        self.iss = iss
        self.aud = aud
        self.sub = sub
        self.exp = exp
        self.iat = iat
        self.jti = jti
        self.role = role
        self.tenant = tenant
        self.patient = patient
        self.scope = scope
        self.kind = kind
    }

    /// Issuer and audience. Expiry is checked by ``AuthService`` against its clock, not here against the machine's.
    public func verify(using algorithm: some JWTAlgorithm) async throws {
        try aud.verifyIntendedAudience(includes: AuthService.audience)
        guard iss.value == AuthService.issuer else { throw JWTError.claimVerificationFailure(failedClaim: iss, reason: "issuer") }
    }
}

/// What the caller needs to know about a request to audit it before the principal is known.
public struct RequestInfo: Sendable {
    public var requestID: String
    public var sourceIP: String
    public var userAgent: String

    public init(requestID: String, sourceIP: String, userAgent: String) {
        self.requestID = requestID
        self.sourceIP = sourceIP
        self.userAgent = userAgent
    }
}

/// An issued token, as answered by `/auth/login` and `/auth/token`.
public struct IssuedToken: Sendable {
    public var accessToken: String
    public var expiresIn: Int
    public var scope: String
    public var patient: String?
    /// The token only enrols a second factor (staff signing in before they have one).
    public var mfaEnrollmentRequired: Bool = false
}

/// Accounts, passwords and tokens.
///
/// Passwords are bcrypt hashes, checked off the cooperative thread pool (``PasswordWork``). Failed logins slow down
/// after ``slowAfter`` attempts and lock the account *for that source address* for ``lockDuration`` after
/// ``lockAfter`` (``LoginThrottle``), so nobody can lock a real user out from elsewhere; unknown usernames get the same
/// treatment and the same answer, so the answer never says whether a username exists. Tokens expire after ``tokenLifetime``, carry a `jti`, and are checked
/// against revocations and the account's state on every request.
public final class AuthService: Sendable {
    public static let issuer = "saferx"
    public static let audience = "saferx-fhir"
    public static let tokenLifetime: TimeInterval = 900
    public static let slowAfter = 3
    public static let lockAfter = 5
    public static let lockDuration: TimeInterval = 15 * 60
    static let loginFailed = "Invalid username or password"

    package let store: PharmacyStore
    let keys: JWTKeyCollection
    let throttle = LoginThrottle()
    /// bcrypt, off the cooperative thread pool and bounded.
    let passwords = PasswordWork()
    /// Tokens whose signature and claims were already verified (revocation and account state are still checked on
    /// every request).
    let verified = VerifiedTokenCache()
    let passwordCost: UInt8
    let dummyHash: String
    /// The access policy table tokens are issued against.
    public let policy: PolicyTable
    let logger: Logger
    /// The time tokens are issued at and expire by, and sign-in locks run on (the gate's clock).
    let clock: PharmacyClock

    package init(
        store: PharmacyStore, passwordCost: UInt8 = 12, policy: PolicyTable = .standard, logger: Logger = Logger(label: "saferx.auth")
    ) async {
        self.policy = policy
        self.store = store
        self.clock = store.clock
        self.passwordCost = passwordCost
        self.logger = logger
        self.keys = JWTKeyCollection()
        await keys.add(eddsa: EdDSA.PrivateKey(backing: store.tokenSigningKey), kid: "saferx-1")
        self.dummyHash = Bcrypt.hash("not-a-real-password", cost: passwordCost)
    }

    /// A bcrypt hash of `password` at this service's cost.
    public func hashPassword(_ password: String) -> String { Bcrypt.hash(password, cost: passwordCost) }

    /// The password rules (``PasswordPolicy``, NIST SP 800-63B). `context` are words of the account (username, name).
    public static func checkPasswordPolicy(_ password: String, context: [String] = []) throws(FHIRError) {
        try PasswordPolicy.standard.check(password, context: context)
    }

    // MARK: Login

    /// Roles that must sign in with a second factor.
    public static func requiresMFA(_ role: String) -> Bool { role != Role.patient.rawValue }

    /// How long a token that can only enrol a second factor lives.
    public static let enrollmentTokenLifetime: TimeInterval = 600

    public func login(username: String, password: String, otp: String? = nil, request: RequestInfo) async throws(FHIRError) -> IssuedToken {
        guard !username.isEmpty, username.count <= 128, !password.isEmpty, password.count <= 1024 else {
            throw .invalid("username and password must be non-empty strings")
        }
        let now = clock.now.timeIntervalSince1970
        let user = try await store.user(named: username)
        func audit(_ outcome: String, _ result: AuditResult, _ u: UserAccount?, detail: String?) async throws(FHIRError) {
            let actor = AuditEntry.Actor(id: u?.id ?? "unknown", role: u?.role ?? "anonymous", tenant: u?.tenant ?? "-")
            try await store.recordEvent(
                AuditEntry(
                    actor: actor, action: "login", outcome: outcome, result: result,
                    purpose: u.flatMap { Role(rawValue: $0.role) }.map { PurposeOfUse.default(for: $0).rawValue } ?? "SYSADMIN",
                    sourceIP: request.sourceIP, userAgent: request.userAgent, requestID: request.requestID, detail: detail))
        }
        // Locked per account and source address: a guesser elsewhere never locks the real user out.
        let account = username.lowercased(), source = request.sourceIP
        if let until = await throttle.locked(account: account, source: source, now: now) {
            try await audit("denied", .throttled, user, detail: "locked for this source")
            throw .tooManyRequests(
                "Too many failed sign-in attempts from this address; try again in \(Int((until - now) / 60) + 1) minutes",
                retryAfter: Int(until - now) + 1)
        }
        guard let user else {
            _ = try await passwords.verify(password, hash: dummyHash)
            try await slowDown(await throttle.fail(account: account, source: source, now: now))
            try await audit("failure", .unauthenticated, nil, detail: "bad credentials")
            throw .unauthorized(Self.loginFailed)
        }
        let ok = try await passwords.verify(password, hash: user.passwordHash)
        guard ok, !user.disabled else {
            try await slowDown(await throttle.fail(account: account, source: source, now: now))
            try await audit("failure", .unauthenticated, user, detail: user.disabled ? "disabled" : "bad credentials")
            throw .unauthorized(Self.loginFailed)
        }
        // The password was right: now the second factor.
        let mfa = try await store.mfaState(userID: user.id)
        if mfa.enabled, let secret = mfa.secret {
            guard let otp, !otp.isEmpty else {
                try await audit("failure", .unauthenticated, user, detail: "second factor required")
                throw FHIRError(
                    kind: .unauthenticated, code: "login",
                    diagnostics: "mfa_required: send the 6-digit code from your authenticator app (or a recovery code) as 'otp'")
            }
            guard try await checkSecondFactor(user: user, secret: secret, lastStep: mfa.lastStep, otp: otp) else {
                try await slowDown(await throttle.fail(account: account, source: source, now: now))
                try await audit("failure", .unauthenticated, user, detail: "bad second factor")
                throw FHIRError(kind: .unauthenticated, code: "login", diagnostics: "mfa_invalid: the code is wrong, expired or already used (each code works once: wait for the app to show the next one)")
            }
        }
        if try await store.isSuspended(user.id) {
            // Told only after the password and second factor were right: a guesser learns nothing.
            try await audit("denied", .forbidden, user, detail: "suspended by the detector")
            throw .forbidden(Self.suspendedMessage)
        }
        try await store.recordLoginSuccess(userID: user.id)
        await throttle.succeed(account: account, source: source)
        if !mfa.enabled, Self.requiresMFA(user.role) {
            // Staff must enrol before they get a token that reaches any data.
            let token = try await issueEnrollment(user)
            try await audit("success", .ok, user, detail: "second factor enrolment required")
            return token
        }
        let token = try await issue(subject: user.id, role: user.role, tenant: user.tenant, patient: user.patientID, kind: "user", scope: nil)
        try await audit("success", .ok, user, detail: mfa.enabled ? "with second factor" : nil)
        return token
    }

    static let suspendedMessage =
        "This account is suspended pending a security review; contact the pharmacy's privacy officer"

    func slowDown(_ seconds: Double) async throws(FHIRError) {
        guard seconds > 0 else { return }
        try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
    }

    // MARK: Clients

    /// SHA-256 of a client secret. Client secrets are 256-bit random values, so a fast hash suffices; user
    /// passwords, which are low-entropy, use bcrypt.
    public static func hashClientSecret(_ secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    public func clientCredentials(clientID: String, secret: String, request: RequestInfo) async throws(FHIRError) -> IssuedToken {
        let client = try await store.client(id: clientID)
        let given = Self.hashClientSecret(secret)
        let matches = client.map { constantTimeEqual($0.secretHash, given) } ?? false
        func audit(_ outcome: String, _ result: AuditResult) async throws(FHIRError) {
            try await store.recordEvent(
                AuditEntry(
                    actor: .init(id: client?.clientID ?? "unknown", role: client?.role ?? "anonymous", tenant: client?.tenant ?? "-"),
                    action: "token", outcome: outcome, result: result,
                    purpose: client.flatMap { Role(rawValue: $0.role) }.map { PurposeOfUse.default(for: $0).rawValue } ?? "-",
                    sourceIP: request.sourceIP,
                    userAgent: request.userAgent, requestID: request.requestID))
        }
        guard let client, matches, !client.disabled else {
            try await audit("failure", .unauthenticated)
            throw FHIRError(kind: .unauthenticated, code: "login", diagnostics: "invalid_client")
        }
        if try await store.isSuspended(client.clientID) {
            try await audit("denied", .forbidden)
            throw .forbidden(Self.suspendedMessage)
        }
        let token = try await issue(subject: client.clientID, role: client.role, tenant: client.tenant, patient: nil, kind: "client", scope: nil)
        try await audit("success", .ok)
        return token
    }

    func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var d: UInt8 = 0
        for i in 0..<x.count { d |= x[i] ^ y[i] }
        return d == 0
    }

    // MARK: Tokens

    /// Signs a token. `scope`, if given, must parse and narrows the role's rights.
    public func issue(
        subject: String, role: String, tenant: String, patient: String?, kind: String, scope: String?,
        purposes requested: Set<PurposeOfUse>? = nil, caregiverGrant: String? = nil, parent: String? = nil
    ) async throws(FHIRError) -> IssuedToken {
        guard let r = Role(rawValue: role) else { throw .forbidden("Unknown role") }
        let scopeString = scope ?? AccessPolicy.defaultScopes(for: r)
        var purposes = policy.purposes(for: r)
        if r == .patient {
            // A patient's own token acts as the patient (PATRQT); only a caregiver's token acts as family (FAMRQT).
            purposes = caregiverGrant == nil ? purposes.subtracting([.familyRequest]) : purposes.intersection([.familyRequest])
        }
        if let requested {
            guard !requested.isEmpty, requested.isSubset(of: purposes) else {
                let extra = requested.subtracting(purposes).map(\.rawValue).sorted().joined(separator: ", ")
                throw .forbidden("Role \(role) may not act under \(extra.isEmpty ? "no purpose" : extra)")
            }
            purposes = requested
        }
        do {
            _ = try AccessPolicy.scope(
                for: Principal(
                    subject: subject, roleName: role, tenant: tenant, patientID: patient,
                    purpose: purposes.contains(PurposeOfUse.default(for: r)) ? PurposeOfUse.default(for: r) : purposes.first,
                    grantedScopes: scopeString, purposes: purposes, caregiverGrant: caregiverGrant),
                table: policy)
        } catch {
            throw .invalid("Scope '\(scopeString)' is not valid for role \(role): \(error)")
        }
        let now = clock.now
        let claims = AccessClaims(
            iss: .init(value: Self.issuer), aud: .init(value: [Self.audience]), sub: .init(value: subject),
            exp: .init(value: now.addingTimeInterval(Self.tokenLifetime)), iat: .init(value: now),
            jti: .init(value: UUID().uuidString.lowercased()), role: role, tenant: tenant, patient: patient, scope: scopeString,
            kind: kind, pou: purposes.map(\.rawValue).sorted().joined(separator: " "), grant: caregiverGrant, parent: parent)
        do {
            let jwt = try await keys.sign(claims, kid: "saferx-1")
            return IssuedToken(accessToken: jwt, expiresIn: Int(Self.tokenLifetime), scope: scopeString, patient: patient)
        } catch {
            logger.error("token signing failed")
            throw .internal()
        }
    }

    /// Verifies a bearer token: signature, algorithm, issuer, audience, expiry, revocation, and that its subject
    /// still exists and is enabled. Any failure is the same 401.
    public func verify(_ token: String) async throws(FHIRError) -> (Principal, AccessClaims) {
        let claims = try await signedClaims(token)
        guard claims.kind == "user" || claims.kind == "client" else {
            throw .unauthorized("This token can only enrol a second factor: POST /account/mfa/totp, then sign in again with the code")
        }
        guard try await store.tokenIsLive(
            jti: claims.jti.value, subject: claims.sub.value, isClient: claims.kind == "client", issuedAt: claims.iat.value.timeIntervalSince1970,
            caregiverGrant: claims.grant, parent: claims.parent)
        else {
            throw .unauthorized("The access token has been revoked, its account disabled or its password changed, or its caregiver grant ended")
        }
        // Unknown codes in the claim are ignored (the token was signed by SafeRx; a code a newer version added
        // must not widen anything here).
        let purposes = claims.pou.map { Set($0.split(separator: " ").compactMap { PurposeOfUse(rawValue: String($0)) }) }
        let principal = Principal(
            subject: claims.sub.value, roleName: claims.role, tenant: claims.tenant, patientID: claims.patient,
            grantedScopes: claims.scope, purposes: purposes, caregiverGrant: claims.grant)
        return (principal, claims)
    }

    /// The claims of a token whose signature, algorithm, issuer, audience and expiry verify (nothing else checked).
    func signedClaims(_ token: String) async throws(FHIRError) -> AccessClaims {
        guard token.utf8.count < 4096 else { throw .unauthorized() }
        let now = clock.now
        if let cached = verified.lookup(token, now: now) { return cached }
        let claims: AccessClaims
        do {
            claims = try await keys.verify(token, as: AccessClaims.self)
        } catch {
            throw .unauthorized("The access token is invalid or expired")
        }
        guard claims.exp.value > now else { throw .unauthorized("The access token is invalid or expired") }
        verified.insert(token, claims)
        return claims
    }

    /// Revokes a token until it would have expired anyway.
    public func revoke(_ claims: AccessClaims) async throws(FHIRError) {
        try await store.revokeToken(jti: claims.jti.value, expires: claims.exp.value.timeIntervalSince1970)
    }
}

/// Verified token bytes → their claims, until the token expires. Bounded; cleared when full.
final class VerifiedTokenCache: Sendable {
    let entries = Mutex<[String: AccessClaims]>([:])
    static let capacity = 10_000

    func lookup(_ token: String, now: Date) -> AccessClaims? {
        guard let claims = entries.withLock({ $0[token] }) else { return nil }
        guard claims.exp.value > now else {
            entries.withLock { _ = $0.removeValue(forKey: token) }
            return nil
        }
        return claims
    }

    func insert(_ token: String, _ claims: AccessClaims) {
        entries.withLock {
            if $0.count >= Self.capacity { $0.removeAll(keepingCapacity: true) }
            $0[token] = claims
        }
    }
}
