import Crypto
import Foundation

/// Files SafeRx hands to a third party (a fulfillment vendor's shipping manifest), encrypted to the recipient's
/// X25519 public key with HPKE (RFC 9180, base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305), so
/// that only the recipient can read them and any RFC 9180 implementation can.
///
/// Layout: the 8 bytes `SRXFILE1`, a 2-byte big-endian length and the recipient id (bound as associated data), the
/// 32-byte encapsulated key, then the ciphertext.
public enum SealedFile {
    static let magic = Data("SRXFILE1".utf8)
    static let info = Data("saferx sealed file v1".utf8)
    static let suite = HPKE.Ciphersuite.Curve25519_SHA256_ChachaPoly

    /// Encrypts `plaintext` to `recipient` (its raw 32-byte X25519 public key).
    public static func seal(_ plaintext: Data, to recipient: Data, recipientID: String) throws(VaultError) -> Data {
        do {
            let key = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: recipient)
            var sender = try HPKE.Sender(recipientKey: key, ciphersuite: suite, info: info)
            let id = Data(recipientID.utf8)
            var header = magic
            header.append(contentsOf: [UInt8(id.count >> 8), UInt8(id.count & 0xFF)])
            header.append(id)
            let ciphertext = try sender.seal(plaintext, authenticating: header)
            return header + sender.encapsulatedKey + ciphertext
        } catch {
            throw .keyStore("cannot encrypt to \(recipientID): the public key is not a 32-byte X25519 key")
        }
    }

    /// Decrypts a sealed file with the recipient's raw 32-byte X25519 private key (what the recipient runs).
    public static func open(_ file: Data, privateKey: Data) throws(VaultError) -> (recipientID: String, plaintext: Data) {
        let bytes = [UInt8](file)
        guard bytes.count > 10 + 32, Data(bytes[0..<8]) == magic else { throw .keyStore("not a SafeRx sealed file") }
        let n = Int(bytes[8]) << 8 | Int(bytes[9])
        guard bytes.count > 10 + n + 32 else { throw .keyStore("sealed file truncated") }
        let header = Data(bytes[0..<(10 + n)])
        let id = String(decoding: bytes[10..<(10 + n)], as: UTF8.self)
        do {
            let key = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: privateKey)
            var recipient = try HPKE.Recipient(
                privateKey: key, ciphersuite: suite, info: info, encapsulatedKey: Data(bytes[(10 + n)..<(10 + n + 32)]))
            return (id, try recipient.open(Data(bytes[(10 + n + 32)...]), authenticating: header))
        } catch {
            throw .keyStore("cannot decrypt: wrong private key, or the file was altered")
        }
    }

    /// SHA-256 of a file, hex: how an exported file is named in the audit log.
    public static func digest(_ file: Data) -> String { SHA256.hash(data: file).map { String(format: "%02x", $0) }.joined() }

    /// A new X25519 key pair (raw private, raw public), for a vendor or a test.
    public static func newKeyPair() -> (privateKey: Data, publicKey: Data) {
        let k = Curve25519.KeyAgreement.PrivateKey()
        return (k.rawRepresentation, k.publicKey.rawRepresentation)
    }
}
