import Foundation
import HiveTelemetry
import HiveWire

/// One turn of the agent's transcript (`/agent/<n>/turn/<t>`), where a transcript search result leads:
/// each event with its time and kind, and the text a person reads (what the search indexed), the event
/// that matched marked. Everything the agent wrote is escaped.
enum TranscriptPage {
    static func html(agent: String, turn: Int64, events: [LiveEvent], mark: Int64?) -> String {
        let time = DateFormatter()
        time.dateFormat = "yyyy-MM-dd HH:mm:ss"
        let rows = events.compactMap { e -> String? in
            let text = TranscriptText.of(kind: e.kind, body: e.body)
            if text.isEmpty { return nil }
            return "<tr id=\"e\(e.seq)\" class=\"\(e.seq == mark ? "hit" : "")\"><td class=\"muted\">\(time.string(from: Date(timeIntervalSince1970: e.at)))</td>"
                + "<td>\(HTML.escape(e.kind))</td><td><pre>\(HTML.escape(text))</pre></td></tr>"
        }
        let body = rows.isEmpty
            ? "<p class=\"muted\">No event of turn \(turn) is kept (retention may have swept it).</p>"
            : "<table><tr><th>at</th><th>kind</th><th>text</th></tr>\(rows.joined(separator: "\n"))</table>"
        return """
            <!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
            <title>\(HTML.escape(agent)): turn \(turn)</title><style>\(StatsPage.css)
            pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:0}tr.hit td{background:#ffd}</style></head><body>
            <h1>\(HTML.escape(agent)) · turn \(turn)</h1><p><a href="../">← back</a></p>
            \(body)
            </body></html>
            """
    }
}
