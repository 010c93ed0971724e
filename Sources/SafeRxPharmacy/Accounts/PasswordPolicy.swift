import Foundation
import SafeRxModel

/// Password rules after NIST SP 800-63B §3.1.1.2 (memorized secrets): a minimum length, a generous maximum, every
/// printable character and space allowed, no composition rules, no periodic expiry, and a refusal of passwords that
/// are known from breaches, repetitive or sequential, or made of context words (the service, the username).
public struct PasswordPolicy: Sendable {
    public static let minimumLength = 12
    public static let maximumLength = 128

    /// Lower-cased breached passwords (`Resources/breached-passwords.txt`, see its NOTICE.md), or `nil` when the file
    /// is missing from this installation, in which case every new password is refused (fail closed).
    let breached: Set<String>?

    public init(breached: Set<String>?) { self.breached = breached }

    /// The policy with the bundled list.
    public static let standard = PasswordPolicy(breached: loadBundledList())

    static func loadBundledList() -> Set<String>? {
        guard let url = Bundle.module.url(forResource: "breached-passwords", withExtension: "txt"),
            let text = try? String(contentsOf: url, encoding: .utf8)
        else { return nil }
        return Set(text.split(whereSeparator: { $0.isNewline }).map(String.init))
    }

    /// How many entries the breached list holds (0 when missing).
    public var breachedCount: Int { breached?.count ?? 0 }

    /// Throws a 400 that says exactly which rule a new password breaks. `context` are words specific to this account
    /// (username, name) that may not make up the password.
    public func check(_ password: String, context: [String] = []) throws(FHIRError) {
        let length = password.count
        guard length >= Self.minimumLength else {
            throw .invalid("Passwords must be at least \(Self.minimumLength) characters long (a few unrelated words make a good one)")
        }
        guard length <= Self.maximumLength else { throw .invalid("Passwords may be at most \(Self.maximumLength) characters long") }
        guard !password.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) }) else {
            throw .invalid("Passwords may not contain control characters")
        }
        guard let breached else {
            throw .unavailable("The breached-password list is missing from this installation; passwords cannot be set until it is restored")
        }
        let lower = password.lowercased()
        if breached.contains(lower) {
            throw .invalid("This password appears in lists of passwords exposed in data breaches; choose another")
        }
        if Self.isRepetitive(lower) {
            throw .invalid("Passwords may not be one character or one short pattern repeated")
        }
        if Self.isSequential(lower) {
            throw .invalid("Passwords may not be a run of sequential characters such as 123456789012 or abcdefghijkl")
        }
        let words = (["saferx", "pharmacy", "password"] + context.map { $0.lowercased() }).filter { $0.count >= 3 }
        var rest = lower
        for w in words { rest = rest.replacingOccurrences(of: w, with: "") }
        let meaningful = rest.filter { $0.isLetter || $0.isNumber }
        if meaningful.count < 6 {
            throw .invalid("Passwords may not be made of the service name, the word 'password' or your username with a few characters added")
        }
    }

    /// True for one character or a unit of up to four characters repeated (`aaaaaaaaaaaa`, `abcabcabcabc`).
    static func isRepetitive(_ s: String) -> Bool {
        let chars = Array(s)
        for unit in 1...4 where chars.count % unit == 0 && chars.count / unit >= 3 {
            if (unit..<chars.count).allSatisfy({ chars[$0] == chars[$0 - unit] }) { return true }
        }
        return false
    }

    /// True when every character is the previous one plus or minus one (`123456789012` wraps 9→0; `zyxwvu...`).
    static func isSequential(_ s: String) -> Bool {
        let scalars = s.unicodeScalars.map { Int($0.value) }
        guard scalars.count >= 2 else { return false }
        func follows(_ a: Int, _ b: Int, _ d: Int) -> Bool { b - a == d || (a == 0x39 && b == 0x30 && d == 1) || (a == 0x30 && b == 0x39 && d == -1) }
        for d in [1, -1] where zip(scalars, scalars.dropFirst()).allSatisfy({ follows($0, $1, d) }) { return true }
        return false
    }
}
