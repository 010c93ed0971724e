import Crypto
import Foundation

/// The signature on every webhook SafeRx sends, in the `SafeRx-Signature` header:
///
/// ```
/// SafeRx-Signature: t=1763900000,v1=5f1c...e9
/// ```
///
/// `v1` is the lower-case hex HMAC-SHA-256, keyed with the endpoint's secret (the whole `whsec_...` string as UTF-8),
/// over the bytes `"<t>.<raw request body>"`. To verify (docs/pharmacy.md, "Verifying webhooks"): split the header on `,` and
/// `=`; recompute the HMAC over `t`, a dot and the body exactly as received; compare in constant time; reject if `t` is
/// more than 5 minutes from your clock; ignore an event id you have already processed (retries resend the same id).
public enum WebhookSignature {
    public static let header = "SafeRx-Signature"
    /// How far the timestamp may be from the receiver's clock.
    public static let tolerance: TimeInterval = 300

    /// The header value for `body` sent at `time`.
    public static func sign(body: Data, secret: String, time: Date = Date()) -> String {
        let t = Int(time.timeIntervalSince1970)
        return "t=\(t),v1=\(hex(mac(t: t, body: body, secret: secret)))"
    }

    /// Why a signature does not verify, or `nil` when it does.
    public static func problem(header value: String, body: Data, secret: String, now: Date = Date(), tolerance: TimeInterval = tolerance) -> String? {
        var t: Int? = nil
        var signatures: [String] = []
        for part in value.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2 else { continue }
            if kv[0] == "t" { t = Int(kv[1]) }
            if kv[0] == "v1" { signatures.append(kv[1].lowercased()) }
        }
        guard let t else { return "no timestamp" }
        guard !signatures.isEmpty else { return "no v1 signature" }
        guard abs(now.timeIntervalSince1970 - Double(t)) <= tolerance else { return "timestamp outside the tolerance" }
        let expected = Array(hex(mac(t: t, body: body, secret: secret)).utf8)
        let ok = signatures.contains { s in
            let given = Array(s.utf8)
            guard given.count == expected.count else { return false }
            var d: UInt8 = 0
            for i in 0..<given.count { d |= given[i] ^ expected[i] }
            return d == 0
        }
        return ok ? nil : "signature mismatch"
    }

    static func mac(t: Int, body: Data, secret: String) -> Data {
        var h = HMAC<SHA256>(key: SymmetricKey(data: Data(secret.utf8)))
        h.update(data: Data("\(t).".utf8))
        h.update(data: body)
        return Data(h.finalize())
    }

    static func hex(_ d: Data) -> String { d.map { String(format: "%02x", $0) }.joined() }
}
