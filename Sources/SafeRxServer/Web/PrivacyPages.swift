import Foundation
import Hummingbird
import SafeRxModel
import SafeRxPharmacy
import SafeRxPolicy
import SafeRxStoreCore
import SafeRxWeb

/// The privacy console (`/privacy`, privacy officers): audit chain verification, charts drawn as SVG on the server,
/// the break-glass report, and audit search through the gate (AuditEvent search, audited like any other).
extension WebFront {
    func registerPrivacy(on router: Router<SafeRxContext>) {
        registerSignIn(.privacy, on: router)
        registerAccount(.privacy, on: router)
        router.get("/privacy") { req, ctx in
            try await self.page(req, ctx, area: .privacy, signedIn: true) { s in try await self.privacyHome(req, ctx, s) }
        }
        router.get("/privacy/alerts") { req, ctx in
            try await self.page(req, ctx, area: .privacy, signedIn: true) { s in try await self.alertsPage(req, ctx, s) }
        }
        router.get("/privacy/alerts/:id") { req, ctx in
            let id = ctx.parameters.get("id") ?? ""
            return try await self.page(req, ctx, area: .privacy, signedIn: true) { s in try await self.alertPage(req, ctx, s, id: id) }
        }
        router.post("/privacy/alerts/:id/ack") { req, ctx in
            let id = ctx.parameters.get("id") ?? ""
            return try await self.post(req, ctx, area: .privacy, back: "/privacy/alerts/\(id)") { s, form in
                let access = try await self.access(req, ctx, s, "alert-ack", .auditEvent)
                try await pharmacy.privacy.acknowledge(access, alert: id, by: s.username ?? access.scope.principal.subject, note: form.value("note") ?? "")
                s.flash.append(.init(.info, "Alert acknowledged. A suspension it caused stays until it is lifted (saferx actors reinstate)."))
                return "/privacy/alerts/\(id)"
            }
        }
        router.get("/privacy/audit") { req, ctx in
            try await self.page(req, ctx, area: .privacy, signedIn: true) { _ in
                ("privacy-audit", [
                    "title": "Audit search", "current": "/privacy/audit",
                    "outcomes": ["", "success", "denied", "not-found", "failure"].map { ["value": $0, "label": $0.isEmpty ? "any" : $0, "selected": $0.isEmpty] },
                ])
            }
        }
        router.post("/privacy/audit") { req, ctx in
            try await self.postPage(req, ctx, area: .privacy, signedIn: true) { s, form in
                let access = try await self.access(req, ctx, s, "search", .auditEvent)
                var items: [(String, String)] = [("_count", "100")]
                if let p = form.value("patient") { items.append(("patient", p)) }
                if let d = form.value("date") { items.append(("date", d)) }
                if let o = form.value("outcome") { items.append(("outcome", o)) }
                if let a = form.value("agent") {
                    // A staff username, or a user or client id as the records name them.
                    let id = try await pharmacy.directory.id(access, username: a) ?? a
                    items.append(("agent", id))
                }
                let page = try await self.search(access, .auditEvent, items)
                let rows = page.matches.compactMap { r -> [String: Any]? in
                    guard let e = r.json else { return nil }
                    let agent = e["agent"]?.arrayValue?.first { $0["requestor"] == .bool(true) } ?? e["agent"]?.arrayValue?.first
                    let patients = (e["entity"]?.arrayValue ?? []).compactMap { $0["what"]?["reference"]?.stringValue }.filter { $0.hasPrefix("Patient/") }
                    return [
                        "seq": r.id, "time": String((e["recorded"]?.stringValue ?? "").prefix(19)).replacingOccurrences(of: "T", with: " "),
                        "actor": agent?["who"]?["identifier"]?["value"]?.stringValue ?? "", "role": agent?["role"]?.arrayValue?.first?["text"]?.stringValue ?? "",
                        "action": e["subtype"]?.arrayValue?.first?["code"]?.stringValue ?? e["action"]?.stringValue ?? "",
                        "outcome": e["outcomeDesc"]?.stringValue ?? e["outcome"]?.stringValue ?? "",
                        "purpose": e["purposeOfEvent"]?.arrayValue?.first?["coding"]?.arrayValue?.first?["code"]?.stringValue ?? "",
                        "patients": patients.map { String($0.dropFirst(8)) }.joined(separator: " "),
                        "source": agent?["network"]?["address"]?.stringValue ?? "",
                    ]
                }
                return ("privacy-audit", [
                    "title": "Audit search", "current": "/privacy/audit", "searched": true, "records": rows, "total": page.total == 1 ? "1 record" : "\(page.total) records",
                    "shown": rows.count, "more": page.total > rows.count, "patient": form.value("patient") ?? "", "date": form.value("date") ?? "", "agent": form.value("agent") ?? "",
                    "outcomes": ["", "success", "denied", "not-found", "failure"].map { o -> [String: Any] in
                        ["value": o, "label": o.isEmpty ? "any" : o, "selected": o == (form.value("outcome") ?? "")]
                    },
                ])
            }
        }
    }

    func privacyHome(_ req: Request, _ ctx: SafeRxContext, _ s: WebSession) async throws -> (String, [String: Any]) {
        let access = try await access(req, ctx, s, "search", .auditEvent)
        let o = try await pharmacy.privacy.overview(access, days: 14)
        let series = o.accessesByRole.keys.sorted().map { SVGChart.Series(name: $0, values: o.accessesByRole[$0]!) }
        let names = try await pharmacy.directory.usernames(access, ids: o.topActors.map(\.actor))
        let today = Date()
        let day = req.uri.queryParameters.get("day").flatMap { ISO8601DateFormatter.day.date(from: $0) != nil ? $0 : nil }
            ?? ISO8601DateFormatter.day.string(from: today)
        let breakGlass = try await pharmacy.privacy.breakGlassReport(access, day: day)
        let grantees = try await pharmacy.directory.usernames(access, ids: breakGlass.map(\.userID))
        return ("privacy-home", [
            "title": "Privacy overview", "current": "/privacy", "days": o.days.count, "day": day,
            "chainOK": o.chainOK, "records": o.records, "checkpoints": o.checkpoints, "chainProblem": o.chainProblem ?? "",
            "accessChart": SVGChart.stackedBars(title: "Accesses per day by role", categories: o.days, series: series),
            "denialChart": SVGChart.stackedBars(title: "Denials per day", categories: o.days, series: [.init(name: "denied", values: o.denials)]),
            "actorChart": SVGChart.horizontalBars(
                title: "Top actors by distinct patients touched", items: o.topActors.map { (label: names[$0.actor] ?? $0.actor, value: $0.patients) }),
            "actors": o.topActors.map { ["actor": names[$0.actor] ?? $0.actor, "role": $0.role, "patients": $0.patients] as [String: Any] },
            "breakGlass": breakGlass.map { g -> [String: Any] in
                ["created": g.granted, "user": grantees[g.userID] ?? g.userID, "patient": g.patientID, "reason": g.reason, "expires": g.expires]
            },
        ])
    }
    func alertsPage(_ req: Request, _ ctx: SafeRxContext, _ s: WebSession) async throws -> (String, [String: Any]) {
        let access = try await access(req, ctx, s, "alerts", .auditEvent)
        let (alerts, suspensions) = try await pharmacy.privacy.alerts(access, limit: 200)
        let names = try await pharmacy.directory.usernames(access, ids: alerts.map(\.actor) + suspensions.map(\.actor))
        func row(_ a: SecurityAlert) -> [String: Any] {
            ["id": a.id, "created": Display.minute(a.created), "severity": a.severity, "critical": a.severity == "critical", "rule": a.rule,
             "actor": names[a.actor] ?? a.actor, "role": a.role, "patients": a.patients.count, "contained": a.contained, "summary": a.summary]
        }
        return ("privacy-alerts", [
            "title": "Alerts", "current": "/privacy/alerts",
            "open": alerts.filter { $0.acknowledged == nil }.map(row), "acked": alerts.filter { $0.acknowledged != nil }.prefix(50).map(row),
            "suspended": suspensions.map { ["actor": names[$0.actor] ?? $0.actor, "since": Display.minute($0.at), "alert": $0.alertID] as [String: Any] },
        ])
    }

    func alertPage(_ req: Request, _ ctx: SafeRxContext, _ s: WebSession, id: String) async throws -> (String, [String: Any]) {
        let access = try await access(req, ctx, s, "alert", .auditEvent)
        // The alert names patients: opening it is an access like any other (recorded by the service).
        let a = try await pharmacy.privacy.alert(access, id: id)
        let names = try await pharmacy.directory.usernames(access, ids: [a.actor])
        return ("privacy-alert", [
            "title": "Alert \(a.id)", "current": "/privacy/alerts", "id": a.id, "severity": a.severity, "critical": a.severity == "critical",
            "rule": a.rule, "summary": a.summary, "description": a.description, "actor": names[a.actor] ?? a.actor, "actorID": a.actor,
            "role": a.role, "created": Display.minute(a.created), "updated": Display.minute(a.updated), "contained": a.contained, "blocked": a.blocked,
            "lag": String(format: "%.2f", a.lagMilliseconds), "evidence": a.evidence.map(String.init).joined(separator: " "),
            "evidenceCount": a.evidence.count, "patients": a.patients, "patientCount": a.patients.count,
            "acked": a.acknowledged != nil, "ackedAt": a.acknowledged.map(Display.minute) ?? "", "ackedBy": a.acknowledgedBy ?? "", "note": a.note ?? "",
        ])
    }
}
