import Foundation
import Hummingbird
import SafeRxModel
import SafeRxPharmacy
import SafeRxStoreCore
import Synchronization

/// Token buckets: `rate` requests a second sustained, `burst` at once, per key (a source address, an account or an API
/// client). Bounded: when it holds too many keys, the ones that are full again are forgotten.
public struct RateLimit: Sendable {
    public var rate: Double
    public var burst: Double

    public init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = burst
    }

    /// Per source address, over every request (signed in or not).
    public static let perSource = RateLimit(rate: 100, burst: 2000)
    /// Per account or API client, after its token verified.
    public static let perAccount = RateLimit(rate: 30, burst: 900)
    /// No limit (benchmarks that measure the server's own throughput).
    public static let unlimited = RateLimit(rate: 1e9, burst: 1e9)
}

final class RateLimiter: Sendable {
    struct Bucket {
        var tokens: Double
        var last: Double
        /// Refused since the bucket last had room: only the first refusal of a burst is audited.
        var limited: Bool
    }

    let limit: RateLimit
    let buckets = Mutex<[String: Bucket]>([:])
    static let capacity = 100_000

    init(_ limit: RateLimit) {
        self.limit = limit
    }

    /// Takes one token for `key`. `nil` when allowed; else the seconds until one is free and whether this is the
    /// first refusal of the burst.
    func take(_ key: String, now: Double = Date().timeIntervalSince1970) -> (retryAfter: Int, first: Bool)? {
        buckets.withLock { all in
            if all.count > Self.capacity {
                all = all.filter { min(limit.burst, $0.value.tokens + (now - $0.value.last) * limit.rate) < limit.burst }
            }
            var b = all[key] ?? Bucket(tokens: limit.burst, last: now, limited: false)
            b.tokens = min(limit.burst, b.tokens + max(0, now - b.last) * limit.rate)
            b.last = now
            if b.tokens >= 1 {
                b.tokens -= 1
                b.limited = false
                all[key] = b
                return nil
            }
            let first = !b.limited
            b.limited = true
            all[key] = b
            return (max(1, Int(((1 - b.tokens) / limit.rate).rounded(.up))), first)
        }
    }
}

/// Refuses requests from a source address over its rate (429 with `Retry-After`), with one audit record per limited
/// burst. Per-account limits are applied where the token is verified (``FHIRController/access(_:_:interaction:type:)``).
struct SourceRateLimitMiddleware: RouterMiddleware {
    typealias Context = SafeRxContext
    let limiter: RateLimiter
    let access: AccessService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let refusal = limiter.take("source:" + context.remoteAddress) {
            let error = FHIRError.tooManyRequests("Too many requests from this address; slow down", retryAfter: refusal.retryAfter)
            if refusal.first {
                await access.recordAnonymousRefusal(
                    RequestInfo(requestID: context.requestID, sourceIP: context.remoteAddress, userAgent: request.headers[.userAgent] ?? ""),
                    action: "rate-limited", error: error,
                    detail: "source address over \(Int(limiter.limit.rate)) requests/s (burst \(Int(limiter.limit.burst)))")
            }
            throw error
        }
        return try await next(request, context)
    }
}
