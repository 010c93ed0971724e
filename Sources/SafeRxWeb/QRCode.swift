// QRCode.swift — a small QR Code (ISO/IEC 18004:2015, Model 2) encoder for the MFA enrolment page.
//
// Written for SafeRx from the standard: byte mode, error correction level M, versions 1–10,
// mask chosen by the standard's penalty rules (section 7.8.3). Pure Swift, no Foundation,
// so the page never needs a script or an image from elsewhere to show the enrolment code.

/// A QR Code symbol: byte mode, error correction level M, versions 1–10 (up to 213 bytes).
///
/// The symbol is immutable once built. Module (x, y) has x growing to the right and y growing
/// downwards, with (0, 0) the top-left corner; `true` means dark.
public struct QRCode: Sendable, Equatable {
    /// Modules per side: `4 * version + 17`, so 21...57.
    public let size: Int
    /// The symbol version, 1...10: the smallest that holds the text at level M.
    public let version: Int
    /// The data mask pattern applied, 0...7.
    public let mask: Int
    /// Row-major dark modules, `size * size`; index `y * size + x`.
    public let modules: [Bool]

    /// Whether the module at column `x`, row `y` is dark.
    /// Coordinates outside the symbol read as light (the quiet zone).
    public subscript(x x: Int, y y: Int) -> Bool {
        guard x >= 0, x < size, y >= 0, y < size else { return false }
        return modules[y * size + x]
    }

    /// The text does not fit the largest symbol this encoder makes.
    public struct TooLong: Error, Sendable, Equatable {
        /// The UTF-8 length of the text.
        public let bytes: Int
        /// The most bytes a version-10, level-M symbol holds in byte mode.
        public let limit: Int
    }

    /// Encodes `text` (as UTF-8, byte mode) in the smallest version that holds it at level M.
    ///
    /// - parameter text: The payload, for example an `otpauth://` URI.
    /// - parameter mask: A fixed mask pattern (0...7) instead of the one the penalty rules
    ///   choose; for tests that compare against another encoder.
    /// - throws: `TooLong` when the text needs more than 213 bytes.
    public init(encoding text: String, mask fixedMask: Int? = nil) throws(QRCode.TooLong) {
        let bytes = Array(text.utf8)
        guard let version = (1...10).first(where: { Self.byteCapacity($0) >= bytes.count }) else {
            throw TooLong(bytes: bytes.count, limit: Self.byteCapacity(10))
        }
        let codewords = Self.interleaved(Self.dataCodewords(bytes, version: version), version: version)
        var grid = Grid(version: version)
        grid.placeFunctionPatterns()
        grid.placeData(codewords)
        let chosen: Int
        if let fixedMask, (0...7).contains(fixedMask) {
            chosen = fixedMask
        } else {
            var best = (mask: 0, penalty: Int.max)
            for candidate in 0...7 {
                var trial = grid
                trial.applyMask(candidate)
                trial.placeFormat(mask: candidate)
                let penalty = trial.penalty()
                if penalty < best.penalty { best = (candidate, penalty) }
            }
            chosen = best.mask
        }
        grid.applyMask(chosen)
        grid.placeFormat(mask: chosen)
        self.version = version
        self.size = grid.size
        self.mask = chosen
        self.modules = grid.dark
    }

    /// The symbol as an inline SVG image (no script, no external reference), for pages whose
    /// Content-Security-Policy forbids anything from elsewhere.
    ///
    /// The image has a white background, a 4-module quiet zone on every side, and all dark
    /// modules in one `<path>` drawn with `shape-rendering="crispEdges"`; its user units are
    /// modules, and `width`/`height` are `scale` CSS pixels per module.
    /// - parameter label: The accessible name; escaped for XML attributes.
    /// - parameter scale: CSS pixels per module (at least 1).
    public func svg(label: String, scale: Int = 4) -> String {
        let quiet = 4
        let side = size + 2 * quiet
        let pixels = side * max(1, scale)
        var path = ""
        for y in 0..<size {
            var x = 0
            while x < size {
                guard self[x: x, y: y] else { x += 1; continue }
                var run = 1
                while self[x: x + run, y: y] { run += 1 }
                path += "M\(x + quiet) \(y + quiet)h\(run)v1h-\(run)z"
                x += run
            }
        }
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(side) \(side)\""
            + " width=\"\(pixels)\" height=\"\(pixels)\" role=\"img\" aria-label=\"\(SVGChart.escape(label))\""
            + " shape-rendering=\"crispEdges\">"
            + "<rect width=\"\(side)\" height=\"\(side)\" fill=\"#fff\"/>"
            + "<path fill=\"#000\" d=\"\(path)\"/>"
            + "</svg>"
    }

    // MARK: - Capacity and error correction tables (level M, versions 1–10)

    /// Level M block structure per version (ISO/IEC 18004 table 9): error correction codewords
    /// per block, and the number of blocks; the data codewords are split as evenly as possible,
    /// shorter blocks first.
    private static let levelM: [(ecPerBlock: Int, blocks: Int)] = [
        (10, 1), (16, 1), (26, 1), (18, 2), (24, 2), (16, 4), (18, 4), (22, 4), (22, 5), (26, 5),
    ]

    /// All codewords (data and error correction) a symbol of `version` holds (table 1).
    private static func totalCodewords(_ version: Int) -> Int {
        [26, 44, 70, 100, 134, 172, 196, 242, 292, 346][version - 1]
    }

    private static func dataCodewordCount(_ version: Int) -> Int {
        let m = levelM[version - 1]
        return totalCodewords(version) - m.ecPerBlock * m.blocks
    }

    /// Bits of the character count indicator in byte mode (table 3): 8 up to version 9, then 16.
    private static func countBits(_ version: Int) -> Int { version <= 9 ? 8 : 16 }

    /// How many bytes fit in byte mode at level M.
    static func byteCapacity(_ version: Int) -> Int {
        (dataCodewordCount(version) * 8 - 4 - countBits(version)) / 8
    }

    // MARK: - Data encoding

    /// Mode indicator, count, data, terminator and pad codewords (sections 7.4.5, 7.4.10).
    private static func dataCodewords(_ bytes: [UInt8], version: Int) -> [UInt8] {
        var bits = BitBuffer()
        bits.append(0b0100, count: 4)                 // byte mode
        bits.append(bytes.count, count: countBits(version))
        for byte in bytes { bits.append(Int(byte), count: 8) }
        let capacity = dataCodewordCount(version) * 8
        bits.append(0, count: min(4, capacity - bits.count))   // terminator
        bits.append(0, count: (8 - bits.count % 8) % 8)          // to a codeword boundary
        var codewords = bits.bytes()
        var pad: UInt8 = 0xEC
        while codewords.count < dataCodewordCount(version) {
            codewords.append(pad)
            pad = pad == 0xEC ? 0x11 : 0xEC
        }
        return codewords
    }

    /// Splits the data into blocks, adds each block's Reed–Solomon codewords and interleaves
    /// them: data codewords column by column across blocks, then error correction codewords
    /// the same way (section 7.6).
    private static func interleaved(_ data: [UInt8], version: Int) -> [UInt8] {
        let m = levelM[version - 1]
        let shortLength = data.count / m.blocks
        let longBlocks = data.count % m.blocks
        let generator = ReedSolomon.generator(degree: m.ecPerBlock)
        var blocks: [[UInt8]] = []
        var eccs: [[UInt8]] = []
        var start = 0
        for index in 0..<m.blocks {
            let length = shortLength + (index >= m.blocks - longBlocks ? 1 : 0)
            let block = Array(data[start..<start + length])
            start += length
            blocks.append(block)
            eccs.append(ReedSolomon.remainder(block, generator: generator))
        }
        var out: [UInt8] = []
        out.reserveCapacity(totalCodewords(version))
        for column in 0..<(shortLength + 1) {
            for block in blocks where column < block.count { out.append(block[column]) }
        }
        for column in 0..<m.ecPerBlock {
            for ecc in eccs { out.append(ecc[column]) }
        }
        return out
    }
}

// MARK: - Bits

private struct BitBuffer {
    private(set) var bits: [Bool] = []
    var count: Int { bits.count }

    /// Appends the low `count` bits of `value`, most significant first.
    mutating func append(_ value: Int, count: Int) {
        guard count > 0 else { return }
        for shift in stride(from: count - 1, through: 0, by: -1) {
            bits.append((value >> shift) & 1 == 1)
        }
    }

    func bytes() -> [UInt8] {
        var out: [UInt8] = []
        var index = 0
        while index < bits.count {
            var byte: UInt8 = 0
            for offset in 0..<8 {
                byte <<= 1
                if index + offset < bits.count, bits[index + offset] { byte |= 1 }
            }
            out.append(byte)
            index += 8
        }
        return out
    }
}

// MARK: - Reed–Solomon over GF(256), field polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11D)

private enum ReedSolomon {
    /// exp[i] = α^i for i in 0..<255 (repeated once so products need no modulo); log is its inverse.
    static let tables: (exp: [UInt8], log: [Int]) = {
        var exp = [UInt8](repeating: 0, count: 510)
        var log = [Int](repeating: 0, count: 256)
        var value = 1
        for power in 0..<255 {
            exp[power] = UInt8(value)
            exp[power + 255] = UInt8(value)
            log[value] = power
            value <<= 1
            if value & 0x100 != 0 { value ^= 0x11D }
        }
        return (exp, log)
    }()

    static func multiply(_ a: UInt8, _ b: UInt8) -> UInt8 {
        guard a != 0, b != 0 else { return 0 }
        return tables.exp[tables.log[Int(a)] + tables.log[Int(b)]]
    }

    /// Coefficients of (x - α^0)(x - α^1)...(x - α^(degree-1)), highest power first, leading 1 omitted.
    static func generator(degree: Int) -> [UInt8] {
        var poly: [UInt8] = [1]                          // highest power first, leading 1 included
        for root in 0..<degree {
            let alpha = tables.exp[root]
            var next = [UInt8](repeating: 0, count: poly.count + 1)
            for (index, coefficient) in poly.enumerated() {
                next[index] ^= coefficient               // times x
                next[index + 1] ^= multiply(coefficient, alpha)   // times α^root (minus is plus in GF(2^8))
            }
            poly = next
        }
        return Array(poly.dropFirst())
    }

    /// The remainder of data(x)·x^n divided by the generator: the error correction codewords.
    static func remainder(_ data: [UInt8], generator: [UInt8]) -> [UInt8] {
        var register = [UInt8](repeating: 0, count: generator.count)
        for byte in data {
            let factor = byte ^ register[0]
            register.removeFirst()
            register.append(0)
            for index in 0..<generator.count {
                register[index] ^= multiply(generator[index], factor)
            }
        }
        return register
    }
}

// MARK: - The module grid

private struct Grid {
    let version: Int
    let size: Int
    var dark: [Bool]
    /// Modules that belong to function patterns (finders, separators, timing, alignment,
    /// format and version information, the dark module): never data, never masked.
    var reserved: [Bool]

    init(version: Int) {
        self.version = version
        self.size = 4 * version + 17
        self.dark = Array(repeating: false, count: size * size)
        self.reserved = Array(repeating: false, count: size * size)
    }

    private mutating func set(_ x: Int, _ y: Int, _ isDark: Bool) {
        dark[y * size + x] = isDark
        reserved[y * size + x] = true
    }

    func isDark(_ x: Int, _ y: Int) -> Bool { dark[y * size + x] }

    /// Centres of alignment patterns on each axis (annex E) for versions 2–10.
    private var alignmentCentres: [Int] {
        switch version {
        case 1: return []
        case 2...6: return [6, size - 7]
        default: return [6, (6 + size - 7) / 2, size - 7]   // versions 7–13 have three; these are evenly spaced
        }
    }

    mutating func placeFunctionPatterns() {
        // Timing patterns: row 6 and column 6, dark on even positions.
        for i in 0..<size {
            set(6, i, i % 2 == 0)
            set(i, 6, i % 2 == 0)
        }
        // Finder patterns with their light separators, at three corners.
        for (cx, cy) in [(3, 3), (size - 4, 3), (3, size - 4)] {
            for dy in -4...4 {
                for dx in -4...4 {
                    let x = cx + dx, y = cy + dy
                    guard x >= 0, x < size, y >= 0, y < size else { continue }
                    let ring = max(abs(dx), abs(dy))
                    set(x, y, ring != 2 && ring != 4)
                }
            }
        }
        // Alignment patterns, except where they would overlap a finder.
        let centres = alignmentCentres
        for (i, cy) in centres.enumerated() {
            for (j, cx) in centres.enumerated() {
                let last = centres.count - 1
                if (i == 0 && j == 0) || (i == 0 && j == last) || (i == last && j == 0) { continue }
                for dy in -2...2 {
                    for dx in -2...2 {
                        set(cx + dx, cy + dy, max(abs(dx), abs(dy)) != 1)
                    }
                }
            }
        }
        // Reserve the format information areas (filled once the mask is known) and the dark module.
        placeFormat(mask: 0)
        // Version information (versions 7 and up): 6 bits of version and 12 of BCH(18,6), twice.
        if version >= 7 {
            let bits = Self.versionBits(version)
            for i in 0..<18 {
                let bit = (bits >> i) & 1 == 1
                let a = size - 11 + i % 3, b = i / 3
                set(a, b, bit)      // above the top-right finder
                set(b, a, bit)      // left of the bottom-left finder
            }
        }
    }

    /// Places the 15 format bits (level M, `mask`) in both copies, and the dark module.
    mutating func placeFormat(mask: Int) {
        let bits = Self.formatBits(mask: mask)
        func bit(_ i: Int) -> Bool { (bits >> i) & 1 == 1 }
        // First copy, around the top-left finder: up column 8, then left along row 8.
        for i in 0...5 { set(8, i, bit(i)) }
        set(8, 7, bit(6))
        set(8, 8, bit(7))
        set(7, 8, bit(8))
        for i in 9...14 { set(14 - i, 8, bit(i)) }
        // Second copy: row 8 under the top-right finder, then column 8 beside the bottom-left one.
        for i in 0...7 { set(size - 1 - i, 8, bit(i)) }
        for i in 8...14 { set(8, size - 15 + i, bit(i)) }
        set(8, size - 8, true)
    }

    /// Level M is 00; the 5 data bits are followed by BCH(15,5) with generator 0x537, XORed with 0x5412.
    static func formatBits(mask: Int) -> Int {
        let data = (0b00 << 3) | mask
        var remainder = data << 10
        for power in stride(from: 14, through: 10, by: -1) where remainder & (1 << power) != 0 {
            remainder ^= 0x537 << (power - 10)
        }
        return ((data << 10) | remainder) ^ 0x5412
    }

    /// The version number followed by BCH(18,6) with generator 0x1F25.
    static func versionBits(_ version: Int) -> Int {
        var remainder = version << 12
        for power in stride(from: 17, through: 12, by: -1) where remainder & (1 << power) != 0 {
            remainder ^= 0x1F25 << (power - 12)
        }
        return (version << 12) | remainder
    }

    /// Places codeword bits, most significant first, in the two-module-wide columns from the
    /// bottom-right corner, alternately upwards and downwards, skipping the vertical timing
    /// pattern and every reserved module (section 7.7.3). Remainder modules stay light.
    mutating func placeData(_ codewords: [UInt8]) {
        let total = codewords.count * 8
        var index = 0
        var upwards = true
        var right = size - 1
        while right > 0 {
            if right == 6 { right = 5 }
            for step in 0..<size {
                let y = upwards ? size - 1 - step : step
                for x in [right, right - 1] where !reserved[y * size + x] {
                    if index < total {
                        dark[y * size + x] = (codewords[index / 8] >> (7 - index % 8)) & 1 == 1
                    }
                    index += 1
                }
            }
            upwards.toggle()
            right -= 2
        }
    }

    /// Inverts the data modules where the mask condition holds (table 10; i is the row, j the column).
    mutating func applyMask(_ mask: Int) {
        for i in 0..<size {
            for j in 0..<size where !reserved[i * size + j] {
                let flip: Bool
                switch mask {
                case 0: flip = (i + j) % 2 == 0
                case 1: flip = i % 2 == 0
                case 2: flip = j % 3 == 0
                case 3: flip = (i + j) % 3 == 0
                case 4: flip = (i / 2 + j / 3) % 2 == 0
                case 5: flip = (i * j) % 2 + (i * j) % 3 == 0
                case 6: flip = ((i * j) % 2 + (i * j) % 3) % 2 == 0
                default: flip = ((i + j) % 2 + (i * j) % 3) % 2 == 0
                }
                if flip { dark[i * size + j].toggle() }
            }
        }
    }

    /// The penalty score of section 7.8.3: runs of five or more, 2×2 blocks, finder-like
    /// 1:1:3:1:1 patterns with four light modules on one side, and the dark proportion.
    func penalty() -> Int {
        var score = 0
        let finderLike: [Bool] = [true, false, true, true, true, false, true]
        func lines(_ transpose: Bool) -> [[Bool]] {
            (0..<size).map { a in (0..<size).map { b in transpose ? isDark(a, b) : isDark(b, a) } }
        }
        for line in lines(false) + lines(true) {
            // N1: adjacent modules of one colour in a run of 5 + k score 3 + k.
            var run = 1
            for k in 1...size {
                if k < size, line[k] == line[k - 1] {
                    run += 1
                } else {
                    if run >= 5 { score += 3 + (run - 5) }
                    run = 1
                }
            }
            // N3: dark-light-dark-dark-dark-light-dark with four light modules before or after
            // (outside the symbol counts as light: it is the quiet zone).
            func light(_ k: Int) -> Bool { k < 0 || k >= size || !line[k] }
            for start in 0...(size - 7) where (0..<7).allSatisfy({ line[start + $0] == finderLike[$0] }) {
                if (1...4).allSatisfy({ light(start - $0) }) { score += 40 }
                if (1...4).allSatisfy({ light(start + 6 + $0) }) { score += 40 }
            }
        }
        // N2: every 2×2 block of one colour scores 3.
        for y in 0..<(size - 1) {
            for x in 0..<(size - 1) {
                let c = isDark(x, y)
                if isDark(x + 1, y) == c, isDark(x, y + 1) == c, isDark(x + 1, y + 1) == c { score += 3 }
            }
        }
        // N4: 10 points for every full 5 % the dark proportion deviates from 50 %.
        let darkCount = dark.reduce(0) { $0 + ($1 ? 1 : 0) }
        let total = size * size
        let deviation = abs(darkCount * 100 - total * 50)          // in hundredths of a module
        score += 10 * (deviation / (total * 5))
        return score
    }
}
