import Foundation
import HiveWire

/// The agent page's network view (`/agent/<n>/network`): what its gated network's gateway let through or
/// refused, newest first, with bytes each way and each model answer's tokens. The rows come from core,
/// which writes them at the host end; the agent cannot forge them, only this page's rendering of them.
enum NetworkPage {
    static func html(agent: String, entries: [GatewayEntry], spend: [GatewaySpend] = [], prices: String = "", error: String? = nil) -> String {
        let time = DateFormatter()
        time.dateFormat = "MM-dd HH:mm:ss"
        let refused = entries.filter { !$0.allowed }.count
        let tokens = entries.compactMap(\.usage).reduce(into: TokenCount()) { $0 += $1 }
        let rows = entries.map { e -> String in
            let usage = e.usage.map { "\($0.input) / \($0.output) / \($0.cacheWriteShort + $0.cacheWriteLong) / \($0.cacheRead)" } ?? ""
            return "<tr class=\"\(e.allowed ? "" : "refused")\"><td>\(time.string(from: Date(timeIntervalSince1970: e.at)))</td><td>\(e.kind.rawValue)</td>"
                + "<td>\(HTML.escape(e.destination))</td><td>\(e.allowed ? "allowed" : "refused")</td><td>\(e.status.map(String.init) ?? "")</td>"
                + "<td>\(e.bytesOut)</td><td>\(e.bytesIn)</td><td>\(usage)</td><td>\(e.usd.map { String(format: "%.4f", $0) } ?? "")</td>"
                + "<td>\(HTML.escape(e.note))</td></tr>"
        }
        let body: String
        if let error {
            body = "<p class=\"err\">\(HTML.escape(error))</p>"
        } else if entries.isEmpty {
            body = "<p class=\"muted\">Nothing through the gateway yet. Only a gated agent's network goes through it (see its cage in <code>hive ls</code>).</p>"
        } else {
            let spent = spend.map { s in String(format: "%@: $%.4f (%d answers)", s.period, s.usd, s.answers)
                + (s.unpriced.isEmpty ? "" : ", not priced: \(s.unpriced.joined(separator: ", "))") }.joined(separator: " · ")
            body = """
                <p>Spend metered by the gateway: \(HTML.escape(spent)) <span class="muted">(prices: \(HTML.escape(prices)))</span></p>
                <p>The newest \(entries.count): \(refused) refused; tokens in these answers: \(tokens.input) in, \(tokens.output) out, \
                \(tokens.cacheWriteShort + tokens.cacheWriteLong) cache writes, \(tokens.cacheRead) cache reads.</p>
                <table><tr><th>at</th><th>kind</th><th>destination</th><th></th><th>status</th><th>bytes out</th><th>bytes in</th>
                <th>tokens in / out / cache w / cache r</th><th>USD</th><th>note</th></tr>
                \(rows.joined(separator: "\n"))</table>
                """
        }
        return """
            <!doctype html><html><head><meta charset="utf-8"><title>\(HTML.escape(agent)): network</title><style>\(StatsPage.css)
            tr.refused td{color:#a22}.err{color:#a22}</style></head><body>
            <h1>\(HTML.escape(agent)) · network</h1><p><a href="./">← back</a> · the model, the forge and the allow-list, as core's gateway saw them</p>
            \(body)
            </body></html>
            """
    }
}
