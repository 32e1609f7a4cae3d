import Foundation
@testable import HiveHarness
import HiveTelemetry
import HiveWire
import Testing

@Suite("Session policy, backoff and wake prompts")
struct PolicyTests {
    let policy = SessionPolicy(contextFraction: 0.5, cacheTTL: nil, freshBaselineTokens: 20_000, freshPenalty: 30_000)

    @Test("the planner starts fresh when a large history would be re-sent cold, continues while warm or small; asked for or without a session, fresh")
    func decisions() {
        let big = policy.decide(lastContext: 120_000, window: 200_000, idle: 900, requested: false, hasSession: true)
        #expect(big.action == .fresh && big.continueCost > big.freshCost, "\(big)")
        #expect(big.reason.contains("cache cold (idle 900 s > 300 s)"), "no cache writes seen yet: 5-minute entries")
        let warm = policy.decide(lastContext: 120_000, window: 200_000, idle: 60, requested: false, hasSession: true)
        #expect(warm.action == .continue && warm.reason.hasPrefix("cache warm"), "a warm cache makes continuing cheap: \(warm)")
        #expect(policy.decide(lastContext: 10_000, window: 200_000, idle: 9_000, requested: false, hasSession: true).action == .continue,
                "a small context is cheaper to re-send, even cold, than a fresh start and the lost conversation")
        #expect(policy.decide(lastContext: 10, window: 200_000, idle: 1, requested: true, hasSession: true).action == .fresh)
        #expect(policy.decide(lastContext: nil, window: nil, idle: nil, requested: false, hasSession: false).action == .fresh)
        #expect(policy.decide(lastContext: 199_000, window: 200_000, idle: 1, requested: false, hasSession: true).action == .fresh, "the window forces it")
    }

    @Test("the cache lifetime is learned from claude's writes (1-hour entries: idle 15 minutes is warm), unless the config sets it")
    func learnedLifetime() {
        func turn(_ id: Int64, at: Double, context: Int, oneHour: Int) -> TurnStat {
            var t = TurnStat(id: id, startedAt: at, endedAt: at + 5, model: "sonnet", sessionID: "s", wakeSource: "bob", messageID: id,
                             resultKind: "ok", detail: nil, inputTokens: 10, outputTokens: 10, cacheReadTokens: 0, cacheCreationTokens: 4_000,
                             contextTokens: context, contextWindow: 200_000, costUSD: 0, toolCalls: 0, toolBreakdown: "{}",
                             sessionAction: id == 1 ? "fresh" : "continue", sessionReason: "", estimatedContinueCost: 0, estimatedFreshCost: 0, exitStatus: 0)
            t.cacheCreation1hTokens = oneHour
            return t
        }
        let subscriber = SessionHistory.learn((1...6).map { turn($0, at: Double($0) * 600, context: 20_000 + Int($0) * 5_000, oneHour: 4_000) })
        #expect(subscriber.ttl == 3600 && subscriber.write == 2)
        #expect(subscriber.shapes.count == 5 && subscriber.shapes.allSatisfy { $0.new == 5_000 && $0.gap == 595 })
        let d = policy.decide(lastContext: 120_000, window: 200_000, idle: 900, requested: false, hasSession: true, history: subscriber)
        #expect(d.action == .continue && d.reason.hasPrefix("cache warm") && d.reason.contains("w 2.0"), "\(d)")
        let apiKey = SessionHistory.learn((1...6).map { turn($0, at: Double($0) * 600, context: 30_000, oneHour: 0) })
        #expect(apiKey.ttl == 300 && apiKey.write == 1.25)
        let pinned = SessionPolicy(cacheTTL: 60).decide(lastContext: 120_000, window: 200_000, idle: 900, requested: false, hasSession: true, history: subscriber)
        #expect(pinned.action == .fresh, "the config's TTL overrides what was learned")
    }

    @Test("backoff doubles, caps, and jitters within ±20 %")
    func backoff() {
        let b = Backoff(base: 2, cap: 60)
        #expect(b.delay(attempt: 1, random: 0.5) == 2)
        #expect(b.delay(attempt: 3, random: 0.5) == 8)
        #expect(b.delay(attempt: 30, random: 0.5) == 60)
        #expect(b.delay(attempt: 3, random: 0) == 8 * 0.8)
        #expect(abs(b.delay(attempt: 3, random: 1) - 8 * 1.2) < 1e-9)
    }

    func message(broadcast: Bool = false, redelivered: Bool = false, inReplyTo: Int64? = nil, from: String = "bob") -> MessageView {
        MessageView(id: 12, from: from, to: "iris", body: "please review /shared/plan.md", sentAt: 1, deliveredAt: 2, ackedAt: nil,
                    inReplyTo: inReplyTo, broadcast: broadcast, redelivered: redelivered, state: .delivered)
    }

    @Test("the wake prompt names sender, body, unread count, reply id and the flags")
    func wakePrompt() {
        let p = WakePrompt.build(message(broadcast: true, redelivered: true, inReplyTo: 9), unread: 2)
        #expect(p.contains("New message 12 from bob, replying to message 9:"))
        #expect(p.contains("please review /shared/plan.md"))
        #expect(p.contains("This was a broadcast and may not need any action from you."))
        #expect(p.contains("may already be partly handled"))
        #expect(p.contains("2 more messages are waiting"))
        #expect(p.contains(#"to: "bob" and in_reply_to: 12"#))
        let plain = WakePrompt.build(message(), unread: 0)
        #expect(!plain.contains("broadcast") && !plain.contains("more message"))
        #expect(!WakePrompt.build(message(from: "system"), unread: 0).contains("To answer"))
    }
}
