import Foundation
import HiveBroker
import HiveWire
import Logging
import ServiceLifecycle
import Synchronization

/// Owns one socket per registered agent: opens it on spawn (and at boot), closes it on destroy, and
/// counts live connections so `list` can say whether anything runs behind it.
final class AgentSockets: Service, Sendable {
    private let layout: HiveLayout
    private let broker: Broker
    private let logger: Logger

    private struct Listener {
        let task: Task<Void, Never>
    }
    private struct State {
        var listeners: [AgentName: Listener] = [:]
        var connections: [AgentName: Int] = [:]
        var stopped = false
    }
    private let state = Mutex(State())

    init(layout: HiveLayout, broker: Broker, logger: Logger) {
        self.layout = layout
        self.broker = broker
        self.logger = logger
    }

    /// Creates the agent's socket (mode 0660) and starts serving it. Returns once it accepts connections.
    func open(_ name: AgentName) async throws {
        let server = LineServer(
            path: layout.agentSocket(name), mode: 0o660, waiters: broker.waiters, logger: logger,
            handler: AgentEndpoint(name: name, broker: broker, logger: logger).handle,
            onConnectionChange: { [weak self] delta in
                self?.state.withLock { $0.connections[name, default: 0] += delta }
            })
        let bound = try await server.bind()
        let task = Task { await bound.serve() }
        let accepted = state.withLock { s -> Bool in
            guard !s.stopped, s.listeners[name] == nil else { return false }
            s.listeners[name] = Listener(task: task)
            return true
        }
        if !accepted { task.cancel(); await task.value }
    }

    /// Stops serving the agent's socket, drops its connections and removes the socket file.
    func close(_ name: AgentName) async {
        guard let listener = state.withLock({ $0.listeners.removeValue(forKey: name) }) else { return }
        listener.task.cancel()
        await listener.task.value
        try? FileManager.default.removeItem(at: layout.agentRunDir(name))
    }

    /// How many processes are connected to the agent's socket right now.
    func connectionCount(_ name: AgentName) -> Int {
        state.withLock { $0.connections[name] ?? 0 }
    }

    /// Runs until graceful shutdown, then closes every agent socket.
    func run() async throws {
        try? await gracefulShutdown()
        let listeners = state.withLock { s -> [Listener] in
            s.stopped = true
            defer { s.listeners.removeAll() }
            return Array(s.listeners.values)
        }
        for l in listeners { l.task.cancel() }
        for l in listeners { await l.task.value }
    }
}
