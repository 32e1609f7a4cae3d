import Foundation
import HiveBroker
import HiveWire
import PostgresNIO

/// The registry on PostgreSQL: which agents exist, which are tombstones or stopped, the uid each cage
/// runs as. The same rules as the SQLite store's (HiveBroker/Registry.swift).
extension PostgresBroker: AgentRegistry {
    @discardableResult
    public func ensureManager() throws -> Bool {
        // The manager lives on the node that made the hive: the one holding its config repos and approvals.
        let now = clock(), logger = self.logger, node = self.node
        let (fresh, placed) = try write { c in
            // A manager registered before it had a node (an older hive) is placed here; true only when inserted.
            var answer = (false, "")
            for try await row in try await c.query("""
                INSERT INTO agent (name, created_at, node) VALUES (\(AgentName.manager.rawValue), \(now), \(node))
                ON CONFLICT (name) DO UPDATE SET node = COALESCE(agent.node, excluded.node) RETURNING (xmax = 0), node
                """, logger: logger).decode((Bool, String).self) { answer = row }
            return answer
        }
        // The first heartbeat went out before this row existed: the manager placed here may run at once.
        if placed == node { nodeState.withLock { _ = $0?.placedHere.insert(AgentName.manager.rawValue) } }
        return fresh
    }

    public func register(_ name: AgentName) throws(BrokerError) -> AgentRecord { try register(name, placedOn: node) }

    func register(_ name: AgentName, placedOn node: String) throws(BrokerError) -> AgentRecord {
        let now = clock(), logger = self.logger
        let record = try Self.typed {
            try write { c in
                if let existing = try await Self.record(c, name.rawValue, logger: logger) {
                    throw existing.destroyedAt == nil ? BrokerError.alreadyExists(name.rawValue) : .tombstoneExists(name.rawValue)
                }
                // Two nodes registering one name at once: the primary key lets one win; the other is told.
                guard try await c.changed("""
                    INSERT INTO agent (name, created_at, node) VALUES (\(name.rawValue), \(now), \(node)) ON CONFLICT (name) DO NOTHING RETURNING 1
                    """, logger: logger) == 1 else { throw BrokerError.alreadyExists(name.rawValue) }
                return AgentRecord(name: name.rawValue, createdAt: now, destroyedAt: nil)
            }
        }
        // Placed here: this node may run it at once (the next heartbeat would be up to 2 s away).
        if node == self.node { nodeState.withLock { _ = $0?.placedHere.insert(name.rawValue) } }
        return record
    }

    public func destroy(_ name: AgentName, purge: Bool) throws(BrokerError) {
        guard name != .manager else { throw .managerIsPermanent }
        let now = clock(), logger = self.logger
        try Self.typed {
            try write { c in
                guard try await Self.record(c, name.rawValue, logger: logger, lock: true) != nil else { throw BrokerError.unknownAgent(name.rawValue) }
                if purge {
                    try await c.query("DELETE FROM message WHERE recipient = \(name.rawValue)", logger: logger)
                    try await c.query("DELETE FROM reminder WHERE agent = \(name.rawValue)", logger: logger)
                    try await c.query("DELETE FROM agent WHERE name = \(name.rawValue)", logger: logger)
                } else {
                    try await c.query("UPDATE agent SET destroyed_at = \(now) WHERE name = \(name.rawValue) AND destroyed_at IS NULL", logger: logger)
                }
                try await c.query("SELECT pg_notify(\(Self.channel), \(name.rawValue))", logger: logger)
            }
        }
    }

    public func revive(_ agent: AgentName) throws(BrokerError) {
        let logger = self.logger
        try Self.typed {
            try write { c in
                guard let record = try await Self.record(c, agent.rawValue, logger: logger, lock: true) else { throw BrokerError.unknownAgent(agent.rawValue) }
                guard record.destroyedAt != nil else { throw BrokerError.notATombstone(agent.rawValue) }
                try await c.query("UPDATE agent SET destroyed_at = NULL, stopped = false WHERE name = \(agent.rawValue)", logger: logger)
            }
        }
    }

    public func agents() throws -> [AgentCounts] {
        let logger = self.logger
        return try read { client in
            var records: [AgentRecord] = []
            for try await (name, created, destroyed) in try await client.query("SELECT name, created_at, destroyed_at FROM agent ORDER BY name COLLATE \"C\"", logger: logger)
                .decode((String, Double, Double?).self) {
                records.append(AgentRecord(name: name, createdAt: created, destroyedAt: destroyed))
            }
            var counts: [MessageState: [String: Int]] = [:]
            for state in [MessageState.pending, .delivered, .dead] {
                // Each state's partial index holds only its rows.
                for try await (recipient, n) in try await client.query(
                    PostgresQuery(unsafeSQL: "SELECT recipient, COUNT(*) FROM message WHERE \(state.sqlCondition) GROUP BY recipient"), logger: logger)
                    .decode((String, Int).self) { counts[state, default: [:]][recipient] = n }
            }
            return records.map {
                AgentCounts(record: $0, unread: counts[.pending]?[$0.name] ?? 0, inflight: counts[.delivered]?[$0.name] ?? 0,
                            dead: counts[.dead]?[$0.name] ?? 0)
            }
        }
    }

    public func agent(_ name: AgentName) throws -> AgentRecord? {
        let logger = self.logger
        return try read { client in try await client.withConnection { try await Self.record($0, name.rawValue, logger: logger) } }
    }

    public func setStopped(_ agent: AgentName, _ stopped: Bool) throws {
        let logger = self.logger
        try read { client in try await client.query("UPDATE agent SET stopped = \(stopped) WHERE name = \(agent.rawValue)", logger: logger) }
    }

    public func isStopped(_ agent: AgentName) throws -> Bool {
        let logger = self.logger
        return try read { client in
            var stopped = false
            for try await s in try await client.query("SELECT stopped FROM agent WHERE name = \(agent.rawValue)", logger: logger).decode(Bool.self) { stopped = s }
            return stopped
        }
    }

    /// As the SQLite store: allocated upwards in `range` on first use, never reused. `skip` (the host's
    /// passwd) is asked outside the transaction, so the transaction takes the uid only if no node took one
    /// at or above it meanwhile, and otherwise the allocation starts over.
    public func cageUID(for agent: AgentName, in range: ClosedRange<Int>, skip: (Int) -> Bool) throws -> Int {
        let logger = self.logger
        while true {
            let (current, next) = try read { client in try await client.withConnection { try await Self.uids(agent, range, $0, logger: logger) } }
            if let current, range.contains(current) { return current }
            var candidate = next
            while candidate <= range.upperBound && skip(candidate) { candidate += 1 }
            guard candidate <= range.upperBound else { throw BrokerError.uidsUsedUp(range) }
            let chosen = candidate
            let taken = try write { c -> Int? in
                // One allocation at a time across nodes.
                try await c.query("SELECT pg_advisory_xact_lock(\(PostgresSchema.uidLock))", logger: logger)
                let (current, next) = try await Self.uids(agent, range, c, logger: logger)
                if let current, range.contains(current) { return current }
                guard next <= chosen else { return nil }
                try await c.query("UPDATE agent SET uid = \(chosen) WHERE name = \(agent.rawValue)", logger: logger)
                try await c.query("""
                    INSERT INTO hive_setting (key, value) VALUES ('last_uid', \(chosen)) ON CONFLICT (key) DO UPDATE SET value = excluded.value
                    """, logger: logger)
                return chosen
            }
            if let taken { return taken }
        }
    }

    /// The agent's uid, and the lowest uid of `range` above every one handed out.
    static func uids(_ agent: AgentName?, _ range: ClosedRange<Int>, _ c: PostgresConnection, logger: Logger) async throws -> (Int?, Int) {
        var current: Int?, next = range.lowerBound
        for try await (uid, top) in try await c.query("""
            SELECT (SELECT uid FROM agent WHERE name = \(agent?.rawValue ?? "")),
                   GREATEST((SELECT MAX(uid) FROM agent WHERE uid BETWEEN \(range.lowerBound) AND \(range.upperBound)),
                            (SELECT value FROM hive_setting WHERE key = 'last_uid' AND value BETWEEN \(range.lowerBound) AND \(range.upperBound - 1)))
            """, logger: logger).decode((Int?, Int?).self) {
            current = uid
            if let top { next = top + 1 }
        }
        return (current, next)
    }

    public func agent(withUID uid: Int) throws -> String? {
        let logger = self.logger
        return try read { client in
            var name: String?
            for try await n in try await client.query("SELECT name FROM agent WHERE uid = \(uid)", logger: logger).decode(String.self) { name = n }
            return name
        }
    }

    public func handedOutUIDs() throws -> Bool {
        let logger = self.logger
        return try read { client in
            var any = false
            for try await _ in try await client.query("SELECT 1 FROM hive_setting WHERE key = 'last_uid'", logger: logger) { any = true }
            return any
        }
    }

    /// One agent's record; with `lock`, held for the transaction.
    static func record(_ c: PostgresConnection, _ name: String, logger: Logger, lock: Bool = false) async throws -> AgentRecord? {
        var record: AgentRecord?
        let query = lock ? PostgresQuery("SELECT name, created_at, destroyed_at FROM agent WHERE name = \(name) FOR UPDATE")
                         : PostgresQuery("SELECT name, created_at, destroyed_at FROM agent WHERE name = \(name)")
        for try await (n, created, destroyed) in try await c.query(query, logger: logger).decode((String, Double, Double?).self) {
            record = AgentRecord(name: n, createdAt: created, destroyedAt: destroyed)
        }
        return record
    }
}
