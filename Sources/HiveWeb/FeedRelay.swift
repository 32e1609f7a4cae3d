import Foundation
import HiveHTTP
import HiveMetrics
import HiveWire
import ServiceLifecycle
import Synchronization

/// One long-poll on core's dashboard feed, shared by every open dashboard. Without it each SSE client held
/// a long-poll of its own, which is a connection and a thread in core per open tab. The relay keeps the
/// latest events in memory: a client at most `keep` events behind catches up from here; one further
/// behind, or ahead of what the relay has seen (a snapshot newer than its last poll, a restarted core),
/// asks core itself, which also decides when a client must start over.
public final class FeedRelay: Service, Sendable {
    enum Read: Equatable {
        case events([Frame])
        case wait
        case fromCore
    }

    /// One event as a server-sent-events frame, encoded once however many subscribers send it.
    struct Frame: Equatable {
        var seq: Int64
        var text: String

        init(_ e: DashboardEvent) {
            seq = e.seq
            let data = (try? WireCoding.encoder().encode(e)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            text = EventStream.frame(id: e.seq, data: data)
        }
    }

    private struct State {
        /// The newest event the relay holds (events are contiguous up to it); nil before the first poll.
        var seq: Int64?
        var events: [Frame] = []
        var subscribers: [UUID: AsyncStream<Void>.Continuation] = [:]
        var stopped = false
    }

    private let state = Mutex(State())
    let core: CoreLink
    let keep: Int

    public init(core: CoreLink, keep: Int = 2000) {
        self.core = core
        self.keep = keep
    }

    /// Events after `after` (at most 500), `wait` when there are none yet, or `fromCore` when the relay
    /// cannot answer for that position.
    func read(after: Int64) -> Read {
        state.withLock { s in
            guard let seq = s.seq, after <= seq else { return .fromCore }
            let oldest = s.events.first?.seq ?? seq + 1
            guard after >= oldest - 1 else { return .fromCore }
            let start = Int(after - (oldest - 1)) // contiguous seqs: the index of the first newer event
            return start >= s.events.count ? .wait : .events(Array(s.events[start..<min(s.events.count, start + 500)]))
        }
    }

    /// A stream that yields whenever the relay has something new (coalesced), and ends when it stops.
    /// The continuation is handed back too, so the caller can wake itself (a heartbeat).
    func subscribe() -> (AsyncStream<Void>, AsyncStream<Void>.Continuation) {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = UUID()
        let (stopped, clients) = state.withLock { s -> (Bool, Int) in
            if !s.stopped { s.subscribers[id] = continuation }
            return (s.stopped, s.subscribers.count)
        }
        HiveMetrics.set(HiveMetrics.Name.webSSEClients, Double(clients))
        if stopped { continuation.finish() }
        continuation.onTermination = { [weak self] _ in
            guard let clients = self?.state.withLock({ s -> Int in s.subscribers.removeValue(forKey: id); return s.subscribers.count }) else { return }
            HiveMetrics.set(HiveMetrics.Name.webSSEClients, Double(clients))
        }
        return (stream, continuation)
    }

    /// Applies one reply from core: new events, or a reset (the relay starts over from core's `seq`).
    func apply(_ reply: EventsCommand.Reply) {
        let frames = reply.events.map(Frame.init) // outside the lock
        let wake = state.withLock { s -> [AsyncStream<Void>.Continuation] in
            if reply.reset {
                s.events = []
                s.seq = reply.seq
            } else if let last = reply.events.last {
                s.events += frames
                if s.events.count > keep { s.events.removeFirst(s.events.count - keep) }
                s.seq = last.seq
            } else {
                return []
            }
            return Array(s.subscribers.values)
        }
        for c in wake { c.yield() }
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            while !Task.isCancelled, !isStopped {
                // First a position (asking from past the end always answers "reset" with core's seq), then long-polls.
                let after = state.withLock { $0.seq } ?? Int64.max
                do {
                    apply(try await core.call(EventsCommand(after: after, waitSeconds: after == .max ? 0 : 5)))
                } catch {
                    try? await Task.sleep(for: .seconds(1)) // core restarting: clients read from core meanwhile
                }
            }
        } onGracefulShutdown: {
            self.stop()
        }
    }

    private var isStopped: Bool { state.withLock { $0.stopped } }

    /// Ends every subscriber's stream (their responses finish, so the server can shut down).
    func stop() {
        let all = state.withLock { s -> [AsyncStream<Void>.Continuation] in
            s.stopped = true
            defer { s.subscribers = [:] }
            return Array(s.subscribers.values)
        }
        for c in all { c.finish() }
    }
}
