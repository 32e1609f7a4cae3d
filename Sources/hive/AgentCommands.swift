import ArgumentParser
import Foundation
import HiveGate
import HiveHarness
import HiveMCP
import HiveHost
import HiveWire
import Logging
import ServiceLifecycle

struct Agent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run the harness of one agent: wait for messages and drive a claude turn for each.",
        discussion: """
            Normally core starts this for you (--cage process). Run it by hand against a core started with
            --cage none to watch one agent closely. claude is $HIVE_CLAUDE when set, else `claude` on PATH;
            it runs in the agent's state dir. SIGTERM stops the turn in progress; its message is redelivered
            when the harness comes back.
            """)

    @Option(help: "The agent's name.") var name: String
    @Option(help: ArgumentHelp("The hive root (for the default paths below).", valueName: "dir")) var root: String?
    @Option(name: .customLong("run-dir"), help: ArgumentHelp("The hive's run dir (for the default socket paths).", valueName: "dir"))
    var runDir: String?
    @Option(help: ArgumentHelp("The agent socket. Default: <run-dir>/agents/<name>/mcp.sock.", valueName: "path")) var socket: String?
    @Option(name: .customLong("state-dir"), help: ArgumentHelp("claude's working dir. Default: <root>/agents/<name>/state.", valueName: "dir"))
    var stateDir: String?
    @Option(name: .customLong("harness-dir"), help: ArgumentHelp("The harness's files. Default: <root>/agents/<name>/harness.", valueName: "dir"))
    var harnessDir: String?
    @Option(name: .customLong("web-socket"), help: ArgumentHelp("Where to serve the harness's HTTP endpoint. Default: <run-dir>/agents/<name>/page/web.sock; 'none' for no endpoint.", valueName: "path"))
    var webSocket: String?
    @Option(help: "The claude model (alias or id).") var model = "sonnet"
    @Option(name: .customLong("system-prompt"), help: "Text appended to claude's system prompt.") var systemPrompt: String?
    @Option(name: .customLong("max-failures"), help: "Failed turns on one message before it is dead-lettered.") var maxFailures = 5
    @Option(name: .customLong("turn-timeout"), help: ArgumentHelp("Longest a turn may run.", valueName: "seconds")) var turnTimeout: Double = 1800
    @Option(name: .customLong("failure-backoff"), help: ArgumentHelp("First wait after a failed turn; it doubles, up to 5 minutes.", valueName: "seconds"))
    var failureBackoff: Double = 5
    @Option(name: .customLong("context-fraction"), help: "Start a fresh session when the last context is at least this share of the window and the cache is cold.")
    var contextFraction: Double = 0.5
    @Option(name: .customLong("cache-ttl"), help: ArgumentHelp("Seconds the prompt cache is taken to stay warm after a turn. Default: learned from the cache writes claude reports.", valueName: "seconds"))
    var cacheTTL: Double?
    @Option(name: .customLong("rate-limit-jitter"), help: ArgumentHelp("Most seconds added after a limit's reset before retrying.", valueName: "seconds"))
    var rateLimitJitter: Double = 60
    @Option(help: ArgumentHelp("The agent's config as core rendered it (agent.json fields); it overrides the flags above.", valueName: "file"))
    var config: String?
    @Flag(help: "Started by core: stdin is a pipe from core, and the harness stops when it closes (core is gone).")
    var supervised = false
    @Option(help: ArgumentHelp("'bwrap' when core started this harness in a bubblewrap cage: claude may then do anything the cage allows (permissions.mode in agent.json narrows it). Default 'none': the hive's tools and reading files only.", valueName: "kind"))
    var sandbox = "none"
    @Option(help: ArgumentHelp("Forward the cage's 127.0.0.1:PORT to the unix socket PATH, for a gated network (core passes one per way out: the model, the proxy, the forge). Repeatable.", valueName: "PORT=PATH"))
    var forward: [String] = []
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.") var logLevel: Logger.Level = .info

    func validate() throws {
        for f in forward where GatedNetwork.Forward(argument: f) == nil {
            throw ValidationError("--forward wants PORT=/absolute/socket/path, not '\(f.prefix(120))'")
        }
        do { _ = try AgentName(name) } catch { throw ValidationError(error.description) }
        guard failureBackoff >= 0, (cacheTTL ?? 0) >= 0, rateLimitJitter >= 0 else { throw ValidationError("durations cannot be negative") }
        guard contextFraction > 0, contextFraction <= 1 else { throw ValidationError("--context-fraction must be in (0, 1]") }
        guard maxFailures >= 1 else { throw ValidationError("--max-failures must be at least 1") }
        guard turnTimeout >= 1 else { throw ValidationError("--turn-timeout must be at least 1 second") }
        guard ["none", "bwrap"].contains(sandbox) else { throw ValidationError("--sandbox must be 'none' or 'bwrap'") }
    }

    func run() async throws {
        Log.bootstrap(level: logLevel)
        // Nothing the harness creates (stores, session files, its socket before it is tightened) is
        // readable by other users.
        umask(0o007)
        let logger = Logger(label: "hive.agent")
        let agent = try AgentName(name)
        let rootURL = root.map { URL(filePath: $0) } ?? Defaults.root
        let layout = HiveLayout(root: rootURL, runDir: runDir.map { URL(filePath: $0) } ?? Defaults.runDir(root: rootURL))
        var config = HarnessConfig(
            name: agent, socket: socket ?? layout.agentSocket(agent).path,
            stateDir: stateDir ?? layout.stateDir(agent).path, harnessDir: harnessDir ?? layout.harnessDir(agent).path,
            webSocket: webSocket == "none" ? nil : (webSocket ?? layout.agentWebSocket(agent).path), hiveExecutable: URL(filePath: "/proc/self/exe").resolvingSymlinksInPath().path,
            environment: ProcessInfo.processInfo.environment)
        config.model = model
        config.systemPromptAddition = systemPrompt
        config.maxFailures = maxFailures
        config.turnTimeout = .milliseconds(Int64(turnTimeout * 1000))
        config.failureBackoff = Backoff(base: failureBackoff, cap: 300)
        config.policy = SessionPolicy(contextFraction: contextFraction, cacheTTL: cacheTTL)
        config.rateLimitJitter = rateLimitJitter
        config.sandboxed = sandbox == "bwrap"
        if let file = self.config {
            do {
                config.apply(try AgentConfig.parse(try Data(contentsOf: URL(filePath: file))))
            } catch {
                throw fail(RequestError("cannot use the config \(file): \(error)"))
            }
        }
        if supervised { Lifeline.watchStandardInput(logger: logger) }
        // The gated network's cage end: claude reaches the model, the proxy and the forge on this cage's
        // own loopback; each connection goes on through core's socket. They live as long as the harness.
        var forwarders: [LoopbackForwarder] = []
        for f in forward.compactMap(GatedNetwork.Forward.init(argument:)) {
            do { forwarders.append(try LoopbackForwarder(port: f.port, to: f.path, handOver: f.handsOver)) } catch { throw fail(error) }
        }
        forwarders.forEach { $0.start() }
        defer { forwarders.forEach { $0.stop() } }
        do {
            let loop = try TurnLoop(config: config, logger: logger)
            var services: [any Service] = [HarnessService(loop: loop), StoreSweeper(loop: loop)]
            if let web = config.webSocket { services.append(try HarnessWeb.application(loop, path: web, logger: logger)) }
            let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            try await group.run()
        } catch {
            throw fail(error)
        }
    }
}

/// A supervised harness's tie to core: core holds the write end of its stdin. End of input means core is
/// gone, and the harness stops as on SIGTERM (its turn's message stays unacked for the next harness).
enum Lifeline {
    static func watchStandardInput(logger: Logger) {
        Thread {
            var buf = [UInt8](repeating: 0, count: 256)
            while true {
                let n = read(0, &buf, buf.count)
                if n == 0 || (n < 0 && errno != EINTR) { break }
            }
            logger.warning("core is gone (lifeline closed); stopping")
            kill(getpid(), SIGTERM)
        }.start()
    }
}

struct MCPServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp",
        abstract: "Serve an agent's hive tools over MCP on stdin/stdout (claude starts this).",
        discussion: """
            Tools: send, recv, whoami, status, remind, request_next_turn, ask, answer, search; the manager also
            gets request_init_config, request_apply_commit, start/stop/restart/update_agent and agent_logs.
            Each is one request on the agent socket, so it acts as the agent that socket belongs to; only
            search in its own transcript reads a file, the --events its harness names. stdout carries MCP
            only; logs go to stderr.
            """)

    @Option(help: ArgumentHelp("The agent socket. Default: $HIVE_SOCKET, else /run/hive/mcp.sock (inside a cage).", valueName: "path"))
    var socket: String?
    @Option(help: ArgumentHelp("The agent's own events.sqlite (its harness passes it), for the search tool's transcripts.", valueName: "path"))
    var events: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.") var logLevel: Logger.Level = .warning

    func run() async throws {
        Log.bootstrap(level: logLevel)
        let path = socket ?? ProcessInfo.processInfo.environment["HIVE_SOCKET"] ?? "/run/hive/mcp.sock"
        do { try await HiveToolServer.run(socket: path, events: events, logger: Logger(label: "hive.mcp")) } catch { throw fail(error) }
    }
}
