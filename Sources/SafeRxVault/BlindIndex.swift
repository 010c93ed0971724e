import Crypto
import Foundation
import SafeRxModel

/// Blind index tokens: HMAC-SHA-256 under the index key (separate from every data key) over a parameter name and
/// a normalized value, truncated to 128 bits and hex-encoded.
///
/// Equal values give equal tokens, so exact-match search works without plaintext. That is also what a blind index
/// leaks to someone holding the database but not the key: which rows share a value (and how many do), never the value.
public struct BlindIndex: Sendable {
    let key: SymmetricKey

    public init(key: SymmetricKey) {
        self.key = key
    }

    public func token(parameter: String, value: String) -> String {
        var h = HMAC<SHA256>(key: key)
        h.update(data: Data(parameter.utf8))
        h.update(data: Data([0]))
        h.update(data: Data(value.utf8))
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(32)
        for b in Data(h.finalize()).prefix(16) {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The stored form of an index term: blinded if sensitive, else as is.
    public func stored(_ term: IndexTerm) -> String {
        term.sensitive ? token(parameter: term.parameter, value: term.value) : term.value
    }
}

/// Random secrets as URL-safe text (passwords, client secrets, webhook signing secrets).
public enum RandomSecret {
    /// `bytes` random bytes from the system generator, as unpadded URL-safe base64.
    public static func urlSafe(bytes: Int) -> String {
        let data = SymmetricKey(size: .init(bitCount: bytes * 8)).withUnsafeBytes { Data($0) }
        return data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
