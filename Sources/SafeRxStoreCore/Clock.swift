import Foundation
import Synchronization

/// The time SafeRx decides by: when a token, a caregiver grant or an idempotency key expires, whether a refill is
/// too soon, when a webhook is due, what a new record is stamped with. Services and the gate read it instead of
/// `Date()`, so that tests can move time (``ManualClock``) instead of waiting for it.
///
/// The audit log has its own clock (a simulated workday stamps records at simulated times while tokens live in real
/// time); by default both are the system clock.
public struct PharmacyClock: Sendable {
    private let read: @Sendable () -> Date

    /// A clock that reads `read`.
    public init(_ read: @escaping @Sendable () -> Date) { self.read = read }

    /// The machine's clock.
    public static let system = PharmacyClock { Date() }

    /// The current time.
    public var now: Date { read() }
}

/// A clock that moves only when told to (tests, simulations).
public final class ManualClock: Sendable {
    private let time: Mutex<Date>

    /// - parameter start: the time the clock shows until it is moved.
    public init(_ start: Date) { time = Mutex(start) }

    /// The time the clock shows.
    public var now: Date { time.withLock { $0 } }

    /// Moves the clock forward by `interval` seconds.
    public func advance(_ interval: TimeInterval) { time.withLock { $0 = $0.addingTimeInterval(interval) } }

    /// Sets the clock to `date`.
    public func set(_ date: Date) { time.withLock { $0 = date } }

    /// The clock as services take it.
    public var clock: PharmacyClock { PharmacyClock { [self] in now } }
}
