import Foundation

/// Charts drawn on the server as SVG markup: no script, no inline `style` (so the page's CSP holds), colours as
/// presentation attributes, every label escaped, and a `<title>` plus a text table beside each chart for screen
/// readers.
public enum SVGChart {
    /// Colour-blind-safe palette (Okabe–Ito).
    static let palette = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]

    public struct Series: Sendable {
        public var name: String
        public var values: [Int]
        public init(name: String, values: [Int]) {
            self.name = name
            self.values = values
        }
    }

    public static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    /// Vertical bars per category (days), stacked by series (roles), with a legend.
    public static func stackedBars(title: String, categories: [String], series: [Series], width: Int = 720, height: Int = 260) -> String {
        let left = 44, bottom = 40, top = 16, legendWidth = 150
        let plotW = width - left - legendWidth - 10, plotH = height - top - bottom
        let totals = categories.indices.map { i in series.reduce(0) { $0 + ($1.values.count > i ? $1.values[i] : 0) } }
        let maxValue = niceMax(totals.max() ?? 0)
        let step = categories.isEmpty ? 0 : Double(plotW) / Double(categories.count)
        var svg = header(title, width, height)
        svg += axis(left: left, top: top, plotW: plotW, plotH: plotH, maxValue: maxValue)
        for (i, label) in categories.enumerated() {
            var y = Double(top + plotH)
            let x = Double(left) + step * Double(i) + step * 0.15
            for (k, s) in series.enumerated() {
                let v = s.values.count > i ? s.values[i] : 0
                guard v > 0 else { continue }
                let h = Double(plotH) * Double(v) / Double(maxValue)
                y -= h
                svg += "<rect x=\"\(fmt(x))\" y=\"\(fmt(y))\" width=\"\(fmt(step * 0.7))\" height=\"\(fmt(h))\" fill=\"\(palette[k % palette.count])\">"
                svg += "<title>\(escape(label)) \(escape(s.name)): \(v)</title></rect>"
            }
            if categories.count <= 16 || i % max(1, categories.count / 8) == 0 {
                svg += "<text x=\"\(fmt(x + step * 0.35))\" y=\"\(height - bottom + 16)\" font-size=\"11\" text-anchor=\"middle\" fill=\"#333\">\(escape(String(label.suffix(5))))</text>"
            }
        }
        for (k, s) in series.enumerated() {
            let y = top + 4 + k * 18
            svg += "<rect x=\"\(width - legendWidth)\" y=\"\(y)\" width=\"12\" height=\"12\" fill=\"\(palette[k % palette.count])\"/>"
            svg += "<text x=\"\(width - legendWidth + 18)\" y=\"\(y + 11)\" font-size=\"12\" fill=\"#222\">\(escape(s.name))</text>"
        }
        return svg + "</svg>"
    }

    /// Horizontal bars, one per labelled value, largest first.
    public static func horizontalBars(title: String, items: [(label: String, value: Int)], width: Int = 720) -> String {
        let rowH = 24, left = 220, top = 8
        let height = max(40, top * 2 + rowH * items.count)
        let maxValue = max(1, items.map(\.value).max() ?? 1)
        var svg = header(title, width, height)
        for (i, item) in items.enumerated() {
            let y = top + i * rowH
            let w = Double(width - left - 60) * Double(item.value) / Double(maxValue)
            svg += "<text x=\"\(left - 8)\" y=\"\(y + 16)\" font-size=\"12\" text-anchor=\"end\" fill=\"#222\">\(escape(String(item.label.prefix(32))))</text>"
            svg += "<rect x=\"\(left)\" y=\"\(y + 4)\" width=\"\(fmt(max(w, 1)))\" height=\"16\" fill=\"\(palette[0])\"><title>\(escape(item.label)): \(item.value)</title></rect>"
            svg += "<text x=\"\(fmt(Double(left) + max(w, 1) + 6))\" y=\"\(y + 16)\" font-size=\"12\" fill=\"#222\">\(item.value)</text>"
        }
        return svg + "</svg>"
    }

    static func header(_ title: String, _ width: Int, _ height: Int) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(width) \(height)\" width=\"100%\" role=\"img\" aria-label=\"\(escape(title))\"><title>\(escape(title))</title>"
    }

    static func axis(left: Int, top: Int, plotW: Int, plotH: Int, maxValue: Int) -> String {
        var s = "<line x1=\"\(left)\" y1=\"\(top + plotH)\" x2=\"\(left + plotW)\" y2=\"\(top + plotH)\" stroke=\"#555\"/>"
        s += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(top + plotH)\" stroke=\"#555\"/>"
        for k in 0...4 {
            let v = maxValue * k / 4
            let y = Double(top + plotH) - Double(plotH) * Double(k) / 4
            s += "<text x=\"\(left - 6)\" y=\"\(fmt(y + 4))\" font-size=\"11\" text-anchor=\"end\" fill=\"#333\">\(v)</text>"
            if k > 0 { s += "<line x1=\"\(left)\" y1=\"\(fmt(y))\" x2=\"\(left + plotW)\" y2=\"\(fmt(y))\" stroke=\"#ddd\"/>" }
        }
        return s
    }

    /// The top of a value axis with four whole-number steps of 1, 2, 3 or 5 × 10ⁿ (9 → 12, 130 → 200).
    static func niceMax(_ value: Int) -> Int {
        let quarter = max(1, (value + 3) / 4)
        var magnitude = 1
        while magnitude * 10 <= quarter { magnitude *= 10 }
        let step = [1, 2, 3, 5, 10].map { $0 * magnitude }.first { $0 >= quarter } ?? magnitude * 10
        return step * 4
    }

    static func fmt(_ d: Double) -> String { String(format: "%.1f", d) }
}
