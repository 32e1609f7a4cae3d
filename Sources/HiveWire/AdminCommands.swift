import Foundation

// The operator's requests on the admin socket (`hive` verbs as root or the hive's group).

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
    /// What it spent today (host time zone), priced by the hive's table; null for a tombstone.
    @Nullable public var todayUsd: Double?
    /// Unix seconds since when its harness (or, with none connected, the supervisor) has been in `state`,
    /// by core's clock: how long a turn has run. Null when core has not seen it change.
    @Nullable public var stateSince: Double?
    /// The node it runs on, in a hive on many hosts; null on one host.
    @Nullable public var node: String?
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
    /// In a hive on many hosts: the node to place it on (default: the one with the most room).
    public var node: String?
    public init(name: String, node: String? = nil) { self.name = name; self.node = node }
    public struct Reply: Codable, Sendable, Equatable {
        public var name: String
        /// Host path of the agent's socket (on its node's host).
        public var socket: String
        /// The node it was placed on, in a hive on many hosts.
        @Nullable public var node: String?
        public init(name: String, socket: String, node: String? = nil) { self.name = name; self.socket = socket; self.node = node }
    }
}

/// The hive's nodes (a hive on many hosts; empty on one host).
public struct NodesCommand: HiveCommand {
    public static let cmd = "nodes"
    public init() {}
    public struct Reply: Codable, Sendable, Equatable {
        public var nodes: [NodeView]
        /// The node that answered.
        @Nullable public var here: String?
        public init(nodes: [NodeView], here: String?) { self.nodes = nodes; self.here = here }
    }
}

/// Moves an agent to another node of a hive on many hosts: its cage stops, its state and harness
/// directories go to `node` (streamed between the nodes, checked), and it starts there. Its inbox stays
/// where it is, in the database.
public struct MoveCommand: HiveCommand {
    public static let cmd = "move"
    public var name: String
    public var node: String
    public init(name: String, node: String) { self.name = name; self.node = node }
    public struct Reply: Codable, Sendable, Equatable {
        public var name: String
        public var from: String
        public var to: String
        /// The size of what was carried (a tar of its directories).
        public var bytes: Int64
        public var seconds: Double
        public init(name: String, from: String, to: String, bytes: Int64, seconds: Double) {
            self.name = name; self.from = from; self.to = to; self.bytes = bytes; self.seconds = seconds
        }
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

/// `metrics`: the Prometheus text exposition of core's metrics (admin and web sockets; `hive web` serves
/// it at /metrics with its own, and `hive core --metrics-listen` on a loopback port).
public struct MetricsCommand: HiveCommand {
    public static let cmd = "metrics"
    /// On the web socket, the scraper's bearer token (`<root>/metrics.token`), checked by core; the
    /// operator's admin socket needs none.
    @Nullable public var token: String?
    public init(token: String? = nil) { self.token = token }
    public struct Reply: Codable, Sendable, Equatable {
        public var text: String
        public init(text: String) { self.text = text }
    }
}
