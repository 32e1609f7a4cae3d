import Foundation
@testable import HiveHarness
import HiveWire
import Testing

@Suite("Session policy, backoff and wake prompts")
struct PolicyTests {
    let policy = SessionPolicy(contextFraction: 0.5, cacheTTL: 300, freshBaselineTokens: 20_000)

    @Test("fresh only when the context is large and the cache is cold")
    func decisions() {
        let big = policy.decide(lastContext: 120_000, window: 200_000, idle: 900, requested: false, hasSession: true)
        #expect(big.action == .fresh)
        #expect(big.continueCost == 120_000 * 1.25)
        #expect(big.freshCost == 20_000 * 1.25)
        #expect(policy.decide(lastContext: 120_000, window: 200_000, idle: 60, requested: false, hasSession: true).action == .continue,
                "a warm cache makes continuing cheap")
        let warm = policy.decide(lastContext: 120_000, window: 200_000, idle: 60, requested: false, hasSession: true)
        #expect(warm.continueCost == 12_000)
        #expect(policy.decide(lastContext: 40_000, window: 200_000, idle: 9_000, requested: false, hasSession: true).action == .continue,
                "a small context is cheap to re-send even cold")
        #expect(policy.decide(lastContext: 10, window: 200_000, idle: 1, requested: true, hasSession: true).action == .fresh)
        #expect(policy.decide(lastContext: nil, window: nil, idle: nil, requested: false, hasSession: false).action == .fresh)
        #expect(policy.decide(lastContext: 120_000, window: 200_000, idle: 900, requested: false, hasSession: true, freshBaseline: 8000).freshCost == 10_000)
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
