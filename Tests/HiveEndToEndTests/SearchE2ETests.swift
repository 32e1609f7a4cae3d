import Foundation
import HiveClient
import HiveWire
import Testing

@Suite("Search end to end", .timeLimit(.minutes(1)))
struct SearchE2ETests {
    @Test("the operator searches every message (hive search); an agent, on its own socket (its search tool), only those it sent or received")
    func search() async throws {
        let hive = try LiveHive()
        try await hive.start()
        for name in ["iris", "bob", "zed"] { _ = try await hive.spawn(name) }
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "alpha: the deploy is blocked"))
        _ = try await hive.agent("bob").call(SendCommand(to: "zed", body: "beta: deploy the migration tonight"))
        #expect(try await hive.agent("iris").call(SearchCommand(query: "deploy")).hits.isEmpty, "not handed to iris yet")
        _ = try await hive.agent("iris").call(RecvCommand(waitSeconds: 0, max: 5))
        _ = try await hive.agent("zed").call(RecvCommand(waitSeconds: 0, max: 5))
        let mine = try await hive.agent("iris").call(SearchCommand(query: "deploy")).hits
        #expect(mine.map(\.message.body) == ["alpha: the deploy is blocked"], "iris sees its own message only")
        let zeds = try await hive.agent("zed").call(SearchCommand(query: "deploy from:bob")).hits
        #expect(zeds.count == 1 && zeds[0].snippet.contains("[deploy]"))
        let cli = try hive.cli(["search", "deploy"])
        #expect(cli.status == 0 && cli.out.contains("alpha: the [deploy] is blocked") && cli.out.contains("beta: [deploy] the migration"), "\(cli.out)\(cli.err)")
        let json = try hive.cli(["search", "--json", "\"deploy the migration\""])
        #expect(json.status == 0 && json.out.contains("\"from\" : \"bob\"") || json.out.contains("\"from\":\"bob\""), "\(json.out)")
        let bad = try hive.cli(["search", "from:iris"])
        #expect(bad.status != 0 && bad.err.contains("give at least one word"), "\(bad.err)")
        // A query the store could misread (FTS5 syntax) is only words.
        #expect(try await hive.agent("iris").call(SearchCommand(query: "NEAR(deploy blocked) OR *")).hits.isEmpty)
    }
}
