import Foundation
import Logging
import SafeRxAudit
import SafeRxModel
import SafeRxStore
import SafeRxStoreCore
import ServiceLifecycle

/// Delivers one notification (an e-mail or SMS gateway in production). Bodies are fixed texts: a code, or "you have
/// a new message"; never PHI.
public protocol NotificationSender: Sendable {
    func send(_ notification: OutgoingNotification) async throws
}

/// The default sender: appends one JSON line per message to `outbox.jsonl` in a directory (mode 0700, file 0600),
/// standing in for a mail or SMS gateway on a demo or test machine. It holds what a gateway would receive, the
/// address and the fixed text, and nothing else; keep the directory out of backups like a mail spool.
public final class FileNotificationSender: NotificationSender {
    public let directory: URL
    let lock = NSLock()

    public init(directory: URL) throws {
        self.directory = directory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    public var file: URL { directory.appendingPathComponent("outbox.jsonl") }

    public func send(_ n: OutgoingNotification) async throws {
        let line = JSON.object([
            "id": .string(n.id), "channel": .string(n.channel), "to": .string(n.recipient), "kind": .string(n.kind.rawValue),
            "subject": .string(n.subject), "body": .string(n.body), "sent": .string(AuditLog.timestamp(Date())),
        ]).encoded() + Data("\n".utf8)
        try lock.withLock {
            let fm = FileManager.default
            if !fm.fileExists(atPath: file.path) {
                guard fm.createFile(atPath: file.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                    throw CocoaError(.fileWriteUnknown)
                }
            }
            let handle = try FileHandle(forWritingTo: file)
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: line)
        }
    }

    /// The notifications in an outbox file, oldest first (for tests and `saferx notifications show`).
    public static func read(_ file: URL) -> [JSON] {
        guard let data = try? Data(contentsOf: file) else { return [] }
        return data.split(separator: UInt8(ascii: "\n")).compactMap { try? JSON.parse(Data($0)) }
    }
}

/// A sender that only logs that a notification went out (id, kind, channel; never the address or the text). For
/// servers where nobody should receive anything, such as benchmarks.
public struct LogNotificationSender: NotificationSender {
    let logger: Logger
    public init(logger: Logger = Logger(label: "saferx.notifications")) { self.logger = logger }
    public func send(_ n: OutgoingNotification) async throws {
        logger.info("notification", metadata: ["id": "\(n.id)", "kind": "\(n.kind.rawValue)", "channel": "\(n.channel)"])
    }
}

/// Sends the notification outbox. Each delivery is audited (a system disclosure of the contact on the patient's
/// record to the gateway), naming the patient but not the address.
public struct NotificationDispatcher: Service {
    package let store: PharmacyStore
    public let sender: any NotificationSender
    public let pollInterval: Duration
    let logger: Logger

    package init(store: PharmacyStore, sender: any NotificationSender, pollInterval: Duration = .milliseconds(500), logger: Logger = Logger(label: "saferx.notifications")) {
        self.store = store
        self.sender = sender
        self.pollInterval = pollInterval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                _ = await sendPending()
                try? await Task.sleep(for: pollInterval)
            }
        }
    }

    /// Sends every pending notification once (claimed first, so that another server on the same database does not
    /// send it too); returns how many were sent.
    @discardableResult
    public func sendPending() async -> Int {
        guard let pending = try? await store.claimNotifications(), !pending.isEmpty else { return 0 }
        var sent = 0
        for n in pending {
            guard !n.recipient.isEmpty else {
                // The patient was erased after it was queued: nothing to send to.
                try? await store.finishNotification(id: n.id, sent: true)
                continue
            }
            do {
                try await sender.send(n)
                try await store.recordEvent(
                    AuditEntry(
                        actor: .init(id: "system", role: "system", tenant: n.tenant), action: "notify", patients: n.patientID.isEmpty ? [] : [n.patientID], outcome: "success",
                        result: .done, purpose: "HOPERAT", sourceIP: "local", userAgent: "saferx notifications", requestID: n.id,
                        detail: "\(n.kind.rawValue) by \(n.channel)"))
                try await store.finishNotification(id: n.id, sent: true)
                sent += 1
            } catch {
                logger.warning("notification not sent", metadata: ["id": "\(n.id)", "error": "\(type(of: error))"])
                try? await store.finishNotification(id: n.id, sent: false)
            }
        }
        return sent
    }
}
