import Foundation
import HiveBroker
import HiveHost
import HiveWire
import Logging
import Synchronization

/// The lifecycle verbs: spawn and destroy an agent, start, stop, restart, rebuild and revive its cage.
/// Transient states (`spawning`, `starting`, `stopping`, `restarting`, `rebuilding`, `destroying`) show
/// in `list` while a verb runs and are always cleared, also when it fails.
struct Lifecycle: Sendable {
    let layout: HiveLayout
    let broker: any HiveStore
    let sockets: AgentSockets
    let processes: AgentProcesses?
    let configs: ConfigStore
    let repos: ConfigRepos
    let forge: ForgeDesk?
    let logger: Logger
    var board: AgentStatusBoard { sockets.board }
    /// Agents a verb of this node is spawning, destroying or reviving right now: reconciliation leaves them to it.
    let busy = NamesInFlight()
    /// How long a (re)started harness may take to connect before the start counts as failed.
    static let readyTimeout: Duration = .seconds(30)

    private func cages() throws -> AgentProcesses {
        guard let processes else {
            throw CoreError("this core runs no agents (--cage none): start and stop their `hive agent` processes yourself")
        }
        return processes
    }

    private func live(_ name: AgentName) throws {
        guard let record = try broker.agent(name) else { throw BrokerError.unknownAgent(name.rawValue) }
        guard record.destroyedAt == nil else { throw BrokerError.destroyedRecipient(name.rawValue) }
        try here(name)
    }

    /// In a hive on many hosts, a verb that touches an agent's cage or directories runs on its node; with
    /// `orNodeDown`, also anywhere while that node is down (a tombstone on a node gone for good can still go).
    private func here(_ name: AgentName, orNodeDown: Bool = false) throws {
        guard let node = broker.nodeName, let placed = try broker.placements()[name.rawValue], placed.node != node else { return }
        if orNodeDown, !placed.nodeUp { return }
        throw CoreError("\(name) runs on node \(placed.node), not on this one (\(node)): run this on \(placed.node)'s host")
    }

    /// The node a new agent goes to when the operator names none: the up node with the most room, counting
    /// a heavy agent as 2 GB (issue 15: one peaks near 1.5 CPU and 2 GB with its tools), then the lightest load.
    func placement(asked: String?) throws -> String? {
        guard let here = broker.nodeName else {
            if let asked { throw CoreError("this hive runs on one host: there is no node '\(asked)' (hive core --database … --node makes one)") }
            return nil
        }
        if let asked { return asked }
        let up = try broker.nodes().filter(\.up)
        // Room first; on a tie this node (no hop), then the lighter load per core.
        func rank(_ n: NodeView) -> (Int, Int, Double) { (n.memoryMegabytes / 2048 - n.agents, n.name == here ? 1 : 0, -n.load / Double(max(1, n.cores))) }
        return up.max { rank($0) < rank($1) }?.name ?? here
    }

    /// What shows once a verb that starts a cage returns: `starting` until the harness connects and
    /// reports (its report then wins), so `list` never calls a booting agent stopped.
    private var afterStart: AgentState? { processes == nil ? nil : .starting }

    /// Runs `body` with `transient` showing, and `after` (or nothing) once it ends, whatever happens,
    /// unless the body said something else meanwhile (a cage that could not be prepared says `crashed`
    /// and why, which must not turn back into `starting`).
    private func during<T>(_ name: AgentName, _ transient: AgentState, after: AgentState? = nil, _ body: () throws -> T) rethrows -> T {
        board.supervisor(name, state: transient)
        defer { board.supervisor(name, state: after, ifStill: transient) }
        return try body()
    }

    /// Tells the manager (or, about the manager itself, the operator) what happened.
    func notify(_ kind: SystemNotice, about name: AgentName, _ text: String) {
        let to: Recipient = name == .manager && (kind == .containerCrash || kind == .diskQuota) ? .operator : .agent(.manager)
        do { _ = try broker.send(from: .system, to: to, body: kind.body(text), inReplyTo: nil) } catch {
            logger.error("could not tell \(to) (\(kind.rawValue)) about \(name): \(error)")
        }
    }

    /// Registers an agent, makes its directories and socket, and starts its cage. With `waitReady`,
    /// returns only once its harness connected (and throws, leaving the agent registered, when it did not).
    func spawn(_ name: AgentName, node asked: String? = nil, waitReady: Bool = false) throws -> SpawnCommand.Reply {
        if let node = try placement(asked: asked), node != broker.nodeName {
            // Another node's: it sees the placement at its next heartbeat and brings the agent up itself.
            _ = try broker.register(name, on: node)
            logger.info("placed the new agent \(name) on node \(node)")
            notify(.spawned, about: name, "\(name) was created on node \(node).")
            return SpawnCommand.Reply(name: name.rawValue, socket: "", node: node)
        }
        try busy.during(name) { try spawnHere(name, waitReady: waitReady) }
        logger.info("spawned agent \(name)")
        notify(.spawned, about: name, "\(name) was created\(processes == nil ? "" : " and its cage started").")
        return SpawnCommand.Reply(name: name.rawValue, socket: layout.agentSocket(name).path, node: broker.nodeName)
    }

    private func spawnHere(_ name: AgentName, waitReady: Bool) throws {
        _ = try broker.register(name)
        try during(name, .spawning, after: afterStart) {
            do {
                try AgentDirectories.create(name, in: layout)
                try sockets.open(name)
                forge?.ensureToken(name)
            } catch {
                // Leave nothing half-made behind: the name stays free to try again.
                try? broker.destroy(name, purge: true)
                sockets.close(name)
                throw error
            }
            let before = sockets.connectionsOpened(name)
            processes?.start(name)
            if waitReady, processes != nil, !sockets.waitForConnection(name, after: before, timeout: Self.readyTimeout) {
                throw CoreError("\(name) was created but its harness did not connect within \(Self.readyTimeout); see hive logs \(name)")
            }
        }
    }

    /// A node's reconciliation after each heartbeat: agents newly placed here (spawned for it on another
    /// node) come up; agents it serves that are no longer placed here (destroyed, purged) stop and lose
    /// their socket. The manager's socket opens at boot only, on its own node.
    func reconcile() {
        let inFlight = busy.names.withLock { $0 }
        let placed = Set(broker.agentsHere()).subtracting(inFlight)
        let served = Set(sockets.served()).subtracting(inFlight)
        for name in placed.subtracting(served) where name != .manager {
            do {
                // Looked at again now: the heartbeat's list may be a moment old (destroyed or moved since).
                guard try broker.agent(name)?.destroyedAt == nil, try broker.placements()[name.rawValue]?.node == broker.nodeName else { continue }
                // A move of it this node began and did not see through (the database was away when it tried to
                // call it off): called off now, unless it arrived, and then it is not this node's to run.
                if let move = try broker.moveUnderWay(name) {
                    guard try busy.during(name, { try broker.callOffMove(name, to: move.to) }) else { continue }
                    logger.notice("called off the unfinished move of \(name) to node \(move.to): it runs here")
                }
                try bringUp(name)
                logger.info("\(name) is placed on this node: started it")
            } catch {
                logger.error("could not bring up \(name), placed on this node: \(error)")
            }
        }
        for name in served.subtracting(placed) where name != .manager {
            processes?.stop(name)
            sockets.close(name)
            forget(name)
            logger.info("\(name) is no longer placed on this node (destroyed or moved): stopped it")
        }
    }

    /// An agent placed on this node comes up: its directories, its socket, its forge token, and its cage
    /// unless the operator stopped it.
    func bringUp(_ name: AgentName) throws {
        try AgentDirectories.create(name, in: layout)
        try sockets.open(name)
        forge?.ensureToken(name)
        if (try? broker.isStopped(name)) != true { during(name, .starting, after: afterStart) { processes?.start(name) } }
    }

    /// An agent this node no longer runs (its cage stopped, its socket closed): what this node kept about it goes.
    func forget(_ name: AgentName) {
        forge?.revoke(name)
        board.forget(name)
    }

    /// Stops the cage, closes the socket and leaves a tombstone; `purge` also deletes the agent's
    /// directories, inbox and reminders.
    func destroy(_ name: AgentName, purge: Bool) throws {
        guard name != .manager else { throw BrokerError.managerIsPermanent }
        try here(name, orNodeDown: true) // its directories are on its node, unless that node is gone
        try busy.during(name) { try destroyHere(name, purge: purge) }
        sockets.board.forget(name)
        logger.info("destroyed agent \(name)\(purge ? " (purged)" : "")")
    }

    private func destroyHere(_ name: AgentName, purge: Bool) throws {
        try during(name, .destroying) {
            try broker.destroy(name, purge: purge)
            forge?.revoke(name)
            processes?.stop(name)
            sockets.close(name)
            if purge {
                try AgentDirectories.remove(name, in: layout)
                try? FileManager.default.removeItem(at: layout.renderedConfig(name))
                try? FileManager.default.removeItem(at: layout.modelOverride(name))
                try? FileManager.default.removeItem(at: layout.cageLog(name))
                repos.removeApplied(name)
                configs.set(name, nil)
            }
        }
    }

    // start, stop and restart hold the agent's name, as spawn, destroy, revive and hive move do: a move
    // never packs a cage one of them started meanwhile.
    func start(_ name: AgentName) throws -> StartCommand.Reply {
        try live(name) // first: an agent of another node is refused with its node named
        let cages = try cages()
        return try busy.during(name) {
            try broker.setStopped(name, false)
            during(name, .starting, after: afterStart) { cages.start(name) }
            return .init(name: name.rawValue, state: .starting)
        }
    }

    func stop(_ name: AgentName) throws -> StartCommand.Reply {
        try live(name) // first: an agent of another node is refused with its node named
        let cages = try cages()
        try busy.during(name) {
            try broker.setStopped(name, true)
            during(name, .stopping, after: .stopped) { cages.stop(name) }
        }
        logger.info("stopped the cage of \(name)")
        return .init(name: name.rawValue, state: .stopped)
    }

    /// Stops and starts one agent's cage; a planned restart tells nobody it crashed. With `waitReady`,
    /// throws when the new harness does not connect in time.
    func restart(_ name: AgentName, transient: AgentState = .restarting, waitReady: Bool = false) throws {
        try live(name) // first: an agent of another node is refused with its node named
        let cages = try cages()
        try busy.during(name) {
            try broker.setStopped(name, false)
            try during(name, transient, after: afterStart) {
                cages.stop(name)
                let before = sockets.connectionsOpened(name)
                cages.start(name)
                if waitReady, !sockets.waitForConnection(name, after: before, timeout: Self.readyTimeout) {
                    throw CoreError("the harness of \(name) did not connect within \(Self.readyTimeout) after the restart; see hive logs \(name)")
                }
            }
        }
    }

    /// Re-renders the cage from the applied config and restarts it (idempotent).
    func rebuild(_ name: AgentName, waitReady: Bool = false) throws {
        try restart(name, transient: .rebuilding, waitReady: waitReady)
        logger.info("rebuilt the cage of \(name)")
    }

    /// Restarts (or rebuilds) every live agent the operator has not stopped. See ``together(_:why:_:)``.
    func restartAll(rebuild: Bool = false) throws -> [String] {
        let why = rebuild ? "planned rebuild of every agent (hive rebuild --all)" : "planned restart of every agent (hive restart --all)"
        return try together(try liveAgents(), why: why) { name in
            try restart(name, transient: rebuild ? .rebuilding : .restarting)
        }
    }

    /// Core boot: every live agent not stopped by the operator starts, the manager first.
    func bootAll() {
        do {
            _ = try together(try liveAgents(), why: "the hive core started") { processes?.start($0) }
        } catch {
            logger.error("could not start every agent at boot: \(error)")
        }
    }

    private func liveAgents() throws -> [AgentName] {
        // On a node of a hive on many hosts, only the agents placed here (and while its leases are current).
        try broker.agents().filter { $0.record.destroyedAt == nil }.compactMap { try? AgentName($0.record.name) }
            .filter { name in
                guard broker.mayRun(name), !busy.contains(name) else { return false }
                if (try? broker.isStopped(name)) == true { board.supervisor(name, state: .stopped); return false }
                return true
            }
    }

    /// Restart coordination: when several agents (re)start together the manager goes first and is ready
    /// (its harness connected) before any other starts; then it gets one message saying what follows and
    /// why, so it can steady the others instead of chasing their silence. Planned stops send no crash notices.
    private func together(_ agents: [AgentName], why: String, _ act: (AgentName) throws -> Void) throws -> [String] {
        let order = (agents.contains(.manager) ? [AgentName.manager] : []) + agents.filter { $0 != .manager }
        guard let first = order.first else { return [] }
        let before = sockets.connectionsOpened(first)
        try act(first)
        if first == .manager, processes != nil, !sockets.waitForConnection(.manager, after: before, timeout: Self.readyTimeout) {
            logger.warning("the manager did not connect within \(Self.readyTimeout); starting the others anyway")
        }
        let others = order.dropFirst().map(\.rawValue)
        if first == .manager, !others.isEmpty {
            notify(.restarting, about: .manager, """
                \(why): you are up first; now starting \(others.joined(separator: ", ")). \
                Their harnesses are away for a few seconds; nothing is lost.
                """)
        }
        for name in order.dropFirst() { try act(name) }
        return order.map(\.rawValue)
    }

    /// A tombstone comes back: its directories, socket and cage.
    func revive(_ name: AgentName) throws -> StartCommand.Reply {
        try here(name) // its state is on its node
        return try busy.during(name) { try reviveHere(name) }
    }

    private func reviveHere(_ name: AgentName) throws -> StartCommand.Reply {
        try broker.revive(name)
        try AgentDirectories.create(name, in: layout)
        try sockets.open(name)
        forge?.ensureToken(name)
        processes?.start(name)
        logger.info("revived agent \(name)")
        return .init(name: name.rawValue, state: processes == nil ? .stopped : .starting)
    }
}

/// Names a verb is working on, shared by every copy of the lifecycle: one verb at a time per agent.
final class NamesInFlight: Sendable {
    let names = Mutex<Set<AgentName>>([])

    /// Runs `body` holding `name`; refused while another verb holds it.
    func during<T>(_ name: AgentName, _ body: () throws -> T) throws -> T {
        guard names.withLock({ $0.insert(name).inserted }) else { throw Self.busy(name) }
        defer { names.withLock { _ = $0.remove(name) } }
        return try body()
    }

    func contains(_ name: AgentName) -> Bool { names.withLock { $0.contains(name) } }

    static func busy(_ name: AgentName) -> CoreError {
        CoreError("another verb is at work on \(name) right now (a move, a start, stop or restart, a spawn, destroy or revive); try again once it is done")
    }
}
