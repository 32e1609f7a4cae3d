import Foundation
import HiveBroker
import HiveHost
import HiveWire
import PostgresNIO
import Synchronization

/// What a store running as a node of a hive keeps in memory: its leases, its duties.
struct NodeState: Sendable {
    /// How long a heartbeat's lease on this node's agents lasts (by the database's clock), and how long
    /// this node trusts its own leases after its last heartbeat that reached the database.
    var lease: Double
    var lastBeat: ContinuousClock.Instant?
    /// Whether the node's session holds the lock on its name (no heartbeat without it).
    var nameHeld = true
    /// The agents placed here, as of the last heartbeat.
    var placedHere: Set<String> = []
    /// Agents that arrived here (hive move) and when: a heartbeat whose read may predate one keeps it.
    var arrivals: [String: ContinuousClock.Instant] = [:]
    var duties: Set<Duty> = []
    /// When the duty session last answered.
    var dutiesChecked: ContinuousClock.Instant?
    let startedAt: Double
}

/// The database's clock, in unix seconds: leases and heartbeats are compared on it, never on a host's.
let databaseNow = "EXTRACT(EPOCH FROM clock_timestamp())::float8"

extension PostgresBroker: HiveNodes {
    /// Makes this store a node of the hive: it publishes heartbeats (``heartbeat(_:)``, core's to call),
    /// holds leases on its agents and competes for the hive's duties, on a session of its own that also
    /// holds the node's name: a second host started with the same `--node` is refused. Before this it is
    /// a plain store (no fencing, every duty its own), as the tests of the store use it.
    public func startNode(lease: Duration = .seconds(15)) throws {
        guard nodeState.withLock({ $0 == nil }) else { return }
        let session = try Self.ours {
            try PostgresThreads.block { [self] in try await Self.bounded({ try await self.openSession() }, late: { c in try? await c.close() }) }
        }
        nodeState.withLock { $0 = NodeState(lease: lease.seconds, startedAt: Date().timeIntervalSince1970) }
        // A move this node had under way when it stopped is off: its agents stay here (an arrival it raced fails).
        let node = self.node, logger = self.logger
        try write { c in try await c.query("UPDATE agent SET moving_to = NULL WHERE node = \(node) AND moving_to IS NOT NULL", logger: logger) }
        let duties = Task(executorPreference: PostgresThreads.shared) { [weak self] () async -> Void in await self?.holdDuties(first: session) }
        addTask(duties)
    }

    public var nodeName: String? { nodeState.withLock { $0 == nil ? nil : node } }

    public func holds(_ duty: Duty) -> Bool {
        nodeState.withLock { s in
            guard let s else { return true }
            // A duty session that has not answered for a while may be gone: its locks with it.
            guard let checked = s.dutiesChecked, ContinuousClock.now - checked < .seconds(3) else { return false }
            return s.duties.contains(duty)
        }
    }

    public func mayRun(_ agent: AgentName) -> Bool {
        nodeState.withLock { s in
            guard let s else { return true }
            guard let beat = s.lastBeat, ContinuousClock.now - beat < .seconds(s.lease) else { return false }
            return s.placedHere.contains(agent.rawValue)
        }
    }

    public func agentsHere() -> [AgentName] {
        nodeState.withLock { $0?.placedHere ?? [] }.sorted().compactMap { try? AgentName($0) }
    }

    public func register(_ name: AgentName, on target: String) throws(BrokerError) -> AgentRecord {
        if target != node {
            let up = try Self.typed { try nodes() }.first { $0.name == target }
            guard let up else { throw .storage("no node named '\(target)' in this hive (hive nodes lists them)") }
            guard up.up else { throw .storage("node '\(target)' has sent no heartbeat for \(Int(up.heartbeatAge)) s: place the agent on a node that is up") }
        }
        return try register(name, placedOn: target)
    }

    public func heartbeat(_ beat: NodeBeat) throws {
        guard let (lease, startedAt, named) = nodeState.withLock({ s in s.map { ($0.lease, $0.startedAt, $0.nameHeld) } }) else { return }
        // Without the lock on its name, another host may be running as this node: no heartbeat, so this one
        // fences itself rather than renew leases both would use.
        guard named else { throw BrokerError.storage("this node's session (the lock on its name) is lost; reconnecting") }
        let node = self.node, logger = self.logger
        // Trust runs from before the request: the database's lease started no earlier than this.
        let sent = ContinuousClock.now
        // One row a heartbeat, plus the agents whose published state changed: the lease is the node's row
        // (claims check it), not a write per agent.
        let placed = try write { c -> Set<String> in
            try await c.query("""
                INSERT INTO hive_node (name, host, endpoint, certificate, token_sha256, started_at, heartbeat_at, cores, memory_mb, load1, lease)
                VALUES (\(node), \(beat.host), \(beat.endpoint), \(beat.certificate), \(beat.tokenSHA256), \(startedAt), \(unescaped: databaseNow),
                        \(beat.cores), \(beat.memoryMegabytes), \(beat.load), \(lease))
                ON CONFLICT (name) DO UPDATE SET host = excluded.host, endpoint = excluded.endpoint, certificate = excluded.certificate,
                    token_sha256 = excluded.token_sha256, started_at = excluded.started_at,
                    heartbeat_at = excluded.heartbeat_at, cores = excluded.cores, memory_mb = excluded.memory_mb, load1 = excluded.load1, lease = excluded.lease
                """, logger: logger)
            if !beat.states.isEmpty {
                try await c.query("""
                    UPDATE agent SET state = u.s, detail = NULLIF(u.d, ''), state_since = NULLIF(u.t, -1)
                    FROM unnest(\(beat.states.map(\.agent))::text[], \(beat.states.map(\.state.rawValue))::text[], \(beat.states.map { $0.detail ?? "" })::text[],
                                \(beat.states.map { $0.since ?? -1 })::float8[]) AS u(a, s, d, t)
                    WHERE agent.name = u.a AND agent.node = \(node)
                      AND (agent.state, agent.detail, agent.state_since) IS DISTINCT FROM (u.s, NULLIF(u.d, ''), NULLIF(u.t, -1))
                    """, logger: logger)
            }
            var placed: Set<String> = []
            for try await name in try await c.query("SELECT name FROM agent WHERE node = \(node) AND destroyed_at IS NULL", logger: logger)
                .decode(String.self) { placed.insert(name) }
            return placed
        }
        nodeState.withLock { state in
            guard var s = state else { return }
            s.lastBeat = sent
            // An arrival after this beat's read began is not in `placed` yet; one before it is, or has left since.
            s.arrivals = s.arrivals.filter { $0.value >= sent }
            s.placedHere = placed.union(s.arrivals.keys)
            state = s
        }
    }

    public func peers() throws -> [NodePeer] {
        return try read { client in
            var peers: [NodePeer] = []
            for try await (name, endpoint, certificate, token, up) in try await client.query("""
                SELECT name, endpoint, certificate, token_sha256, heartbeat_at + lease > \(unescaped: databaseNow) FROM hive_node
                WHERE endpoint IS NOT NULL AND certificate IS NOT NULL AND token_sha256 IS NOT NULL
                """, logger: self.logger).decode((String, String, String, String, Bool).self) {
                peers.append(NodePeer(name: name, endpoint: endpoint, certificate: certificate, tokenSHA256: token, up: up))
            }
            return peers
        }
    }

    public func beginMove(_ agent: AgentName, to target: String) throws -> Bool {
        try changed("""
            UPDATE agent SET moving_to = \(target) WHERE name = \(agent.rawValue) AND node = \(node) AND moving_to IS NULL AND destroyed_at IS NULL RETURNING 1
            """)
    }

    public func callOffMove(_ agent: AgentName, to target: String) throws -> Bool {
        try changed("UPDATE agent SET moving_to = NULL WHERE name = \(agent.rawValue) AND node = \(node) AND moving_to = \(target) RETURNING 1")
    }

    public func moveUnderWay(_ agent: AgentName) throws -> (from: String, to: String)? {
        try read { client in
            var move: (String, String)?
            for try await (from, to) in try await client.query("""
                SELECT node, moving_to FROM agent WHERE name = \(agent.rawValue) AND moving_to IS NOT NULL AND destroyed_at IS NULL
                """, logger: self.logger).decode((String, String).self) { move = (from, to) }
            return move.map { (from: $0.0, to: $0.1) }
        }
    }

    public func arrive(_ agent: AgentName, from: String, uid: Int?) throws -> Bool {
        let arrived = try changed("""
            UPDATE agent SET node = \(node), moving_to = NULL, uid = COALESCE(\(uid), uid), state = NULL, detail = NULL, state_since = NULL
            WHERE name = \(agent.rawValue) AND node = \(from) AND moving_to = \(node) AND destroyed_at IS NULL RETURNING 1
            """)
        // Runnable here at once, not from the next heartbeat on; a heartbeat whose read came before this
        // keeps it too (see ``heartbeat(_:)``).
        if arrived {
            nodeState.withLock { s in
                s?.arrivals[agent.rawValue] = .now
                s?.placedHere.insert(agent.rawValue)
            }
        }
        return arrived
    }

    public func reserveUID(in range: ClosedRange<Int>, skip: (Int) -> Bool) throws -> Int {
        let logger = self.logger
        while true {
            let next = try read { client in try await client.withConnection { try await Self.uids(nil, range, $0, logger: logger).1 } }
            var candidate = next
            while candidate <= range.upperBound && skip(candidate) { candidate += 1 }
            guard candidate <= range.upperBound else { throw BrokerError.uidsUsedUp(range) }
            let chosen = candidate
            let taken = try write { c -> Bool in
                try await c.query("SELECT pg_advisory_xact_lock(\(PostgresSchema.uidLock))", logger: logger)
                guard try await Self.uids(nil, range, c, logger: logger).1 <= chosen else { return false }
                try await c.query("""
                    INSERT INTO hive_setting (key, value) VALUES ('last_uid', \(chosen)) ON CONFLICT (key) DO UPDATE SET value = excluded.value
                    """, logger: logger)
                return true
            }
            if taken { return chosen }
        }
    }

    /// Runs `sql` (an UPDATE … RETURNING 1): whether it changed a row.
    private func changed(_ sql: PostgresQuery) throws -> Bool {
        let logger = self.logger
        return try write { c -> Bool in
            var hit = false
            for try await _ in try await c.query(sql, logger: logger) { hit = true }
            return hit
        }
    }

    public func placements() throws -> [String: Placement] {
        // Down by its own lease: nodes may run with different ones.
        return try read { client in
            var out: [String: Placement] = [:]
            for try await (name, node, up, state, detail, since) in try await client.query("""
                SELECT a.name, a.node, COALESCE(n.heartbeat_at + n.lease > \(unescaped: databaseNow), false), a.state, a.detail, a.state_since
                FROM agent a LEFT JOIN hive_node n ON n.name = a.node WHERE a.node IS NOT NULL
                """, logger: self.logger).decode((String, String, Bool, String?, String?, Double?).self) {
                out[name] = Placement(node: node, nodeUp: up, state: state.flatMap(AgentState.init(rawValue:)), detail: detail.flatMap { $0.isEmpty ? nil : $0 },
                                      since: since)
            }
            return out
        }
    }

    public func nodes() throws -> [NodeView] {
        return try read { client in
            var out: [NodeView] = []
            for try await (name, host, endpoint, started, age, cores, memory, load, agents, lease) in try await client.query("""
                SELECT n.name, n.host, n.endpoint, n.started_at, \(unescaped: databaseNow) - n.heartbeat_at, n.cores, n.memory_mb, n.load1,
                       (SELECT COUNT(*) FROM agent a WHERE a.node = n.name AND a.destroyed_at IS NULL), n.lease
                FROM hive_node n ORDER BY n.name COLLATE "C"
                """, logger: self.logger).decode((String, String, String?, Double, Double, Int, Int, Double, Int, Double).self) {
                out.append(NodeView(name: name, host: host, endpoint: endpoint, startedAt: started, heartbeatAge: max(0, age), up: age < lease,
                                    cores: cores, memoryMegabytes: memory, load: load, agents: agents))
            }
            return out
        }
    }

    /// The fence a claim passes on a node, on `$4` (this node's name): the agent is placed here and this
    /// node's lease on it is current by the database's clock. Empty for a plain store.
    var claimFence: String {
        guard nodeState.withLock({ $0 != nil }) else { return "" }
        return "AND EXISTS (SELECT 1 FROM agent a JOIN hive_node n ON n.name = a.node WHERE a.name = $2 AND a.node = $4 AND n.heartbeat_at + n.lease > \(databaseNow))"
    }

    /// A connection of its own holding this node's name (a session advisory lock on it).
    func openSession() async throws -> PostgresConnection {
        let c = try await PostgresConnection.connect(configuration: connection, id: 1, logger: logger)
        do {
            var mine = false
            for try await got in try await c.query("SELECT pg_try_advisory_lock(\(PostgresSchema.nodeLock), hashtext(\(node)))", logger: logger)
                .decode(Bool.self) { mine = got }
            guard mine else {
                throw BrokerError.storage("node '\(node)' is already running on another host (or its old session has not ended yet): give each host its own --node")
            }
            return c
        } catch {
            try? await c.close()
            throw error
        }
    }

    /// Holds the duties it can get (session advisory locks, one per duty) on the node's own session for as
    /// long as it lives, and tries for the others each second. Each round reads back which locks the
    /// session really holds (pg_locks), so a session the server ended (another node may have the duties
    /// now) is noticed within a second rather than trusted. A holder that dies takes its session with it and
    /// the locks go free at once (kill -9: the server sees the socket close; a host gone dark: the server's
    /// TCP keepalives, set at connect, end the session within about 11 s). The session is closed on every
    /// way out, so no lock goes back into a pool.
    func holdDuties(first: PostgresConnection) async {
        let logger = self.logger
        var session: PostgresConnection? = first
        while !Task.isCancelled {
            do {
                let c: PostgresConnection
                if let session { c = session } else {
                    c = try await Self.bounded({ try await self.openSession() }, late: { c in try? await c.close() })
                    session = c
                    nodeState.withLock { $0?.nameHeld = true }
                }
                var held: Set<Duty> = []
                let had = nodeState.withLock { $0?.duties } ?? [] // a session lock taken twice is held twice: ask only for the others
                try await Self.bounded {
                    for duty in Duty.allCases where !had.contains(duty) {
                        try await c.query("SELECT pg_try_advisory_lock(\(PostgresSchema.dutyLock(duty)))", logger: logger)
                    }
                }
                let locks = try await Self.bounded { () -> [Int64] in
                    var out: [Int64] = []
                    for try await (high, low) in try await c.query("""
                        SELECT classid::int8, objid::int8 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND objsubid = 1 AND granted
                        """, logger: logger).decode((Int64, Int64).self) { out.append(high << 32 | low) }
                    return out
                }
                for duty in Duty.allCases where locks.contains(PostgresSchema.dutyLock(duty)) { held.insert(duty) }
                let before = nodeState.withLock { s -> Set<Duty> in
                    defer { s?.duties = held; s?.dutiesChecked = .now }
                    return s?.duties ?? []
                }
                for duty in held.subtracting(before) { logger.info("this node now holds the \(duty.rawValue) duty") }
                for duty in before.subtracting(held) { logger.warning("this node lost the \(duty.rawValue) duty") }
            } catch {
                if Task.isCancelled { break }
                logger.warning("the node's session was lost, again in 1 s: \(error)")
                nodeState.withLock { $0?.duties = []; $0?.dutiesChecked = nil; $0?.nameHeld = false }
                let lost = session
                session = nil
                try? await lost?.close()
            }
            try? await Task.sleep(for: .seconds(1))
        }
        nodeState.withLock { $0?.duties = []; $0?.dutiesChecked = nil }
        try? await session?.close() // the locks go free now, not when the process ends
    }
}

