import Foundation

// The requests only an agent's own socket takes (its harness and its `hive mcp`).

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
