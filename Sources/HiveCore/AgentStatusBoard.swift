import Foundation
import HiveWire
import Synchronization

/// What is known about each agent beyond its inbox: what its harness last reported, and what the
/// process supervisor last saw. `list` combines both with whether anything is connected.
final class AgentStatusBoard: Sendable {
    private struct Entry {
        var report: ReportStateCommand?
        var supervisor: (state: AgentState, detail: String?)?
    }
    private let entries = Mutex([AgentName: Entry]())

    init() {}

    /// Records a harness's own report.
    func report(_ name: AgentName, _ report: ReportStateCommand) {
        entries.withLock { $0[name, default: Entry()].report = report }
    }

    /// Records what the supervisor sees (`crashed`, `restarting`, ...); nil clears it.
    func supervisor(_ name: AgentName, state: AgentState?, detail: String? = nil) {
        entries.withLock { $0[name, default: Entry()].supervisor = state.map { ($0, detail) } }
    }

    /// Like ``supervisor(_:state:detail:)``, but only while the supervisor's state is still `current` (or
    /// was cleared): a state someone set meanwhile, with its detail, stands.
    func supervisor(_ name: AgentName, state: AgentState?, ifStill current: AgentState) {
        entries.withLock { e in
            let now = e[name]?.supervisor?.state
            guard now == nil || now == current else { return }
            e[name, default: Entry()].supervisor = state.map { ($0, nil) }
        }
    }

    /// Forgets an agent (destroyed).
    func forget(_ name: AgentName) {
        entries.withLock { _ = $0.removeValue(forKey: name) }
    }

    /// The state `list` shows for a live agent.
    func state(of name: AgentName, connected: Bool) -> (state: AgentState, rateLimitedUntil: Double?, detail: String?, cliVersion: String?) {
        let entry = entries.withLock { $0[name] }
        if connected, let r = entry?.report {
            return (r.state, r.state == .rateLimited ? r.rateLimitedUntil : nil, r.detail, r.cliVersion)
        }
        if let s = entry?.supervisor { return (s.state, nil, s.detail, entry?.report?.cliVersion) }
        return (connected ? .running : .stopped, nil, nil, entry?.report?.cliVersion)
    }
}
