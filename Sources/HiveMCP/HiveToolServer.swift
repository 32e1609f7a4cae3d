import Foundation
import HiveClient
import HiveWire
import Logging
import MCP

/// `hive mcp`: the agent's hive tools as an MCP stdio server. claude starts it from the `--mcp-config`
/// the harness writes; each tool call is one request on the agent's socket, so the socket's identity is
/// the agent's and nothing here can act as anyone else. stdout carries MCP and nothing else.
public enum HiveToolServer {
    public static func run(socket: String, logger: Logger) async throws {
        let server = Server(name: "hive", version: "\(WireLimits.protocolVersion)",
                            instructions: "Tools to talk to the other agents and the operator of this hive.",
                            capabilities: .init(tools: .init(listChanged: false)))
        let client = ToolClient(socket: socket)
        await server.withMethodHandler(ListTools.self) { _ in
            // The manager's socket takes more requests; only the manager sees their tools.
            let manager = (try? await client.isManager()) ?? false
            return ListTools.Result(tools: manager ? tools + managerTools : tools)
        }
        await server.withMethodHandler(CallTool.self) { params in
            do {
                let text = try await client.call(params.name, params.arguments ?? [:])
                return CallTool.Result(content: [.text(text: text, annotations: nil, _meta: nil)], isError: false)
            } catch {
                return CallTool.Result(content: [.text(text: "\(error)", annotations: nil, _meta: nil)], isError: true)
            }
        }
        try await server.start(transport: StdioTransport(logger: logger))
        await server.waitUntilCompleted()
    }

    static let tools: [Tool] = [
        Tool(name: "send",
             description: "Send a message to another agent, 'manager', 'operator', or '*' (every other agent). Bodies are short (4096 bytes at most): put long content in a file under your state dir or /shared and send its path.",
             inputSchema: schema(["to": .string("Recipient: an agent name, 'manager', 'operator' or '*'."),
                                  "body": .string("The message text."),
                                  "in_reply_to": .integer("Optional: id of the message this answers.")], required: ["to", "body"])),
        Tool(name: "recv",
             description: "Read further messages waiting for you (the one that started this turn is already in your prompt). Returns at once when none wait unless wait_seconds is given.",
             inputSchema: schema(["wait_seconds": .number("Optional: wait up to this long for a message (at most 180)."),
                                  "max": .integer("Optional: most messages to return (default 1, at most 32).")], required: [])),
        Tool(name: "whoami", description: "Your agent name and role in the hive.", inputSchema: schema([:], required: [])),
        Tool(name: "status", description: "How many messages wait for you (unread) and how many are in progress (inflight).",
             inputSchema: schema([:], required: [])),
        Tool(name: "remind",
             description: "Set a reminder: the message comes back to you later from 'reminder' and starts a turn. Give exactly one of delay_seconds or at_unix. Long texts are saved to a file under your state dir and the reminder points to it.",
             inputSchema: schema(["message": .string("What to remind yourself of."),
                                  "delay_seconds": .number("Seconds from now."),
                                  "at_unix": .number("Or: when, in unix seconds."),
                                  "file_path": .string("Optional: a path to look at then.")], required: ["message"])),
        Tool(name: "request_next_turn",
             description: "Ask for one more turn after this one, e.g. to continue long work in steps. It arrives as a message from 'system'.",
             inputSchema: schema(["reason": .string("Optional: a note to your next turn.")], required: [])),
        Tool(name: "ask",
             description: "Ask the operator (default) or another agent a question and go on working: the answer comes back later as a message starting '[answer to question N]', or '[question N expired]' if nobody answers in time. Offer options when the choice is clear-cut.",
             inputSchema: schema(["question": .string("The question (1500 bytes at most)."),
                                  "options": .strings("Optional: up to 10 choices (100 bytes each); the answer picks from them."),
                                  "multi": .boolean("Optional: allow picking several options."),
                                  "ttl_seconds": .number("Optional: how long an answer is useful, 10 s to 7 days (default one day)."),
                                  "to": .string("Optional: 'operator' (default) or an agent's name.")], required: ["question"])),
        Tool(name: "answer",
             description: "Answer a question another agent asked you (it arrived as '[question N from ...]'). With options, pass choices; otherwise pass answer.",
             inputSchema: schema(["id": .integer("The question's id."),
                                  "choices": .strings("The option(s) you pick, spelled as offered."),
                                  "answer": .string("Your answer in text (or a note with your choices).")], required: ["id"])),
    ]

    /// The config gatekeeper's tools: core refuses them on any other socket.
    static let managerTools: [Tool] = [
        Tool(name: "request_init_config",
             description: "Ask the operator to create a config repo for a new agent (or one without a repo). Once approved you get a config_ready message; the repo is at /agents/<name>/config with agent.json seeded from the template.",
             inputSchema: schema(["name": .string("The agent: lowercase letters, digits and '-', starting with a letter."),
                                  "description": .string("Optional: what the agent is for; the operator reads this.")], required: ["name"])),
        Tool(name: "request_apply_commit",
             description: "Ask the operator to deploy a commit of an agent's config repo (/agents/<agent>/config). The operator sees the diff against what runs; on approval the agent's cage is rebuilt with it (created, for a new agent). You get approval_resolved either way.",
             inputSchema: schema(["agent": .string("The agent whose config repo holds the commit."),
                                  "commit_ref": .string("The commit hash, 7 to 40 hex digits; it must be on a branch."),
                                  "description": .string("Optional: why; the operator reads this.")], required: ["agent", "commit_ref"])),
        Tool(name: "start_agent", description: "Start another agent's cage (after it was stopped).",
             inputSchema: schema(["name": .string("The agent.")], required: ["name"])),
        Tool(name: "stop_agent", description: "Stop another agent's cage; it stays stopped until started. Its messages wait.",
             inputSchema: schema(["name": .string("The agent.")], required: ["name"])),
        Tool(name: "restart_agent", description: "Restart another agent's cage.",
             inputSchema: schema(["name": .string("The agent.")], required: ["name"])),
        Tool(name: "update_agent", description: "Rebuild another agent's cage from its applied config and restart it (idempotent).",
             inputSchema: schema(["name": .string("The agent.")], required: ["name"])),
        Tool(name: "agent_logs", description: "The last lines of an agent's cage log (harness and claude's stderr).",
             inputSchema: schema(["name": .string("The agent."), "lines": .integer("Optional: how many (default 50).")], required: ["name"])),
    ]

    private enum Kind {
        case string(String), integer(String), number(String), boolean(String), strings(String)
        var value: Value {
            switch self {
            case .boolean(let d): return .object(["type": .string("boolean"), "description": .string(d)])
            case .strings(let d):
                return .object(["type": .string("array"), "items": .object(["type": .string("string")]), "description": .string(d)])
            case .string(let d): return .object(["type": .string("string"), "description": .string(d)])
            case .integer(let d): return .object(["type": .string("integer"), "description": .string(d)])
            case .number(let d): return .object(["type": .string("number"), "description": .string(d)])
            }
        }
    }

    private static func schema(_ properties: [String: Kind], required: [String]) -> Value {
        .object(["type": .string("object"), "properties": .object(properties.mapValues(\.value)),
                 "required": .array(required.map(Value.string))])
    }
}

/// A tool call refused before it reached the hive: a clear sentence for the agent.
struct ToolError: Error, CustomStringConvertible {
    let description: String
}

/// Turns tool calls into agent-socket requests.
actor ToolClient {
    private let socket: String
    private var connection: HiveConnection?

    init(socket: String) { self.socket = socket }

    func call(_ tool: String, _ args: [String: Value]) async throws -> String {
        switch tool {
        case "send":
            let to = try string(args, "to")
            let body = try string(args, "body")
            let reply = try await request(SendCommand(to: to, body: body, inReplyTo: try int(args, "in_reply_to", required: false).map(Int64.init)))
            var text = "sent (id \(reply.ids.map(String.init).joined(separator: ", "))) to \(reply.recipients.joined(separator: ", "))"
            if let why = reply.inReplyToDropped { text += "; in_reply_to was dropped: \(why)" }
            return text
        case "recv":
            let reply = try await request(RecvCommand(waitSeconds: try number(args, "wait_seconds"), max: try int(args, "max", required: false)))
            if reply.messages.isEmpty { return "no messages waiting" }
            return reply.messages.map { m in
                var head = "message \(m.id) from \(m.from)"
                if let r = m.inReplyTo { head += " (reply to \(r))" }
                if m.broadcast { head += " [broadcast]" }
                return head + ":\n" + m.body
            }.joined(separator: "\n\n") + (reply.unread > 0 ? "\n\n(\(reply.unread) more waiting)" : "")
        case "whoami":
            let me = try await request(WhoamiCommand())
            return "you are \(me.name) (\(me.role))"
        case "status":
            let s = try await request(StatusCommand())
            return "\(s.unread) unread, \(s.inflight) in progress, \(s.pendingReminders) reminders pending"
        case "remind":
            var message = try string(args, "message")
            var spilled: String?
            if message.utf8.count > ReminderText.inlineBytes {
                // Saved here, as the agent, in its own state dir (claude's cwd): core never writes there.
                let path = try ReminderText.save(message)
                spilled = path
                message = ReminderText.pointer(to: path, text: message)
            }
            let r = try await request(RemindCommand(message: message, delaySeconds: try number(args, "delay_seconds"),
                                                    atUnix: try number(args, "at_unix"), filePath: args["file_path"]?.stringValue))
            var text = "reminder \(r.id) set for \(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: r.dueAt))); \(r.pending) pending"
            if let spilled { text += "; the full text is saved in \(spilled)" }
            return text
        case "request_next_turn":
            let r = try await request(RequestNextTurnCommand(reason: args["reason"]?.stringValue))
            return "another turn is queued (message \(r.id))"
        case "ask":
            let r = try await request(AskCommand(question: try string(args, "question"), options: try strings(args, "options"),
                                                 multi: try bool(args, "multi"), ttlSeconds: try number(args, "ttl_seconds"),
                                                 to: args["to"]?.stringValue))
            return "question \(r.id) is with \(r.to) until \(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: r.expiresAt))); the answer will arrive as a message"
        case "answer":
            guard let id = try int(args, "id", required: true) else { throw ToolError(description: "missing argument 'id'") }
            let q = try await request(AnswerCommand(id: Int64(id), choices: try strings(args, "choices"), answer: args["answer"]?.stringValue)).question
            return "answered question \(q.id); \(q.asker) will get it as a message"
        case "request_init_config":
            let a = try await request(RequestInitConfigCommand(name: try string(args, "name"), description: args["description"]?.stringValue)).approval
            return "approval \(a.id) requested (init_config for \(a.agent)); you get config_ready when the operator approves"
        case "request_apply_commit":
            let a = try await request(RequestApplyCommitCommand(agent: try string(args, "agent"), commitRef: try string(args, "commit_ref"),
                                                                description: args["description"]?.stringValue)).approval
            return "approval \(a.id) requested: deploy \(a.commit?.prefix(12) ?? "?") to \(a.agent); you get approval_resolved when the operator decides"
        case "start_agent":
            return "\(try await request(StartCommand(name: try string(args, "name"))).name): starting"
        case "stop_agent":
            return "\(try await request(StopCommand(name: try string(args, "name"))).name): stopped"
        case "restart_agent":
            return "restarted \(try await request(RestartCommand(name: try string(args, "name"))).restarted.joined(separator: ", "))"
        case "update_agent":
            return "rebuilt \(try await request(UpdateCommand(name: try string(args, "name"))).restarted.joined(separator: ", "))"
        case "agent_logs":
            let r = try await request(LogsCommand(name: try string(args, "name"), lines: try int(args, "lines", required: false)))
            return r.lines.isEmpty ? "(the log of \(r.name) is empty)" : r.lines.joined(separator: "\n")
        default:
            throw ToolError(description: "unknown tool '\(tool)'; the hive tools are send, recv, whoami, status, remind, request_next_turn, ask, answer")
        }
    }

    func isManager() async throws -> Bool {
        try await request(WhoamiCommand()).role == .manager
    }

    private func request<C: HiveCommand>(_ command: C) async throws -> C.Reply {
        do {
            let c = try connection ?? HiveConnection(path: socket)
            connection = c
            return try await c.call(command)
        } catch let error as HiveClientError {
            if case .refused = error { throw error }
            connection = nil // a broken connection is rebuilt on the next call
            throw error
        }
    }

    private func string(_ args: [String: Value], _ key: String) throws -> String {
        guard let v = args[key] else { throw ToolError(description: "missing argument '\(key)'") }
        guard let s = v.stringValue else { throw ToolError(description: "argument '\(key)' must be a string") }
        return s
    }

    private func int(_ args: [String: Value], _ key: String, required: Bool) throws -> Int? {
        guard let v = args[key], !v.isNull else {
            if required { throw ToolError(description: "missing argument '\(key)'") }
            return nil
        }
        if let i = v.intValue { return i }
        if let d = v.doubleValue, d == d.rounded(), abs(d) < 9e15 { return Int(d) }
        throw ToolError(description: "argument '\(key)' must be a whole number")
    }

    private func bool(_ args: [String: Value], _ key: String) throws -> Bool? {
        guard let v = args[key], !v.isNull else { return nil }
        guard let b = v.boolValue else { throw ToolError(description: "argument '\(key)' must be true or false") }
        return b
    }

    private func strings(_ args: [String: Value], _ key: String) throws -> [String]? {
        guard let v = args[key], !v.isNull else { return nil }
        // A lone string is taken as a list of one: models often pass a single choice that way.
        if let s = v.stringValue { return [s] }
        guard let list = v.arrayValue, let texts = Optional(list.compactMap(\.stringValue)), texts.count == list.count else {
            throw ToolError(description: "argument '\(key)' must be a list of strings")
        }
        return texts
    }

    private func number(_ args: [String: Value], _ key: String) throws -> Double? {
        guard let v = args[key], !v.isNull else { return nil }
        if let d = v.doubleValue { return d }
        if let i = v.intValue { return Double(i) }
        throw ToolError(description: "argument '\(key)' must be a number")
    }
}

/// Long reminder texts: saved by `hive mcp` (the agent's own process) under `reminders/` in its working
/// directory, the agent's state dir; the reminder carries the path and the text's beginning.
enum ReminderText {
    /// Longer texts go to a file (core takes at most 3000 bytes).
    static let inlineBytes = 2000

    static func save(_ text: String) throws -> String {
        let dir = URL(filePath: FileManager.default.currentDirectoryPath).appending(path: "reminders")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let file = dir.appending(path: "reminder-\(Int(Date().timeIntervalSince1970))-\(UUID().uuidString.prefix(8)).md")
        try Data(text.utf8).write(to: file, options: .withoutOverwriting)
        return file.path
    }

    static func pointer(to path: String, text: String) -> String {
        var start = String(text.prefix(300))
        while start.utf8.count > 600 { start.removeLast() }
        return "The full text (\(text.utf8.count) bytes) is in \(path). It begins:\n\(start)…"
    }
}
