import Foundation
import GRDB
import HiveHarness
import HiveTelemetry

extension Bench {
    /// The agent stats page: its aggregates over 24 h / 7 d / 30 d with a month of turns in
    /// turn-stats.sqlite, against reading every row of the range (the floor for a page that loaded rows).
    func statsPage() throws -> String {
        let dir = URL(filePath: String(cString: mkdtemp(strdup("/tmp/hs-XXXXXX"))!))
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appending(path: "turn-stats.sqlite").path
        let store = try TurnStatsStore(path: path)
        let now = Date().timeIntervalSince1970
        let tools = [#"{"mcp__hive__send":1}"#, #"{"Read":3,"Edit":1}"#, #"{"Bash":2,"mcp__hive__recv":1}"#, "{}"]
        // Spread over 30 days, through one transaction (the bench fills; it does not measure inserts).
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            let insert = try db.makeStatement(sql: """
                INSERT INTO turn (started_at, ended_at, model, session_id, wake_source, message_id, result_kind, detail, input_tokens,
                    output_tokens, cache_read_tokens, cache_creation_tokens, context_tokens, context_window, cost_usd, tool_calls,
                    tool_breakdown, session_action, session_reason, estimated_continue_cost, estimated_fresh_cost, exit_status)
                VALUES (?, ?, 'sonnet', 's', 'bob', NULL, ?, NULL, 12, 340, 21000, 800, 22000, 200000, 0.02, 2, ?, ?, 'r', 2100, 25000, 0)
                """)
            for i in 0..<statsTurns {
                let t = now - 30 * 86_400 * Double(i) / Double(statsTurns)
                try insert.execute(arguments: [t, t + Double(i % 90) + 1, i % 50 == 0 ? "failed" : "ok", tools[i % tools.count],
                                               i % 20 == 0 ? "fresh" : "continue"])
            }
        }
        func time(_ runs: Int, _ body: () throws -> Void) rethrows -> [Double] {
            try (0..<runs).map { _ in
                let start = ContinuousClock.now
                try body()
                let d = ContinuousClock.now - start
                return Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
            }.sorted()
        }
        func p50(_ v: [Double]) -> String { String(format: "%.1f ms", v[v.count / 2]) }
        func p95(_ v: [Double]) -> String { String(format: "%.1f ms", v[min(v.count - 1, Int(Double(v.count) * 0.95))]) }
        var rows: [String] = []
        for range in StatsRange.all {
            var html = ""
            let report = try time(20) { _ = try store.report(range, now: now) }
            let page = try time(20) { html = StatsPage.html(agent: "bench", report: try store.report(range, now: now)) }
            let floor = try time(20) { _ = try store.turns(since: now - range.span, limit: Int.max) }
            rows.append("| \(range.name) | \(try store.report(range, now: now).turns) | \(p50(report)) / \(p95(report)) | \(p50(page)) / \(p95(page)) | \(html.utf8.count / 1024) KiB | \(p50(floor)) |")
        }
        let date = ISO8601DateFormatter().string(from: Date())
        return """
            ## Stats page run of \(date)

            Machine: \(ProcessInfo.processInfo.processorCount) cores; release build; \(statsTurns) turns over 30 days in one agent's
            turn-stats.sqlite. "report" is the aggregation in SQLite (`TurnStatsStore.report`: sums per bucket,
            tools through `json_each`, durations read row by row for the percentiles); "page" adds drawing the
            SVG; the last column reads every turn of the range as rows (what a page that loaded rows would pay).

            | range | turns | report p50 / p95 | page p50 / p95 | page size | all rows read |
            |---|---|---|---|---|---|
            \(rows.joined(separator: "\n"))

            """
    }
}
