import Foundation
import HiveBroker
import HiveWire
import PostgresNIO

/// Messages on PostgreSQL: sends grouped into one transaction per batch and announced with NOTIFY,
/// claims with `FOR UPDATE SKIP LOCKED`, every other state change through ``MessageLifecycle`` as on
/// SQLite (HiveBroker/Messages.swift).
extension PostgresBroker: MessageStore {
    static let messageColumns = "id, sender, recipient, body, sent_at, delivered_at, acked_at, dead_at, dead_reason, in_reply_to, broadcast, redelivered"

    static func messages(_ rows: PostgresRowSequence) async throws -> [MessageView] {
        var out: [MessageView] = []
        for try await (id, from, to, body, sent, delivered, acked, dead, reason, reply, broadcast, redelivered) in rows.decode(
            (Int64, String, String, String, Double, Double?, Double?, Double?, String?, Int64?, Bool, Bool).self) {
            out.append(MessageView(id: id, from: from, to: to, body: body, sentAt: sent, deliveredAt: delivered, ackedAt: acked, inReplyTo: reply,
                                   broadcast: broadcast, redelivered: redelivered,
                                   state: MessageState(deliveredAt: delivered, ackedAt: acked, deadAt: dead), deadReason: reason))
        }
        return out
    }

    // MARK: - Sending

    public func send(from: Sender, to: Recipient, body: String, inReplyTo: Int64?) throws(BrokerError) -> SendCommand.Reply {
        guard !body.isEmpty else { throw .emptyBody }
        // PostgreSQL's text cannot hold it, and one such body would fail a whole batch of others' sends there;
        // refused on either store, so an agent meets one rule.
        guard !body.utf8.contains(0) else { throw .nulInBody }
        let bytes = body.utf8.count
        guard bytes <= WireLimits.maxBodyBytes else { throw .bodyTooLong(bytes: bytes) }
        let job = PendingSend(from: from, to: to, body: body, at: clock(), inReplyTo: inReplyTo)
        let reply = try Self.typed { try sends.submit(job) }.get()
        for observer in sendObservers.withLock({ $0 }) { observer(reply.ids) }
        return reply
    }

    public func observeSends(_ observer: @escaping @Sendable ([Int64]) -> Void) {
        sendObservers.withLock { $0.append(observer) }
    }

    /// Writes a batch of sends in one transaction: one multi-row INSERT in the batch's order, one NOTIFY
    /// per recipient. A transaction that notifies takes PostgreSQL's global notify lock at commit, so
    /// commits that notify are serialised: one send per transaction reached 24 % of a raw insert loop's
    /// rate with 16 senders (docs/benchmarks.md); sends waiting meanwhile go together. A lone send to one
    /// agent with no reply to check is one statement (one round trip).
    static func write(_ batch: [PendingSend], client: PostgresClient, logger: Logger) async throws -> [Result<SendCommand.Reply, BrokerError>] {
        try await bounded {
            if batch.count == 1, let one = batch.first, one.inReplyTo == nil, case .agent(let name) = one.to,
               let id = try await sendOne(one, to: name, client: client, logger: logger) {
                return [.success(SendCommand.Reply(ids: [id], recipients: [name.rawValue], inReplyTo: nil, inReplyToDropped: nil))]
            }
            do {
                return try await client.withTransaction(logger: logger) { c in try await write(batch, on: c, logger: logger) }
            } catch let e as PostgresTransactionError { throw e.closureError ?? e.commitError ?? e.beginError ?? e }
        }
    }

    /// Recipient checked, row stored and notification queued, in one statement; nil when the recipient is
    /// not a live agent (the general path then says which refusal it is).
    private static func sendOne(_ one: PendingSend, to name: AgentName, client: PostgresClient, logger: Logger) async throws -> Int64? {
        let rows = try await client.query("""
            WITH known AS (SELECT name FROM agent WHERE name = \(name.rawValue) AND destroyed_at IS NULL),
                 stored AS (INSERT INTO message (sender, recipient, body, sent_at)
                            SELECT \(one.from.description), name, \(one.body), \(one.at) FROM known RETURNING id, recipient)
            SELECT id, pg_notify(\(Self.channel), recipient) FROM stored
            """, logger: logger)
        var id: Int64?
        // The second column is pg_notify's void: only the id is read.
        for try await row in rows { id = try row.makeRandomAccess()[0].decode(Int64.self) }
        return id
    }

    private static func write(_ batch: [PendingSend], on c: PostgresConnection, logger: Logger) async throws -> [Result<SendCommand.Reply, BrokerError>] {
        var live: [String: Bool] = [:]
        let named = Array(Set(batch.compactMap { if case .agent(let n) = $0.to { n.rawValue } else { nil } }))
        let broadcast = batch.contains { $0.to == .broadcast }
        let agents: PostgresQuery = broadcast ? "SELECT name, destroyed_at IS NULL FROM agent"
                                              : "SELECT name, destroyed_at IS NULL FROM agent WHERE name = ANY(\(named))"
        for try await (name, alive) in try await c.query(agents, logger: logger).decode((String, Bool).self) { live[name] = alive }
        var parties: [Int64: (String, String)] = [:]
        let refs = Array(Set(batch.compactMap(\.inReplyTo)))
        if !refs.isEmpty {
            for try await (id, s, r) in try await c.query("SELECT id, sender, recipient FROM message WHERE id = ANY(\(refs))", logger: logger)
                .decode((Int64, String, String).self) { parties[id] = (s, r) }
        }
        // Each send's rows, or its refusal; rows of all sends go in one INSERT, in order.
        var planned: [Result<(recipients: [String], kept: Int64?, dropped: String?), BrokerError>] = []
        var froms: [String] = [], tos: [String] = [], bodies: [String] = [], ats: [Double] = [], replies: [Int64] = [], casts: [Bool] = []
        for send in batch {
            let recipients: [String]
            switch send.to {
            case .operator: recipients = ["operator"]
            case .agent(let name):
                guard let alive = live[name.rawValue] else { planned.append(.failure(.unknownRecipient(name.rawValue))); continue }
                guard alive else { planned.append(.failure(.destroyedRecipient(name.rawValue))); continue }
                recipients = [name.rawValue]
            case .broadcast:
                recipients = live.filter { $0.value && $0.key != send.from.description }.keys.sorted()
                guard !recipients.isEmpty else { planned.append(.failure(.nobodyToBroadcastTo)); continue }
            }
            var kept: Int64?, dropped: String?
            if let ref = send.inReplyTo {
                let me = send.from.description
                if let (s, r) = parties[ref] {
                    if s == me || r == me { kept = ref } else { dropped = "message \(ref) belongs to a conversation you are not part of" }
                } else {
                    dropped = "message \(ref) is unknown or has been swept by retention"
                }
            }
            for recipient in recipients {
                froms.append(send.from.description); tos.append(recipient); bodies.append(send.body); ats.append(send.at)
                replies.append(kept ?? -1); casts.append(send.to == .broadcast)
            }
            planned.append(.success((recipients, kept, dropped)))
        }
        var ids: [Int64] = []
        if !tos.isEmpty {
            // Ids are drawn as rows are inserted, in ORDINALITY order: sorted, they are the rows' in order.
            for try await id in try await c.query("""
                INSERT INTO message (sender, recipient, body, sent_at, in_reply_to, broadcast)
                SELECT f, t, b, a, NULLIF(r, -1), k
                FROM unnest(\(froms)::text[], \(tos)::text[], \(bodies)::text[], \(ats)::float8[], \(replies)::int8[], \(casts)::bool[])
                     WITH ORDINALITY AS u(f, t, b, a, r, k, n)
                ORDER BY n
                RETURNING id
                """, logger: logger).decode(Int64.self) { ids.append(id) }
        }
        ids.sort()
        try await notify(Set(tos).filter { $0 != "operator" }.sorted(), on: c, logger: logger)
        var next = ids.makeIterator()
        return planned.map { plan in
            switch plan {
            case .failure(let refusal): return .failure(refusal)
            case .success(let p):
                let mine = p.recipients.compactMap { _ in next.next() }
                return .success(SendCommand.Reply(ids: mine, recipients: p.recipients, inReplyTo: p.kept, inReplyToDropped: p.dropped))
            }
        }
    }

    /// Announces new messages for `agents`, in one statement (sent at commit).
    static func notify(_ agents: [String], on c: PostgresConnection, logger: Logger) async throws {
        guard !agents.isEmpty else { return }
        try await c.query("SELECT pg_notify(\(channel), a) FROM unnest(\(agents)::text[]) AS a", logger: logger)
    }

    /// A send waiting to be written.
    struct PendingSend: Sendable {
        var from: Sender
        var to: Recipient
        var body: String
        var at: Double
        var inReplyTo: Int64?
    }

    // MARK: - Receiving and acking

    /// As the SQLite store's `recv`, without its hand-off (a receiver may be parked on another node): claim,
    /// and with nothing to claim park until this node hears of a send for the agent, `wait` passes or the
    /// peer hangs up. A receiver already parked outlives a database restart and looks again.
    public func recv(_ agent: AgentName, max: Int, wait: Duration, parker: Parker?, mayDeliver: (() -> Bool)?) throws -> RecvCommand.Reply {
        let deadline = ContinuousClock.now.advanced(by: wait)
        var parker = parker
        var parked = false
        while true {
            let ticket = waiters.ticket(for: agent.rawValue)
            if let mayDeliver, !mayDeliver() { return RecvCommand.Reply(messages: [], unread: 0) }
            do {
                let reply = try claim(agent, max: max)
                if !reply.messages.isEmpty || ContinuousClock.now >= deadline { return reply }
            } catch {
                guard parked, ContinuousClock.now < deadline else { throw error }
            }
            if parker == nil { parker = Parker() }
            parked = true
            // While this node does not listen (the database is away) no notification comes, and while its lease
            // on the agent is not current a claim finds nothing a notification could change: look each second.
            let until = listening.isSet && mayRun(agent) ? deadline : min(deadline, ContinuousClock.now + .seconds(1))
            switch waiters.wait(agent: agent.rawValue, after: ticket, max: max, until: until, parker: parker!) {
            case .notified, .handed: continue
            case .timedOut: if ContinuousClock.now >= deadline { return RecvCommand.Reply(messages: [], unread: 0) }
            case .peerClosed, .stopped: return RecvCommand.Reply(messages: [], unread: 0)
            }
        }
    }

    /// Hands out up to `max` of the agent's pending messages, oldest first; two nodes never take the same.
    func claim(_ agent: AgentName, max: Int) throws -> RecvCommand.Reply {
        let now = clock(), limit = Swift.max(1, Swift.min(max, 100)), name = agent.rawValue, fence = claimFence
        return try read { client in
            let claimed = try await Self.messages(try await client.query(PostgresQuery(unsafeSQL: """
                UPDATE message SET delivered_at = $1
                WHERE id IN (SELECT id FROM message WHERE recipient = $2 AND \(MessageState.pending.sqlCondition)
                             ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) \(fence)
                RETURNING \(Self.messageColumns)
                """, binds: fence.isEmpty ? try Self.binds(now, name, limit) : try Self.binds(now, name, limit, self.node)), logger: self.logger))
            guard !claimed.isEmpty else { return RecvCommand.Reply(messages: [], unread: 0) }
            return RecvCommand.Reply(messages: claimed.sorted { $0.id < $1.id }, unread: try await Self.count(client, .pending, name, logger: self.logger))
        }
    }

    public func wakeReceivers(_ agents: [AgentName]) { waiters.notify(agents.map(\.rawValue)) }

    public func ackTurn(_ agent: AgentName, ids: [Int64], allInflight: Bool) throws -> AckTurnCommand.Reply {
        guard ids.count <= WireLimits.maxAckIDs else { throw BrokerError.tooManyIDs(ids.count) }
        let now = clock(), logger = self.logger
        return try write { c in
            var wanted = Set(ids)
            if allInflight {
                for try await id in try await c.query(PostgresQuery(unsafeSQL: "SELECT id FROM message WHERE recipient = $1 AND \(MessageState.delivered.sqlCondition)",
                                                                    binds: try Self.binds(agent.rawValue)), logger: logger).decode(Int64.self) {
                    wanted.insert(id)
                }
            }
            let outcome = try await Self.transition(c, recipient: agent.rawValue, ids: Array(wanted), event: .ack, logger: logger) { ids in
                "UPDATE message SET acked_at = \(now) WHERE id = ANY(\(ids))"
            }
            // Acking twice is fine: an id already acked counts as acked.
            return AckTurnCommand.Reply(acked: (outcome.moved.map(\.id) + outcome.unchanged).sorted(), skipped: outcome.skipped)
        }
    }

    public func deadLetter(_ agent: AgentName, ids: [Int64], reason: String) throws -> (reply: DeadLetterCommand.Reply, messages: [MessageView]) {
        guard ids.count <= WireLimits.maxAckIDs else { throw BrokerError.tooManyIDs(ids.count) }
        let now = clock(), logger = self.logger
        let reason = String(reason.prefix(WireLimits.maxBodyBytes))
        return try write { c in
            let outcome = try await Self.transition(c, recipient: agent.rawValue, ids: ids, event: .deadLetter, logger: logger) { ids in
                "UPDATE message SET dead_at = \(now), dead_reason = \(reason) WHERE id = ANY(\(ids))"
            }
            let dead = outcome.moved.map { m -> MessageView in
                var m = m
                m.state = .dead
                m.deadReason = reason
                return m
            }
            return (DeadLetterCommand.Reply(dead: dead.map(\.id), skipped: outcome.skipped), dead)
        }
    }

    public func requeueInflight(_ agent: AgentName, keep: [Int64]) throws -> Int {
        let logger = self.logger, kept = Set(keep)
        return try write { c in
            var inflight: [Int64] = []
            for try await id in try await c.query(PostgresQuery(unsafeSQL: "SELECT id FROM message WHERE recipient = $1 AND \(MessageState.delivered.sqlCondition)",
                                                                binds: try Self.binds(agent.rawValue)), logger: logger).decode(Int64.self) {
                if !kept.contains(id) { inflight.append(id) }
            }
            let n = try await Self.transition(c, recipient: agent.rawValue, ids: inflight, event: .requeue, logger: logger) { ids in
                "UPDATE message SET delivered_at = NULL, redelivered = true WHERE id = ANY(\(ids))"
            }.moved.count
            if n > 0 { try await c.query("SELECT pg_notify(\(Self.channel), \(agent.rawValue))", logger: logger) }
            return n
        }
    }

    /// Applies a lifecycle event to each of `recipient`'s messages among `ids` (locked for the
    /// transaction): those the machine moves are written by one statement `update` makes; ids it leaves
    /// unchanged come back as such; the rest are skipped with the reason. As the SQLite store's.
    static func transition(_ c: PostgresConnection, recipient: String, ids: [Int64], event: MessageEvent, logger: Logger,
                           update: ([Int64]) -> PostgresQuery) async throws
        -> (moved: [MessageView], unchanged: [Int64], skipped: [AckTurnCommand.Skipped]) {
        let wanted = Array(Set(ids)).sorted()
        guard !wanted.isEmpty else { return ([], [], []) }
        var rows: [Int64: MessageView] = [:]
        for m in try await messages(try await c.query(PostgresQuery(unsafeSQL: "SELECT \(messageColumns) FROM message WHERE id = ANY($1) FOR UPDATE",
                                                                    binds: try binds(wanted)), logger: logger)) {
            rows[m.id] = m
        }
        var moved: [MessageView] = [], unchanged: [Int64] = [], skipped: [AckTurnCommand.Skipped] = []
        for id in wanted {
            guard let row = rows[id], row.to == recipient else {
                skipped.append(.init(id: id, reason: "message \(id) is not in your inbox"))
                continue
            }
            var life = MessageLifecycle(state: row.state, redelivered: row.redelivered)
            switch life.apply(event) {
            case .moved: moved.append(row)
            case .unchanged: unchanged.append(id)
            case .refused(let why): skipped.append(.init(id: id, reason: "message \(id) \(why)"))
            }
        }
        if !moved.isEmpty { try await c.query(update(moved.map(\.id)), logger: logger) }
        return (moved, unchanged, skipped)
    }

    public func counts(_ recipient: String) throws -> (unread: Int, inflight: Int) {
        try read { client in
            (try await Self.count(client, .pending, recipient, logger: self.logger), try await Self.count(client, .delivered, recipient, logger: self.logger))
        }
    }

    static func count(_ client: PostgresClient, _ state: MessageState, _ recipient: String, logger: Logger) async throws -> Int {
        var n = 0
        for try await c in try await client.query(PostgresQuery(unsafeSQL: "SELECT COUNT(*) FROM message WHERE recipient = $1 AND \(state.sqlCondition)",
                                                                binds: try binds(recipient)), logger: logger).decode(Int.self) { n = c }
        return n
    }

    public func messageCounts() throws -> [MessageState: Int] {
        try read { client in
            var out: [MessageState: Int] = [:]
            for state in [MessageState.pending, .delivered, .dead] {
                for try await n in try await client.query(PostgresQuery(unsafeSQL: "SELECT COUNT(*) FROM message WHERE \(state.sqlCondition)"),
                                                          logger: self.logger).decode(Int.self) { out[state] = n }
            }
            return out
        }
    }

    public func recent(_ party: String, limit: Int) throws -> [MessageView] {
        try read { client in
            try await Self.messages(try await client.query(PostgresQuery(unsafeSQL: """
                SELECT \(Self.messageColumns) FROM message WHERE id IN (
                    (SELECT id FROM message WHERE sender = $1 ORDER BY id DESC LIMIT $2)
                    UNION
                    (SELECT id FROM message WHERE recipient = $1 ORDER BY id DESC LIMIT $2)
                ) ORDER BY id DESC LIMIT $2
                """, binds: try Self.binds(party, limit)), logger: self.logger))
        }
    }

    public func recentMessages(limit: Int) throws -> [MessageView] {
        try read { client in
            try await Self.messages(try await client.query(PostgresQuery(unsafeSQL: "SELECT \(Self.messageColumns) FROM message ORDER BY id DESC LIMIT $1",
                                                                         binds: try Self.binds(limit)), logger: self.logger))
        }
    }

    public func messages(ids: [Int64]) throws -> [MessageView] {
        guard !ids.isEmpty else { return [] }
        return try read { client in
            try await Self.messages(try await client.query(PostgresQuery(unsafeSQL: "SELECT \(Self.messageColumns) FROM message WHERE id = ANY($1) ORDER BY id",
                                                                         binds: try Self.binds(ids)), logger: self.logger))
        }
    }

    public func operatorInbox(limit: Int) throws -> [MessageView] {
        let now = clock(), logger = self.logger, me = Recipient.operator.description
        return try write { c in
            let rows = try await Self.messages(try await c.query(PostgresQuery(unsafeSQL: """
                SELECT \(Self.messageColumns) FROM message WHERE recipient = $1 ORDER BY id DESC LIMIT $2
                """, binds: try Self.binds(me, limit)), logger: logger))
            // Shown is read: each unread one is delivered (if it was not yet) and acked, both through the lifecycle.
            let unread = rows.filter { $0.ackedAt == nil }
            _ = try await Self.transition(c, recipient: me, ids: unread.filter { $0.deliveredAt == nil }.map(\.id), event: .deliver, logger: logger) { ids in
                "UPDATE message SET delivered_at = \(now) WHERE id = ANY(\(ids))"
            }
            _ = try await Self.transition(c, recipient: me, ids: unread.map(\.id), event: .ack, logger: logger) { ids in
                "UPDATE message SET acked_at = \(now) WHERE id = ANY(\(ids))"
            }
            return rows
        }
    }

    public func sweep(olderThan window: Double, batch: Int, stop: () -> Bool) throws -> Int {
        let cutoff = clock() - window
        var total = 0
        while !stop() {
            let n = try write { c in
                try await c.changed("""
                    DELETE FROM message WHERE id IN (SELECT id FROM (
                        (SELECT id FROM message WHERE acked_at IS NOT NULL AND acked_at < \(cutoff) LIMIT \(batch))
                        UNION ALL
                        (SELECT id FROM message WHERE dead_at IS NOT NULL AND dead_at < \(cutoff) LIMIT \(batch))) AS finished LIMIT \(batch))
                    RETURNING 1
                    """, logger: self.logger)
            }
            total += n
            if n < batch { break }
        }
        return total
    }

    public func releaseReceivers() { waiters.stopAll() }

    public var durability: String { "PostgreSQL, synchronous_commit=\(synchronousCommit.withLock { $0 })" }

    /// Values bound to `$1`, `$2`, … of a statement whose text is assembled (a state's condition spliced in).
    static func binds(_ values: any PostgresThrowingDynamicTypeEncodable...) throws -> PostgresBindings {
        var b = PostgresBindings()
        for v in values { try b.append(v) }
        return b
    }
}
