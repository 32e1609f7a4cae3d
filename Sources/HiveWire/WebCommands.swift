import Foundation

// The privsep web surface (`<run-dir>/web.sock`): what `hive web` may ask core for. Narrow and named:
// every agent name and relative path in these requests is checked by core itself.

/// Who the web process is: the uid and gid `hive web` runs as when started as root, the group that may
/// use `web.sock` and the agents' `web.sock`s.
public enum WebSurface {
    public static let uid: UInt32 = 19_999
}

/// Everything the dashboard shows at once, and the feed position it reflects.
public struct SnapshotCommand: HiveCommand {
    public static let cmd = "snapshot"
    public init() {}
    public struct Reply: Codable, Sendable, Equatable {
        /// Apply events with a greater `seq` on top of this snapshot: no gaps, no duplicates.
        public var seq: Int64
        public var agents: [AgentSummary]
        public var approvals: [ApprovalView]
        /// The newest messages of the hive (all parties), newest first; listing marks nothing read.
        public var messages: [MessageView]
        public var reminders: [ReminderView]
        /// Open questions (the operator's first), then the ten most recently closed.
        public var questions: [QuestionView]
        public var forge: String?
        /// What the hive spent today, over 7 days and this month, per agent and per model; and every budget.
        @Nullable public var spend: SpendCommand.Reply?
        public var budgets: [BudgetView] = []
        /// A hive on many hosts: its nodes with their heartbeats (empty on one host).
        public var nodes: [NodeView] = []
        public init(seq: Int64, agents: [AgentSummary], approvals: [ApprovalView], messages: [MessageView], reminders: [ReminderView],
                    questions: [QuestionView], forge: String?, spend: SpendCommand.Reply? = nil, budgets: [BudgetView] = [], nodes: [NodeView] = []) {
            self.seq = seq; self.agents = agents; self.approvals = approvals; self.messages = messages; self.reminders = reminders
            self.questions = questions; self.forge = forge; self.spend = spend; self.budgets = budgets; self.nodes = nodes
        }
    }
}

/// One change on the dashboard's live feed.
public struct DashboardEvent: Codable, Sendable, Equatable {
    public var seq: Int64
    public var change: Change

    /// What changed. On the wire: `kind` names the case, and the payload sits under the key of the
    /// same name (`message_state` carries its message under `message`).
    public enum Change: Sendable, Equatable {
        /// A new message.
        case message(MessageView)
        /// A message moved on (delivered, acked, dead).
        case messageState(MessageView)
        /// The agent list changed.
        case agents([AgentSummary])
        /// The open approvals or a resolution changed.
        case approvals([ApprovalView])
        case reminders([ReminderView])
        case questions([QuestionView])

        public var kind: String {
            switch self {
            case .message: return "message"
            case .messageState: return "message_state"
            case .agents: return "agents"
            case .approvals: return "approvals"
            case .reminders: return "reminders"
            case .questions: return "questions"
            }
        }
    }

    public init(seq: Int64, _ change: Change) { self.seq = seq; self.change = change }

    private enum CodingKeys: String, CodingKey { case seq, kind, message, agents, approvals, reminders, questions }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(seq, forKey: .seq)
        try c.encode(change.kind, forKey: .kind)
        switch change {
        case .message(let m), .messageState(let m): try c.encode(m, forKey: .message)
        case .agents(let a): try c.encode(a, forKey: .agents)
        case .approvals(let a): try c.encode(a, forKey: .approvals)
        case .reminders(let r): try c.encode(r, forKey: .reminders)
        case .questions(let q): try c.encode(q, forKey: .questions)
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        seq = try c.decode(Int64.self, forKey: .seq)
        let kind = try c.decode(String.self, forKey: .kind)
        switch kind {
        case "message": change = .message(try c.decode(MessageView.self, forKey: .message))
        case "message_state": change = .messageState(try c.decode(MessageView.self, forKey: .message))
        case "agents": change = .agents(try c.decode([AgentSummary].self, forKey: .agents))
        case "approvals": change = .approvals(try c.decode([ApprovalView].self, forKey: .approvals))
        case "reminders": change = .reminders(try c.decode([ReminderView].self, forKey: .reminders))
        case "questions": change = .questions(try c.decode([QuestionView].self, forKey: .questions))
        default:
            throw DecodingError.dataCorruptedError(forKey: .kind, in: c, debugDescription: "unknown event kind '\(kind.prefix(32))'")
        }
    }
}

/// Events after `after`, waiting up to `wait_seconds` (at most 30) for the first one.
public struct EventsCommand: HiveCommand {
    public static let cmd = "events"
    public var after: Int64
    public var waitSeconds: Double?
    public init(after: Int64, waitSeconds: Double? = nil) { self.after = after; self.waitSeconds = waitSeconds }
    public struct Reply: Codable, Sendable, Equatable {
        public var seq: Int64
        public var events: [DashboardEvent]
        /// True when `after` is older than the feed keeps: take a fresh snapshot.
        public var reset: Bool
        public init(seq: Int64, events: [DashboardEvent], reset: Bool) { self.seq = seq; self.events = events; self.reset = reset }
    }
}

/// A file in an agent's state dir (`agent` set) or in the shared space (`agent` null), read-only.
public struct ReadFileCommand: HiveCommand {
    public static let cmd = "read_file"
    public var agent: String?
    public var relPath: String
    public init(agent: String?, relPath: String) { self.agent = agent; self.relPath = relPath }
    public struct Reply: Codable, Sendable, Equatable {
        public var path: String
        public var size: Int
        /// The text (UTF-8, at most 1 MiB), or null for a binary file.
        public var text: String?
        public init(path: String, size: Int, text: String?) { self.path = path; self.size = size; self.text = text }
    }
}

/// The config an agent runs with, and the commit it came from (null: defaults).
public struct AgentConfigCommand: HiveCommand {
    public static let cmd = "agent_config"
    public var agent: String
    public init(agent: String) { self.agent = agent }
    public struct Reply: Codable, Sendable, Equatable {
        public var agent: String
        public var config: String
        public var commit: String?
        public init(agent: String, config: String, commit: String?) { self.agent = agent; self.config = config; self.commit = commit }
    }
}

/// Where the dashboard reaches an agent's page (a hive on many hosts): nothing for an agent of this node
/// (its page socket is here); for one on another node, that node's endpoint, the certificate to pin and a
/// ticket, signed by this node, that opens that one agent's page there until `expires`.
public struct PageRouteCommand: HiveCommand {
    public static let cmd = "page_route"
    public var agent: String
    public init(agent: String) { self.agent = agent }
    public struct Reply: Codable, Sendable, Equatable {
        public var agent: String
        @Nullable public var node: String?
        @Nullable public var endpoint: String?
        @Nullable public var certificate: String?
        /// The node that signed the ticket (this one).
        @Nullable public var via: String?
        @Nullable public var ticket: String?
        /// Unix seconds.
        @Nullable public var expires: Double?
        public init(agent: String, node: String? = nil, endpoint: String? = nil, certificate: String? = nil, via: String? = nil,
                    ticket: String? = nil, expires: Double? = nil) {
            self.agent = agent; self.node = node; self.endpoint = endpoint; self.certificate = certificate; self.via = via
            self.ticket = ticket; self.expires = expires
        }
    }
}

/// What `web.sock` accepts: reads, and the operator actions core authorises on its own terms.
public enum WebRequest: Sendable {
    case snapshot(SnapshotCommand)
    case events(EventsCommand)
    case readFile(ReadFileCommand)
    case agentConfig(AgentConfigCommand)
    case logs(LogsCommand)
    case send(SendCommand)
    case approve(ApproveCommand)
    case deny(DenyCommand)
    case start(StartCommand)
    case stop(StopCommand)
    case restart(RestartCommand)
    case revive(ReviveCommand)
    case destroy(DestroyCommand)
    case cancelReminder(CancelReminderCommand)
    case forgeRepos(ForgeReposCommand)
    case answer(AnswerCommand)
    case setModel(SetModelCommand)
    case budget(BudgetCommand)
    case metrics(MetricsCommand)
    case search(SearchCommand)
    case pageRoute(PageRouteCommand)

    public static let table = CommandTable<WebRequest>()
        .with(SnapshotCommand.self, WebRequest.snapshot)
        .with(EventsCommand.self, WebRequest.events)
        .with(ReadFileCommand.self, WebRequest.readFile)
        .with(AgentConfigCommand.self, WebRequest.agentConfig)
        .with(LogsCommand.self, WebRequest.logs)
        .with(SendCommand.self, WebRequest.send)
        .with(ApproveCommand.self, WebRequest.approve)
        .with(DenyCommand.self, WebRequest.deny)
        .with(StartCommand.self, WebRequest.start)
        .with(StopCommand.self, WebRequest.stop)
        .with(RestartCommand.self, WebRequest.restart)
        .with(ReviveCommand.self, WebRequest.revive)
        .with(DestroyCommand.self, WebRequest.destroy)
        .with(CancelReminderCommand.self, WebRequest.cancelReminder)
        .with(ForgeReposCommand.self, WebRequest.forgeRepos)
        .with(AnswerCommand.self, WebRequest.answer)
        .with(SetModelCommand.self, WebRequest.setModel)
        .with(BudgetCommand.self, WebRequest.budget)
        .with(MetricsCommand.self, WebRequest.metrics)
        .with(SearchCommand.self, WebRequest.search)
        .with(PageRouteCommand.self, WebRequest.pageRoute)
}
