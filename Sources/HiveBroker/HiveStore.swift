import Foundation
import HiveWire

// What the hive keeps durably, as core uses it: the registry, the messages, reminders, approvals and
// questions. ``Broker`` keeps all of it in one SQLite file; a second store (PostgreSQL, for a hive on
// many hosts) conforms to the same protocols and no caller changes. Core holds `any HiveStore`; only
// the SQLite-specific services (the WAL checkpointer, `info`'s synchronous level) see ``Broker``.
// Every rule that decides a state (which message may be acked, which approval resolved) lives in the
// lifecycles beside these protocols, not in a store, so a second store cannot disagree with the first.

/// The agents: who is registered, destroyed or stopped, and which host uid each one's cage runs as.
public protocol AgentRegistry: Sendable {
    /// Registers the manager on first boot; true when it was new.
    func ensureManager() throws -> Bool
    func register(_ name: AgentName) throws(BrokerError) -> AgentRecord
    /// A tombstone, or with `purge` the record and its messages gone.
    func destroy(_ name: AgentName, purge: Bool) throws(BrokerError)
    func revive(_ agent: AgentName) throws(BrokerError)
    /// Every registered agent, tombstones included, with inbox counters, sorted by name.
    func agents() throws -> [AgentCounts]
    func agent(_ name: AgentName) throws -> AgentRecord?
    /// Whether the operator wants the agent stopped (kept across core restarts).
    func setStopped(_ agent: AgentName, _ stopped: Bool) throws
    func isStopped(_ agent: AgentName) throws -> Bool
    /// The host uid the agent's cage runs as: allocated in `range` on first use, kept for good.
    func cageUID(for agent: AgentName, in range: ClosedRange<Int>, skip: (Int) -> Bool) throws -> Int
    /// The agent whose cage runs as `uid`, if any.
    func agent(withUID uid: Int) throws -> String?
    /// Whether any agent was ever given a cage uid.
    func handedOutUIDs() throws -> Bool
}

/// The messages and their lifecycle: send, recv (parking until one comes), ack, dead-letter, requeue.
public protocol MessageStore: Sendable {
    func send(from: Sender, to: Recipient, body: String, inReplyTo: Int64?) throws(BrokerError) -> SendCommand.Reply
    /// Calls `observer` with the ids of every stored send (the dashboard's feed).
    func observeSends(_ observer: @escaping @Sendable ([Int64]) -> Void)
    func recv(_ agent: AgentName, max: Int, wait: Duration, parker: Parker?, mayDeliver: (() -> Bool)?) throws -> RecvCommand.Reply
    /// Wakes the parked receivers of these agents, so they check again whether they may take messages.
    func wakeReceivers(_ agents: [AgentName])
    func ackTurn(_ agent: AgentName, ids: [Int64], allInflight: Bool) throws -> AckTurnCommand.Reply
    func deadLetter(_ agent: AgentName, ids: [Int64], reason: String) throws -> (reply: DeadLetterCommand.Reply, messages: [MessageView])
    func requeueInflight(_ agent: AgentName, keep: [Int64]) throws -> Int
    /// Pending and in-flight counts for one recipient.
    func counts(_ recipient: String) throws -> (unread: Int, inflight: Int)
    /// The hive's messages that are pending, in flight and dead (each counted through its partial index).
    func messageCounts() throws -> [MessageState: Int]
    /// Messages matching a search, best first; with `party`, only those it sent or received.
    func search(_ query: SearchQuery, party: String?, limit: Int) throws -> [SearchHit]
    /// The latest messages `party` sent or received, newest first.
    func recent(_ party: String, limit: Int) throws -> [MessageView]
    func recentMessages(limit: Int) throws -> [MessageView]
    func messages(ids: [Int64]) throws -> [MessageView]
    /// The operator's messages, newest first; showing them reads (acks) them.
    func operatorInbox(limit: Int) throws -> [MessageView]
    /// Deletes finished messages older than `window` seconds, in batches; returns how many went.
    func sweep(olderThan window: Double, batch: Int, stop: () -> Bool) throws -> Int
    /// Ends every parked `recv` at once (core is stopping).
    func releaseReceivers()
    /// How durable a send is once it returns, for `hive info` (SQLite: its `synchronous` level).
    var durability: String { get }
}

/// Reminders: set, cancelled, delivered when due.
public protocol ReminderStore: Sendable {
    func createReminder(_ agent: AgentName, body: String, filePath: String?, dueAt: Double, cap: Int) throws -> (id: Int64, pending: Int)
    func cancelReminder(_ id: Int64) throws
    func pendingReminders(agent: AgentName?) throws -> [ReminderView]
    func pendingReminderCount(_ agent: AgentName) throws -> Int
    func nextReminderDue() throws -> Double?
    func deliverDueReminders(limit: Int) throws -> (delivered: Int, failed: Int)
    func recordFailedDelivery(error: String, limit: Int) throws
    func reminderRollup(_ agent: AgentName, since: Double) throws -> ReminderRollupCommand.Reply
    func sweepReminders(olderThan window: Double, batch: Int) throws -> Int
}

/// The operator's approvals of config changes.
public protocol ApprovalStore: Sendable {
    func createApproval(kind: ApprovalKind, agent: AgentName, commit: String?, description: String?, diff: String?,
                        requestedBy: String) throws -> ApprovalView
    /// Moves an approval through ``ApprovalLifecycle``; refuses what its state does not allow.
    func resolveApproval(_ id: Int64, _ event: ApprovalEvent, note: String?) throws(BrokerError) -> ApprovalView
    func approval(_ id: Int64) throws -> ApprovalView?
    func approvals(recent: Int) throws -> [ApprovalView]
    /// Approvals a previous core was carrying out when it stopped, now failed.
    func failInterruptedApprovals() throws -> [ApprovalView]
}

/// Questions to the operator or a peer, and their answers.
public protocol QuestionStore: Sendable {
    func ask(_ asker: AgentName, to: Recipient, _ asked: QuestionLifecycle.Asked) throws -> QuestionView
    func answer(_ id: Int64, by: Sender, choices: [String]?, answer: String?) throws -> QuestionView
    func expireQuestions() throws -> Int
    func question(_ id: Int64) throws -> QuestionView?
    func questions(to: String?, closed: Int) throws -> [QuestionView]
    func sweepQuestions(olderThan window: Double) throws -> Int
}

/// Everything core keeps.
/// What each gated agent's gateway decided: written by core at the host end, read by the operator.
public protocol GatewayLogStore: Sendable {
    func recordGateway(_ agent: AgentName, _ entry: GatewayEntry) throws
    func gatewayLog(_ agent: AgentName, limit: Int) throws -> [GatewayEntry]
    func gatewayUsage(_ agent: AgentName, since: Double) throws -> [(model: String, answers: Int, tokens: TokenCount)]
    func sweepGatewayLog(olderThan window: Double) throws -> Int
}

/// The work one node of a hive does for the whole hive: exactly one node at a time holds each duty.
public enum Duty: String, Sendable, CaseIterable {
    /// Firing due reminders.
    case reminders
    /// Expiring questions and sending what questions owe.
    case questions
    /// Retention sweeps.
    case retention
}

/// Where agents run, for a hive on many hosts (issue 15; docs/multi-host.md). A store that one host owns
/// answers as a hive of one node holding every duty, so core asks the same questions either way.
public protocol HiveNodes: Sendable {
    /// This node's name, or nil for a hive on one host.
    var nodeName: String? { get }
    /// Whether this node holds `duty` now (one node at a time does; another takes it over within seconds
    /// of its holder's death).
    func holds(_ duty: Duty) -> Bool
    /// Each agent's node and the state that node last published (empty for a hive on one host).
    func placements() throws -> [String: Placement]
    /// The hive's nodes, with their heartbeats.
    func nodes() throws -> [NodeView]
    /// This node is alive: records its load and its agents' states, and renews its leases on them.
    func heartbeat(_ beat: NodeBeat) throws
    /// Whether this node may run `agent` now: it is placed here and this node's lease on it is current
    /// (always, on one host). A node that lost the database stops its cages once its leases run out.
    func mayRun(_ agent: AgentName) -> Bool
    /// The live agents placed on this node, as of its last heartbeat (empty on one host).
    func agentsHere() -> [AgentName]
    /// Registers a new agent placed on `node` (an up node of the hive), which starts it by itself.
    func register(_ name: AgentName, on node: String) throws(BrokerError) -> AgentRecord
    /// How to reach each node that serves an endpoint.
    func peers() throws -> [NodePeer]
    /// `hive move`, in the database: a move of an agent of this node to node `to` is claimed first (false:
    /// another move is under way, or the agent is not here), and then either arrives there or is called off
    /// here, each a compare-and-set on the agent's row, so exactly one of the two wins.
    func beginMove(_ agent: AgentName, to: String) throws -> Bool
    /// Calls off this node's move of `agent` to `to`: true if it was still under way (the agent stays here);
    /// false if it arrived there meanwhile.
    func callOffMove(_ agent: AgentName, to: String) throws -> Bool
    /// The move of `agent` under way, if any: the node it leaves and the node it goes to.
    func moveUnderWay(_ agent: AgentName) throws -> (from: String, to: String)?
    /// The move of `agent` from node `from` arrives here: placed on this node, with `uid` (this node's, see
    /// ``reserveUID(in:skip:)``), in one statement; false if that move was called off or the agent destroyed.
    /// This node may run it at once.
    func arrive(_ agent: AgentName, from: String, uid: Int?) throws -> Bool
    /// A uid of `range` nobody has had, kept from every later allocation, for an agent arriving here.
    func reserveUID(in range: ClosedRange<Int>, skip: (Int) -> Bool) throws -> Int
}

public typealias HiveStore = AgentRegistry & MessageStore & ReminderStore & ApprovalStore & QuestionStore & GatewayLogStore & SpendStore & HiveNodes

extension Broker: HiveNodes {
    public var nodeName: String? { nil }
    public func holds(_ duty: Duty) -> Bool { true }
    public func placements() throws -> [String: Placement] { [:] }
    public func nodes() throws -> [NodeView] { [] }
    public func heartbeat(_ beat: NodeBeat) throws {}
    public func mayRun(_ agent: AgentName) -> Bool { true }
    public func agentsHere() -> [AgentName] { [] }
    public func register(_ name: AgentName, on node: String) throws(BrokerError) -> AgentRecord { try register(name) }
    public func peers() throws -> [NodePeer] { [] }
    public func beginMove(_ agent: AgentName, to: String) throws -> Bool { false }
    public func callOffMove(_ agent: AgentName, to: String) throws -> Bool { true }
    public func moveUnderWay(_ agent: AgentName) throws -> (from: String, to: String)? { nil }
    public func arrive(_ agent: AgentName, from: String, uid: Int?) throws -> Bool { false }
    public func reserveUID(in range: ClosedRange<Int>, skip: (Int) -> Bool) throws -> Int { throw BrokerError.uidsUsedUp(range) }
}

extension Broker: AgentRegistry, MessageStore, ReminderStore, ApprovalStore, QuestionStore, GatewayLogStore {
    public func releaseReceivers() { waiters.stopAll() }
    public var durability: String { synchronous.rawValue }
}

// The defaults callers rely on, for any store.
extension AgentRegistry {
    public func cageUID(for agent: AgentName, in range: ClosedRange<Int>) throws -> Int { try cageUID(for: agent, in: range, skip: { _ in false }) }
}

extension HiveNodes {
    /// How to reach node `name` (nil: no such node, or it serves no endpoint).
    public func peer(_ name: String) throws -> NodePeer? { try peers().first { $0.name == name } }
}

extension MessageStore {
    public func recv(_ agent: AgentName, max: Int, wait: Duration) throws -> RecvCommand.Reply {
        try recv(agent, max: max, wait: wait, parker: nil, mayDeliver: nil)
    }
    public func ackTurn(_ agent: AgentName, ids: [Int64]) throws -> AckTurnCommand.Reply { try ackTurn(agent, ids: ids, allInflight: false) }
    public func requeueInflight(_ agent: AgentName) throws -> Int { try requeueInflight(agent, keep: []) }
    public func sweep(olderThan window: Double) throws -> Int { try sweep(olderThan: window, batch: 500, stop: { false }) }
    public func sweep(olderThan window: Double, stop: () -> Bool) throws -> Int { try sweep(olderThan: window, batch: 500, stop: stop) }
}

extension ReminderStore {
    public func pendingReminders() throws -> [ReminderView] { try pendingReminders(agent: nil) }
    public func sweepReminders(olderThan window: Double) throws -> Int { try sweepReminders(olderThan: window, batch: 500) }
}

extension ApprovalStore {
    public func resolveApproval(_ id: Int64, _ event: ApprovalEvent) throws(BrokerError) -> ApprovalView { try resolveApproval(id, event, note: nil) }
    public func approvals() throws -> [ApprovalView] { try approvals(recent: 0) }
}

extension QuestionStore {
    public func questions(to: String? = nil) throws -> [QuestionView] { try questions(to: to, closed: 0) }
    public func questions(closed: Int) throws -> [QuestionView] { try questions(to: nil, closed: closed) }
}
