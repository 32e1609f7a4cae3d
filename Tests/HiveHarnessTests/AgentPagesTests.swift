import Foundation
@testable import HiveHarness
import HiveTelemetry
import HiveWire
import Testing

@Suite("Agent pages")
struct AgentPagesTests {
    @Test("the stats page draws SVG charts server-side and escapes what it shows")
    func statsPage() throws {
        let dir = FileManager.default.temporaryDirectory.appending(path: "hive-page-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try TurnStatsStore(path: dir.appending(path: "turn-stats.sqlite").path)
        let now = 1_800_000_000.0
        try store.record(TurnStat(id: nil, startedAt: now - 600, endedAt: now - 597, model: "m", sessionID: "s", wakeSource: "bob",
                                  messageID: nil, resultKind: "ok", detail: nil, inputTokens: 10, outputTokens: 20, cacheReadTokens: 1000,
                                  cacheCreationTokens: 300, contextTokens: nil, contextWindow: nil, costUSD: 0.1, toolCalls: 1,
                                  toolBreakdown: #"{"<script>":1}"#, sessionAction: "continue", sessionReason: "r",
                                  estimatedContinueCost: 1, estimatedFreshCost: 2, exitStatus: 0))
        var report = try store.report(.day, now: now)
        report.reminders = ReminderRollup(attempts: 4, successes: 3, failures: 1)
        let html = StatsPage.html(agent: "iris", report: report)
        #expect(html.components(separatedBy: "<svg").count - 1 == 7, "turns, duration, tokens, cost, tools, results, reminders")
        #expect(html.components(separatedBy: "<rect").count - 1 >= 4, "a bar per kind of token in the turn's hour, at least")
        #expect(html.contains("&lt;script&gt;") && !html.contains("<script"), "a tool name cannot inject markup; the page has no script")
        #expect(html.contains("4 attempts · 3 delivered · 1 failed"))
        #expect(html.contains("href=\"stats?range=7d\"") && html.contains("<b>24h</b>"))
    }

    @Test("chart axes round up to 1, 2 or 5 times a power of ten")
    func niceAxis() {
        #expect(SVG.nice(0) == 1)
        #expect(SVG.nice(7) == 10)
        #expect(SVG.nice(0.13) == 0.2)
        #expect(SVG.nice(4200) == 5000)
        #expect(SVG.nice(100) == 100)
    }

    @Test("the agent page embeds its data so that no text can close the script element")
    func agentPageEscaping() throws {
        let evil = "</script><script>alert(1)</script>"
        let message = MessageView(id: 1, from: "bob", to: "iris", body: evil, sentAt: 0, deliveredAt: nil, ackedAt: nil, inReplyTo: nil,
                                  broadcast: false, redelivered: false, state: .pending)
        let event = LiveEvent(seq: 1, at: 0, turn: 1, kind: "stderr", body: evil)
        var status = HarnessSnapshot()
        status.model = "opus<b>" // the state is a type now and cannot carry markup; the model is text
        let html = AgentPage.html(agent: "iris", status: status, initial: .init(events: [event], lastSeq: 1, inbox: .init(messages: [message])))
        #expect(!html.contains("alert(1)</script>"))
        #expect(html.components(separatedBy: "</script>").count == 3, "only the two real script elements close")
        #expect(html.contains("opus&lt;b&gt;"))
    }
}
