import Foundation
import HiveBroker
import HiveWire
import Logging

/// The operator's lifecycle verbs: spawn and destroy an agent, start, stop, restart and revive its harness. Transient states (`starting`, `stopping`,
/// `restarting`) show in `list` while a verb runs and are always cleared, also when it fails.
struct Lifecycle: Sendable {
    let layout: HiveLayout
    let broker: Broker
    let sockets: AgentSockets
    let processes: AgentProcesses?
    let logger: Logger
    var board: AgentStatusBoard { sockets.board }

    private func cages() throws -> AgentProcesses {
        guard let processes else {
            throw CoreError("this core runs no agents (--cage none): start and stop their `hive agent` processes yourself")
        }
        return processes
    }

    private func live(_ name: AgentName) throws {
        guard let record = try broker.agent(name) else { throw BrokerError.unknownAgent(name.rawValue) }
        guard record.destroyedAt == nil else { throw BrokerError.destroyedRecipient(name.rawValue) }
    }

    /// Runs `body` with `transient` showing, and `after` (or nothing) once it ends, whatever happens.
    private func during<T>(_ name: AgentName, _ transient: String, after: String? = nil, _ body: () throws -> T) rethrows -> T {
        board.supervisor(name, state: transient)
        defer { board.supervisor(name, state: after) }
        return try body()
    }

    /// Registers an agent, makes its directories and socket, and starts its harness (in a cage).
    func spawn(_ name: AgentName) throws -> SpawnCommand.Reply {
        _ = try broker.register(name)
        do {
            try AgentDirectories.create(name, in: layout)
            try sockets.open(name)
        } catch {
            // Leave nothing half-made behind: the name stays free to try again.
            try? broker.destroy(name, purge: true)
            sockets.close(name)
            throw error
        }
        processes?.start(name)
        logger.info("spawned agent \(name)")
        return SpawnCommand.Reply(name: name.rawValue, socket: layout.agentSocket(name).path)
    }

    /// Stops the harness, closes the socket and leaves a tombstone; `purge` also deletes the agent's
    /// directories, inbox and reminders.
    func destroy(_ name: AgentName, purge: Bool) throws {
        try broker.destroy(name, purge: purge)
        processes?.stop(name)
        sockets.close(name)
        sockets.board.forget(name)
        if purge { try AgentDirectories.remove(name, in: layout) }
        logger.info("destroyed agent \(name)\(purge ? " (purged)" : "")")
    }

    func start(_ name: AgentName) throws -> StartCommand.Reply {
        let cages = try cages()
        try live(name)
        try broker.setStopped(name, false)
        during(name, "starting") { cages.start(name) }
        return .init(name: name.rawValue, state: "starting")
    }

    func stop(_ name: AgentName) throws -> StartCommand.Reply {
        let cages = try cages()
        try live(name)
        try broker.setStopped(name, true)
        during(name, "stopping", after: "stopped") { cages.stop(name) }
        logger.info("stopped the harness of \(name)")
        return .init(name: name.rawValue, state: "stopped")
    }

    /// Stops and starts one agent's harness; a planned restart tells nobody it crashed.
    func restart(_ name: AgentName) throws {
        let cages = try cages()
        try live(name)
        try broker.setStopped(name, false)
        during(name, "restarting") {
            cages.stop(name)
            cages.start(name)
        }
    }

    /// Restarts every live agent: the manager first, and once it is back, told who else is restarting,
    /// so it can steady the others instead of chasing their silence.
    func restartAll() throws -> [String] {
        let everyone = try broker.agents().filter { $0.record.destroyedAt == nil }.compactMap { try? AgentName($0.record.name) }
        var order: [AgentName] = everyone.contains(.manager) ? [.manager] : []
        order += everyone.filter { $0 != .manager && !((try? broker.isStopped($0)) ?? false) }
        guard let first = order.first else { return [] }
        try restart(first)
        if first == .manager {
            let deadline = ContinuousClock.now + .seconds(30)
            while sockets.connectionCount(.manager) == 0 && ContinuousClock.now < deadline { usleep(50_000) }
            let others = order.dropFirst().map(\.rawValue)
            if !others.isEmpty {
                _ = try? broker.send(from: .system, to: .agent(.manager), body: """
                    Planned restart of every agent: you are back first; now restarting \(others.joined(separator: ", ")). \
                    Their harnesses will be gone for a few seconds; nothing is lost.
                    """, inReplyTo: nil)
            }
        }
        for name in order.dropFirst() { try restart(name) }
        return order.map(\.rawValue)
    }

    /// A tombstone comes back: its directories, socket and harness.
    func revive(_ name: AgentName) throws -> StartCommand.Reply {
        try broker.revive(name)
        try AgentDirectories.create(name, in: layout)
        try sockets.open(name)
        processes?.start(name)
        logger.info("revived agent \(name)")
        return .init(name: name.rawValue, state: processes == nil ? "stopped" : "starting")
    }
}
