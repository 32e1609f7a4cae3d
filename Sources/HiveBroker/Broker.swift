import Foundation
import GRDB
import HiveWire
import Synchronization

/// The durable message store of one hive: the agent registry and every message, in one SQLite file.
///
/// All writes go through GRDB's single writer connection. Sends are group-committed (see
/// ``GroupCommit``); receivers park on ``InboxWaiters`` and are woken right after the commit that
/// touched their inbox. Every call blocks its thread: the core serves each connection on a thread of
/// its own, which keeps a round trip free of executor hops (see docs/benchmarks.md).
public final class Broker: Sendable {
    /// How hard a commit works to reach the disk (SQLite `PRAGMA synchronous`, WAL mode).
    public enum Synchronous: String, Sendable, CaseIterable {
        /// fsync the WAL on every commit: a send that returned ok survives a power cut or kernel crash,
        /// not only `kill -9` of the daemon. The default.
        case full = "FULL"
        /// fsync only at checkpoints: a send that returned ok survives `kill -9` of the daemon, but the
        /// last commits before a power cut may be lost. Lower latency.
        case normal = "NORMAL"

        /// The value `PRAGMA synchronous` reads back.
        public var level: Int { self == .full ? 2 : 1 }
    }

    public let pool: DatabasePool
    public let waiters = InboxWaiters()
    /// A connection used only for WAL checkpoints (see ``checkpoint()``).
    private let checkpointer: DatabaseQueue
    public let synchronous: Synchronous
    let clock: @Sendable () -> Double
    private let sendObservers = Mutex<[@Sendable ([Int64]) -> Void]>([])
    private let sends: GroupCommit<SendJob, Result<SendCommand.Reply, BrokerError>>
    /// Held while the messages questions owe are sent, so two callers never send the same one.
    let questionOutbox = Mutex([String: [Int64: Int64]]())

    struct SendJob: Sendable {
        var from: Sender
        var to: Recipient
        var body: String
        var inReplyTo: Int64?
    }

    /// Opens (creating if needed) the broker database at `path` and applies pending migrations.
    /// `clock` returns unix seconds; tests inject one.
    public init(path: String, synchronous: Synchronous = .full,
                clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) throws {
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.label = "broker"
        let pool = try DatabasePool(path: path, configuration: config)
        // GRDB sets NORMAL when it enables WAL; set ours on the one writer connection afterwards.
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous.rawValue)")
        }
        try Schema.migrator.migrate(pool)
        self.checkpointer = try DatabaseQueue(path: path, configuration: config)
        self.pool = pool
        self.synchronous = synchronous
        self.clock = clock
        let waiters = self.waiters
        self.sends = GroupCommit { jobs in
            let now = clock()
            let handoff = Handoff(waiters: waiters)
            let results: [Result<SendCommand.Reply, BrokerError>]
            do {
                results = try pool.write { db in
                    // Each job in a savepoint of its own: a job that fails leaves none of its rows behind,
                    // and the others in the batch still commit.
                    let results = jobs.map { job in
                        Result { () throws(BrokerError) in
                            var reply: SendCommand.Reply?
                            var handed: [MessageView] = []
                            do {
                                try db.inSavepoint {
                                    (reply, handed) = try Broker.insert(job, at: now, handoff: handoff, in: db)
                                    return .commit
                                }
                            } catch let e as BrokerError { throw e } catch { throw Broker.storage(error) }
                            handed.forEach(handoff.add)
                            return reply!
                        }
                    }
                    try handoff.countUnread(db)
                    return results
                }
            } catch {
                handoff.release()
                throw error
            }
            handoff.deliver()
            waiters.notify(results.flatMap { (try? $0.get())?.recipients ?? [] })
            return results
        }
    }

    /// Copies committed WAL frames into the database file (a PASSIVE checkpoint: it never blocks
    /// writers or readers), on a connection of its own. The core calls it twice a second, so at ordinary
    /// rates the WAL never reaches SQLite's automatic threshold (1000 pages) and no send pays for a
    /// checkpoint; under a burst the automatic one still keeps the WAL at a few MB.
    public func checkpoint() throws {
        _ = try checkpointer.writeWithoutTransaction { db in try db.checkpoint(.passive) }
    }

    /// The `synchronous` level actually in force on the writer connection (1 = NORMAL, 2 = FULL).
    public func synchronousLevel() throws -> Int {
        try pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    // MARK: - Registry

    /// Registers `manager` if it is not there yet. Returns true when it was added.
    @discardableResult
    public func ensureManager() throws -> Bool {
        try pool.write { db in
            if try Queries.agent(db, AgentName.manager.rawValue) != nil { return false }
            try AgentRecord(name: AgentName.manager.rawValue, createdAt: clock(), destroyedAt: nil).insert(db)
            return true
        }
    }

    /// Registers a new agent. The name must already be validated as spawnable.
    public func register(_ name: AgentName) throws(BrokerError) -> AgentRecord {
        do {
            return try pool.write { db throws -> AgentRecord in
                if let existing = try Queries.agent(db, name.rawValue) {
                    throw existing.destroyedAt == nil ? BrokerError.alreadyExists(name.rawValue) : .tombstoneExists(name.rawValue)
                }
                let record = AgentRecord(name: name.rawValue, createdAt: clock(), destroyedAt: nil)
                try record.insert(db)
                return record
            }
        } catch let e as BrokerError { throw e } catch { throw Broker.storage(error) }
    }

    /// Destroys an agent: without `purge` it becomes a tombstone (messages kept); with `purge` its record
    /// and every message addressed to it are deleted.
    public func destroy(_ name: AgentName, purge: Bool) throws(BrokerError) {
        guard name != .manager else { throw .managerIsPermanent }
        do {
            try pool.write { db in
                guard var record = try Queries.agent(db, name.rawValue) else {
                    throw BrokerError.unknownAgent(name.rawValue)
                }
                if purge {
                    try db.execute(sql: "DELETE FROM message WHERE recipient = ?", arguments: [name.rawValue])
                    try db.execute(sql: "DELETE FROM reminder WHERE agent = ?", arguments: [name.rawValue])
                    try record.delete(db)
                } else if record.destroyedAt == nil {
                    record.destroyedAt = clock()
                    try record.update(db)
                }
            }
        } catch let e as BrokerError { throw e } catch { throw Broker.storage(error) }
        waiters.notify([name.rawValue])
    }

    /// Every registered agent (tombstones included), with inbox counters, sorted by name.
    public func agents() throws -> [AgentCounts] {
        try pool.read { db in
            let records = try AgentRecord.order(Column("name")).fetchAll(db)
            let unread = try Self.countByRecipient(db, .pending)
            let inflight = try Self.countByRecipient(db, .delivered)
            let dead = try Self.countByRecipient(db, .dead)
            return records.map {
                AgentCounts(record: $0, unread: unread[$0.name] ?? 0, inflight: inflight[$0.name] ?? 0, dead: dead[$0.name] ?? 0)
            }
        }
    }

    /// The host uid `agent`'s cage runs as: allocated upwards in `range` on first use, kept for good (a
    /// purged name that comes back gets a new one, so old files never match a new agent). An agent whose
    /// uid lies outside `range` (the hive's block changed) gets a new one. `skip` says a uid is taken on
    /// the host (by its passwd).
    public func cageUID(for agent: AgentName, in range: ClosedRange<Int>, skip: (Int) -> Bool = { _ in false }) throws -> Int {
        try pool.write { db in
            if let uid = try Int.fetchOne(db, sql: "SELECT uid FROM agent WHERE name = ?", arguments: [agent.rawValue]), range.contains(uid) { return uid }
            let base = range.lowerBound
            var next = max(base, (try Int.fetchOne(db, sql: "SELECT MAX(uid) FROM agent WHERE uid BETWEEN ? AND ?", arguments: [base, range.upperBound]) ?? base - 1) + 1,
                           (try Int.fetchOne(db, sql: "SELECT value FROM hive_setting WHERE key = 'last_uid'").map { $0 + 1 }).flatMap { range.contains($0) ? $0 : nil } ?? base)
            while next <= range.upperBound && skip(next) { next += 1 }
            guard next <= range.upperBound else { throw BrokerError.uidsUsedUp(range) }
            try db.execute(sql: "UPDATE agent SET uid = ? WHERE name = ?", arguments: [next, agent.rawValue])
            try db.execute(sql: "INSERT INTO hive_setting (key, value) VALUES ('last_uid', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                           arguments: [next])
            return next
        }
    }

    /// The agent whose cage runs as `uid`, if any.
    public func agent(withUID uid: Int) throws -> String? {
        try pool.read { db in try String.fetchOne(db, sql: "SELECT name FROM agent WHERE uid = ?", arguments: [uid]) }
    }

    /// Whether any agent was ever given a cage uid (a hive from before uid blocks has).
    public func handedOutUIDs() throws -> Bool {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT value FROM hive_setting WHERE key = 'last_uid'") != nil }
    }

    /// Records whether the operator wants the agent stopped (kept across core restarts).
    public func setStopped(_ agent: AgentName, _ stopped: Bool) throws {
        try pool.write { db in
            try db.execute(sql: "UPDATE agent SET stopped = ? WHERE name = ?", arguments: [stopped, agent.rawValue])
        }
    }

    /// Whether the operator stopped the agent.
    public func isStopped(_ agent: AgentName) throws -> Bool {
        try pool.read { db in try Bool.fetchOne(db, sql: "SELECT stopped FROM agent WHERE name = ?", arguments: [agent.rawValue]) ?? false }
    }

    /// Brings a tombstone back: the agent is live again with its state and inbox.
    public func revive(_ agent: AgentName) throws(BrokerError) {
        do {
            try pool.write { db in
                guard let record = try Queries.agent(db, agent.rawValue) else { throw BrokerError.unknownAgent(agent.rawValue) }
                guard record.destroyedAt != nil else { throw BrokerError.notATombstone(agent.rawValue) }
                try db.execute(sql: "UPDATE agent SET destroyed_at = NULL, stopped = 0 WHERE name = ?", arguments: [agent.rawValue])
            }
        } catch let e as BrokerError { throw e } catch { throw Broker.storage(error) }
    }

    /// One agent's record, or nil.
    public func agent(_ name: AgentName) throws -> AgentRecord? {
        try pool.read { db in try Queries.agent(db, name.rawValue) }
    }

    private static func countByRecipient(_ db: Database, _ state: MessageState) throws -> [String: Int] {
        // Each state's partial index holds only its rows; left alone, the planner prefers the recipient
        // index for GROUP BY and scans every message (75 ms at 100k rows for the dead count).
        let index = [MessageState.pending: "message_pending", .delivered: "message_inflight", .dead: "message_dead"][state]
        let rows = try Row.fetchAll(db, sql: "SELECT recipient, COUNT(*) AS n FROM message \(index.map { "INDEXED BY \($0) " } ?? "")WHERE \(state.sqlCondition) GROUP BY recipient")
        return Dictionary(uniqueKeysWithValues: rows.map { ($0["recipient"] as String, $0["n"] as Int) })
    }

    // MARK: - Sending

    /// Stores a message (one row per recipient for `*`) and returns once it is durable.
    public func send(from: Sender, to: Recipient, body: String, inReplyTo: Int64?) throws(BrokerError) -> SendCommand.Reply {
        guard !body.isEmpty else { throw .emptyBody }
        let bytes = body.utf8.count
        guard bytes <= WireLimits.maxBodyBytes else { throw .bodyTooLong(bytes: bytes) }
        let result: Result<SendCommand.Reply, BrokerError>
        do {
            result = try sends.submit(SendJob(from: from, to: to, body: body, inReplyTo: inReplyTo))
        } catch {
            throw Broker.storage(error)
        }
        let reply = try result.get()
        for observer in sendObservers.withLock({ $0 }) { observer(reply.ids) }
        return reply
    }

    /// Calls `observer` with the ids of every message `send` committed (the dashboard's live feed).
    public func observeSends(_ observer: @escaping @Sendable ([Int64]) -> Void) {
        sendObservers.withLock { $0.append(observer) }
    }

    /// The newest `limit` messages of the whole hive, newest first (reads only: nothing is marked read).
    public func recentMessages(limit: Int) throws -> [MessageView] {
        try pool.read { db in
            try MessageRow.fetchAll(db, sql: "SELECT * FROM message ORDER BY id DESC LIMIT ?", arguments: [limit]).map(\.view)
        }
    }

    /// Messages with ids in `ids`, oldest first.
    public func messages(ids: [Int64]) throws -> [MessageView] {
        guard !ids.isEmpty else { return [] }
        return try pool.read { db in
            try MessageRow.fetchAll(db, sql: "SELECT * FROM message WHERE id IN (\(ids.map(String.init).joined(separator: ","))) ORDER BY id").map(\.view)
        }
    }

    /// Messages newer than `id`, oldest first, at most `limit`.
    public func messages(after id: Int64, limit: Int) throws -> [MessageView] {
        try pool.read { db in
            try MessageRow.fetchAll(db, sql: "SELECT * FROM message WHERE id > ? ORDER BY id LIMIT ?", arguments: [id, limit]).map(\.view)
        }
    }

    /// The body of one send inside a group-commit transaction. Refusals throw before anything is written.
    /// Returns the reply and the rows stored already delivered for claimed receivers (handed over by the
    /// caller once the job's savepoint has committed).
    private static func insert(_ job: SendJob, at now: Double, handoff: Handoff, in db: Database) throws -> (SendCommand.Reply, [MessageView]) {
        do {
            let recipients = try resolve(job.to, from: job.from, in: db)
            var kept: Int64?
            var dropped: String?
            if let ref = job.inReplyTo {
                let me = job.from.description
                if let parties = try Queries.parties(db, message: ref) {
                    if parties.sender == me || parties.recipient == me { kept = ref } else {
                        dropped = "message \(ref) belongs to a conversation you are not part of"
                    }
                } else {
                    dropped = "message \(ref) is unknown or has been swept by retention"
                }
            }
            var ids: [Int64] = []
            var handed: [MessageView] = []
            for recipient in recipients {
                // A parked receiver claimed here gets the row already delivered (pending → delivered
                // in the same transaction), handed over after the commit.
                let toReceiver = handoff.takes(recipient)
                var row = MessageRow(id: nil, sender: job.from.description, recipient: recipient, body: job.body,
                                     sentAt: now, deliveredAt: toReceiver ? now : nil, ackedAt: nil, inReplyTo: kept,
                                     broadcast: job.to == .broadcast, redelivered: false)
                try row.insert(db)
                ids.append(row.id!)
                if toReceiver { handed.append(row.view) }
            }
            return (SendCommand.Reply(ids: ids, recipients: recipients, inReplyTo: kept, inReplyToDropped: dropped), handed)
        }
    }

    private static func resolve(_ to: Recipient, from: Sender, in db: Database) throws -> [String] {
        switch to {
        case .operator:
            return ["operator"]
        case .agent(let name):
            guard let live = try Queries.isLive(db, name.rawValue) else {
                throw BrokerError.unknownRecipient(name.rawValue)
            }
            guard live else { throw BrokerError.destroyedRecipient(name.rawValue) }
            return [name.rawValue]
        case .broadcast:
            let names = try Queries.liveAgentNames(db)
            let others = names.filter { $0 != from.description }
            guard !others.isEmpty else { throw BrokerError.nobodyToBroadcastTo }
            return others
        }
    }

    // MARK: - Receiving and acking

    /// Hands out up to `max` pending messages of `agent` (oldest first), marking them delivered.
    /// With none pending it parks on `parker` until one arrives, `wait` runs out, or the parker's peer
    /// hangs up; a parked receiver whose peer has gone returns without popping anything.
    /// `mayDeliver`, asked before each hand-out: false leaves everything pending and returns empty (core
    /// holds agents whose credential hit its limit; `wakeReceivers` makes parked ones ask again).
    public func recv(_ agent: AgentName, max: Int, wait: Duration, parker: Parker? = nil,
                     mayDeliver: (() -> Bool)? = nil) throws -> RecvCommand.Reply {
        let deadline = ContinuousClock.now.advanced(by: wait)
        var parker = parker
        while true {
            let ticket = waiters.ticket(for: agent.rawValue)
            if let mayDeliver, !mayDeliver() { return RecvCommand.Reply(messages: [], unread: 0) }
            let reply = try pop(agent, max: max)
            if !reply.messages.isEmpty || ContinuousClock.now >= deadline { return reply }
            if parker == nil { parker = Parker() }
            switch waiters.wait(agent: agent.rawValue, after: ticket, max: max, until: deadline, parker: parker!) {
            case .notified: continue
            case .handed(let messages, let unread): return RecvCommand.Reply(messages: messages, unread: unread)
            case .timedOut, .peerClosed, .stopped: return RecvCommand.Reply(messages: [], unread: 0)
            }
        }
    }

    /// Wakes the parked receivers of these agents, so they check again whether they may take messages.
    public func wakeReceivers(_ agents: [AgentName]) { waiters.notify(agents.map(\.rawValue)) }

    private func pop(_ agent: AgentName, max: Int) throws -> RecvCommand.Reply {
        let now = clock()
        return try pool.write { db in
            var rows = try Queries.oldestPending(db, recipient: agent.rawValue, limit: max)
            if rows.isEmpty { return RecvCommand.Reply(messages: [], unread: 0) }
            for i in rows.indices {
                var life = rows[i].lifecycle
                guard case .moved(to: .delivered) = life.apply(.deliver), let id = rows[i].id else { continue }
                try Queries.markDelivered(db, id: id, at: now)
                rows[i].deliveredAt = now
            }
            let unread = try Queries.count(db, .pending, recipient: agent.rawValue)
            return RecvCommand.Reply(messages: rows.map(\.view), unread: unread)
        }
    }

    /// Acks the messages a finished turn consumed. Only the agent's own delivered messages move; each
    /// other id comes back in `skipped` with the reason. Acking twice is fine.
    public func ackTurn(_ agent: AgentName, ids: [Int64], allInflight: Bool = false) throws -> AckTurnCommand.Reply {
        guard ids.count <= WireLimits.maxAckIDs else { throw BrokerError.tooManyIDs(ids.count) }
        let now = clock()
        return try pool.write { db in
            var wanted = Set(ids)
            if allInflight {
                wanted.formUnion(try Int64.fetchAll(db, sql: "SELECT id FROM message WHERE recipient = ? AND \(MessageState.delivered.sqlCondition)",
                                                    arguments: [agent.rawValue]))
            }
            let outcome = try Self.transition(db, recipient: agent.rawValue, ids: Array(wanted), event: .ack) { row in
                try db.execute(sql: "UPDATE message SET acked_at = ? WHERE id = ?", arguments: [now, row.id])
            }
            // Acking twice is fine: an id already acked counts as acked.
            let acked = (outcome.moved.compactMap(\.id) + outcome.unchanged).sorted()
            return AckTurnCommand.Reply(acked: acked, skipped: outcome.skipped)
        }
    }

    /// Moves the agent's delivered messages to `dead` with `reason` (the harness gave up on them). Returns
    /// the rows that moved, for the notice to the manager; other ids come back in `skipped`.
    public func deadLetter(_ agent: AgentName, ids: [Int64], reason: String) throws -> (reply: DeadLetterCommand.Reply, messages: [MessageView]) {
        guard ids.count <= WireLimits.maxAckIDs else { throw BrokerError.tooManyIDs(ids.count) }
        let now = clock()
        let reason = String(reason.prefix(WireLimits.maxBodyBytes))
        return try pool.write { db in
            let outcome = try Self.transition(db, recipient: agent.rawValue, ids: ids, event: .deadLetter) { row in
                try db.execute(sql: "UPDATE message SET dead_at = ?, dead_reason = ? WHERE id = ?", arguments: [now, reason, row.id])
                row.deadAt = now
                row.deadReason = reason
            }
            let dead = outcome.moved.map(\.view)
            return (DeadLetterCommand.Reply(dead: dead.map(\.id), skipped: outcome.skipped), dead)
        }
    }

    /// Applies a lifecycle event to each of `recipient`'s messages among `ids`: rows the machine moves are
    /// written by `write`; ids it leaves unchanged are returned as such; the rest (not this agent's, or a
    /// refused transition) are skipped with the reason.
    private static func transition(_ db: Database, recipient: String, ids: [Int64], event: MessageEvent,
                                   write: (inout MessageRow) throws -> Void)
        throws -> (moved: [MessageRow], unchanged: [Int64], skipped: [AckTurnCommand.Skipped]) {
        var moved: [MessageRow] = [], unchanged: [Int64] = [], skipped: [AckTurnCommand.Skipped] = []
        for id in Set(ids).sorted() {
            guard var row = try MessageRow.fetchOne(db, id: id), row.recipient == recipient else {
                skipped.append(.init(id: id, reason: "message \(id) is not in your inbox"))
                continue
            }
            var life = row.lifecycle
            switch life.apply(event) {
            case .moved:
                try write(&row)
                moved.append(row)
            case .unchanged:
                unchanged.append(id)
            case .refused(let why):
                skipped.append(.init(id: id, reason: "message \(id) \(why)"))
            }
        }
        return (moved, unchanged, skipped)
    }

    /// Puts every delivered-but-unacked message of `agent` back to pending, flagged redelivered, except
    /// those in `keep`.
    public func requeueInflight(_ agent: AgentName, keep: [Int64] = []) throws -> Int {
        let n = try pool.write { db in
            let inflight = try Int64.fetchAll(db, sql: "SELECT id FROM message WHERE recipient = ? AND \(MessageState.delivered.sqlCondition)",
                                              arguments: [agent.rawValue])
            let kept = Set(keep)
            return try Self.transition(db, recipient: agent.rawValue, ids: inflight.filter { !kept.contains($0) }, event: .requeue) { row in
                try db.execute(sql: "UPDATE message SET delivered_at = NULL, redelivered = 1 WHERE id = ?", arguments: [row.id])
            }.moved.count
        }
        if n > 0 { waiters.notify([agent.rawValue]) }
        return n
    }

    /// Pending and in-flight counts for one recipient.
    public func counts(_ recipient: String) throws -> (unread: Int, inflight: Int) {
        try pool.read { db in
            (try Queries.count(db, .pending, recipient: recipient), try Queries.count(db, .delivered, recipient: recipient))
        }
    }

    /// The latest messages `party` sent or received, newest first.
    public func recent(_ party: String, limit: Int) throws -> [MessageView] {
        try pool.read { db in
            try MessageRow.fetchAll(db, sql: """
                SELECT * FROM message WHERE id IN (
                    SELECT id FROM (SELECT id FROM message WHERE sender = ?1 ORDER BY id DESC LIMIT ?2)
                    UNION
                    SELECT id FROM (SELECT id FROM message WHERE recipient = ?1 ORDER BY id DESC LIMIT ?2)
                ) ORDER BY id DESC LIMIT ?2
                """, arguments: [party, limit]).map(\.view)
        }
    }

    /// The operator's inbox, newest first. Returned rows show the state they had; showing them marks
    /// them read (delivered and acked), so retention can sweep them later.
    public func operatorInbox(limit: Int) throws -> [MessageView] {
        let now = clock()
        return try pool.write { db in
            let rows = try MessageRow.fetchAll(db, sql: "SELECT * FROM message WHERE recipient = 'operator' ORDER BY id DESC LIMIT ?", arguments: [limit])
            // Shown is read: each unread one is delivered (if it was not yet) and acked, both through the lifecycle.
            let unread = rows.filter { $0.ackedAt == nil }
            _ = try Self.transition(db, recipient: Recipient.operator.description, ids: unread.filter { $0.deliveredAt == nil }.compactMap(\.id), event: .deliver) { row in
                try Queries.markDelivered(db, id: row.id ?? 0, at: now)
            }
            _ = try Self.transition(db, recipient: Recipient.operator.description, ids: unread.compactMap(\.id), event: .ack) { row in
                try db.execute(sql: "UPDATE message SET acked_at = ? WHERE id = ?", arguments: [now, row.id])
            }
            return rows.map(\.view)
        }
    }

    // MARK: - Retention

    /// Deletes acked (and dead-lettered) messages older than `window` seconds, `batch` rows per transaction, so the write
    /// lock is never held for long. Returns how many rows went. Stops between batches when `stop`
    /// says so.
    public func sweep(olderThan window: Double, batch: Int = 500, stop: () -> Bool = { false }) throws -> Int {
        let cutoff = clock() - window
        var total = 0
        while !stop() {
            let n = try pool.write { db in
                try db.execute(sql: """
                    DELETE FROM message WHERE id IN (
                        SELECT id FROM message WHERE acked_at IS NOT NULL AND acked_at < ?1
                        UNION ALL
                        SELECT id FROM message WHERE dead_at IS NOT NULL AND dead_at < ?1
                        LIMIT ?2)
                    """, arguments: [cutoff, batch])
                return db.changesCount
            }
            total += n
            if n < batch { break }
        }
        return total
    }

    static func storage(_ error: any Error) -> BrokerError {
        .storage(String(describing: error))
    }
}
