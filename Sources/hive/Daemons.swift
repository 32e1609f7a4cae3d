import ArgumentParser
import Foundation
import HiveBroker
import HiveClient
import HiveCore
import HiveHost
import HiveMetrics
import HivePostgres
import HiveWire
import HiveWeb
import Logging

/// Options shared by the commands that run a hive.
struct HiveRootOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The hive root: broker database and agent directories. Default: $HIVE_ROOT, else $XDG_DATA_HOME/hyperhive, else ~/.local/share/hyperhive.", valueName: "dir"))
    var root: String?

    @Option(name: .customLong("run-dir"), help: ArgumentHelp("Where the sockets go. Default: <root>/run. Keep it short: socket paths are limited to 107 bytes.", valueName: "dir"))
    var runDir: String?

    @Option(name: .customLong("retention-days"), help: "Days an acked message is kept before it is swept.")
    var retentionDays: Double = 30

    @Option(name: .customLong("events-retention-days"), help: "Days an agent's live events are kept.")
    var eventsRetentionDays: Double = 7

    @Option(name: .customLong("stats-retention-days"), help: "Days an agent's turn stats are kept.")
    var statsRetentionDays: Double = 90

    @Option(name: .customLong("reminder-cap"), help: "Most reminders one agent may have pending.")
    var reminderCap = 100

    @Option(name: .customLong("reminder-burst"), help: "Reminders one agent may set in a burst before the rate limit applies.")
    var reminderBurst: Double = 20

    @Option(name: .customLong("reminder-refill"), help: ArgumentHelp("Seconds per reminder an agent may set after its burst.", valueName: "seconds"))
    var reminderRefill: Double = 60

    @Option(name: .customLong("inflight-grace"), help: ArgumentHelp("Seconds messages handed to an agent may wait with nothing connected before they are put back in its inbox.", valueName: "seconds"))
    var inflightGrace: Double = 30

    @Option(name: .customLong("sweep-interval"), help: ArgumentHelp("Seconds between retention sweeps.", valueName: "seconds"))
    var sweepInterval: Double = 3600

    @Option(help: ArgumentHelp("""
        full: every commit is fsynced, so a message whose send returned ok survives a power cut (default). \
        normal: survives a crash of the daemon, not a power cut; lower latency.
        """, valueName: "full|normal"))
    var synchronous: Broker.Synchronous = .full

    @Option(name: .customLong("forge-listen"), help: ArgumentHelp("""
        Where the hive's git forge serves (under /forge/): HOST:PORT on loopback (agents reach it from \
        their cages: gated ones through the gateway, at the same port), port 0 for any free port, or 'off'.
        """, valueName: "host:port|off"))
    var forgeListen = "127.0.0.1:7001"
    @Option(name: .customLong("metrics-listen"), help: ArgumentHelp("""
        Where core serves Prometheus metrics (GET /metrics) for a node without `hive web`: HOST:PORT on \
        loopback, or 'off' (`hive web` serves them at /metrics too).
        """, valueName: "host:port|off"))
    var metricsListen = "off"
    @Option(name: .customLong("egress-resolve"), help: ArgumentHelp("""
        Gated agents' gateway resolves NAME to ADDRESS instead of asking DNS (repeatable; like curl's --resolve).         The allow-list still decides whether NAME may be reached, and an internal ADDRESS is still refused unless         --egress-allow-internal names it.
        """, valueName: "NAME=ADDRESS"))
    var egressResolve: [String] = []
    @Option(name: .customLong("egress-allow-internal"), help: ArgumentHelp("""
        An internal endpoint (loopback, private, link-local) a gated agent may reach through a name on its         allow-list, such as a package mirror on your network (repeatable). Everything else internal is refused.
        """, valueName: "ADDRESS:PORT"))
    var egressAllowInternal: [String] = []
    @Option(name: .customLong("forge-git-limit"), help: ArgumentHelp("Git requests (clone, fetch, push) the forge serves at once; more are told to retry (503).", valueName: "n"))
    var forgeGitLimit = 16
    @Option(name: .customLong("forge-idle-timeout"), help: ArgumentHelp("A git request that moves no byte for this long is ended and its git process killed.", valueName: "seconds"))
    var forgeIdleTimeout: Double = 60

    @Option(name: .customLong("send-rate"), help: ArgumentHelp("Messages an agent may send a second after its burst (0: unlimited; the operator is never limited).", valueName: "n"))
    var sendRate: Double = 5
    @Option(name: .customLong("send-burst"), help: ArgumentHelp("Messages an agent may send at once before --send-rate applies.", valueName: "n"))
    var sendBurst: Double = 60

    @Option(name: .customLong("agent-env"), help: ArgumentHelp("""
        A variable for every agent's environment (repeatable). Cages get only an allow-list of core's own \
        environment (ANTHROPIC_*, CLAUDE_CODE_*, proxy settings, PATH, locale; see docs/security.md): anything else an agent needs is named here, or in its agent.json `env`.
        """, valueName: "NAME=VALUE"))
    var agentEnv: [String] = []

    @Option(name: .customLong("agent-disk-quota"), help: ArgumentHelp("An agent's own dirs (state and harness) may hold this many MiB (its agent.json limits.disk_mb overrides); past it the agent is parked until under 90%.", valueName: "MiB"))
    var agentDiskQuota = 10_240
    @Option(name: .customLong("shared-disk-quota"), help: ArgumentHelp("/shared may hold this many MiB; past it the agent owning most of it is parked.", valueName: "MiB"))
    var sharedDiskQuota = 10_240
    @Option(name: .customLong("disk-reserve"), help: ArgumentHelp("Free MiB the hive's disk keeps: below it agents' sends, reminders and questions are refused with a clear error.", valueName: "MiB"))
    var diskReserve = 512
    @Option(name: .customLong("cage-log-max"), help: ArgumentHelp("A cage log past this many MiB is rotated (one older copy kept).", valueName: "MiB"))
    var cageLogMax = 16
    @Option(name: .customLong("disk-check-interval"), help: ArgumentHelp("How often disk use is measured and logs rotated.", valueName: "seconds"))
    var diskCheckInterval: Double = 60

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        for pair in agentEnv {
            guard let eq = pair.firstIndex(of: "="), pair[..<eq].range(of: "^[A-Za-z_][A-Za-z0-9_]*$", options: .regularExpression) != nil else {
                throw ValidationError("--agent-env wants NAME=VALUE, not '\(pair.prefix(64))'")
            }
        }
        if forgeListen != "off" {
            let parts = forgeListen.split(separator: ":")
            guard parts.count == 2, let port = Int(parts[1]), (0...65535).contains(port) else {
                throw ValidationError("--forge-listen wants HOST:PORT (e.g. 127.0.0.1:7001) or 'off', not '\(forgeListen)'")
            }
        }
        _ = try egress()
        if metricsListen != "off" {
            guard let colon = metricsListen.lastIndex(of: ":"), let port = Int(metricsListen[metricsListen.index(after: colon)...]), (0...65535).contains(port),
                  ["127.0.0.1", "localhost", "[::1]", "::1"].contains(String(metricsListen[..<colon])) else {
                throw ValidationError("--metrics-listen wants a loopback HOST:PORT (e.g. 127.0.0.1:9464) or 'off', not '\(metricsListen)'")
            }
        }
        guard retentionDays > 0, eventsRetentionDays > 0, statsRetentionDays > 0 else {
            throw ValidationError("retention windows must be more than 0 days")
        }
        guard sweepInterval >= 1 else { throw ValidationError("--sweep-interval must be at least 1 second") }
        guard reminderCap >= 1, reminderBurst >= 1, reminderRefill > 0 else {
            throw ValidationError("--reminder-cap and --reminder-burst must be at least 1, --reminder-refill more than 0")
        }
        guard sendRate >= 0, sendRate.isFinite, sendBurst >= 1, sendBurst.isFinite else {
            throw ValidationError("--send-rate must be 0 or more, --send-burst at least 1")
        }
        guard forgeGitLimit >= 1, forgeIdleTimeout >= 1, forgeIdleTimeout.isFinite else {
            throw ValidationError("--forge-git-limit must be at least 1, --forge-idle-timeout at least 1 second")
        }
        guard agentDiskQuota >= 16, sharedDiskQuota >= 16, diskReserve >= 0, cageLogMax >= 1, diskCheckInterval >= 0.2, diskCheckInterval.isFinite else {
            throw ValidationError("--agent-disk-quota and --shared-disk-quota must be at least 16 MiB, --cage-log-max at least 1 MiB, --disk-reserve 0 or more, --disk-check-interval at least 0.2 s")
        }
        guard inflightGrace >= 0.3 else { throw ValidationError("--inflight-grace must be at least 0.3 seconds") }
    }

    var layout: HiveLayout {
        let root = root.map { URL(filePath: $0) } ?? Defaults.root
        return HiveLayout(root: root, runDir: runDir.map { URL(filePath: $0) } ?? Defaults.runDir(root: root))
    }

    /// `--egress-resolve` and `--egress-allow-internal`, checked.
    func egress() throws -> (pins: [String: [IPAddress]], exceptions: Set<String>) {
        var pins: [String: [IPAddress]] = [:]
        for pair in egressResolve {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let name = EgressPolicy.normalised(parts[0]), IPAddress(name) == nil, let address = IPAddress(parts[1]) else {
                throw ValidationError("--egress-resolve wants NAME=ADDRESS (a host name and an IPv4 or IPv6 address), not '\(pair.prefix(120))'")
            }
            pins[name, default: []].append(address)
        }
        var exceptions = Set<String>()
        for endpoint in egressAllowInternal {
            guard let colon = endpoint.lastIndex(of: ":"), let port = Int(endpoint[endpoint.index(after: colon)...]), (1...65535).contains(port),
                  let address = IPAddress(String(endpoint[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))) else {
                throw ValidationError("--egress-allow-internal wants ADDRESS:PORT (e.g. 10.0.0.5:3142), not '\(endpoint.prefix(120))'")
            }
            exceptions.insert("\(address):\(port)")
        }
        return (pins, exceptions)
    }

    func options(cage: CageMode) -> CoreOptions {
        var o = CoreOptions(layout: layout, cage: cage, retentionSeconds: retentionDays * 86400,
                            sweepInterval: .milliseconds(Int64(sweepInterval * 1000)), synchronous: synchronous)
        o.eventsRetentionSeconds = eventsRetentionDays * 86400
        o.statsRetentionSeconds = statsRetentionDays * 86400
        o.inflightGrace = .milliseconds(Int64(inflightGrace * 1000))
        o.reminderPolicy.cap = reminderCap
        o.reminderPolicy.burst = reminderBurst
        o.reminderPolicy.refillPerSecond = 1 / reminderRefill
        o.forgeListen = forgeListen == "off" ? nil : forgeListen
        o.metricsListen = metricsListen == "off" ? nil : metricsListen
        if let egress = try? egress() { (o.egressPins, o.egressInternal) = (egress.pins, egress.exceptions) }
        o.forgeLimits.concurrent = forgeGitLimit
        o.forgeLimits.idle = .milliseconds(Int64(forgeIdleTimeout * 1000))
        o.disk.agentQuotaMB = agentDiskQuota
        o.disk.sharedQuotaMB = sharedDiskQuota
        o.disk.reserveMB = diskReserve
        o.disk.logMaxMB = cageLogMax
        o.disk.interval = .milliseconds(Int64(diskCheckInterval * 1000))
        o.sendPerSecond = sendRate
        o.sendBurst = sendBurst
        for pair in agentEnv {
            let eq = pair.firstIndex(of: "=")!
            o.agentEnvironment[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
        }
        return o
    }
}

extension CageMode: ExpressibleByArgument {}

extension Broker.Synchronous: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument.uppercased()) }
    public var defaultValueDescription: String { rawValue.lowercased() }
    public static var allValueStrings: [String] { allCases.map { $0.rawValue.lowercased() } }
}

struct Core: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the coordinator daemon in the foreground (broker, admin socket, agent sockets).",
        discussion: """
            Owns the hive root: a second core on the same root (or run dir) refuses to start and names the
            running one. SIGTERM or Ctrl-C stops it gracefully. Logs go to stderr.
            --cage none starts no agent processes: external processes connect to <run-dir>/agents/<name>/mcp.sock.
            """)

    @OptionGroup var hive: HiveRootOptions
    @Option(help: "How agents run: bwrap (a supervised `hive agent` per agent in a bubblewrap sandbox), process (the same without a sandbox) or none (core starts nothing; you run them).")
    var cage: CageMode = .none

    @Option(help: ArgumentHelp("""
        A hive on many hosts: its shared PostgreSQL store, postgres://USER@HOST[:PORT]/DATABASE (password from \
        $PGPASSWORD; TLS verified unless the database is on this host; ?sslmode=disable only for loopback). \
        Needs --node. Without it the hive lives in the SQLite file under --root (docs/multi-host.md).
        """, valueName: "url"))
    var database: String?

    @Option(help: ArgumentHelp("This host's name in a hive on many hosts (with --database): the agents spawned here are placed on it.", valueName: "name"))
    var node: String?

    @Option(name: .customLong("node-lease"), help: ArgumentHelp("""
        With --database: how long this node's leases on its agents last. A node that cannot reach the database \
        this long stops its cages; other nodes show its agents as node_down once its heartbeat is this old.
        """, valueName: "seconds"))
    var nodeLease: Double = 15

    @Option(name: .customLong("node-listen"), help: ArgumentHelp("""
        With --database: where this node's endpoint listens for the other nodes (HTTPS with a certificate the \
        others pin from the database, and node tokens), for hive move. 'off' serves none (this node then \
        cannot send or take agents). Open it to the other nodes only (docs/multi-host.md, firewall).
        """, valueName: "host:port"))
    var nodeListen = "0.0.0.0:7443"

    @Option(name: .customLong("node-address"), help: ArgumentHelp("""
        The name or address other nodes reach this one by. Default: the --node-listen address, or this host's \
        name when that is 0.0.0.0.
        """, valueName: "host"))
    var nodeAddress: String?

    func validate() throws {
        if let database { _ = try DatabaseURL(database) }
        guard (database == nil) == (node == nil) else { throw ValidationError("--database and --node go together: the hive's store and this host's name in it") }
        if let node { _ = try AgentName(node) }
        // At least two heartbeats (every 2 s) and a database operation's bound (5 s) fit in a lease.
        if let nodeAddress, nodeAddress.isEmpty || nodeAddress.utf8.count > 253 || !nodeAddress.allSatisfy({ $0.isLetter || $0.isNumber || ".-:".contains($0) }) {
            throw ValidationError("--node-address is a host name or an IP address, not '\(nodeAddress)'")
        }
        guard nodeLease >= 10, nodeLease <= 600 else { throw ValidationError("--node-lease is 10 to 600 seconds (heartbeats go every 2 s)") }
    }

    func run() async throws {
        Log.bootstrap(level: hive.logLevel)
        HiveMetrics.bootstrap()
        let logger = Logger(label: "hive.core")
        do {
            var options = hive.options(cage: cage)
            options.database = try database.map { try DatabaseURL($0) }
            options.node = node
            options.lease = .seconds(nodeLease)
            options.nodeListen = nodeListen == "off" ? nil : nodeListen
            options.nodeAddress = nodeAddress
            let core = try await CoreDaemon.start(options, logger: logger)
            try await core.run()
        } catch {
            throw fail(error)
        }
    }
}

struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a hive on this machine with sensible defaults and tell you how to use it.",
        discussion: """
            Picks a per-user data directory (override with --root), starts everything Hyperhive has so far,
            prints what runs where, and stops cleanly on Ctrl-C. Run it again later: agents and messages
            persist in the root.
            """)

    @OptionGroup var hive: HiveRootOptions
    @Option(help: ArgumentHelp("Address for the dashboard (loopback by default).", valueName: "host:port"))
    var listen = "127.0.0.1:7000"

    @Flag(help: "Run the manager and two agents (alice, bob) on a scripted stand-in instead of Claude, to watch messages flow without a Claude login.")
    var demo = false

    @Flag(help: "Without bubblewrap, run agents anyway, unsandboxed (as root that means agents ARE root). Refused without this flag.")
    var unsandboxed = false

    func validate() throws {
        let parts = listen.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count >= 2, let port = Int(parts.last!), (1...65535).contains(port), !parts.dropLast().joined(separator: ":").isEmpty else {
            throw ValidationError("--listen takes HOST:PORT, e.g. 127.0.0.1:7000")
        }
    }

    /// The demo's opening: two agents, a request from the operator to the manager, and a question from
    /// the manager waiting on the dashboard for the operator to answer.
    static func startDemo(runDir: URL) async {
        guard let admin = try? HiveConnection(path: HiveLayout.adminSocket(in: runDir).path) else { return }
        for name in ["alice", "bob"] { _ = try? await admin.call(SpawnCommand(name: name)) }
        try? await Task.sleep(for: .seconds(1))
        _ = try? await admin.call(SendCommand(to: "manager", body: "Please have the team write a haiku about bees."))
        _ = try? await admin.call(SendCommand(to: "manager", body: "Then ask me what the team should look at next."))
    }

    /// Which claude the harnesses will run, or what to do when there is none.
    static var claudeLine: String {
        if let found = ClaudeExecutable.resolve(environment: ProcessInfo.processInfo.environment) {
            return "\(found) (agents use the credential you store with `hive login`, or ANTHROPIC_API_KEY from this environment)"
        }
        return "NOT FOUND: install Claude Code so `claude` is on PATH, or set HIVE_CLAUDE (scripts/fetch-claude prints the tested one); agents show claude_missing until then"
    }

    /// How to call this binary from another shell: `hive` when that is what PATH finds, else its path.
    static var commandName: String {
        let me = URL(filePath: "/proc/self/exe").resolvingSymlinksInPath().path
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for dir in path.split(separator: ":") {
            let candidate = URL(filePath: String(dir)).appending(path: "hive").resolvingSymlinksInPath().path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate == me ? "hive" : me }
        }
        return me
    }

    func run() async throws {
        Log.bootstrap(level: hive.logLevel)
        HiveMetrics.bootstrap()
        let logger = Logger(label: "hive.up")
        let sandbox: (cage: CageMode, warning: String?)
        do { sandbox = try UpSandbox.choose(bwrapAvailable: BwrapCage.available, asRoot: getuid() == 0, unsandboxed: unsandboxed) } catch { throw fail(error) }
        var options = hive.options(cage: sandbox.cage)
        if let warning = sandbox.warning { FileHandle.standardError.write(Data((warning + "\n\n").utf8)) }
        if demo {
            let wrapper = options.layout.root.appending(path: "demo/claude")
            do {
                try FileManager.default.createDirectory(at: wrapper.deletingLastPathComponent(), withIntermediateDirectories: true)
                var me = URL(filePath: "/proc/self/exe").resolvingSymlinksInPath().path
                // The wrapper runs in cages as agents' uids: it must name a binary they can reach.
                if getuid() == 0 { me = try AgentBinaries.reachable(me, in: options.layout) }
                try Data("#!/bin/sh\n# The demo stand-in for claude (hive up --demo). Not Claude.\nexec '\(me)' demo-claude \"$@\"\n".utf8).write(to: wrapper)
                _ = chmod(wrapper.path, 0o755)
            } catch { throw fail(error) }
            options.agentEnvironment["HIVE_CLAUDE"] = wrapper.path
        }
        // What blocks agents on this host, before anything starts (`hive doctor` has the whole list).
        let blocking = HostDoctor.run(root: options.layout.root, environment: ProcessInfo.processInfo.environment.merging(options.agentEnvironment) { $1 },
                                      credentialsStored: !StoredCredential.names(in: options.layout).isEmpty)
            .filter { $0.level != .ok && !(self.demo && ($0.check.hasPrefix("claude") || $0.check == "login")) }
        if !blocking.isEmpty {
            FileHandle.standardError.write(Data("hive doctor:\n\(Doctor.render(blocking, all: false))\n\n".utf8))
        }
        let core: CoreDaemon
        do { core = try await CoreDaemon.start(options, logger: logger) } catch { throw fail(error) }
        let layout = options.layout
        let agents = (try? core.broker.agents().filter { $0.record.destroyedAt == nil }.map(\.record.name)) ?? []
        let hive = Self.commandName
        let banner = """
            Hyperhive is up.
              root         \(layout.root.path)
              admin socket \(layout.adminSocket.path)
              agents       \(agents.joined(separator: ", "))
              agent socket \(layout.runDir.path)/agents/<name>/mcp.sock (one per agent)
              cages        \(sandbox.cage == .bwrap ? "bwrap: each harness in a bubblewrap sandbox, only its own dirs" : "process: NO SANDBOX (install bubblewrap)")
              network      \(sandbox.cage == .bwrap ? "gated for new agents: loopback only; the model (credential added by core, never in the cage), the forge and egress.allow through core's gateway (\(hive) net <name>)" : "NOT gated without bubblewrap: agents share the host's network")
              claude       \(demo ? "DEMO: a scripted stand-in, not Claude (drop --demo to use the real one)" : Self.claudeLine)
              dashboard    http://\(listen)/login?token=\((try? DashboardToken.load(runDir: layout.runDir)) ?? "(see <run-dir>/dashboard-token)")
                           (hive web, an unprivileged process; per agent: /agent/<name>/)

            From another shell:
              export HIVE_RUN_DIR=\(layout.runDir.path)
              \(hive) ls                    # agents and their inboxes
              \(hive) spawn iris            # a new agent with its own socket
              \(hive) send manager "hello"  # talk to an agent ('*' reaches all)
              \(hive) inbox                 # what agents sent to you
              \(hive) net manager           # what the manager's gated network let through or refused

            Ctrl-C stops the hive; everything is kept in the root for next time.
            """
        let demo = self.demo
        let runDir = layout.runDir
        let web = WebSupervisor(arguments: ["web", "--run-dir", runDir.path, "--listen", listen, "--supervised"], logger: logger)
        defer { web.stop() }
        do {
            try await core.run(onReady: {
                // The dashboard is its own unprivileged process, started again if it dies; it dies with this one.
                web.start()
                print(banner)
                if demo {
                    print("\nDEMO: spawning alice and bob and asking the manager for a haiku; watch with `hive ls`, `hive inbox`, `hive stats manager`.")
                }
                fflush(nil) // stdout may be a pipe: show the banner now, not at exit
                if demo { Task { await Self.startDemo(runDir: runDir) } }
            })
        } catch { throw fail(error) }
    }
}
