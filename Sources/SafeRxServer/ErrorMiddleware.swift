import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SafeRxModel

/// Turns every error into a FHIR `OperationOutcome` with the right status, and adds security headers to every
/// response. Nothing reaches the client as a bare 500, and nothing logged here carries request content.
struct FHIRErrorMiddleware: RouterMiddleware {
    typealias Context = SafeRxContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as FHIRError {
            response = Self.outcome(error)
        } catch let error as HTTPError {
            response = Self.outcome(Self.map(error, path: request.uri.path, method: request.method))
        } catch {
            context.logger.error("unhandled error", metadata: ["type": "\(type(of: error))", "request": "\(context.requestID)"])
            response = Self.outcome(.internal())
        }
        response.headers[.init("X-Request-ID")!] = context.requestID
        // PHI never sits in a cache; the stylesheet and icon (public, no PHI) may.
        response.headers[.cacheControl] = request.uri.path.hasPrefix("/static/") && response.status == .ok ? "public, max-age=3600" : "no-store"
        response.headers[.init("X-Content-Type-Options")!] = "nosniff"
        // Pages may load their own stylesheet and nothing else (no script at all); API answers may load nothing.
        let isPage = response.headers[.contentType]?.hasPrefix("text/html") == true
        response.headers[.init("Content-Security-Policy")!] = isPage ? WebFront.pageCSP : "default-src 'none'; frame-ancestors 'none'"
        response.headers[.init("Referrer-Policy")!] = "no-referrer"
        response.headers[.init("Permissions-Policy")!] = Self.permissionsPolicy
        if isPage { response.headers[.init("X-Frame-Options")!] = "DENY" }
        return response
    }

    /// Every powerful browser feature is off: SafeRx pages use none of them.
    static let permissionsPolicy =
        "accelerometer=(), autoplay=(), camera=(), display-capture=(), encrypted-media=(), fullscreen=(), geolocation=(), gyroscope=(), "
        + "magnetometer=(), microphone=(), midi=(), payment=(), picture-in-picture=(), publickey-credentials-get=(), screen-wake-lock=(), "
        + "serial=(), usb=(), xr-spatial-tracking=(), browsing-topics=(), interest-cohort=()"

    /// What Hummingbird itself refused (no route, no such method, a body over the limit, a request it could not
    /// decode), as the domain error with the same meaning, so that it is answered like SafeRx's own refusals: the same
    /// status, an `OperationOutcome` naming the problem. Its message is Hummingbird's only when it names the request's
    /// own problem; 5xx never carry one.
    static func map(_ error: HTTPError, path: String, method: HTTPRequest.Method) -> FHIRError {
        let said = error.body.map { String($0.prefix(200)) }
        func with(_ kind: FHIRError.Kind, _ code: String) -> FHIRError {
            FHIRError(kind: kind, code: code, diagnostics: said ?? error.status.reasonPhrase)
        }
        switch error.status {
        case .notFound: return .notFoundPath(String(path.prefix(80)))
        case .methodNotAllowed: return .methodNotAllowed("\(method.rawValue) is not allowed on this endpoint")
        case .contentTooLarge: return .tooLarge(limit: path.hasSuffix("/fhir/Binary") ? FHIRController.maxBinaryBodySize : FHIRController.maxBodySize)
        case .badRequest: return .invalid(said ?? "Bad request")
        case .unauthorized: return with(.unauthenticated, "login")
        case .forbidden: return with(.forbidden, "forbidden")
        case .conflict: return with(.conflict, "conflict")
        case .gone: return with(.gone, "deleted")
        case .preconditionFailed: return with(.preconditionFailed, "conflict")
        case .unsupportedMediaType: return with(.unsupportedMediaType, "not-supported")
        case .unprocessableContent: return with(.businessRule, "business-rule")
        case .tooManyRequests: return with(.throttled, "throttled")
        case .serviceUnavailable: return FHIRError(kind: .unavailable, code: "transient", diagnostics: "Service unavailable; try again shortly")
        default:
            if (400..<500).contains(error.status.code) { return with(.invalid, "invalid") }
            return .internal()
        }
    }

    static func outcome(_ error: FHIRError) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/fhir+json; charset=utf-8"
        if error.kind == .unauthenticated { headers[.wwwAuthenticate] = "Bearer realm=\"saferx\"" }
        if let seconds = error.retryAfter ?? (error.kind == .throttled || error.kind == .unavailable ? 1 : nil) { headers[.retryAfter] = String(seconds) }
        return Response(
            status: error.kind.httpStatus, headers: headers,
            body: .init(byteBuffer: ByteBuffer(bytes: error.operationOutcome.encoded())))
    }
}

extension FHIRError.Kind {
    /// The one place a domain failure becomes an HTTP status.
    var httpStatus: HTTPResponse.Status {
        switch self {
        case .invalid, .notSupported: .badRequest
        case .unauthenticated: .unauthorized
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .methodNotAllowed: .methodNotAllowed
        case .conflict: .conflict
        case .gone: .gone
        case .preconditionFailed: .preconditionFailed
        case .tooLarge: .contentTooLarge
        case .unsupportedMediaType: .unsupportedMediaType
        case .businessRule: .unprocessableContent
        case .throttled: .tooManyRequests
        case .internal: .internalServerError
        case .unavailable: .serviceUnavailable
        }
    }
}
