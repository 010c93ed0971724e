import Foundation
import SafeRxModel

/// A partner's webhook endpoint, registered by an operator (`saferx webhooks register`).
public struct WebhookEndpoint: Sendable {
    public var clientID: String
    public var tenant: String
    public var url: String
    public var secret: String

    package init(clientID: String, tenant: String, url: String, secret: String) {
        self.clientID = clientID
        self.tenant = tenant
        self.url = url
        self.secret = secret
    }
}

/// One webhook event and its delivery state.
public struct WebhookEvent: Sendable {
    public enum State: String, Sendable { case pending, delivered, dead }
    public var id: String
    public var tenant: String
    public var clientID: String
    public var type: String
    /// The JSON body sent (ids and statuses only).
    public var payload: Data
    public var created: Date
    public var state: State
    public var attempts: Int
    public var nextAttempt: Date
    public var lastStatus: Int?
    public var lastError: String?
    public var delivered: Date?

    package init(id: String, tenant: String, clientID: String, type: String, payload: Data, created: Date, state: State, attempts: Int, nextAttempt: Date, lastStatus: Int? = nil, lastError: String? = nil, delivered: Date? = nil) {
        self.id = id
        self.tenant = tenant
        self.clientID = clientID
        self.type = type
        self.payload = payload
        self.created = created
        self.state = state
        self.attempts = attempts
        self.nextAttempt = nextAttempt
        self.lastStatus = lastStatus
        self.lastError = lastError
        self.delivered = delivered
    }
}

/// How webhook deliveries are retried: exponential backoff from ``baseDelay`` (doubling, capped at ``maxDelay``)
/// with jitter (each delay drawn from [½, 1] of its value), until ``maxAge`` after the event, then dead-lettered;
/// never before ``minAttempts`` tries (an event that aged while SafeRx was down still gets them).
public struct WebhookRetryPolicy: Sendable {
    public var baseDelay: TimeInterval
    public var maxDelay: TimeInterval
    public var maxAge: TimeInterval
    public var minAttempts: Int

    public init(baseDelay: TimeInterval = 30, maxDelay: TimeInterval = 3600, maxAge: TimeInterval = 24 * 3600, minAttempts: Int = 3) {
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxAge = maxAge
        self.minAttempts = minAttempts
    }

    /// The delay before attempt `attempts + 1`, after `attempts` failures.
    public func delay(afterFailures attempts: Int) -> TimeInterval {
        let exponential = min(maxDelay, baseDelay * pow(2, Double(max(0, attempts - 1))))
        return exponential * Double.random(in: 0.5...1.0)
    }
}
