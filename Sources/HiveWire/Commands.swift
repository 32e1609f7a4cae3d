import Foundation

/// One request kind on a hive socket: a Codable body tagged on the wire by `cmd`, with its reply type.
public protocol HiveCommand: Codable, Sendable, Equatable {
    associatedtype Reply: Codable & Sendable
    /// The wire tag, snake_case.
    static var cmd: String { get }
}

/// A message as the sockets show it. `recv`, `recent` and `inbox` all return this shape.
public struct MessageView: Codable, Sendable, Equatable {
    public var id: Int64
    public var from: String
    public var to: String
    public var body: String
    /// Unix seconds.
    public var sentAt: Double
    @Nullable public var deliveredAt: Double?
    @Nullable public var ackedAt: Double?
    @Nullable public var inReplyTo: Int64?
    /// This copy was one of a `*` send; it may need no action from the recipient.
    public var broadcast: Bool
    /// This message was handed out before, put back by `requeue_inflight`, and may already be handled.
    public var redelivered: Bool
    public var state: MessageState
    /// Why the harness gave up on it, for a dead letter.
    @Nullable public var deadReason: String?

    public init(id: Int64, from: String, to: String, body: String, sentAt: Double, deliveredAt: Double?,
                ackedAt: Double?, inReplyTo: Int64?, broadcast: Bool, redelivered: Bool, state: MessageState,
                deadReason: String? = nil) {
        self.id = id; self.from = from; self.to = to; self.body = body; self.sentAt = sentAt
        self.deliveredAt = deliveredAt; self.ackedAt = ackedAt; self.inReplyTo = inReplyTo
        self.broadcast = broadcast; self.redelivered = redelivered; self.state = state; self.deadReason = deadReason
    }
}

// MARK: - Commands shared by agent and admin sockets

/// Send a message. The sender is the socket's identity; there is no field to name another.
public struct SendCommand: HiveCommand {
    public static let cmd = "send"
    public var to: String
    public var body: String
    public var inReplyTo: Int64?
    public init(to: String, body: String, inReplyTo: Int64? = nil) { self.to = to; self.body = body; self.inReplyTo = inReplyTo }

    public struct Reply: Codable, Sendable, Equatable {
        /// One id per stored row: one for a direct send, one per recipient for `*`.
        public var ids: [Int64]
        public var recipients: [String]
        /// The `in_reply_to` that was kept, if any.
        @Nullable public var inReplyTo: Int64?
        /// Why a given `in_reply_to` was dropped (the message was still sent).
        @Nullable public var inReplyToDropped: String?
        public init(ids: [Int64], recipients: [String], inReplyTo: Int64?, inReplyToDropped: String?) {
            self.ids = ids; self.recipients = recipients; self.inReplyTo = inReplyTo; self.inReplyToDropped = inReplyToDropped
        }
    }
}

// MARK: - Agent socket

/// Pop up to `max` pending messages, parking up to `wait_seconds` when there are none.
public struct RecvCommand: HiveCommand {
    public static let cmd = "recv"
    public var waitSeconds: Double?
    public var max: Int?
    public init(waitSeconds: Double? = nil, max: Int? = nil) { self.waitSeconds = waitSeconds; self.max = max }

    public struct Reply: Codable, Sendable, Equatable {
        public var messages: [MessageView]
        /// Pending messages still waiting after this pop.
        public var unread: Int
        public init(messages: [MessageView], unread: Int) { self.messages = messages; self.unread = unread }
    }
}

/// Mark messages consumed by a finished turn as acked.
public struct AckTurnCommand: HiveCommand {
    public static let cmd = "ack_turn"
    public var ids: [Int64]
    /// Also ack every message of this agent still in flight: what the turn read through the MCP `recv`
    /// tool besides the message that woke it.
    public var allInflight: Bool?
    public init(ids: [Int64], allInflight: Bool? = nil) { self.ids = ids; self.allInflight = allInflight }

    public struct Skipped: Codable, Sendable, Equatable {
        public var id: Int64
        public var reason: String
        public init(id: Int64, reason: String) { self.id = id; self.reason = reason }
    }
    public struct Reply: Codable, Sendable, Equatable {
        /// Ids now acked (including ones that already were: acking is idempotent).
        public var acked: [Int64]
        /// Ids that could not be acked, with the reason.
        public var skipped: [Skipped]
        public init(acked: [Int64], skipped: [Skipped]) { self.acked = acked; self.skipped = skipped }
    }
}

/// Put every delivered-but-unacked message of this agent back to pending, flagged redelivered.
/// A harness calls it when it starts.
public struct RequeueInflightCommand: HiveCommand {
    public static let cmd = "requeue_inflight"
    /// Ids to leave in flight: the message a harness is still retrying.
    public var keep: [Int64]?
    public init(keep: [Int64]? = nil) { self.keep = keep }
    public struct Reply: Codable, Sendable, Equatable {
        public var requeued: Int
        public init(requeued: Int) { self.requeued = requeued }
    }
}

/// The agent's own counters.
public struct StatusCommand: HiveCommand {
    public static let cmd = "status"
    public init() {}
    public struct Reply: Codable, Sendable, Equatable {
        public var name: String
        /// Pending (not yet delivered) messages.
        public var unread: Int
        /// Delivered, not yet acked.
        public var inflight: Int
        /// Reminders set and not yet fired.
        public var pendingReminders: Int
        public init(name: String, unread: Int, inflight: Int, pendingReminders: Int = 0) {
            self.name = name; self.unread = unread; self.inflight = inflight; self.pendingReminders = pendingReminders
        }
    }
}

/// The latest messages this agent sent or received, newest first.
public struct RecentCommand: HiveCommand {
    public static let cmd = "recent"
    public var limit: Int?
    public init(limit: Int? = nil) { self.limit = limit }
    public struct Reply: Codable, Sendable, Equatable {
        public var messages: [MessageView]
        public init(messages: [MessageView]) { self.messages = messages }
    }
}

/// Which agent this socket belongs to.
public struct WhoamiCommand: HiveCommand {
    public static let cmd = "whoami"
    public init() {}
    public struct Reply: Codable, Sendable, Equatable {
        public var name: String
        public var role: Role
        public init(name: String, role: Role) { self.name = name; self.role = role }
    }
}

/// Give up on messages that keep failing: they move to `dead` with the reason, the manager is told.
public struct DeadLetterCommand: HiveCommand {
    public static let cmd = "dead_letter"
    public var ids: [Int64]
    public var reason: String
    public init(ids: [Int64], reason: String) { self.ids = ids; self.reason = reason }
    public struct Reply: Codable, Sendable, Equatable {
        public var dead: [Int64]
        public var skipped: [AckTurnCommand.Skipped]
        public init(dead: [Int64], skipped: [AckTurnCommand.Skipped]) { self.dead = dead; self.skipped = skipped }
    }
}

/// The harness tells core what it is doing, for `hive ls` and the dashboard.
public struct ReportStateCommand: HiveCommand {
    public static let cmd = "report_state"
    /// One of ``AgentState/harnessStates``.
    public var state: AgentState
    /// Unix seconds, when `state` is `rate_limited`.
    public var rateLimitedUntil: Double?
    /// One line for a person: what went wrong or what to do.
    public var detail: String?
    public var model: String?
    /// The Claude Code version of the agent's last turn.
    public var cliVersion: String?
    /// With `rate_limited`: the window the CLI named (`five_hour`, `seven_day`, `seven_day_opus`, ...).
    public var limitWindow: String?
    public init(state: AgentState, rateLimitedUntil: Double? = nil, detail: String? = nil, model: String? = nil, cliVersion: String? = nil,
                limitWindow: String? = nil) {
        self.state = state; self.rateLimitedUntil = rateLimitedUntil; self.detail = detail; self.model = model
        self.cliVersion = cliVersion; self.limitWindow = limitWindow
    }
    public struct Reply: Codable, Sendable, Equatable { public init() {} }

    private enum CodingKeys: String, CodingKey { case state, rateLimitedUntil, detail, model, cliVersion, limitWindow }

    /// A state a harness may not report (`destroyed`, say, is core's to show) is refused here, at the
    /// edge, with the list of those it may.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let raw = try c.decode(String.self, forKey: .state)
        guard let state = AgentState(rawValue: raw), AgentState.harnessStates.contains(state) else {
            let known = AgentState.harnessStates.map(\.rawValue).sorted().joined(separator: ", ")
            throw RequestError("unknown state '\(raw.prefix(32))' (one of \(known))")
        }
        self.state = state
        rateLimitedUntil = try c.decodeIfPresent(Double.self, forKey: .rateLimitedUntil)
        detail = try c.decodeIfPresent(String.self, forKey: .detail)
        model = try c.decodeIfPresent(String.self, forKey: .model)
        cliVersion = try c.decodeIfPresent(String.self, forKey: .cliVersion)
        limitWindow = try c.decodeIfPresent(String.self, forKey: .limitWindow)
    }

    /// What an agent may report: a time that is a time, short texts without control characters (they
    /// reach the operator's terminal and page). Checked before core keeps anything.
    public func checked() throws(RequestError) -> ReportStateCommand {
        if let t = rateLimitedUntil, !(t.isFinite && t >= 0 && t <= 1e11) { throw RequestError("report_state: rate_limited_until must be unix seconds") }
        guard (detail?.utf8.count ?? 0) <= 500 else { throw RequestError("report_state: detail is longer than 500 bytes") }
        if let m = model, !(m.utf8.count <= 100 && m.allSatisfy({ $0.isLetter || $0.isNumber || "._:-[]".contains($0) })) {
            throw RequestError("report_state: model is not a model name")
        }
        if let w = limitWindow, !(w.utf8.count <= 40 && w.allSatisfy({ ($0.isLetter && $0.isLowercase) || $0.isNumber || $0 == "_" })) {
            throw RequestError("report_state: limit_window is not a window name")
        }
        if let v = cliVersion, !(v.utf8.count <= 32 && v.allSatisfy({ $0.isNumber || $0 == "." || $0.isLetter || $0 == "-" })) {
            throw RequestError("report_state: cli_version is not a version")
        }
        var c = self
        c.detail = detail.map { String($0.unicodeScalars.map { CharacterSet.controlCharacters.contains($0) ? " " : Character($0) }) }
        return c
    }
}

/// Ask for one more turn after this one: a `system` message to yourself.
public struct RequestNextTurnCommand: HiveCommand {
    public static let cmd = "request_next_turn"
    public var reason: String?
    public init(reason: String? = nil) { self.reason = reason }
    public struct Reply: Codable, Sendable, Equatable {
        public var id: Int64
        public init(id: Int64) { self.id = id }
    }
}

/// Start the next turn in a fresh claude session instead of continuing (one shot).
public struct NewSessionCommand: HiveCommand {
    public static let cmd = "new_session"
    public init() {}
    public struct Reply: Codable, Sendable, Equatable { public init() {} }
}

/// A queued reminder, as `reminders` lists it.
public struct ReminderView: Codable, Sendable, Equatable {
    public var id: Int64
    public var agent: String
    public var body: String
    public var filePath: String?
    public var createdAt: Double
    public var dueAt: Double
    public var state: ReminderState
    public init(id: Int64, agent: String, body: String, filePath: String?, createdAt: Double, dueAt: Double, state: ReminderState) {
        self.id = id; self.agent = agent; self.body = body; self.filePath = filePath; self.createdAt = createdAt
        self.dueAt = dueAt; self.state = state
    }
}

/// Put a message into your own inbox later (sender `reminder`). Exactly one of `delay_seconds` and
/// `at_unix`. Texts over the message limit are saved under your state dir and the reminder points there.
public struct RemindCommand: HiveCommand {
    public static let cmd = "remind"
    public var message: String
    public var delaySeconds: Double?
    public var atUnix: Double?
    /// A path to mention in the reminder (a file to look at then); not read by the hive.
    public var filePath: String?
    public init(message: String, delaySeconds: Double? = nil, atUnix: Double? = nil, filePath: String? = nil) {
        self.message = message; self.delaySeconds = delaySeconds; self.atUnix = atUnix; self.filePath = filePath
    }
    public struct Reply: Codable, Sendable, Equatable {
        public var id: Int64
        /// Unix seconds.
        public var dueAt: Double
        /// Your reminders now waiting to fire.
        public var pending: Int
        /// Where the full text went when it was too long for a message.
        public var spilledTo: String?
        public init(id: Int64, dueAt: Double, pending: Int, spilledTo: String?) {
            self.id = id; self.dueAt = dueAt; self.pending = pending; self.spilledTo = spilledTo
        }
    }
}

/// Delivery counts of the reminders this agent set, over the last `since_secs` seconds.
public struct ReminderRollupCommand: HiveCommand {
    public static let cmd = "reminder_rollup"
    public var sinceSecs: Double
    public init(sinceSecs: Double) { self.sinceSecs = sinceSecs }
    public struct Reply: Codable, Sendable, Equatable {
        public var attempts: Int
        public var successes: Int
        public var failures: Int
        public init(attempts: Int, successes: Int, failures: Int) {
            self.attempts = attempts; self.successes = successes; self.failures = failures
        }
    }
}

// MARK: - Admin socket

/// One line of `hive ls`.
public struct AgentSummary: Codable, Sendable, Equatable {
    public var name: String
    /// What the agent's harness last reported while connected; `running` when something is connected
    /// that reports nothing; the supervisor's state (`stopped`, `crashed`, ...) when nothing is;
    /// `destroyed` for a tombstone.
    public var state: AgentState
    public var unread: Int
    public var inflight: Int
    /// Messages the harness gave up on.
    public var deadLetters: Int
    /// Unix seconds when a rate limit lifts, or null.
    @Nullable public var rateLimitedUntil: Double?
    /// One line for a person, from the harness or the supervisor.
    @Nullable public var detail: String?
    public var createdAt: Double
    /// The running cage's isolation and whether its limits are enforced, or null when none runs.
    @Nullable public var cage: String?
    /// What the agent is for (its config's description).
    @Nullable public var description: String?
    /// The Claude Code version of its last turn, as its harness reported it.
    @Nullable public var cliVersion: String?
    public init(name: String, state: AgentState, unread: Int, inflight: Int, deadLetters: Int = 0,
                rateLimitedUntil: Double? = nil, detail: String? = nil, createdAt: Double) {
        self.name = name; self.state = state; self.unread = unread; self.inflight = inflight
        self.deadLetters = deadLetters; self.rateLimitedUntil = rateLimitedUntil; self.detail = detail; self.createdAt = createdAt
    }
}

/// Every registered agent, tombstones included.
public struct ListCommand: HiveCommand {
    public static let cmd = "list"
    public init() {}
    public struct Reply: Codable, Sendable, Equatable {
        public var agents: [AgentSummary]
        public init(agents: [AgentSummary]) { self.agents = agents }
    }
}

/// Register a new agent: its directories and its socket appear at once.
public struct SpawnCommand: HiveCommand {
    public static let cmd = "spawn"
    public var name: String
    public init(name: String) { self.name = name }
    public struct Reply: Codable, Sendable, Equatable {
        public var name: String
        /// Host path of the agent's socket.
        public var socket: String
        public init(name: String, socket: String) { self.name = name; self.socket = socket }
    }
}

/// Remove an agent's socket and leave a tombstone; `purge` also deletes its directories and record.
public struct DestroyCommand: HiveCommand {
    public static let cmd = "destroy"
    public var name: String
    public var purge: Bool?
    public init(name: String, purge: Bool? = nil) { self.name = name; self.purge = purge }
    public struct Reply: Codable, Sendable, Equatable {
        public var name: String
        public var purged: Bool
        public init(name: String, purged: Bool) { self.name = name; self.purged = purged }
    }
}

/// Lifecycle of an agent's harness: `start`, `stop` (kept across core restarts until started again),
/// `restart` (one agent, or all with the manager first), `revive` (a tombstone comes back).
public struct StartCommand: HiveCommand {
    public static let cmd = "start"
    public var name: String
    public init(name: String) { self.name = name }
    public struct Reply: Codable, Sendable, Equatable {
        public var name: String
        public var state: AgentState
        public init(name: String, state: AgentState) { self.name = name; self.state = state }
    }
}

public struct StopCommand: HiveCommand {
    public static let cmd = "stop"
    public var name: String
    public init(name: String) { self.name = name }
    public typealias Reply = StartCommand.Reply
}

public struct RestartCommand: HiveCommand {
    public static let cmd = "restart"
    /// One agent; omit it and set `all` to restart every live agent (the manager first).
    public var name: String?
    public var all: Bool?
    public init(name: String? = nil, all: Bool? = nil) { self.name = name; self.all = all }
    public struct Reply: Codable, Sendable, Equatable {
        /// In the order they were restarted.
        public var restarted: [String]
        public init(restarted: [String]) { self.restarted = restarted }
    }
}

public struct ReviveCommand: HiveCommand {
    public static let cmd = "revive"
    public var name: String
    public init(name: String) { self.name = name }
    public typealias Reply = StartCommand.Reply
}

/// Where the hive lives and how it runs, for tools that need the root (e.g. `hive stats`).
public struct InfoCommand: HiveCommand {
    public static let cmd = "info"
    public init() {}
    public struct Reply: Codable, Sendable, Equatable {
        public var root: String
        public var runDir: String
        public var cage: String
        public var synchronous: String
        /// The forge's base URL, or null when this core runs no forge.
        public var forge: String?
        public init(root: String, runDir: String, cage: String, synchronous: String, forge: String? = nil) {
            self.root = root; self.runDir = runDir; self.cage = cage; self.synchronous = synchronous; self.forge = forge
        }
    }
}

/// Reminders waiting to fire, soonest first, for one agent or all.
public struct RemindersCommand: HiveCommand {
    public static let cmd = "reminders"
    public var agent: String?
    public init(agent: String? = nil) { self.agent = agent }
    public struct Reply: Codable, Sendable, Equatable {
        public var reminders: [ReminderView]
        public init(reminders: [ReminderView]) { self.reminders = reminders }
    }
}

/// Cancel a reminder that has not fired yet.
public struct CancelReminderCommand: HiveCommand {
    public static let cmd = "cancel_reminder"
    public var id: Int64
    public init(id: Int64) { self.id = id }
    public struct Reply: Codable, Sendable, Equatable {
        public var id: Int64
        public init(id: Int64) { self.id = id }
    }
}

/// Messages addressed to the operator, newest first. Showing them marks them read (acked).
public struct InboxCommand: HiveCommand {
    public static let cmd = "inbox"
    public var limit: Int?
    public init(limit: Int? = nil) { self.limit = limit }
    public struct Reply: Codable, Sendable, Equatable {
        public var messages: [MessageView]
        public init(messages: [MessageView]) { self.messages = messages }
    }
}
