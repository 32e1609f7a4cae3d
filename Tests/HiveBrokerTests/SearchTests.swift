import Foundation
import GRDB
import HiveBroker
import HiveWire
import Testing

@Suite("Message search")
struct SearchTests {
    func broker() throws -> (Broker, URL) {
        let dir = URL(filePath: NSTemporaryDirectory()).appending(path: "search-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return (try Broker(path: dir.appending(path: "b.sqlite").path), dir)
    }

    @Test("bm25 ranks the better match first; filters and an agent's own view narrow it; a swept message leaves the index",
          arguments: StoreKind.available)
    func search(kind: StoreKind) throws {
        let made = try makeStore(kind, clock: { Date().timeIntervalSince1970 })
        defer { made.cleanup() }
        let b = made.store
        for n in ["iris", "bob", "zed"] { _ = try b.register(try AgentName(n)) }
        let iris = try AgentName("iris"), bob = try AgentName("bob")
        _ = try b.send(from: .agent(iris), to: .agent(bob), body: "the deploy failed again: deploy deploy", inReplyTo: nil)
        _ = try b.send(from: .agent(bob), to: .agent(iris), body: "a long note that mentions the deploy once among many other words here", inReplyTo: nil)
        _ = try b.send(from: .operator, to: .agent(try AgentName("zed")), body: "zed: the Déploy of the migration", inReplyTo: nil)
        let all = try b.search(try SearchQuery.parse("deploy"), party: nil, limit: 10)
        #expect(all.count == 3, "accents are folded: Déploy matches")
        #expect(all.first?.message.from == "iris", "the body dense with the word ranks first")
        #expect(all.first?.snippet.contains("[deploy]") == true)
        #expect(try b.search(try SearchQuery.parse("deploy from:bob"), party: nil, limit: 10).map(\.message.from) == ["bob"])
        #expect(try b.search(try SearchQuery.parse(#""deploy failed""#), party: nil, limit: 10).count == 1)
        #expect(try b.search(try SearchQuery.parse("migr*"), party: nil, limit: 10).count == 1)
        #expect(try b.search(try SearchQuery.parse("deploy"), party: "bob", limit: 10).map(\.message.from) == ["bob"],
                "what waits for bob, not yet handed to it, is not his to read yet")
        _ = try b.recv(bob, max: 10, wait: .zero)
        let bobs = try b.search(try SearchQuery.parse("deploy"), party: "bob", limit: 10)
        #expect(bobs.count == 2 && bobs.allSatisfy { $0.message.from == "bob" || $0.message.to == "bob" }, "an agent sees only its own messages")
        // Acked and old: swept, and gone from the index with it.
        for name in ["bob", "iris", "zed"] {
            let got = try b.recv(try AgentName(name), max: 10, wait: .zero)
            _ = try b.ackTurn(try AgentName(name), ids: got.messages.map(\.id), allInflight: true)
        }
        #expect(try b.sweep(olderThan: -1) == 3)
        #expect(try b.search(try SearchQuery.parse("deploy"), party: nil, limit: 10).isEmpty)
        if let sqlite = made.sqlite { // the FTS5 index is the SQLite file's own
            let indexed = try DatabaseQueue(path: sqlite.pool.path).read { db in
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM message_fts WHERE message_fts MATCH 'deploy'")
            }
            #expect(indexed == 0)
        }
    }

    @Test("a query with a phrase lists its hits newest first within the newest messages, and finds what FTS5's phrase query finds; words in another order are not the phrase")
    func phraseNewestFirst() throws {
        let (b, dir) = try broker()
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try b.register(try AgentName("iris"))
        // More than the first window: every message has "the team"; some say "Équipe Rouge" as a phrase,
        // more have both words apart.
        let q = try DatabaseQueue(path: dir.appending(path: "b.sqlite").path)
        try q.write { db in
            let insert = try db.makeStatement(sql: "INSERT INTO message (sender, recipient, body, sent_at) VALUES ('iris', 'operator', ?, ?)")
            for i in 0..<(Broker.recentWindows[0] + 2_000) {
                var body = "note from the team number \(i)"
                if i % 400 == 7 { body += " équipe rouge" }
                if i % 60 == 5 { body += " rouge then équipe" }
                try insert.execute(arguments: [body, Double(i)])
            }
        }
        func exact(_ text: String) throws -> Set<Int64> {
            let match = try SearchQuery.parse(text).match
            return Set(try q.read { try Int64.fetchAll($0, sql: "SELECT rowid FROM message_fts WHERE message_fts MATCH ?", arguments: [match]) })
        }
        let team = try b.search(try SearchQuery.parse("\"the team\""), party: nil, limit: 20)
        #expect(team.map(\.message.id) == Array((Int64(Broker.recentWindows[0] + 2_000 - 19)...Int64(Broker.recentWindows[0] + 2_000)).reversed()),
                "the newest 20, newest first")
        let rouge = try b.search(try SearchQuery.parse("\"Equipe ROUGE\""), party: nil, limit: 100)
        #expect(Set(rouge.map(\.message.id)) == (try exact("\"equipe rouge\"")), "the same messages as FTS5's phrase query (accents and case folded)")
        #expect(rouge.count == 55 && rouge.map(\.message.id) == rouge.map(\.message.id).sorted(by: >))
        #expect(try b.search(try SearchQuery.parse("\"team the\""), party: nil, limit: 20).isEmpty, "words in another order are not the phrase")
    }
}
