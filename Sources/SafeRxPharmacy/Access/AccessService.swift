import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStore
import SafeRxStoreCore

/// Who is asking: a bearer token becomes a principal, the principal and the purpose it acts under become the access
/// context every other service takes. The API, the web front (through its session's token) and the partner routes all
/// resolve access here, so a refusal is decided and audited in one place.
public struct AccessService: Sendable {
    let store: PharmacyStore
    let auth: AuthService

    /// What the caller's transport decides about a verified caller before any data is touched (per-account rate
    /// limits live in the server).
    public enum Admission: Sendable {
        case admit
        /// Refuse with `error`; `audit` is the detail to record, or `nil` when this refusal is not recorded (one
        /// record per limited burst, not one per refused request).
        case refuse(FHIRError, audit: String?)
    }

    /// The caller's access context, or an audited 401/403.
    ///
    /// - parameter authorization: the `Authorization` header as sent (`Bearer <token>`), `nil` when absent.
    /// - parameter purpose: the `X-Purpose-Of-Use` header as sent, `nil` when absent.
    /// - parameter request: the request as the audit log names it.
    /// - parameter interaction: what the caller is attempting (`read`, `search`, `alerts`...), for the audit record.
    /// - parameter admit: asked once the token verified, with the principal's subject.
    /// - throws: `FHIRError` of kind `unauthenticated`, `forbidden`, `invalid` (a malformed purpose) or `throttled`.
    public func context(
        authorization: String?, purpose requestedPurpose: String?, request: RequestInfo, interaction: String, type: ResourceType?,
        admit: (String) -> Admission = { _ in .admit }
    ) async throws(FHIRError) -> AccessContext {
        func refuse(_ error: FHIRError, actor: Principal? = nil, detail: String) async throws(FHIRError) -> Never {
            try await store.recordEvent(
                .init(
                    actor: .init(id: actor?.subject ?? "unknown", role: actor?.roleName ?? "anonymous", tenant: actor?.tenant ?? "-"),
                    action: "denied", attempted: interaction, resourceType: type?.rawValue, outcome: "denied", result: AuditResult(error.kind),
                    // Only a valid code goes into the (clear) audit field; a client's arbitrary header text does not.
                    purpose: requestedPurpose.map { (try? PurposeOfUse.parse($0).rawValue) ?? "invalid" } ?? "-",
                    sourceIP: request.sourceIP, userAgent: request.userAgent, requestID: request.requestID, detail: detail))
            throw error
        }
        guard let authorization else { try await refuse(.unauthorized(), detail: "no token") }
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            try await refuse(.unauthorized("Use 'Authorization: Bearer <token>'"), detail: "malformed authorization")
        }
        var principal: Principal
        do {
            principal = try await auth.verify(String(parts[1])).0
        } catch {
            try await refuse(error, detail: "invalid token")
        }
        let verified = principal
        if case .refuse(let error, let audit) = admit(principal.subject) {
            if let audit { try await refuse(error, actor: verified, detail: audit) }
            throw error
        }
        if let requestedPurpose {
            do {
                principal = principal.acting(for: try PurposeOfUse.parse(requestedPurpose))
            } catch {
                try await refuse(.invalid("X-Purpose-Of-Use: \(error)"), actor: verified, detail: "malformed purpose of use")
            }
        }
        let breakGlass = principal.purpose == .emergencyTreatment ? try store.activeBreakGlass(user: principal.subject, tenant: principal.tenant) : []
        do {
            let scope = try AccessPolicy.scope(for: principal, table: auth.policy, breakGlass: breakGlass)
            return AccessContext(scope: scope, requestID: request.requestID, sourceIP: request.sourceIP, userAgent: request.userAgent)
        } catch .purposeRefused(let why) {
            try await refuse(.forbidden(why), actor: verified, detail: "purpose of use refused")
        } catch {
            try await refuse(.forbidden("The token's role or scope is not recognised"), actor: verified, detail: "policy: fail closed")
        }
    }

    /// Refuses (403, audited as `denied`) unless the caller acts in one of `roles`.
    ///
    /// - throws: `FHIRError` of kind `forbidden` with `message`.
    public func require(_ ctx: AccessContext, _ roles: Set<Role>, interaction: String, _ message: String) async throws(FHIRError) {
        guard roles.contains(ctx.scope.role) else {
            throw await store.deny(ctx, interaction: interaction, type: nil, id: nil, error: .forbidden(message))
        }
    }

    /// Refuses anything but an operator's or a system context (made in code on the server's machine, never from a
    /// token): what operators do (`saferx users`, `keys`, `alerts`, ...) is not reachable with a person's or partner's
    /// token. The refusal is recorded.
    public func requireOperator(_ ctx: AccessContext, interaction: String) async throws(FHIRError) {
        guard ctx.isSystem else {
            throw await store.deny(ctx, interaction: interaction, type: nil, id: nil, error: .forbidden("This is for operators on the server's machine"))
        }
    }

    /// Records a refusal that the caller's transport decided (an error answered to a request that has a context).
    /// - returns: `error`, to be thrown.
    public func deny(_ ctx: AccessContext, interaction: String, type: ResourceType?, id: String? = nil, error: FHIRError) async -> FHIRError {
        await store.deny(ctx, interaction: interaction, type: type, id: id, error: error)
    }

    /// Records what the caller did that no other service records: an action on something other than a resource.
    ///
    /// - parameter patients: the patients whose data the answer names (none for aggregates).
    public func record(_ ctx: AccessContext, _ action: String, patients: [String] = [], detail: String) async throws(FHIRError) {
        let p = ctx.scope.principal
        try await store.recordEvent(
            AuditEntry(
                actor: .init(id: p.subject, role: p.auditRole, tenant: p.tenant), action: action, patients: patients, outcome: "success",
                result: .ok, purpose: p.purpose.rawValue, sourceIP: ctx.sourceIP, userAgent: ctx.userAgent, requestID: ctx.requestID,
                detail: detail))
    }

    /// Records a request refused before anyone was identified (a source address over its rate limit).
    public func recordAnonymousRefusal(_ request: RequestInfo, action: String, error: FHIRError, detail: String) async {
        try? await store.recordEvent(
            AuditEntry(
                actor: .init(id: "unknown", role: "anonymous", tenant: "-"), action: action, outcome: "denied", result: AuditResult(error.kind),
                purpose: "-", sourceIP: request.sourceIP, userAgent: request.userAgent, requestID: request.requestID, detail: detail))
    }

    /// Signs a token out: revoked at once on every request after this one, and recorded.
    public func logout(authorization token: String, request: RequestInfo) async throws(FHIRError) {
        let (principal, claims) = try await auth.verify(token)
        try await auth.revoke(claims)
        try await store.recordEvent(
            .init(
                actor: .init(id: principal.subject, role: principal.roleName, tenant: principal.tenant), action: "logout",
                outcome: "success", result: .ok, purpose: principal.purpose.rawValue, sourceIP: request.sourceIP, userAgent: request.userAgent,
                requestID: request.requestID))
    }
}
