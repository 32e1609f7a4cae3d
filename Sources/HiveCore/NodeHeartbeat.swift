import Foundation
import HiveBroker
import HiveWire
import Logging
import ServiceLifecycle
import Synchronization

/// This node's endpoint as the heartbeat publishes it.
struct NodeServing: Sendable {
    let identity: NodeIdentity
    let host: String
    let port: Int
    /// `https://ADDRESS:PORT`, as other nodes reach it.
    let endpoint: String
}

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
    let serving: NodeServing?
    let logger: Logger

    init(store: any HiveStore, sockets: AgentSockets, processes: AgentProcesses?, lifecycle: Lifecycle, interval: Duration, lease: Duration,
         serving: NodeServing?, logger: Logger) {
        self.store = store; self.sockets = sockets; self.processes = processes; self.lifecycle = lifecycle
        self.interval = interval; self.lease = lease; self.serving = serving; self.logger = logger
    }

    /// What this host says of itself in a heartbeat. Details are bounded and control characters go (a
    /// supervisor's detail quotes errors; the database's text takes no NUL, and one would fail the beat).
    static func beat(states: [(agent: String, state: AgentState, detail: String?, since: Double?)], serving: NodeServing?) -> NodeBeat {
        var load = [0.0, 0, 0]
        _ = getloadavg(&load, 3)
        let clean = states.map { s in
            (agent: s.agent, state: s.state, detail: s.detail.map { d in
                String(String.UnicodeScalarView(d.unicodeScalars.prefix(500).map { $0.value < 0x20 || $0.value == 0x7f ? " " : $0 }))
            }, since: s.since)
        }
        return NodeBeat(host: ProcessInfo.processInfo.hostName, endpoint: nil, cores: ProcessInfo.processInfo.activeProcessorCount,
                        memoryMegabytes: Int(ProcessInfo.processInfo.physicalMemory / 1_048_576), load: load[0], states: clean)
            .serving(serving?.endpoint, certificate: serving?.identity.certificatePEM, tokenSHA256: serving?.identity.tokenSHA256)
    }

    private struct Pulse {
        var lastGotThrough = ContinuousClock.now
        var lastStarted: ContinuousClock.Instant?
        var inFlight = false
        var fenced = false
        var reconciling = false
    }

    /// A heartbeat every `interval`, each on a thread of its own so a slow database never delays the
    /// fence: that is checked every second against the last heartbeat that got through (counted from when
    /// it was sent). Cages stop one interval before the lease ends, all at once; stops and restarts go in
    /// order on one queue, so a flapping database cannot leave a cage started after a stop.
    private let pulse = Mutex(Pulse())
    private let order = DispatchQueue(label: "hive.node.fence")

    func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            let start = pulse.withLock { p -> Bool in
                guard !p.inFlight, p.lastStarted.map({ ContinuousClock.now - $0 >= interval }) ?? true else { return false }
                p.inFlight = true
                p.lastStarted = .now
                return true
            }
            if start { Thread { [self] in beatOnce() }.start() }
            let fence = pulse.withLock { p -> Bool in
                guard !p.fenced, ContinuousClock.now - p.lastGotThrough >= lease - interval else { return false }
                p.fenced = true
                return true
            }
            if fence {
                logger.error("no heartbeat reached the database for \(lease - interval): this node's leases are about to run out, so its cages stop until it is back")
                let processes = self.processes, served = sockets.served()
                self.order.async { DispatchQueue.concurrentPerform(iterations: served.count) { processes?.stop(served[$0]) } }
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
        }
    }

    /// One heartbeat, then what follows from it: a recovery restarts the agents; otherwise the node
    /// reconciles (unless a reconciliation still runs).
    private func beatOnce() {
        let states = sockets.served().map { name in
            let s = sockets.board.state(of: name, connected: sockets.connectionCount(name) > 0)
            return (agent: name.rawValue, state: s.state, detail: s.detail, since: s.since)
        }
        let sent = ContinuousClock.now
        do {
            try store.heartbeat(Self.beat(states: states, serving: serving))
            let (recovered, reconcile) = pulse.withLock { p -> (Bool, Bool) in
                p.inFlight = false
                p.lastGotThrough = sent
                let recovered = p.fenced
                p.fenced = false
                let reconcile = !recovered && !p.reconciling
                if reconcile { p.reconciling = true }
                return (recovered, reconcile)
            }
            if recovered {
                logger.notice("the database is reachable again: this node's agents start again")
                order.async { [lifecycle] in lifecycle.bootAll() }
            } else if reconcile {
                lifecycle.reconcile()
                pulse.withLock { $0.reconciling = false }
            }
        } catch {
            let silent = pulse.withLock { p -> Duration in
                p.inFlight = false
                return ContinuousClock.now - p.lastGotThrough
            }
            logger.warning("heartbeat failed (\(silent) without one): \(error)")
        }
    }
}
