import Foundation
import GRDB
import HiveWire
import Synchronization

/// Messages: sending (grouped commits), receiving (parking until one comes), acking, dead letters,
/// requeueing and retention, every state change through ``MessageLifecycle``.
extension Broker {
    // MARK: - Sending

    /// Stores a message (one row per recipient for `*`) and returns once it is durable.
    public func send(from: Sender, to: Recipient, body: String, inReplyTo: Int64?) throws(BrokerError) -> SendCommand.Reply {
        guard !body.isEmpty else { throw .emptyBody }
        // PostgreSQL's text cannot hold it, and one such body would fail a whole batch of others' sends there;
        // refused on either store, so an agent meets one rule.
        guard !body.utf8.contains(0) else { throw .nulInBody }
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
    static func insert(_ job: SendJob, at now: Double, handoff: Handoff, in db: Database) throws -> (SendCommand.Reply, [MessageView]) {
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
            case .handed(let messages, let unread):
                // A hold that began while this receiver was parked (a budget, a credential's limit) still
                // holds: what a send handed straight over goes back to the inbox, as if never handed out.
                if let mayDeliver, !mayDeliver() {
                    try undeliver(agent, ids: messages.map(\.id))
                    return RecvCommand.Reply(messages: [], unread: 0)
                }
                return RecvCommand.Reply(messages: messages, unread: unread)
            case .timedOut, .peerClosed, .stopped: return RecvCommand.Reply(messages: [], unread: 0)
            }
        }
    }

    /// Puts messages handed to a receiver that may not take them back to pending (not marked redelivered:
    /// nobody saw them).
    private func undeliver(_ agent: AgentName, ids: [Int64]) throws {
        try pool.write { db in
            _ = try Self.transition(db, recipient: agent.rawValue, ids: ids, event: .requeue) { row in
                try db.execute(sql: "UPDATE message SET delivered_at = NULL WHERE id = ?", arguments: [row.id])
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

    public func messageCounts() throws -> [MessageState: Int] {
        try pool.read { db in
            try [MessageState.pending, .delivered, .dead].reduce(into: [:]) { out, state in
                out[state] = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM message WHERE \(state.sqlCondition)") ?? 0
            }
        }
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
}
