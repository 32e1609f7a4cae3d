import Foundation

// Every state, role and kind that crosses a process boundary, as a type. Each encodes to the same
// snake_case string the sockets always carried, so the JSON is unchanged (the golden samples in
// Tests/HiveEndToEndTests/Golden prove it); a process that reads one gets a value it can switch over.

/// Where a message is in its life. The broker's rows say it through their timestamps; the machine that
/// moves it is `MessageLifecycle` in HiveBroker.
public enum MessageState: String, Codable, Sendable, Equatable, CaseIterable {
    /// Stored, not yet handed out by `recv`.
    case pending
    /// Handed out by `recv`; a turn is (or was) working on it. Not yet acked.
    case delivered
    /// A turn that consumed it finished successfully.
    case acked
    /// Turns kept failing on it; the harness gave up and recorded why. Never handed out again.
    case dead

    /// Reads the state off a row's timestamps.
    public init(deliveredAt: Double?, ackedAt: Double?, deadAt: Double? = nil) {
        if deadAt != nil { self = .dead } else if ackedAt != nil { self = .acked } else if deliveredAt != nil { self = .delivered } else { self = .pending }
    }
}

/// What `hive ls`, the dashboard and the agent page say an agent is doing. Three voices set it: the
/// harness reports its own (``harnessStates``), core's cage supervisor says what it sees when no harness
/// is connected, and the registry says `destroyed`.
public enum AgentState: String, Codable, Sendable, Equatable, CaseIterable {
    // The harness's own reports.
    case starting, idle, thinking, compacting
    /// A usage limit; `rate_limited_until` says when it lifts.
    case rateLimited = "rate_limited"
    /// Retrying after a failed turn or a transient API error.
    case backoff
    case needsLogin = "needs_login"
    case needsBilling = "needs_billing"
    case claudeMissing = "claude_missing"
    /// The harness lost its agent socket and is reconnecting.
    case disconnected
    // The supervisor's and core's.
    /// Something is connected that reports nothing.
    case running
    case spawning, stopping, stopped, crashed, restarting, destroying
    /// Restarting with its cage rebuilt (a new hive binary, a new config).
    case rebuilding
    /// Parked by the disk watch until its usage falls under the quota.
    case overDiskQuota = "over_disk_quota"
    /// Held by core before a turn that would pass its budget (or the hive's) until the period renews or
    /// the operator raises the cap; messages wait unacked.
    case overBudget = "over_budget"
    /// A tombstone.
    case destroyed
    /// Placed on a node whose heartbeat stopped (a hive on many hosts): its messages wait in its inbox.
    case nodeDown = "node_down"
    /// Stopped while `hive move` carries its directories to another node; it starts there next.
    case moving

    /// What a harness may report about itself; the rest are core's to say.
    public static let harnessStates: Set<AgentState> = [.starting, .idle, .thinking, .compacting, .rateLimited, .backoff,
                                                         .needsLogin, .needsBilling, .claudeMissing, .disconnected]
}

/// What a socket's owner is to the hive.
public enum Role: String, Codable, Sendable, Equatable {
    /// The one agent that edits the others' configs and hears about their troubles.
    case manager
    case agent
}

/// Where a request for the operator's approval is in its life.
public enum ApprovalState: String, Codable, Sendable, Equatable, CaseIterable {
    /// Waiting for the operator.
    case pending
    /// Approved; core is carrying it out (seeding, or validate → render → restart).
    case approved
    /// The operator said no.
    case denied
    /// Carried out: the config repo is seeded, or the commit runs.
    case deployed
    /// Approved but could not be carried out; whatever ran before still runs.
    case failed

    public var isFinal: Bool { self == .denied || self == .deployed || self == .failed }
}

/// What an approval asks for.
public enum ApprovalKind: String, Codable, Sendable, Equatable, CaseIterable {
    /// Seed a config repo for an agent that has none yet.
    case initConfig = "init_config"
    /// Deploy a commit of an agent's config repo.
    case applyCommit = "apply_commit"
}

/// Where a question is in its life: open until answered or until its time runs out.
public enum QuestionState: String, Codable, Sendable, Equatable, CaseIterable {
    case open
    case answered
    case expired
}

/// Where a reminder is in its life.
public enum ReminderState: String, Codable, Sendable, Equatable, CaseIterable {
    /// Waiting for its time.
    case pending
    /// Put into the agent's inbox.
    case delivered
    /// Cancelled before it fired.
    case cancelled
    /// Could not be delivered (the agent is gone); the attempt says why.
    case failed
}

/// What applying an event to one of the hive's state machines says. Every machine (messages,
/// approvals, questions) answers in this shape, and the stores write only `moved`.
public enum Transition<State: Sendable & Equatable>: Sendable, Equatable {
    /// The state changed; write it.
    case moved(to: State)
    /// Nothing to do, and that is fine (acking twice, requeueing something not in flight).
    case unchanged
    /// The event makes no sense in this state; the reason is for the caller's reply.
    case refused(String)

    /// The new state, when there is one.
    public var next: State? {
        if case .moved(let s) = self { return s }
        return nil
    }
}

/// How a turn ended, as the harness's turn machine reads it from claude's stream and exit.
public enum TurnOutcome: Sendable, Equatable {
    case ok
    /// Park until the limit lifts (unix seconds), or re-probe later when the time is unknown. `window` is
    /// the limit's kind when the CLI said (`five_hour`, `seven_day`, a model-scoped `seven_day_opus`, ...).
    case rateLimited(until: Double?, window: String? = nil)
    case promptTooLong
    /// Overload, throttling, a dropped connection: retry soon, do not count it against the message.
    case transient(String)
    case needsLogin(String)
    /// Out of credit or a spending cap of $0: only the operator can fix it; no retries until then.
    case needsBilling(String)
    case failed(String)

    /// The `result_kind` column of turn stats.
    public var kind: TurnResultKind {
        switch self {
        case .ok: return .ok
        case .rateLimited: return .rateLimited
        case .promptTooLong: return .promptTooLong
        case .transient, .needsLogin, .needsBilling, .failed: return .failed
        }
    }
}

/// A turn's result as turn stats and the agent's page record it.
public enum TurnResultKind: String, Codable, Sendable, Equatable, CaseIterable {
    case ok
    case rateLimited = "rate_limited"
    case promptTooLong = "prompt_too_long"
    case failed
}

/// A state prints as it is spelled on the wire (`rate_limited`, not `rateLimited`), in logs, notices
/// and tables alike.
public protocol WireSpelled: RawRepresentable, CustomStringConvertible where RawValue == String {}
extension WireSpelled { public var description: String { rawValue } }
extension MessageState: WireSpelled {}
extension AgentState: WireSpelled {}
extension Role: WireSpelled {}
extension ApprovalState: WireSpelled {}
extension ApprovalKind: WireSpelled {}
extension QuestionState: WireSpelled {}
extension ReminderState: WireSpelled {}
extension TurnResultKind: WireSpelled {}
