import Foundation
import HiveClient
import HiveWire
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The harness end to end: real core, real `hive agent`, real `hive mcp`, the scripted stand-in for claude.
@Suite("Harness end to end", .timeLimit(.minutes(3)))
struct HarnessTests {
    @Test("a message drives a turn; the turn sends through the MCP tool; both acked; stats are right")
    func messageFlow() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("alice")
        try await hive.spawn("bob")
        let sent = try await hive.admin().call(SendCommand(to: "alice", body: "please greet bob"))
        try hive.startAgent("alice", script: ["steps": [[
            "kind": "tools", "usage": ["input_tokens": 7, "cache_creation_input_tokens": 300, "cache_read_input_tokens": 9000, "output_tokens": 42],
            "cost": 0.25, "calls": [["tool": "send", "arguments": ["to": "bob", "body": "hello bob", "in_reply_to": sent.ids[0]]]],
        ]]])
        try hive.startAgent("bob")
        try await hive.eventually("bob has finished a turn") {
            let stats = try hive.turnStats("bob")
            return hive.runs(of: "bob").count == 1 && stats.count == 1
        }

        let aliceRun = try #require(hive.runs(of: "alice").first)
        let argv = aliceRun["argv"] as? [String] ?? []
        #expect(argv.starts(with: ["--print", "--verbose", "--output-format", "stream-json", "--model"]))
        #expect(argv.contains("--strict-mcp-config") && argv.contains("--mcp-config"))
        #expect((aliceRun["prompt"] as? String)?.contains("New message \(sent.ids[0]) from operator") == true)
        let bobPrompt = hive.runs(of: "bob").first?["prompt"] as? String ?? ""
        #expect(bobPrompt.contains("from alice, replying to message \(sent.ids[0])") && bobPrompt.contains("hello bob"))

        try await hive.eventually("both are acked") {
            let a = try await hive.agentRow("alice"), b = try await hive.agentRow("bob")
            return a?.inflight == 0 && a?.unread == 0 && b?.inflight == 0 && b?.unread == 0
        }
        let stat = try #require(try hive.turnStats("alice").first)
        #expect(stat["result_kind"] == "ok")
        #expect(stat["wake_source"] == "operator")
        // Two API calls (the tool_use message and the final answer), each written as several lines with
        // the same usage: each call counts once.
        #expect(stat["input_tokens"] == "14" && stat["output_tokens"] == "84")
        #expect(stat["cache_read_tokens"] == "18000" && stat["cache_creation_tokens"] == "600")
        #expect(stat["context_tokens"] == "9307", "the context is the last call's prompt")
        // Ours from the tokens and the price table; the CLI's own figure (its total_cost_usd) beside it.
        let cost = try #require(Double(stat["cost_usd"] ?? ""))
        let priced = TokenEconomyTests.shares(stat).reduce(0) { $0 + TokenEconomyTests.priced($1.key, $1.value) }
        #expect(cost > 0 && abs(cost - priced) < 1e-12, "\(cost) vs \(priced)")
        #expect(stat["cli_cost_usd"] == "0.25")
        #expect(stat["tool_calls"] == "1")
        #expect(stat["tool_breakdown"]?.contains("mcp__hive__send") == true)
        #expect(stat["session_action"] == "fresh")

        let cli = try hive.cli(["stats", "alice", "--json"])
        #expect(cli.status == 0)
        let rows = try JSONSerialization.jsonObject(with: Data(cli.out.utf8)) as? [[String: Any]]
        #expect(rows?.count == 1)
        #expect(rows?.first?["result_kind"] as? String == "ok")
        #expect(rows?.first?["cost_usd"] as? Double == cost)
        #expect(rows?.first?["cli_cost_usd"] as? Double == 0.25)
        #expect(try hive.cli(["stats", "alice", "--since", "1h"]).out.contains("1 turns, 1 ok"))
        #expect(try hive.cli(["stats", "alice", "--since", "soon"]).status != 0)
        let report = try hive.cli(["stats", "alice", "--range", "7d"]).out
        #expect(report.contains("last 7d: 1 turns, cost \(String(format: "%.4f", cost)) USD") && report.contains("top tools: mcp__hive__send 1"), "\(report)")
        #expect(try hive.cli(["stats", "alice", "--range", "1y"]).err.contains("--range takes 24h, 7d or 30d"))
    }

    @Test("a rejected rate limit parks the agent until the reset, then the same message succeeds")
    func rateLimit() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("iris")
        try hive.startAgent("iris", script: ["steps": [["kind": "rate_limited", "resets_in": 6], ["kind": "ok"]]])
        let sentAt = Date().timeIntervalSince1970
        let id = try await hive.admin().call(SendCommand(to: "iris", body: "work")).ids[0]
        try await hive.eventually("iris is rate limited") { try await hive.agentRow("iris")?.state == .rateLimited }
        let row = try await hive.agentRow("iris")
        let until = try #require(row?.rateLimitedUntil)
        #expect(until >= sentAt + 5 && until < sentAt + 15, "the reset the stand-in gave (6 s after its turn), plus jitter")
        #expect(row?.inflight == 1, "the message is held, not acked")
        #expect(hive.runs(of: "iris").count == 1, "parked: no retries before the reset")
        try await hive.eventually("the retry succeeded", timeout: .seconds(30)) { try await hive.agentRow("iris")?.inflight == 0 }
        let runs = hive.runs(of: "iris")
        #expect(runs.count == 2)
        #expect((runs.last?["prompt"] as? String)?.contains("New message \(id)") == true)
        #expect(try hive.turnStats("iris").map { $0["result_kind"] } == ["rate_limited", "ok"])
        #expect(try await hive.agentRow("iris")?.rateLimitedUntil == nil)
    }

    @Test("usage-limit text in an error result parks too; transient errors retry without parking")
    func errorTexts() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("iris")
        let reset = Int(Date().timeIntervalSince1970) + 2
        try hive.startAgent("iris", script: ["steps": [
            ["kind": "error_result", "text": "API Error: 529 Overloaded. This is a server-side issue, usually temporary — try again in a moment."],
            ["kind": "error_result", "text": "Claude AI usage limit reached|\(reset)"],
            ["kind": "ok"],
        ]])
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "work"))
        try await hive.eventually("done", timeout: .seconds(30)) {
            let row = try await hive.agentRow("iris")
            return row?.inflight == 0 && hive.runs(of: "iris").count == 3
        }
        #expect(try hive.turnStats("iris").map { $0["result_kind"] } == ["failed", "rate_limited", "ok"])
        #expect(try await hive.agentRow("iris")?.deadLetters == 0)
    }

    @Test("Prompt is too long: compact once on the same session, then retry")
    func compaction() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("iris")
        try hive.startAgent("iris", script: ["steps": [["kind": "ok"], ["kind": "prompt_too_long"], ["kind": "ok"]]])
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "first"))
        try await hive.eventually("first done") { try hive.turnStats("iris").count == 1 }
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "second"))
        try await hive.eventually("second done") {
            let row = try await hive.agentRow("iris")
            return try row?.inflight == 0 && hive.turnStats("iris").count == 4
        }
        let prompts = hive.runs(of: "iris").map { ($0["prompt"] as? String ?? "").split(separator: "\n").first.map(String.init) ?? "" }
        #expect(prompts.count == 4)
        #expect(prompts[2] == "/compact")
        #expect(prompts[1] == prompts[3], "the same message is retried after compaction")
        let argv = hive.runs(of: "iris")[2]["argv"] as? [String] ?? []
        #expect(argv.contains("--continue"), "compaction runs on the same session")
        #expect(try hive.turnStats("iris").map { $0["result_kind"] } == ["ok", "prompt_too_long", "ok", "ok"])
        #expect(try hive.turnStats("iris").map { $0["session_action"] } == ["fresh", "continue", "compact", "continue"])
    }

    @Test("a big context and a cold cache start a fresh session with a handoff line")
    func freshSession() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("iris")
        let small = ["input_tokens": 10, "cache_creation_input_tokens": 18_000, "cache_read_input_tokens": 0, "output_tokens": 10]
        let big = ["input_tokens": 10, "cache_creation_input_tokens": 1000, "cache_read_input_tokens": 150_000, "output_tokens": 10]
        try hive.startAgent("iris", script: ["steps": [["kind": "ok", "usage": small], ["kind": "ok", "usage": big], ["kind": "ok"]]],
                            extra: ["--cache-ttl", "4"])
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "one"))
        try await hive.eventually("one done") { try hive.turnStats("iris").count == 1 }
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "two (cache still warm)"))
        try await hive.eventually("two done") { try hive.turnStats("iris").count == 2 }
        try await Task.sleep(for: .seconds(5))
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "three (cache cold)"))
        try await hive.eventually("three done") { try hive.turnStats("iris").count == 3 }
        let runs = hive.runs(of: "iris")
        #expect((runs[1]["argv"] as? [String])?.contains("--continue") == true)
        #expect((runs[2]["argv"] as? [String])?.contains("--continue") == false)
        #expect((runs[2]["prompt"] as? String)?.hasPrefix("(A fresh session started") == true)
        let stats = try hive.turnStats("iris")
        #expect(stats.map { $0["session_action"] } == ["fresh", "continue", "fresh"])
        #expect(stats[2]["session_reason"]?.contains("cache cold") == true)
        // Continuing would re-write 151,010 cold tokens at 1.25× (and carry them into the coming turns); a
        // fresh start costs about what the last fresh session began with (18,010) and the lost conversation.
        let continueCost = Double(stats[2]["estimated_continue_cost"] ?? "") ?? 0, freshCost = Double(stats[2]["estimated_fresh_cost"] ?? "") ?? 0
        #expect(continueCost >= 151_010 * 1.25 && freshCost < continueCost, "\(stats[2])")
    }

    @Test("new_session on the agent socket makes the next turn fresh, once")
    func newSessionRequest() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("iris")
        try hive.startAgent("iris")
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "one"))
        try await hive.eventually("one done") { try hive.turnStats("iris").count == 1 }
        _ = try await hive.agent("iris").call(NewSessionCommand())
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "two"))
        try await hive.eventually("two done") { try hive.turnStats("iris").count == 2 }
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "three"))
        try await hive.eventually("three done") { try hive.turnStats("iris").count == 3 }
        #expect(try hive.turnStats("iris").map { $0["session_action"] } == ["fresh", "fresh", "continue"])
    }

    @Test("a message whose turns keep failing is dead-lettered with the reason; the manager is told")
    func deadLetter() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("iris")
        try hive.startAgent("iris", script: ["default": ["kind": "error_result", "text": "API Error: 400 invalid request"]],
                            extra: ["--max-failures", "3"])
        let id = try await hive.admin().call(SendCommand(to: "iris", body: "poison")).ids[0]
        try await hive.eventually("dead-lettered") { try await hive.agentRow("iris")?.deadLetters == 1 }
        #expect(hive.runs(of: "iris").count == 3)
        let notice = try await hive.message(to: "manager", containing: "dead-lettered")
        #expect(notice?.from == "system")
        #expect(notice?.body.hasPrefix("dead_letter: iris dead-lettered message \(id)") == true)
        #expect(notice?.body.contains("API Error: 400 invalid request") == true)
        #expect(notice?.body.contains("| poison") == true, "the message, quoted")
        #expect(try await hive.agentRow("iris")?.inflight == 0)
        #expect(hive.runs(of: "iris").count == 3, "the dead letter is not retried")
    }

    @Test("a harness killed mid-turn gets the message again when it comes back (process cage)")
    func killedMidTurn() async throws {
        let hive = try LiveHive()
        // The manager's turns (on system notices such as `spawned`) take no step of iris's script.
        let env = try hive.fakeClaudeEnvironment(script: ["steps": [["kind": "slow", "seconds": 60], ["kind": "ok"]],
                                                          "by_prompt": [["contains": "from system", "step": "ok"]]])
        try await hive.start(cage: "process", environment: env)
        try await hive.spawn("iris")
        try await hive.eventually("iris's harness is up") { try await hive.agentRow("iris")?.state == .idle }
        let id = try await hive.admin().call(SendCommand(to: "iris", body: "long job")).ids[0]
        try await hive.eventually("the turn is running") { hive.runs(of: "iris").count == 1 }
        for pid in LiveHive.children(of: hive.process!.processIdentifier) {
            let cmd = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
            if cmd.contains("agent\u{0}--name\u{0}iris") { kill(pid, SIGKILL) }
        }
        try await hive.eventually("redelivered and done", timeout: .seconds(40)) {
            let row = try await hive.agentRow("iris")
            return hive.runs(of: "iris").count == 2 && row?.inflight == 0
        }
        let retry = hive.runs(of: "iris")[1]["prompt"] as? String ?? ""
        #expect(retry.contains("New message \(id)"))
        #expect(retry.contains("Delivered before without a finished turn"))
        // The manager runs too in the process cage: the crash notice drove one of its turns.
        try await hive.eventually("the manager heard of the crash") {
            hive.runs(of: "manager").contains { ($0["prompt"] as? String)?.contains("container_crash: the cage of iris was killed by signal 9") == true }
        }
    }

    @Test("when core dies by kill -9, the harnesses it started stop too (no orphans, no duplicates on restart)")
    func noOrphans() async throws {
        let hive = try LiveHive()
        try await hive.start(cage: "process", environment: try hive.fakeClaudeEnvironment())
        try await hive.spawn("iris")
        try await hive.eventually("harnesses up") {
            let iris = try await hive.agentRow("iris"), manager = try await hive.agentRow("manager")
            return iris?.state == .idle && manager?.state == .idle
        }
        let corePID = hive.process!.processIdentifier
        let children = LiveHive.children(of: corePID)
        #expect(children.count == 2)
        hive.kill9()
        try await hive.eventually("the harnesses exited", timeout: .seconds(15)) {
            children.allSatisfy { pid in
                let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
                return stat.isEmpty || stat.contains(") Z ")
            }
        }
    }

    @Test("a core restart while the harness is parked does not leave it deaf")
    func coreRestart() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("iris")
        try hive.startAgent("iris")
        try await hive.eventually("iris idle") { try await hive.agentRow("iris")?.state == .idle }
        #expect(await hive.terminate() == 0)
        try await hive.start()
        try await hive.eventually("iris reconnected", timeout: .seconds(30)) { try await hive.agentRow("iris")?.state == .idle }
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "are you there?"))
        try await hive.eventually("the turn ran") { try hive.turnStats("iris").count == 1 }
    }

    @Test("claude missing shows in hive ls with what to do, and the message waits")
    func claudeMissing() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("iris")
        let p = Process()
        p.executableURL = LiveHive.binary
        p.arguments = ["agent", "--name", "iris", "--root", hive.root.path, "--run-dir", hive.runDir.path]
        var env = ProcessInfo.processInfo.environment
        env["HIVE_CLAUDE"] = hive.dir.appending(path: "no-such-claude").path
        p.environment = env
        p.standardError = FileHandle.nullDevice
        try p.run()
        hive.agents.append(p)
        try await hive.eventually("claude_missing shown") { try await hive.agentRow("iris")?.state == .claudeMissing }
        #expect(try await hive.agentRow("iris")?.detail?.contains("set HIVE_CLAUDE") == true)
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "waits"))
        try await Task.sleep(for: .milliseconds(500))
        let row = try await hive.agentRow("iris")
        #expect(row?.inflight == 1 && row?.deadLetters == 0, "held, not failed")
    }

    @Test("an agent's turn sets a reminder through the MCP tool; it comes back as a turn from 'reminder'")
    func remindTool() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("iris")
        try hive.startAgent("iris", script: ["steps": [["kind": "tools", "calls": [["tool": "remind", "arguments": ["message": "look at the logs", "delay_seconds": 1]]]]]])
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "remind yourself"))
        try await hive.eventually("the reminder drove a turn", timeout: .seconds(30)) {
            hive.runs(of: "iris").contains { ($0["prompt"] as? String)?.contains("from reminder") == true }
        }
        let prompt = hive.runs(of: "iris").last?["prompt"] as? String ?? ""
        #expect(prompt.contains("look at the logs"))
        #expect(!prompt.contains("To answer"), "no reply hint for a reminder")
        #expect(try await hive.agent("iris").call(ReminderRollupCommand(sinceSecs: 600)).successes == 1)
    }

    @Test("not logged in shows as needs_login with what to do; the message waits and is not failed")
    func needsLogin() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("iris")
        try hive.startAgent("iris", script: ["default": ["kind": "error_result", "text": "Not logged in · Please run /login"]])
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "hello"))
        try await hive.eventually("needs_login shown") { try await hive.agentRow("iris")?.state == .needsLogin }
        let row = try await hive.agentRow("iris")
        #expect(row?.detail?.contains("hive login") == true && row?.detail?.contains("hive restart iris") == true)
        #expect(row?.inflight == 1 && row?.deadLetters == 0)
    }

    @Test("MCP tool errors come back as tool errors with a clear text")
    func toolErrors() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("iris")
        try hive.startAgent("iris", script: ["steps": [["kind": "tools", "calls": [["tool": "send", "arguments": ["to": "ghost", "body": "boo"]]]]]])
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "try it"))
        try await hive.eventually("turn done") { try hive.turnStats("iris").count == 1 }
        let results = try hive.sqlite("agents/iris/harness/events.sqlite", "SELECT body FROM event WHERE body LIKE '%tool_result%'")
        #expect(results.count == 1)
        #expect(results.first?["body"]?.contains("unknown recipient 'ghost'") == true)
        #expect(results.first?["body"]?.contains(#""is_error":true"#) == true)
        #expect(try hive.turnStats("iris").first?["result_kind"] == "ok", "a tool error is the agent's to handle, not a failed turn")
    }
}
