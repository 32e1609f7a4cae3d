import Foundation
import HiveHost
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
    /// Longest one park lasts before the limit is probed again with a turn (nil: until the reset).
    /// From `HIVE_HARNESS_PARK_CAP` (seconds).
    public var parkCap: Double?
    /// The shortest park a usage limit gets, whatever reset time it names (a minute). From
    /// `HIVE_HARNESS_PARK_FLOOR` (seconds, at least 1): the tests' clock, so none waits out the minute.
    public var parkFloor: Double = 60
    /// How long the harness keeps its own events and turn stats, and how often it sweeps them (core
    /// passes the hive's settings in `HIVE_HARNESS_*_RETENTION_SECONDS` and `HIVE_HARNESS_SWEEP_SECONDS`).
    public var eventsRetention: Double = 7 * 86_400
    public var statsRetention: Double = 90 * 86_400
    public var sweepInterval: Double = 3600
    /// Most seconds added after a reset time, so agents parked on one limit do not all wake at once.
    public var rateLimitJitter: Double = 60
    /// Seconds between checks while claude is missing or not logged in.
    public var setupRecheck: Double = 60
    /// Longest an agent out of credit waits for `hive resume` before trying one turn again.
    public var billingRecheck: Double = 3600
    /// How often a waiting agent asks core whether the operator said resume.
    public var resumePoll: Double = 5
    /// The process environment claude starts from.
    public var environment: [String: String]
    /// MCP servers claude gets beside the hive's own.
    public var extraMCPServers: [String: AgentConfig.MCPServer] = [:]
    /// What claude may do without asking (from the config).
    public var permissions = AgentConfig.Permissions()
    /// Whether the harness runs in a bubblewrap cage (core says so with `--sandbox bwrap`): only then is
    /// "everything allowed" the default, since the cage is the boundary.
    public var sandboxed = false
    /// How many times the CLI may retry one API call itself (`CLAUDE_CODE_MAX_RETRIES`). The CLI's own
    /// default is 10 over about 3 minutes, which hides a whole outage inside one turn; the harness has
    /// its own backoff and tells the operator, so the CLI gives up early.
    public var cliMaxRetries = 2

    public init(name: AgentName, socket: String, stateDir: String, harnessDir: String, webSocket: String?,
                hiveExecutable: String, environment: [String: String]) {
        self.name = name; self.socket = socket; self.stateDir = stateDir; self.harnessDir = harnessDir
        self.webSocket = webSocket; self.hiveExecutable = hiveExecutable; self.environment = environment
        if let cap = environment["HIVE_HARNESS_PARK_CAP"].flatMap(Double.init), cap.isFinite, cap >= 1 { parkCap = cap }
        func seconds(_ key: String, atLeast: Double) -> Double? {
            environment[key].flatMap(Double.init).flatMap { $0.isFinite && $0 >= atLeast ? $0 : nil }
        }
        eventsRetention = seconds("HIVE_HARNESS_EVENTS_RETENTION_SECONDS", atLeast: 60) ?? eventsRetention
        statsRetention = seconds("HIVE_HARNESS_STATS_RETENTION_SECONDS", atLeast: 60) ?? statsRetention
        sweepInterval = seconds("HIVE_HARNESS_SWEEP_SECONDS", atLeast: 1) ?? sweepInterval
        if let floor = environment["HIVE_HARNESS_PARK_FLOOR"].flatMap(Double.init), floor.isFinite, floor >= 1, floor <= 60 { parkFloor = floor }
    }

    /// Takes the settings of the agent's config (what core deployed for it).
    public mutating func apply(_ c: AgentConfig) {
        model = c.model
        systemPromptAddition = c.systemPrompt.isEmpty ? nil : c.systemPrompt
        environment.merge(c.env) { $1 }
        extraMCPServers = c.mcpServers
        policy = SessionPolicy(contextFraction: c.session.contextFraction, cacheTTL: c.session.cacheTTLSeconds.map(Double.init),
                               freshBaselineTokens: policy.freshBaselineTokens, freshPenalty: Double(c.session.freshPenaltyTokens))
        turnTimeout = .seconds(c.session.turnTimeoutSeconds)
        permissions = c.permissions
    }

    /// The tools of the hive's own MCP server, always allowed: an agent that cannot use them cannot
    /// answer anyone.
    static let hiveTools = "mcp__hive"
    /// Without a cage (and by default as root), claude gets the hive's tools and reading files only.
    static let unsandboxedTools = [hiveTools, "Read", "Glob", "Grep"]

    /// claude's permission flags. In a cage with no mode set: bypass (the cage is the boundary), the
    /// config's deny rules still applied. Without a cage a bypass is never given, whatever the config says.
    var permissionArguments: [String] {
        var mode = permissions.mode
        var allow = [Self.hiveTools] + permissions.allow
        if !sandboxed {
            if mode == nil || mode == "bypassPermissions" { mode = "default" }
            allow = Self.unsandboxedTools + permissions.allow
        } else if mode == nil {
            mode = "bypassPermissions"
        }
        var args = ["--permission-mode", mode ?? "default", "--allowedTools", allow.joined(separator: ",")]
        if !permissions.deny.isEmpty { args += ["--disallowedTools", permissions.deny.joined(separator: ",")] }
        return args
    }

    /// The environment claude runs with: the harness's, less what would confuse a nested CLI, plus the
    /// settings that keep a headless CLI predictable (no auto-update: the version is the operator's
    /// choice; no traffic beyond the model API; bounded retries; the hive's tools loaded up front).
    var claudeEnvironment: [String: String] {
        var env = environment
        env["CLAUDECODE"] = nil
        env["CLAUDE_CODE_ENTRYPOINT"] = nil
        env["DISABLE_AUTOUPDATER"] = "1"
        env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1"
        env["DISABLE_TELEMETRY"] = "1"
        if env["CLAUDE_CODE_MAX_RETRIES"] == nil { env["CLAUDE_CODE_MAX_RETRIES"] = String(cliMaxRetries) }
        // Measured (docs/benchmarks.md): with tool search on, the first use of a hive tool in a turn costs
        // one more API round trip (a ToolSearch call); the hive's tools are few and their schemas small.
        if env["ENABLE_TOOL_SEARCH"] == nil { env["ENABLE_TOOL_SEARCH"] = "false" }
        // The harness drives bypass mode only inside a cage whose uid is not root; the CLI's own root
        // check would refuse it where the cage maps the agent to uid 0 (a rootless hive).
        if sandboxed { env["IS_SANDBOX"] = "1" }
        return env
    }

    /// What claude's system prompt gets appended: the role of the hive's manager for the manager, where
    /// the forge and shared docs are, then the config's own addition.
    var appendedSystemPrompt: String? {
        let forge = environment["HIVE_FORGE_URL"].map(ForgePrompt.text(url:))
        let parts = [name == .manager ? ManagerRole.prompt : nil, forge, systemPromptAddition].compactMap { $0 }
        return parts.isEmpty ? nil : parts.joined(separator: "\n\n")
    }

    var eventsPath: String { harnessDir + "/" + HiveLayout.eventsFile }
    var statsPath: String { harnessDir + "/" + HiveLayout.turnStatsFile }
    var sessionPath: String { harnessDir + "/" + HiveLayout.sessionFile }
    var mcpConfigPath: String { harnessDir + "/" + HiveLayout.mcpConfigFile }
}
