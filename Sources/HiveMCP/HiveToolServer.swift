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
        await server.withMethodHandler(ListTools.self) { _ in ListTools.Result(tools: tools) }
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
    ]

    private enum Kind {
        case string(String), integer(String), number(String)
        var value: Value {
            switch self {
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
            let r = try await request(RemindCommand(message: try string(args, "message"), delaySeconds: try number(args, "delay_seconds"),
                                                    atUnix: try number(args, "at_unix"), filePath: args["file_path"]?.stringValue))
            var text = "reminder \(r.id) set for \(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: r.dueAt))); \(r.pending) pending"
            if let path = r.spilledTo { text += "; the full text is saved in \(path)" }
            return text
        case "request_next_turn":
            let r = try await request(RequestNextTurnCommand(reason: args["reason"]?.stringValue))
            return "another turn is queued (message \(r.id))"
        default:
            throw ToolError(description: "unknown tool '\(tool)'; the hive tools are send, recv, whoami, status, remind, request_next_turn")
        }
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

    private func number(_ args: [String: Value], _ key: String) throws -> Double? {
        guard let v = args[key], !v.isNull else { return nil }
        if let d = v.doubleValue { return d }
        if let i = v.intValue { return Double(i) }
        throw ToolError(description: "argument '\(key)' must be a number")
    }
}
