import Foundation
import HiveBroker
import HiveGate
import HiveHost
import HiveWire
import Logging
import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Runs every live agent's harness, in a bubblewrap cage (``BwrapCage``) or, with `--cage process`, as a
/// plain child of core; what to do when one starts, exits or is stopped is ``CageMachine``'s to decide.
final class AgentProcesses: Service, Sendable {
    private let layout: HiveLayout
    private let broker: any HiveStore
    private let board: AgentStatusBoard
    private let logger: Logger
    /// The `hive` executable to run `agent` from.
    private let hive: String
    private let environment: [String: String]
    /// The bubblewrap cage each harness runs in, or nil for a plain child process.
    private let cage: BwrapCage?
    private let configs: ConfigStore
    private let forge: ForgeDesk?
    private let cgroups: CgroupLimits
    /// The host ends of gated cages' networks.
    let gateways: AgentGateways
    /// Cages are started from this one long-lived thread (see ``LauncherThread``).
    private let launcher = LauncherThread()

    private struct Child {
        var machine = CageMachine()
        var process: Process?
        /// The write end of the child's stdin: it closes when core dies, however it dies, and the harness
        /// (started with --supervised) takes that as its cue to stop. No orphans, no duplicate harnesses.
        var lifeline: FileHandle?
        /// What isolation and limits the running cage has, for `hive ls`.
        var isolation: String?
    }
    private struct State {
        var children: [AgentName: Child] = [:]
        var stopped = false
    }
    private let state = Mutex(State())

    init(layout: HiveLayout, broker: any HiveStore, board: AgentStatusBoard, logger: Logger, hive: String,
         environment: [String: String] = CageEnvironment.filter(ProcessInfo.processInfo.environment), cage: BwrapCage? = nil, configs: ConfigStore, forge: ForgeDesk? = nil,
         ledger: SpendLedger? = nil, gateway: AgentGateways.Settings = .init()) {
        var gateway = gateway
        // The model gateway forwards where claude itself would have gone: the hive's ANTHROPIC_BASE_URL, else the API.
        if let base = environment["ANTHROPIC_BASE_URL"], !base.isEmpty { gateway.upstream = base }
        self.gateways = AgentGateways(layout: layout, broker: broker, settings: gateway, forge: forge, ledger: ledger, logger: logger)
        self.cage = cage
        self.configs = configs
        self.forge = forge
        self.cgroups = CgroupLimits(root: layout.root)
        self.layout = layout
        self.broker = broker
        self.board = board
        self.logger = logger
        self.hive = hive
        self.environment = environment
    }

    /// Feeds `event` to the agent's machine (none of it once core is shutting down).
    private func handle(_ name: AgentName, _ event: CageMachine.Event) -> CageMachine.Action {
        state.withLock { s in s.stopped ? .none : s.children[name, default: Child()].machine.handle(event) }
    }

    /// Starts the agent's harness unless it runs or is being launched.
    func start(_ name: AgentName) {
        if case .launch(let generation) = handle(name, .start) { launch(name, generation) }
    }

    /// Stops the agent's harness (SIGTERM, then SIGKILL after `grace`). Blocks until it is gone.
    func stop(_ name: AgentName, grace: Duration = .seconds(10)) {
        let process = state.withLock { s -> Process? in
            _ = s.children[name]?.machine.handle(.stop)
            defer { s.children[name]?.process = nil }
            return s.children[name]?.process
        }
        if let process { Self.terminate(process, grace: grace) }
        gateways.close(name)
        cgroups.release(name)
        board.supervisor(name, state: nil)
    }

    /// The isolation and limits of the agent's running cage (nil when none runs).
    func isolation(_ name: AgentName) -> String? {
        state.withLock { s in s.children[name]?.process?.isRunning == true ? s.children[name]?.isolation : nil }
    }

    /// Relaunches after `delay`, unless something stopped the agent or started it meanwhile.
    private func relaunch(_ name: AgentName, after delay: Double, _ generation: CageMachine.Generation) {
        CoreMetrics.cageRestarted()
        DispatchQueue.global().asyncAfter(deadline: .now() + delay) { [weak self] in
            guard let self else { return }
            if case .launch(let next) = self.handle(name, .relaunchDue(generation)) { self.launch(name, next) }
        }
    }

    func run() async throws {
        try? await gracefulShutdown()
        let all = state.withLock { s -> [Process] in
            s.stopped = true
            for k in s.children.keys { _ = s.children[k]?.machine.handle(.stop) }
            return s.children.values.compactMap(\.process)
        }
        await withTaskGroup(of: Void.self) { group in
            for p in all { group.addTask { await onThread { Self.terminate(p, grace: .seconds(10)) } } }
        }
        await gateways.shutdown()
        let names = state.withLock { Array($0.children.keys) }
        await onThread { [cgroups] in for name in names { cgroups.release(name) } }
    }

    /// Prepares and starts the cage; its machine is `launching` and hears how it went.
    private func launch(_ name: AgentName, _ generation: CageMachine.Generation) {
        let p = Process()
        var env = environment
        if let forge { env.merge(forge.environment(for: name, caged: cage != nil)) { $1 } }
        let config = configs.current(name)
        // The one place a credential enters a cage: the stored one the config names (`default` unless it
        // names another), else whatever core's own environment carried.
        let credential = config.credential ?? "default"
        if let stored = StoredCredential.load(credential, in: layout) {
            stored.apply(to: &env)
        } else if config.credential != nil {
            // Never another identity than the one approved: no falling back to core's own credential.
            board.supervisor(name, state: .needsLogin, detail: "its config names the credential '\(credential)', which is not stored: hive login --name \(credential), then hive start \(name)")
            logger.error("\(name): the credential '\(credential)' its config names is not stored; not starting it")
            _ = handle(name, .prepareFailed(generation))
            return
        }
        var executable: String, arguments: [String], isolation: String
        do {
            let rendered = try configs.render(name, config)
            if let cage {
                var forwards: [GatedNetwork.Forward] = []
                if config.network == .gated {
                    // The credential stays here: the gateway adds it, the cage gets a placeholder of its kind.
                    let credential = StoredCredential.variables.lazy.compactMap { env[$0] }.first.flatMap { try? StoredCredential(secret: $0) }
                    // Root's, in the agent's group (its cage runs with that gid): the agent can connect, not chmod.
                    let owner = try cage.uid(name).map { (uid_t(0), gid_t($0)) }
                    try gateways.open(name, config: config, model: { [configs] in configs.model(of: name) }, credential: credential, owner: owner)
                    GatedNetwork.environment(&env, credential: credential?.kind ?? .apiKey)
                    forwards = GatedNetwork.forwards(inside: "/run/hive", forgePort: gateways.forgePort)
                } else {
                    gateways.close(name)
                }
                let command = try cage.prepare(name, config: config, rendered: rendered, environment: env, forwards: forwards)
                (executable, arguments, env) = command
                isolation = "bwrap, network \(config.network.rawValue)"
            } else {
                // No cage: the harness runs as core's own user anyway, with claude's login in that home.
                env["HOME"] = ProcessInfo.processInfo.environment["HOME"]
                executable = hive
                arguments = ["agent", "--name", name.rawValue,
                             "--socket", layout.agentSocket(name).path,
                             "--state-dir", layout.stateDir(name).path,
                             "--harness-dir", layout.harnessDir(name).path,
                             "--web-socket", layout.agentWebSocket(name).path, "--config", rendered.path, "--supervised"]
                isolation = config.network == .host ? "process (no isolation)" : "process (no isolation; network \(config.network.rawValue) NOT enforced)"
            }
        } catch {
            board.supervisor(name, state: .crashed, detail: "could not prepare the cage: \(error)")
            logger.error("could not prepare the cage of \(name): \(error)")
            _ = handle(name, .prepareFailed(generation))
            return
        }
        let limits = cgroups.prepare(name, limits: config.limits)
        (executable, arguments) = CgroupLimits.wrap(executable, arguments, joining: limits.procsFiles)
        isolation += "; " + limits.summary
        p.executableURL = URL(filePath: executable)
        p.arguments = arguments
        logger.debug("cage of \(name): \(executable) \(arguments.joined(separator: " "))")
        p.environment = env
        if let log = HarnessLog.openForAppend(HarnessLog.url(layout, name)) {
            p.standardOutput = log
            p.standardError = log
        }
        let lifeline = Pipe()
        _ = fcntl(lifeline.fileHandleForWriting.fileDescriptor, F_SETFD, FD_CLOEXEC)
        p.standardInput = lifeline
        p.terminationHandler = { [weak self] proc in self?.exited(name, proc) }
        do {
            try launcher.run { try p.run() }
            try? lifeline.fileHandleForReading.close()
            let wanted = state.withLock { s -> Bool in
                // stop() or shutdown may have run while this was starting: then it must not live on.
                guard !s.stopped, s.children[name]?.machine.handle(.launched(generation, now: Date().timeIntervalSince1970)) == CageMachine.Action.none
                else { return false }
                s.children[name]?.process = p
                s.children[name]?.lifeline = lifeline.fileHandleForWriting
                s.children[name]?.isolation = isolation
                return true
            }
            if !wanted {
                Self.terminate(p, grace: .seconds(2))
                return
            }
            // It may have ended before it was recorded (its termination handler found no match): see to it now.
            if !p.isRunning { exited(name, p) }
            board.supervisor(name, state: .starting) // until its harness connects and reports
            logger.info("started the harness of \(name) (pid \(p.processIdentifier))")
        } catch {
            logger.error("could not start the harness of \(name): \(error)")
            if case .relaunch(let delay, _, let next) = handle(name, .launchFailed(generation)) {
                board.supervisor(name, state: .crashed, detail: "could not start the harness: \(error); retrying in \(Int(delay)) s")
                relaunch(name, after: delay, next)
            }
        }
    }

    private func exited(_ name: AgentName, _ process: Process) {
        let status = process.terminationStatus
        let how = process.terminationReason == .uncaughtSignal ? "was killed by signal \(status)" : "exited with status \(status)"
        let plan = state.withLock { s -> (delay: Double, notify: Bool, generation: CageMachine.Generation)? in
            guard !s.stopped, s.children[name]?.process === process else { return nil }
            s.children[name]?.process = nil
            guard case .relaunch(let delay, let notice, let generation)? = s.children[name]?.machine.handle(.exited(now: Date().timeIntervalSince1970))
            else { return nil }
            return (delay, notice, generation)
        }
        guard let plan else { return }
        cgroups.release(name)
        let detail = "cage \(how); restarting in \(Int(plan.delay)) s (hive logs \(name))"
        board.supervisor(name, state: .crashed, detail: detail)
        logger.warning("the cage of \(name) \(how); restarting in \(plan.delay) s")
        if plan.notify {
            // The manager hears of every crash (the operator, of the manager's), with the log's last lines.
            let to: Recipient = name == .manager ? .operator : .agent(.manager)
            let tail = HarnessLog.tail(HarnessLog.url(layout, name), lines: 15).joined(separator: "\n")
            let body = SystemNotice.containerCrash.body("""
                the cage of \(name) \(how) unexpectedly; core restarts it in \(Int(plan.delay)) s. Last lines of its log:
                \(VisibleText.quote(tail, by: "the cage of \(name)"))
                """)
            _ = try? broker.send(from: .system, to: to, body: body, inReplyTo: nil)
        }
        relaunch(name, after: plan.delay, plan.generation)
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL; returns once the process is gone.
    static func terminate(_ p: Process, grace: Duration) {
        guard p.isRunning else { return }
        kill(stopTarget(p.processIdentifier), SIGTERM)
        let deadline = ContinuousClock.now + grace
        while p.isRunning && ContinuousClock.now < deadline { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilGone()
    }
}

extension AgentProcesses {
    /// The process to ask to stop. In a bubblewrap cage that is the harness inside, not bwrap: bwrap
    /// inherits core's SIGTERM disposition (ignored: ServiceLifecycle listens through a dispatch source),
    /// and were it to die, --die-with-parent would SIGKILL the harness instead of letting it finish.
    /// Follows single children through the launcher chain (sh, setpriv, bwrap); else `pid` itself.
    static func stopTarget(_ pid: pid_t) -> pid_t {
        func read(_ path: String) -> String {
            FileHandle(forReadingAtPath: path).map { String(decoding: $0.readDataToEndOfFile(), as: UTF8.self) } ?? ""
        }
        func comm(_ pid: pid_t) -> String { read("/proc/\(pid)/comm").trimmingCharacters(in: .whitespacesAndNewlines) }
        var current = pid
        for _ in 0..<4 {
            guard ["bwrap", "sh", "setpriv"].contains(comm(current)) else { break }
            let children = read("/proc/\(current)/task/\(current)/children").split(separator: " ").compactMap { pid_t($0) }
            // bwrap inside the namespace is its init: orphans the agent left (a fork bomb's sleepers) are
            // its children too, so the harness is told from them by its name.
            if children.count == 1 { current = children[0]; continue }
            guard let harness = children.first(where: { comm($0) == "hive" }) else { break }
            current = harness
        }
        return current
    }
}

