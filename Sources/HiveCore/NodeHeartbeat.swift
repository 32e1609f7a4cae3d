import Foundation
import HiveBroker
import HiveWire
import Logging
import ServiceLifecycle

/// A node's heartbeat, for a hive on many hosts (docs/multi-host.md): every `interval` it tells the
/// database it is alive, with its load and the states of its agents (so every node can list every agent),
/// and renews its leases on them.
///
/// Fencing: a node that cannot reach the database for longer than its `lease` stops its cages. The
/// database may by then let another node run them (`hive move`), and a harness whose node cannot reach its
/// inbox does nothing useful anyway. When a heartbeat gets through again, the agents start again.
final class NodeHeartbeat: Service, Sendable {
    let store: any HiveStore
    let sockets: AgentSockets
    let processes: AgentProcesses?
    let lifecycle: Lifecycle
    let interval: Duration
    let lease: Duration
    let logger: Logger

    init(store: any HiveStore, sockets: AgentSockets, processes: AgentProcesses?, lifecycle: Lifecycle, interval: Duration, lease: Duration, logger: Logger) {
        self.store = store; self.sockets = sockets; self.processes = processes; self.lifecycle = lifecycle
        self.interval = interval; self.lease = lease; self.logger = logger
    }

    /// What this host says of itself in a heartbeat.
    static func beat(states: [(agent: String, state: AgentState, detail: String?, since: Double?)]) -> NodeBeat {
        var load = [0.0, 0, 0]
        _ = getloadavg(&load, 3)
        return NodeBeat(host: ProcessInfo.processInfo.hostName, endpoint: nil, cores: ProcessInfo.processInfo.activeProcessorCount,
                        memoryMegabytes: Int(ProcessInfo.processInfo.physicalMemory / 1_048_576), load: load[0], states: states)
    }

    func run() async throws {
        var lastGotThrough = ContinuousClock.now
        var fenced = false
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            let states = sockets.served().map { name in
                let s = sockets.board.state(of: name, connected: sockets.connectionCount(name) > 0)
                return (agent: name.rawValue, state: s.state, detail: s.detail, since: s.since)
            }
            let store = self.store
            let sent = ContinuousClock.now
            let outcome = await onThread { Result { try store.heartbeat(Self.beat(states: states)) } }
            switch outcome {
            case .success:
                lastGotThrough = sent
                if !fenced { let lifecycle = self.lifecycle; await onThread { lifecycle.reconcile() } }
                if fenced {
                    fenced = false
                    logger.notice("the database is reachable again: this node's agents start again")
                    let lifecycle = self.lifecycle
                    Thread { lifecycle.bootAll() }.start()
                }
            case .failure(let error):
                let silent = ContinuousClock.now - lastGotThrough
                logger.warning("heartbeat failed (\(silent) without one): \(error)")
                // Stopped one interval before the database's lease ends (it began no earlier than `sent`).
                if !fenced, silent >= lease - interval {
                    fenced = true
                    logger.error("no heartbeat reached the database for \(silent): this node's leases run out, so its cages stop until it is back")
                    let processes = self.processes, served = sockets.served()
                    await onThread { for name in served { processes?.stop(name) } }
                }
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
        }
    }
}
