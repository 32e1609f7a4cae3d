import Foundation
import HiveTelemetry

/// An agent's `/stats` page: charts drawn here as SVG (no script, no chart library), one report per
/// range (24 h, 7 d, 30 d). Pure: report in, HTML out.
public enum StatsPage {
    public static func html(agent: String, report r: StatsReport, policies: PolicyEvaluation? = nil) -> String {
        let ranges = StatsRange.all.map { $0.name == r.range ? "<b>\($0.name)</b>" : "<a href=\"stats?range=\($0.name)\">\($0.name)</a>" }
        let failed = r.buckets.map { Double($0.turns - $0.ok) }, ok = r.buckets.map { Double($0.ok) }
        let tokens = r.buckets.reduce(into: [0, 0, 0, 0]) { t, b in
            t[0] += b.inputTokens; t[1] += b.outputTokens; t[2] += b.cacheReadTokens; t[3] += b.cacheWriteTokens
        }
        let perHour = r.bucketSeconds / 3600
        var sections: [String] = []
        sections.append(section("Turns per \(unit(r.bucketSeconds))", r.turns == 0 ? "<p class=\"muted\">no turns in this range</p>" :
            SVG.bars(series: [ok, failed], colors: ["#4a4", "#c44"], names: ["ok", "not ok"], times: r.buckets.map(\.start), format: { "\(Int($0))" })
            + "<p>\(r.turns) turns, \(String(format: "%.2f", Double(r.turns) / (Double(r.buckets.count) * perHour))) an hour</p>"))
        sections.append(section("Turn duration (seconds)",
            SVG.lines(series: [r.buckets.map(\.p50), r.buckets.map(\.p95)], colors: ["#36c", "#c63"], names: ["p50", "p95"],
                      times: r.buckets.map(\.start), format: { String(format: "%.1f", $0) })))
        sections.append(section("Tokens",
            SVG.bars(series: [r.buckets.map { Double($0.inputTokens) }, r.buckets.map { Double($0.outputTokens) },
                              r.buckets.map { Double($0.cacheReadTokens) }, r.buckets.map { Double($0.cacheWriteTokens) }],
                     colors: ["#36c", "#c63", "#9bd", "#e9a"], names: ["input", "output", "cache read", "cache write"],
                     times: r.buckets.map(\.start), format: short)
            + "<p>input \(short(Double(tokens[0]))) · output \(short(Double(tokens[1]))) · cache read \(short(Double(tokens[2]))) · cache write \(short(Double(tokens[3])))</p>"))
        sections.append(section("Cost (USD)",
            SVG.bars(series: [r.buckets.map(\.costUSD)], colors: ["#a6c"], names: ["cost"], times: r.buckets.map(\.start),
                     format: { String(format: "%.2f", $0) })
            + "<p>\(String(format: "%.4f", r.costUSD)) USD in this range</p>"))
        sections.append(section("Top tools", r.tools.isEmpty ? "<p class=\"muted\">no tool calls</p>" :
            SVG.hbars(r.tools.map { ($0.name, Double($0.count)) }, color: "#36c")))
        sections.append(section("Results", r.results.isEmpty ? "<p class=\"muted\">no turns</p>" :
            SVG.hbars(r.results.map { ($0.name, Double($0.count)) }, color: "#4a4")))
        let decisions = r.decisions.map { d in
            "<tr><td>\(HTML.escape(d.action))</td><td>\(d.turns)</td><td>\(d.tokensSaved >= 0 ? "saved" : "cost") \(short(abs(d.tokensSaved)))</td></tr>"
        }.joined()
        sections.append(section("Session decisions", r.decisions.isEmpty ? "<p class=\"muted\">no turns</p>" :
            "<table><tr><th>action</th><th>turns</th><th>tokens vs the other choice (estimated, base-price input)</th></tr>\(decisions)</table>"))
        if let e = policies {
            let rows = e.rows.map { "<tr><td>\(HTML.escape($0.policy))</td><td>\(short($0.tokens))</td><td>\(String(format: "%.4f", $0.usd))</td><td>\(String(format: "%.3f", $0.ratio))</td></tr>" }.joined()
            sections.append(section("Session policies on these turns", e.turns < 2 ? "<p class=\"muted\">too few turns to replay</p>" :
                "<p>The policy \(e.savedUSD >= 0 ? "saved" : "cost") <b>\(String(format: "%.4f", abs(e.savedUSD))) USD</b> against always-continue over \(e.turns) turns "
                + "(input at base price; cache TTL \(Int(e.ttl)) s, writes \(e.write)x).</p>"
                + "<table><tr><th>policy</th><th>input tokens</th><th>USD</th><th>÷ optimum</th></tr>\(rows)</table>"))
        }
        let rem = r.reminders.map { "<p>\($0.attempts) attempts · \($0.successes) delivered · \($0.failures) failed</p>"
            + ($0.attempts > 0 ? SVG.hbars([("delivered", Double($0.successes)), ("failed", Double($0.failures))], color: "#a6c") : "") }
            ?? "<p class=\"muted\">core could not be asked</p>"
        sections.append(section("Reminders", rem))
        return """
            <!doctype html><html><head><meta charset="utf-8"><title>\(HTML.escape(agent)): stats</title><style>\(css)</style></head><body>
            <h1>\(HTML.escape(agent)) · stats</h1><p><a href="./">← back</a> · \(ranges.joined(separator: " · ")) · <a href="stats.json?range=\(r.range)">json</a></p>
            \(sections.joined(separator: "\n"))
            </body></html>
            """
    }

    static let css = """
        body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;max-width:60em}h2{font-size:1.05em;margin-top:1.5em}
        .muted{color:#888}table{border-collapse:collapse}td,th{padding:.2em .6em;border-bottom:1px solid #eee;text-align:left}
        svg{display:block;margin:.3em 0}svg text{font:11px system-ui,sans-serif;fill:#555}
        """

    static func section(_ title: String, _ body: String) -> String { "<section><h2>\(HTML.escape(title))</h2>\(body)</section>" }

    static func unit(_ seconds: Double) -> String { seconds >= 86_400 ? "day" : seconds >= 7200 ? "\(Int(seconds / 3600)) hours" : "hour" }

    static func short(_ v: Double) -> String {
        v >= 1e9 ? String(format: "%.1fG", v / 1e9) : v >= 1e6 ? String(format: "%.1fM", v / 1e6) : v >= 1e4 ? String(format: "%.0fk", v / 1e3) : String(format: "%.0f", v)
    }

}

/// Server-side SVG charts: stacked bars, lines and horizontal bars, with a value axis and time labels.
enum SVG {
    static let width = 640.0, height = 160.0, left = 48.0, bottom = 20.0, top = 8.0

    /// Stacked bars, one per time bucket.
    static func bars(series: [[Double]], colors: [String], names: [String], times: [Double], format: (Double) -> String) -> String {
        let n = times.count
        let totals = (0..<n).map { i in series.reduce(0) { $0 + $1[i] } }
        let maxV = nice(totals.max() ?? 0)
        let slot = (width - left) / Double(max(n, 1))
        var out = frame(maxV: maxV, format: format, times: times)
        for i in 0..<n {
            var y = height - bottom
            for (s, values) in series.enumerated() where values[i] > 0 {
                let h = (height - bottom - top) * values[i] / maxV
                y -= h
                out += "<rect x=\"\(f(left + Double(i) * slot + 1))\" y=\"\(f(y))\" width=\"\(f(max(1, slot - 2)))\" height=\"\(f(h))\" fill=\"\(colors[s])\"><title>\(SVG.label(times[i])) \(HTML.escape(names[s])): \(format(values[i]))</title></rect>"
            }
        }
        return out + "</svg>" + legend(names, colors)
    }

    /// Lines, one per series; nil values leave gaps.
    static func lines(series: [[Double?]], colors: [String], names: [String], times: [Double], format: (Double) -> String) -> String {
        let n = times.count
        let maxV = nice(series.flatMap { $0.compactMap { $0 } }.max() ?? 0)
        let slot = (width - left) / Double(max(n, 1))
        var out = frame(maxV: maxV, format: format, times: times)
        for (s, values) in series.enumerated() {
            let points = values.enumerated().compactMap { i, v in
                v.map { (left + (Double(i) + 0.5) * slot, height - bottom - (height - bottom - top) * $0 / maxV) }
            }
            if points.count > 1 {
                out += "<polyline fill=\"none\" stroke=\"\(colors[s])\" stroke-width=\"2\" points=\"\(points.map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " "))\"/>"
            }
            for (i, v) in values.enumerated() {
                guard let v else { continue }
                out += "<circle cx=\"\(f(left + (Double(i) + 0.5) * slot))\" cy=\"\(f(height - bottom - (height - bottom - top) * v / maxV))\" r=\"2.5\" fill=\"\(colors[s])\"><title>\(SVG.label(times[i])) \(HTML.escape(names[s])): \(format(v))</title></circle>"
            }
        }
        return out + "</svg>" + legend(names, colors)
    }

    /// Horizontal bars with their labels and values.
    static func hbars(_ rows: [(String, Double)], color: String) -> String {
        let maxV = max(rows.map(\.1).max() ?? 0, 1)
        let row = 20.0, labelWidth = 180.0
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(Double(rows.count) * row + 4))\" role=\"img\">"
        for (i, (name, v)) in rows.enumerated() {
            let y = Double(i) * row + 2
            let w = (width - labelWidth - 60) * v / maxV
            out += "<text x=\"0\" y=\"\(f(y + 13))\">\(HTML.escape(String(name.prefix(28))))</text>"
            out += "<rect x=\"\(f(labelWidth))\" y=\"\(f(y + 2))\" width=\"\(f(max(w, 1)))\" height=\"14\" fill=\"\(color)\"/>"
            out += "<text x=\"\(f(labelWidth + w + 4))\" y=\"\(f(y + 13))\">\(Int(v))</text>"
        }
        return out + "</svg>"
    }

    /// The opening tag, the value axis (0 and the top value) and time labels under the first, middle and last bar.
    static func frame(maxV: Double, format: (Double) -> String, times: [Double]) -> String {
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\">"
        out += "<line x1=\"\(f(left))\" y1=\"\(f(height - bottom))\" x2=\"\(f(width))\" y2=\"\(f(height - bottom))\" stroke=\"#bbb\"/>"
        out += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(width))\" y2=\"\(f(top))\" stroke=\"#eee\"/>"
        out += "<text x=\"\(f(left - 4))\" y=\"\(f(top + 8))\" text-anchor=\"end\">\(format(maxV))</text>"
        out += "<text x=\"\(f(left - 4))\" y=\"\(f(height - bottom))\" text-anchor=\"end\">0</text>"
        let slot = (width - left) / Double(max(times.count, 1))
        for i in Set([0, times.count / 2, times.count - 1]).sorted() where times.indices.contains(i) {
            out += "<text x=\"\(f(left + Double(i) * slot))\" y=\"\(f(height - 5))\">\(label(times[i]))</text>"
        }
        return out
    }

    static func legend(_ names: [String], _ colors: [String]) -> String {
        "<div>" + zip(names, colors).map { "<span style=\"color:\($1)\">■</span> \(HTML.escape($0))" }.joined(separator: " &nbsp; ") + "</div>"
    }

    /// A round number at or above `v` (1, 2 or 5 times a power of ten), so the axis reads well; 1 for 0.
    static func nice(_ v: Double) -> Double {
        guard v > 0 else { return 1 }
        let p = pow(10, floor(log10(v)))
        for m in [1.0, 2, 5, 10] where m * p >= v { return m * p }
        return 10 * p
    }

    /// A bucket's start as MM-dd HH:mm, local time (by hand: a DateFormatter per label cost more than the chart).
    static func label(_ t: Double) -> String {
        var time = time_t(t)
        var parts = tm()
        localtime_r(&time, &parts)
        return String(format: "%02d-%02d %02d:%02d", parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min)
    }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }
}
