import Crypto
import Foundation

/// One browser's session with the web front. The browser holds only an opaque random id in the `saferx_session`
/// cookie; everything else, including the access token the pages act with, stays on the server.
public struct WebSession: Sendable {
    /// SHA-256 of the cookie value: the cookie itself is never kept.
    public let key: String
    /// The form token every POST must carry (`_csrf`).
    public let csrf: String
    public let created: Date
    public var lastSeen: Date
    /// Signed in: the access token the pages use (verified on every request like any bearer token).
    public var token: String?
    public var tokenExpires: Date?
    public var username: String?
    public var role: String?
    /// The patient the session acts for: the user's own record, or the one they care for.
    public var patient: String?
    /// Set while a caregiver acts for another patient (the user's own patient id, to switch back).
    public var ownPatient: String?
    /// The token may only enrol a second factor (staff without one).
    public var enrollmentOnly: Bool = false
    /// Short messages shown once on the next page ("Refill requested", a refusal's reason).
    public var flash: [Flash] = []
    /// Values a multi-step form carries between steps (sign-up id, reset id, a TOTP secret being confirmed).
    public var pending: [String: String] = [:]
    /// Form fields whose typed text comes back when a form is refused or the session runs out (`draft.<field>` in
    /// `pending`, with `draftFor`, the page the form is on, and `draftUser`, whose it is). Deny by default: passwords,
    /// codes and files are never kept.
    public static let draftFields: Set<String> = [
        "text", "note", "reason", "trackingNumber", "caregiver", "expires", "given", "family", "birthDate", "rxNumber",
    ]

    /// Whether a pending key belongs to a kept draft.
    public static func isDraftKey(_ key: String) -> Bool { key.hasPrefix("draft.") || key == "draftFor" || key == "draftUser" }

    /// Keeps the typed `fields` that are draft fields, for the page `path` and `user` (at most 4,000 characters a field).
    public mutating func keepDraft(_ fields: [String: String], for path: String, user: String?) {
        pending = pending.filter { !Self.isDraftKey($0.key) }
        let kept = fields.filter { Self.draftFields.contains($0.key) && !$0.value.isEmpty }
        guard !kept.isEmpty else { return }
        for (k, v) in kept { pending["draft.\(k)"] = String(v.prefix(4000)) }
        pending["draftFor"] = path
        if let user { pending["draftUser"] = user }
    }

    /// The kept draft for `path`, removed from the session; `nil` if there is none.
    public mutating func takeDraft(for path: String) -> [String: String]? {
        guard pending["draftFor"] == path else { return nil }
        let fields = Dictionary(uniqueKeysWithValues: pending.compactMap { k, v in k.hasPrefix("draft.") ? (String(k.dropFirst(6)), v) : nil })
        pending = pending.filter { !Self.isDraftKey($0.key) }
        return fields
    }

    public var signedIn: Bool { token != nil }

    /// A blank session for a page without a form, visited without a cookie: never stored, never sent as a cookie.
    public static func transient(now: Date = Date()) -> WebSession { WebSession(key: "", csrf: "", created: now, lastSeen: now) }

    public struct Flash: Sendable {
        public enum Kind: String, Sendable { case info, error }
        public var kind: Kind
        public var text: String
        public init(_ kind: Kind, _ text: String) {
            self.kind = kind
            self.text = text
        }
    }
}

/// The server-side session table: random ids, idle and absolute expiry, id rotation at sign-in, CSRF tokens.
///
/// Sessions live in memory: a restart signs everyone out, which is the safe failure. The table is bounded; when
/// full, the sessions idle longest go first.
public actor WebSessions {
    public static let cookieName = "saferx_session"
    public let idleTimeout: TimeInterval
    public let absoluteTimeout: TimeInterval
    let capacity: Int
    var sessions: [String: WebSession] = [:]

    public init(idleTimeout: TimeInterval = 15 * 60, absoluteTimeout: TimeInterval = 8 * 3600, capacity: Int = 20_000) {
        self.idleTimeout = idleTimeout
        self.absoluteTimeout = absoluteTimeout
        self.capacity = capacity
    }

    static func key(_ cookie: String) -> String {
        SHA256.hash(data: Data(cookie.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    static func random() -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        var g = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = g.next() }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// A new anonymous session (it carries the CSRF token of the sign-in and sign-up forms).
    public func start(now: Date = Date()) -> (cookie: String, session: WebSession) {
        if sessions.count >= capacity { evict(now: now) }
        let cookie = Self.random()
        let s = WebSession(key: Self.key(cookie), csrf: Self.random(), created: now, lastSeen: now)
        sessions[s.key] = s
        return (cookie, s)
    }

    /// The live session for a cookie value, touched; `nil` if unknown, idle too long or too old (and then removed).
    public func session(cookie: String?, now: Date = Date()) -> WebSession? {
        guard let cookie, cookie.utf8.count <= 64 else { return nil }
        let key = Self.key(cookie)
        guard var s = sessions[key] else { return nil }
        guard now.timeIntervalSince(s.lastSeen) < idleTimeout, now.timeIntervalSince(s.created) < absoluteTimeout else {
            sessions[key] = nil
            if let user = s.username { rememberExpired(key, user: user, now: now) }
            return nil
        }
        s.lastSeen = now
        sessions[key] = s
        return s
    }

    /// Who a session belonged to that ran out in the last hour (so a form posted into it can keep its text for that
    /// user only); bounded like the table.
    var expired: [String: (user: String, at: Date)] = [:]

    func rememberExpired(_ key: String, user: String, now: Date) {
        if expired.count >= capacity { expired = expired.filter { now.timeIntervalSince($0.value.at) < 3600 } }
        if expired.count < capacity { expired[key] = (user, now) }
    }

    /// The user whose session this cookie was, if it ran out within the last hour (once: the entry is removed).
    public func expiredOwner(cookie: String?, now: Date = Date()) -> String? {
        guard let cookie, cookie.utf8.count <= 64, let e = expired.removeValue(forKey: Self.key(cookie)), now.timeIntervalSince(e.at) < 3600 else {
            return nil
        }
        return e.user
    }

    /// Stores changes made to a session (flash messages, pending values, a renewed token).
    public func save(_ s: WebSession) {
        guard sessions[s.key] != nil else { return }
        sessions[s.key] = s
    }

    /// Signs a session in under a new id (the anonymous id a sign-in form was served under is discarded), with a new
    /// CSRF token.
    public func signIn(
        replacing old: String?, token: String, expires: Date, username: String, role: String, patient: String?, enrollmentOnly: Bool,
        now: Date = Date()
    ) -> (cookie: String, session: WebSession) {
        // What was typed before the session ran out survives signing in again, for the same user only (see
        // `WebSession.keepDraft`): someone else signing in on that browser does not see it.
        let carried = old.flatMap { sessions[Self.key($0)]?.pending.filter { WebSession.isDraftKey($0.key) } }
            .flatMap { $0["draftUser"] == username ? $0 : nil } ?? [:]
        if let old { sessions[Self.key(old)] = nil }
        var (cookie, s) = start(now: now)
        s.pending = carried
        s.token = token
        s.tokenExpires = expires
        s.username = username
        s.role = role
        s.patient = patient
        s.enrollmentOnly = enrollmentOnly
        sessions[s.key] = s
        return (cookie, s)
    }

    /// Ends a session (sign-out).
    public func end(cookie: String?) {
        guard let cookie else { return }
        sessions[Self.key(cookie)] = nil
    }

    func evict(now: Date) {
        sessions = sessions.filter { now.timeIntervalSince($0.value.lastSeen) < idleTimeout && now.timeIntervalSince($0.value.created) < absoluteTimeout }
        if sessions.count >= capacity {
            // Anonymous sessions (a sign-in form someone opened) go first, oldest first: a flood of them must never
            // sign anyone out. Signed-in sessions go only if there is nothing else left to drop.
            let ordered = sessions.values.sorted { ($0.signedIn ? 1 : 0, $0.lastSeen) < ($1.signedIn ? 1 : 0, $1.lastSeen) }
            for s in ordered.prefix(sessions.count - capacity + 1) { sessions[s.key] = nil }
        }
    }

    /// Constant-time comparison of a submitted form token with the session's.
    public static func csrfMatches(_ submitted: String?, _ session: WebSession) -> Bool {
        guard let submitted else { return false }
        let a = Array(submitted.utf8), b = Array(session.csrf.utf8)
        guard a.count == b.count else { return false }
        var d: UInt8 = 0
        for i in a.indices { d |= a[i] ^ b[i] }
        return d == 0
    }
}
