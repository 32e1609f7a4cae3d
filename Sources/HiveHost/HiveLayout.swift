import Foundation
import HiveWire

/// Where a hive keeps its files (under the root) and its sockets (under the run dir).
public struct HiveLayout: Sendable {
    public let root: URL
    public let runDir: URL

    /// Longest unix socket path Linux accepts.
    public static var maxSocketPathBytes: Int { UnixSocket.maxPathBytes }

    public init(root: URL, runDir: URL) {
        self.root = root.standardizedFileURL
        self.runDir = runDir.standardizedFileURL
    }

    public var brokerDatabase: URL { root.appending(path: "broker.sqlite") }
    public var rootLock: URL { root.appending(path: "core.lock") }
    public var runLock: URL { runDir.appending(path: "core.lock") }
    public var adminSocket: URL { Self.adminSocket(in: runDir) }
    /// `<run-dir>/web.sock`: the narrow surface `hive web` talks to.
    public var webSocket: URL { Self.webSocket(in: runDir) }

    // For clients that know only the run dir (`--run-dir`, `hive web`).
    /// `<run-dir>/host.sock`: the operator's socket.
    public static func adminSocket(in runDir: URL) -> URL { runDir.appending(path: "host.sock") }
    public static func webSocket(in runDir: URL) -> URL { runDir.appending(path: "web.sock") }
    /// `<root>/run`: the run dir when none is named.
    public static func defaultRunDir(root: URL) -> URL { root.appending(path: "run") }

    // The harness's own files, in its harness dir: named here so nothing else spells them.
    public static let eventsFile = "events.sqlite"
    public static let turnStatsFile = "turn-stats.sqlite"
    public static let sessionFile = "session.json"
    public static let mcpConfigFile = "mcp-config.json"

    /// `<root>/node`: this node's endpoint key, certificate and token (root's alone, a hive on many hosts),
    /// and the spool where agents being moved pass through.
    public var nodeDir: URL { root.appending(path: "node") }
    /// `<root>/agents`: one directory per agent.
    public var agentsDir: URL { root.appending(path: Self.agentsName) }
    static let agentsName = "agents"
    /// `<root>/agents/<n>`: everything the hive keeps for one agent.
    public func agentDir(_ name: AgentName) -> URL { agentsDir.appending(path: name.rawValue) }
    /// `<root>/agents/<n>/state`: the agent's own durable notes and work.
    public func stateDir(_ name: AgentName) -> URL { agentDir(name).appending(path: "state") }
    /// `<root>/agents/<n>/harness`: the harness's internals.
    public func harnessDir(_ name: AgentName) -> URL { Self.harnessComponents(name).reduce(root) { $0.appending(path: $1) } }
    /// The harness dir's path under the root, a component at a time (for walks through descriptors).
    public static func harnessComponents(_ name: AgentName) -> [String] { [agentsName, name.rawValue, "harness"] }
    /// `<root>/agents/<n>/config`: the agent's *proposed* config repo (git), the manager's to write.
    public func proposedConfig(_ name: AgentName) -> URL { agentDir(name).appending(path: "config") }
    /// `<root>/applied`: every agent's *applied* config repo, core's only.
    public var appliedDir: URL { root.appending(path: "applied") }
    /// `<root>/applied/<n>`: the agent's applied config repo (bare): fetched proposals and their tags.
    public func appliedRepo(_ name: AgentName) -> URL { appliedDir.appending(path: name.rawValue) }
    /// `<root>/rendered/<n>.json`: the config the agent's cage runs with, as core checked it.
    public func renderedConfig(_ name: AgentName) -> URL { root.appending(path: "rendered").appending(path: "\(name.rawValue).json") }
    /// The model the operator set for the agent at runtime (core's file; not in the cage).
    public func modelOverride(_ name: AgentName) -> URL { root.appending(path: "rendered").appending(path: "\(name.rawValue).model") }
    /// `<root>/logs/<n>.log`: what the agent's cage wrote (harness log, claude's stderr). Core's, outside
    /// every directory an agent can write, so no agent can point it elsewhere.
    public func cageLog(_ name: AgentName) -> URL { root.appending(path: "logs").appending(path: "\(name.rawValue).log") }
    /// `<root>/credentials`: the operator's stored Claude credentials (`hive login`), root's, 0700.
    public var credentialsDir: URL { root.appending(path: "credentials") }
    /// `<root>/shared`: the space every agent reads and writes.
    public var sharedDir: URL { root.appending(path: "shared") }
    /// `<run-dir>/agents/<n>`: the agent's runtime sockets (root's; see `AgentRunDir` in HiveCore).
    public func agentRunDir(_ name: AgentName) -> URL { runDir.appending(path: "agents").appending(path: name.rawValue) }
    /// `<run-dir>/agents/<n>/mcp.sock`: the agent's identity socket.
    public func agentSocket(_ name: AgentName) -> URL { agentRunDir(name).appending(path: "mcp.sock") }
    /// `<run-dir>/agents/<n>/page/web.sock`: the harness's HTTP endpoint.
    public func agentWebSocket(_ name: AgentName) -> URL { agentPageDir(name).appending(path: "web.sock") }
    /// The one part of the agent's run dir the agent writes: where its page server listens.
    public func agentPageDir(_ name: AgentName) -> URL { agentRunDir(name).appending(path: "page") }

    /// Throws when a socket path would be too long for `bind`, naming the path and the fix.
    public static func checkSocketPath(_ url: URL) throws(LayoutError) {
        let bytes = url.path.utf8.count
        if bytes > maxSocketPathBytes {
            throw LayoutError("socket path \(url.path) is \(bytes) bytes; unix sockets allow at most \(maxSocketPathBytes). Use a shorter --run-dir")
        }
    }

    /// The longest socket path this layout can produce (for the longest agent name).
    public var longestSocketPath: URL { agentSocket(try! AgentName(String(repeating: "a", count: 31))) }
}

/// A path the layout cannot use, with what to do about it.
public struct LayoutError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
