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

    @Test("an agent answers through the hive's tools (whoami, recv, remind, ask, send), in its cage, and its turn is counted from the result line")
    func toolsInCage() async throws {
        let api = try await ModelStandIn()
        defer { Task { await api.stop() } }
        let hive = try LiveHive()
        try await hive.startReal(api: api)
        try await hive.spawnIdle("iris")
        let script = """
            Please do this.
            @usage in=1000 out=250 read=4000 w5m=300 w1h=200
            @tool whoami {}
            @tool recv {}
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
        // Six answers of the model (5 tool calls + the final text), no ToolSearch round trip.
        let calls = api.messageRequests.filter { $0.userText.contains("pong from iris") }
        #expect(calls.count == 6, "one request per step; tool search is off")
        #expect(!calls.contains { String(decoding: $0.body, as: UTF8.self).contains("\"name\":\"ToolSearch\",\"input\"") }, "no ToolSearch call")
        #expect(calls.first?.toolNames.contains("mcp__hive__send") == true, "the hive's tools are in the first request")
        // Stats come from the result line: 6 calls × the usage the API reported, not the streaming start values.
        var rows: [[String: String]] = []
        try await hive.eventually("the turn is recorded") {
            rows = try hive.turnStats("iris").filter { $0["wake_source"] == "operator" }
            return !rows.isEmpty
        }
        let row = try #require(rows.last)
        #expect(row["result_kind"] == "ok")
        #expect(row["output_tokens"] == "1500")
        #expect(row["input_tokens"] == "6000")
        #expect(row["cache_read_tokens"] == "24000")
        #expect(row["cache_creation_tokens"] == "3000")
        #expect(row["cache_creation_1h_tokens"] == "1200")
        #expect(row["tool_breakdown"]?.contains("mcp__hive__recv") == true)
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
        try await hive.eventually("the manager is idle", timeout: .seconds(30)) { try await hive.agentRow("manager")?.state == .idle }
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
        try await hive.spawnIdle("iris")
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "remember mark:alpha\n@say noted"))
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "mark:beta\n@tool send {\"to\":\"operator\",\"body\":\"seen $HISTORY\"}"))
        let continued = try await Self.awaitOperator(hive, containing: "seen ")
        #expect(continued.body == "seen alpha,beta", "the second turn continued the first one's session")
        // The operator (from the agent's page) asks for a fresh session.
        let web = hive.runDir.appending(path: "agents/iris/page/web.sock").path
        let r = try UnixHTTP.request(web, "POST", "/new-session")
        #expect(r.status == 200)
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "mark:gamma\n@tool send {\"to\":\"operator\",\"body\":\"now $HISTORY\"}"))
        let fresh = try await Self.awaitOperator(hive, containing: "now ")
        #expect(fresh.body == "now gamma", "the model saw no earlier turn")
        // The agent's own new_session (on its socket, as a tool would) reaches the harness through core.
        _ = try await hive.agent("iris").call(NewSessionCommand())
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "mark:delta\n@tool send {\"to\":\"operator\",\"body\":\"again $HISTORY\"}"))
        let again = try await Self.awaitOperator(hive, containing: "again ")
        #expect(again.body == "again delta")
        var rows: [[String: String]] = []
        try await hive.eventually("three turns are recorded") {
            rows = try hive.turnStats("iris").filter { $0["wake_source"] == "operator" }
            return rows.count >= 4
        }
        #expect(rows[2]["session_action"] == "fresh" && rows[3]["session_action"] == "fresh")
        #expect(rows[1]["session_action"] == "continue")
        // Per-turn costs are each turn's own: the CLI's running total is never summed as if per turn.
        let costs = rows.compactMap { Double($0["cost_usd"] ?? "") }
        #expect(costs.count >= 3)
        #expect(abs(costs[1] - costs[0]) < costs[0] * 2, "the continued turn's cost is not the session's total")
    }

    @Test("a subscriber's usage limit parks the agent until the reset (rate_limit_event), then the message is retried; model-scoped windows too",
          arguments: ["five_hour", "seven_day", "seven_day_opus"])
    func usageLimitParks(_ window: String) async throws {
        let api = try await ModelStandIn()
        defer { Task { await api.stop() } }
        let hive = try LiveHive()
        try await hive.startReal(api: api, subscriber: true, extra: ["HIVE_HARNESS_PARK_CAP": "3"])
        try await hive.spawnIdle("iris")
        let before = Date().timeIntervalSince1970
        _ = try await hive.admin().call(SendCommand(to: "iris", body: """
            @limit \(window) reset=7200 times=1
            @tool send {"to":"operator","body":"through after the \(window) limit"}
            """))
        try await hive.eventually("iris is parked", timeout: .seconds(30)) { try await hive.agentRow("iris")?.state == .rateLimited }
        let row = try #require(try await hive.agentRow("iris"))
        let until = try #require(row.rateLimitedUntil)
        // Parked until the cap (3 s here; the reset itself is two hours away), never in the past.
        #expect(until > before && until <= before + 30)
        #expect(row.inflight == 1, "the message waits, unacked")
        _ = try await Self.awaitOperator(hive, containing: "through after the \(window) limit")
        let stats = try hive.turnStats("iris")
        let limited = try #require(stats.first { $0["result_kind"] == "rate_limited" })
        #expect(limited["detail"]?.contains(window) == true, "the window the CLI named is kept")
        let reset = Double(limited["detail"]?.split(separator: " ").dropFirst(3).first ?? "") ?? 0
        #expect(abs(reset - (before + 7200)) < 30, "the reset time is the event's")
    }

    @Test("an overloaded API is retried a bounded number of times by the CLI, then by the harness, and the message gets through")
    func overloadRetries() async throws {
        let api = try await ModelStandIn()
        defer { Task { await api.stop() } }
        let hive = try LiveHive()
        try await hive.startReal(api: api)
        try await hive.spawnIdle("iris")
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
        try await hive.spawnIdle("iris")
        _ = try await hive.admin().call(SendCommand(to: "iris", body: """
            @billing times=1
            @tool send {"to":"operator","body":"paid up"}
            """))
        try await hive.eventually("iris waits for billing", timeout: .seconds(30)) { try await hive.agentRow("iris")?.state == .needsBilling }
        try await Task.sleep(for: .seconds(2))
        let billed = api.requests.filter { $0.status == 400 }.count
        #expect(billed == 1, "one refused request, no retries while waiting")
        let out = try hive.cli(["resume", "iris"])
        #expect(out.status == 0, "\(out.err)")
        _ = try await Self.awaitOperator(hive, containing: "paid up")
    }

    @Test("hive login stores the credential once; the gateway adds it, a gated cage holds a placeholder and an allow-listed environment; in a cage claude may use its shell")
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
        try await hive.spawnIdle("iris")
        _ = try await hive.admin().call(SendCommand(to: "iris", body: """
            @tool Bash {"command":"env > env.txt"}
            @tool send {"to":"operator","body":"env saved"}
            """))
        _ = try await Self.awaitOperator(hive, containing: "env saved")
        #expect(api.messageRequests.last?.headers["x-api-key"] == "sk-ant-api03-stored-key", "the stored key reached the API")
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") else { return }
        let seen = try String(contentsOf: hive.root.appending(path: "agents/iris/state/env.txt"), encoding: .utf8)
        #expect(!seen.contains("do-not-leak"), "nothing of core's environment beyond the allow-list")
        #expect(!seen.contains("sk-ant-api03-stored-key"), "the credential stays with the gateway")
        #expect(seen.contains("ANTHROPIC_API_KEY=sk-ant-api03-held-by-the-hive-gateway"), "a placeholder of the stored credential's kind")
        #expect(!seen.contains("PYENV_ROOT"), "core's own settings stay with core")
    }

    @Test("a turn past its timeout is stopped and counted as failed; the operator's cancel stops a turn at once")
    func timeoutAndCancel() async throws {
        let api = try await ModelStandIn()
        defer { Task { await api.stop() } }
        let hive = try LiveHive()
        try await hive.startReal(api: api)
        try await hive.eventually("the manager is idle", timeout: .seconds(30)) { try await hive.agentRow("manager")?.state == .idle }
        _ = try await hive.deploy("iris", #"{"session":{"turn_timeout_seconds":10}}"#)
        try await hive.eventually("iris is idle", timeout: .seconds(30)) { try await hive.agentRow("iris")?.state == .idle }
        let sent = ContinuousClock.now
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "@sleep 120\n@say too late"))
        var rows: [[String: String]] = []
        try await hive.eventually("the turn timed out", timeout: .seconds(40)) {
            rows = try hive.turnStats("iris").filter { $0["wake_source"] == "operator" }
            return !rows.isEmpty
        }
        #expect(ContinuousClock.now - sent < .seconds(30), "stopped at its timeout, not at the model's pace")
        #expect(rows[0]["result_kind"] == "failed", "\(rows)")
        #expect(rows[0]["detail"]?.contains("timed out") == true)
        // The retry hangs the same way; the operator cancels it from the agent's page. (The first turn's
        // `thinking` may still show while its report goes to core: wait for the harness's second turn.)
        let web = hive.runDir.appending(path: "agents/iris/page/web.sock").path
        try await hive.eventually("the retry is running", timeout: .seconds(30)) {
            let state = try UnixHTTP.json(web, "/state") as? [String: Any] ?? [:]
            return ((state["turns"] as? NSNumber)?.intValue ?? 0) >= 2 && (state["state"] as? String) == "thinking"
        }
        try await Task.sleep(for: .seconds(1))
        let cancelled = ContinuousClock.now
        #expect(try UnixHTTP.request(web, "POST", "/cancel").body.contains("true"))
        try await hive.eventually("the cancelled turn is recorded", timeout: .seconds(15)) {
            try hive.turnStats("iris").contains { $0["detail"] == "cancelled" }
        }
        #expect(ContinuousClock.now - cancelled < .seconds(8), "cancel ends the claude process group at once")
    }

    @Test("prompt too long: the first exchange cannot be compacted ('Not enough messages') and is retried, a later one the CLI recovers from within its turn; a requested compaction runs before the next turn")
    func compaction() async throws {
        let api = try await ModelStandIn()
        defer { Task { await api.stop() } }
        let hive = try LiveHive()
        try await hive.startReal(api: api)
        try await hive.spawnIdle("iris")
        // The first exchange of a session is too long: the harness's /compact finds nothing to compact and
        // the retry goes through.
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "mark:one\n@too-long times=1\n@tool send {\"to\":\"operator\",\"body\":\"first through\"}"))
        _ = try await Self.awaitOperator(hive, containing: "first through")
        let rows = try hive.turnStats("iris").filter { $0["wake_source"] != "system" }
        #expect(rows.map { $0["result_kind"] ?? "" }.prefix(1) == ["prompt_too_long"])
        #expect(rows.contains { $0["wake_source"] == "compact" }, "the harness compacted once")
        // Later in the session (a few exchanges on): the CLI compacts by itself and the turn succeeds.
        for n in 1...3 {
            _ = try await hive.admin().call(SendCommand(to: "iris", body: "mark:filler\(n)\n@tool send {\"to\":\"operator\",\"body\":\"filler \(n)\"}"))
            _ = try await Self.awaitOperator(hive, containing: "filler \(n)")
        }
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "mark:two\n@too-long times=1\n@tool send {\"to\":\"operator\",\"body\":\"second sees $HISTORY\"}"))
        let second = try await Self.awaitOperator(hive, containing: "second sees")
        #expect(second.body.contains("two"))
        let turns = try hive.turnStats("iris").filter { $0["wake_source"] == "operator" }
        #expect(turns.last?["result_kind"] == "ok" && turns.filter { $0["result_kind"] == "prompt_too_long" }.count == 1,
                "the CLI handled the second one within its turn")
        // (Claude Code 2.1.332 recovers from this within the turn by retrying; in these sessions it wrote no
        // compact_boundary. The harness's own compaction is what the first case and the next one prove.)
        // The operator asks for a compaction from the agent's page: it runs before the next turn.
        let summariesBefore = api.messageRequests.filter { $0.userText.contains("detailed summary") }.count
        let web = hive.runDir.appending(path: "agents/iris/page/web.sock").path
        #expect(try UnixHTTP.request(web, "POST", "/compact").status == 200)
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "@tool send {\"to\":\"operator\",\"body\":\"after compacting\"}"))
        _ = try await Self.awaitOperator(hive, containing: "after compacting")
        #expect(api.messageRequests.filter { $0.userText.contains("detailed summary") }.count > summariesBefore)
    }

    @Test("an API key's 429 is retried soon (not parked for an hour) and the message gets through")
    func apiKeyThrottle() async throws {
        let api = try await ModelStandIn()
        defer { Task { await api.stop() } }
        let hive = try LiveHive()
        try await hive.startReal(api: api)
        try await hive.spawnIdle("iris")
        let sent = ContinuousClock.now
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "@ratelimit retry-after=1 times=3\n@tool send {\"to\":\"operator\",\"body\":\"past the throttle\"}"))
        _ = try await Self.awaitOperator(hive, containing: "past the throttle")
        #expect(ContinuousClock.now - sent < .seconds(40))
        #expect(api.requests.filter { $0.status == 429 }.count == 3)
    }

    @Test("without a cage claude gets the hive's tools and reading files only: a refused tool is recorded and the manager told once")
    func deniedOutsideCage() async throws {
        let api = try await ModelStandIn()
        defer { Task { await api.stop() } }
        let hive = try LiveHive()
        try await hive.start(cage: "process", environment: try RealClaude.environment(api: api))
        try await hive.spawnIdle("iris")
        for n in 1...2 {
            _ = try await hive.admin().call(SendCommand(to: "iris", body: "@tool Bash {\"command\":\"touch /tmp/hive-denied-\(n)\"}\n@tool send {\"to\":\"operator\",\"body\":\"tried \(n)\"}"))
            _ = try await Self.awaitOperator(hive, containing: "tried \(n)")
        }
        #expect(!FileManager.default.fileExists(atPath: "/tmp/hive-denied-1"), "the shell never ran")
        let rows = try hive.turnStats("iris").filter { $0["wake_source"] == "operator" }
        #expect(rows.allSatisfy { $0["permission_denials"] == #"["Bash"]"# && $0["result_kind"] == "ok" })
        #expect(rows.first?["detail"]?.contains("refused") == true)
        let told = try hive.sqlite("broker.sqlite", "SELECT body FROM message WHERE recipient = 'manager' AND body LIKE '%was refused%'")
        #expect(told.count == 1, "told once per tool, not per turn")
        let page = try UnixHTTP.request(hive.runDir.appending(path: "agents/iris/page/web.sock").path, "GET", "/state")
        #expect(page.body.contains("Bash"), "the agent's page shows what was refused")
    }

    @Test("agents on one credential wait together: when one hits the credential's limit, another's messages wait for the same reset")
    func sharedCredentialParks() async throws {
        let api = try await ModelStandIn()
        defer { Task { await api.stop() } }
        let hive = try LiveHive()
        try await hive.startReal(api: api, subscriber: true, extra: ["HIVE_HARNESS_PARK_CAP": "4"])
        try await hive.spawnIdle("iris", "bob")
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "@limit five_hour reset=7200 times=1\n@tool send {\"to\":\"operator\",\"body\":\"iris through\"}"))
        try await hive.eventually("iris is parked", timeout: .seconds(30)) { try await hive.agentRow("iris")?.state == .rateLimited }
        let limitedRequests = api.messageRequests.count
        _ = try await hive.admin().call(SendCommand(to: "bob", body: "@tool send {\"to\":\"operator\",\"body\":\"bob through\"}"))
        let bob = try #require(try await hive.agentRow("bob"))
        #expect(bob.state == .rateLimited && bob.detail?.contains("iris hit its five_hour limit") == true, "\(bob)")
        try await Task.sleep(for: .seconds(1))
        #expect(!api.messageRequests.dropFirst(limitedRequests).contains { $0.userText.contains("bob through") }, "bob spent no request on a known limit")
        // Both go on after the (capped) reset.
        var seen: [String] = []
        try await hive.eventually("both got through", timeout: .seconds(60)) {
            seen += try await hive.operatorInbox().map(\.body)
            return seen.contains("iris through") && seen.contains("bob through")
        }
    }

    @Test("a long reminder text is saved by the agent's own MCP server in its state dir, and the reminder points there")
    func longReminder() async throws {
        let api = try await ModelStandIn()
        defer { Task { await api.stop() } }
        let hive = try LiveHive()
        try await hive.startReal(api: api)
        try await hive.spawnIdle("iris")
        let text = "plan: " + String(repeating: "step ", count: 500) // 2506 bytes: over what a reminder carries inline
        _ = try await hive.admin().call(SendCommand(to: "iris", body: """
            @tool remind {"message":"\(text)","delay_seconds":7200}
            @tool send {"to":"operator","body":"reminded"}
            """))
        _ = try await Self.awaitOperator(hive, containing: "reminded")
        let reminder = try #require(try await hive.admin().call(RemindersCommand(agent: "iris")).reminders.first)
        let path = try #require(reminder.body.firstMatch(of: #/(/agents/iris/state/reminders/reminder-[0-9]+-[0-9A-F]+\.md)/#).map { String($0.output.1) })
        let file = hive.root.appending(path: "agents/iris/state/reminders").appending(path: URL(filePath: path).lastPathComponent)
        #expect(try String(contentsOf: file, encoding: .utf8) == text)
        if getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") {
            let owner = try FileManager.default.attributesOfItem(atPath: file.path)[.ownerAccountID] as? NSNumber
            #expect((owner?.intValue ?? 0) >= 20_000, "written as the agent, not by root")
        }
    }
}
