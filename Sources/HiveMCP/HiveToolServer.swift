import Foundation
import HiveClient
import HiveTelemetry
import HiveWire
import Logging
import MCP

/// `hive mcp`: the agent's hive tools as an MCP stdio server. claude starts it from the `--mcp-config`
/// the harness writes; each tool call is one request on the agent's socket, so the socket's identity is
/// the agent's and nothing here can act as anyone else. stdout carries MCP and nothing else.
public enum HiveToolServer {
    /// `events`: the agent's own `events.sqlite`, for the search tool's `in: transcripts`.
    public static func run(socket: String, events: String? = nil, logger: Logger) async throws {
        let server = Server(name: "hive", version: "\(WireLimits.protocolVersion)",
                            instructions: "Tools to talk to the other agents and the operator of this hive.",
                            capabilities: .init(tools: .init(listChanged: false)))
        let client = ToolClient(socket: socket, events: events)
        await server.withMethodHandler(ListTools.self) { _ in
            // The manager's socket takes more requests; only the manager sees their tools.
            let manager = (try? await client.isManager()) ?? false
            return ListTools.Result(tools: HiveTools.visible(manager: manager).map(\.declaration))
        }
        await server.withMethodHandler(CallTool.self) { params in
            do {
                let text = try await client.call(params.name, ToolArguments(params.arguments ?? [:]))
                return CallTool.Result(content: [.text(text: text, annotations: nil, _meta: nil)], isError: false)
            } catch {
                return CallTool.Result(content: [.text(text: "\(error)", annotations: nil, _meta: nil)], isError: true)
            }
        }
        try await server.start(transport: StdioTransport(logger: logger))
        await server.waitUntilCompleted()
    }
}

/// Runs tool calls as agent-socket requests, on one connection rebuilt when it breaks.
actor ToolClient {
    private let socket: String
    private var connection: HiveConnection?
    private let eventsPath: String?
    private var events: EventStore?

    init(socket: String, events: String? = nil) { self.socket = socket; self.eventsPath = events }

    /// The agent's own transcript (its harness's events), searched here, in its cage, as the agent.
    func searchTranscript(_ query: SearchQuery, limit: Int) throws -> [TranscriptHit] {
        guard let eventsPath else { throw ToolError(description: "this hive mcp was started without --events: no transcript to search") }
        let store = try events ?? EventStore(path: eventsPath)
        events = store
        return try store.search(query, limit: limit)
    }

    func call(_ name: String, _ args: ToolArguments) async throws -> String {
        guard let tool = HiveTools.named(name) else {
            let manager = (try? await isManager()) ?? false
            let names = HiveTools.visible(manager: manager).map(\.name).joined(separator: ", ")
            throw ToolError(description: "unknown tool '\(name.prefix(64))'; the hive tools are \(names)")
        }
        // A manager's tool called elsewhere goes on to core, which refuses it with its reason.
        return try await tool.run(args, self)
    }

    func isManager() async throws -> Bool {
        try await request(WhoamiCommand()).role == .manager
    }

    func request<C: HiveCommand>(_ command: C) async throws -> C.Reply {
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
}
