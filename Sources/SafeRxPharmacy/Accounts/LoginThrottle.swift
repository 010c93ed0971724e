import Dispatch
import Foundation
import HummingbirdBcrypt
import SafeRxModel

/// Runs bcrypt off Swift's cooperative thread pool (on Dispatch threads), at most `limit` at a time. A few parallel
/// sign-ins on two cores would otherwise occupy every cooperative thread for a quarter of a second each and stall
/// every other request. When more than `queueLimit` are waiting, the next one is refused with 503 and `Retry-After`
/// instead of queueing without bound.
final class PasswordWork: Sendable {
    let gate: WorkGate
    let queue = DispatchQueue(label: "saferx.bcrypt", qos: .userInitiated, attributes: .concurrent)

    init(limit: Int = max(1, ProcessInfo.processInfo.activeProcessorCount), queueLimit: Int = 64) {
        gate = WorkGate(slots: limit, queueLimit: queueLimit)
    }

    func verify(_ password: String, hash: String) async throws(FHIRError) -> Bool {
        try await run { Bcrypt.verify(password, hash: hash) }
    }

    func hash(_ password: String, cost: UInt8) async throws(FHIRError) -> String {
        try await run { Bcrypt.hash(password, cost: cost) }
    }

    private func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async throws(FHIRError) -> T {
        guard await gate.enter() else {
            throw FHIRError(kind: .unavailable, code: "throttled", diagnostics: "Too many sign-ins at once; try again in a second", retryAfter: 1)
        }
        let result = await withCheckedContinuation { (c: CheckedContinuation<T, Never>) in
            queue.async { c.resume(returning: work()) }
        }
        await gate.leave()
        return result
    }
}

/// A counting semaphore for async code with a bounded queue.
actor WorkGate {
    var slots: Int
    let queueLimit: Int
    var waiters: [CheckedContinuation<Void, Never>] = []

    init(slots: Int, queueLimit: Int) {
        self.slots = slots
        self.queueLimit = queueLimit
    }

    /// Takes a slot, waiting for one; `false` when the queue is full.
    func enter() async -> Bool {
        if slots > 0 {
            slots -= 1
            return true
        }
        guard waiters.count < queueLimit else { return false }
        await withCheckedContinuation { waiters.append($0) }
        return true
    }

    func leave() {
        if waiters.isEmpty { slots += 1 } else { waiters.removeFirst().resume() }
    }
}

/// Failed sign-ins, counted so that nobody can lock a real user out.
///
/// A lock is per account *and* source address: five wrong passwords from one address lock that account for that
/// address only (15 minutes), so an attacker who guesses from anywhere never locks the real user out from their own
/// device. Per account over all addresses (a distributed guess) failures only add a delay, growing to a few
/// seconds, never a lock. Unknown usernames are treated exactly like real ones (the answer never tells which exist).
/// Kept in memory: a restart forgets counts, which errs toward letting the real user in.
actor LoginThrottle {
    struct Entry {
        var count: Int
        var lockedUntil: TimeInterval
        var last: TimeInterval
    }
    var bySource: [String: Entry] = [:]
    var byAccount: [String: Entry] = [:]
    static let capacity = 200_000
    /// Failures older than this are forgotten.
    static let memory: TimeInterval = 3600

    /// Whether the account is locked for this source, and until when.
    func locked(account: String, source: String, now: TimeInterval) -> TimeInterval? {
        guard let e = bySource[account + "|" + source], e.lockedUntil > now else { return nil }
        return e.lockedUntil
    }

    /// Records a failure. Returns the delay to add before answering (seconds).
    func fail(account: String, source: String, now: TimeInterval) -> Double {
        if bySource.count > Self.capacity { bySource = bySource.filter { now - $0.value.last < Self.memory } }
        if byAccount.count > Self.capacity { byAccount = byAccount.filter { now - $0.value.last < Self.memory } }
        let key = account + "|" + source
        var s = bySource[key].flatMap { now - $0.last < Self.memory ? $0 : nil } ?? Entry(count: 0, lockedUntil: 0, last: now)
        s.count += 1
        s.last = now
        if s.count >= AuthService.lockAfter { s.lockedUntil = now + AuthService.lockDuration }
        bySource[key] = s
        var a = byAccount[account].flatMap { now - $0.last < Self.memory ? $0 : nil } ?? Entry(count: 0, lockedUntil: 0, last: now)
        a.count += 1
        a.last = now
        byAccount[account] = a
        // From this source: 0.25 s per failure after the third, at most 2 s. Over all sources: after 20 failures
        // in an hour, 0.1 s more per failure, at most 3 s.
        let local = s.count >= AuthService.slowAfter ? min(0.25 * Double(s.count - AuthService.slowAfter + 1), 2) : 0
        let global = a.count > 20 ? min(0.1 * Double(a.count - 20), 3) : 0
        return local + global
    }

    /// A successful sign-in from this source clears its count (not other sources').
    func succeed(account: String, source: String) {
        bySource[account + "|" + source] = nil
    }
}
