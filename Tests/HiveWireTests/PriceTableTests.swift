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
