import Foundation
import Synchronization

/// Parks `recv` calls until a message for their agent is committed, without polling.
///
/// Each agent has a generation counter that every commit touching its inbox bumps. A receiver takes a
/// ticket (the current generation) *before* it looks at the database; if the generation has moved by the
/// time it parks, it returns at once. That closes the gap between "inbox looked empty" and "parked".
public final class InboxWaiters: Sendable {
    /// Identifies one socket connection, so a parked `recv` can be released when its peer goes away.
    public struct Connection: Hashable, Sendable {
        public let id: UInt64
    }

    /// How a park ended.
    public enum Wake: Sendable, Equatable { case notified, timedOut, peerClosed }

    fileprivate struct Parked {
        let agent: String
        let connection: Connection?
        let continuation: CheckedContinuation<Wake, Never>
    }

    fileprivate struct State {
        var generation: [String: UInt64] = [:]
        var parked: [UInt64: Parked] = [:]
        var byAgent: [String: Set<UInt64>] = [:]
        var closedConnections: Set<Connection> = []
        var nextID: UInt64 = 0
        var nextConnection: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// A fresh connection identity.
    public func openConnection() -> Connection {
        state.withLock { s in
            s.nextConnection += 1
            return Connection(id: s.nextConnection)
        }
    }

    /// Releases any `recv` parked on `connection` and makes later parks on it return at once.
    public func closeConnection(_ connection: Connection) {
        let toResume: [CheckedContinuation<Wake, Never>] = state.withLock { s in
            s.closedConnections.insert(connection)
            let ids = s.parked.filter { $0.value.connection == connection }.map(\.key)
            return ids.compactMap { id in s.remove(id)?.continuation }
        }
        toResume.forEach { $0.resume(returning: .peerClosed) }
    }

    /// Forgets a closed connection once its handler has finished.
    public func forgetConnection(_ connection: Connection) {
        state.withLock { _ = $0.closedConnections.remove(connection) }
    }

    /// Whether the peer of `connection` has gone.
    public func isClosed(_ connection: Connection?) -> Bool {
        guard let connection else { return false }
        return state.withLock { $0.closedConnections.contains(connection) }
    }

    /// The generation to hold while checking the inbox.
    public func ticket(for agent: String) -> UInt64 {
        state.withLock { $0.generation[agent, default: 0] }
    }

    /// Wakes every receiver parked on these agents' inboxes.
    public func notify<S: Sequence>(_ agents: S) where S.Element == String {
        let toResume: [CheckedContinuation<Wake, Never>] = state.withLock { s in
            var out: [CheckedContinuation<Wake, Never>] = []
            for agent in Set(agents) {
                s.generation[agent, default: 0] &+= 1
                for id in s.byAgent[agent] ?? [] {
                    if let p = s.remove(id) { out.append(p.continuation) }
                }
            }
            return out
        }
        toResume.forEach { $0.resume(returning: .notified) }
    }

    /// Parks until the agent's generation moves past `ticket`, the deadline passes, the connection
    /// closes, or the task is cancelled (reported as `timedOut`).
    public func wait(agent: String, after ticket: UInt64, until deadline: ContinuousClock.Instant,
                     connection: Connection? = nil) async -> Wake {
        let id = state.withLock { s -> UInt64 in s.nextID += 1; return s.nextID }
        return await withTaskGroup(of: Wake?.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (c: CheckedContinuation<Wake, Never>) in
                        let immediate: Wake? = self.state.withLock { s in
                            if let connection, s.closedConnections.contains(connection) { return .peerClosed }
                            if s.generation[agent, default: 0] != ticket { return .notified }
                            if Task.isCancelled { return .timedOut }
                            s.parked[id] = Parked(agent: agent, connection: connection, continuation: c)
                            s.byAgent[agent, default: []].insert(id)
                            return nil
                        }
                        if let immediate { c.resume(returning: immediate) }
                    }
                } onCancel: {
                    self.state.withLock { $0.remove(id) }?.continuation.resume(returning: .timedOut)
                }
            }
            group.addTask {
                try? await Task.sleep(until: deadline, clock: .continuous)
                return nil
            }
            var result: Wake = .timedOut
            if let first = await group.next(), let wake = first { result = wake }
            group.cancelAll()
            return result
        }
    }
}

extension InboxWaiters.State {
    fileprivate mutating func remove(_ id: UInt64) -> InboxWaiters.Parked? {
        guard let p = parked.removeValue(forKey: id) else { return nil }
        byAgent[p.agent]?.remove(id)
        if byAgent[p.agent]?.isEmpty == true { byAgent[p.agent] = nil }
        return p
    }
}
