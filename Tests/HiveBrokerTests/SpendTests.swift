import Foundation
import HiveBroker
import HiveWire
import Testing

@Suite("Spend and budgets in the broker")
struct SpendTests {
    @Test("spend of record sums per agent, per model and for the hive; a turn reported twice counts once; caps and notices survive a reopen",
          arguments: StoreKind.available)
    func ledger(kind: StoreKind) throws {
        let iris = try AgentName("iris"), zed = try AgentName("zed")
        let (reopen, cleanup) = try record(kind, iris: iris, zed: zed)
        defer { cleanup() }
        let reopened = try reopen()
        #expect(abs(try reopened.spent(nil, since: 0, excluding: nil).usd - 3.5165) < 1e-12)
        #expect(try reopened.operatorBudgets()["hive"] == Budget(usdPerDay: 50))
        #expect(try !reopened.firstNotice(iris, kind: "over", period: "day-1"), "told once, across restarts")
        try reopened.setOperatorBudget("hive", nil)
        #expect(try reopened.operatorBudgets().isEmpty)
    }

    /// The first half of ``ledger``: records its spend on a fresh store of `kind` (wall clock) and returns how
    /// to open the same storage again, and the cleanup.
    func record(_ kind: StoreKind, iris: AgentName, zed: AgentName) throws -> (reopen: () throws -> any HiveStore, cleanup: @Sendable () -> Void) {
        let made = try makeStore(kind, clock: { Date().timeIntervalSince1970 })
        do {
            let b = made.store
            let t = TokenCount(input: 100, output: 10, cacheWriteShort: 5, cacheWriteLong: 3, cacheRead: 1000)
            #expect(try b.recordSpend(iris, [SpendRow(at: 100, source: .gateway, model: "claude-sonnet-4-5", tokens: t, usd: 1, counted: true)]))
            let turn = [SpendRow(at: 110, source: .harness, turnKey: "7-100", model: "claude-haiku-4-5", tokens: t, usd: 0.5, counted: true),
                        SpendRow(at: 110, source: .harness, turnKey: "7-100", model: "claude-sonnet-4-5", tokens: t, usd: 2, counted: true)]
            #expect(try b.recordSpend(zed, turn))
            #expect(try !b.recordSpend(zed, turn), "the same turn again is ignored")
            #expect(try b.recordSpend(zed, [SpendRow(at: 120, source: .harness, turnKey: "8-120", model: "m", tokens: t, usd: 9, counted: false)]))
            #expect(try b.spent(iris, since: 0, excluding: nil) == Spent(usd: 1, tokens: 118))
            #expect(try b.spent(zed, since: 0, excluding: nil) == Spent(usd: 2.5, tokens: 236), "uncounted rows are not spend of record")
            #expect(try b.spent(nil, since: 0, excluding: nil).usd == 3.5)
            #expect(try b.spent(nil, since: 0, excluding: zed).usd == 1)
            #expect(try b.spent(nil, since: 105, excluding: nil).usd == 2.5)
            #expect(try b.spent(nil, since: 0, excluding: zed).usd == 1)
            let (agents, models) = try b.spendBreakdown(since: 0)
            #expect(agents["zed"]?.usd == 2.5 && models["claude-sonnet-4-5"]?.usd == 3 && models["m"] == nil)
            #expect(try b.recentTurnCosts(zed, limit: 10).map(\.usd) == [9, 2.5], "per turn, newest first, counted or not")
            // A metered answer: its start, then its end under the same key, is one row of the final count.
            let start = SpendRow(at: 130, source: .gateway, turnKey: "answer-x", model: "claude-sonnet-4-5", tokens: TokenCount(input: 5000), usd: 0.015, counted: true)
            try b.meterSpend(iris, start)
            #expect(try b.spent(iris, since: 125, excluding: nil) == Spent(usd: 0.015, tokens: 5000), "the start alone is already spend")
            var end = start
            end.tokens.output = 100
            end.usd = 0.0165
            try b.meterSpend(iris, end)
            #expect(try b.spent(iris, since: 125, excluding: nil) == Spent(usd: 0.0165, tokens: 5100))
            try b.setOperatorBudget("hive", Budget(usdPerDay: 50))
            #expect(try b.firstNotice(iris, kind: "over", period: "day-1"))
            #expect(try !b.firstNotice(iris, kind: "over", period: "day-1"))
        } catch {
            made.cleanup()
            throw error
        }
        return (made.reopen, made.cleanup)
    }
}
