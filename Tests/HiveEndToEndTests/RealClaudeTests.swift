import Foundation
import HiveClient
import HiveWire
import ModelStandIn
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The real Claude Code CLI in real cages, against the stand-in API: agents answer through every hive
/// tool, sessions continue and start afresh, limits park, failures are counted right.
@Suite("Real Claude Code CLI", .serialized, .timeLimit(.minutes(3)))
struct RealClaudeTests {
    /// The operator's messages collected until one contains `text` (the inbox hands each out once).
    static func awaitOperator(_ hive: LiveHive, containing text: String, timeout: Duration = .seconds(60)) async throws -> MessageView {
        var seen: [MessageView] = []
        var found: MessageView?
        try await hive.eventually("the operator gets a message containing '\(text)'", timeout: timeout) {
            seen += try await hive.operatorInbox()
            found = seen.first { $0.body.contains(text) }
            return found != nil
        }
        return found!
    }

    @Test("an agent answers through the hive's tools (whoami, send, remind, ask), in its cage, and its turn is counted from the result line")
    func toolsInCage() async throws {
        let api = try await ModelStandIn()
        defer { Task { await api.stop() } }
        let hive = try LiveHive()
        try await hive.startReal(api: api)
        try await hive.spawn("iris")
        try await hive.eventually("iris is idle", timeout: .seconds(30)) { try await hive.agentRow("iris")?.state == "idle" }
        let script = """
            Please do this.
            @usage in=1000 out=250 read=4000 w5m=300 w1h=200
            @tool whoami {}
            @tool remind {"message":"check the build","delay_seconds":3600}
            @tool ask {"question":"ship it?","options":["yes","no"]}
            @tool send {"to":"operator","body":"pong from iris"}
            @say all done
            """
        _ = try await hive.admin().call(SendCommand(to: "iris", body: script))
        let reply = try await Self.awaitOperator(hive, containing: "pong from iris")
        #expect(reply.from == "iris")
        try await hive.eventually("the turn is acked") { try await hive.agentRow("iris")?.inflight == 0 }
        // The reminder and the question exist: the CLI was allowed every hive tool.
        let reminders = try await hive.admin().call(RemindersCommand()).reminders
        #expect(reminders.contains { $0.agent == "iris" && $0.body.contains("check the build") })
        let questions = try await hive.admin().call(QuestionsCommand()).questions
        #expect(questions.contains { $0.asker == "iris" && $0.question == "ship it?" })
        // Five answers of the model (4 tool calls + the final text), no ToolSearch round trip.
        let calls = api.messageRequests.filter { $0.userText.contains("pong from iris") }
        #expect(calls.count == 5, "one request per step; tool search is off")
        #expect(!calls.contains { String(decoding: $0.body, as: UTF8.self).contains("\"name\":\"ToolSearch\",\"input\"") }, "no ToolSearch call")
        #expect(calls.first?.toolNames.contains("mcp__hive__send") == true, "the hive's tools are in the first request")
        // Stats come from the result line: 5 calls × the usage the API reported, not the streaming start values.
        var rows: [[String: String]] = []
        try await hive.eventually("the turn is recorded") {
            rows = try hive.turnStats("iris").filter { $0["wake_source"] == "operator" }
            return !rows.isEmpty
        }
        let row = try #require(rows.last)
        #expect(row["result_kind"] == "ok")
        #expect(row["output_tokens"] == "1250")
        #expect(row["input_tokens"] == "5000")
        #expect(row["cache_read_tokens"] == "20000")
        #expect(row["cache_creation_tokens"] == "2500")
        #expect(row["cache_creation_1h_tokens"] == "1000")
        #expect(row["cli_version"] == RealClaude.version)
        #expect(row["permission_denials"] == "[]")
        #expect(Double(row["cost_usd"] ?? "0")! > 0)
        // It all happened in a bubblewrap cage, as the agent's own uid (claude's session files are its).
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") {
            #expect(try await hive.agentRow("iris")?.cage?.hasPrefix("bwrap") == true)
            if getuid() == 0 {
                let home = hive.root.appending(path: "agents/iris/harness/home/.claude.json").path
                let owner = try FileManager.default.attributesOfItem(atPath: home)[.ownerAccountID] as? NSNumber
                #expect((owner?.intValue ?? 0) >= 20_000, "claude ran as the agent's uid, not root")
            }
        }
    }

    @Test("the manager's own tools work through the real CLI: it asks to create a config repo")
    func managerTools() async throws {
        let api = try await ModelStandIn()
        defer { Task { await api.stop() } }
        let hive = try LiveHive()
        try await hive.startReal(api: api)
        try await hive.eventually("the manager is idle", timeout: .seconds(30)) { try await hive.agentRow("manager")?.state == "idle" }
        _ = try await hive.admin().call(SendCommand(to: "manager", body: """
            @tool request_init_config {"name":"zed","description":"a new agent"}
            @tool send {"to":"operator","body":"asked for zed"}
            """))
        _ = try await Self.awaitOperator(hive, containing: "asked for zed")
        let pending = try await hive.admin().call(PendingCommand()).approvals
        #expect(pending.contains { $0.agent == "zed" })
    }

    @Test("a session continues across turns, and a requested fresh session really starts without the history")
    func continueAndFresh() async throws {
        let api = try await ModelStandIn()
        defer { Task { await api.stop() } }
        let hive = try LiveHive()
        try await hive.startReal(api: api)
        try await hive.spawn("iris")
        try await hive.eventually("iris is idle", timeout: .seconds(30)) { try await hive.agentRow("iris")?.state == "idle" }
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "remember mark:alpha\n@say noted"))
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "mark:beta\n@tool send {\"to\":\"operator\",\"body\":\"seen $HISTORY\"}"))
        let continued = try await Self.awaitOperator(hive, containing: "seen ")
        #expect(continued.body == "seen alpha,beta", "the second turn continued the first one's session")
        // The operator (from the agent's page) asks for a fresh session.
        let web = hive.runDir.appending(path: "agents/iris/web.sock").path
        let r = try UnixHTTP.request(web, "POST", "/new-session")
        #expect(r.status == 200)
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "mark:gamma\n@tool send {\"to\":\"operator\",\"body\":\"now $HISTORY\"}"))
        let fresh = try await Self.awaitOperator(hive, containing: "now ")
        #expect(fresh.body == "now gamma", "the model saw no earlier turn")
        var rows: [[String: String]] = []
        try await hive.eventually("three turns are recorded") {
            rows = try hive.turnStats("iris").filter { $0["wake_source"] == "operator" }
            return rows.count >= 3
        }
        #expect(rows.last?["session_action"] == "fresh")
        #expect(rows[1]["session_action"] == "continue")
        // Per-turn costs are each turn's own: the CLI's running total is never summed as if per turn.
        let costs = rows.compactMap { Double($0["cost_usd"] ?? "") }
        #expect(costs.count >= 3)
        #expect(abs(costs[1] - costs[0]) < costs[0] * 2, "the continued turn's cost is not the session's total")
    }

    @Test("a subscriber's usage limit parks the agent until the reset (rate_limit_event), then the message is retried")
    func usageLimitParks() async throws {
        let api = try await ModelStandIn()
        defer { Task { await api.stop() } }
        let hive = try LiveHive()
        try await hive.startReal(api: api, subscriber: true, extra: ["HIVE_HARNESS_PARK_CAP": "3"])
        try await hive.spawn("iris")
        try await hive.eventually("iris is idle", timeout: .seconds(30)) { try await hive.agentRow("iris")?.state == "idle" }
        let before = Date().timeIntervalSince1970
        _ = try await hive.admin().call(SendCommand(to: "iris", body: """
            @limit five_hour reset=7200 times=1
            @tool send {"to":"operator","body":"through after the limit"}
            """))
        try await hive.eventually("iris is parked", timeout: .seconds(30)) { try await hive.agentRow("iris")?.state == "rate_limited" }
        let row = try #require(try await hive.agentRow("iris"))
        let until = try #require(row.rateLimitedUntil)
        // The reset time is the event's (within the jitter), not an hour's guess; the park is capped at 3 s here.
        #expect(until > before && until <= before + 30, "parked until the cap, with the reset in view")
        #expect(row.inflight == 1, "the message waits, unacked")
        _ = try await Self.awaitOperator(hive, containing: "through after the limit")
        let stats = try hive.turnStats("iris")
        let limited = try #require(stats.first { $0["result_kind"] == "rate_limited" })
        #expect(limited["detail"]?.contains("five_hour") == true)
    }

    @Test("an overloaded API is retried a bounded number of times by the CLI, then by the harness, and the message gets through")
    func overloadRetries() async throws {
        let api = try await ModelStandIn()
        defer { Task { await api.stop() } }
        let hive = try LiveHive()
        try await hive.startReal(api: api)
        try await hive.spawn("iris")
        try await hive.eventually("iris is idle", timeout: .seconds(30)) { try await hive.agentRow("iris")?.state == "idle" }
        _ = try await hive.admin().call(SendCommand(to: "iris", body: """
            @overloaded times=2
            @tool send {"to":"operator","body":"made it"}
            """))
        _ = try await Self.awaitOperator(hive, containing: "made it", timeout: .seconds(90))
        let overloaded = api.requests.filter { $0.status == 529 }
        #expect(overloaded.count == 2)
    }

    @Test("billing stops wait for the operator: needs_billing, no retry storm, `hive resume` goes on")
    func billingWaits() async throws {
        let api = try await ModelStandIn()
        defer { Task { await api.stop() } }
        let hive = try LiveHive()
        try await hive.startReal(api: api)
        try await hive.spawn("iris")
        try await hive.eventually("iris is idle", timeout: .seconds(30)) { try await hive.agentRow("iris")?.state == "idle" }
        _ = try await hive.admin().call(SendCommand(to: "iris", body: """
            @billing times=1
            @tool send {"to":"operator","body":"paid up"}
            """))
        try await hive.eventually("iris waits for billing", timeout: .seconds(30)) { try await hive.agentRow("iris")?.state == "needs_billing" }
        try await Task.sleep(for: .seconds(2))
        let billed = api.requests.filter { $0.status == 400 }.count
        #expect(billed == 1, "one refused request, no retries while waiting")
        let out = try hive.cli(["resume", "iris"])
        #expect(out.status == 0, "\(out.err)")
        _ = try await Self.awaitOperator(hive, containing: "paid up")
    }

    @Test("hive login stores the credential once; each cage gets it and an allow-listed environment; in a cage claude may use its shell")
    func storedLogin() async throws {
        let api = try await ModelStandIn()
        defer { Task { await api.stop() } }
        let hive = try LiveHive()
        let login = Process()
        login.executableURL = LiveHive.binary
        login.arguments = ["login", "--root", hive.root.path]
        let input = Pipe()
        login.standardInput = input
        login.standardOutput = FileHandle.nullDevice
        try login.run()
        try input.fileHandleForWriting.write(contentsOf: Data("sk-ant-api03-stored-key\n".utf8))
        try input.fileHandleForWriting.close()
        login.waitUntilGone()
        #expect(login.terminationStatus == 0)
        let file = hive.root.appending(path: "credentials/default.json").path
        #expect((try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        var env = try RealClaude.environment(api: api)
        env["ANTHROPIC_API_KEY"] = nil // only the stored one
        env["CORE_ONLY_SECRET"] = "do-not-leak"
        try await hive.start(cage: FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") ? "bwrap" : "process", environment: env)
        try await hive.spawn("iris")
        try await hive.eventually("iris is idle", timeout: .seconds(30)) { try await hive.agentRow("iris")?.state == "idle" }
        _ = try await hive.admin().call(SendCommand(to: "iris", body: """
            @tool Bash {"command":"env > env.txt"}
            @tool send {"to":"operator","body":"env saved"}
            """))
        _ = try await Self.awaitOperator(hive, containing: "env saved")
        #expect(api.messageRequests.last?.headers["x-api-key"] == "sk-ant-api03-stored-key", "the stored key reached the API")
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") else { return }
        let seen = try String(contentsOf: hive.root.appending(path: "agents/iris/state/env.txt"), encoding: .utf8)
        #expect(!seen.contains("do-not-leak"), "nothing of core's environment beyond the allow-list")
        #expect(seen.contains("ANTHROPIC_API_KEY=sk-ant-api03-stored-key"))
        #expect(!seen.contains("PYENV_ROOT"), "core's own settings stay with core")
    }
}
