import Crypto
import Foundation

/// Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP): HMAC-SHA-1, 6 digits, 30-second steps, which is
/// what authenticator apps expect from an `otpauth://totp/` URI without further parameters.
public struct TOTP: Sendable, Equatable {
    public static let digits = 6
    public static let period: TimeInterval = 30
    /// Steps either side of now that are accepted (clock drift between phone and server).
    public static let window = 1

    /// The shared secret (20 random bytes for new enrolments, the RFC 4226 recommendation).
    public let secret: Data

    public init(secret: Data) { self.secret = secret }

    /// A new random 160-bit secret.
    public static func random() -> TOTP {
        TOTP(secret: SymmetricKey(size: .init(bitCount: 160)).withUnsafeBytes { Data($0) })
    }

    /// The time step that contains `date`.
    public static func step(at date: Date) -> Int64 { Int64((date.timeIntervalSince1970 / period).rounded(.down)) }

    /// The code for one time step (RFC 4226 dynamic truncation), zero-padded.
    public func code(step: Int64, digits: Int = TOTP.digits) -> String {
        var counter = UInt64(bitPattern: step).bigEndian
        let message = withUnsafeBytes(of: &counter) { Data($0) }
        let mac = Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: SymmetricKey(data: secret)))
        let offset = Int(mac[mac.count - 1] & 0x0f)
        let binary = (UInt32(mac[offset] & 0x7f) << 24) | (UInt32(mac[offset + 1]) << 16) | (UInt32(mac[offset + 2]) << 8) | UInt32(mac[offset + 3])
        var modulus: UInt32 = 1
        for _ in 0..<digits { modulus *= 10 }
        let value = String(binary % modulus)
        return String(repeating: "0", count: max(0, digits - value.count)) + value
    }

    /// The code at `date`.
    public func code(at date: Date = Date()) -> String { code(step: Self.step(at: date)) }

    /// The step a code matches within ``window`` of `date`, or `nil`. Steps at or before `usedStep` are refused, so a
    /// code cannot be replayed (RFC 6238 §5.2). Comparison is constant-time per candidate.
    public func match(_ candidate: String, at date: Date = Date(), after usedStep: Int64 = .min) -> Int64? {
        let given = Array(candidate.utf8)
        guard given.count == Self.digits, given.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        let now = Self.step(at: date)
        var found: Int64? = nil
        for s in (now - Int64(Self.window))...(now + Int64(Self.window)) where s > usedStep {
            let expected = Array(code(step: s).utf8)
            var d: UInt8 = 0
            for i in 0..<expected.count { d |= expected[i] ^ given[i] }
            if d == 0, found == nil { found = s }
        }
        return found
    }

    /// The secret in RFC 4648 base32 without padding, as authenticator apps take it.
    public var base32: String { Base32.encode(secret) }

    /// The `otpauth://` URI an authenticator app scans as a QR code.
    public func provisioningURI(issuer: String, account: String) -> String {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        let i = issuer.addingPercentEncoding(withAllowedCharacters: allowed) ?? "SafeRx"
        let a = account.addingPercentEncoding(withAllowedCharacters: allowed) ?? "account"
        return "otpauth://totp/\(i):\(a)?secret=\(base32)&issuer=\(i)&algorithm=SHA1&digits=\(Self.digits)&period=\(Int(Self.period))"
    }
}

/// RFC 4648 base32 (upper case, no padding on output; padding, spaces and case ignored on input).
public enum Base32 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    public static func encode(_ data: Data) -> String {
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for byte in data {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                out.append(alphabet[Int((buffer >> UInt32(bits - 5)) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: String) -> Data? {
        var out = Data()
        var buffer: UInt32 = 0
        var bits = 0
        for c in text.uppercased().utf8 where c != 0x3D && c != 0x20 {
            guard let v = alphabet.firstIndex(of: c) else { return nil }
            buffer = (buffer << 5) | UInt32(v)
            bits += 5
            if bits >= 8 {
                out.append(UInt8((buffer >> UInt32(bits - 8)) & 0xff))
                bits -= 8
            }
        }
        return out
    }
}
