import ArgumentParser
import Foundation
import HiveClient
import HiveHost
import HiveWire

/// `hive demo-claude`: the scripted stand-in `hive up --demo` runs instead of Claude, so a newcomer
/// without a Claude login can watch messages flow, turns run and stats fill. It speaks claude's
/// stream-json and acts through the agent's own socket (named in the --mcp-config it is given), so it
/// can only do what the agent could. Everything it writes says it is a demo.
struct DemoClaude: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo-claude", abstract: "The scripted stand-in for claude used by `hive up --demo`.", shouldDisplay: false)

    @Option(name: .customLong("mcp-config")) var mcpConfig: String?
    @Option var model: String = "demo"
    @Flag(name: .customLong("continue")) var continueSession = false
    @Argument(parsing: .allUnrecognized) var rest: [String] = []

    func run() async throws {
        let prompt = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        let session = UUID().uuidString.lowercased()
        emit(["type": "system", "subtype": "init", "session_id": session, "model": "demo-stand-in",
              "cwd": FileManager.default.currentDirectoryPath, "claude_code_version": "demo"])
        if prompt.hasPrefix("/compact") {
            emit(["type": "system", "subtype": "compact_boundary", "compact_metadata": ["trigger": "manual", "pre_tokens": 4000, "post_tokens": 900]])
            return result(session, text: "", cost: 0.001)
        }
        try await Task.sleep(for: .milliseconds(Int.random(in: 600...1500))) // look like thinking
        guard let socket = socketPath(), let me = try? await HiveConnection(path: socket).call(WhoamiCommand()).name else {
            return result(session, text: "(demo) no hive socket in the MCP config", cost: 0, isError: true)
        }
        let (id, from, body) = Self.parse(prompt)
        var actions: [(to: String, body: String)] = []
        if me == "manager", let step = await configStep(from: from, body: body, socket: socket) {
            actions.append(("operator", step))
        } else if me == "manager", let step = await questionStep(from: from, body: body, socket: socket) {
            actions.append(("operator", step))
        } else if me == "manager" {
            if from == "operator" {
                actions.append(("*", "(demo) The operator asks: \(body.prefix(300)). Please report back to me."))
                actions.append(("operator", "(demo) I asked every agent to help with that; I will pass on what they report."))
            } else if from != "system" && from != "reminder" {
                actions.append(("operator", "(demo) \(from) reports: \(body.prefix(300))"))
            }
        } else if from == "manager" || from == "operator" {
            actions.append((from, "(demo) \(me) here: done with “\(body.prefix(80))”."))
        }
        let conn = try HiveConnection(path: socket)
        var blocks: [[String: Any]] = [["type": "text", "text": "(demo) \(me) read message \(id ?? 0) from \(from)."]]
        for (n, a) in actions.enumerated() { blocks.append(["type": "tool_use", "id": "toolu_demo_\(n)", "name": "mcp__hive__send", "input": ["to": a.to, "body": a.body]]) }
        let usage: [String: Any] = ["input_tokens": Int.random(in: 5...40), "cache_creation_input_tokens": Int.random(in: 200...2000),
                                    "cache_read_input_tokens": Int.random(in: 3000...20000), "output_tokens": Int.random(in: 40...300)]
        let messageID = "msg_demo_\(UUID().uuidString.prefix(8))"
        for block in blocks {
            emit(["type": "assistant", "session_id": session, "message": ["id": messageID, "role": "assistant", "model": "demo-stand-in",
                                                                         "content": [block], "usage": usage]])
        }
        for (n, a) in actions.enumerated() {
            let text: String
            do {
                let r = try await conn.call(SendCommand(to: a.to, body: a.body, inReplyTo: a.to == from ? id : nil))
                text = "sent (id \(r.ids.map(String.init).joined(separator: ", ")))"
            } catch {
                text = "\(error)"
            }
            emit(["type": "user", "session_id": session, "message": ["role": "user", "content": [
                ["type": "tool_result", "tool_use_id": "toolu_demo_\(n)", "content": text, "is_error": false]]]])
        }
        result(session, text: "(demo) done", cost: Double.random(in: 0.002...0.02))
    }

    /// The demo manager's part of bringing a new agent to life: "new agent NAME" from the operator asks for
    /// init_config; the config_ready that follows is answered with a commit and request_apply_commit.
    /// Returns what to tell the operator, or nil when the message is not about that.
    func configStep(from: String, body: String, socket: String) async -> String? {
        let conn: HiveConnection
        do { conn = try HiveConnection(path: socket) } catch { return nil }
        if from == "operator", let name = body.firstMatch(of: /(?i)(?:new|create|spawn) agent ([a-z][a-z0-9-]{0,30})/)?.1 {
            do {
                let a = try await conn.call(RequestInitConfigCommand(name: String(name), description: "(demo) asked for by the operator")).approval
                return "(demo) I asked to create \(name): approve it with `hive approve \(a.id)` (see `hive pending`)."
            } catch { return "(demo) I could not ask for \(name): \(error)" }
        }
        guard from == "system", body.hasPrefix("config_ready:"),
              let name = body.firstMatch(of: /config repo of ([a-z][a-z0-9-]*)/)?.1 else { return nil }
        // Inside a cage the repo is at /agents/<name>/config; the process cage sees the host path.
        let hostPath = body.firstMatch(of: /, (\/[^ ]+\/config) on the host/)?.1
        guard let repo = ["/agents/\(name)/config", hostPath.map(String.init)].compactMap({ $0 })
                .first(where: { FileManager.default.fileExists(atPath: "\($0)/agent.json") }) else {
            return "(demo) config_ready for \(name), but I cannot see its repo"
        }
        do {
            let file = URL(filePath: "\(repo)/agent.json")
            var config = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any] ?? [:]
            config["description"] = "(demo) an agent the demo manager configured"
            config["system_prompt"] = "You are \(name), created in the hive's demo."
            try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]).write(to: file)
            try Self.git(["add", "agent.json"], in: repo)
            try Self.git(["commit", "-q", "-m", "(demo) first config of \(name)"], in: repo)
            let sha = try Self.git(["rev-parse", "HEAD"], in: repo)
            let a = try await conn.call(RequestApplyCommitCommand(agent: String(name), commitRef: sha, description: "(demo) first config of \(name)")).approval
            return "(demo) I committed a first config for \(name): `hive approve \(a.id)` starts it (`hive pending` shows the diff)."
        } catch {
            return "(demo) I could not configure \(name): \(error)"
        }
    }

    /// The demo manager's questions: "ask me" from the operator puts a question with options to the
    /// operator; the answer that comes back is acknowledged. Nil when the message is about neither.
    func questionStep(from: String, body: String, socket: String) async -> String? {
        guard from == "operator" else { return nil }
        if body.hasPrefix("[answer to question") {
            return "(demo) Thanks, noted: \(body.split(separator: "—").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? body)."
        }
        guard body.range(of: "ask me", options: .caseInsensitive) != nil else { return nil }
        do {
            let q = try await HiveConnection(path: socket).call(AskCommand(
                question: "(demo) What should the swarm look at next?", options: ["the docs", "the tests", "nothing for now"], ttlSeconds: 3600))
            return "(demo) I asked you question \(q.id): answer it on the dashboard or with `hive answer \(q.id) --choice 1`."
        } catch {
            return "(demo) I could not ask: \(error)"
        }
    }

    @discardableResult
    static func git(_ args: [String], in dir: String) throws -> String {
        let result = try ChildProcess.run("/usr/bin/git", ["-c", "user.name=demo manager", "-c", "user.email=manager@hive.invalid", "-C", dir] + args)
        guard result.status == 0 else { throw RequestError("git \(args.first ?? "") failed in \(dir): \(result.lastError)") }
        return result.text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Sender, message id and body from the harness's wake prompt.
    static func parse(_ prompt: String) -> (Int64?, String, String) {
        let lines = prompt.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let head = lines.first(where: { $0.hasPrefix("New message ") }) else { return (nil, "system", prompt) }
        let words = head.split(separator: " ")
        let id = words.count > 2 ? Int64(words[2]) : nil
        let from = words.count > 4 ? String(words[4]).trimmingCharacters(in: CharacterSet(charactersIn: ":,")) : "system"
        // The wake prompt is: head, flag lines, a blank line, the body, a blank line, hints.
        let headAt = lines.firstIndex(of: head) ?? 0
        guard let open = lines[headAt...].firstIndex(of: ""), let close = lines.lastIndex(of: ""), close > open else {
            return (id, from, "")
        }
        return (id, from, lines[(open + 1)..<close].joined(separator: "\n"))
    }

    func socketPath() -> String? {
        guard let path = mcpConfig, let data = FileManager.default.contents(atPath: path),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let servers = obj["mcpServers"] as? [String: Any], let hive = servers["hive"] as? [String: Any],
              let args = hive["args"] as? [String], let i = args.firstIndex(of: "--socket"), i + 1 < args.count else { return nil }
        return args[i + 1]
    }

    func result(_ session: String, text: String, cost: Double, isError: Bool = false) {
        emit(["type": "result", "subtype": "success", "is_error": isError, "result": text, "session_id": session,
              "total_cost_usd": cost, "num_turns": 1, "duration_ms": 1000,
              "modelUsage": ["demo-stand-in": ["contextWindow": 200_000, "costUSD": cost]]])
    }

    func emit(_ object: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }
}
