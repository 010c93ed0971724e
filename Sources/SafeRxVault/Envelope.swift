import Crypto
import Foundation

/// AES-256-GCM sealing with a small versioned header, used for every ciphertext SafeRx stores.
///
/// Layout: `0x02 | key version (UInt32, big-endian) | nonce (12) | ciphertext | tag (16)`. The associated data
/// (`context`) is not stored: the reader must name the same context (for a resource body
/// `tenant/Type/id/version`), so a ciphertext copied to another row fails authentication instead of decrypting.
public enum Envelope {
    static let format: UInt8 = 2
    public static let overhead = 1 + 4 + 12 + 16

    /// Encrypts `plaintext` under `key` (version `keyVersion`), bound to `context`.
    public static func seal(_ plaintext: some DataProtocol, key: SymmetricKey, keyVersion: UInt32, context: String) -> Data {
        // AES.GCM.seal throws only for invalid key or nonce sizes, which cannot happen with a 256-bit key.
        let box = try! AES.GCM.seal(plaintext, using: key, authenticating: Data(context.utf8))
        var out = Data(capacity: overhead + plaintext.count)
        out.append(format)
        withUnsafeBytes(of: keyVersion.bigEndian) { out.append(contentsOf: $0) }
        out.append(box.combined!)
        return out
    }

    /// The key version a ciphertext names, or `nil` if it is not a SafeRx envelope.
    public static func keyVersion(of ciphertext: Data) -> UInt32? {
        guard ciphertext.count >= overhead, ciphertext.first == format else { return nil }
        let start = ciphertext.startIndex + 1
        return ciphertext[start..<start + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    /// Decrypts what ``seal(_:key:keyVersion:context:)`` produced for the same `context`.
    /// - Parameter what: names the ciphertext in the error (a row, never its content).
    public static func open(_ ciphertext: Data, key: SymmetricKey, context: String, what: @autoclosure () -> String) throws(VaultError) -> Data {
        guard keyVersion(of: ciphertext) != nil else { throw .integrity("\(what()) is not a SafeRx ciphertext") }
        do {
            let box = try AES.GCM.SealedBox(combined: ciphertext.dropFirst(5))
            return try AES.GCM.open(box, using: key, authenticating: Data(context.utf8))
        } catch {
            throw .integrity(what())
        }
    }

    /// Wraps a 256-bit key under another key (AES-256-GCM, bound to `context`).
    public static func wrap(_ key: SymmetricKey, under kek: SymmetricKey, context: String) -> Data {
        key.withUnsafeBytes { seal(Data($0), key: kek, keyVersion: 0, context: "wrap|" + context) }
    }

    /// Unwraps what ``wrap(_:under:context:)`` produced.
    public static func unwrap(_ wrapped: Data, under kek: SymmetricKey, context: String) throws(VaultError) -> SymmetricKey {
        let raw = try open(wrapped, key: kek, context: "wrap|" + context, what: "wrapped key \(context)")
        guard raw.count == 32 else { throw .integrity("wrapped key \(context) has the wrong length") }
        return SymmetricKey(data: raw)
    }

    /// A new random 256-bit key.
    public static func newKey() -> SymmetricKey { SymmetricKey(size: .bits256) }
}
