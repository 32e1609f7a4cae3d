import Foundation
import HiveWire
import Synchronization

/// Parks `recv` calls until a message for their agent is committed, without polling.
///
/// Each agent has a generation counter that every commit touching its inbox bumps. A receiver takes a
/// ticket (the current generation) *before* it looks at the database; if the generation has moved by the
/// time it parks, it returns at once. That closes the gap between "inbox looked empty" and "parked".
///
/// A send may also *claim* a parked receiver inside its own transaction: the new row is stored already
/// delivered and handed straight to the receiver after the commit, so a wake costs one transaction (one
/// fsync) instead of two.
public final class InboxWaiters: Sendable {
    /// Identifies one socket connection, so a parked `recv` can be released when its peer goes away.
    public struct Connection: Hashable, Sendable {
        public let id: UInt64
    }

    /// How a park ended.
    public enum Wake: Sendable, Equatable {
        /// Something for this agent was committed; look again.
        case notified
        /// A send claimed this receiver and handed it these (already delivered) messages.
        case handed([MessageView], unread: Int)
        case timedOut
        case peerClosed
    }

    /// A parked receiver taken by a send transaction. Exactly one of `hand` or `release` must follow.
    public struct Claim: Sendable {
        public let agent: String
        /// How many messages the receiver asked for.
        public let max: Int
        fileprivate let continuation: CheckedContinuation<Wake, Never>

        /// Gives the receiver its messages (after the transaction that stored them committed).
        public func hand(_ messages: [MessageView], unread: Int) { continuation.resume(returning: .handed(messages, unread: unread)) }
        /// Lets the receiver look again by itself (the transaction failed or had nothing for it).
        public func release() { continuation.resume(returning: .notified) }
    }

    fileprivate struct Parked {
        let agent: String
        let connection: Connection?
        let max: Int
        let continuation: CheckedContinuation<Wake, Never>
    }

    fileprivate struct State {
        var generation: [String: UInt64] = [:]
        var parked: [UInt64: Parked] = [:]
        var byAgent: [String: [UInt64]] = [:]
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

    /// Takes the longest-parked receiver of `agent`, if any, out of the queue for a hand-off.
    public func claim(_ agent: String) -> Claim? {
        state.withLock { s in
            guard let id = s.byAgent[agent]?.first, let p = s.remove(id) else { return nil }
            return Claim(agent: agent, max: p.max, continuation: p.continuation)
        }
    }

    /// Parks until the agent's generation moves past `ticket`, a send hands over messages, the deadline
    /// passes, the connection closes, or the task is cancelled (reported as `timedOut`).
    public func wait(agent: String, after ticket: UInt64, max: Int, until deadline: ContinuousClock.Instant,
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
                            s.parked[id] = Parked(agent: agent, connection: connection, max: max, continuation: c)
                            s.byAgent[agent, default: []].append(id)
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
            // The deadline may race a hand-off: once claimed, the park always finishes with `.handed`,
            // so wait for the park's own result and never drop messages that were handed over.
            var result: Wake = .timedOut
            while let next = await group.next() {
                if let wake = next {
                    result = wake
                    break
                }
                group.cancelAll()
            }
            group.cancelAll()
            return result
        }
    }
}

extension InboxWaiters.State {
    fileprivate mutating func remove(_ id: UInt64) -> InboxWaiters.Parked? {
        guard let p = parked.removeValue(forKey: id) else { return nil }
        byAgent[p.agent]?.removeAll { $0 == id }
        if byAgent[p.agent]?.isEmpty == true { byAgent[p.agent] = nil }
        return p
    }
}
