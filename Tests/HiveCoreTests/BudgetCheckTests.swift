import Foundation
@testable import HiveCore
import HiveWire
import Testing

/// Budgets as core decides them: caps, spend and the expected turn in, a verdict out. No store, no clock.
@Suite("the budget check")
struct BudgetCheckTests {
    static var utc: Calendar {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = TimeZone(identifier: "UTC")!
        return c
    }
    /// 2026-12-02 15:00 UTC.
    static let now = Date(timeIntervalSince1970: 1_796_223_600)
    static let midnight = 1_796_256_000.0 // 2026-12-03 00:00 UTC
    static let firstOfMonth = 1_798_761_600.0 // 2027-01-01 00:00 UTC

    func spending(day: Double, month: Double, dayTokens: Int = 0) -> BudgetCheck.Spending {
        .init(day: Spent(usd: day, tokens: dayTokens), month: Spent(usd: month, tokens: dayTokens))
    }

    @Test("a turn whose expected cost (p90) would pass the daily cap is held until midnight; below, it runs; past the warning share, it warns")
    func daily() {
        let check = BudgetCheck(agent: Budget(usdPerDay: 10), hive: Budget(), isManager: false)
        let expected = Spent(usd: 1.5)
        #expect(check.verdict(agentSpend: spending(day: 5, month: 5), hiveSpend: .init(), expected: expected, now: Self.now, calendar: Self.utc) == .ok)
        guard case .warning(.agent, let cap, let share) = check.verdict(agentSpend: spending(day: 8.4, month: 9), hiveSpend: .init(), expected: expected,
                                                                      now: Self.now, calendar: Self.utc) else { Issue.record("no warning"); return }
        #expect(cap.period == .day && abs(share - 0.84) < 1e-9)
        let over = check.verdict(agentSpend: spending(day: 8.6, month: 9), hiveSpend: .init(), expected: expected, now: Self.now, calendar: Self.utc)
        #expect(over == .over(.agent, Budget.Cap(period: .day, unit: .usd, limit: 10), spent: 8.6, renewsAt: Self.midnight))
        // Spent at or past the cap holds even when nothing is expected (a new agent with no history).
        #expect(check.verdict(agentSpend: spending(day: 10, month: 10), hiveSpend: .init(), expected: Spent(), now: Self.now, calendar: Self.utc).isOver)
    }

    @Test("of two caps passed, the one that renews last holds; token caps count tokens")
    func monthAndTokens() {
        let check = BudgetCheck(agent: Budget(usdPerDay: 10, usdPerMonth: 100, tokensPerDay: 1_000_000), hive: Budget(), isManager: false)
        let v = check.verdict(agentSpend: spending(day: 10, month: 100), hiveSpend: .init(), expected: Spent(), now: Self.now, calendar: Self.utc)
        #expect(v == .over(.agent, Budget.Cap(period: .month, unit: .usd, limit: 100), spent: 100, renewsAt: Self.firstOfMonth))
        let tokens = check.verdict(agentSpend: spending(day: 1, month: 1, dayTokens: 900_000), hiveSpend: .init(), expected: Spent(usd: 0.1, tokens: 200_000),
                                   now: Self.now, calendar: Self.utc)
        #expect(tokens == .over(.agent, Budget.Cap(period: .day, unit: .tokens, limit: 1_000_000), spent: 900_000, renewsAt: Self.midnight))
    }

    @Test("the hive's cap holds every agent but the manager, who must stay able to propose a fix")
    func hiveCap() {
        let hive = Budget(usdPerDay: 50)
        let spentHive = spending(day: 50, month: 50)
        let worker = BudgetCheck(agent: Budget(), hive: hive, isManager: false)
        #expect(worker.verdict(agentSpend: spending(day: 1, month: 1), hiveSpend: spentHive, expected: Spent(), now: Self.now, calendar: Self.utc)
            == .over(.hive, Budget.Cap(period: .day, unit: .usd, limit: 50), spent: 50, renewsAt: Self.midnight))
        let manager = BudgetCheck(agent: Budget(usdPerDay: 5), hive: hive, isManager: true)
        #expect(manager.verdict(agentSpend: spending(day: 1, month: 1), hiveSpend: spentHive, expected: Spent(), now: Self.now, calendar: Self.utc) == .ok)
        #expect(manager.verdict(agentSpend: spending(day: 5, month: 5), hiveSpend: spentHive, expected: Spent(), now: Self.now, calendar: Self.utc).isOver,
                "its own budget still holds it")
    }

    @Test("the expected turn is the p90 of recent turns, each unit on its own")
    func p90() {
        let turns = (1...10).map { Spent(usd: Double($0), tokens: 1000 * (11 - $0)) }
        #expect(BudgetCheck.expected(turns) == Spent(usd: 9, tokens: 9000))
        #expect(BudgetCheck.expected([]) == Spent())
        #expect(BudgetCheck.expected([Spent(usd: 2, tokens: 5)]) == Spent(usd: 2, tokens: 5))
    }

    @Test("a share of a subscription window holds once the credential's window is that used, until the window resets; a stale window holds nobody")
    func windowShare() {
        let check = BudgetCheck(agent: Budget(fiveHourShare: 0.6), hive: Budget(), isManager: false)
        let reset = Self.now.timeIntervalSince1970 + 7200
        var spend = BudgetCheck.Spending()
        spend.windows = ["five_hour": WindowUse(utilization: 0.65, resetsAt: reset, at: 0)]
        #expect(check.verdict(agentSpend: spend, hiveSpend: .init(), expected: Spent(usd: 100), now: Self.now, calendar: Self.utc)
            == .over(.agent, Budget.Cap(period: .window, unit: .fiveHour, limit: 0.6), spent: 0.65, renewsAt: reset))
        spend.windows["five_hour"]?.utilization = 0.5
        #expect(check.verdict(agentSpend: spend, hiveSpend: .init(), expected: Spent(usd: 100), now: Self.now, calendar: Self.utc)
            == .warning(.agent, Budget.Cap(period: .window, unit: .fiveHour, limit: 0.6), share: 0.5 / 0.6))
        spend.windows["five_hour"] = WindowUse(utilization: 1, resetsAt: Self.now.timeIntervalSince1970 - 1, at: 0)
        #expect(check.verdict(agentSpend: spend, hiveSpend: .init(), expected: Spent(), now: Self.now, calendar: Self.utc) == .ok, "the window has reset since")
    }
}
