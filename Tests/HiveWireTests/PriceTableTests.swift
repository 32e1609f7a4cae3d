import Foundation
import HiveWire
import Testing

@Suite("Price table")
struct PriceTableTests {
    @Test("a model is priced by its longest known id prefix; cache writes at 1.25x and 2x input, reads at 0.1x; unknown ids by family, flagged")
    func cost() throws {
        let t = PriceTable.builtIn
        let usage = TokenCount(input: 1_000_000, output: 100_000, cacheWriteShort: 1_000_000, cacheWriteLong: 1_000_000, cacheRead: 10_000_000)
        // Sonnet 4.5 at $3 / $15: 3 + 1.5 + 3.75 + 6 + 3 = 17.25
        let sonnet = try #require(t.cost("claude-sonnet-4-5-20250929", usage))
        #expect(abs(sonnet.usd - 17.25) < 1e-9 && !sonnet.byFamily)
        #expect(t.price("claude-opus-4-1-20250805")?.0 == .init(input: 15, output: 75), "opus-4-1, not opus-4")
        #expect(t.price("claude-opus-4-5-20251101")?.0 == .init(input: 5, output: 25))
        let future = try #require(t.cost("claude-sonnet-7-20300101[1m]", TokenCount(input: 1_000_000)))
        #expect(future.byFamily && abs(future.usd - 3) < 1e-9, "an unknown id is priced by its family and flagged")
        #expect(t.cost("gpt-9", TokenCount(input: 1)) == nil)
        let spend = GatewaySpend.priced("today", [("claude-haiku-4-5", 2, TokenCount(input: 1_000_000)), ("mystery", 1, TokenCount(input: 5))], table: t)
        #expect(spend.answers == 3 && abs(spend.usd - 1) < 1e-9 && spend.unpriced == ["mystery"] && spend.tokens.input == 1_000_005)
    }

    @Test("the operator's prices.json replaces the table; a broken one is named, never ignored")
    func override() throws {
        let root = URL(filePath: NSTemporaryDirectory()).appending(path: "prices-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        #expect(try PriceTable.load(root: root) == .builtIn)
        var mine = PriceTable.builtIn
        mine.date = "2027-01-01"
        mine.models["claude-sonnet-4-5"] = .init(input: 2, output: 10)
        try JSONEncoder().encode(mine).write(to: root.appending(path: PriceTable.fileName))
        #expect(try PriceTable.load(root: root).price("claude-sonnet-4-5-20250929")?.0 == .init(input: 2, output: 10))
        try Data("{\"date\": 1}".utf8).write(to: root.appending(path: PriceTable.fileName))
        #expect(throws: RequestError.self) { try PriceTable.load(root: root) }
    }
}

@Suite("Budgets in agent.json and on the wire")
struct BudgetConfigTests {
    @Test("agent.json's budget is checked field by field; the wire carries it both ways")
    func parse() throws {
        let c = try AgentConfig.parse(Data(#"{"budget": {"usd_per_day": 2.5, "tokens_per_month": 3000000, "warn_at": 0.9}}"#.utf8))
        #expect(c.budget == Budget(usdPerDay: 2.5, tokensPerMonth: 3_000_000, warnAt: 0.9))
        #expect(c.budget.caps.map(\.text) == ["2.50 USD a day", "3000000 tokens a month"])
        #expect(try AgentConfig.parse(c.encoded()) == c, "the rendered file is a valid config")
        let bad = Result { try AgentConfig.parse(Data(#"{"budget": {"usd_per_day": -1, "tokens_per_day": 1.5, "warn_at": 2, "usd": 3}}"#.utf8)) }
        guard case .failure(let error) = bad, let problems = (error as? ConfigError)?.problems else { Issue.record("accepted a bad budget"); return }
        for field in ["budget.usd_per_day:", "budget.tokens_per_day:", "budget.warn_at:", "budget.usd: unknown field"] {
            #expect(problems.contains { $0.hasPrefix(field) }, "names \(field)")
        }
        let line = try WireCoding.encoder().encode(BudgetCommand(agent: "iris", set: Budget(usdPerDay: 5, tokensPerDay: 10)))
        #expect(String(decoding: line, as: UTF8.self).contains("\"usd_per_day\":5"))
        let back = try WireCoding.decoder().decode(BudgetCommand.self, from: line)
        #expect(back.set == Budget(usdPerDay: 5, tokensPerDay: 10), "snake_case on the wire reads back")
    }
}
