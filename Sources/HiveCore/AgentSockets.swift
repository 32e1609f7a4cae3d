import Foundation
import HiveBroker
import HiveHost
import HiveWire
import Logging
import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Owns one socket per registered agent: opens it on spawn (and at boot), closes it on destroy, and
/// counts live connections so `list` can say whether anything runs behind it.
final class AgentSockets: Service, Sendable {
    private let layout: HiveLayout
    private let broker: any HiveStore
    let board: AgentStatusBoard
    let reminders: ReminderDesk
    let configs: ConfigStore
    let rates: AgentRates
    let reserve: DiskReserve
    let limits = CredentialLimits()
    let ledger: SpendLedger
    let budgets: BudgetDesk
    private let logger: Logger

    private struct State {
        var servers: [AgentName: LineServer] = [:]
        var connections: [AgentName: Int] = [:]
        /// Connections ever opened per agent: a new one after a (re)start means its harness is up.
        var opened: [AgentName: Int] = [:]
        /// When the last connection of each agent closed (or its socket opened with none).
        var unattendedSince: [AgentName: ContinuousClock.Instant] = [:]
        var stopped = false
    }
    private let state = Mutex(State())

    init(layout: HiveLayout, broker: any HiveStore, board: AgentStatusBoard, reminders: ReminderDesk, configs: ConfigStore, rates: AgentRates, reserve: DiskReserve,
         ledger: SpendLedger, budgets: BudgetDesk, logger: Logger) {
        self.ledger = ledger
        self.budgets = budgets
        self.reserve = reserve
        self.configs = configs
        self.rates = rates
        self.layout = layout
        self.broker = broker
        self.board = board
        self.reminders = reminders
        self.logger = logger
    }

    /// Creates the agent's socket (mode 0660) and starts serving it. Returns once it accepts connections.
    /// The manager's socket is opened once, at boot, with `manager`: its extra requests (they reach the
    /// lifecycle, which opens the other agents' sockets through here).
    func open(_ name: AgentName, manager: ManagerDesk? = nil) throws {
        guard (name == .manager) == (manager != nil) else { throw CoreError("the manager's socket opens at boot, with its desk, and only it") }
        let server = LineServer(
            path: layout.agentSocket(name), mode: 0o660, logger: logger,
            handler: AgentEndpoint(name: name, broker: broker, board: board, layout: layout, reminders: reminders, configs: configs, rates: rates, reserve: reserve, limits: limits,
                                   ledger: ledger, budgets: budgets, manager: manager, logger: logger).handle,
            onConnectionChange: { [weak self] delta in
                self?.state.withLock { s in
                    s.connections[name, default: 0] += delta
                    if delta > 0 { s.opened[name, default: 0] += 1 }
                    s.unattendedSince[name] = s.connections[name] == 0 ? .now : nil
                }
            })
        let taken = state.withLock { s -> Bool in
            guard !s.stopped, s.servers[name] == nil else { return false }
            s.servers[name] = server
            s.unattendedSince[name] = .now
            return true
        }
        guard taken else { throw CoreError("agent '\(name)' already has a socket, or the core is stopping") }
        do {
            // A fresh run dir, root's: whatever was there (an agent's leftovers included) cannot keep core
            // from serving the agent, nor from booting.
            try AgentRunDir.create(name, in: layout)
            try server.listen()
            server.startAccepting()
        } catch {
            state.withLock { _ = $0.servers.removeValue(forKey: name) }
            throw error
        }
    }

    /// Stops serving the agent's socket, hangs up its connections and removes the socket file.
    func close(_ name: AgentName) {
        guard let server = state.withLock({ $0.servers.removeValue(forKey: name) }) else { return }
        rates.forget(name) // a new agent of the same name starts with full buckets
        server.stop()
        AgentRunDir.remove(name, in: layout)
    }

    /// The agents whose sockets this core serves (on a node, the agents placed on it).
    func served() -> [AgentName] {
        state.withLock { Array($0.servers.keys) }.sorted { $0.rawValue < $1.rawValue }
    }

    /// Agents with nothing connected, and since when.
    func unattended() -> [(AgentName, ContinuousClock.Instant)] {
        state.withLock { s in s.unattendedSince.filter { s.servers[$0.key] != nil }.map { ($0.key, $0.value) } }
    }

    /// How many processes are connected to the agent's socket right now.
    func connectionCount(_ name: AgentName) -> Int {
        state.withLock { $0.connections[name] ?? 0 }
    }

    /// How many connections the agent's socket has taken since core started.
    func connectionsOpened(_ name: AgentName) -> Int {
        state.withLock { $0.opened[name] ?? 0 }
    }

    /// Waits until a connection newer than `after` (a ``connectionsOpened(_:)`` reading) arrives.
    func waitForConnection(_ name: AgentName, after: Int, timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if connectionsOpened(name) > after { return true }
            usleep(20_000)
        }
        return connectionsOpened(name) > after
    }

    /// Runs until graceful shutdown, then closes every agent socket.
    func run() async throws {
        try? await gracefulShutdown()
        let servers = state.withLock { s -> [LineServer] in
            s.stopped = true
            defer { s.servers.removeAll() }
            return Array(s.servers.values)
        }
        broker.releaseReceivers()
        await onThread { for server in servers { server.stop() } }
    }
}

/// Runs blocking work (joining connection threads, SQLite batches) on a thread of its own, so the
/// cooperative pool is never blocked.
func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}
