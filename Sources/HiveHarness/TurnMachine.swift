import Foundation
import HiveWire

/// What the harness does with one message, turn after turn, as a value: events in, actions out.
///
/// It holds the counters (failed turns, transient errors in a row, whether the session was compacted)
/// and decides: run a turn, compact, wait and say why, dead-letter, or ack. It never sleeps, reads a
/// clock or touches a socket: the time and the random draw for jitter come in with each event, and
/// ``TurnLoop`` carries the actions out. `TurnMachineTests` is its specification.
public struct TurnMachine: Sendable, Equatable {
    /// The operator's knobs, from ``HarnessConfig``.
    public struct Rules: Sendable, Equatable {
        /// Failed turns on one message before it is dead-lettered.
        public var maxFailures = 5
        /// Transient errors in a row before one counts as a failed turn.
        public var transientRetries = 8
        public var failureBackoff = Backoff(base: 5, cap: 300)
        public var transientBackoff = Backoff(base: 2, cap: 60)
        /// Seconds before re-probing a limit whose reset time is unknown.
        public var rateLimitReprobe: Double = 3600
        /// Most seconds added after a reset, so agents parked on one limit do not all wake at once.
        public var rateLimitJitter: Double = 60
        /// Longest one park lasts before the limit is probed again (nil: until the reset).
        public var parkCap: Double?
        /// Seconds between checks while claude is missing or not logged in.
        public var setupRecheck: Double = 60
        /// Longest an agent out of credit waits for `hive resume` before trying one turn again.
        public var billingRecheck: Double = 3600
        /// The agent, named in what the operator is told to run.
        public var agent = "agent"
        public init() {}
    }

    /// How a claude run ended, besides what it said.
    public enum Ending: Sendable, Equatable {
        case finished
        /// The operator stopped it from the agent's page.
        case cancelled
        /// It ran past the turn timeout and was killed.
        case timedOut(seconds: Double)
    }

    public enum Event: Sendable, Equatable {
        /// No claude executable can be found.
        case claudeMissing
        /// A turn on the message ended. `now` is unix seconds; `random` is a draw in 0...1 for jitter.
        case turnEnded(TurnOutcome, Ending, now: Double, random: Double)
        /// The compaction the machine asked for ended (true: it compacted).
        case compacted(Bool, random: Double)
        /// A wait the machine asked for is over.
        case waited
    }

    /// What the harness shows while it waits, and reports to core.
    public struct Report: Sendable, Equatable {
        public var state: AgentState
        public var until: Double?
        public var window: String?
        public var detail: String?
        public init(_ state: AgentState, until: Double? = nil, window: String? = nil, detail: String? = nil) {
            self.state = state; self.until = until; self.window = window; self.detail = detail
        }
    }

    public enum Action: Sendable, Equatable {
        /// Run a turn on the message; `fresh`: in a new session instead of continuing.
        case runTurn(fresh: Bool)
        /// `/compact` the session, then tell the machine how it went.
        case compact
        /// Report, then wait `seconds` (`.waited` afterwards).
        case wait(seconds: Double, Report)
        /// Report, then wait until the operator says `hive resume`, or `seconds` at most.
        case waitForResume(seconds: Double, Report)
        /// Report claude missing and wait `seconds` before looking for it again.
        case awaitClaude(seconds: Double)
        /// Give up on the message, with the reason the manager and the operator read.
        case deadLetter(reason: String)
        /// The turn finished: ack the message.
        case ack
    }

    public let rules: Rules
    /// Failed turns on this message so far.
    public private(set) var failures = 0
    /// Transient errors in a row.
    public private(set) var transient = 0
    /// The session was compacted once for this message already.
    public private(set) var compacted = false
    /// The next turn starts a fresh session (compaction did not make the prompt fit).
    public private(set) var freshNext = false

    public init(rules: Rules) { self.rules = rules }

    /// The first action for a new message.
    public var start: Action { .runTurn(fresh: false) }

    public mutating func handle(_ event: Event) -> Action {
        switch event {
        case .claudeMissing:
            return .awaitClaude(seconds: rules.setupRecheck)
        case .waited:
            return next()
        case .compacted(let ok, let random):
            return ok ? next() : failure("prompt too long even after compaction", fresh: true, random: random)
        case .turnEnded(let outcome, let ending, let now, let random):
            return turnEnded(outcome, ending, now: now, random: random)
        }
    }

    /// The next turn; a fresh session stays asked for until a turn has run with it.
    private func next() -> Action { .runTurn(fresh: freshNext) }

    private mutating func turnEnded(_ outcome: TurnOutcome, _ ending: Ending, now: Double, random: Double) -> Action {
        freshNext = false // the turn ran, in a fresh session if one was asked for
        switch outcome {
        case .ok:
            return .ack
        case .rateLimited(let until, let window):
            // Never resume in the past, never busy-loop: at least a second, plus jitter.
            var resume = max(now + 1, until ?? now + rules.rateLimitReprobe) + random * max(0, rules.rateLimitJitter)
            // An operator's cap on one park: re-probe the limit sooner than its reset.
            if let cap = rules.parkCap { resume = min(resume, now + cap) }
            let detail = until == nil ? "limit hit; no reset time given, re-probing in an hour" : "limit hit; resuming after the reset"
            return .wait(seconds: resume - now, Report(.rateLimited, until: resume, window: window, detail: detail))
        case .promptTooLong:
            guard compacted else {
                compacted = true
                return .compact
            }
            return failure("prompt too long even after compaction", fresh: true, random: random)
        case .transient(let why):
            transient += 1
            guard transient > rules.transientRetries else {
                let wait = rules.transientBackoff.delay(attempt: transient, random: random)
                return .wait(seconds: wait, Report(.backoff, detail: "transient API error, retrying in \(Int(wait)) s: \(why.prefix(120))"))
            }
            // A run of transient errors counts as one failed turn.
            transient = 0
            return failure(why, random: random)
        case .needsBilling(let why):
            // Retrying only burns requests: wait for the operator, re-checking rarely.
            return .waitForResume(seconds: rules.billingRecheck, Report(.needsBilling,
                detail: "\(why.prefix(160)) — add credit or raise the spending limit, then `hive resume \(rules.agent)`"))
        case .needsLogin(let why):
            return .wait(seconds: rules.setupRecheck, Report(.needsLogin,
                detail: "\(why.prefix(160)) — store a credential with `hive login` (or export ANTHROPIC_API_KEY before hive up), then `hive restart \(rules.agent)`"))
        case .failed(let why):
            // What the stream said decides (a limit still parks); a run the operator or the timeout
            // stopped fails, and its reason says which.
            switch ending {
            case .cancelled: return failure("cancelled by the operator", random: random)
            case .timedOut(let seconds): return failure("timed out after \(Int(seconds)) s", random: random)
            case .finished: return failure(why, random: random)
            }
        }
    }

    /// One more failed turn: dead-letter at the limit, else back off and retry.
    private mutating func failure(_ reason: String, fresh: Bool = false, random: Double) -> Action {
        failures += 1
        if fresh { freshNext = true }
        if failures >= rules.maxFailures {
            return .deadLetter(reason: "\(failures) failed turns; last: \(reason.prefix(500))")
        }
        let wait = rules.failureBackoff.delay(attempt: failures, random: random)
        return .wait(seconds: wait, Report(.backoff, detail: "turn failed (\(failures)/\(rules.maxFailures)), retrying in \(Int(wait)) s: \(reason.prefix(120))"))
    }
}


extension HarnessConfig {
    /// The turn machine's rules from this config.
    public var turnRules: TurnMachine.Rules {
        var r = TurnMachine.Rules()
        r.maxFailures = maxFailures
        r.transientRetries = transientRetries
        r.failureBackoff = failureBackoff
        r.transientBackoff = transientBackoff
        r.rateLimitReprobe = rateLimitReprobe
        r.rateLimitJitter = rateLimitJitter
        r.parkCap = parkCap
        r.setupRecheck = setupRecheck
        r.billingRecheck = billingRecheck
        r.agent = name.rawValue
        return r
    }
}
