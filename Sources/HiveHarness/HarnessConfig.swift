import Foundation
import HiveWire

/// Everything the harness of one agent needs to know.
public struct HarnessConfig: Sendable {
    public var name: AgentName
    /// The agent's socket (its identity in the hive).
    public var socket: String
    /// claude's working directory: the agent's own durable notes and work.
    public var stateDir: String
    /// The harness's own files: stores, session bookkeeping, the MCP config.
    public var harnessDir: String
    /// Where the harness serves its HTTP endpoint, if anywhere.
    public var webSocket: String?
    /// The `hive` executable, named in the MCP config so claude can start `hive mcp`.
    public var hiveExecutable: String
    public var model: String = "sonnet"
    public var systemPromptAddition: String?
    /// Failed turns on one message before it is dead-lettered.
    public var maxFailures = 5
    public var turnTimeout: Duration = .seconds(30 * 60)
    public var policy = SessionPolicy()
    public var failureBackoff = Backoff(base: 5, cap: 300)
    public var transientBackoff = Backoff(base: 2, cap: 60)
    /// Transient errors in a row on one message before one counts as a failure.
    public var transientRetries = 8
    /// Seconds to wait before re-probing a limit whose reset time is unknown.
    public var rateLimitReprobe: Double = 3600
    /// Most seconds added after a reset time, so agents parked on one limit do not all wake at once.
    public var rateLimitJitter: Double = 60
    /// Seconds between checks while claude is missing or not logged in.
    public var setupRecheck: Double = 60
    /// The process environment claude starts from.
    public var environment: [String: String]
    /// MCP servers claude gets beside the hive's own.
    public var extraMCPServers: [String: AgentConfig.MCPServer] = [:]

    public init(name: AgentName, socket: String, stateDir: String, harnessDir: String, webSocket: String?,
                hiveExecutable: String, environment: [String: String]) {
        self.name = name; self.socket = socket; self.stateDir = stateDir; self.harnessDir = harnessDir
        self.webSocket = webSocket; self.hiveExecutable = hiveExecutable; self.environment = environment
    }

    /// Takes the settings of the agent's config (what core deployed for it).
    public mutating func apply(_ c: AgentConfig) {
        model = c.model
        systemPromptAddition = c.systemPrompt.isEmpty ? nil : c.systemPrompt
        environment.merge(c.env) { $1 }
        extraMCPServers = c.mcpServers
        policy = SessionPolicy(contextFraction: c.session.contextFraction, cacheTTL: Double(c.session.cacheTTLSeconds),
                               freshBaselineTokens: policy.freshBaselineTokens)
        turnTimeout = .seconds(c.session.turnTimeoutSeconds)
    }

    /// What claude's system prompt gets appended: the role of the hive's manager for the manager, where
    /// the forge and shared docs are, then the config's own addition.
    var appendedSystemPrompt: String? {
        let forge = environment["HIVE_FORGE_URL"].map(ForgePrompt.text(url:))
        let parts = [name == .manager ? ManagerRole.prompt : nil, forge, systemPromptAddition].compactMap { $0 }
        return parts.isEmpty ? nil : parts.joined(separator: "\n\n")
    }

    var eventsPath: String { harnessDir + "/events.sqlite" }
    var statsPath: String { harnessDir + "/turn-stats.sqlite" }
    var sessionPath: String { harnessDir + "/session.json" }
    var mcpConfigPath: String { harnessDir + "/mcp-config.json" }
    var newSessionFlagPath: String { harnessDir + "/new-session-requested" }
}
