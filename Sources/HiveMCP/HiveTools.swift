import Foundation
import HiveClient
import HiveWire
import MCP

/// One hive tool, declared once: its name, who sees it, what claude is told, its arguments' schema, and
/// what it does (one request on the agent's socket, answered in a sentence).
struct HiveTool: Sendable {
    let name: String
    /// Only the manager's socket takes it; other agents neither see it nor can call it (core refuses it too).
    let managerOnly: Bool
    let description: String
    let inputSchema: Value
    let run: @Sendable (ToolArguments, ToolClient) async throws -> String

    init(name: String, managerOnly: Bool, description: String, inputSchema: Value,
         _ run: @escaping @Sendable (ToolArguments, ToolClient) async throws -> String) {
        self.name = name; self.managerOnly = managerOnly; self.description = description; self.inputSchema = inputSchema; self.run = run
    }

    var declaration: Tool { Tool(name: name, description: description, inputSchema: inputSchema) }
}

/// Every tool `hive mcp` offers, the table that both lists and dispatches them.
enum HiveTools {
    /// The tools an agent sees: the manager sees them all.
    static func visible(manager: Bool) -> [HiveTool] { all.filter { manager || !$0.managerOnly } }

    static func named(_ name: String) -> HiveTool? { all.first { $0.name == name } }

    static let all: [HiveTool] = [
        HiveTool(name: "send", managerOnly: false,
                 description: "Send a message to another agent, 'manager', 'operator', or '*' (every other agent). Bodies are short (4096 bytes at most): put long content in a file under your state dir or /shared and send its path.",
                 inputSchema: schema(["to": .string("Recipient: an agent name, 'manager', 'operator' or '*'."),
                                  "body": .string("The message text."),
                                  "in_reply_to": .integer("Optional: id of the message this answers.")], required: ["to", "body"])) { args, hive in
            let to = try args.string("to")
            let body = try args.string("body")
            let reply = try await hive.request(SendCommand(to: to, body: body, inReplyTo: try args.int("in_reply_to", required: false).map(Int64.init)))
            var text = "sent (id \(reply.ids.map(String.init).joined(separator: ", "))) to \(reply.recipients.joined(separator: ", "))"
            if let why = reply.inReplyToDropped { text += "; in_reply_to was dropped: \(why)" }
            return text
        },
        HiveTool(name: "recv", managerOnly: false,
                 description: "Read further messages waiting for you (the one that started this turn is already in your prompt). Returns at once when none wait unless wait_seconds is given.",
                 inputSchema: schema(["wait_seconds": .number("Optional: wait up to this long for a message (at most 180)."),
                                  "max": .integer("Optional: most messages to return (default 1, at most 32).")], required: [])) { args, hive in
            let reply = try await hive.request(RecvCommand(waitSeconds: try args.number("wait_seconds"), max: try args.int("max", required: false)))
            if reply.messages.isEmpty { return "no messages waiting" }
            return reply.messages.map { m in
                var head = "message \(m.id) from \(m.from)"
                if let r = m.inReplyTo { head += " (reply to \(r))" }
                if m.broadcast { head += " [broadcast]" }
                return head + ":\n" + m.body
            }.joined(separator: "\n\n") + (reply.unread > 0 ? "\n\n(\(reply.unread) more waiting)" : "")
        },
        HiveTool(name: "whoami", managerOnly: false,
                 description: "Your agent name and role in the hive.", inputSchema: schema([:], required: [])) { args, hive in
            let me = try await hive.request(WhoamiCommand())
            return "you are \(me.name) (\(me.role))"
        },
        HiveTool(name: "status", managerOnly: false,
                 description: "How many messages wait for you (unread) and how many are in progress (inflight).",
                 inputSchema: schema([:], required: [])) { args, hive in
            let s = try await hive.request(StatusCommand())
            return "\(s.unread) unread, \(s.inflight) in progress, \(s.pendingReminders) reminders pending"
        },
        HiveTool(name: "remind", managerOnly: false,
                 description: "Set a reminder: the message comes back to you later from 'reminder' and starts a turn. Give exactly one of delay_seconds or at_unix. Long texts are saved to a file under your state dir and the reminder points to it.",
                 inputSchema: schema(["message": .string("What to remind yourself of."),
                                  "delay_seconds": .number("Seconds from now."),
                                  "at_unix": .number("Or: when, in unix seconds."),
                                  "file_path": .string("Optional: a path to look at then.")], required: ["message"])) { args, hive in
            var message = try args.string("message")
            var spilled: String?
            if message.utf8.count > ReminderText.inlineBytes {
                // Saved here, as the agent, in its own state dir (claude's cwd): core never writes there.
                let path = try ReminderText.save(message)
                spilled = path
                message = ReminderText.pointer(to: path, text: message)
            }
            let r = try await hive.request(RemindCommand(message: message, delaySeconds: try args.number("delay_seconds"),
                                                    atUnix: try args.number("at_unix"), filePath: args.raw["file_path"]?.stringValue))
            var text = "reminder \(r.id) set for \(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: r.dueAt))); \(r.pending) pending"
            if let spilled { text += "; the full text is saved in \(spilled)" }
            return text
        },
        HiveTool(name: "request_next_turn", managerOnly: false,
                 description: "Ask for one more turn after this one, e.g. to continue long work in steps. It arrives as a message from 'system'.",
                 inputSchema: schema(["reason": .string("Optional: a note to your next turn.")], required: [])) { args, hive in
            let r = try await hive.request(RequestNextTurnCommand(reason: args.raw["reason"]?.stringValue))
            return "another turn is queued (message \(r.id))"
        },
        HiveTool(name: "ask", managerOnly: false,
                 description: "Ask the operator (default) or another agent a question and go on working: the answer comes back later as a message starting '[answer to question N]', or '[question N expired]' if nobody answers in time. Offer options when the choice is clear-cut.",
                 inputSchema: schema(["question": .string("The question (1500 bytes at most)."),
                                  "options": .strings("Optional: up to 10 choices (100 bytes each); the answer picks from them."),
                                  "multi": .boolean("Optional: allow picking several options."),
                                  "ttl_seconds": .number("Optional: how long an answer is useful, 10 s to 7 days (default one day)."),
                                  "to": .string("Optional: 'operator' (default) or an agent's name.")], required: ["question"])) { args, hive in
            let r = try await hive.request(AskCommand(question: try args.string("question"), options: try args.strings("options"),
                                                 multi: try args.bool("multi"), ttlSeconds: try args.number("ttl_seconds"),
                                                 to: args.raw["to"]?.stringValue))
            return "question \(r.id) is with \(r.to) until \(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: r.expiresAt))); the answer will arrive as a message"
        },
        HiveTool(name: "answer", managerOnly: false,
                 description: "Answer a question another agent asked you (it arrived as '[question N from ...]'). With options, pass choices; otherwise pass answer.",
                 inputSchema: schema(["id": .integer("The question's id."),
                                  "choices": .strings("The option(s) you pick, spelled as offered."),
                                  "answer": .string("Your answer in text (or a note with your choices).")], required: ["id"])) { args, hive in
            guard let id = try args.int("id", required: true) else { throw ToolError(description: "missing argument 'id'") }
            let q = try await hive.request(AnswerCommand(id: Int64(id), choices: try args.strings("choices"), answer: args.raw["answer"]?.stringValue)).question
            return "answered question \(q.id); \(q.asker) will get it as a message"
        },
        HiveTool(name: "search", managerOnly: false,
                 description: "Search the messages you sent or received (best match first), or with in='transcripts' your own past turns: what you and your tools said (newest first). Words must all appear; \"a phrase\" in quotes; deploy* for a prefix; filters from:NAME to:NAME (messages only) after:2026-12-01 before:2d (ages like 6h, 2d).",
                 inputSchema: schema(["query": .string("What to look for, e.g. 'build failed from:iris after:2d'."),
                                  "in": .string("Optional: 'messages' (default) or 'transcripts'."),
                                  "limit": .integer("Optional: most results (default 10, at most 100).")], required: ["query"])) { args, hive in
            let limit = try args.int("limit", required: false) ?? 10
            let query = try args.string("query")
            switch args.raw["in"]?.stringValue ?? "messages" {
            case "messages":
                let hits = try await hive.request(SearchCommand(query: query, limit: limit)).hits
                if hits.isEmpty { return "no message of yours matches" }
                return hits.map { h in
                    "message \(h.message.id) from \(h.message.from) to \(h.message.to) at \(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: h.message.sentAt))): \(h.snippet)"
                }.joined(separator: "\n")
            case "transcripts":
                guard (1...SearchQuery.maxResults).contains(limit) else { throw ToolError(description: "limit is 1 to \(SearchQuery.maxResults)") }
                let hits = try await hive.searchTranscript(try SearchQuery.parse(query), limit: limit).sorted { $0.at > $1.at }
                if hits.isEmpty { return "nothing in your transcripts matches" }
                return hits.map { h in
                    "\(h.turn.map { "turn \($0)" } ?? "outside a turn") at \(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: h.at))) (\(h.kind)): \(h.snippet)"
                }.joined(separator: "\n")
            case let other:
                throw ToolError(description: "in is 'messages' or 'transcripts', not '\(other.prefix(40))'")
            }
        },
        HiveTool(name: "request_init_config", managerOnly: true,
                 description: "Ask the operator to create a config repo for a new agent (or one without a repo). Once approved you get a config_ready message; the repo is at /agents/<name>/config with agent.json seeded from the template.",
                 inputSchema: schema(["name": .string("The agent: lowercase letters, digits and '-', starting with a letter."),
                                  "description": .string("Optional: what the agent is for; the operator reads this.")], required: ["name"])) { args, hive in
            let a = try await hive.request(RequestInitConfigCommand(name: try args.string("name"), description: args.raw["description"]?.stringValue)).approval
            return "approval \(a.id) requested (init_config for \(a.agent)); you get config_ready when the operator approves"
        },
        HiveTool(name: "request_apply_commit", managerOnly: true,
                 description: "Ask the operator to deploy a commit of an agent's config repo (/agents/<agent>/config). The operator sees the diff against what runs; on approval the agent's cage is rebuilt with it (created, for a new agent). You get approval_resolved either way.",
                 inputSchema: schema(["agent": .string("The agent whose config repo holds the commit."),
                                  "commit_ref": .string("The commit hash, 7 to 40 hex digits; it must be on a branch."),
                                  "description": .string("Optional: why; the operator reads this.")], required: ["agent", "commit_ref"])) { args, hive in
            let a = try await hive.request(RequestApplyCommitCommand(agent: try args.string("agent"), commitRef: try args.string("commit_ref"),
                                                                description: args.raw["description"]?.stringValue)).approval
            return "approval \(a.id) requested: deploy \(a.commit?.prefix(12) ?? "?") to \(a.agent); you get approval_resolved when the operator decides"
        },
        HiveTool(name: "start_agent", managerOnly: true,
                 description: "Start another agent's cage (after it was stopped).",
                 inputSchema: schema(["name": .string("The agent.")], required: ["name"])) { args, hive in
            return "\(try await hive.request(StartCommand(name: try args.string("name"))).name): starting"
        },
        HiveTool(name: "stop_agent", managerOnly: true,
                 description: "Stop another agent's cage; it stays stopped until started. Its messages wait.",
                 inputSchema: schema(["name": .string("The agent.")], required: ["name"])) { args, hive in
            return "\(try await hive.request(StopCommand(name: try args.string("name"))).name): stopped"
        },
        HiveTool(name: "restart_agent", managerOnly: true,
                 description: "Restart another agent's cage.",
                 inputSchema: schema(["name": .string("The agent.")], required: ["name"])) { args, hive in
            return "restarted \(try await hive.request(RestartCommand(name: try args.string("name"))).restarted.joined(separator: ", "))"
        },
        HiveTool(name: "update_agent", managerOnly: true,
                 description: "Rebuild another agent's cage from its applied config and restart it (idempotent).",
                 inputSchema: schema(["name": .string("The agent.")], required: ["name"])) { args, hive in
            return "rebuilt \(try await hive.request(UpdateCommand(name: try args.string("name"))).restarted.joined(separator: ", "))"
        },
        HiveTool(name: "agent_logs", managerOnly: true,
                 description: "The last lines of an agent's cage log (harness and claude's stderr).",
                 inputSchema: schema(["name": .string("The agent."), "lines": .integer("Optional: how many (default 50).")], required: ["name"])) { args, hive in
            let r = try await hive.request(LogsCommand(name: try args.string("name"), lines: try args.int("lines", required: false)))
            return r.lines.isEmpty ? "(the log of \(r.name) is empty)" : r.lines.joined(separator: "\n")
        },
    ]

    enum Kind {
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

    static func schema(_ properties: [String: Kind], required: [String]) -> Value {
        .object(["type": .string("object"), "properties": .object(properties.mapValues(\.value)),
                 "required": .array(required.map(Value.string))])
    }
}
