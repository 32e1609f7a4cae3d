import Foundation
import GRDB
import HiveWire

/// Reminders: rows that become inbox messages (sender `reminder`) when due.
extension Broker {
    /// Stores a reminder for `agent`, refusing when `cap` reminders are already pending.
    public func createReminder(_ agent: AgentName, body: String, filePath: String?, dueAt: Double, cap: Int) throws -> (id: Int64, pending: Int) {
        let now = clock()
        return try pool.write { db in
            guard try Queries.isLive(db, agent.rawValue) == true else { throw BrokerError.unknownAgent(agent.rawValue) }
            let pending = try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*) FROM reminder WHERE agent = ? AND state = 'pending'"),
                                           arguments: [agent.rawValue]) ?? 0
            guard pending < cap else { throw BrokerError.reminderCap(cap) }
            try db.cachedStatement(sql: "INSERT INTO reminder (agent, body, file_path, created_at, due_at) VALUES (?, ?, ?, ?, ?)")
                .execute(arguments: [agent.rawValue, body, filePath, now, dueAt])
            return (db.lastInsertedRowID, pending + 1)
        }
    }

    /// Cancels a pending reminder. Throws when there is none with that id (or it already fired).
    public func cancelReminder(_ id: Int64) throws {
        let now = clock()
        try pool.write { db in
            try db.execute(sql: "UPDATE reminder SET state = 'cancelled', finished_at = ? WHERE id = ? AND state = 'pending'", arguments: [now, id])
            if db.changesCount == 0 {
                let state = try String.fetchOne(db, sql: "SELECT state FROM reminder WHERE id = ?", arguments: [id])
                throw BrokerError.noSuchReminder(id, state: state)
            }
        }
    }

    /// Pending reminders, soonest first, for one agent or all.
    public func pendingReminders(agent: AgentName? = nil) throws -> [ReminderView] {
        try pool.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT * FROM reminder WHERE state = 'pending' \(agent == nil ? "" : "AND agent = ?") ORDER BY due_at, id
                """, arguments: StatementArguments(agent.map { [$0.rawValue] } ?? []))
            return rows.map {
                ReminderView(id: $0["id"], agent: $0["agent"], body: $0["body"], filePath: $0["file_path"],
                             createdAt: $0["created_at"], dueAt: $0["due_at"], state: $0["state"])
            }
        }
    }

    /// How many reminders of `agent` wait to fire.
    public func pendingReminderCount(_ agent: AgentName) throws -> Int {
        try pool.read { db in
            try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*) FROM reminder WHERE agent = ? AND state = 'pending'"), arguments: [agent.rawValue]) ?? 0
        }
    }

    /// When the next pending reminder is due (unix seconds), or nil.
    public func nextReminderDue() throws -> Double? {
        try pool.read { db in try Double.fetchOne(db, sql: "SELECT MIN(due_at) FROM reminder WHERE state = 'pending'") }
    }

    /// Fires up to `limit` due reminders in one transaction: each one's inbox row and its own state change
    /// commit together, so a crash can neither lose one nor deliver one twice. Agents share the batch
    /// fairly: each agent's oldest due reminders come first, taken in rounds across agents, so one agent's
    /// flood cannot starve another's. The choice is read before the write transaction (per agent, on an
    /// index), so the writer is held only for the inserts. Returns how many were delivered and failed.
    public func deliverDueReminders(limit: Int) throws -> (delivered: Int, failed: Int) {
        let now = clock()
        let candidates = try pool.read { db -> [Row] in
            // Registered agents are few; a per-agent query on the (agent, due_at) index beats scanning
            // every due reminder to find who has some.
            let agents = try String.fetchAll(db.cachedStatement(sql: "SELECT name FROM agent ORDER BY name"))
            var perAgent: [[Row]] = []
            for agent in agents {
                perAgent.append(try Row.fetchAll(db.cachedStatement(sql: """
                    SELECT id, agent, body, file_path, created_at FROM reminder
                    WHERE agent = ? AND state = 'pending' AND due_at <= ? ORDER BY due_at, id LIMIT ?
                    """), arguments: [agent, now, limit]))
            }
            var rounds: [Row] = []
            var i = 0
            while rounds.count < limit, perAgent.contains(where: { i < $0.count }) {
                for rows in perAgent where i < rows.count && rounds.count < limit { rounds.append(rows[i]) }
                i += 1
            }
            return rounds
        }
        guard !candidates.isEmpty else { return (0, try failOrphanedReminders(now: now)) }
        let (delivered, failed, agents) = try pool.write { db -> (Int, Int, Set<String>) in
            var delivered = 0, failed = 0
            var agents = Set<String>()
            let live = try Set(Queries.liveAgentNames(db))
            for r in candidates {
                let id: Int64 = r["id"], agent: String = r["agent"]
                // Cancelled since it was chosen: skip it.
                guard try String.fetchOne(db.cachedStatement(sql: "SELECT state FROM reminder WHERE id = ?"), arguments: [id]) == "pending" else { continue }
                guard live.contains(agent) else {
                    let error = "agent '\(agent)' is not registered or was destroyed"
                    try db.execute(sql: "UPDATE reminder SET state = 'failed', finished_at = ?1, attempts = attempts + 1, last_error = ?2 WHERE id = ?3",
                                   arguments: [now, error, id])
                    try Self.recordAttempt(db, reminder: id, agent: agent, at: now, error: error)
                    failed += 1
                    continue
                }
                var row = MessageRow(id: nil, sender: Sender.reminder.description, recipient: agent,
                                     body: Self.reminderMessage(body: r["body"], filePath: r["file_path"], createdAt: r["created_at"], now: now),
                                     sentAt: now, deliveredAt: nil, ackedAt: nil, inReplyTo: nil, broadcast: false, redelivered: false)
                try row.insert(db)
                try db.cachedStatement(sql: "UPDATE reminder SET state = 'delivered', finished_at = ?, message_id = ?, attempts = attempts + 1 WHERE id = ?")
                    .execute(arguments: [now, row.id, id])
                try Self.recordAttempt(db, reminder: id, agent: agent, at: now, error: nil)
                agents.insert(agent)
                delivered += 1
            }
            return (delivered, failed, agents)
        }
        waiters.notify(agents)
        return (delivered, failed)
    }

    /// Due reminders of agents that no longer exist at all (purged while a reminder was being set) would
    /// never be chosen; mark them failed so the scheduler does not wake for them forever.
    private func failOrphanedReminders(now: Double) throws -> Int {
        try pool.write { db in
            let orphans = try Row.fetchAll(db, sql: """
                SELECT id, agent FROM reminder WHERE state = 'pending' AND due_at <= ? AND agent NOT IN (SELECT name FROM agent)
                """, arguments: [now])
            for r in orphans {
                let error = "agent '\(r["agent"] as String)' no longer exists"
                try db.execute(sql: "UPDATE reminder SET state = 'failed', finished_at = ?, attempts = attempts + 1, last_error = ? WHERE id = ?",
                               arguments: [now, error, r["id"] as Int64])
                try Self.recordAttempt(db, reminder: r["id"], agent: r["agent"], at: now, error: error)
            }
            return orphans.count
        }
    }

    /// Records a batch that could not commit: one failed attempt per reminder that was due, with the error.
    public func recordFailedDelivery(error: String, limit: Int) throws {
        let now = clock()
        try pool.write { db in
            let due = try Row.fetchAll(db, sql: "SELECT id, agent FROM reminder WHERE state = 'pending' AND due_at <= ? ORDER BY due_at LIMIT ?",
                                       arguments: [now, limit])
            for r in due {
                try db.execute(sql: "UPDATE reminder SET attempts = attempts + 1, last_error = ? WHERE id = ?", arguments: [error, r["id"] as Int64])
                try Self.recordAttempt(db, reminder: r["id"], agent: r["agent"], at: now, error: error)
            }
        }
    }

    /// Attempts, successes and failures of the reminders `agent` set, over the last `since` seconds.
    public func reminderRollup(_ agent: AgentName, since: Double) throws -> ReminderRollupCommand.Reply {
        let from = clock() - since
        return try pool.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT COUNT(*) AS attempts, COALESCE(SUM(ok), 0) AS ok FROM reminder_attempt WHERE agent = ? AND at >= ?
                """, arguments: [agent.rawValue, from])
            let attempts: Int = row?["attempts"] ?? 0
            let ok: Int = row?["ok"] ?? 0
            return ReminderRollupCommand.Reply(attempts: attempts, successes: ok, failures: attempts - ok)
        }
    }

    /// Deletes finished reminders (delivered, cancelled, failed) and attempts older than `window` seconds.
    public func sweepReminders(olderThan window: Double, batch: Int = 500) throws -> Int {
        let cutoff = clock() - window
        var total = 0
        for sql in ["DELETE FROM reminder WHERE id IN (SELECT id FROM reminder WHERE finished_at IS NOT NULL AND finished_at < ? LIMIT ?)",
                    "DELETE FROM reminder_attempt WHERE id IN (SELECT id FROM reminder_attempt WHERE at < ? LIMIT ?)"] {
            while true {
                let n = try pool.write { db -> Int in
                    try db.execute(sql: sql, arguments: [cutoff, batch])
                    return db.changesCount
                }
                total += n
                if n < batch { break }
            }
        }
        return total
    }

    private static func recordAttempt(_ db: Database, reminder: Int64, agent: String, at: Double, error: String?) throws {
        try db.cachedStatement(sql: "INSERT INTO reminder_attempt (reminder_id, agent, at, ok, error) VALUES (?, ?, ?, ?, ?)")
            .execute(arguments: [reminder, agent, at, error == nil, error])
    }

    /// The text a reminder arrives with.
    public static func reminderMessage(body: String, filePath: String?, createdAt: Double, now: Double) -> String {
        let ago = max(0, Int(now - createdAt))
        let when = HumanTime.span(seconds: ago)
        var text = "Reminder you set \(when) ago:\n\(body)"
        if let filePath { text += "\n(Path you attached: \(filePath))" }
        // Bodies and paths are capped when the reminder is set; this only guards the message limit.
        while text.utf8.count > WireLimits.maxBodyBytes { text.removeLast() }
        return text
    }
}
