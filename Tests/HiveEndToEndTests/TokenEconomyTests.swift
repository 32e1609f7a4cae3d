import Foundation
import HiveClient
import HiveWire
import ModelStandIn
import Testing

/// Costs and budgets with the real Claude Code CLI in real cages, against the stand-in API: each turn is
/// priced from its own tokens (not the CLI's running total), the gateway's meter and the harness's
/// report agree, and a budget holds an agent before a turn, across a core restart, until it is raised.
@Suite("Token economy", .serialized, .timeLimit(.minutes(4)))
struct TokenEconomyTests {
    /// One model's share of a turn, as the turn-stats row keeps it.
    static func shares(_ row: [String: String]) -> [String: [String: Double]] {
        let json = (try? JSONSerialization.jsonObject(with: Data((row["model_usage"] ?? "{}").utf8))) as? [String: [String: Any]] ?? [:]
        return json.mapValues { $0.compactMapValues { ($0 as? NSNumber)?.doubleValue } }
    }

    /// USD at the hive's table for `model`'s share.
    static func priced(_ model: String, _ s: [String: Double]) -> Double {
        let long = Int(s["cache_creation_1h"] ?? 0)
        let t = TokenCount(input: Int(s["input"] ?? 0), output: Int(s["output"] ?? 0), cacheWriteShort: Int(s["cache_creation"] ?? 0) - long,
                           cacheWriteLong: long, cacheRead: Int(s["cache_read"] ?? 0))
        return PriceTable.builtIn.cost(model, t)?.usd ?? -1
    }

    func rows(_ hive: LiveHive, _ name: String, count: Int) async throws -> [[String: String]] {
        var rows: [[String: String]] = []
        try await hive.eventually("\(count) turns of \(name) are recorded and reported", timeout: .seconds(60)) {
            rows = try hive.turnStats(name).filter { $0["wake_source"] == "operator" }
            return rows.count >= count && rows.allSatisfy { $0["reported"] == "1" }
        }
        return rows
    }

    @Test("each turn is priced from its own tokens: a continued session's second turn, 1-hour cache writes at 2x, a turn that used two models; the gateway's meter agrees")
    func perTurnCosts() async throws {
        let api = try await ModelStandIn()
        defer { Task { await api.stop() } }
        let hive = try LiveHive()
        try await hive.startReal(api: api)
        try await hive.spawnIdle("iris")
        let send = { (body: String) in _ = try await hive.admin().call(SendCommand(to: "iris", body: body)) }
        try await send("mark:one\n@usage in=1000 out=200 w5m=500\n@say one")
        try await send("mark:two\n@usage in=1000 out=200 w5m=500\n@say two")
        try await send("mark:three\n@usage in=1000 out=200 w1h=500\n@say three")
        try await send("""
            mark:four
            @tool Agent {"description":"look","prompt":"@say looked","subagent_type":"general-purpose","model":"haiku"}
            @say four
            """)
        let rows = try await rows(hive, "iris", count: 4)
        // Sonnet (the CLI's `sonnet` is a model the table knows by family: $3 in, $15 out per million).
        let sonnet = { (row: [String: String]) -> (String, [String: Double])? in Self.shares(row).first { $0.key.contains("sonnet") } }
        for (i, row) in rows.prefix(3).enumerated() {
            let (model, share) = try #require(sonnet(row), "turn \(i + 1) has a sonnet share")
            #expect(share["input"] == 1000 && share["output"] == 200 && share["cache_creation"] == 500,
                    "turn \(i + 1) counts its own tokens, not the session's running total: \(share)")
            let cost = Double(row["cost_usd"] ?? "") ?? -1
            let total = Self.shares(row).reduce(0) { $0 + Self.priced($1.key, $1.value) }
            #expect(abs(cost - total) < 1e-9, "the turn's cost is its models' shares priced")
            #expect(cost >= Self.priced(model, share) - 1e-12)
            #expect(Double(row["cli_cost_usd"] ?? "") ?? -1 > 0, "the CLI's own figure is kept beside ours")
        }
        #expect(rows[1]["session_action"] == "continue", "the second turn continued the session")
        // 5-minute writes at 1.25x: (1000·3 + 500·1.25·3 + 200·15) / 1e6; 1-hour writes at 2x: (1000·3 + 500·2·3 + 200·15) / 1e6.
        let second = try #require(sonnet(rows[1])), third = try #require(sonnet(rows[2]))
        #expect(abs(Self.priced(second.0, second.1) - 0.007875) < 1e-12)
        #expect(third.1["cache_creation_1h"] == 500)
        #expect(abs(Self.priced(third.0, third.1) - 0.009) < 1e-12, "1-hour cache writes cost 2x input")
        // The continued turn's CLI figure is its delta, not the session's total so far.
        let cli = rows.prefix(2).compactMap { Double($0["cli_cost_usd"] ?? "") }
        #expect(cli.count == 2 && cli[1] < cli[0] + cli[1] * 0.5, "turn 2's CLI cost is not turn 1's plus its own: \(cli)")
        // The subagent's model is the turn's second model, priced at its own rates.
        let fourth = Self.shares(rows[3])
        #expect(fourth.keys.contains { $0.contains("haiku") } && fourth.keys.contains { $0.contains("sonnet") }, "two models in one turn: \(fourth.keys.sorted())")
        let fourthCost = Double(rows[3]["cost_usd"] ?? "") ?? -1
        #expect(abs(fourthCost - fourth.reduce(0) { $0 + Self.priced($1.key, $1.value) }) < 1e-9)
        // The gateway metered every answer on its own; its spend of record equals the turns' sum.
        let view = try #require(try await hive.admin().call(BudgetCommand(agent: "iris")).budgets.first)
        let turnsSum = rows.reduce(0) { $0 + (Double($1["cost_usd"] ?? "") ?? 0) }
        let answers = try await hive.admin().call(GatewayLogCommand(agent: "iris", limit: 100)).entries.filter { $0.kind == .model }
        #expect(abs(view.today.usd - turnsSum) < 1e-6, "gateway \(view.today.usd) vs turns \(turnsSum): answers \(answers.map { "\($0.destination) \($0.usage.map { "\($0)" } ?? "-") \($0.note)" }); turns \(rows.map { $0["model_usage"] ?? "" })")
        #expect(try await hive.agentRow("iris")?.todayUsd.map { abs($0 - view.today.usd) < 1e-9 } == true, "hive ls shows today's cost")
        let spend = try await hive.admin().call(SpendCommand())
        let today = try #require(spend.periods.first { $0.period == "today" })
        #expect(abs((today.agents["iris"]?.usd ?? 0) - view.today.usd) < 1e-9)
        #expect(today.models.keys.contains { $0.contains("haiku") }, "totals per model")
    }

    @Test("a budget holds an agent before the turn that would pass it (its message waits unacked), holds across a core restart, and lets it go when the operator raises it")
    func budgetParksAndResumes() async throws {
        let api = try await ModelStandIn()
        defer { Task { await api.stop() } }
        let hive = try LiveHive()
        try await hive.startReal(api: api)
        try await hive.spawnIdle("iris")
        // One turn of one answer: (100000·3 + 1000·15) / 1e6 = 0.315 USD.
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "@usage in=100000 out=1000\n@say first"))
        _ = try await rows(hive, "iris", count: 1)
        try await hive.eventually("core expects the next turn to cost about as much") {
            try await hive.admin().call(BudgetCommand(agent: "iris")).budgets.first.map { $0.expectedTurn.usd >= 0.3 && $0.today.usd >= 0.3 } == true
        }
        // 0.5 a day: spent ≈ 0.315, the next turn expected ≈ 0.315, so it would pass the cap.
        let set = try await hive.admin().call(BudgetCommand(agent: "iris", set: Budget(usdPerDay: 0.5)))
        #expect(set.budgets.first?.status == "over" && set.budgets.first?.source == "operator")
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "@tool send {\"to\":\"operator\",\"body\":\"second ran\"}"))
        try await hive.eventually("iris shows over_budget") { try await hive.agentRow("iris")?.state == .overBudget }
        let notice = try await RealClaudeTests.awaitOperator(hive, containing: "budget: iris is held")
        #expect(notice.body.contains("0.50 USD a day"))
        try await Task.sleep(for: .seconds(3))
        var row = try #require(try await hive.agentRow("iris"))
        #expect(row.unread == 1 && row.inflight == 0, "the message waits, unacked")
        // Calling its gateway itself, with no turn handed to it, gets the agent nothing either.
        let direct = try UnixHTTP.request(hive.runDir.appending(path: "agents/iris/model.sock").path, "POST", "/v1/messages",
                                          headers: ["content-type": "application/json"],
                                          body: #"{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#)
        #expect(direct.status == 429 && direct.body.contains("over its budget"), "\(direct)")
        #expect(try await hive.operatorInbox().allSatisfy { !$0.body.contains("second ran") })
        // Core restarts: spend, the cap and the hold are in the broker, and nobody is told twice.
        #expect(await hive.terminate() == 0)
        try await hive.startReal(api: api)
        try await hive.eventually("iris is held again after the restart", timeout: .seconds(30)) { try await hive.agentRow("iris")?.state == .overBudget }
        try await Task.sleep(for: .seconds(2))
        row = try #require(try await hive.agentRow("iris"))
        #expect(row.unread == 1 && row.inflight == 0)
        let after = try await hive.operatorInbox().filter { $0.body.contains("is held") && $0.id != notice.id }
        #expect(after.isEmpty, "the hold was told once, not again after the restart: \(after.map(\.body))")
        // The operator raises it: the parked agent takes its message at once.
        _ = try await hive.admin().call(BudgetCommand(agent: "iris", set: Budget(usdPerDay: 5)))
        _ = try await RealClaudeTests.awaitOperator(hive, containing: "second ran", timeout: .seconds(30))
        try await hive.eventually("iris is no longer held") { try await hive.agentRow("iris")?.state != .overBudget }
    }

    @Test("a subscription's window use comes from the API's answers; a budget as a share of the 5-hour window holds the agent until its reset, and a raise lets it go")
    func windowShare() async throws {
        let api = try await ModelStandIn()
        defer { Task { await api.stop() } }
        let reset = Int(Date().timeIntervalSince1970) + 3 * 3600
        api.setUnifiedHeaders(["5h-utilization": "0.7", "5h-reset": "\(reset)", "7d-utilization": "0.25", "7d-reset": "\(reset + 86_400)"])
        let hive = try LiveHive()
        try await hive.startReal(api: api, subscriber: true)
        try await hive.spawnIdle("iris")
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "@say one"))
        _ = try await rows(hive, "iris", count: 1)
        var view = try #require(try await hive.admin().call(BudgetCommand(agent: "iris")).budgets.first)
        #expect(view.windows["five_hour"]?.utilization == 0.7 && view.windows["five_hour"]?.resetsAt == Double(reset), "\(view.windows)")
        #expect(view.windows["seven_day"]?.utilization == 0.25)
        view = try #require(try await hive.admin().call(BudgetCommand(agent: "iris", set: Budget(fiveHourShare: 0.6))).budgets.first)
        #expect(view.status == "over" && view.renewsAt == Double(reset), "held until the window resets: \(view.detail)")
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "@tool send {\"to\":\"operator\",\"body\":\"two ran\"}"))
        try await hive.eventually("iris shows over_budget") { try await hive.agentRow("iris")?.state == .overBudget }
        try await Task.sleep(for: .seconds(2))
        #expect(try await hive.agentRow("iris")?.unread == 1)
        _ = try await hive.admin().call(BudgetCommand(agent: "iris", set: Budget(fiveHourShare: 0.9)))
        _ = try await RealClaudeTests.awaitOperator(hive, containing: "two ran", timeout: .seconds(30))
    }
}
