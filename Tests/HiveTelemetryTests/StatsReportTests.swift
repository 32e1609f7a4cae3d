import Foundation
import HiveTelemetry
import Testing

@Suite("Stats report")
struct StatsReportTests {
    let store: TurnStatsStore
    let dir: URL
    init() throws {
        dir = FileManager.default.temporaryDirectory.appending(path: "hive-report-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        store = try TurnStatsStore(path: dir.appending(path: "turn-stats.sqlite").path)
    }

    func turn(at started: Double, seconds: Double, result: String = "ok", tools: String = "{}", action: String = "continue",
              continueCost: Double = 100, freshCost: Double = 400, cost: Double = 0.1) -> TurnStat {
        TurnStat(id: nil, startedAt: started, endedAt: started + seconds, model: "m", sessionID: "s", wakeSource: "bob", messageID: nil,
                 resultKind: result, detail: nil, inputTokens: 10, outputTokens: 20, cacheReadTokens: 1000, cacheCreationTokens: 300,
                 contextTokens: nil, contextWindow: nil, costUSD: cost, toolCalls: 0, toolBreakdown: tools, sessionAction: action,
                 sessionReason: "r", estimatedContinueCost: continueCost, estimatedFreshCost: freshCost, exitStatus: 0)
    }

    @Test("nearest-rank percentiles")
    func percentiles() {
        let v = (1...20).map(Double.init)
        #expect(StatsReport.percentile(v, 0.5) == 10)
        #expect(StatsReport.percentile(v, 0.95) == 19)
        #expect(StatsReport.percentile([7], 0.95) == 7)
        #expect(StatsReport.percentile([], 0.5) == nil)
    }

    @Test("turns land in their hour; tokens, cost, p50/p95, results, top tools and session decisions add up; old turns stay out")
    func aggregates() throws {
        let now = 1_800_000_000.0 // a whole hour
        for i in 1...20 {
            try store.record(turn(at: now - 1800, seconds: Double(i), tools: #"{"mcp__hive__send":2,"Read":1}"#))
        }
        try store.record(turn(at: now - 3 * 3600 + 10, seconds: 5, result: "rate_limited", tools: #"{"Read":4}"#, action: "fresh",
                              continueCost: 50_000, freshCost: 20_000, cost: 0))
        try store.record(turn(at: now - 2 * 86400, seconds: 1)) // outside 24 h, inside 7 d
        try store.record(turn(at: now - 1800, seconds: 1, tools: "not json"))

        let day = try store.report(.day, now: now)
        #expect(day.buckets.count == 24 && day.from == now - 86400 && day.to == now)
        let last = try #require(day.buckets.last)
        #expect(last.turns == 21 && last.ok == 21)
        #expect(last.p50 == 10 && last.p95 == 19, "durations 1…20 s and one of 1 s")
        #expect(last.inputTokens == 210 && last.cacheReadTokens == 21_000)
        #expect(abs(last.costUSD - 2.1) < 1e-9)
        let three = day.buckets[day.buckets.count - 3]
        #expect(three.turns == 1 && three.ok == 0 && three.p50 == 5)
        #expect(day.turns == 22, "the turn two days ago is not in 24 h")
        #expect(day.results == [StatsCount(name: "ok", count: 21), StatsCount(name: "rate_limited", count: 1)])
        #expect(day.tools == [StatsCount(name: "mcp__hive__send", count: 40), StatsCount(name: "Read", count: 24)],
                "summed across turns; a malformed breakdown is skipped")
        let fresh = try #require(day.decisions.first { $0.action == "fresh" })
        #expect(fresh.turns == 1 && fresh.tokensSaved == 30_000, "fresh instead of continuing saved 50k − 20k")
        let cont = try #require(day.decisions.first { $0.action == "continue" })
        #expect(cont.turns == 21 && cont.tokensSaved == 21 * 300, "continuing instead of fresh saved 300 each")
        #expect(try store.report(.week, now: now).turns == 23)
        #expect(try store.report(.month, now: now).buckets.count == 30)
    }
}
