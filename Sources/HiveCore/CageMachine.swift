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

    /// Each launch and each planned relaunch gets a new number; an event about an older one (a launch
    /// that was superseded by a restart, a relaunch timer from before a stop) is recognised as stale.
    typealias Generation = Int

    enum Event: Sendable, Equatable {
        /// Someone wants it running (spawn, start, restart, a relaunch after a rebuild).
        case start
        /// The process of launch `generation` started.
        case launched(Generation, now: Double)
        /// The cage of launch `generation` could not be prepared (a missing credential, a bad config): it
        /// stays down until started.
        case prepareFailed(Generation)
        /// The process of launch `generation` could not be started; another try comes later.
        case launchFailed(Generation)
        /// Its running process ended without anyone asking.
        case exited(now: Double)
        /// The delay before relaunch `generation` is over.
        case relaunchDue(Generation)
        /// Stop it, and do not bring it back.
        case stop
    }

    enum Action: Sendable, Equatable {
        case none
        /// Prepare and launch the cage; report back with this generation.
        case launch(Generation)
        /// A cage came up that nobody wants any more (stopped, or superseded while it launched): end it.
        case terminate
        /// It crashed: say so, tell the manager when `notice`, and send `.relaunchDue(generation)` after `after` seconds.
        case relaunch(after: Double, notice: Bool, generation: Generation)
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
    /// The current launch or planned relaunch; only ever grows.
    private(set) var generation: Generation = 0

    mutating func handle(_ event: Event) -> Action {
        switch (phase, event) {
        case (.launching, .start), (.running, .start):
            return .none
        case (_, .start):
            if phase == .stopped { (restarts, lastNotice) = (0, nil) } // a stop forgets the crash history
            return launch()

        case (.launching, .launched(let g, let now)) where g == generation:
            phase = .running(since: now)
            return .none
        case (_, .launched):
            return .terminate

        case (.launching, .prepareFailed(let g)) where g == generation:
            phase = .down
            return .none
        case (.launching, .launchFailed(let g)) where g == generation:
            return relaunch(after: Self.launchRetry, notice: false)
        case (_, .prepareFailed), (_, .launchFailed):
            return .none

        case (.running(let since), .exited(let now)):
            if now - since > Self.stableAfter { restarts = 0 }
            restarts += 1
            let notice = lastNotice.map { now - $0 > Self.noticeInterval } ?? true
            if notice { lastNotice = now }
            return relaunch(after: min(Self.maxDelay, pow(2, Double(restarts - 1))), notice: notice)
        case (_, .exited):
            return .none

        case (.relaunchPending, .relaunchDue(let g)) where g == generation:
            return launch()
        case (_, .relaunchDue):
            return .none

        case (_, .stop):
            phase = .stopped
            generation += 1 // whatever was launching or planned is no longer wanted
            return .none
        }
    }

    private mutating func launch() -> Action {
        generation += 1
        phase = .launching
        return .launch(generation)
    }

    private mutating func relaunch(after delay: Double, notice: Bool) -> Action {
        generation += 1
        phase = .relaunchPending
        return .relaunch(after: delay, notice: notice, generation: generation)
    }
}
