import Foundation
import HiveBroker
import HiveWire
import Synchronization

/// The dashboard's live feed: every change the dashboard shows, numbered by a monotonic `seq`, kept for
/// the last 10,000 events. New messages are published the moment `send` commits; what no single call
/// site sees (delivery states, the agent list, approvals, reminders) is found by a light poll.
final class DashboardFeed: Sendable {
    private struct State {
        var seq: Int64 = 0
        var events: [DashboardEvent] = []
        var lastMessageID: Int64 = 0
        /// The newest message when the feed started: anything newer and unknown is news.
        var startID: Int64 = 0
        var messageStates: [Int64: MessageState] = [:]
        var agents: [AgentSummary] = []
        var approvals: [ApprovalView] = []
        var reminders: [ReminderView] = []
        var questions: [QuestionView] = []
        var stopped = false
    }
    private let state = Mutex(State())
    private let changed = NSCondition()
    private let broker: any HiveStore
    private let agents: @Sendable () throws -> [AgentSummary]
    static let keep = 10_000
    /// Most events one `events` reply carries (the client asks again for the rest).
    static let batch = 500

    init(broker: any HiveStore, agents: @escaping @Sendable () throws -> [AgentSummary]) {
        self.broker = broker
        self.agents = agents
        let last: Int64 = (try? broker.recentMessages(limit: 1).first?.id) ?? 0
        state.withLock { $0.lastMessageID = last; $0.startID = last }
        broker.observeSends { [weak self] ids in self?.published(ids) }
    }

    var seq: Int64 { state.withLock { $0.seq } }

    /// Events after `after`; waits up to `wait` for the first. `reset` when `after` fell out of the buffer.
    func events(after: Int64, wait: Duration) -> EventsCommand.Reply {
        let deadline = Date().addingTimeInterval(Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18)
        while true {
            let (reply, stopped) = state.withLock { s -> (EventsCommand.Reply, Bool) in
                let oldest = s.events.first?.seq ?? s.seq + 1
                // Older than the buffer, or from before a core restart (seq starts again): start over.
                if (after < oldest - 1 && after < s.seq) || after > s.seq { return (.init(seq: s.seq, events: [], reset: true), s.stopped) }
                return (.init(seq: s.seq, events: Array(s.events.lazy.filter { $0.seq > after }.prefix(Self.batch)), reset: false), s.stopped)
            }
            if !reply.events.isEmpty || reply.reset || stopped || Date() >= deadline { return reply }
            changed.lock()
            _ = changed.wait(until: min(deadline, Date().addingTimeInterval(1)))
            changed.unlock()
        }
    }

    private func publish(_ make: (Int64) -> DashboardEvent, in s: inout State) {
        s.seq += 1
        s.events.append(make(s.seq))
        if s.events.count > Self.keep { s.events.removeFirst(s.events.count - Self.keep) }
    }

    private func wake() {
        changed.lock()
        changed.broadcast()
        changed.unlock()
    }

    private func published(_ ids: [Int64]) {
        guard let rows = try? broker.messages(ids: ids), !rows.isEmpty else { return }
        state.withLock { s in
            for m in rows where s.messageStates[m.id] == nil {
                publish({ DashboardEvent(seq: $0, .message(m)) }, in: &s)
                s.messageStates[m.id] = m.state
                s.lastMessageID = max(s.lastMessageID, m.id)
            }
            trimStates(&s)
        }
        wake()
    }

    /// One round of the poll: new messages no `send` published (reminders), state changes of recent
    /// ones, the agent list, approvals and reminders.
    func poll() {
        let recent = (try? broker.recentMessages(limit: 200)) ?? []
        let agentList = (try? agents()) ?? []
        let approvals = (try? broker.approvals(recent: 20)) ?? []
        let reminders = (try? broker.pendingReminders(agent: nil)) ?? []
        let questions = (try? broker.questions(closed: 10)) ?? []
        var any = false
        state.withLock { s in
            for m in recent.reversed() {
                if let known = s.messageStates[m.id] {
                    if known != m.state {
                        publish({ DashboardEvent(seq: $0, .messageState(m)) }, in: &s)
                        s.messageStates[m.id] = m.state
                        any = true
                    }
                } else if m.id > s.startID {
                    publish({ DashboardEvent(seq: $0, .message(m)) }, in: &s)
                    s.messageStates[m.id] = m.state
                    s.lastMessageID = m.id
                    any = true
                } else {
                    s.messageStates[m.id] = m.state // known before this feed started
                }
            }
            trimStates(&s)
            if agentList != s.agents { s.agents = agentList; publish({ DashboardEvent(seq: $0, .agents(agentList)) }, in: &s); any = true }
            if approvals != s.approvals { s.approvals = approvals; publish({ DashboardEvent(seq: $0, .approvals(approvals)) }, in: &s); any = true }
            if reminders != s.reminders { s.reminders = reminders; publish({ DashboardEvent(seq: $0, .reminders(reminders)) }, in: &s); any = true }
            if questions != s.questions { s.questions = questions; publish({ DashboardEvent(seq: $0, .questions(questions)) }, in: &s); any = true }
        }
        if any { wake() }
    }

    private func trimStates(_ s: inout State) {
        if s.messageStates.count > 4000 {
            let floor = s.lastMessageID - 1000
            s.messageStates = s.messageStates.filter { $0.key > floor }
        }
    }

    func stop() {
        state.withLock { $0.stopped = true }
        wake()
    }
}
