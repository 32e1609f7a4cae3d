import Foundation
import HiveWire
import Testing

@Suite("Search queries")
struct SearchQueryTests {
    @Test("words, phrases, prefixes and filters are read at the edge; every term reaches FTS5 quoted, so nothing typed is FTS5 syntax")
    func parse() throws {
        let now = 1_796_223_600.0
        let q = try SearchQuery.parse(#"Build FAILED "rate limit" migr* from:iris to:operator after:2d before:1796220000"#, now: now)
        #expect(q.terms == [.word("build"), .word("failed"), .phrase(["rate", "limit"]), .prefix("migr")])
        #expect(q.from == "iris" && q.to == "operator" && q.after == now - 2 * 86_400 && q.before == 1_796_220_000)
        #expect(q.match == #""build" AND "failed" AND "rate limit" AND "migr"*"#)
        let hostile = try SearchQuery.parse(#"NEAR(a b) OR body:x "un""#, now: now)
        #expect(hostile.match == #""near" AND "a" AND "b" AND "or" AND "body" AND "x" AND "un""#, "operators and columns are words")
        #expect(try SearchQuery.parse("after:2026-12-01 x").after != nil)
        for bad in ["", "from:iris", #""open"#, "from:../x y", "after:tomorrow y", String(repeating: "a ", count: 17), String(repeating: "x", count: 501)] {
            #expect(throws: RequestError.self, "\(bad.prefix(30))") { try SearchQuery.parse(bad) }
        }
    }
}
