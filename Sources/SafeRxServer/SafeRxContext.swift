import Foundation
import Hummingbird
import NIOCore

/// The request context: Hummingbird's core storage plus what SafeRx needs to audit a request.
public struct SafeRxContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The peer's IP address.
    public let remoteAddress: String
    /// A fresh id per request, echoed in `X-Request-ID` and recorded in the audit log.
    public let requestID: String

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress?.ipAddress ?? ""
        self.requestID = UUID().uuidString.lowercased()
    }

    /// Bodies are read with explicit limits (``FHIRController/bodyLimit(_:)``: 1 MiB, 7 MiB for Binary uploads).
    public var maxUploadSize: Int { FHIRController.maxBinaryBodySize }
}
