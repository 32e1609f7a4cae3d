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
    /// How a park ended.
    public enum Wake: Sendable, Equatable {
        /// Something for this agent was committed; look again.
        case notified
        /// A send claimed this receiver and handed it these (already delivered) messages.
        case handed([MessageView], unread: Int)
        case timedOut
        case peerClosed
        /// The broker is shutting down.
        case stopped
    }

    /// A parked receiver taken by a send transaction. Exactly one of `hand` or `release` must follow.
    public struct Claim: Sendable {
        public let agent: String
        /// How many messages the receiver asked for.
        public let max: Int
        fileprivate let id: UInt64
        fileprivate let waiters: InboxWaiters

        /// Gives the receiver its messages (after the transaction that stored them committed).
        public func hand(_ messages: [MessageView], unread: Int) { waiters.finish(id, .handed(messages, unread: unread)) }
        /// Lets the receiver look again by itself (the transaction failed).
        public func release() { waiters.finish(id, .notified) }
    }

    fileprivate struct Parked {
        let agent: String
        let max: Int
        let parker: Parker
        /// Set once the park is decided (woken, claimed and handed, released, stopped).
        var outcome: Wake?
        /// A send has claimed this receiver; it will get `hand` or `release` shortly.
        var claimed = false
    }

    fileprivate struct State {
        var generation: [String: UInt64] = [:]
        var parked: [UInt64: Parked] = [:]
        var byAgent: [String: [UInt64]] = [:]
        var nextID: UInt64 = 0
        var stopped = false
    }

    private let state = Mutex(State())

    public init() {}

    /// The generation to hold while checking the inbox.
    public func ticket(for agent: String) -> UInt64 {
        state.withLock { $0.generation[agent, default: 0] }
    }

    /// Wakes every receiver parked (and not yet claimed) on these agents' inboxes.
    public func notify<S: Sequence>(_ agents: S) where S.Element == String {
        let parkers: [Parker] = state.withLock { s in
            var out: [Parker] = []
            for agent in Set(agents) {
                s.generation[agent, default: 0] &+= 1
                for id in s.byAgent[agent] ?? [] {
                    if let p = s.unqueue(id, outcome: .notified) { out.append(p) }
                }
            }
            return out
        }
        parkers.forEach { $0.signal() }
    }

    /// Wakes every parked receiver, whatever its agent (a store whose notifications were lost while it was
    /// not listening).
    public func notifyAll() {
        notify(state.withLock { Array($0.byAgent.keys) + Array($0.generation.keys) })
    }

    /// Releases every parked receiver and makes later parks return at once (shutdown).
    public func stopAll() {
        let parkers: [Parker] = state.withLock { s in
            s.stopped = true
            return Array(s.parked.keys).compactMap { s.unqueue($0, outcome: .stopped) }
        }
        parkers.forEach { $0.signal() }
    }

    /// Takes the longest-parked receiver of `agent`, if any, out of the queue for a hand-off.
    public func claim(_ agent: String) -> Claim? {
        state.withLock { s in
            guard let id = s.byAgent[agent]?.first, let p = s.parked[id] else { return nil }
            s.byAgent[agent]?.removeFirst()
            if s.byAgent[agent]?.isEmpty == true { s.byAgent[agent] = nil }
            s.parked[id]?.claimed = true
            return Claim(agent: agent, max: p.max, id: id, waiters: self)
        }
    }

    fileprivate func finish(_ id: UInt64, _ outcome: Wake) {
        let parker = state.withLock { s -> Parker? in
            s.parked[id]?.outcome = outcome
            return s.parked[id]?.parker
        }
        parker?.signal()
    }

    /// Blocks the calling thread until the agent's generation moves past `ticket`, a send hands over
    /// messages, the deadline passes, the parker's peer hangs up, or the broker stops.
    public func wait(agent: String, after ticket: UInt64, max: Int, until deadline: ContinuousClock.Instant,
                     parker: Parker) -> Wake {
        guard parker.prepare() else { return .timedOut }
        let id: UInt64? = state.withLock { s in
            if s.stopped || s.generation[agent, default: 0] != ticket { return nil }
            s.nextID += 1
            s.parked[s.nextID] = Parked(agent: agent, max: max, parker: parker)
            s.byAgent[agent, default: []].append(s.nextID)
            return s.nextID
        }
        guard let id else { return state.withLock { $0.stopped } ? .stopped : .notified }
        parker.drain() // a stale signal from an earlier park must not end this one
        var ended: Wake? = nil
        while true {
            let decided = state.withLock { s -> Wake? in
                if let outcome = s.parked[id]?.outcome {
                    s.parked[id] = nil
                    return outcome
                }
                // Timed out or hung up: leave now unless a send has claimed us, in which case its
                // hand-off is on the way and must not be dropped.
                if let ended, s.parked[id]?.claimed == false {
                    _ = s.unqueue(id, outcome: nil)
                    s.parked[id] = nil
                    return ended
                }
                return nil
            }
            if let decided { return decided }
            switch parker.wait(until: ended == nil ? deadline : .now + .seconds(1), watchPeer: ended == nil) {
            case .signalled: continue
            case .timedOut: ended = ended ?? .timedOut
            case .peerClosed: ended = .peerClosed
            }
        }
    }
}

extension InboxWaiters.State {
    /// Removes a parked receiver from its agent's queue, recording `outcome`; returns its parker if it
    /// was still queued (not claimed).
    fileprivate mutating func unqueue(_ id: UInt64, outcome: InboxWaiters.Wake?) -> Parker? {
        guard let p = parked[id], !p.claimed, p.outcome == nil else { return nil }
        byAgent[p.agent]?.removeAll { $0 == id }
        if byAgent[p.agent]?.isEmpty == true { byAgent[p.agent] = nil }
        parked[id]?.outcome = outcome
        return p.parker
    }
}
