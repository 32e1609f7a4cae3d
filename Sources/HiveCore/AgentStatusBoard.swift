import Foundation
import HiveWire
import Synchronization

/// What is known about each agent beyond its inbox: what its harness last reported, and what the
/// process supervisor last saw. `list` combines both with whether anything is connected.
final class AgentStatusBoard: Sendable {
    private struct Entry {
        var report: ReportStateCommand?
        /// When the harness's reported state last changed (a new report of the same state keeps it).
        var reportSince: Double?
        var supervisor: (state: AgentState, detail: String?, since: Double)?

        mutating func setSupervisor(_ state: AgentState?, detail: String?, now: Double) {
            let since = supervisor?.state == state ? supervisor?.since ?? now : now
            supervisor = state.map { ($0, detail, since) }
            // The supervisor stepping in (a crash, a restart) ends what the harness last said: the next
            // report starts its state's clock anew, even if it is the same state.
            if state != nil { reportSince = nil }
        }
    }
    private let entries = Mutex([AgentName: Entry]())
    private let clock: @Sendable () -> Double

    init(clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) { self.clock = clock }

    /// Records a harness's own report.
    func report(_ name: AgentName, _ report: ReportStateCommand) {
        let now = clock()
        entries.withLock { e in
            if e[name]?.report?.state != report.state || e[name]?.reportSince == nil { e[name, default: Entry()].reportSince = now }
            e[name, default: Entry()].report = report
        }
    }

    /// Records what the supervisor sees (`crashed`, `restarting`, ...); nil clears it.
    func supervisor(_ name: AgentName, state: AgentState?, detail: String? = nil) {
        let now = clock()
        entries.withLock { $0[name, default: Entry()].setSupervisor(state, detail: detail, now: now) }
    }

    /// Like ``supervisor(_:state:detail:)``, but only while the supervisor's state is still `current` (or
    /// was cleared): a state someone set meanwhile, with its detail, stands.
    func supervisor(_ name: AgentName, state: AgentState?, ifStill current: AgentState) {
        entries.withLock { e in
            let now = e[name]?.supervisor?.state
            guard now == nil || now == current else { return }
            e[name, default: Entry()].setSupervisor(state, detail: nil, now: clock())
        }
    }

    /// Forgets an agent (destroyed).
    func forget(_ name: AgentName) {
        entries.withLock { _ = $0.removeValue(forKey: name) }
    }

    /// The state `list` shows for a live agent, and since when (core's clock; nil when not known).
    func state(of name: AgentName, connected: Bool) -> (state: AgentState, rateLimitedUntil: Double?, detail: String?, cliVersion: String?, since: Double?) {
        let entry = entries.withLock { $0[name] }
        if connected, let r = entry?.report {
            return (r.state, r.state == .rateLimited ? r.rateLimitedUntil : nil, r.detail, r.cliVersion, entry?.reportSince)
        }
        if let s = entry?.supervisor { return (s.state, nil, s.detail, entry?.report?.cliVersion, s.since) }
        return (connected ? .running : .stopped, nil, nil, entry?.report?.cliVersion, nil)
    }
}
