import Crypto
import Foundation
import SafeRxModel

/// Errors from the key store. Never carries key material or plaintext.
public enum VaultError: Error, Sendable, CustomStringConvertible {
    case keyFile(String)
    case decrypt

    public var description: String {
        switch self {
        case .keyFile(let m): "key store: \(m)"
        case .decrypt: "ciphertext failed authentication"
        }
    }
}

/// SafeRx's keys, kept in `<data>/keys/` (mode 0700, files 0600), apart from the database files.
///
/// - the data key encrypts every stored resource (AES-256-GCM, bound to its row by associated data);
/// - the index key blinds searchable PHI (HMAC-SHA256), so names and identifiers never sit in the database in clear;
/// - the token key signs access tokens (Ed25519);
/// - the audit key signs audit checkpoints (Ed25519).
public struct Vault: Sendable {
    public let dataKey: SymmetricKey
    public let indexKey: SymmetricKey
    public let tokenKey: Curve25519.Signing.PrivateKey
    public let auditKey: Curve25519.Signing.PrivateKey
    public let directory: URL

    /// Opens the key store under `dataDirectory`, creating keys that do not exist yet.
    public static func open(dataDirectory: URL) throws(VaultError) -> Vault {
        let dir = dataDirectory.appendingPathComponent("keys", isDirectory: true)
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try fm.setAttributes([.posixPermissions: 0o700], ofItemAtPath: dir.path)
        } catch {
            throw .keyFile("cannot create \(dir.path)")
        }
        func load(_ name: String, make: () -> Data) throws(VaultError) -> Data {
            let url = dir.appendingPathComponent(name)
            if let d = try? Data(contentsOf: url) {
                guard d.count == 32 else { throw .keyFile("\(name) has the wrong length") }
                return d
            }
            let d = make()
            guard fm.createFile(atPath: url.path, contents: d, attributes: [.posixPermissions: 0o600]) else {
                throw .keyFile("cannot write \(url.path)")
            }
            return d
        }
        let random = { SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) } }
        let dataKey = try load("data.key", make: random)
        let indexKey = try load("index.key", make: random)
        let tokenRaw = try load("token-ed25519.key") { Curve25519.Signing.PrivateKey().rawRepresentation }
        let auditRaw = try load("audit-ed25519.key") { Curve25519.Signing.PrivateKey().rawRepresentation }
        do {
            return Vault(
                dataKey: SymmetricKey(data: dataKey), indexKey: SymmetricKey(data: indexKey),
                tokenKey: try .init(rawRepresentation: tokenRaw), auditKey: try .init(rawRepresentation: auditRaw),
                directory: dir)
        } catch {
            throw .keyFile("a signing key is corrupt")
        }
    }

    /// Encrypts `plaintext`, binding it to `context` (for example `tenant/Type/id/version`).
    public func seal(_ plaintext: Data, context: String) -> Data {
        // AES.GCM.seal only throws for invalid nonce or key sizes, which cannot happen here.
        let box = try! AES.GCM.seal(plaintext, using: dataKey, authenticating: Data(context.utf8))
        var out = Data([1])  // key version
        out.append(box.combined!)
        return out
    }

    /// Decrypts what ``seal(_:context:)`` produced for the same `context`.
    public func open(_ ciphertext: Data, context: String) throws(VaultError) -> Data {
        guard ciphertext.first == 1 else { throw .decrypt }
        do {
            let box = try AES.GCM.SealedBox(combined: ciphertext.dropFirst())
            return try AES.GCM.open(box, using: dataKey, authenticating: Data(context.utf8))
        } catch {
            throw .decrypt
        }
    }

    /// A blind index token: HMAC over the parameter and value, so equal values match and nothing else is revealed.
    public func blindToken(parameter: String, value: String) -> String {
        var h = HMAC<SHA256>(key: indexKey)
        h.update(data: Data(parameter.utf8))
        h.update(data: Data([0]))
        h.update(data: Data(value.utf8))
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in Data(h.finalize()).prefix(16) {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The stored form of an index term: blinded if sensitive, else as is.
    public func indexValue(_ term: IndexTerm) -> String {
        term.sensitive ? blindToken(parameter: term.parameter, value: term.value) : term.value
    }
}
