import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SafeRxModel
import SafeRxStore
import SafeRxStoreCore
import SafeRxVault
import ServiceLifecycle

/// Sends one webhook request and returns the HTTP status.
public protocol WebhookTransport: Sendable {
    func post(url: String, headers: [(String, String)], body: Data) async throws -> Int
}

/// The transport `saferx serve` uses: AsyncHTTPClient, no redirects (a redirect could lead anywhere), short timeouts.
public final class HTTPWebhookTransport: WebhookTransport {
    let client: HTTPClient
    let timeout: TimeAmount

    public init(timeout: TimeAmount = .seconds(10)) {
        var config = HTTPClient.Configuration(redirectConfiguration: .disallow)
        config.timeout = .init(connect: .seconds(5), read: timeout)
        self.client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: config)
        self.timeout = timeout
    }

    public func post(url: String, headers: [(String, String)], body: Data) async throws -> Int {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await client.execute(request, timeout: timeout)
        // Read (and discard) at most 64 KiB of the answer so the connection can be reused.
        _ = try? await response.body.collect(upTo: 64 * 1024)
        return Int(response.status.code)
    }

    public func shutdown() async {
        try? await client.shutdown()
    }
}

/// Delivers the webhook outbox: every due event is signed (``WebhookSignature``) and POSTed to its partner's
/// registered endpoint; failures are retried per ``WebhookRetryPolicy`` and dead-lettered after its `maxAge`.
///
/// Only URLs in `webhook_endpoint` (registered by an operator) are ever called, and redirects are not followed.
public struct WebhookDispatcher: Service {
    package let store: PharmacyStore
    public let transport: any WebhookTransport
    public let policy: WebhookRetryPolicy
    public let pollInterval: Duration
    let logger: Logger

    package init(
        store: PharmacyStore, transport: any WebhookTransport, policy: WebhookRetryPolicy = WebhookRetryPolicy(),
        pollInterval: Duration = .seconds(1), logger: Logger = Logger(label: "saferx.webhooks")
    ) {
        self.store = store
        self.transport = transport
        self.policy = policy
        self.pollInterval = pollInterval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                _ = await deliverDue()
                try? await Task.sleep(for: pollInterval)
            }
        }
        if let http = transport as? HTTPWebhookTransport { await http.shutdown() }
    }

    /// Attempts every due event once (claimed first, so that another server on the same database does not deliver
    /// it too); returns how many were attempted.
    @discardableResult
    public func deliverDue(now: Date? = nil) async -> Int {
        let now = now ?? store.clock.now
        guard let due = try? await store.claimDueWebhooks(now: now), !due.isEmpty else { return 0 }
        var endpoints: [String: WebhookEndpoint?] = [:]
        for event in due {
            if endpoints[event.clientID] == nil { endpoints[event.clientID] = .some(try? await store.webhookEndpoint(clientID: event.clientID)) }
            var status: Int? = nil
            var error: String? = nil
            if let endpoint = endpoints[event.clientID] ?? nil {
                let headers = [
                    ("Content-Type", "application/json"), ("User-Agent", "SafeRx-Webhooks/1"), ("SafeRx-Event-Id", event.id),
                    ("SafeRx-Event-Type", event.type),
                    (WebhookSignature.header, WebhookSignature.sign(body: event.payload, secret: endpoint.secret)),
                ]
                do {
                    status = try await transport.post(url: endpoint.url, headers: headers, body: event.payload)
                    if let s = status, !(200..<300).contains(s) { error = "HTTP \(s)" }
                } catch let e {
                    error = String(describing: type(of: e))
                }
            } else {
                error = "no endpoint registered"
            }
            let state = (try? await store.recordWebhookAttempt(id: event.id, status: status, error: error, policy: policy)) ?? .pending
            if state == .dead {
                logger.warning("webhook dead-lettered", metadata: ["event": "\(event.id)", "client": "\(event.clientID)"])
            }
        }
        return due.count
    }
}
