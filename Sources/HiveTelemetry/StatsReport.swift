import Foundation
import GRDB

/// A window of an agent's stats page: how far back, and how wide each bar is.
public struct StatsRange: Sendable, Equatable {
    public var name: String
    public var span: Double
    public var bucket: Double

    public static let day = StatsRange(name: "24h", span: 86_400, bucket: 3600)
    public static let week = StatsRange(name: "7d", span: 7 * 86_400, bucket: 6 * 3600)
    public static let month = StatsRange(name: "30d", span: 30 * 86_400, bucket: 86_400)
    public static let all = [day, week, month]

    public static func named(_ name: String?) -> StatsRange? { all.first { $0.name == (name ?? "24h") } }
    public var buckets: Int { Int((span / bucket).rounded()) }
}

/// One bar of the charts: the turns that started in `[start, start + width)`.
public struct StatsBucket: Codable, Sendable, Equatable {
    public var start: Double
    public var turns: Int = 0
    public var ok: Int = 0
    /// Turn duration percentiles in seconds (nil without turns).
    public var p50: Double?
    public var p95: Double?
    public var inputTokens: Int = 0
    public var outputTokens: Int = 0
    public var cacheReadTokens: Int = 0
    public var cacheWriteTokens: Int = 0
    public var costUSD: Double = 0
}

public struct StatsCount: Codable, Sendable, Equatable {
    public var name: String
    public var count: Int
    public init(name: String, count: Int) { self.name = name; self.count = count }
}

/// How often the session policy chose an action, and the input tokens (base-price equivalents) that
/// choice saved against the other one by its own estimate; negative when it cost more.
public struct SessionDecisionStats: Codable, Sendable, Equatable {
    public var action: String
    public var turns: Int
    public var tokensSaved: Double
}

public struct ReminderRollup: Codable, Sendable, Equatable {
    public var attempts: Int
    public var successes: Int
    public var failures: Int
    public init(attempts: Int, successes: Int, failures: Int) { self.attempts = attempts; self.successes = successes; self.failures = failures }
}

/// What an agent's stats page shows for one range, aggregated in SQLite (only the durations come out
/// row by row, for the percentiles).
public struct StatsReport: Codable, Sendable, Equatable {
    public var range: String
    public var from: Double
    public var to: Double
    public var bucketSeconds: Double
    public var buckets: [StatsBucket]
    public var results: [StatsCount]
    public var tools: [StatsCount]
    public var decisions: [SessionDecisionStats]
    /// Filled by the harness from core (the broker keeps reminders); nil when core could not be asked.
    public var reminders: ReminderRollup?

    public var turns: Int { buckets.reduce(0) { $0 + $1.turns } }
    public var costUSD: Double { buckets.reduce(0) { $0 + $1.costUSD } }

    /// Nearest-rank percentile of sorted values.
    public static func percentile(_ sorted: [Double], _ p: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        let rank = Int((p * Double(sorted.count)).rounded(.up))
        return sorted[min(sorted.count, max(1, rank)) - 1]
    }
}

extension TurnStatsStore {
    /// The stats page's data for `range`, ending at `now`.
    public func report(_ range: StatsRange, now: Double = Date().timeIntervalSince1970) throws -> StatsReport {
        let count = range.buckets
        // Bars end at the next whole bucket, so they stay put while the page is reloaded.
        let end = (now / range.bucket).rounded(.up) * range.bucket
        let from = end - Double(count) * range.bucket
        var buckets = (0..<count).map { StatsBucket(start: from + Double($0) * range.bucket) }
        let args: StatementArguments = [from, range.bucket, from]
        let bucketSQL = "CAST((started_at - ?) / ? AS INTEGER)"
        return try read { db in
            // One pass for the bars, the result mix and the session decisions: grouped by bucket, result and
            // action (a few hundred rows at most), summed up here.
            var results = [String: Int](), decisions = [String: (turns: Int, saved: Double)]()
            for r in try Row.fetchAll(db, sql: """
                SELECT \(bucketSQL) AS b, result_kind AS k, session_action AS a, COUNT(*) AS n, SUM(input_tokens) AS i,
                       SUM(output_tokens) AS o, SUM(cache_read_tokens) AS cr, SUM(cache_creation_tokens) AS cw, SUM(cost_usd) AS cost,
                       SUM(CASE session_action WHEN 'fresh' THEN estimated_continue_cost - estimated_fresh_cost
                                               WHEN 'continue' THEN estimated_fresh_cost - estimated_continue_cost ELSE 0 END) AS saved
                FROM turn WHERE started_at >= ? GROUP BY b, k, a
                """, arguments: args) {
                let b: Int = r["b"], n: Int = r["n"], kind: String = r["k"], action: String = r["a"]
                results[kind, default: 0] += n
                decisions[action, default: (0, 0)].turns += n
                decisions[action, default: (0, 0)].saved += r["saved"]
                guard buckets.indices.contains(b) else { continue }
                buckets[b].turns += n
                if kind == "ok" { buckets[b].ok += n }
                buckets[b].inputTokens += r["i"]; buckets[b].outputTokens += r["o"]
                buckets[b].cacheReadTokens += r["cr"]; buckets[b].cacheWriteTokens += r["cw"]; buckets[b].costUSD += r["cost"]
            }
            // Nearest-rank p50 and p95 per bucket, picked inside SQLite by a window function: two rows a
            // bucket come out, not every duration. (Ranks: ceil(n/2) and ceil(95n/100), in integers.)
            for r in try Row.fetchAll(db, sql: """
                SELECT b, d, rn, n FROM (
                    SELECT \(bucketSQL) AS b, ended_at - started_at AS d,
                           ROW_NUMBER() OVER (PARTITION BY \(bucketSQL) ORDER BY ended_at - started_at) AS rn,
                           COUNT(*) OVER (PARTITION BY \(bucketSQL)) AS n
                    FROM turn WHERE started_at >= ?)
                WHERE rn = (n + 1) / 2 OR rn = (95 * n + 99) / 100
                """, arguments: [from, range.bucket, from, range.bucket, from, range.bucket, from]) {
                let b: Int = r["b"], rn: Int = r["rn"], n: Int = r["n"]
                guard buckets.indices.contains(b) else { continue }
                if rn == (n + 1) / 2 { buckets[b].p50 = r["d"] }
                if rn == (95 * n + 99) / 100 { buckets[b].p95 = r["d"] }
            }
            // tool_breakdown is a JSON object per turn (tool → calls); SQLite sums it without a row leaving.
            let tools = try Row.fetchAll(db, sql: """
                SELECT j.key AS k, SUM(j.value) AS n FROM turn, json_each(turn.tool_breakdown) AS j
                WHERE turn.started_at >= ? AND json_valid(turn.tool_breakdown) GROUP BY j.key ORDER BY n DESC, k LIMIT 10
                """, arguments: [from]).map { StatsCount(name: $0["k"], count: $0["n"]) }
            return StatsReport(range: range.name, from: from, to: end, bucketSeconds: range.bucket, buckets: buckets,
                               results: results.map { StatsCount(name: $0.key, count: $0.value) }.sorted { ($0.count, $1.name) > ($1.count, $0.name) },
                               tools: tools,
                               decisions: decisions.map { SessionDecisionStats(action: $0.key, turns: $0.value.turns, tokensSaved: $0.value.saved) }
                                   .sorted { ($0.turns, $1.action) > ($1.turns, $0.action) },
                               reminders: nil)
        }
    }
}
