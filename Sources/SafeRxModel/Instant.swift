import Foundation

/// Instants as SafeRx writes them everywhere (audit records, resources' `lastUpdated`, API answers):
/// `YYYY-MM-DDThh:mm:ss.sssZ`, UTC, milliseconds, without Foundation's formatters.
public enum Instant {
    /// `d` as `YYYY-MM-DDThh:mm:ss.sssZ`.
    public static func string(_ d: Date) -> String {
        let ms = Int64((d.timeIntervalSince1970 * 1000).rounded(.down))
        var t = time_t(ms / 1000)
        var tm = tm()
        gmtime_r(&t, &tm)
        func pad(_ v: Int32, _ w: Int) -> String {
            let s = String(v)
            return s.count >= w ? s : String(repeating: "0", count: w - s.count) + s
        }
        return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2)).\(pad(Int32(ms % 1000), 3))Z"
    }

    /// Now.
    public static func now() -> String { string(Date()) }

    /// The same instant `years` years ago (calendar years).
    public static func yearsAgo(_ years: Int) -> String {
        string(Calendar(identifier: .gregorian).date(byAdding: .year, value: -years, to: Date()) ?? Date())
    }

    /// Midnight UTC `days` days ago.
    public static func daysAgo(_ days: Int) -> String {
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = TimeZone(identifier: "UTC")!
        return string(utc.startOfDay(for: Date().addingTimeInterval(-Double(days) * 86400)))
    }
}
