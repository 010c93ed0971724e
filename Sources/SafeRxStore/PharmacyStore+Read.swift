import Foundation
import SafeRxSQL
import SafeRxAudit
import SafeRxModel
import SafeRxPolicy
import SafeRxStoreCore
import SafeRxVault

extension PharmacyStore {
    /// FHIR read: the current version, if the caller may see it.
    package func read(_ ctx: AccessContext, _ type: ResourceType, id: String) async throws(FHIRError) -> StoredResource {
        if type == .auditEvent { return try await readAuditEvent(ctx, id: id) }
        try await requireRight(ctx, type, "read", id, ctx.scope.rights(for: type).read)
        let scope = ctx.scope
        let found = try await run { [self] db in
            try scopedRows(db, scope, type: type, where: "v.id = ? AND v.current = 1", [id]).first
        }
        guard let r = found else { throw await missing(ctx, "read", type, id) }
        if r.deleted {
            try await commitAudit(entry(ctx, action: "read", type: type, id: id, patients: [String](), outcome: "success", result: .gone))
            throw r.erased ? .erased(type, id) : .gone(type, id)
        }
        try await commitAudit(
            entry(ctx, action: "read", type: type, id: id, patients: r.patients, outcome: "success", result: .ok,
                  released: released(ctx, type, r.patients)))
        return r
    }

    /// What a restricted scope released of `type` (the audit record's ``AuditEntry/released``, read by breach scope
    /// and the accounting of disclosures): the FHIR elements when the purpose or the patients' authorizations limit
    /// them (per patient for authorizations), else `nil` (whole resources).
    func released(_ ctx: AccessContext, _ type: ResourceType, _ patients: [String]) -> AuditEntry.Released? {
        let elements = ctx.scope.visibleElements(of: type)
        func qualified(_ names: Set<String>) -> [String] { names.subtracting(PolicyTable.alwaysVisible).map { "\(type.rawValue).\($0)" } }
        if case .consented(let clientID) = ctx.scope.rows {
            // Per patient: each authorization releases its own elements.
            let byPatient = Dictionary(uniqueKeysWithValues: Set(patients).map { pid -> (String, [String]) in
                let granted = (try? readOnCallingThread { db in
                    try consentedElements(db, scope: ctx.scope, clientID: clientID, patients: [pid], type: type)
                }) ?? []
                return (pid, qualified((elements ?? granted).intersection(granted)))
            })
            return byPatient.isEmpty ? nil : AuditEntry.Released(elements: [], byPatient: byPatient)
        }
        guard let elements else { return nil }
        return AuditEntry.Released(elements: qualified(elements))
    }

    /// FHIR vread: one version, if the caller may see that version.
    package func vread(_ ctx: AccessContext, _ type: ResourceType, id: String, version: String) async throws(FHIRError) -> StoredResource {
        try await refuseHistoryToConsented(ctx, type, id, "vread")
        if type == .auditEvent {
            guard version == "1" else { throw await missing(ctx, "vread", type, id) }
            return try await readAuditEvent(ctx, id: id)
        }
        try await requireRight(ctx, type, "vread", id, ctx.scope.rights(for: type).read)
        guard let v = Int(version), v > 0, v < Int(Int32.max) else {
            throw await missing(ctx, "vread", type, id)
        }
        let scope = ctx.scope
        let found = try await run { [self] db in
            try scopedRows(db, scope, type: type, where: "v.id = ? AND v.version = ?", [id, v]).first
        }
        guard let r = found else { throw await missing(ctx, "vread", type, id) }
        try await commitAudit(
            entry(ctx, action: "vread", type: type, id: id, patients: r.patients, outcome: "success", result: .ok,
                  released: released(ctx, type, r.patients)))
        if r.deleted { throw r.erased ? .erased(type, id) : .gone(type, id) }
        return r
    }

    /// FHIR instance history: every version the caller may see, newest first.
    /// The most versions one history page returns.
    package static let maxHistoryPage = 100

    /// A resource's versions, newest first, one page at a time (`count` at most ``maxHistoryPage``).
    package func history(
        _ ctx: AccessContext, _ type: ResourceType, id: String, count: Int = 50, offset: Int = 0
    ) async throws(FHIRError) -> [StoredResource] {
        guard (1...Self.maxHistoryPage).contains(count) else { throw .invalid("_count must be 1-\(Self.maxHistoryPage) for _history", at: "_count") }
        guard offset >= 0 else { throw .invalid("_offset must be 0 or more", at: "_offset") }
        try await refuseHistoryToConsented(ctx, type, id, "history")
        if type == .auditEvent { return [try await readAuditEvent(ctx, id: id)] }
        try await requireRight(ctx, type, "history", id, ctx.scope.rights(for: type).read)
        let scope = ctx.scope
        let versions = try await run { [self] db in
            try scopedRows(db, scope, type: type, where: "v.id = ?", [id], suffix: "ORDER BY v.version DESC LIMIT \(count) OFFSET \(offset)")
        }
        guard !versions.isEmpty else { throw await missing(ctx, "history", type, id) }
        try await commitAudit(
            entry(ctx, action: "history", type: type, id: id, patients: versions.flatMap(\.patients), outcome: "success", result: .ok,
                  released: released(ctx, type, versions.flatMap(\.patients))))
        return versions
    }

    /// An authorization releases current values only: earlier versions (an old phone number) are not disclosed.
    func refuseHistoryToConsented(_ ctx: AccessContext, _ type: ResourceType, _ id: String, _ interaction: String) async throws(FHIRError) {
        if case .consented = ctx.scope.rows {
            throw await deny(ctx, interaction: interaction, type: type, id: id,
                error: .forbidden("History is not disclosed under a patient authorization; read the current version"))
        }
    }

    /// FHIR search, with `_include` and `_revinclude` resolved through the same scope.
    package func search(_ ctx: AccessContext, _ query: SearchQuery) async throws(FHIRError) -> SearchPage {
        let type = query.type
        if type == .auditEvent { return try await searchAuditEvents(ctx, query) }
        try await requireRight(ctx, type, "search", nil, ctx.scope.rights(for: type).read)
        let scope = ctx.scope
        let (filterSQL, rawArgs) = compile(query.filters)
        let filterArgs = rawArgs.map(\.sqlValue)
        let page = try await run { [self] db -> SearchPage in
            let whereSQL = "v.current = 1 AND v.deleted = 0 AND \(filterSQL)"
            let total = try scopedCount(db, scope, type: type, where: whereSQL, filterArgs)
            let matches = query.count == 0 ? [] : try scopedRows(
                db, scope, type: type, where: whereSQL, filterArgs, suffix: "ORDER BY v.pk LIMIT ? OFFSET ?",
                suffixArgs: [query.count, query.offset])
            var included: [StoredResource] = []
            var seen = Set(matches.map { "\($0.type.rawValue)/\($0.id)" })
            for path in query.includes {
                let refs = try includeTargets(db, path: path, of: matches)
                guard !refs.isEmpty, scope.rights(for: path.target).read else { continue }
                let marks = refs.map { _ in "?" }.joined(separator: ",")
                for r in try scopedRows(
                    db, scope, type: path.target, where: "v.current = 1 AND v.deleted = 0 AND v.id IN (\(marks))", refs)
                where seen.insert("\(r.type.rawValue)/\(r.id)").inserted {
                    included.append(r)
                }
            }
            for path in query.revincludes where scope.rights(for: path.source).read && !matches.isEmpty {
                let refs = matches.map { "\(type.rawValue)/\($0.id)" }
                let marks = refs.map { _ in "?" }.joined(separator: ",")
                let sql = """
                    v.current = 1 AND v.deleted = 0 AND EXISTS (SELECT 1 FROM search_index si \
                    WHERE si.pk = v.pk AND si.param = ? AND si.value IN (\(marks)))
                    """
                for r in try scopedRows(db, scope, type: path.source, where: sql, [path.parameter] + refs)
                where seen.insert("\(r.type.rawValue)/\(r.id)").inserted {
                    included.append(r)
                }
            }
            return SearchPage(total: total, offset: query.offset, count: query.count, matches: matches, included: included)
        }
        let patients = page.matches.flatMap(\.patients) + page.included.flatMap(\.patients)
        var e = entry(
            ctx, action: "search", type: type, id: nil, patients: patients, outcome: "success", result: .ok,
            detail: "params: " + query.parameterNames.joined(separator: ",") + "; results: \(page.matches.count + page.included.count)",
            released: released(ctx, type, page.matches.flatMap(\.patients)))
        if !page.included.isEmpty {
            // Which patients' data left through which type (breach scope names the data elements per person).
            var byType: [String: Set<String>] = [:]
            for r in page.matches + page.included where !r.patients.isEmpty { byType[r.type.rawValue, default: []].formUnion(r.patients) }
            e.typePatients = byType.mapValues { $0.sorted() }
        }
        try await commitAudit(e)
        return page
    }

    /// The ids that `path` points at from `matches` (reference values are plain in the index).
    func includeTargets(_ db: any SQLConnection, path: IncludePath, of matches: [StoredResource]) throws -> [String] {
        let ids = matches.filter { $0.type == path.source }.map(\.id)
        guard !ids.isEmpty else { return [] }
        let marks = ids.map { _ in "?" }.joined(separator: ",")
        let values = try String.fetchAll(
            db,
            sql: """
                SELECT DISTINCT si.value FROM search_index si JOIN resource_version v ON v.pk = si.pk
                WHERE v.type = ? AND v.current = 1 AND v.id IN (\(marks)) AND si.param = ?
                """,
            arguments: SQLArguments([path.source.rawValue] + ids + [path.parameter]))
        return values.compactMap { Reference($0) }.filter { $0.type == path.target }.map(\.id)
    }

    /// Compiles search filters to SQL over `resource_version v`. Sensitive values are blinded first.
    func compile(_ filters: [SearchQuery.Filter]) -> (String, [any SQLValueConvertible]) {
        var parts: [String] = ["TRUE"]
        var args: [any SQLValueConvertible] = []
        for f in filters {
            switch f {
            case .ids(let ids):
                parts.append("v.id IN (\(ids.map { _ in "?" }.joined(separator: ",")))")
                args += ids
            case .lastUpdated(let cmp, let value):
                let (sql, a) = Self.dateComparison("v.last_updated", cmp, value)
                parts.append(sql)
                args += a
            case .terms(let parameter, let values, let sensitive):
                let stored = values.map { sensitive ? blindIndex.token(parameter: parameter, value: $0) : $0 }
                parts.append(
                    "v.pk IN (SELECT si.pk FROM search_index si WHERE si.param = ? AND si.value IN (\(stored.map { _ in "?" }.joined(separator: ","))))")
                args.append(parameter)
                args += stored
            case .dateRange(let parameter, let cmp, let value):
                let (sql, a) = Self.dateComparison("si.value", cmp, value)
                parts.append("EXISTS (SELECT 1 FROM search_index si WHERE si.pk = v.pk AND si.param = ? AND \(sql))")
                args.append(parameter)
                args += a
            case .auditPatient, .auditDate, .auditField:
                parts.append("FALSE")
            }
        }
        return (parts.joined(separator: " AND "), args)
    }

    /// FHIR date prefixes over ISO strings: a value matches `eq D` when it starts within D's precision.
    static func dateComparison(_ column: String, _ cmp: SearchQuery.Comparison, _ value: String) -> (String, [any SQLValueConvertible]) {
        let upper = value + "~"  // sorts after every continuation of an ISO date prefix
        switch cmp {
        case .gt: return ("\(column) >= ?", [upper])
        case .ge: return ("\(column) >= ?", [value])
        case .lt: return ("\(column) < ?", [value])
        case .le: return ("\(column) < ?", [upper])
        default: return ("(\(column) >= ? AND \(column) < ?)", [value, upper])
        }
    }

    // MARK: - AuditEvent

    func readAuditEvent(_ ctx: AccessContext, id: String) async throws(FHIRError) -> StoredResource {
        try await requireRight(ctx, .auditEvent, "read", id, ctx.scope.rights(for: .auditEvent).read)
        guard let seq = Int64(id), seq > 0 else { throw await missing(ctx, "read", .auditEvent, id) }
        let (pred, rawArgs) = Self.auditPredicate(ctx.scope)
        let args = rawArgs.map(\.sqlValue)
        let cipher = auditLog.cipher
        let found = try await run { db in
            try SQLRow.fetchOne(db, sql: "SELECT a.body, a.hash FROM audit_log a WHERE a.seq = ? AND (\(pred))", arguments: SQLArguments([seq] + args))
                .flatMap { AuditRecord.decode(body: $0[0], hash: $0[1], cipher: cipher) }
        }
        guard let record = found else { throw await missing(ctx, "read", .auditEvent, id) }
        let r = Self.stored(record, for: ctx.scope)
        try await commitAudit(entry(ctx, action: "read", type: .auditEvent, id: id, patients: r.patients, outcome: "success", result: .ok))
        return r
    }

    func searchAuditEvents(_ ctx: AccessContext, _ query: SearchQuery) async throws(FHIRError) -> SearchPage {
        try await requireRight(ctx, .auditEvent, "search", nil, ctx.scope.rights(for: .auditEvent).read)
        var (sql, args) = Self.auditPredicate(ctx.scope)
        for f in query.filters {
            switch f {
            case .ids(let ids):
                sql += " AND a.seq IN (\(ids.map { _ in "?" }.joined(separator: ",")))"
                args += ids.map { Int64($0) ?? -1 }
            case .auditPatient(var pids):
                // A patient may ask only about themselves; naming anyone else finds nothing (no existence oracle).
                if case .compartment(let own) = ctx.scope.rows { pids = pids.filter { $0 == own } }
                guard !pids.isEmpty else {
                    sql += " AND FALSE"
                    continue
                }
                sql += " AND EXISTS (SELECT 1 FROM audit_patient ap2 WHERE ap2.seq = a.seq AND ap2.patient_id IN (\(pids.map { _ in "?" }.joined(separator: ","))))"
                args += pids
            case .auditDate(let cmp, let value), .lastUpdated(let cmp, let value):
                let (s, a) = Self.dateComparison("a.time", cmp, value)
                sql += " AND \(s)"
                args += a
            case .auditField("agent", let values) where ctx.scope.role == .patient:
                // A patient sees others as they are shown to them ("pharmacist@tenant", "another patient"), so that is
                // all the agent filter matches: a staff user id never confirms who looked.
                let own = ctx.scope.principal.subject
                let actor = "json_extract(a.body, '$.entry.actor.id')", role = "json_extract(a.body, '$.entry.actor.role')"
                let tenant = "json_extract(a.body, '$.entry.actor.tenant')"
                var alternatives: [String] = []
                for v in values {
                    if v == own {
                        alternatives.append("\(actor) = ?")
                        args.append(own)
                    } else if v == "another patient" {
                        alternatives.append("(\(role) = 'patient' AND \(actor) <> ?)")
                        args.append(own)
                    } else if let at = v.firstIndex(of: "@"), at != v.startIndex {
                        alternatives.append("(\(role) = ? AND \(tenant) = ? AND \(role) <> 'patient' AND \(actor) <> ?)")
                        args += [String(v[..<at]), String(v[v.index(after: at)...]), own]
                    }
                }
                sql += alternatives.isEmpty ? " AND FALSE" : " AND (" + alternatives.joined(separator: " OR ") + ")"
            case .auditField(let parameter, let values):
                // action and outcome as recorded; agent is the actor's user or client id.
                let path = parameter == "agent" ? "$.entry.actor.id" : parameter == "outcome" ? "$.entry.outcome" : "$.entry.action"
                sql += " AND json_extract(a.body, '\(path)') IN (\(values.map { _ in "?" }.joined(separator: ",")))"
                args += values
            case .terms, .dateRange:
                sql += " AND FALSE"
            }
        }
        let whereSQL = sql
        let whereArgs = args.map(\.sqlValue)
        let scope = ctx.scope
        let cipher = auditLog.cipher
        let page = try await run { db -> SearchPage in
            let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM audit_log a WHERE \(whereSQL)", arguments: SQLArguments(whereArgs)) ?? 0
            let rows = try SQLRow.fetchAll(
                db, sql: "SELECT a.body, a.hash FROM audit_log a WHERE \(whereSQL) ORDER BY a.seq DESC LIMIT ? OFFSET ?",
                arguments: SQLArguments(whereArgs + [query.count, query.offset]))
            let matches = rows.compactMap { AuditRecord.decode(body: $0[0], hash: $0[1], cipher: cipher) }.map { Self.stored($0, for: scope) }
            return SearchPage(total: total, offset: query.offset, count: query.count, matches: matches, included: [])
        }
        try await commitAudit(
            entry(
                ctx, action: "search", type: .auditEvent, id: nil, patients: page.matches.flatMap(\.patients), outcome: "success",
                result: .ok, detail: "params: " + query.parameterNames.joined(separator: ",") + "; results: \(page.matches.count)"))
        return page
    }

    /// An audit record as an AuditEvent for `scope`. A patient sees only their own id among the patients a record
    /// names (one record may name many), so the record's hash is left out of their copy.
    static func stored(_ record: AuditRecord, for scope: AccessScope) -> StoredResource {
        var r = record
        var includeHash = true
        if case .compartment(let pid) = scope.rows {
            r.entry.patients = r.entry.patients.filter { $0 == pid }
            includeHash = r.entry.patients.count == record.entry.patients.count
            // A patient sees who looked by role and pharmacy: no staff user ids, addresses or user agents.
            if r.entry.actor.id != scope.principal.subject {
                r.entry.actor.id = r.entry.actor.role == Role.patient.rawValue ? "another patient" : "\(r.entry.actor.role)@\(r.entry.actor.tenant)"
                r.entry.sourceIP = ""
                r.entry.userAgent = ""
                r.entry.detail = nil
                includeHash = false
            }
        }
        return StoredResource(
            type: .auditEvent, id: String(record.seq), version: 1, lastUpdated: record.time, deleted: false,
            json: AuditEventMapper.auditEvent(r, includeHash: includeHash), patients: r.entry.patients)
    }
}
