import Foundation
import HiveBroker
import HiveWire
import Logging
import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The `process` cage: one `hive agent` child per live agent, restarted with backoff when it exits
/// unexpectedly. No isolation (that is the bubblewrap cage's job); this is the supervision.
final class AgentProcesses: Service, Sendable {
    private let layout: HiveLayout
    private let broker: Broker
    private let board: AgentStatusBoard
    private let logger: Logger
    /// The `hive` executable to run `agent` from.
    private let hive: String
    private let environment: [String: String]
    /// The bubblewrap cage each harness runs in, or nil for a plain child process.
    private let cage: BwrapCage?

    private struct Child {
        var process: Process?
        /// The write end of the child's stdin: it closes when core dies, however it dies, and the harness
        /// (started with --supervised) takes that as its cue to stop. No orphans, no duplicate harnesses.
        var lifeline: FileHandle?
        var restarts = 0
        var startedAt = Date()
        var stopping = false
        var lastNotice: Date?
    }
    private struct State {
        var children: [AgentName: Child] = [:]
        var stopped = false
    }
    private let state = Mutex(State())

    init(layout: HiveLayout, broker: Broker, board: AgentStatusBoard, logger: Logger, hive: String,
         environment: [String: String] = ProcessInfo.processInfo.environment, cage: BwrapCage? = nil) {
        self.cage = cage
        self.layout = layout
        self.broker = broker
        self.board = board
        self.logger = logger
        self.hive = hive
        self.environment = environment
    }

    /// Starts (or restarts) the agent's harness.
    func start(_ name: AgentName) {
        let proceed = state.withLock { s -> Bool in
            guard !s.stopped else { return false }
            if s.children[name]?.process?.isRunning == true { return false }
            s.children[name, default: Child()].stopping = false
            return true
        }
        if proceed { launch(name) }
    }

    /// Stops the agent's harness (SIGTERM, then SIGKILL after `grace`) and forgets it. Blocks until it is gone.
    func stop(_ name: AgentName, grace: Duration = .seconds(10)) {
        let process = state.withLock { s -> Process? in
            s.children[name]?.stopping = true
            return s.children.removeValue(forKey: name)?.process
        }
        if let process { Self.terminate(process, grace: grace) }
        board.supervisor(name, state: nil)
    }

    func run() async throws {
        try? await gracefulShutdown()
        let all = state.withLock { s -> [Process] in
            s.stopped = true
            for k in s.children.keys { s.children[k]?.stopping = true }
            return s.children.values.compactMap(\.process)
        }
        await withTaskGroup(of: Void.self) { group in
            for p in all { group.addTask { await onThread { Self.terminate(p, grace: .seconds(10)) } } }
        }
    }

    private func launch(_ name: AgentName) {
        let p = Process()
        var env = environment
        env["CLAUDECODE"] = nil
        if let cage {
            do {
                let command = try cage.command(for: name, environment: env)
                p.executableURL = URL(filePath: command.executable)
                p.arguments = command.arguments
                env = command.environment
                logger.debug("cage of \(name): \(command.executable) \(command.arguments.joined(separator: " "))")
            } catch {
                board.supervisor(name, state: "crashed", detail: "could not prepare the cage: \(error)")
                logger.error("could not prepare the cage of \(name): \(error)")
                return
            }
        } else {
            p.executableURL = URL(filePath: hive)
            p.arguments = ["agent", "--name", name.rawValue,
                           "--socket", layout.agentSocket(name).path,
                           "--state-dir", layout.stateDir(name).path,
                           "--harness-dir", layout.harnessDir(name).path,
                           "--web-socket", layout.agentWebSocket(name).path, "--supervised"]
        }
        p.environment = env
        let logURL = layout.harnessDir(name).appending(path: "harness.log")
        try? FileManager.default.createDirectory(at: layout.harnessDir(name), withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: logURL.path) { _ = FileManager.default.createFile(atPath: logURL.path, contents: nil) }
        if let log = try? FileHandle(forWritingTo: logURL) {
            log.seekToEndOfFile()
            p.standardOutput = log
            p.standardError = log
        }
        let lifeline = Pipe()
        _ = fcntl(lifeline.fileHandleForWriting.fileDescriptor, F_SETFD, FD_CLOEXEC)
        p.standardInput = lifeline
        p.terminationHandler = { [weak self] proc in self?.exited(name, proc) }
        do {
            try p.run()
            try? lifeline.fileHandleForReading.close()
            let wanted = state.withLock { s -> Bool in
                // stop() or shutdown may have run while this was starting: then it must not live on.
                guard !s.stopped, let child = s.children[name], !child.stopping else { return false }
                s.children[name]?.process = p
                s.children[name]?.lifeline = lifeline.fileHandleForWriting
                s.children[name]?.startedAt = Date()
                return true
            }
            if !wanted {
                Self.terminate(p, grace: .seconds(2))
                return
            }
            board.supervisor(name, state: nil)
            logger.info("started the harness of \(name) (pid \(p.processIdentifier))")
        } catch {
            board.supervisor(name, state: "crashed", detail: "could not start the harness: \(error); retrying in 30 s")
            logger.error("could not start the harness of \(name): \(error)")
            DispatchQueue.global().asyncAfter(deadline: .now() + 30) { [weak self] in
                guard let self else { return }
                let go = self.state.withLock { s in !s.stopped && s.children[name]?.stopping == false && s.children[name]?.process == nil }
                if go { self.launch(name) }
            }
        }
    }

    private func exited(_ name: AgentName, _ process: Process) {
        let status = process.terminationStatus
        let how = process.terminationReason == .uncaughtSignal ? "was killed by signal \(status)" : "exited with status \(status)"
        let plan = state.withLock { s -> (delay: Double, notify: Bool)? in
            guard var child = s.children[name], child.process === process, !child.stopping, !s.stopped else { return nil }
            // A harness that ran for a while earns a fresh backoff.
            if Date().timeIntervalSince(child.startedAt) > 120 { child.restarts = 0 }
            child.restarts += 1
            let delay = min(60, pow(2, Double(child.restarts - 1)))
            let notify = child.lastNotice.map { Date().timeIntervalSince($0) > 600 } ?? true
            if notify { child.lastNotice = Date() }
            child.process = nil
            s.children[name] = child
            return (delay, notify)
        }
        guard let plan else { return }
        let detail = "harness \(how); restarting in \(Int(plan.delay)) s (see \(layout.harnessDir(name).path)/harness.log)"
        board.supervisor(name, state: "restarting", detail: detail)
        logger.warning("the harness of \(name) \(how); restarting in \(plan.delay) s")
        if plan.notify {
            let to: Recipient = name == .manager ? .operator : .agent(.manager)
            _ = try? broker.send(from: .system, to: to, body: "The harness of \(name) \(how) unexpectedly; core restarts it in \(Int(plan.delay)) s.", inReplyTo: nil)
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + plan.delay) { [weak self] in
            guard let self else { return }
            let go = self.state.withLock { s in !s.stopped && s.children[name]?.stopping == false && s.children[name]?.process == nil }
            if go { self.launch(name) }
        }
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL; returns once the process is gone.
    static func terminate(_ p: Process, grace: Duration) {
        guard p.isRunning else { return }
        kill(p.processIdentifier, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while p.isRunning && ContinuousClock.now < deadline { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
    }
}
