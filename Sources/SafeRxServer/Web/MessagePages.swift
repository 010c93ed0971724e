import Foundation
import Hummingbird
import NIOCore
import SafeRxModel
import SafeRxPharmacy
import SafeRxPolicy
import SafeRxStoreCore
import SafeRxWeb

/// Secure messages for the portal and the console: thread lists with unread counts, a thread with its attachments,
/// new messages and replies with an optional file (checked by content by the store), downloads, assignment.
extension WebFront {
    func registerMessages(_ area: Area, on router: Router<SafeRxContext>) {
        let base = "/\(area.rawValue)"
        let staff = area == .console
        router.get("\(base)/messages") { req, ctx in
            try await self.page(req, ctx, area: area, signedIn: true) { s in
                let access = try await self.access(req, ctx, s, "list", .communication)
                let mine = staff && req.uri.queryParameters.get("assigned") == "me"
                let pageSize = 20
                let pageNumber = max(1, min(50_000, Int(req.uri.queryParameters.get("page") ?? "1") ?? 1))
                let page = try await pharmacy.messaging.threads(
                    access, assignedTo: mine ? access.scope.principal.subject : nil, count: pageSize, offset: (pageNumber - 1) * pageSize)
                let names: [String: String] =
                    if staff { try await pharmacy.directory.usernames(access, ids: page.threads.compactMap(\.assignee)) } else { [:] }
                let first = page.threads.isEmpty ? 0 : (pageNumber - 1) * pageSize + 1
                let last = (pageNumber - 1) * pageSize + page.threads.count
                let filter = mine ? "assigned=me&" : ""
                var values: [String: Any] = [
                    "title": "Messages", "current": "\(base)/messages", "base": base, "staff": staff, "assignedFilter": staff, "canStart": !staff,
                    "threads": page.threads.map { t -> [String: Any] in
                        ["id": t.id, "subject": "Conversation started \(String(t.lastSent.prefix(10)))", "patient": t.patientID,
                         "assignee": t.assignee.flatMap { names[$0] } ?? "–", "messages": t.messages, "unread": t.unread,
                         "lastSent": String(t.lastSent.prefix(16)).replacingOccurrences(of: "T", with: " ")]
                    },
                ]
                // Absent keys, not empty strings: a section over "" would still render.
                if page.total > 0 { values["paging"] = "\(first)–\(last) of \(page.total) \(page.total == 1 ? "thread" : "threads")" }
                if pageNumber > 1 { values["previous"] = "\(base)/messages?\(filter)page=\(pageNumber - 1)" }
                if last < page.total { values["next"] = "\(base)/messages?\(filter)page=\(pageNumber + 1)" }
                return ("thread-list", values)
            }
        }
        router.get("\(base)/messages/:thread") { req, ctx in
            let thread = ctx.parameters.get("thread") ?? ""
            return try await self.page(req, ctx, area: area, signedIn: true) { s in try await self.threadPage(req, ctx, s, area: area, thread: thread) }
        }
        // A new thread (patients and caregivers) or a reply.
        router.post("\(base)/messages") { req, ctx in
            try await self.post(req, ctx, area: area, back: "\(base)/messages") { s, form in
                guard !staff, let patient = s.patient else { throw FHIRError.forbidden("Staff reply inside a patient's thread") }
                let id = try await self.send(req, ctx, s, form, patient: patient, replyTo: nil, pharmacy: "Organization/org-demo")
                s.flash.append(.init(.info, "Message sent."))
                return "\(base)/messages/\(id)"
            }
        }
        router.post("\(base)/messages/:thread") { req, ctx in
            let thread = ctx.parameters.get("thread") ?? ""
            return try await self.post(req, ctx, area: area, back: "\(base)/messages/\(thread)") { s, form in
                let access = try await self.access(req, ctx, s, "read", .communication)
                let root = try await pharmacy.records.read(access, .communication, id: thread).json ?? .null
                let patient = Display.patientID(root)
                let pharmacy = (root["recipient"]?.arrayValue ?? []).compactMap { $0["reference"]?.stringValue }.first { $0.hasPrefix("Organization/") }
                    ?? root["sender"]?["reference"]?.stringValue.flatMap { $0.hasPrefix("Organization/") ? $0 : nil } ?? "Organization/org-demo"
                let last = try await self.threadMessages(access, root: thread, patient: patient).last?.id ?? thread
                _ = try await self.send(req, ctx, s, form, patient: patient, replyTo: last, pharmacy: pharmacy, fromPharmacy: staff)
                s.flash.append(.init(.info, "Reply sent."))
                return "\(base)/messages/\(thread)"
            }
        }
        router.get("\(base)/attachments/:binary") { req, ctx in
            let id = ctx.parameters.get("binary") ?? ""
            let (s, _) = await self.session(req, form: false)
            guard s.signedIn, let role = s.role, area.roles.contains(role) else { return self.redirect("\(base)/login", cookie: nil) }
            do {
                let access = try await self.access(req, ctx, s, "read", .binary)
                let r = try await pharmacy.records.read(access, .binary, id: id)
                guard let native = FHIRController.nativeContent(r) else { throw FHIRError.notFound(.binary, id) }
                var h = HTTPFields()
                h[.contentType] = native.contentType
                h[.contentDisposition] = "attachment; filename=\"attachment-\(Display.shortID(id))\(native.fileExtension)\""
                return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: native.data)))
            } catch let e as FHIRError where e.kind == .unauthenticated {
                return self.redirect("\(base)/login", cookie: nil)
            } catch is FHIRError {
                return self.html(self.render("error", ["title": "Not found", "message": "There is nothing here, or you may not see it."], session: s, area: area, flash: []), status: .notFound, cookie: nil)
            }
        }
        if staff {
            router.post("/console/messages/:thread/assign") { req, ctx in
                let thread = ctx.parameters.get("thread") ?? ""
                return try await self.post(req, ctx, area: .console, back: "/console/messages/\(thread)") { s, form in
                    let access = try await self.access(req, ctx, s, "assign", .communication)
                    let (_, assignee) = try await pharmacy.messaging.assign(access, message: thread, to: form.value("assignee") ?? "")
                    let name = try await pharmacy.directory.usernames(access, ids: [assignee])[assignee] ?? assignee
                    s.flash.append(.init(.info, "Assigned to \(name)."))
                    return "/console/messages/\(thread)"
                }
            }
        }
    }

    /// The messages of one thread (the root and every reply chained to it by `inResponseTo`), oldest first.
    func threadMessages(_ access: AccessContext, root: String, patient: String) async throws -> [StoredResource] {
        let page = try await search(access, .communication, [("patient", patient), ("_count", "100")])
        var parent: [String: String] = [:]
        for r in page.matches {
            if let ref = r.json?["inResponseTo"]?.arrayValue?.first?["reference"]?.stringValue, ref.hasPrefix("Communication/") {
                parent[r.id] = String(ref.dropFirst("Communication/".count))
            }
        }
        func rootOf(_ id: String) -> String {
            var id = id, seen: Set<String> = []
            while let p = parent[id], !seen.contains(p) {
                seen.insert(id)
                id = p
            }
            return id
        }
        return page.matches.filter { rootOf($0.id) == root }.sorted { ($0.json?["sent"]?.stringValue ?? "") < ($1.json?["sent"]?.stringValue ?? "") }
    }

    func threadPage(_ req: Request, _ ctx: SafeRxContext, _ s: WebSession, area: Area, thread: String) async throws -> (String, [String: Any]) {
        let base = "/\(area.rawValue)"
        let access = try await access(req, ctx, s, "read", .communication)
        let root = try await pharmacy.records.read(access, .communication, id: thread)
        let patient = Display.patientID(root.json ?? .null)
        let messages = try await threadMessages(access, root: thread, patient: patient)
        try await pharmacy.messaging.markRead(access, communications: messages.map(\.id))
        var rows: [[String: Any]] = []
        for m in messages {
            let json = m.json ?? .null
            let fromPharmacy = json["sender"]?["reference"]?.stringValue?.hasPrefix("Organization/") == true
            var attachments: [[String: Any]] = []
            var text: [String] = []
            for p in json["payload"]?.arrayValue ?? [] {
                if let t = p["contentString"]?.stringValue { text.append(t) }
                if let ref = p["contentReference"]?["reference"]?.stringValue, ref.hasPrefix("DocumentReference/") {
                    guard let doc = try? await pharmacy.records.read(access, .documentReference, id: String(ref.dropFirst(18))).json else { continue }
                    for c in doc["content"]?.arrayValue ?? [] {
                        let a = c["attachment"] ?? .null
                        if let url = a["url"]?.stringValue, url.hasPrefix("Binary/") {
                            attachments.append([
                                "binary": String(url.dropFirst(7)), "title": a["title"]?.stringValue ?? "file",
                                "contentType": a["contentType"]?.stringValue ?? "",
                            ])
                        }
                    }
                }
            }
            rows.append([
                "from": fromPharmacy ? "Pharmacy" : (area == .portal ? "You" : "Patient"), "fromPharmacy": fromPharmacy,
                "sent": String((json["sent"]?.stringValue ?? m.lastUpdated).prefix(16)).replacingOccurrences(of: "T", with: " "),
                "text": text.joined(separator: "\n"), "attachments": attachments,
            ])
        }
        var v: [String: Any] = [
            "title": "Conversation", "current": "\(base)/messages", "base": base, "thread": thread, "messages": rows, "patient": patient,
            "staff": area == .console,
        ]
        if area == .console {
            v["staffUsers"] = try await pharmacy.directory.accounts(access, roles: [.pharmacist, .technician]).map(\.username).sorted()
        }
        return ("thread", v)
    }

    /// Creates the message (and, with a file, its Binary and DocumentReference first) through the gate. Returns the
    /// new Communication's id. A refused file (type judged from its bytes, size) refuses the whole message.
    func send(
        _ req: Request, _ ctx: SafeRxContext, _ s: WebSession, _ form: FormData, patient: String, replyTo: String?, pharmacy: String,
        fromPharmacy: Bool = false
    ) async throws -> String {
        guard let text = form.value("text"), text.count <= 4000 else { throw FHIRError.invalid("Write a message (at most 4,000 characters)") }
        let access = try await access(req, ctx, s, "create", .communication)
        var payload: [JSON] = [.object(["contentString": .string(text)])]
        if let file = form.files.first(where: { $0.field == "file" && !$0.data.isEmpty }) {
            let type = AttachmentRules.sniff(file.data) ?? file.declaredType
            let binary = try await self.pharmacy.records.create(access, .binary, .object([
                "resourceType": "Binary", "contentType": .string(type), "securityContext": .object(["reference": .string("Patient/\(patient)")]),
                "data": .string(file.data.base64EncodedString()),
            ]))
            let doc = try await self.pharmacy.records.create(access, .documentReference, .object([
                "resourceType": "DocumentReference", "status": "current", "subject": .object(["reference": .string("Patient/\(patient)")]),
                "content": .array([.object(["attachment": .object([
                    "contentType": .string(type), "url": .string("Binary/\(binary.id)"), "title": .string(String(file.filename.prefix(100))),
                ])])]),
            ]))
            payload.append(.object(["contentReference": .object(["reference": .string("DocumentReference/\(doc.id)")])]))
        }
        var message: [String: JSON] = [
            "resourceType": "Communication", "status": "completed", "subject": .object(["reference": .string("Patient/\(patient)")]),
            "sender": .object(["reference": .string(fromPharmacy ? pharmacy : "Patient/\(patient)")]),
            "recipient": .array([.object(["reference": .string(fromPharmacy ? "Patient/\(patient)" : pharmacy)])]),
            "sent": .string(Instant.now()), "payload": .array(payload),
        ]
        if let replyTo { message["inResponseTo"] = .array([.object(["reference": .string("Communication/\(replyTo)")])]) }
        return try await self.pharmacy.records.create(access, .communication, .object(message)).id
    }
}
