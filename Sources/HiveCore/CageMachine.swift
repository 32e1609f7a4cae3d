import Foundation

/// The supervision of one agent's cage as a value: events in, actions out. It decides whether a start
/// goes ahead, what an exit means (relaunch after how long, tell the manager or not), and whether a
/// cage that came up after a stop must be put down again. ``AgentProcesses`` owns the processes and
/// the timers and carries the actions out; `CageMachineTests` is the specification.
struct CageMachine: Sendable, Equatable {
    enum Phase: Sendable, Equatable {
        /// Nothing runs and nothing is planned (never started, or its cage could not be prepared).
        case down
        /// Being prepared and launched.
        case launching
        /// Its harness process runs, since unix time `since`.
        case running(since: Double)
        /// It exited or failed to launch; a relaunch is due later.
        case relaunchPending
        /// Stopped on purpose; only a start brings it back.
        case stopped
    }

    enum Event: Sendable, Equatable {
        /// Someone wants it running (spawn, start, restart, a relaunch after a rebuild).
        case start
        /// Its process started.
        case launched(now: Double)
        /// Its cage could not be prepared (a missing credential, a bad config): it stays down until started.
        case prepareFailed
        /// Its process could not be started; another try comes later.
        case launchFailed
        /// Its process ended without anyone asking.
        case exited(now: Double)
        /// The delay before a relaunch is over.
        case relaunchDue
        /// Stop it, and do not bring it back.
        case stop
    }

    enum Action: Sendable, Equatable {
        case none
        /// Prepare and launch the cage.
        case launch
        /// A cage came up that nobody wants any more (stopped while it launched): end it.
        case terminate
        /// It crashed: say so, tell the manager when `notice`, and send `.relaunchDue` after `after` seconds.
        case relaunch(after: Double, notice: Bool)
    }

    /// A harness that ran this long earns a fresh backoff.
    static let stableAfter: Double = 120
    /// The longest wait before a relaunch.
    static let maxDelay: Double = 60
    /// Seconds a launch that failed waits before it is tried again.
    static let launchRetry: Double = 30
    /// The manager hears of a crashing cage at most this often.
    static let noticeInterval: Double = 600

    private(set) var phase = Phase.down
    /// Relaunches since it last ran stably.
    private(set) var restarts = 0
    /// When the manager was last told of a crash.
    private(set) var lastNotice: Double?

    mutating func handle(_ event: Event) -> Action {
        switch (phase, event) {
        case (.launching, .start), (.running, .start):
            return .none
        case (.stopped, .start):
            self = CageMachine() // a stop forgets the crash history
            phase = .launching
            return .launch
        case (_, .start):
            phase = .launching
            return .launch

        case (.launching, .launched(let now)):
            phase = .running(since: now)
            return .none
        case (_, .launched):
            return .terminate

        case (.launching, .prepareFailed):
            phase = .down
            return .none
        case (.launching, .launchFailed):
            phase = .relaunchPending
            return .relaunch(after: Self.launchRetry, notice: false)
        case (_, .prepareFailed), (_, .launchFailed):
            return .none

        case (.running(let since), .exited(let now)):
            if now - since > Self.stableAfter { restarts = 0 }
            restarts += 1
            let notice = lastNotice.map { now - $0 > Self.noticeInterval } ?? true
            if notice { lastNotice = now }
            phase = .relaunchPending
            return .relaunch(after: min(Self.maxDelay, pow(2, Double(restarts - 1))), notice: notice)
        case (_, .exited):
            return .none

        case (.relaunchPending, .relaunchDue):
            phase = .launching
            return .launch
        case (_, .relaunchDue):
            return .none

        case (_, .stop):
            phase = .stopped
            return .none
        }
    }
}
