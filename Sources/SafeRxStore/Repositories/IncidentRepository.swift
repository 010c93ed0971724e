import Foundation
import SafeRxSQL
import SafeRxModel
import SafeRxStoreCore

/// The incident tables: `incident` (each incident's declaration as JSON), `incident_judgement` (append-only, kept six
/// years) and `obligation_done`. Every method takes the database of the caller's transaction.
enum IncidentRepository {
    static func insert(_ i: Incident, declaredAt: Date, _ db: any SQLConnection) throws {
        try db.execute(
            sql: "INSERT INTO incident (id, tenant, discovered, declared, declared_by, spec) VALUES (?, ?, ?, ?, ?, ?)",
            arguments: [i.id, i.tenant, i.discovered, declaredAt.timeIntervalSince1970, i.declaredBy, try spec(i)])
    }

    static func update(_ i: Incident, _ db: any SQLConnection) throws {
        try db.execute(sql: "UPDATE incident SET spec = ? WHERE id = ?", arguments: [try spec(i), i.id])
    }

    static func find(id: String, _ db: any SQLConnection) throws -> Incident? {
        try String.fetchOne(db, sql: "SELECT spec FROM incident WHERE id = ?", arguments: [id]).map(decode)
    }

    /// Every incident, newest first.
    static func all(_ db: any SQLConnection) throws -> [Incident] {
        try String.fetchAll(db, sql: "SELECT spec FROM incident ORDER BY declared DESC").map(decode)
    }

    static func insertJudgement(incident: String, question: String, text: String, by: String, at: String, retainUntil: String, _ db: any SQLConnection) throws {
        try db.execute(
            sql: "INSERT INTO incident_judgement (incident_id, question, text, by, at, retain_until) VALUES (?, ?, ?, ?, ?, ?)",
            arguments: [incident, question, text, by, at, retainUntil])
    }

    /// The latest judgement per question (earlier ones stay in the table).
    static func judgements(incident: String, _ db: any SQLConnection) throws -> [String: (text: String, by: String, at: String)] {
        var out: [String: (String, String, String)] = [:]
        for row in try SQLRow.fetchAll(db, sql: "SELECT question, text, by, at FROM incident_judgement WHERE incident_id = ? ORDER BY rowid", arguments: [incident]) {
            out[row[0]] = (row[1], row[2], row[3])
        }
        return out
    }

    static func markDone(incident: String, obligation: String, on day: String, by: String, note: String, _ db: any SQLConnection) throws {
        try db.execute(
            sql: "INSERT INTO obligation_done (incident_id, obligation_id, done_on, by, note) VALUES (?, ?, ?, ?, ?) ON CONFLICT (incident_id, obligation_id) DO UPDATE SET done_on = excluded.done_on, by = excluded.by, note = excluded.note",
            arguments: [incident, obligation, day, by, note])
    }

    static func obligationsDone(incident: String, _ db: any SQLConnection) throws -> [String: (on: String, by: String, note: String)] {
        var out: [String: (String, String, String)] = [:]
        for row in try SQLRow.fetchAll(db, sql: "SELECT obligation_id, done_on, by, note FROM obligation_done WHERE incident_id = ?", arguments: [incident]) {
            out[row[0]] = (row[1], row[2], row[3])
        }
        return out
    }

    static func spec(_ i: Incident) throws -> String {
        guard let data = try? JSONEncoder().encode(i) else { throw FHIRError.internal() }
        return String(decoding: data, as: UTF8.self)
    }

    static func decode(_ spec: String) throws -> Incident { try JSONDecoder().decode(Incident.self, from: Data(spec.utf8)) }
}
