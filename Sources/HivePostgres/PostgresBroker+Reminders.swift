import Foundation
import HiveBroker
import HiveWire
import PostgresNIO

/// Reminders on PostgreSQL. Delivery is exactly once across nodes by itself: the reminders a batch fires
/// are locked (`FOR UPDATE SKIP LOCKED`) in the transaction that stores their messages, so a second node
/// firing at the same moment takes others or none.
extension PostgresBroker: ReminderStore {
    /// Reminders one transaction fires on this store: no single writer to share (SQLite's reason for 32),
    /// so a batch is sized for throughput (10,000 due at once, docs/benchmarks.md).
    public static let reminderBatch = 256

    public func createReminder(_ agent: AgentName, body: String, filePath: String?, dueAt: Double, cap: Int) throws -> (id: Int64, pending: Int) {
        let now = clock(), logger = self.logger
        return try write { c in
            // The agent's row held: two nodes setting reminders for one agent cannot both pass the cap.
            guard let record = try await Self.record(c, agent.rawValue, logger: logger, lock: true), record.destroyedAt == nil else {
                throw BrokerError.unknownAgent(agent.rawValue)
            }
            let pending = try await Self.pendingCount(c, agent, logger: logger)
            guard pending < cap else { throw BrokerError.reminderCap(cap) }
            var id: Int64 = 0
            for try await v in try await c.query("""
                INSERT INTO reminder (agent, body, file_path, created_at, due_at) VALUES (\(agent.rawValue), \(body), \(filePath), \(now), \(dueAt)) RETURNING id
                """, logger: logger).decode(Int64.self) { id = v }
            return (id, pending + 1)
        }
    }

    private static func pendingCount(_ c: PostgresConnection, _ agent: AgentName, logger: Logger) async throws -> Int {
        var n = 0
        for try await v in try await c.query("SELECT COUNT(*) FROM reminder WHERE agent = \(agent.rawValue) AND state = 'pending'", logger: logger)
            .decode(Int.self) { n = v }
        return n
    }

    public func cancelReminder(_ id: Int64) throws {
        let now = clock(), logger = self.logger
        try write { c in
            guard try await c.changed("UPDATE reminder SET state = 'cancelled', finished_at = \(now) WHERE id = \(id) AND state = 'pending' RETURNING 1",
                                      logger: logger) == 0 else { return }
            var state: String?
            for try await s in try await c.query("SELECT state FROM reminder WHERE id = \(id)", logger: logger).decode(String.self) { state = s }
            throw BrokerError.noSuchReminder(id, state: state)
        }
    }

    public func pendingReminders(agent: AgentName?) throws -> [ReminderView] {
        try read { client in
            let filter = agent == nil ? "" : "AND agent = $1"
            var out: [ReminderView] = []
            for try await (id, name, body, path, created, due, state) in try await client.query(PostgresQuery(unsafeSQL: """
                SELECT id, agent, body, file_path, created_at, due_at, state FROM reminder WHERE state = 'pending' \(filter) ORDER BY due_at, id
                """, binds: try agent.map { try Self.binds($0.rawValue) } ?? PostgresBindings()), logger: self.logger)
                .decode((Int64, String, String, String?, Double, Double, String).self) {
                out.append(ReminderView(id: id, agent: name, body: body, filePath: path, createdAt: created, dueAt: due,
                                        state: ReminderState(rawValue: state) ?? .failed))
            }
            return out
        }
    }

    public func pendingReminderCount(_ agent: AgentName) throws -> Int {
        try read { client in try await client.withConnection { try await Self.pendingCount($0, agent, logger: self.logger) } }
    }

    public func nextReminderDue() throws -> Double? {
        try read { client in
            var due: Double?
            for try await d in try await client.query("SELECT MIN(due_at) FROM reminder WHERE state = 'pending'", logger: self.logger).decode(Double?.self) { due = d }
            return due
        }
    }

    /// As on SQLite: up to `limit` due reminders, each agent's oldest first, taken in rounds across agents
    /// (one agent's flood cannot starve another's); each one's message and its own state change commit
    /// together. Set-based: one INSERT of the messages, one UPDATE of the reminders, one INSERT of the attempts.
    public func deliverDueReminders(limit: Int) throws -> (delivered: Int, failed: Int) {
        let now = clock(), logger = self.logger
        let (delivered, failed, agents) = try write { c -> (Int, Int, Set<String>) in
            // Each registered agent's oldest due reminders on its (agent, due_at) index, at most `limit` each,
            // then taken in rounds: never a sort of every due reminder (a window over all of them cost 18 ms a
            // batch with 10,000 due).
            var chosen: [Int64] = []
            for try await id in try await c.query("""
                SELECT id FROM (SELECT r.id, a.name, row_number() OVER (PARTITION BY a.name ORDER BY r.due_at, r.id) AS round
                                FROM agent a CROSS JOIN LATERAL (
                                    SELECT id, due_at FROM reminder
                                    WHERE agent = a.name AND state = 'pending' AND due_at <= \(now) ORDER BY due_at, id LIMIT \(limit)) r) t
                ORDER BY round, name COLLATE "C" LIMIT \(limit)
                """, logger: logger).decode(Int64.self) { chosen.append(id) }
            guard !chosen.isEmpty else { return (0, try await Self.failOrphanedReminders(c, now: now, logger: logger), []) }
            var live: Set<String> = []
            for try await name in try await c.query("SELECT name FROM agent WHERE destroyed_at IS NULL", logger: logger).decode(String.self) { live.insert(name) }
            // Locked here; one another node holds (firing them now) is skipped, one cancelled since is no longer pending.
            var fire: [(id: Int64, agent: String, text: String)] = [], fail: [(id: Int64, agent: String)] = []
            for try await (id, agent, body, path, created) in try await c.query("""
                SELECT id, agent, body, file_path, created_at FROM reminder WHERE id = ANY(\(chosen)) AND state = 'pending'
                ORDER BY array_position(\(chosen), id) FOR UPDATE SKIP LOCKED
                """, logger: logger).decode((Int64, String, String, String?, Double).self) {
                if live.contains(agent) {
                    fire.append((id, agent, Broker.reminderMessage(body: body, filePath: path, createdAt: created, now: now)))
                } else {
                    fail.append((id, agent))
                }
            }
            if !fail.isEmpty {
                let errors = fail.map { "agent '\($0.agent)' is not registered or was destroyed" }
                try await Self.finishReminders(c, ids: fail.map(\.id), agents: fail.map(\.agent), messages: nil, errors: errors, now: now, logger: logger)
            }
            if !fire.isEmpty {
                var ids: [Int64] = []
                for try await id in try await c.query("""
                    INSERT INTO message (sender, recipient, body, sent_at)
                    SELECT \(Sender.reminder.description), a, b, \(now) FROM unnest(\(fire.map(\.agent))::text[], \(fire.map(\.text))::text[])
                         WITH ORDINALITY AS u(a, b, n)
                    ORDER BY n RETURNING id
                    """, logger: logger).decode(Int64.self) { ids.append(id) }
                try await Self.finishReminders(c, ids: fire.map(\.id), agents: fire.map(\.agent), messages: ids.sorted(), errors: nil, now: now, logger: logger)
                try await Self.notify(Array(Set(fire.map(\.agent))), on: c, logger: logger)
            }
            return (fire.count, fail.count, Set(fire.map(\.agent)))
        }
        waiters.notify(agents)
        return (delivered, failed)
    }

    /// Marks reminders delivered (with their messages) or failed (with their errors), with an attempt each.
    private static func finishReminders(_ c: PostgresConnection, ids: [Int64], agents: [String], messages: [Int64]?, errors: [String]?,
                                        now: Double, logger: Logger) async throws {
        if let messages {
            try await c.query("""
                UPDATE reminder SET state = 'delivered', finished_at = \(now), message_id = u.m, attempts = attempts + 1
                FROM unnest(\(ids)::int8[], \(messages)::int8[]) AS u(r, m) WHERE reminder.id = u.r
                """, logger: logger)
        } else if let errors {
            try await c.query("""
                UPDATE reminder SET state = 'failed', finished_at = \(now), attempts = attempts + 1, last_error = u.e
                FROM unnest(\(ids)::int8[], \(errors)::text[]) AS u(r, e) WHERE reminder.id = u.r
                """, logger: logger)
        }
        try await recordAttempts(c, ids: ids, agents: agents, errors: errors, now: now, logger: logger)
    }

    private static func recordAttempts(_ c: PostgresConnection, ids: [Int64], agents: [String], errors: [String]?, now: Double, logger: Logger) async throws {
        let errorTexts = errors ?? ids.map { _ in "" }
        try await c.query("""
            INSERT INTO reminder_attempt (reminder_id, agent, at, ok, error)
            SELECT r, a, \(now), \(errors == nil), NULLIF(e, '') FROM unnest(\(ids)::int8[], \(agents)::text[], \(errorTexts)::text[]) AS u(r, a, e)
            """, logger: logger)
    }

    /// Due reminders of agents that no longer exist at all would never be chosen: failed, as on SQLite.
    private static func failOrphanedReminders(_ c: PostgresConnection, now: Double, logger: Logger) async throws -> Int {
        var orphans: [(Int64, String)] = []
        for try await (id, agent) in try await c.query("""
            SELECT id, agent FROM reminder WHERE state = 'pending' AND due_at <= \(now) AND agent NOT IN (SELECT name FROM agent) FOR UPDATE SKIP LOCKED
            """, logger: logger).decode((Int64, String).self) { orphans.append((id, agent)) }
        guard !orphans.isEmpty else { return 0 }
        try await finishReminders(c, ids: orphans.map(\.0), agents: orphans.map(\.1), messages: nil,
                                  errors: orphans.map { "agent '\($0.1)' no longer exists" }, now: now, logger: logger)
        return orphans.count
    }

    public func recordFailedDelivery(error: String, limit: Int) throws {
        let now = clock(), logger = self.logger
        try write { c in
            var due: [(Int64, String)] = []
            for try await (id, agent) in try await c.query("""
                SELECT id, agent FROM reminder WHERE state = 'pending' AND due_at <= \(now) ORDER BY due_at LIMIT \(limit)
                """, logger: logger).decode((Int64, String).self) { due.append((id, agent)) }
            guard !due.isEmpty else { return }
            try await c.query("UPDATE reminder SET attempts = attempts + 1, last_error = \(error) WHERE id = ANY(\(due.map(\.0)))", logger: logger)
            try await Self.recordAttempts(c, ids: due.map(\.0), agents: due.map(\.1), errors: due.map { _ in error }, now: now, logger: logger)
        }
    }

    public func reminderRollup(_ agent: AgentName, since: Double) throws -> ReminderRollupCommand.Reply {
        let from = clock() - since
        return try read { client in
            var attempts = 0, ok = 0
            for try await (a, o) in try await client.query("""
                SELECT COUNT(*), COUNT(*) FILTER (WHERE ok) FROM reminder_attempt WHERE agent = \(agent.rawValue) AND at >= \(from)
                """, logger: self.logger).decode((Int, Int).self) { (attempts, ok) = (a, o) }
            return ReminderRollupCommand.Reply(attempts: attempts, successes: ok, failures: attempts - ok)
        }
    }

    public func sweepReminders(olderThan window: Double, batch: Int) throws -> Int {
        let cutoff = clock() - window
        var total = 0
        for sql in ["DELETE FROM reminder WHERE id IN (SELECT id FROM reminder WHERE finished_at IS NOT NULL AND finished_at < $1 LIMIT $2) RETURNING 1",
                    "DELETE FROM reminder_attempt WHERE id IN (SELECT id FROM reminder_attempt WHERE at < $1 LIMIT $2) RETURNING 1"] {
            while true {
                let n = try write { c in try await c.changed(PostgresQuery(unsafeSQL: sql, binds: try Self.binds(cutoff, batch)), logger: self.logger) }
                total += n
                if n < batch { break }
            }
        }
        return total
    }
}
