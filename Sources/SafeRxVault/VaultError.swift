/// What went wrong with a key or a ciphertext. Messages name the key or the row, never key material or plaintext.
public enum VaultError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The master key file does not exist (and this store already holds data sealed under a master key).
    case missingMasterKey(path: String, expectedKeyID: String?)
    /// The master key file exists but is unreadable, malformed or too widely readable.
    case badMasterKeyFile(path: String, reason: String)
    /// The master key given is not the one this store (or backup) was sealed with.
    case wrongMasterKey(expected: String, given: String)
    /// A wrapped key or ciphertext failed authentication: corrupted, or moved from another row.
    case integrity(String)
    /// The data key a ciphertext needs was destroyed (crypto-shredding) or never existed.
    case keyUnavailable(String)
    /// Anything else about the key store: a missing key row, an unwritable file.
    case keyStore(String)

    public var description: String {
        switch self {
        case .missingMasterKey(let path, let expected):
            "master key file not found: \(path)"
                + (expected.map { " (this store is sealed with master key \($0)); pass --key-file or set SAFERX_MASTER_KEY_FILE" } ?? "")
        case .badMasterKeyFile(let path, let reason): "master key file \(path): \(reason)"
        case .wrongMasterKey(let expected, let given):
            "wrong master key: the data is sealed with master key \(expected), but the key given is \(given)"
                + " (a key retired by `keys rotate --master` is kept beside the key file as <key file>.previous-\(expected.hasPrefix("file:") ? String(expected.dropFirst(5)) : expected))"
        case .integrity(let what): "integrity check failed: \(what) (corrupted, or moved from another row)"
        case .keyUnavailable(let what): "key unavailable: \(what)"
        case .keyStore(let m): "key store: \(m)"
        }
    }
}
