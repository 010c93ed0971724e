import Foundation
import Hummingbird
import Logging

/// One log line per request for operators: method, the *route pattern* (`/fhir/Patient/{id}`, never the path a
/// client sent), status, duration and request id.
///
/// Nothing a client typed reaches the log: no query string (searches by name or birth date), no body (drug
/// searches, messages), no path values, no address or user agent. The request id ties a line to its audit record,
/// which holds the rest under seal. Hummingbird's `LogRequestsMiddleware` logs the whole URI, query included, so
/// SafeRx does not use it.
struct RequestLogMiddleware: RouterMiddleware {
    typealias Context = SafeRxContext
    let level: Logger.Level

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let elapsed = ContinuousClock.now - start
        let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        context.logger.log(
            level: level, "request",
            metadata: [
                "method": .string(request.method.rawValue), "route": .string(context.endpointPath ?? "unmatched"),
                "status": .stringConvertible(response.status.code), "ms": .string(String(format: "%.1f", ms)),
                "request": .string(context.requestID),
            ])
        return response
    }
}
