/// A calendar day (proleptic Gregorian, no time zone): deadlines counted in calendar days, across leap days and year
/// ends, without Foundation's calendars.
public struct CivilDate: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let year: Int
    public let month: Int
    public let day: Int

    /// `nil` unless `year-month-day` is a real day.
    public init?(year: Int, month: Int, day: Int) {
        guard (1...12).contains(month), day >= 1, day <= Self.daysIn(month: month, year: year) else { return nil }
        self.year = year
        self.month = month
        self.day = day
    }

    /// Parses `YYYY-MM-DD` (and the date part of a longer ISO timestamp).
    public init?(_ text: String) {
        let b = Array(text.utf8)
        guard b.count >= 10, b[4] == 0x2D, b[7] == 0x2D else { return nil }
        func num(_ r: Range<Int>) -> Int? {
            var v = 0
            for i in r {
                guard b[i] >= 0x30, b[i] <= 0x39 else { return nil }
                v = v * 10 + Int(b[i] - 0x30)
            }
            return v
        }
        guard b.count == 10 || b[10] == 0x54, let y = num(0..<4), let m = num(5..<7), let d = num(8..<10) else { return nil }
        self.init(year: y, month: m, day: d)
    }

    public static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    public static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01.
    public var ordinal: Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The day `ordinal` days after 1970-01-01.
    public init(ordinal: Int) {
        let z = ordinal + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        self.year = yoe + era * 400 + (m <= 2 ? 1 : 0)
        self.month = m
        self.day = d
    }

    public func adding(days n: Int) -> CivilDate { CivilDate(ordinal: ordinal + n) }

    /// Calendar days from `self` to `other`.
    public func days(until other: CivilDate) -> Int { other.ordinal - ordinal }

    /// Monday–Friday (no holidays).
    public var isWeekday: Bool {
        let w = ((ordinal % 7) + 7 + 3) % 7  // 1970-01-01 was a Thursday: 0 = Monday
        return w < 5
    }

    /// `n` business days (Monday–Friday) after this day.
    public func adding(businessDays n: Int) -> CivilDate {
        var d = self
        var left = n
        while left > 0 {
            d = d.adding(days: 1)
            if d.isWeekday { left -= 1 }
        }
        return d
    }

    public static func < (a: CivilDate, b: CivilDate) -> Bool { a.ordinal < b.ordinal }

    public var description: String {
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(year)-\(two(month))-\(two(day))"
    }

    /// "March 1, 2028".
    public var longForm: String {
        let names = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
        return "\(names[month - 1]) \(day), \(year)"
    }
}
