import Foundation
import HiveBroker
import HiveWire
import PostgresNIO
import Synchronization

/// What a store running as a node of a hive keeps in memory: its leases, its duties.
struct NodeState: Sendable {
    /// How long a heartbeat's lease on this node's agents lasts (by the database's clock), and how long
    /// this node trusts its own leases after its last heartbeat that reached the database.
    var lease: Double
    /// A node whose heartbeat is older than this is down: its agents show `node_down`.
    var downAfter: Double
    var lastBeat: ContinuousClock.Instant?
    /// The agents placed here, as of the last heartbeat.
    var placedHere: Set<String> = []
    var duties: Set<Duty> = []
    /// When the duty session last answered.
    var dutiesChecked: ContinuousClock.Instant?
    let startedAt: Double
}

/// The database's clock, in unix seconds: leases and heartbeats are compared on it, never on a host's.
let databaseNow = "EXTRACT(EPOCH FROM clock_timestamp())::float8"

extension PostgresBroker: HiveNodes {
    /// Makes this store a node of the hive: it publishes heartbeats (``heartbeat(_:)``, core's to call),
    /// holds leases on its agents and competes for the hive's duties. Before this it is a plain store
    /// (no fencing, every duty its own), as the tests of the store use it.
    public func startNode(lease: Duration = .seconds(15), downAfter: Duration = .seconds(15)) {
        let wasNode = nodeState.withLock { s -> Bool in
            defer { if s == nil { s = NodeState(lease: lease.seconds, downAfter: downAfter.seconds, startedAt: Date().timeIntervalSince1970) } }
            return s != nil
        }
        guard !wasNode else { return }
        let duties = Task(executorPreference: PostgresThreads.shared) { [weak self] () async -> Void in await self?.holdDuties() }
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

    public func heartbeat(_ beat: NodeBeat) throws {
        guard let (lease, startedAt) = nodeState.withLock({ s in s.map { ($0.lease, $0.startedAt) } }) else { return }
        let node = self.node, logger = self.logger
        let placed = try write { c -> Set<String> in
            try await c.query("""
                INSERT INTO hive_node (name, host, endpoint, started_at, heartbeat_at, cores, memory_mb, load1)
                VALUES (\(node), \(beat.host), \(beat.endpoint), \(startedAt), \(unescaped: databaseNow), \(beat.cores), \(beat.memoryMB), \(beat.load))
                ON CONFLICT (name) DO UPDATE SET host = excluded.host, endpoint = excluded.endpoint, started_at = excluded.started_at,
                    heartbeat_at = excluded.heartbeat_at, cores = excluded.cores, memory_mb = excluded.memory_mb, load1 = excluded.load1
                """, logger: logger)
            if !beat.states.isEmpty {
                try await c.query("""
                    UPDATE agent SET state = u.s, detail = u.d, state_since = NULLIF(u.t, -1)
                    FROM unnest(\(beat.states.map(\.agent))::text[], \(beat.states.map(\.state.rawValue))::text[], \(beat.states.map { $0.detail ?? "" })::text[],
                                \(beat.states.map { $0.since ?? -1 })::float8[]) AS u(a, s, d, t)
                    WHERE agent.name = u.a AND agent.node = \(node)
                    """, logger: logger)
            }
            var placed: Set<String> = []
            for try await name in try await c.query("""
                UPDATE agent SET lease_until = \(unescaped: databaseNow) + \(lease) WHERE node = \(node) AND destroyed_at IS NULL RETURNING name
                """, logger: logger).decode(String.self) { placed.insert(name) }
            return placed
        }
        nodeState.withLock { s in
            s?.lastBeat = .now
            s?.placedHere = placed
        }
    }

    public func placements() throws -> [String: Placement] {
        let downAfter = nodeState.withLock { $0?.downAfter } ?? 15
        return try read { client in
            var out: [String: Placement] = [:]
            for try await (name, node, up, state, detail, since) in try await client.query("""
                SELECT a.name, a.node, COALESCE(n.heartbeat_at > \(unescaped: databaseNow) - \(downAfter), false), a.state, a.detail, a.state_since
                FROM agent a LEFT JOIN hive_node n ON n.name = a.node WHERE a.node IS NOT NULL
                """, logger: self.logger).decode((String, String, Bool, String?, String?, Double?).self) {
                out[name] = Placement(node: node, nodeUp: up, state: state.flatMap(AgentState.init(rawValue:)), detail: detail.flatMap { $0.isEmpty ? nil : $0 },
                                      since: since)
            }
            return out
        }
    }

    public func nodes() throws -> [NodeView] {
        let downAfter = nodeState.withLock { $0?.downAfter } ?? 15
        return try read { client in
            var out: [NodeView] = []
            for try await (name, host, endpoint, started, age, cores, memory, load, agents) in try await client.query("""
                SELECT n.name, n.host, n.endpoint, n.started_at, \(unescaped: databaseNow) - n.heartbeat_at, n.cores, n.memory_mb, n.load1,
                       (SELECT COUNT(*) FROM agent a WHERE a.node = n.name AND a.destroyed_at IS NULL)
                FROM hive_node n ORDER BY n.name
                """, logger: self.logger).decode((String, String, String?, Double, Double, Int, Int, Double, Int).self) {
                out.append(NodeView(name: name, host: host, endpoint: endpoint, startedAt: started, heartbeatAge: max(0, age), up: age < downAfter,
                                    cores: cores, memoryMB: memory, load: load, agents: agents))
            }
            return out
        }
    }

    /// The fence a claim passes on a node: the agent is placed here and this node's lease on it is current
    /// by the database's clock. Empty for a plain store.
    var claimFence: String {
        guard nodeState.withLock({ $0 != nil }) else { return "" }
        return "AND EXISTS (SELECT 1 FROM agent WHERE name = $2 AND node = '\(node)' AND lease_until > \(databaseNow))"
    }

    /// Holds the duties it can get (session advisory locks, one per duty) on one connection of its own for
    /// as long as it lives; tries for the others each second. A holder that dies takes its session with it
    /// and the locks go free at once (kill -9: the server sees the socket close; a host gone dark: the
    /// server's TCP keepalives, set at connect, end the session within about 11 s).
    func holdDuties() async {
        let client = self.client, logger = self.logger
        while !Task.isCancelled {
            do {
                try await client.withConnection { c in
                    while !Task.isCancelled {
                        var held = nodeState.withLock { $0?.duties } ?? []
                        for duty in Duty.allCases where !held.contains(duty) {
                            for try await got in try await c.query("SELECT pg_try_advisory_lock(\(PostgresSchema.dutyLock(duty)))", logger: logger).decode(Bool.self) where got {
                                held.insert(duty)
                                logger.info("this node now holds the \(duty.rawValue) duty")
                            }
                        }
                        let now = held
                        nodeState.withLock { $0?.duties = now; $0?.dutiesChecked = .now }
                        try? await Task.sleep(for: .seconds(1))
                    }
                    // Stopping: hand the duties over now rather than when the pool closes the connection.
                    try? await c.query("SELECT pg_advisory_unlock_all()", logger: logger)
                }
            } catch {
                if Task.isCancelled { break }
                logger.warning("the duty session was lost, again in 1 s: \(error)")
            }
            nodeState.withLock { $0?.duties = []; $0?.dutiesChecked = nil }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
