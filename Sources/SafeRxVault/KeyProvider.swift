import Crypto
import Foundation
import Synchronization

/// Where the master key (the key-encryption key at the top of SafeRx's hierarchy) lives.
///
/// The master key only wraps and unwraps other keys (tenant keys and service keys); it never encrypts data and is
/// never stored in the data directory. ``FileKeyProvider`` is the default; a cloud KMS or an HSM plugs in by
/// implementing this protocol, so that the master key never leaves it.
public protocol KeyProvider: Sendable {
    /// The id of the master key that new wraps use: a fingerprint, or a KMS key name and version.
    var keyID: String { get }
    /// Wraps a key under the current master key, bound to `context`, and names the master key it used (in one step,
    /// so that a rotation in between cannot mislabel it).
    func wrap(_ key: SymmetricKey, context: String) throws(VaultError) -> WrappedKey
    /// Unwraps a key that was wrapped under master key `keyID`, which may be an earlier one the provider still holds.
    func unwrap(_ wrapped: Data, keyID: String, context: String) throws(VaultError) -> SymmetricKey
}

/// A key wrapped under a master key, and the id of that master key.
public struct WrappedKey: Sendable {
    public var masterKeyID: String
    public var data: Data

    public init(masterKeyID: String, data: Data) {
        self.masterKeyID = masterKeyID
        self.data = data
    }
}

/// The master key in a file outside the data directory: `--key-file`, `SAFERX_MASTER_KEY_FILE`, or
/// `~/.config/saferx/master.key`, one line of base64 (32 random bytes), mode 0600.
///
/// During and after a rotation (``rotate()``), the previous key stays beside it as `<file>.previous`, and every
/// retired key as `<file>.previous-<id>` (a second rotation never overwrites the key an older backup needs), so that
/// data wrapped under them can still be opened; delete such a file once no backup made under that key is kept.
public final class FileKeyProvider: KeyProvider {
    public let path: URL
    struct State {
        var current: (id: String, key: SymmetricKey)
        var others: [String: SymmetricKey]
        /// The key file's modification time when it was read, to notice a rotation by another process.
        var loadedAt: Double = 0
    }
    let state: Mutex<State>
    /// True in the process that is rotating, between ``rotate()`` and ``commitRotation()``.
    let rotating = Mutex(false)
    /// The rotation lock (`<file>.lock`, flock) while this process holds it.
    let lockFD = Mutex<Int32>(-1)

    /// The default location: `$SAFERX_MASTER_KEY_FILE`, else `~/.config/saferx/master.key`.
    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let p = environment["SAFERX_MASTER_KEY_FILE"], !p.isEmpty { return URL(fileURLWithPath: p) }
        let home = environment["HOME"].map { URL(fileURLWithPath: $0) } ?? FileManager.default.homeDirectoryForCurrentUser
        return home.appendingPathComponent(".config/saferx/master.key")
    }

    /// Loads the key at `path`; creates it (mode 0600, directory 0700) when it is missing and `create` is true.
    /// - Parameter expectedKeyID: named in the error when the file is missing (the key the data needs).
    public init(path: URL, create: Bool, expectedKeyID: String? = nil) throws(VaultError) {
        self.path = path
        let fm = FileManager.default
        if !fm.fileExists(atPath: path.path) {
            guard create else { throw .missingMasterKey(path: path.path, expectedKeyID: expectedKeyID) }
            let key = Envelope.newKey()
            try Self.write(key, to: path)
        }
        let key = try Self.read(path)
        var others: [String: SymmetricKey] = [:]
        for suffix in [".previous", ".new"] + Self.archivedSuffixes(of: path) {
            let p = URL(fileURLWithPath: path.path + suffix)
            if fm.fileExists(atPath: p.path) {
                let k = try Self.read(p)
                others[Self.fingerprint(k)] = k
            }
        }
        state = Mutex(State(current: (Self.fingerprint(key), key), others: others, loadedAt: Self.modified(path)))
    }

    static func modified(_ url: URL) -> Double {
        var st = stat()
        guard stat(url.path, &st) == 0 else { return 0 }
        return Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
    }

    public var keyID: String { state.withLock { $0.current.id } }

    /// Every master key id this provider can unwrap with (current first).
    public var knownKeyIDs: [String] { state.withLock { [$0.current.id] + $0.others.keys.sorted() } }

    public func wrap(_ key: SymmetricKey, context: String) throws(VaultError) -> WrappedKey {
        // Wrapping is rare (a new tenant, a rotation); make sure it uses the key now in the file, which another
        // process may have rotated. A wrap that still lands under the outgoing key during a rotation is re-wrapped
        // by the rotation's final sweep (KeyRing.rotateMaster).
        if !rotating.withLock({ $0 }), state.withLock({ $0.loadedAt }) != Self.modified(path) {
            try reload()
        }
        let (id, master) = state.withLock { ($0.current.id, $0.current.key) }
        return WrappedKey(masterKeyID: id, data: Envelope.wrap(key, under: master, context: context))
    }

    public func unwrap(_ wrapped: Data, keyID: String, context: String) throws(VaultError) -> SymmetricKey {
        if let master = lookup(keyID) { return try Envelope.unwrap(wrapped, under: master, context: context) }
        // Another process may have rotated the key file since it was read (`saferx keys rotate --master`).
        try reload()
        guard let master = lookup(keyID) else { throw .wrongMasterKey(expected: keyID, given: self.keyID) }
        return try Envelope.unwrap(wrapped, under: master, context: context)
    }

    func lookup(_ id: String) -> SymmetricKey? {
        state.withLock { s in s.current.id == id ? s.current.key : s.others[id] }
    }

    /// Reads the key files again, keeping every key already known (so nothing readable becomes unreadable). While
    /// this process is rotating, its new key stays current.
    func reload() throws(VaultError) {
        let fresh = try FileKeyProvider(path: path, create: false)
        let s = fresh.state.withLock { $0 }
        let keepCurrent = rotating.withLock { $0 }
        state.withLock { mine in
            var known = mine.others
            known[mine.current.id] = mine.current.key
            for (id, key) in s.others { known[id] = key }
            known[s.current.id] = s.current.key
            if !keepCurrent { mine.current = s.current }
            known[mine.current.id] = nil
            mine.others = known
            mine.loadedAt = s.loadedAt
        }
    }

    /// Starts a rotation: takes the rotation lock (`<file>.lock`; a second rotation, in any process, is refused),
    /// writes a new key to `<file>.new`, and makes it the key that ``wrap(_:context:)`` uses. Call
    /// ``commitRotation()`` once everything is re-wrapped; until then `<file>` is untouched.
    public func rotate() throws(VaultError) {
        try lock(blocking: false)
        let fresh = Envelope.newKey()
        do {
            try Self.write(fresh, to: URL(fileURLWithPath: path.path + ".new"))
        } catch {
            unlock()
            throw error
        }
        rotating.withLock { $0 = true }
        state.withLock { s in
            s.others[s.current.id] = s.current.key
            s.current = (Self.fingerprint(fresh), fresh)
        }
    }

    /// Finishes a rotation: `<file>.previous` becomes a hard link to the old `<file>`, then `<file>.new` is renamed
    /// over `<file>` (atomic), so that at every instant `<file>` holds a usable key. Checks that `<file>.new` holds
    /// the key this process rotated to.
    public func commitRotation() throws(VaultError) {
        defer {
            rotating.withLock { $0 = false }
            unlock()
        }
        try finishPendingRename(expecting: keyID)
        state.withLock { $0.loadedAt = Self.modified(path) }
    }

    /// Ends a rotation that failed before ``commitRotation()``: releases the lock and reads the key files again
    /// (`<file>` stays current; a committed `<file>.new` is adopted by the next open of the store).
    public func abandonRotation() {
        rotating.withLock { $0 = false }
        unlock()
        try? reload()
    }

    func finishPendingRename(expecting id: String) throws(VaultError) {
        let new = path.path + ".new", previous = path.path + ".previous"
        guard FileManager.default.fileExists(atPath: new) else { return }
        guard Self.fingerprint(try Self.read(URL(fileURLWithPath: new))) == id else {
            throw .keyStore("\(new) does not hold the key being committed (\(id)); another rotation interfered. Nothing was renamed.")
        }
        if FileManager.default.fileExists(atPath: path.path) {
            // Every retired key stays as `<file>.previous-<id>` (backups made under it are kept for years); `.previous`
            // names the latest one.
            let old = try Self.read(path)
            let archived = path.path + Self.archiveSuffix(Self.fingerprint(old))
            if !FileManager.default.fileExists(atPath: archived) {
                guard link(path.path, archived) == 0 else { throw .keyStore("could not keep the previous key as \(archived)") }
            }
            unlink(previous)
            guard link(path.path, previous) == 0 else { throw .keyStore("could not keep the previous key as \(previous)") }
        }
        guard rename(new, path.path) == 0 else { throw .keyStore("could not rename \(new) to \(path.path)") }
    }

    /// Makes `keyID` the current key if it is the pending `<file>.new` (a rotation whose database transaction
    /// committed but whose files were not renamed). Returns whether it did.
    public func adoptPending(_ keyID: String) throws(VaultError) -> Bool {
        let newURL = URL(fileURLWithPath: path.path + ".new")
        guard FileManager.default.fileExists(atPath: newURL.path), Self.fingerprint(try Self.read(newURL)) == keyID else { return false }
        try lock(blocking: true)
        defer { unlock() }
        try finishPendingRename(expecting: keyID)
        try reload()
        return self.keyID == keyID
    }

    func lock(blocking: Bool) throws(VaultError) {
        let lockPath = path.path + ".lock"
        let fd = open(lockPath, O_RDWR | O_CREAT, 0o600)
        guard fd >= 0 else { throw .keyStore("cannot open \(lockPath)") }
        if flock(fd, LOCK_EX | (blocking ? 0 : LOCK_NB)) != 0 {
            close(fd)
            throw .keyStore("another key rotation is running (\(lockPath) is locked); try again when it has finished")
        }
        lockFD.withLock { $0 = fd }
    }

    func unlock() {
        let fd = lockFD.withLock { fd -> Int32 in
            defer { fd = -1 }
            return fd
        }
        if fd >= 0 {
            flock(fd, LOCK_UN)
            close(fd)
        }
    }

    /// The suffix of a retired key's file: `.previous-` and the hex digits of its id.
    static func archiveSuffix(_ id: String) -> String { ".previous-" + id.replacingOccurrences(of: "file:", with: "") }

    /// The suffixes of every retired key kept beside `path` (`<file>.previous-<id>`).
    static func archivedSuffixes(of path: URL) -> [String] {
        let dir = path.deletingLastPathComponent().path, base = path.lastPathComponent + ".previous-"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { $0.hasPrefix(base) && !$0.hasSuffix(".tmp") }.map { String($0.dropFirst(path.lastPathComponent.count)) }.sorted()
    }

    /// A public, non-secret id for a master key: `file:` and 16 hex digits of a hash of it.
    public static func fingerprint(_ key: SymmetricKey) -> String {
        let digest = key.withUnsafeBytes { raw -> SHA256.Digest in
            var h = SHA256()
            h.update(data: Data("saferx master key id|".utf8))
            h.update(data: Data(raw))
            return h.finalize()
        }
        return "file:" + digest.prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    static func read(_ url: URL) throws(VaultError) -> SymmetricKey {
        var st = stat()
        guard stat(url.path, &st) == 0 else { throw .badMasterKeyFile(path: url.path, reason: "cannot be read") }
        if st.st_mode & 0o077 != 0 {
            throw .badMasterKeyFile(
                path: url.path, reason: "is readable by others (mode \(String(st.st_mode & 0o777, radix: 8))); run chmod 600 on it")
        }
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw .badMasterKeyFile(path: url.path, reason: "cannot be read")
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let raw = Data(base64Encoded: text), raw.count == 32 else {
            throw .badMasterKeyFile(path: url.path, reason: "does not hold a base64-encoded 256-bit key")
        }
        return SymmetricKey(data: raw)
    }

    static func write(_ key: SymmetricKey, to url: URL) throws(VaultError) {
        let fm = FileManager.default
        let dir = url.deletingLastPathComponent()
        do {
            if !fm.fileExists(atPath: dir.path) {
                try fm.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            }
        } catch {
            throw .keyStore("cannot create \(dir.path)")
        }
        let text = key.withUnsafeBytes { Data($0).base64EncodedString() } + "\n"
        let tmp = url.path + ".tmp"
        _ = fm.createFile(atPath: tmp, contents: nil, attributes: [.posixPermissions: 0o600])
        guard let h = FileHandle(forWritingAtPath: tmp) else { throw .keyStore("cannot write \(tmp)") }
        do {
            try h.write(contentsOf: Data(text.utf8))
            try h.synchronize()
            try h.close()
            if fm.fileExists(atPath: url.path) { try fm.removeItem(at: url) }
            try fm.moveItem(atPath: tmp, toPath: url.path)
        } catch {
            throw .keyStore("cannot write \(url.path)")
        }
    }
}
