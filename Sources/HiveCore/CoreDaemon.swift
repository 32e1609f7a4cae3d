import Foundation
import HiveBroker
import HiveForge
import HiveHost
import HivePostgres
import HiveWire
import Logging
import ServiceLifecycle

/// Everything `hive core` needs to start.
public struct CoreOptions: Sendable {
    public var layout: HiveLayout
    public var cage: CageMode
    /// Seconds an acked message is kept before the retention sweep deletes it.
    public var retentionSeconds: Double
    public var sweepInterval: Duration
    /// Seconds events and turn stats of agents are kept.
    public var eventsRetentionSeconds: Double = 7 * 86400
    public var statsRetentionSeconds: Double = 90 * 86400
    /// How hard each broker commit works to reach the disk (see docs/persistence.md).
    public var synchronous: Broker.Synchronous
    /// The `hive` executable the process cage runs `hive agent` from.
    public var hiveExecutable: String
    /// Per-agent reminder limits (cap, token bucket, horizon).
    public var reminderPolicy = ReminderLimits.Policy()
    /// Messages an agent may send: a burst, then this many a second (0: unlimited).
    public var sendBurst: Double = 60
    public var sendPerSecond: Double = 5
    /// Most reminders fired per transaction on the SQLite store (PostgreSQL: `PostgresBroker.reminderBatch`).
    public var reminderBatch = 32
    /// How long an agent may hold handed-out messages with nothing connected before they are requeued.
    public var inflightGrace: Duration = .seconds(30)
    /// Environment variables set for every harness on top of the allow-listed part of core's own (e.g.
    /// HIVE_CLAUDE for the demo, `--agent-env`).
    public var agentEnvironment: [String: String] = [:]
    /// The group that may use `web.sock` (the `hive web` process's), when core runs as root.
    public var webGroup: gid_t? = gid_t(WebSurface.uid)
    /// Where the forge listens (`HOST:PORT`, port 0 picks a free one), or nil for no forge.
    public var forgeListen: String? = "127.0.0.1:7001"
    /// Where core serves GET /metrics (loopback HOST:PORT), or nil: only through the admin and web sockets.
    public var metricsListen: String?
    /// Names gated agents' gateways resolve to fixed addresses (`--egress-resolve`), before the host's resolver.
    public var egressPins: [String: [IPAddress]] = [:]
    /// Internal `address:port` endpoints a listed name may still reach (`--egress-allow-internal`).
    public var egressInternal: Set<String> = []
    /// What each git request over HTTP may take (see `GitLimits`).
    public var forgeLimits = GitLimits()
    /// Disk quotas, the broker's reserve and log rotation (see `DiskPolicy`).
    public var disk = DiskPolicy()
    /// The shared PostgreSQL store of a hive on many hosts (`--database`), or nil for the embedded SQLite file.
    public var database: DatabaseURL?
    /// This node's name in a hive on many hosts (`--node`).
    public var node: String?
    /// How often this node's heartbeat goes to the database, and how long its leases on its agents last.
    public var heartbeatInterval: Duration = .seconds(2)
    public var lease: Duration = .seconds(15)
    /// Where this node's endpoint listens for the other nodes (`--node-listen HOST:PORT`, HTTPS), or nil.
    public var nodeListen: String? = "0.0.0.0:7443"
    /// The host name or address other nodes reach it by (`--node-address`); default: the listen address,
    /// or this host's name when that is a wildcard.
    public var nodeAddress: String?

    public init(layout: HiveLayout, cage: CageMode = .none, retentionSeconds: Double = 30 * 86400,
                sweepInterval: Duration = .seconds(3600), synchronous: Broker.Synchronous = .full,
                hiveExecutable: String = URL(filePath: "/proc/self/exe").resolvingSymlinksInPath().path) {
        self.layout = layout
        self.hiveExecutable = hiveExecutable
        self.synchronous = synchronous
        self.cage = cage
        self.retentionSeconds = retentionSeconds
        self.sweepInterval = sweepInterval
    }
}

/// The coordinator daemon: owns the broker, the admin socket and every agent socket.
public final class CoreDaemon: Sendable {
    public let options: CoreOptions
    public let broker: any HiveStore
    /// The same store when it is the SQLite file (its WAL is checkpointed by core).
    private let sqlite: Broker?
    private let logger: Logger
    private let locks: [ExclusiveLock]
    private let sockets: AgentSockets
    private let processes: AgentProcesses?
    private let lifecycle: Lifecycle
    private let admin: LineServer
    private let forge: (any Service)?
    private let disk: DiskWatch
    /// GET /metrics on a loopback port (`--metrics-listen`), if asked for.
    private let metrics: (any Service)?
    private let web: LineServer
    private let feed: DashboardFeed

    /// Takes ownership of the root and run dir, opens the broker and binds every socket. Throws a
    /// message for the operator when anything is in the way (another core, a too-long path, ...).
    public static func start(_ options: CoreOptions, logger: Logger) async throws -> CoreDaemon {
        let layout = options.layout
        // Every agent's sockets, tunnels and gateway connections are descriptors of this one process: take
        // all the system allows rather than the shell's default 1024.
        var files = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &files) == 0, files.rlim_cur < files.rlim_max {
            files.rlim_cur = files.rlim_max
            _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &files)
        }
        let fm = FileManager.default
        try fm.createDirectory(at: layout.root, withIntermediateDirectories: true)
        try fm.createDirectory(at: layout.runDir, withIntermediateDirectories: true)
        try fm.createDirectory(at: layout.agentsDir, withIntermediateDirectories: true)
        try HiveLayout.checkSocketPath(layout.adminSocket)
        try HiveLayout.checkSocketPath(layout.longestSocketPath)

        let holder = "pid \(getpid()), root \(layout.root.path), run dir \(layout.runDir.path), since \(ISO8601DateFormatter().string(from: Date()))"
        let rootLock = try ExclusiveLock(path: layout.rootLock, what: "hive root \(layout.root.path)", holder: holder)
        let runLock = try ExclusiveLock(path: layout.runLock, what: "run dir \(layout.runDir.path)", holder: holder)

        // A node's endpoint (a hive on many hosts): its identity and address are known before the first
        // heartbeat, which publishes them.
        var serving: NodeServing?
        if options.database != nil, let node = options.node, let listen = options.nodeListen {
            let (host, port) = try ListenAddress.parse(listen, what: "--node-listen")
            let identity = try NodeIdentity.load(from: layout.nodeDir, node: node)
            AgentMoves.sweep(layout, logger: logger) // an interrupted move's leftovers
            let address = options.nodeAddress ?? (["0.0.0.0", "::", ""].contains(host) ? ProcessInfo.processInfo.hostName : host)
            serving = NodeServing(identity: identity, host: host, port: port,
                                  endpoint: "https://\(address.contains(":") ? "[\(address)]" : address):\(port)")
        }
        let (broker, sqlite) = try openStore(options, serving: serving, logger: logger)
        // A PostgreSQL store runs tasks (its pool, listener and node session): stopped if core does not start.
        var started = false
        defer { if !started { (broker as? PostgresBroker)?.shutdown() } }
        if try broker.ensureManager() { logger.info("first boot: registered the manager") }

        let scheduler = ReminderScheduler(broker: broker, logger: logger, batchSize: sqlite == nil ? PostgresBroker.reminderBatch : options.reminderBatch)
        let limits = ReminderLimits(policy: options.reminderPolicy)
        let configs = ConfigStore(layout: layout, reminderLimits: limits, logger: logger)
        let desk = ReminderDesk(broker: broker, layout: layout, limits: limits, scheduler: scheduler)
        let rates = AgentRates(send: .init(burst: options.sendBurst, perSecond: options.sendPerSecond))
        let ledger = SpendLedger(store: broker, layout: layout, configs: { [configs] in configs.current($0) }, logger: logger)
        let budgets = BudgetDesk(store: broker, configs: configs, ledger: ledger, notify: { [broker] name, text in
            // The operator always; the manager too, unless the notice is about the manager itself.
            for to in name == .manager ? [Recipient.operator] : [.operator, .agent(.manager)] {
                _ = try? broker.send(from: .system, to: to, body: SystemNotice.budget.body(text), inReplyTo: nil)
            }
        }, logger: logger)
        ledger.refuseModelCalls { [budgets] in budgets.gatewayRefusal($0) }
        let sockets = AgentSockets(layout: layout, broker: broker, board: AgentStatusBoard(), reminders: desk, configs: configs, rates: rates,
                                   reserve: DiskReserve(path: layout.root.path, reserveMB: options.disk.reserveMB), ledger: ledger, budgets: budgets, logger: logger)
        if options.cage == .bwrap, !BwrapCage.available {
            throw CoreError("--cage bwrap needs bubblewrap: apt-get install bubblewrap (or use --cage process)")
        }
        var bwrap: BwrapCage?
        if options.cage == .bwrap {
            var hive = options.hiveExecutable
            if getuid() == 0 {
                // Cages run as agents' uids: what they bind must be reachable by them.
                try AgentBinaries.checkRoot(layout)
                hive = try AgentBinaries.reachable(hive, in: layout)
                if hive != options.hiveExecutable { logger.notice("the hive binary is not reachable by agents' uids; cages run a copy: \(hive)") }
            }
            // Not root: cages run as core's own uid, and no block is claimed.
            let uids = getuid() == 0 ? try UIDRange.claim(for: layout, legacy: try broker.handedOutUIDs(), logger: logger) : UIDRange(first: 0, count: 0)
            bwrap = BwrapCage(layout: layout, broker: broker, uids: uids, hive: hive, logger: logger)
        }
        var forgeService: (any Service)?
        var forgeDesk: ForgeDesk?
        if let listen = options.forgeListen {
            let (host, port) = try ListenAddress.parse(listen, what: "--forge-listen")
            let forge = try Forge(hiveRoot: layout.root, baseURL: "http://\(host):\(port)/forge", logger: logger)
            try forge.seed()
            forgeDesk = ForgeDesk(forge: forge, layout: layout, owner: { [bwrap] name in (try? bwrap?.uid(name)) ?? nil }, logger: logger)
            forgeService = ForgeServer.application(forge, host: host, port: port, limits: options.forgeLimits, logger: logger)
        }
        let processes = options.cage == .none ? nil
            : AgentProcesses(layout: layout, broker: broker, board: sockets.board, logger: logger, hive: options.hiveExecutable,
                             environment: CageEnvironment.filter(ProcessInfo.processInfo.environment).merging(options.agentEnvironment) { $1 }
                                .merging(HarnessRetention.environment(events: options.eventsRetentionSeconds, stats: options.statsRetentionSeconds,
                                                                      interval: options.sweepInterval)) { $1 },
                             cage: bwrap, configs: configs, forge: forgeDesk, ledger: ledger,
                             gateway: .init(pins: options.egressPins, internalExceptions: options.egressInternal))
        if let gateways = processes?.gateways { ledger.meteredByGateway { gateways.isOpen($0) } }
        // The manager's uid only where it runs: asked on another node, that node would give it a uid of its own range.
        let repos = ConfigRepos(layout: layout, managerUID: { [bwrap, broker] in broker.mayRun(.manager) ? (try? bwrap?.uid(.manager)) ?? nil : nil })
        // On a node of a hive on many hosts, the agents placed here (every agent, on one host).
        let live = try broker.agents().filter { $0.record.destroyedAt == nil }.map { try AgentName($0.record.name) }.filter(broker.mayRun)
        configs.load(live, from: repos)
        let lifecycle = Lifecycle(layout: layout, broker: broker, sockets: sockets, processes: processes, configs: configs,
                                  repos: repos, forge: forgeDesk, logger: logger)
        let nodeConfigs = serving.map { NodeConfigs(store: broker, configs: configs, repos: repos, identity: $0.identity, logger: logger) }
        if let nodeConfigs, !nodeConfigs.holdsGit { nodeConfigs.loadKept(live) }
        let approvals = ApprovalDesk(broker: broker, repos: repos, configs: configs, lifecycle: lifecycle, nodeConfigs: nodeConfigs, logger: logger)
        for name in live {
            // One agent's damaged tree must not keep the hive down: its cage says why when it is prepared.
            do { try AgentDirectories.create(name, in: layout) } catch { logger.error("the directories of \(name): \(error)") }
            try sockets.open(name, manager: name == .manager ? ManagerDesk(approvals: approvals) : nil)
            forgeDesk?.ensureToken(name)
        }
        // Approvals are carried out on the manager's node (one host: this one); another node's boot leaves them be.
        for failed in broker.mayRun(.manager) ? try broker.failInterruptedApprovals() : [] {
            lifecycle.notify(.approvalResolved, about: .manager, "approval \(failed.id) (\(failed.kind) for \(failed.agent)) failed: \(failed.note ?? "interrupted")")
        }
        var moves: AgentMoves?
        var nodeService: (any Service)?
        if let serving {
            let agentMoves = AgentMoves(store: broker, lifecycle: lifecycle, identity: serving.identity, configs: nodeConfigs!, packer: { [bwrap, broker] name in
                guard let bwrap, let uid = try bwrap.uid(name) else { return nil }
                // The manager's group reads what the manager wrote in a state dir, where the manager runs.
                let manager = name != .manager && broker.mayRun(.manager) ? try bwrap.uid(.manager) : nil
                return AgentArchive.Runner(uid: uid, groups: manager.map { [gid_t($0)] } ?? [])
            }, arrivalUID: { [bwrap] in try bwrap?.reserveUID() }, logger: logger)
            moves = agentMoves
            nodeService = try NodeEndpoint.application(moves: agentMoves, identity: serving.identity, host: serving.host, port: serving.port, logger: logger)
        }
        let adminEndpoint = AdminEndpoint(layout: layout, broker: broker, sockets: sockets, processes: processes, cage: options.cage,
                                          approvals: approvals, forge: forgeDesk, moves: moves, logger: logger)
        let admin = LineServer(path: layout.adminSocket, mode: 0o660, logger: logger, handler: adminEndpoint.handle)
        let feed = DashboardFeed(broker: broker, agents: { try adminEndpoint.list() })
        CoreMetrics.preregister()
        _ = try CoreMetrics.token(layout) // made now, so the operator can hand it to Prometheus before the first scrape
        broker.observeSends { CoreMetrics.sent($0.count) }
        var metricsService: (any Service)?
        if let listen = options.metricsListen {
            let (host, port) = try ListenAddress.parse(listen, what: "--metrics-listen")
            metricsService = MetricsServer.application(adminEndpoint.metrics, token: try CoreMetrics.token(layout), host: host, port: port, logger: logger)
        }
        let web = LineServer(path: layout.webSocket, mode: 0o660, logger: logger,
                             handler: WebEndpoint(admin: adminEndpoint, feed: feed).handle)
        // Bound now so a bad path fails the start; answering waits until the signals are trapped (see
        // `run`), so whoever sees the admin socket answer can stop the core gracefully.
        try admin.listen()
        try web.listen()
        if getuid() == 0, let gid = options.webGroup { _ = chown(layout.webSocket.path, 0, gid) }
        let disk = DiskWatch(layout: layout, broker: broker, policy: options.disk, board: sockets.board, configs: configs, processes: processes,
                             owner: { [broker, bwrap] uid in
                                 guard bwrap != nil, getuid() == 0, let name = try? broker.agent(withUID: Int(uid)) else { return nil }
                                 return try? AgentName(name)
                             },
                             notify: { [lifecycle] name, text in lifecycle.notify(.diskQuota, about: name, text) }, logger: logger)
        let heartbeat = broker.nodeName == nil ? nil
            : NodeHeartbeat(store: broker, sockets: sockets, processes: processes, lifecycle: lifecycle, interval: options.heartbeatInterval,
                            lease: options.lease, serving: serving, logger: logger)
        started = true
        return CoreDaemon(options: options, broker: broker, sqlite: sqlite, heartbeat: heartbeat, logger: logger, locks: [rootLock, runLock], sockets: sockets,
                          processes: processes, lifecycle: lifecycle, admin: admin, forge: forgeService, web: web, feed: feed, disk: disk,
                          metrics: metricsService, nodeEndpoint: nodeService)
    }

    /// Opens the SQLite file, or (`--database`) the shared PostgreSQL store as this node: its first
    /// heartbeat goes out before anything starts, so its leases on its agents are current at boot.
    private static func openStore(_ options: CoreOptions, serving: NodeServing?, logger: Logger) throws -> (any HiveStore, Broker?) {
        guard let url = options.database else {
            let broker = try Broker(path: options.layout.brokerDatabase.path, synchronous: options.synchronous)
            return (broker, broker)
        }
        guard let node = options.node else { throw CoreError("--database needs --node NAME: this host's name in the hive (e.g. its hostname)") }
        let store: PostgresBroker
        do { store = try PostgresBroker.open(url, node: node, logger: logger) } catch {
            throw CoreError("cannot open the hive's database \(url): \(error)")
        }
        do { try store.startNode(lease: options.lease) } catch {
            store.shutdown()
            throw CoreError("cannot run as node \(node): \(error)")
        }
        do { try store.heartbeat(NodeHeartbeat.beat(states: [], serving: serving)) } catch {
            store.shutdown()
            throw CoreError("node \(node) could not send its first heartbeat: \(error)")
        }
        logger.info("node \(node) of the hive in \(url)")
        return (store, nil)
    }

    private let heartbeat: NodeHeartbeat?
    private let nodeEndpoint: (any Service)?

    private init(options: CoreOptions, broker: any HiveStore, sqlite: Broker?, heartbeat: NodeHeartbeat?, logger: Logger, locks: [ExclusiveLock], sockets: AgentSockets,
                 processes: AgentProcesses?, lifecycle: Lifecycle, admin: LineServer, forge: (any Service)?, web: LineServer, feed: DashboardFeed, disk: DiskWatch,
                 metrics: (any Service)?, nodeEndpoint: (any Service)?) {
        self.metrics = metrics
        self.nodeEndpoint = nodeEndpoint
        self.disk = disk
        self.lifecycle = lifecycle
        self.web = web
        self.feed = feed
        self.forge = forge
        self.options = options
        self.broker = broker
        self.sqlite = sqlite
        self.heartbeat = heartbeat
        self.logger = logger
        self.locks = locks
        self.sockets = sockets
        self.processes = processes
        self.admin = admin
    }

    /// Serves until SIGTERM or SIGINT, then stops every service gracefully. `onReady` runs once the
    /// signals are trapped, so a Ctrl-C right after it is a graceful stop, never an abrupt one.
    public func run(onReady: @escaping @Sendable () -> Void = {}) async throws {
        var services: [any Service] = []
        // Children stop before the sockets they talk to (services stop in reverse order).
        services.append(sockets)
        services.append(sockets.reminders.scheduler)
        if let processes { services.append(processes) }
        if let forge { services.append(forge) }
        if let metrics { services.append(metrics) }
        if let heartbeat { services.append(heartbeat) }
        if let nodeEndpoint { services.append(nodeEndpoint) }
        if let sqlite { services.append(WALCheckpointer(broker: sqlite, interval: .milliseconds(500), logger: logger)) }
        let group = ServiceGroup(
            services: services + [
                AdminSocket(server: admin),
                AdminSocket(server: web),
                DashboardPoller(feed: feed),
                disk,
                QuestionExpirer(broker: broker, logger: logger),
                RetentionSweeper(broker: broker, window: options.retentionSeconds, interval: options.sweepInterval, logger: logger),
                InflightWatchdog(broker: broker, sockets: sockets, logger: logger, grace: options.inflightGrace,
                                 interval: min(.seconds(10), options.inflightGrace / 3)),
                ReadyNotice(onReady: { [admin, web, lifecycle] in
                    admin.startAccepting()
                    web.startAccepting()
                    // The manager first, ready before the others (it may wait for the manager's harness).
                    Thread { lifecycle.bootAll() }.start()
                    onReady()
                }),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        logger.info("hive core ready: admin socket \(options.layout.adminSocket.path), cage \(options.cage.rawValue), store \(broker.durability)")
        try await group.run()
        // The node's session goes now: its duties pass to another node at once, not when the process ends.
        (broker as? PostgresBroker)?.shutdown()
        logger.info("hive core stopped")
    }
}

/// Runs `onReady` once the service group is up (signals trapped), then idles until shutdown.
struct ReadyNotice: Service {
    let onReady: @Sendable () -> Void
    func run() async throws {
        onReady()
        try? await gracefulShutdown()
    }
}

/// The admin socket as a service: serves until graceful shutdown.
struct AdminSocket: Service {
    let server: LineServer
    func run() async throws {
        try? await gracefulShutdown()
        await onThread { server.stop() }
    }
}

/// `--forge-listen HOST:PORT`; port 0 takes a free port now, so agents can be told the address before
/// the server is up.
enum ListenAddress {
    static func parse(_ raw: String, what option: String) throws -> (String, Int) {
        guard let colon = raw.lastIndex(of: ":"), let port = Int(raw[raw.index(after: colon)...]), (0...65535).contains(port) else {
            throw CoreError("\(option) wants HOST:PORT, e.g. 127.0.0.1:7001 (or 'off'), not '\(raw)'")
        }
        let host = String(raw[..<colon])
        // A taken port is an error at start, named, rather than a server that silently never serves.
        guard let bound = TCPPort.bindable(host, port: port) else {
            throw CoreError("cannot listen on \(raw): the port is taken or the address is not local; use \(option) HOST:PORT (or off)")
        }
        return (host, bound)
    }
}
