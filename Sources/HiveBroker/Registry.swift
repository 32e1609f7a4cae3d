import Foundation
import GRDB
import HiveWire
import Synchronization

/// The registry: which agents exist, which are tombstones or stopped, and the uid each cage runs as.
extension Broker {
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
}
