import Foundation
import HiveClient
import HiveWire
import ModelStandIn
import Testing

@Suite("Search end to end", .serialized, .timeLimit(.minutes(2)))
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

    @Test("an agent's search tool through the real Claude Code CLI finds its own message, and the model reads the hit")
    func searchToolThroughRealCLI() async throws {
        let api = try await ModelStandIn()
        defer { Task { await api.stop() } }
        let hive = try LiveHive()
        try await hive.startReal(api: api)
        try await hive.spawnIdle("iris", "bob")
        // Iris's own message (sent on its socket, as its tools do); bob's turn on it is bob's business.
        _ = try await hive.agent("iris").call(SendCommand(to: "bob", body: "deploy notes mark:zebra"))
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "@tool search {\"query\":\"deploy from:iris\"}\n@tool send {\"to\":\"operator\",\"body\":\"found $HISTORY\"}"))
        let reply = try await RealClaudeTests.awaitOperator(hive, containing: "found")
        #expect(reply.body == "found zebra", "the hit reached the model as the tool's answer: \(reply.body)")
        let called = api.messageRequests.contains { String(decoding: $0.body, as: UTF8.self).contains("\"name\":\"mcp__hive__search\"") }
        #expect(called, "claude called the hive's search tool")
    }
}
