import Foundation

// MARK: - Approvals (admin socket: pending, approve, deny; manager socket: request_init_config, request_apply_commit)

/// One request for the operator's approval.
public struct ApprovalView: Codable, Sendable, Equatable {
    public var id: Int64
    public var kind: ApprovalKind
    public var agent: String
    /// The full commit hash, for `apply_commit`.
    @Nullable public var commit: String?
    @Nullable public var description: String?
    /// What the commit changes against what is deployed (capped), for `apply_commit`.
    @Nullable public var diff: String?
    public var state: ApprovalState
    /// The operator's note on a denial, or why a deployment failed.
    @Nullable public var note: String?
    public var requestedBy: String
    public var createdAt: Double
    @Nullable public var resolvedAt: Double?

    public init(id: Int64, kind: ApprovalKind, agent: String, commit: String?, description: String?, diff: String?, state: ApprovalState,
                note: String?, requestedBy: String, createdAt: Double, resolvedAt: Double?) {
        self.id = id; self.kind = kind; self.agent = agent; self.commit = commit; self.description = description
        self.diff = diff; self.state = state; self.note = note; self.requestedBy = requestedBy
        self.createdAt = createdAt; self.resolvedAt = resolvedAt
    }
}

/// Approvals waiting for the operator (and, with `all`, the most recent resolved ones too).
public struct PendingCommand: HiveCommand {
    public static let cmd = "pending"
    public var all: Bool?
    public init(all: Bool? = nil) { self.all = all }
    public struct Reply: Codable, Sendable, Equatable {
        public var approvals: [ApprovalView]
        public init(approvals: [ApprovalView]) { self.approvals = approvals }
    }
}

/// Approve a pending request: it is carried out before the reply (seed, or validate → render → restart).
public struct ApproveCommand: HiveCommand {
    public static let cmd = "approve"
    public var id: Int64
    public init(id: Int64) { self.id = id }
    public struct Reply: Codable, Sendable, Equatable {
        public var approval: ApprovalView
        public init(approval: ApprovalView) { self.approval = approval }
    }
}

public struct DenyCommand: HiveCommand {
    public static let cmd = "deny"
    public var id: Int64
    public var note: String?
    public init(id: Int64, note: String? = nil) { self.id = id; self.note = note }
    public typealias Reply = ApproveCommand.Reply
}

/// Manager: ask the operator to seed a config repo for a new agent.
public struct RequestInitConfigCommand: HiveCommand {
    public static let cmd = "request_init_config"
    public var name: String
    public var description: String?
    public init(name: String, description: String? = nil) { self.name = name; self.description = description }
    public typealias Reply = ApproveCommand.Reply
}

/// Manager: ask the operator to deploy a commit of an agent's proposed config repo.
public struct RequestApplyCommitCommand: HiveCommand {
    public static let cmd = "request_apply_commit"
    public var agent: String
    /// 7 to 40 hex digits of a commit on a branch of `agents/<agent>/config`.
    public var commitRef: String
    public var description: String?
    public init(agent: String, commitRef: String, description: String? = nil) {
        self.agent = agent; self.commitRef = commitRef; self.description = description
    }
    public typealias Reply = ApproveCommand.Reply
}

// MARK: - Lifecycle additions

/// Re-render an agent's cage from its applied config and restart it (`all`: every live agent, the manager first).
public struct RebuildCommand: HiveCommand {
    public static let cmd = "rebuild"
    public var name: String?
    public var all: Bool?
    public init(name: String? = nil, all: Bool? = nil) { self.name = name; self.all = all }
    public typealias Reply = RestartCommand.Reply
}

/// Manager: the idempotent rebuild of one other agent.
public struct UpdateCommand: HiveCommand {
    public static let cmd = "update"
    public var name: String
    public init(name: String) { self.name = name }
    public typealias Reply = RestartCommand.Reply
}

/// The last lines a cage wrote (its harness log).
public struct LogsCommand: HiveCommand {
    public static let cmd = "logs"
    public var name: String
    public var lines: Int?
    public init(name: String, lines: Int? = nil) { self.name = name; self.lines = lines }
    public struct Reply: Codable, Sendable, Equatable {
        public var name: String
        public var lines: [String]
        public init(name: String, lines: [String]) { self.name = name; self.lines = lines }
    }
}

/// What the hive tells the manager about, as the first word of a `system` message: `<kind>: <text>`.
public enum SystemNotice: String, Sendable, CaseIterable {
    case approvalResolved = "approval_resolved"
    case configReady = "config_ready"
    case spawned
    case rebuilt
    case containerCrash = "container_crash"
    case deadLetter = "dead_letter"
    case diskQuota = "disk_quota"
    /// An agent was held over its budget (or the hive's), warned near one, or resumed.
    case budget
    case restarting
    /// An agent moved to another node (`hive move`).
    case moved

    /// The message body: the kind, a colon, the text (capped to the message limit).
    public func body(_ text: String) -> String { WireLimits.fit("\(rawValue): \(text)") }
}

// MARK: - Forge

/// One repo of the hive's forge, with its newest commit.
public struct ForgeRepoView: Codable, Sendable, Equatable {
    public var fullName: String
    public var description: String
    public var isPrivate: Bool
    public var cloneURL: String
    @Nullable public var lastCommit: String?
    @Nullable public var lastMessage: String?
    @Nullable public var lastCommitAt: Double?
    public init(fullName: String, description: String, isPrivate: Bool, cloneURL: String, lastCommit: String?, lastMessage: String?, lastCommitAt: Double?) {
        self.fullName = fullName; self.description = description; self.isPrivate = isPrivate; self.cloneURL = cloneURL
        self.lastCommit = lastCommit; self.lastMessage = lastMessage; self.lastCommitAt = lastCommitAt
    }
    private enum CodingKeys: String, CodingKey {
        case fullName, description, isPrivate = "private", cloneURL = "cloneUrl", lastCommit, lastMessage, lastCommitAt
    }
}

/// Every repo on the forge (the operator sees them all).
public struct ForgeReposCommand: HiveCommand {
    public static let cmd = "forge_repos"
    public init() {}
    public struct Reply: Codable, Sendable, Equatable {
        /// Where the forge serves, e.g. `http://127.0.0.1:7001/forge`.
        public var url: String
        public var repos: [ForgeRepoView]
        public init(url: String, repos: [ForgeRepoView]) { self.url = url; self.repos = repos }
    }
}

/// Operator: the model an agent's turns use instead of its config's, from its next turn on; an empty or
/// missing `model` goes back to the config's. Deploying a new config for the agent clears it too.
public struct SetModelCommand: HiveCommand {
    public static let cmd = "set_model"
    public var agent: String
    public var model: String?
    public init(agent: String, model: String?) { self.agent = agent; self.model = model }
    public struct Reply: Codable, Sendable, Equatable {
        public var agent: String
        /// The override now in force, or null.
        @Nullable public var model: String?
        /// What the agent's config says.
        public var configModel: String
        public init(agent: String, model: String?, configModel: String) { self.agent = agent; self.model = model; self.configModel = configModel }
    }
}

/// The harness, before each turn: what the operator changed for this agent at runtime.
public struct TurnSettingsCommand: HiveCommand {
    public static let cmd = "turn_settings"
    public init() {}
    public struct Reply: Codable, Sendable, Equatable {
        /// The model to use instead of the config's, or null.
        @Nullable public var model: String?
        /// How many times the operator said `hive resume` for this agent since core started: a harness
        /// waiting for the operator (billing) goes on when it changes.
        @Nullable public var resumes: Int?
        /// The agent asked (`new_session`) to start its next turn in a fresh session.
        @Nullable public var freshSession: Bool?
        public init(model: String?, resumes: Int = 0, freshSession: Bool = false) {
            self.model = model; self.resumes = resumes; self.freshSession = freshSession
        }
    }
}

/// Operator: agents waiting for the operator (`needs_billing`) try again now. One agent, or every agent.
public struct ResumeCommand: HiveCommand {
    public static let cmd = "resume"
    public var agent: String?
    public var all: Bool?
    public init(agent: String?, all: Bool) { self.agent = agent; self.all = all }
    public struct Reply: Codable, Sendable, Equatable {
        public var resumed: [String]
        public init(resumed: [String]) { self.resumed = resumed }
    }
}
