import Foundation
import Hummingbird
import Logging
import SafeRxModel
import SafeRxPharmacy
import SafeRxStoreCore
import SafeRxWeb
import ServiceLifecycle

/// Builds the SafeRx HTTP application.
public enum SafeRxServer {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// Called with the bound port once the server listens (port 0 picks a free one).
        public var onListening: @Sendable (Int) async -> Void
        /// How partner webhooks are sent and retried.
        public var webhookTransport: (any WebhookTransport)?
        public var webhookPolicy: WebhookRetryPolicy
        public var webhookPollInterval: Duration
        /// Where patient notifications (codes, "you have a new message") go; `nil` logs that they were sent only.
        public var notificationSender: (any NotificationSender)?
        /// The pharmacy (tenant) that patient sign-ups are for when the request names none.
        public var signupTenant: String
        /// The exfiltration detector's rules and notices; `nil` runs without one (only tests that exercise other
        /// things in bulk; `saferx serve` always runs it).
        public var detection: DetectionSettings?
        /// Requests per source address and per account or API client (429 with `Retry-After` above them).
        public var sourceLimit: RateLimit
        public var accountLimit: RateLimit
        /// How long a web session may sit idle before it ends (15 minutes; tests shorten it).
        public var webSessionIdle: TimeInterval = 15 * 60

        public init(
            host: String = "127.0.0.1", port: Int = 8080, onListening: @escaping @Sendable (Int) async -> Void = { _ in },
            webhookTransport: (any WebhookTransport)? = nil, webhookPolicy: WebhookRetryPolicy = WebhookRetryPolicy(),
            webhookPollInterval: Duration = .seconds(1), notificationSender: (any NotificationSender)? = nil,
            signupTenant: String = "demo-pharmacy", detection: DetectionSettings? = nil,
            sourceLimit: RateLimit = .perSource, accountLimit: RateLimit = .perAccount
        ) {
            self.sourceLimit = sourceLimit
            self.accountLimit = accountLimit
            self.detection = detection
            self.notificationSender = notificationSender
            self.signupTenant = signupTenant
            self.host = host
            self.port = port
            self.onListening = onListening
            self.webhookTransport = webhookTransport
            self.webhookPolicy = webhookPolicy
            self.webhookPollInterval = webhookPollInterval
        }
    }

    public static func router(
        pharmacy: Pharmacy, baseURL: String, signupTenant: String = "demo-pharmacy", web: WebResources? = nil,
        sourceLimit: RateLimit = .perSource, accountLimit: RateLimit = .perAccount
    ) -> Router<SafeRxContext> {
        let router = Router(context: SafeRxContext.self)
        // Outermost, so that it logs the status the error middleware answered with.
        router.add(middleware: RequestLogMiddleware(level: .info))
        router.add(middleware: FHIRErrorMiddleware())
        router.add(middleware: SourceRateLimitMiddleware(limiter: RateLimiter(sourceLimit), access: pharmacy.access))
        router.get("/health") { _, _ -> Response in
            var h = HTTPFields()
            h[.contentType] = "application/json"
            return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(string: "{\"status\":\"ok\"}")))
        }
        let auth = pharmacy.auth
        let fhir = FHIRController(pharmacy: pharmacy, baseURL: baseURL, accountLimiter: RateLimiter(accountLimit))
        fhir.register(on: router)
        AuthController(auth: auth, fhir: fhir).register(on: router)
        PartnerController(fhir: fhir).register(on: router)
        AccountController(auth: auth, fhir: fhir, signupTenant: signupTenant).register(on: router)
        MessagingController(fhir: fhir).register(on: router)
        IncidentController(fhir: fhir).register(on: router)
        if let web {
            WebFront(fhir: fhir, auth: auth, pages: web.pages, sessions: web.sessions, formulary: web.formulary, signupTenant: signupTenant)
                .register(on: router)
        }
        return router
    }

    /// What the web front needs, loaded once at start (templates and static files fail the start if missing).
    public struct WebResources: Sendable {
        public let pages: Pages
        public let formulary: Formulary
        public let sessions: WebSessions

        public static func load(sessionIdle: TimeInterval = 15 * 60) async throws -> WebResources {
            WebResources(pages: try await Pages.load(), formulary: try Formulary.load(), sessions: WebSessions(idleTimeout: sessionIdle))
        }
    }

    public static func application(
        pharmacy: Pharmacy, configuration: Configuration, logger: Logger
    ) async throws -> some ApplicationProtocol {
        let base = "http://\(configuration.host):\(configuration.port)/fhir"
        let web = try await WebResources.load(sessionIdle: configuration.webSessionIdle)
        let router = router(
            pharmacy: pharmacy, baseURL: base, signupTenant: configuration.signupTenant, web: web, sourceLimit: configuration.sourceLimit,
            accountLimit: configuration.accountLimit)
        let onListening = configuration.onListening
        let background = try pharmacy.background(
            .init(
                webhookTransport: configuration.webhookTransport ?? HTTPWebhookTransport(), webhookPolicy: configuration.webhookPolicy,
                webhookPollInterval: configuration.webhookPollInterval,
                notificationSender: configuration.notificationSender ?? LogNotificationSender(logger: logger), detection: configuration.detection),
            logger: logger)
        return Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "SafeRx"),
            services: background,
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
    }
}
