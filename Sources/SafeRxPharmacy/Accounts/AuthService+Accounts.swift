import Foundation
import JWTKit
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStore
import SafeRxStoreCore
import SafeRxVault

/// A second factor being enrolled: what the authenticator app needs.
public struct TOTPEnrollment: Sendable {
    /// The secret in base32, for typing into the app.
    public var secret: String
    /// The `otpauth://` URI, for a QR code.
    public var uri: String
}

/// Patient sign-up, password reset, second factors and caregiver tokens.
///
/// Sign-up and reset answer the same way whether or not anything matched, so that neither reveals whether a person
/// is a patient here or a username exists; the one-time code goes to the contact already on the pharmacy's record,
/// through the notification outbox, and is kept only as a keyed hash with an expiry and an attempt limit.
extension AuthService {
    /// How long a sign-up or reset code is valid.
    public static let oneTimeCodeLifetime: TimeInterval = 15 * 60
    public static let recoveryCodeCount = 10

    /// The audit record of an account flow, naming the account (or `anonymous` before one is known).
    func entry(
        _ action: String, _ user: UserAccount?, outcome: String, result: AuditResult, request: RequestInfo, patients: [String] = [], detail: String? = nil
    ) -> AuditEntry {
        AuditEntry(
            actor: .init(id: user?.id ?? "anonymous", role: user?.role ?? "anonymous", tenant: user?.tenant ?? "-"), action: action,
            patients: patients, outcome: outcome, result: result,
            purpose: user.flatMap { Role(rawValue: $0.role) }.map { PurposeOfUse.default(for: $0).rawValue } ?? PurposeOfUse.patientRequest.rawValue,
            sourceIP: request.sourceIP, userAgent: request.userAgent, requestID: request.requestID, detail: detail)
    }

    /// Records an account flow's step that changed nothing (a refusal, a code sent).
    func audit(
        _ action: String, _ user: UserAccount?, outcome: String, result: AuditResult, request: RequestInfo, patients: [String] = [], detail: String? = nil
    ) async throws(FHIRError) {
        try await store.recordEvent(entry(action, user, outcome: outcome, result: result, request: request, patients: patients, detail: detail))
    }

    static func numericCode(digits: Int) -> String {
        var rng = SystemRandomNumberGenerator()
        return String((0..<digits).map { _ in Character(String(Int.random(in: 0...9, using: &rng))) })
    }

    static func recoveryCode() -> String {
        let raw = Base32.encode(Data((0..<7).map { _ in UInt8.random(in: 0...255) }))
        let chars = Array(raw.prefix(10))
        return String(chars[0..<5]) + "-" + String(chars[5..<10])
    }

    // MARK: Second factor

    /// Checks a TOTP code (6 digits, not reused) or spends a recovery code.
    func checkSecondFactor(user: UserAccount, secret: Data, lastStep: Int64, otp: String) async throws(FHIRError) -> Bool {
        let given = otp.filter { !$0.isWhitespace }
        guard given.count <= 32 else { return false }
        if given.count == TOTP.digits, given.allSatisfy(\.isNumber) {
            guard let step = TOTP(secret: secret).match(given, after: lastStep) else { return false }
            return try await store.useTOTPStep(userID: user.id, step: step)
        }
        return try await store.useRecoveryCode(userID: user.id, code: given)
    }

    /// A token that can only enrol a second factor (staff without one yet).
    func issueEnrollment(_ user: UserAccount) async throws(FHIRError) -> IssuedToken {
        let now = clock.now
        let claims = AccessClaims(
            iss: .init(value: Self.issuer), aud: .init(value: [Self.audience]), sub: .init(value: user.id),
            exp: .init(value: now.addingTimeInterval(Self.enrollmentTokenLifetime)), iat: .init(value: now),
            jti: .init(value: UUID().uuidString.lowercased()), role: user.role, tenant: user.tenant, patient: nil, scope: "account/mfa",
            kind: "enroll")
        do {
            let jwt = try await keys.sign(claims, kid: "saferx-1")
            return IssuedToken(accessToken: jwt, expiresIn: Int(Self.enrollmentTokenLifetime), scope: "account/mfa", patient: nil, mfaEnrollmentRequired: true)
        } catch {
            throw .internal()
        }
    }

    /// The account behind a token presented to `/account/...`: the user's own token or an enrolment token, never a
    /// partner's or a caregiver's token.
    public func account(fromToken token: String) async throws(FHIRError) -> (UserAccount, AccessClaims) {
        let claims = try await signedClaims(token)
        guard claims.kind == "user" || claims.kind == "enroll", claims.grant == nil,
            try await store.tokenIsLive(jti: claims.jti.value, subject: claims.sub.value, isClient: false, issuedAt: claims.iat.value.timeIntervalSince1970),
            let user = try await store.user(id: claims.sub.value), !user.disabled
        else { throw .unauthorized("The access token is invalid, revoked or not a user's own token") }
        return (user, claims)
    }

    /// Whether the account's second factor is on, and how many recovery codes are left (never the secret).
    public func mfaStatus(_ user: UserAccount) async throws(FHIRError) -> (enabled: Bool, recoveryCodesLeft: Int) {
        let mfa = try await store.mfaState(userID: user.id)
        return (mfa.enabled, mfa.recoveryCodesLeft)
    }

    /// Starts TOTP enrolment: a new secret, not active until confirmed with a code from the app.
    public func beginTOTP(_ user: UserAccount, request: RequestInfo) async throws(FHIRError) -> TOTPEnrollment {
        let state = try await store.mfaState(userID: user.id)
        guard !state.enabled else {
            throw .conflict("A second factor is already active; remove it first (DELETE /account/mfa/totp with a current code)")
        }
        let totp = TOTP.random()
        try await store.beginTOTP(userID: user.id, secret: totp.secret)
        try await audit("mfa-begin", user, outcome: "success", result: .ok, request: request)
        return TOTPEnrollment(secret: totp.base32, uri: totp.provisioningURI(issuer: "SafeRx", account: user.username))
    }

    /// Confirms enrolment with a current code; returns the recovery codes, shown this once.
    public func confirmTOTP(_ user: UserAccount, code: String, request: RequestInfo) async throws(FHIRError) -> [String] {
        let state = try await store.mfaState(userID: user.id)
        guard let secret = state.secret else { throw .conflict("Start enrolment first: POST /account/mfa/totp") }
        guard !state.enabled else { throw .conflict("The second factor is already active") }
        guard let step = TOTP(secret: secret).match(code.filter { !$0.isWhitespace }, after: state.lastStep),
            try await store.useTOTPStep(userID: user.id, step: step, enable: true)
        else {
            try await audit("mfa-enrol", user, outcome: "failure", result: .invalid, request: request, detail: "wrong code")
            throw .invalid("The code does not match: check the time on your phone and enter the current 6-digit code", at: "code")
        }
        let codes = (0..<Self.recoveryCodeCount).map { _ in Self.recoveryCode() }
        try await store.replaceRecoveryCodes(userID: user.id, codes: codes)
        try await audit("mfa-enrol", user, outcome: "success", result: .ok, request: request)
        return codes
    }

    /// Removes the second factor (patients only: staff must keep one). Needs a current code or a recovery code.
    public func removeTOTP(_ user: UserAccount, code: String, request: RequestInfo) async throws(FHIRError) {
        guard !Self.requiresMFA(user.role) else {
            throw .forbidden("Staff accounts must keep a second factor; an administrator can reset it with `saferx users reset-mfa`")
        }
        let state = try await store.mfaState(userID: user.id)
        guard state.enabled, let secret = state.secret else { throw .conflict("No second factor is active") }
        guard try await checkSecondFactor(user: user, secret: secret, lastStep: state.lastStep, otp: code) else {
            try await audit("mfa-remove", user, outcome: "failure", result: .invalid, request: request, detail: "wrong code")
            throw .invalid("The code does not match", at: "code")
        }
        try await store.write(recording: entry("mfa-remove", user, outcome: "success", result: .ok, request: request)) { accounts in
            try accounts.removeSecondFactor(userID: user.id)
        }
    }

    /// New recovery codes (the old ones stop working). Needs a current code.
    public func regenerateRecoveryCodes(_ user: UserAccount, code: String, request: RequestInfo) async throws(FHIRError) -> [String] {
        let state = try await store.mfaState(userID: user.id)
        guard state.enabled, let secret = state.secret else { throw .conflict("No second factor is active") }
        guard let step = TOTP(secret: secret).match(code.filter { !$0.isWhitespace }, after: state.lastStep),
            try await store.useTOTPStep(userID: user.id, step: step)
        else { throw .invalid("The code does not match", at: "code") }
        let codes = (0..<Self.recoveryCodeCount).map { _ in Self.recoveryCode() }
        try await store.replaceRecoveryCodes(userID: user.id, codes: codes)
        try await audit("recovery-codes", user, outcome: "success", result: .ok, request: request)
        return codes
    }

    // MARK: Sign-up

    public static let sameAnswer = "If the details match a pharmacy record, a code is on its way to the contact on that record"

    /// Starts a sign-up. Returns a sign-up id whatever happened (a dead one when nothing matched), so the answer
    /// never tells whether the person is a patient here.
    public func startSignup(tenant: String, _ claim: IdentityClaim, request: RequestInfo) async throws(FHIRError) -> String {
        guard FHIRDate.isValidDate(claim.birthDate), claim.birthDate.count == 10 else {
            throw .invalid("birthDate must be a full date, YYYY-MM-DD", at: "birthDate")
        }
        for (name, value) in [("family", claim.family), ("given", claim.given), ("rxNumber", claim.rxNumber)] {
            guard !value.trimmingCharacters(in: .whitespaces).isEmpty, value.count <= 100 else {
                throw .invalid("\(name) must be a non-empty string of at most 100 characters", at: name)
            }
        }
        let ctx = AccessContext(
            scope: .system(reason: "sign-up identity check", tenant: tenant), requestID: request.requestID, sourceIP: request.sourceIP,
            userAgent: request.userAgent)
        guard let patient = try await store.matchIdentity(tenant: tenant, claim, request: ctx) else {
            return RandomSecret.urlSafe(bytes: 16)
        }
        if try await store.hasAccount(patientID: patient, tenant: tenant) {
            try await store.queueNotification(
                tenant: tenant, patient: patient, kind: .signupExisting, subject: "Sign-up attempt",
                body: "Someone tried to create a SafeRx account for your pharmacy record, which already has one. If it was you, sign in or reset your password. If not, call the pharmacy.")
            return RandomSecret.urlSafe(bytes: 16)
        }
        let code = Self.numericCode(digits: 8)
        guard let id = try await store.createOneTimeCode(.signup, tenant: tenant, userID: nil, patientID: patient, code: code, lifetime: Self.oneTimeCodeLifetime)
        else {
            try await audit("signup-start", nil, outcome: "denied", result: .accepted, request: request, patients: [patient], detail: "code limit reached")
            return RandomSecret.urlSafe(bytes: 16)
        }
        try await store.queueNotification(
            tenant: tenant, patient: patient, kind: .signupCode, subject: "Your SafeRx sign-up code",
            body: "Your SafeRx sign-up code is \(code). It expires in 15 minutes. If you did not ask for it, ignore this message.")
        return id
    }

    static func checkUsername(_ username: String) throws(FHIRError) {
        guard (3...64).contains(username.count),
            username.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) || "._@-+".unicodeScalars.contains($0) }),
            username.allSatisfy(\.isASCII)
        else { throw .invalid("Choose a username of 3 to 64 characters, using only letters, digits and . _ @ - +", at: "username") }
    }

    /// Completes a sign-up with the code that was sent: creates a patient account linked to the matched record.
    public func completeSignup(
        id: String, code: String, username: String, password: String, request: RequestInfo
    ) async throws(FHIRError) -> UserAccount {
        try Self.checkUsername(username)
        try Self.checkPasswordPolicy(password, context: [username])
        // The code first: only someone holding a valid code learns whether a username is taken (no anonymous
        // enumeration). The code is checked without being used up, so a taken username costs nothing.
        let checked = try await store.redeemOneTimeCode(id: String(id.prefix(64)), purpose: .signup, code: code, consume: false)
        guard case .success = checked else {
            try await audit("signup", nil, outcome: "failure", result: .invalid, request: request, detail: "code not accepted")
            if case .failure(.wrongCode) = checked {
                throw .invalid("The code is wrong; check it and try again (the right code keeps working until it expires)", at: "code")
            }
            throw .invalid("The code has expired, was already used or was tried too often; start sign-up again to get a new one", at: "code")
        }
        guard try await store.user(named: username) == nil else {
            try await audit("signup", nil, outcome: "failure", result: .conflict, request: request, detail: "username taken")
            throw .conflict("That username is taken; choose another (your code still works)")
        }
        let redeemed = try await store.redeemOneTimeCode(id: String(id.prefix(64)), purpose: .signup, code: code)
        guard case .success(let otc) = redeemed, let patient = otc.patientID else {
            try await audit("signup", nil, outcome: "failure", result: .invalid, request: request, detail: "code not accepted")
            throw .invalid("The code has expired or was already used; start sign-up again to get a new one", at: "code")
        }
        guard try await !store.hasAccount(patientID: patient, tenant: otc.tenant) else {
            throw .conflict("This pharmacy record already has an account; sign in or reset the password")
        }
        let user = UserAccount(
            id: "user-" + UUID().uuidString.lowercased(), username: username, passwordHash: try await passwords.hash(password, cost: passwordCost), role: Role.patient.rawValue,
            tenant: otc.tenant, patientID: patient)
        try await store.write(recording: entry("signup", user, outcome: "success", result: .created, request: request, patients: [patient])) { accounts in
            try accounts.insertUser(user)
        }
        return user
    }

    // MARK: Password reset

    /// Starts a password reset for a patient account: a code to the contact on the patient's record. Same answer
    /// whether or not the username exists. Staff passwords are reset by an administrator.
    public func startPasswordReset(username: String, request: RequestInfo) async throws(FHIRError) -> String {
        guard !username.isEmpty, username.count <= 128 else { throw .invalid("username must be a non-empty string", at: "username") }
        guard let user = try await store.user(named: username), !user.disabled, user.role == Role.patient.rawValue, let patient = user.patientID else {
            try await audit("password-reset", nil, outcome: "failure", result: .accepted, request: request, detail: "no patient account")
            return RandomSecret.urlSafe(bytes: 16)
        }
        let code = Self.numericCode(digits: 8)
        guard let id = try await store.createOneTimeCode(
            .reset, tenant: user.tenant, userID: user.id, patientID: patient, code: code, lifetime: Self.oneTimeCodeLifetime)
        else {
            try await audit("password-reset", user, outcome: "denied", result: .accepted, request: request, detail: "code limit reached")
            return RandomSecret.urlSafe(bytes: 16)
        }
        try await store.queueNotification(
            tenant: user.tenant, patient: patient, kind: .resetCode, subject: "Your SafeRx password reset code",
            body: "Your SafeRx password reset code is \(code). It expires in 15 minutes. If you did not ask for it, ignore this message; your password is unchanged.")
        try await audit("password-reset", user, outcome: "success", result: .accepted, request: request, detail: "code sent")
        return id
    }

    /// Sets a new password with the code that was sent; every existing session of the account ends. A second factor,
    /// if enrolled, is still required at the next sign-in.
    public func completePasswordReset(id: String, code: String, password: String, request: RequestInfo) async throws(FHIRError) {
        // Checked before the code is spent, so that a refused password does not cost the code.
        try Self.checkPasswordPolicy(password)
        let redeemed = try await store.redeemOneTimeCode(id: String(id.prefix(64)), purpose: .reset, code: code)
        guard case .success(let otc) = redeemed, let userID = otc.userID, let user = try await store.user(id: userID) else {
            try await audit("password-reset", nil, outcome: "failure", result: .invalid, request: request, detail: "code not accepted")
            throw .invalid("The code is wrong, expired or already used; start again to get a new one", at: "code")
        }
        try Self.checkPasswordPolicy(password, context: [user.username])
        let hash = try await passwords.hash(password, cost: passwordCost)
        try await store.write(recording: entry("password-reset", user, outcome: "success", result: .ok, request: request, detail: "password changed; sessions ended")) { accounts in
            try accounts.setPassword(userID: user.id, hash: hash)
        }
    }

    /// A signed-in password change. The current password is asked again (an unattended open session is not enough),
    /// the new one is checked like any other, and every session and token of the account ends: the user signs in
    /// again with the new password everywhere.
    /// - throws: `FHIRError` 400 when the current password is wrong or the new one is refused (saying why).
    public func changePassword(_ user: UserAccount, current: String, new password: String, request: RequestInfo) async throws(FHIRError) {
        guard try await passwords.verify(current, hash: user.passwordHash) else {
            try await audit("password-change", user, outcome: "failure", result: .invalid, request: request, detail: "current password wrong")
            throw .invalid("Your current password is not right", at: "current")
        }
        guard password != current else { throw .invalid("Choose a new password, not the current one", at: "password") }
        try Self.checkPasswordPolicy(password, context: [user.username])
        let hash = try await passwords.hash(password, cost: passwordCost)
        try await store.write(recording: entry("password-change", user, outcome: "success", result: .ok, request: request, detail: "password changed; sessions ended")) { accounts in
            try accounts.setPassword(userID: user.id, hash: hash)
        }
    }

    // MARK: Caregivers

    /// A token for a caregiver to act for a patient under a live grant: the patient's compartment, only the grant's
    /// access, purpose FAMRQT, audited as `caregiver`. It dies with the grant, and with `parent` (the caregiver's own
    /// token that asked for it) when that is signed out.
    public func caregiverToken(_ user: UserAccount, patient: String, parent: AccessClaims, request: RequestInfo) async throws(FHIRError) -> IssuedToken {
        guard user.role == Role.patient.rawValue, FHIRID.isValid(patient),
            let grant = try await store.liveCaregiverGrant(caregiverUserID: user.id, patient: patient), grant.tenant == user.tenant
        else {
            try await audit("caregiver-token", user, outcome: "denied", result: .forbidden, request: request, detail: "no live caregiver grant")
            throw .forbidden("You hold no live caregiver grant for that patient")
        }
        let token = try await issue(
            subject: user.id, role: user.role, tenant: user.tenant, patient: patient, kind: "user", scope: grant.access.scopes,
            caregiverGrant: grant.id, parent: parent.jti.value)
        try await audit("caregiver-token", user, outcome: "success", result: .ok, request: request, patients: [patient], detail: "grant \(grant.id) (\(grant.access.rawValue))")
        return token
    }

    // MARK: Web sessions

    /// A fresh token for a live one (a web session that is still in use): same subject, role, patient, scopes,
    /// purposes and caregiver grant; the old token is revoked. Fails like ``verify(_:)`` if the old one is no longer
    /// live (signed out, disabled, password changed, grant ended).
    public func renew(_ token: String) async throws(FHIRError) -> (token: String, expires: Date) {
        let (_, claims) = try await verify(token)
        let purposes = claims.pou.map { Set($0.split(separator: " ").compactMap { PurposeOfUse(rawValue: String($0)) }) }
        let fresh = try await issue(
            subject: claims.sub.value, role: claims.role, tenant: claims.tenant, patient: claims.patient, kind: claims.kind,
            scope: claims.scope, purposes: purposes, caregiverGrant: claims.grant, parent: claims.parent)
        try await revoke(claims)
        return (fresh.accessToken, clock.now.addingTimeInterval(TimeInterval(fresh.expiresIn)))
    }
}
