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

    @Test("turn transcripts: a word the agent said is found by the dashboard's search and hive search --transcripts, linked to its turn; the agent's search tool through the real CLI finds its own transcript, another agent's finds nothing of it")
    func transcriptSearch() async throws {
        let api = try await ModelStandIn()
        defer { Task { await api.stop() } }
        let hive = try LiveHive()
        try await hive.startReal(api: api)
        try await hive.spawnIdle("iris", "bob")
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "@say the vault code is okapi"))
        try await hive.eventually("iris said it", timeout: .seconds(60)) {
            let row = try await hive.agentRow("iris")
            return row?.state == .idle && row?.unread == 0 && row?.inflight == 0
        }

        // The operator's CLI (as root it runs as the dashboard's uid: the agents' pages, never their files).
        let cli = try hive.cli(["search", "--transcripts", "okapi"])
        #expect(cli.status == 0 && cli.out.contains("iris") && cli.out.contains("[okapi]"), "\(cli.out)\(cli.err)")
        #expect(!cli.out.contains("bob "), "bob never said it: \(cli.out)")
        let onlyBob = try hive.cli(["search", "--transcripts", "okapi", "--agent", "bob"])
        #expect(onlyBob.status == 0 && onlyBob.out.contains("(no transcript matches)"), "\(onlyBob.out)\(onlyBob.err)")
        #expect(try hive.cli(["search", "--transcripts", "okapi", "--agent", "nobody"]).err.contains("no live agent named 'nobody'"))

        // The dashboard's search box, and the turn its hit links to.
        let (_, port) = try await hive.startWeb()
        let cookie = try hive.webCookie(port)
        let found = try TCPHTTP.request(port, "GET", "/api/search?in=transcripts&q=okapi", headers: ["Cookie": cookie])
        #expect(found.status == 200, "\(found.body)")
        let result = try WireCoding.decoder().decode(TranscriptSearchResult.self, from: Data(found.body.utf8))
        let hit = try #require(result.hits.first { $0.agent == "iris" && $0.snippet.contains("[okapi]") }, "\(found.body)")
        #expect(result.hits.allSatisfy { $0.agent == "iris" } && result.unreachable.isEmpty, "\(result)")
        let turn = try #require(hit.turn)
        let page = try TCPHTTP.request(port, "GET", "/agent/iris/turn/\(turn)?event=\(hit.seq)", headers: ["Cookie": cookie])
        #expect(page.status == 200 && page.body.contains("turn \(turn)") && page.body.contains("okapi") && page.body.contains("class=\"hit\""), "\(page.body.prefix(600))")
        let bad = try TCPHTTP.request(port, "GET", "/api/search?in=transcripts&q=%22open", headers: ["Cookie": cookie])
        #expect(bad.status == 422 && bad.body.contains("quote is not closed"), "\(bad.body)")

        // The agents' own tool, through the real CLI: iris finds her words, bob finds nothing of hers.
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "@tool search {\"query\":\"okapi\",\"in\":\"transcripts\"}\n@tool send {\"to\":\"operator\",\"body\":\"iris searched\"}"))
        _ = try await RealClaudeTests.awaitOperator(hive, containing: "iris searched")
        _ = try await hive.admin().call(SendCommand(to: "bob", body: "@tool search {\"query\":\"okapi\",\"in\":\"transcripts\"}\n@tool send {\"to\":\"operator\",\"body\":\"bob searched\"}"))
        _ = try await RealClaudeTests.awaitOperator(hive, containing: "bob searched")
        // Each agent's request after its tool ran (its prompt and the tool's result): bob's own transcript
        // holds the word too (his prompt), but never iris's sentence.
        let bodies = api.messageRequests.map { String(decoding: $0.body, as: UTF8.self) }
        let irisSaw = bodies.filter { $0.contains("iris searched") && $0.contains("tool_result") }
        let bobSaw = bodies.filter { $0.contains("bob searched") && $0.contains("tool_result") }
        #expect(irisSaw.contains { $0.contains("vault code is [okapi]") }, "iris's tool answered with her own words")
        #expect(!bobSaw.isEmpty && bobSaw.allSatisfy { !$0.contains("vault code is") }, "bob's tool found nothing of iris's")
    }
}
