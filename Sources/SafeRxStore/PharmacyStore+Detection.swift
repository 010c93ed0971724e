import Foundation
import SafeRxSQL
import Logging
import SafeRxAudit
import SafeRxDetect
import SafeRxModel
import SafeRxStoreCore
import Synchronization

/// How the detector runs in this process.
struct DetectorSettings: Sendable {
    var rules: DetectionRules
    /// Where alert notices go through the notification outbox (an e-mail address); `nil` for none.
    var securityContact: String?
}

/// The detector's state between records: the engine, which records it has seen, and the honeytoken patients.
/// Only ever touched inside ``DetectionObserver/state``'s lock.
final class DetectionState: @unchecked Sendable {
    let detector: Detector
    /// Every record with a seq at or below this has been through the detector.
    var contiguous: Int64 = 0
    /// Records above `contiguous` already seen (appended in this process).
    var extra = Set<Int64>()
    var honeytokens = Set<String>()
    var honeytokenCount = 0
    /// Acknowledgements and reinstatements after this time (seconds since 1970) are not yet known to the detector.
    var synced: Double = Date().timeIntervalSince1970

    init(detector: Detector) { self.detector = detector }

    func markProcessed(_ seq: Int64) {
        if seq == contiguous + 1 {
            contiguous = seq
            while extra.remove(contiguous + 1) != nil { contiguous += 1 }
        } else if seq > contiguous {
            extra.insert(seq)
        }
    }
}

/// The audit observer that runs the detector inside every appending transaction: it may refuse a read that would
/// breach a containing rule, writes alerts and suspensions in the same transaction as the records that caused them,
/// and queues the notices (outbox, security webhook).
final class DetectionObserver: AuditObserver {
    let state: Mutex<DetectionState>
    let settings: DetectorSettings
    let keys: KeyRing
    let log: AuditLog

    /// Where alert notices and security webhook events are queued (the same outbox as everyone's).
    let outbox: Outbox

    init(settings: DetectorSettings, keys: KeyRing, outbox: Outbox, log: AuditLog) {
        self.outbox = outbox
        self.settings = settings
        self.keys = keys
        self.log = log
        self.state = Mutex(DetectionState(detector: Detector(rules: settings.rules)))
    }

    struct Context: DetectionContext {
        let db: any SQLConnection
        let honeytokens: Set<String>

        func isHoneytoken(_ patient: String) -> Bool { honeytokens.contains(patient) }

        func hasAuthorization(tenant: String, client: String, patient: String, purpose: String, at time: Int64) -> Bool {
            let when = AuditLog.timestamp(Date(timeIntervalSince1970: Double(time) / 1000))
            let found = try? Bool.fetchOne(
                db,
                sql: """
                    SELECT EXISTS (SELECT 1 FROM consent_grant WHERE tenant = ? AND client_id = ? AND patient_id = ? AND purpose = ?
                    AND expires > ? AND (starts = '' OR starts <= ?) AND began <= ? AND (ended = '' OR ended > ?))
                    """,
                arguments: [tenant, client, patient, purpose, when, when, when, when])
            // Unknown (a query error) counts as no authorization: the rule fails toward an alert.
            return found ?? false
        }
    }

    func observe(
        _ records: [AuditRecord], blockable: Bool, in db: any SQLConnection, insert: ([AuditRecord]) throws -> Void
    ) throws -> Set<Int> {
        let started = ContinuousClock.now
        var final = records
        var refused = Set<Int>()
        var findings: [Finding] = []
        let cipher = log.cipher
        // Records other SafeRx servers (or the command line) appended since this process last looked come first:
        // appends are serialised by the engine, so every record below these is committed, and the windows must hold
        // every server's events before judging this one's.
        let foreign = try records.first.map { try consumeForeign(db, before: $0.seq).findings } ?? []
        state.withLock { s in
            let context = Context(db: db, honeytokens: s.honeytokens)
            for (i, r) in records.enumerated() {
                let (found, refuse) = s.detector.consume(DetectorEvent(r, cipher: cipher), context: context, blockable: blockable)
                s.markProcessed(r.seq)
                if refuse, let rule = found.first(where: \.blocked)?.rule {
                    refused.insert(i)
                    var e = r.entry
                    e.attempted = e.action
                    e.action = "denied"
                    e.outcome = "denied"
                    e.result = .unauthenticated
                    e.patients = []
                    e.detail = "refused and suspended by detection rule \(rule)"
                    final[i].entry = e
                }
                findings += found
            }
        }
        let seqs = records.map(\.seq)
        db.afterRollback({ [self] in
            // Those seqs will be used again by the next records: let the tail see them. (The detector's windows
            // keep what these records added: a rolled-back append errs towards an alert, never away from one.)
            self.state.withLock { s in
                for q in seqs { s.extra.remove(q) }
                if let first = seqs.first { s.contiguous = min(s.contiguous, first - 1) }
            }
        })
        try insert(final)
        // Alerts from other servers' records are recorded after these records (their seqs are taken).
        for (f, lag) in foreign { try record([f], in: db, lagMilliseconds: lag) }
        if !findings.isEmpty {
            let lag = ContinuousClock.now - started
            try record(findings, in: db, lagMilliseconds: Double(lag.components.attoseconds) / 1e15 + Double(lag.components.seconds) * 1000)
        }
        return refused
    }

    /// Runs records appended by other processes (other servers on the same database, the command line) through the
    /// detector, oldest first: all of them, or those below `before` (the first seq of an append in progress).
    /// Acknowledgements and reinstatements among them reach this process's detector too.
    func catchUp(_ db: any SQLConnection) throws -> Int {
        let (count, findings) = try consumeForeign(db, before: nil)
        for (f, lag) in findings { try record([f], in: db, lagMilliseconds: lag) }
        return count
    }

    /// Feeds the records other processes appended (below `before`, when given) to the detector; returns how many
    /// and the findings, with their lag, for the caller to record.
    func consumeForeign(_ db: any SQLConnection, before: Int64?) throws -> (count: Int, findings: [(Finding, Double)]) {
        let (from, extra, foreign) = state.withLock { s -> (Int64, Set<Int64>, Bool) in
            // Nothing to read when every seq up to `before` was appended here (the common case: one server).
            guard let before else { return (s.contiguous, s.extra, true) }
            let gap = before - 1 - s.contiguous
            return (s.contiguous, s.extra, gap > 0 && s.extra.count(where: { $0 < before }) < gap)
        }
        guard foreign else { return (0, []) }
        let rows = try before.map {
            try SQLRow.fetchAll(db, sql: "SELECT seq, body FROM audit_log WHERE seq > ? AND seq < ? ORDER BY seq", arguments: [from, $0])
        } ?? SQLRow.fetchAll(db, sql: "SELECT seq, body FROM audit_log WHERE seq > ? ORDER BY seq LIMIT 20000", arguments: [from])
        var findings: [(Finding, Double)] = []
        var count = 0
        var decisions = false
        let nowMs = Date().timeIntervalSince1970 * 1000
        state.withLock { s in
            let context = Context(db: db, honeytokens: s.honeytokens)
            for row in rows {
                let seq: Int64 = row[0]
                if extra.contains(seq) {
                    s.markProcessed(seq)
                    continue
                }
                guard let r = AuditRecord.decode(body: row[1], cipher: nil) else {
                    s.markProcessed(seq)
                    continue
                }
                if Self.decisionActions.contains(r.entry.action) { decisions = true }
                let e = DetectorEvent(r, cipher: nil)
                let (found, _) = s.detector.consume(e, context: context)
                s.markProcessed(seq)
                count += 1
                findings += found.map { ($0, max(0, nowMs - Double(e.time))) }
            }
        }
        if decisions { try syncDecisions(db) }
        return (count, findings)
    }

    /// The records of a person's decision the detector must follow: an alert acknowledged, an actor reinstated.
    static let decisionActions: Set<String> = ["alert-ack", "reinstate"]

    /// Alerts acknowledged and actors reinstated by another process since the last look: the acknowledged rule
    /// alerts afresh, the reinstated actor starts afresh (its windows empty, no longer contained).
    func syncDecisions(_ db: any SQLConnection) throws {
        let since = state.withLock { $0.synced }
        let now = Date().timeIntervalSince1970
        let acked = try String.fetchAll(db, sql: "SELECT rule || '|' || actor FROM security_alert WHERE acked_at >= ?", arguments: [since - 1])
        let reinstated = try String.fetchAll(db, sql: "SELECT actor_id FROM actor_suspension WHERE reinstated_at >= ?", arguments: [since - 1])
        state.withLock { s in
            for k in acked { s.detector.close(k) }
            for a in reinstated { s.detector.forget(actor: a) }
            s.synced = now
        }
    }

    /// Feeds recent history to the detector without raising alerts (its windows start full after a restart).
    func warmUp(_ db: any SQLConnection, since: String) throws {
        let head = try AuditLog.head(db).0
        // Open alerts stay open, except for actors reinstated since (they start afresh); suspended actors stay cut off.
        let open = try String.fetchAll(db, sql: """
            SELECT a.rule || '|' || a.actor FROM security_alert a WHERE a.acked_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM actor_suspension s WHERE s.actor_id = a.actor AND s.reinstated_at > a.created)
            """)
        let suspended = try String.fetchAll(db, sql: "SELECT DISTINCT actor_id FROM actor_suspension WHERE reinstated_at IS NULL")
        let rows = try SQLRow.fetchCursor(db, sql: "SELECT body FROM audit_log WHERE time >= ? AND seq <= ? ORDER BY seq", arguments: [since, head])
        var bodies: [String] = []
        while let row = try rows.next() {
            bodies.append(row[0])
            if bodies.count == 10_000 {
                feed(bodies, db)
                bodies.removeAll(keepingCapacity: true)
            }
        }
        feed(bodies, db)
        state.withLock { s in
            s.detector.restore(open: open, contained: suspended)
            s.contiguous = head
            s.extra = []
        }
    }

    func feed(_ bodies: [String], _ db: any SQLConnection) {
        state.withLock { s in
            let context = Context(db: db, honeytokens: s.honeytokens)
            for b in bodies {
                guard let r = AuditRecord.decode(body: b, cipher: nil) else { continue }
                _ = s.detector.consume(DetectorEvent(r, cipher: nil), context: context)
            }
        }
    }

    // MARK: Alerts, suspensions, notices

    static func containable(_ actor: String, role: String) -> Bool {
        !actor.hasPrefix("source:") && actor != "unknown" && actor != "system" && role != "system" && role != "anonymous"
    }

    func record(_ findings: [Finding], in db: any SQLConnection, lagMilliseconds: Double) throws {
        let now = Date().timeIntervalSince1970
        for f in findings {
            // The database, not this process's detector, says whether an alert of this rule and actor is open:
            // another server that saw the same events may have raised it already (one alert, evidence merged).
            if let row = try SQLRow.fetchOne(
                    db, sql: "SELECT id, evidence, patients FROM security_alert WHERE rule = ? AND actor = ? AND acked_at IS NULL ORDER BY created DESC LIMIT 1",
                    arguments: [f.rule, f.actor])
            {
                if !f.isUpdate { state.withLock { $0.detector.markOpen([f.key]) } }
                // More evidence for the open alert (requests in flight when the actor was cut, further attempts).
                var evidence = Self.ints(row["evidence"])
                var patients = Self.strings(row["patients"])
                if evidence.count < 100_000 { evidence += f.seqs.filter { !evidence.contains($0) } }
                let known = Set(patients)
                if patients.count < 1_000_000 { patients += f.patients.filter { !known.contains($0) } }
                try db.execute(
                    sql: "UPDATE security_alert SET evidence = ?, patients = ?, updated = ? WHERE id = ?",
                    arguments: [Self.json(evidence.map { JSON.int($0) }), Self.json(patients.sorted().map { JSON.string($0) }), now, row["id"] as String])
                continue
            }
            let rule = settings.rules.rules.first { $0.id == f.rule }
            let contain = f.contain && Self.containable(f.actor, role: f.role)
            let id = "alert-" + UUID().uuidString.lowercased().prefix(13).replacingOccurrences(of: "-", with: "")
            let summary = f.summary.isEmpty ? "\(rule?.description ?? f.rule) (again, after the earlier alert was acknowledged)" : f.summary
            try db.execute(
                sql: """
                    INSERT INTO security_alert (id, tenant, rule, severity, actor, role, summary, description, created, updated, evidence, patients,
                        contained, blocked, lag_ms)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    id, f.tenant, f.rule, f.severity.rawValue, f.actor, f.role, summary, rule?.description ?? "", now, now,
                    Self.json(f.seqs.map { JSON.int($0) }), Self.json(f.patients.sorted().map { JSON.string($0) }), contain, f.blocked, lagMilliseconds,
                ])
            var entries = [
                AuditEntry(
                    actor: .init(id: "system", role: "system", tenant: f.tenant), action: "alert", outcome: "success", result: .ok, purpose: "HCOMPL",
                    sourceIP: "local", userAgent: "saferx detector", requestID: id,
                    detail: "\(f.severity.rawValue) alert \(id): rule \(f.rule), actor \(f.actor)")
            ]
            if contain {
                let active = try Bool.fetchOne(
                    db, sql: "SELECT EXISTS (SELECT 1 FROM actor_suspension WHERE actor_id = ? AND reinstated_at IS NULL)", arguments: [f.actor]) ?? false
                if !active {
                    try db.execute(
                        sql: "INSERT INTO actor_suspension (actor_id, tenant, alert_id, at, reason) VALUES (?, ?, ?, ?, ?)",
                        arguments: [f.actor, f.tenant, id, now, "detection rule \(f.rule)"])
                    entries.append(
                        AuditEntry(
                            actor: .init(id: "system", role: "system", tenant: f.tenant), action: "suspend", outcome: "success", result: .ok,
                            purpose: "HCOMPL", sourceIP: "local", userAgent: "saferx detector", requestID: id,
                            detail: "\(f.role) \(f.actor) suspended by alert \(id) (rule \(f.rule)): every token and session ended"))
                }
            }
            _ = try log.append(entries, in: db, blockable: false, observe: false)
            try notify(db, alertID: id, f, contained: contain)
        }
    }

    /// The notice to the security contact (outbox) and the security webhook: ids, rule and severity, never PHI.
    func notify(_ db: any SQLConnection, alertID: String, _ f: Finding, contained: Bool) throws {
        let text = "SafeRx security alert (\(f.severity.rawValue)): rule \(f.rule), actor \(f.actor)."
            + (contained ? " The actor was suspended." : "") + " Details: saferx alerts show \(alertID), or the privacy console."
        if let contact = settings.securityContact {
            try outbox.notification(
                db, tenant: f.tenant, owner: "", channel: "email", address: contact, kind: .securityAlert,
                subject: "SafeRx security alert: \(f.rule)", body: text)
        }
        if try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM webhook_endpoint WHERE client_id = ?)", arguments: [PharmacyStore.securityWebhookClient]) == true {
            try outbox.webhookEvent(
                db, tenant: f.tenant, client: PharmacyStore.securityWebhookClient, type: "alert.created",
                data: [
                    "alert": .string(alertID), "rule": .string(f.rule), "severity": .string(f.severity.rawValue), "actor": .string(f.actor),
                    "role": .string(f.role), "contained": .bool(contained), "evidence": .int(Int64(f.seqs.count)),
                    "patients": .int(Int64(f.patients.count)),
                ])
        }
    }

    static func json(_ items: [JSON]) -> String { String(decoding: JSON.array(items).encoded(), as: UTF8.self) }
    static func ints(_ text: String?) -> [Int64] { ((try? JSON.parse(Data((text ?? "[]").utf8)))?.arrayValue ?? []).compactMap(\.intValue) }
    static func strings(_ text: String?) -> [String] { ((try? JSON.parse(Data((text ?? "[]").utf8)))?.arrayValue ?? []).compactMap(\.stringValue) }
}

extension PharmacyStore {
    /// The webhook endpoint id under which a security endpoint is registered (`saferx webhooks register --security`).
    package static let securityWebhookClient = "saferx-security"

    /// Starts the detector in this process: every later append goes through it. Recent history (the longest rule
    /// window, at most 8 days) is replayed first so that windows and baselines start full; alerts still open are not
    /// raised again.
    package func startDetection(rules: DetectionRules, securityContact: String?) throws(FHIRError) {
        let observer = DetectionObserver(settings: DetectorSettings(rules: rules, securityContact: securityContact), keys: keys, outbox: outbox, log: auditLog)
        let since = AuditLog.timestamp(Date().addingTimeInterval(-8 * 86_400))
        do {
            try dbPool.write { db in
                try self.loadHoneytokens(db, into: observer)
                try observer.warmUp(db, since: since)
                self.auditLog.setObserver(observer)
            }
        } catch let e as FHIRError {
            throw e
        } catch {
            logger.error("detector start failed", metadata: ["error": "\(error)"])
            throw .internal()
        }
        detection.withLock { $0 = observer }
    }

    /// Stops the detector (tests).
    package func stopDetection() {
        auditLog.setObserver(nil)
        detection.withLock { $0 = nil }
    }

    /// Runs records other processes appended through the detector and reloads the honeytokens if they changed.
    /// Returns how many records it read.
    @discardableResult
    package func detectForeignRecords() async throws(FHIRError) -> Int {
        guard let observer = detection.withLock({ $0 }) else { return 0 }
        return try await runWrite { [self] db in
            let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM honeytoken") ?? 0
            if count != observer.state.withLock({ $0.honeytokenCount }) { try loadHoneytokens(db, into: observer) }
            try observer.syncDecisions(db)
            return try observer.catchUp(db)
        }
    }

    /// Events the detector has consumed in this process.
    package var detectorEventsProcessed: Int { detection.withLock { $0?.state.withLock { $0.detector.processed } } ?? 0 }

    func loadHoneytokens(_ db: any SQLConnection, into observer: DetectionObserver) throws {
        var ids = Set<String>()
        let rows = try SQLRow.fetchAll(db, sql: "SELECT tenant, token_id, id_enc FROM honeytoken")
        for row in rows {
            let data = try keys.open(db, tenant: row["tenant"], owner: "", row["id_enc"], context: "honeytoken/\(row["token_id"] as String)")
            ids.insert(String(decoding: data, as: UTF8.self))
        }
        observer.state.withLock { s in
            s.honeytokens = ids
            s.honeytokenCount = rows.count
        }
    }

    // MARK: Honeytokens

    /// Marks patients as honeytokens. Their ids are stored sealed, so a copy of the database does not say which
    /// records are canaries.
    package func markHoneytokens(tenant: String, patients: [String]) async throws(FHIRError) {
        try await runWrite { [self] db in
            for p in patients {
                let tokenID = UUID().uuidString.lowercased()
                let (sealed, _) = try keys.seal(db, tenant: tenant, owner: "", Data(p.utf8), context: "honeytoken/\(tokenID)")
                try db.execute(
                    sql: "INSERT INTO honeytoken (token_id, tenant, id_enc, created) VALUES (?, ?, ?, ?)",
                    arguments: [tokenID, tenant, sealed, Date().timeIntervalSince1970])
            }
        }
        try await recordAdminEvent(action: "honeytoken-plant", tenant: tenant, detail: "\(patients.count) honeytoken patient(s) planted")
    }

    /// Ids for `count` new honeytoken patients shaped like the tenant's own: when most of its Patient ids are a prefix
    /// and a number (`pat-0042`, `P000123`), the next free numbers after the highest in use, as the newest registrations
    /// would be; otherwise random UUIDs (what Synthea and most EHR exports use). A separate id
    /// range or shape would tell an intruder which records to step around.
    package func honeytokenPatientIDs(tenant: String, count: Int) async throws(FHIRError) -> [String] {
        let ids = try await run { db in
            try String.fetchAll(db, sql: "SELECT DISTINCT id FROM resource_version WHERE type = 'Patient' AND tenant = ?", arguments: [tenant])
        }
        var shapes: [String: (count: Int, width: Int, highest: Int)] = [:]
        for id in ids {
            let digits = id.reversed().prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.count <= 12, let n = Int(String(digits.reversed())) else { continue }
            let prefix = String(id.dropLast(digits.count))
            var shape = shapes[prefix] ?? (0, digits.count, 0)
            shape.count += 1
            shape.width = max(shape.width, digits.count)
            shape.highest = max(shape.highest, n)
            shapes[prefix] = shape
        }
        guard let (prefix, shape) = shapes.max(by: { $0.value.count < $1.value.count }), shape.count * 2 >= ids.count, !ids.isEmpty else {
            return (0..<count).map { _ in UUID().uuidString.lowercased() }
        }
        let used = Set(ids)
        var out: [String] = []
        var n = shape.highest
        while out.count < count {
            n += 1
            let digits = String(n)
            let id = prefix + String(repeating: "0", count: max(0, shape.width - digits.count)) + digits
            if !used.contains(id) { out.append(id) }
        }
        return out
    }

    /// The honeytoken patients of a tenant (operators only: the command line).
    package func honeytokens(tenant: String) async throws(FHIRError) -> [String] {
        try await run { [self] db in
            try SQLRow.fetchAll(db, sql: "SELECT token_id, id_enc FROM honeytoken WHERE tenant = ?", arguments: [tenant]).map { row in
                String(decoding: try keys.open(db, tenant: tenant, owner: "", row["id_enc"], context: "honeytoken/\(row["token_id"] as String)"), as: UTF8.self)
            }.sorted()
        }
    }

    // MARK: Alerts

    static func alert(_ row: SQLRow) -> SecurityAlert {
        SecurityAlert(
            id: row["id"], tenant: row["tenant"], rule: row["rule"], severity: row["severity"], actor: row["actor"], role: row["role"],
            summary: row["summary"], description: row["description"], created: Date(timeIntervalSince1970: row["created"]),
            updated: Date(timeIntervalSince1970: row["updated"]), evidence: DetectionObserver.ints(row["evidence"]),
            patients: DetectionObserver.strings(row["patients"]), contained: row["contained"], blocked: row["blocked"],
            lagMilliseconds: row["lag_ms"], acknowledged: (row["acked_at"] as Double?).map { Date(timeIntervalSince1970: $0) },
            acknowledgedBy: row["acked_by"], note: row["ack_note"])
    }

    /// Alerts, newest first; `open` only those not acknowledged.
    package func alerts(tenant: String? = nil, open: Bool = false, limit: Int = 500) async throws(FHIRError) -> [SecurityAlert] {
        try await run { db in
            var sql = "SELECT * FROM security_alert WHERE TRUE"
            var args: [any SQLValueConvertible] = []
            if let tenant {
                sql += " AND tenant = ?"
                args.append(tenant)
            }
            if open { sql += " AND acked_at IS NULL" }
            sql += " ORDER BY created DESC LIMIT ?"
            args.append(limit)
            return try SQLRow.fetchAll(db, sql: sql, arguments: SQLArguments(args)).map(Self.alert)
        }
    }

    package func alert(id: String) async throws(FHIRError) -> SecurityAlert? {
        try await run { db in try SQLRow.fetchOne(db, sql: "SELECT * FROM security_alert WHERE id = ?", arguments: [id]).map(Self.alert) }
    }

    /// Acknowledges an alert (who, and what they found); the `alert-ack` record, naming `ctx` (the officer, or
    /// `operator:<login>`), commits with it. The same rule and actor alert again afterwards.
    package func acknowledgeAlert(_ ctx: AccessContext, id: String, by: String, note: String) async throws(FHIRError) {
        let note = note.trimmingCharacters(in: .whitespacesAndNewlines)
        guard note.count >= 5 else { throw .invalid("Say what was found (at least 5 characters) when acknowledging an alert") }
        let found: Bool = try await write(ctx) { tx in
            guard let row = try SQLRow.fetchOne(tx.db, sql: "SELECT tenant, acked_at FROM security_alert WHERE id = ?", arguments: [id]) else { return false }
            guard (row["acked_at"] as Double?) == nil else { throw FHIRError.conflict("Alert \(id) is already acknowledged") }
            try tx.db.execute(
                sql: "UPDATE security_alert SET acked_at = ?, acked_by = ?, ack_note = ? WHERE id = ?",
                arguments: [Date().timeIntervalSince1970, String(by.prefix(100)), String(note.prefix(2000)), id])
            try tx.record("alert-ack", tenant: row["tenant"], detail: "alert \(id) acknowledged by \(by)")
            return true
        }
        guard found else { throw .notFoundPath("alert \(id)") }
        if let a = try await alert(id: id) { detection.withLock { $0?.state.withLock { $0.detector.close(a.key) } } }
    }

    // MARK: Suspensions

    package func suspensions(activeOnly: Bool = true) async throws(FHIRError) -> [ActorSuspension] {
        try await run { db in
            try SQLRow.fetchAll(
                db, sql: "SELECT * FROM actor_suspension \(activeOnly ? "WHERE reinstated_at IS NULL" : "") ORDER BY at DESC"
            ).map { row in
                ActorSuspension(
                    actor: row["actor_id"], tenant: row["tenant"], alertID: row["alert_id"], at: Date(timeIntervalSince1970: row["at"]),
                    reason: row["reason"], reinstated: (row["reinstated_at"] as Double?).map { Date(timeIntervalSince1970: $0) },
                    reinstatedBy: row["reinstated_by"], reinstateReason: row["reinstate_reason"])
            }
        }
    }

    /// Whether an actor (user or client id) is suspended now.
    package func isSuspended(_ actor: String) async throws(FHIRError) -> Bool {
        try await run { db in
            try Bool.fetchOne(
                db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM actor_suspension WHERE actor_id = ? AND reinstated_at IS NULL)"), arguments: [actor]
            ) ?? false
        }
    }

    /// Lifts a suspension; the `reinstate` record (with the reason, naming `ctx`) commits with it. Tokens issued
    /// before the suspension stay dead: the actor signs in again.
    package func reinstate(_ ctx: AccessContext, actor: String, by: String, reason: String) async throws(FHIRError) {
        let reason = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard reason.count >= 10 else { throw .invalid("A reinstatement needs a reason of at least 10 characters (it is audited)") }
        let found: Bool = try await write(ctx) { tx in
            guard let t = try String.fetchOne(tx.db, sql: "SELECT tenant FROM actor_suspension WHERE actor_id = ? AND reinstated_at IS NULL", arguments: [actor])
            else { return false }
            try tx.db.execute(
                sql: "UPDATE actor_suspension SET reinstated_at = ?, reinstated_by = ?, reinstate_reason = ? WHERE actor_id = ? AND reinstated_at IS NULL",
                arguments: [Date().timeIntervalSince1970, String(by.prefix(100)), String(reason.prefix(2000)), actor])
            try tx.record("reinstate", tenant: t, detail: "\(actor) reinstated by \(by): \(reason)")
            return true
        }
        guard found else { throw .invalid("'\(String(actor.prefix(60)))' is not suspended") }
        detection.withLock { $0?.state.withLock { $0.detector.forget(actor: actor) } }
    }

    // MARK: Statistics

    /// Alert counts and append → alert lag, for `saferx alerts stats`.
    package func alertStatistics() async throws(FHIRError) -> (byRule: [(rule: String, severity: String, count: Int, open: Int)], lags: [Double]) {
        try await run { db in
            let byRule = try SQLRow.fetchAll(
                db, sql: "SELECT rule, severity, COUNT(*), SUM(CASE WHEN acked_at IS NULL THEN 1 ELSE 0 END) FROM security_alert GROUP BY rule, severity ORDER BY COUNT(*) DESC"
            ).map { (rule: $0[0] as String, severity: $0[1] as String, count: $0[2] as Int, open: $0[3] as Int) }
            let lags = try Double.fetchAll(db, sql: "SELECT lag_ms FROM security_alert ORDER BY lag_ms")
            return (byRule, lags)
        }
    }
}

extension PharmacyStore {

    /// Runs `rules` over the audit log from `from` (a date or instant) to `to` (exclusive), in sequence order, with
    /// this store's honeytokens and authorizations; nothing is written. Used by `saferx detect replay` and the
    /// benchmark.
    package func replayDetection(
        rules: DetectionRules, from: String, to: String? = nil, progress: (@Sendable (Int) -> Void)? = nil
    ) async throws(FHIRError) -> DetectionReplay {
        let observer = DetectionObserver(settings: DetectorSettings(rules: rules), keys: keys, outbox: outbox, log: auditLog)
        let started = ContinuousClock.now
        var detectorTime = Duration.zero
        var findings: [Finding] = []
        var count = 0
        var after: Int64 = 0
        let end = to ?? "9999"
        do {
            try await dbPool.write { db in try self.loadHoneytokens(db, into: observer) }
            while true {
                let batch: (Int, Int64, Duration, [Finding]) = try readOnCallingThread { db in
                    let rows = try SQLRow.fetchAll(
                        db, sql: "SELECT seq, body FROM audit_log WHERE seq > ? AND time >= ? AND time < ? ORDER BY seq LIMIT 50000",
                        arguments: [after, from, end])
                    var last = after
                    var spent = Duration.zero
                    var found: [Finding] = []
                    let events = rows.compactMap { row -> DetectorEvent? in
                        last = row[0]
                        return AuditRecord.decode(body: row[1], cipher: nil).map { DetectorEvent($0, cipher: nil) }
                    }
                    observer.state.withLock { s in
                        let context = DetectionObserver.Context(db: db, honeytokens: s.honeytokens)
                        let t0 = ContinuousClock.now
                        for e in events { found += s.detector.consume(e, context: context).findings }
                        spent = ContinuousClock.now - t0
                    }
                    return (rows.count, last, spent, found)
                }
                guard batch.0 > 0 else { break }
                count += batch.0
                after = batch.1
                detectorTime += batch.2
                findings += batch.3
                progress?(count)
            }
        } catch let e as FHIRError {
            throw e
        } catch {
            logger.error("detection replay failed", metadata: ["error": "\(error)"])
            throw .internal()
        }
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
        let peaks = observer.state.withLock { $0.detector.peaks }
        return DetectionReplay(
            records: count, findings: findings, seconds: seconds(ContinuousClock.now - started), detectorSeconds: seconds(detectorTime), peaks: peaks)
    }
}

extension PharmacyStore {
    /// Whether any version of a resource exists (no data returned; operator tooling that picks unused ids).
    package func resourceExists(_ type: ResourceType, id: String) async throws(FHIRError) -> Bool {
        try await run { [self] db in try exists(db, type: type, id: id) }
    }
}
