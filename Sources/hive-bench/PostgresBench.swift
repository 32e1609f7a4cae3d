import Foundation
import HiveBroker
import HivePostgres
import HiveWire
import Logging
import PostgresFixture
import PostgresNIO
import Synchronization

extension Bench {
    /// The PostgreSQL store across nodes (issue 15): two nodes (two brokers, each its own pool and
    /// listener) on a throwaway cluster on this machine. Cross-node wake: a receiver parked on node b, a
    /// send on node a, the time until b's `recv` returns; beside it the send's own commit (the floor: a
    /// wake cannot come before the row is committed). Durable send throughput: `senders` senders on each
    /// node against a raw insert loop of the same rows over the same number of connections, both with
    /// PostgreSQL's default durability (synchronous_commit on, fsync on).
    func postgresRun() async throws -> String {
        let cluster = try PostgresCluster()
        var logger = Logger(label: "bench.pg")
        logger.logLevel = .error
        func node(_ name: String) throws -> PostgresBroker {
            try PostgresBroker.open(host: "127.0.0.1", port: cluster.port, user: cluster.user, password: nil, database: "postgres", node: name, logger: logger)
        }
        let a = try node("a"), b = try node("b")
        defer { a.shutdown(); b.shutdown() }
        let iris = try AgentName("iris")
        _ = try a.register(iris)
        // The store blocks its caller, as core's connection threads call it: each caller here is a thread.
        func thread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) -> Task<T, any Error> {
            Task { try await withCheckedThrowingContinuation { c in Thread { c.resume(with: Result { try body() }) }.start() } }
        }
        func ms(_ d: Duration) -> Double { Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15 }

        // Wake: park, send, time to the hand-out on the other node.
        var wakes: [Double] = [], commits: [Double] = []
        for n in 0..<postgresWakes {
            let parked = thread { try b.recv(iris, max: 1, wait: .seconds(10)).messages }
            try await Task.sleep(for: .milliseconds(3)) // parked before the send
            let start = ContinuousClock.now
            _ = try a.send(from: .operator, to: .agent(iris), body: "wake \(n)", inReplyTo: nil)
            commits.append(ms(ContinuousClock.now - start))
            let got = try await parked.value
            wakes.append(ms(ContinuousClock.now - start))
            guard got.count == 1 else { throw BrokerError.storage("wake \(n): got \(got.count) messages") }
            _ = try b.ackTurn(iris, ids: got.map(\.id))
        }
        wakes.sort(); commits.sort()

        // Throughput: senders on both nodes at once, against the floor: the same rows into the same table shape
        // over the same number of concurrent connections, a plain INSERT each. In rounds, store then raw, so both meet the disk in the
        // same state (the ratio of single runs moved 38-51 % with the disk's fsync time); the median round counts.
        var config = PostgresClient.Configuration(host: "127.0.0.1", port: cluster.port, username: cluster.user, password: nil, database: "postgres", tls: .disable)
        config.options.maximumConnections = 2 * senders
        let raw = PostgresClient(configuration: config, backgroundLogger: logger)
        let runner = Task { await raw.run() }
        defer { runner.cancel() }
        // The same rows into a table like the store's (its indexes, the full-text one included): what is left
        // between the two is the store's own doing (checks, batching, the notification), not the schema's.
        try await raw.query("CREATE TABLE raw_message (LIKE message INCLUDING ALL)")
        let rounds = 3
        let perSender = max(1, postgresSends / rounds)
        let total = 2 * senders * perSender
        var storeRates: [Double] = [], rawRates: [Double] = []
        for round in 0..<rounds {
            let start = ContinuousClock.now
            _ = try await onThreads(2 * senders) { s in
                let n = s < senders ? a : b
                for i in 0..<perSender { _ = try n.send(from: .operator, to: .agent(iris), body: "load \(round) \(s) \(i)", inReplyTo: nil) }
            }
            storeRates.append(Double(total) / (ContinuousClock.now - start).seconds)
            let rawStart = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for s in 0..<(2 * senders) {
                    group.addTask {
                        for i in 0..<perSender {
                            let body = "load \(round) \(s) \(i)", now = Date().timeIntervalSince1970
                            try await raw.query("INSERT INTO raw_message (sender, recipient, body, sent_at) VALUES ('operator', 'iris', \(body), \(now))")
                        }
                    }
                }
                try await group.waitForAll()
            }
            rawRates.append(Double(total) / (ContinuousClock.now - rawStart).seconds)
        }
        let ratios = zip(storeRates, rawRates).map { $0 / $1 }.sorted()
        let median = ratios[ratios.count / 2]
        let storeRate = storeRates.sorted()[rounds / 2], rawRate = rawRates.sorted()[rounds / 2]
        let f = { (v: Double) in String(format: "%.2f", v) }
        let (reminderSeconds, byNode, reminderMessages) = try await remindersAcrossNodes(cluster: cluster, logger: logger)
        let (snapshot, snapshotRows) = try await snapshotRun(cluster: cluster, logger: logger)
        return """

            ## PostgreSQL across nodes run of \(ISO8601DateFormatter().string(from: Date()))

            Machine: 2 cores; \(Self.buildKind) build; PostgreSQL from the Debian package, a throwaway cluster on
            loopback with default durability; two nodes (two `PostgresBroker`s: a pool and a LISTEN connection each)
            in this process (stores, as core's nodes use them; callers are threads, as core's connections).

            | measure | result | target |
            |---|---|---|
            | cross-node wake, send on a to parked recv on b (\(postgresWakes) runs) | p50 \(f(percentile(wakes, 0.5))) ms, p99 \(f(percentile(wakes, 0.99))) ms | p99 ≤ 5 ms |
            | the send's own commit (INSERT + NOTIFY), the wake's floor | p50 \(f(percentile(commits, 0.5))) ms, p99 \(f(percentile(commits, 0.99))) ms | |
            | durable sends, \(senders) senders on each of 2 nodes, \(rounds) rounds of \(total) sends (median) | \(String(format: "%.0f", storeRate)) msg/s | |
            | raw INSERT loop, same rows into a table like the store's (same indexes), \(2 * senders) connections, after each round (median) | \(String(format: "%.0f", rawRate)) rows/s | |
            | store / raw, round by round | median \(String(format: "%.0f", 100 * median)) % (\(ratios.map { String(format: "%.0f", 100 * $0) }.joined(separator: ", ")) %) | ≥ 50 % |
            | \(postgresReminders) reminders due at once for 100 agents, fired by two nodes at once (batches of \(reminderBatch)) | all delivered in \(f(reminderSeconds)) s (node a \(byNode.0), node b \(byNode.1)); \(reminderMessages) messages, each reminder once | ≤ 2 s, exactly once |
            | dashboard snapshot (every agent with its counts, placements, nodes): 500 agents on 5 nodes, \(snapshotRows) messages | p50 \(f(percentile(snapshot, 0.5))) ms, p99 \(f(percentile(snapshot, 0.99))) ms | ≤ 50 ms |

            """
    }

    /// Reminders one transaction fires: core's on this store.
    var reminderBatch: Int { PostgresBroker.reminderBatch }

    /// `postgresReminders` reminders for 100 agents, all due at the same instant, fired by two nodes at once
    /// (as when the duty changes hands mid-burst; normally one node fires): the time until every one is
    /// delivered, and that each became exactly one message.
    func remindersAcrossNodes(cluster: PostgresCluster, logger: Logger) async throws -> (Double, (Int, Int), Int) {
        try cluster.createDatabase("reminders")
        let clock = Mutex(1_900_000_000.0)
        func node(_ name: String) throws -> PostgresBroker {
            try PostgresBroker.open(host: "127.0.0.1", port: cluster.port, user: cluster.user, password: nil, database: "reminders", node: name,
                                    logger: logger, clock: { clock.withLock { $0 } })
        }
        let a = try node("a"), b = try node("b")
        defer { a.shutdown(); b.shutdown() }
        let agents = try (0..<100).map { try AgentName("agent\($0)") }
        for n in agents { _ = try a.register(n) }
        let perAgent = postgresReminders / agents.count
        _ = try await onThreads(4) { t in
            for (i, n) in agents.enumerated() where i % 4 == t {
                for r in 0..<perAgent { _ = try a.createReminder(n, body: "r \(n) \(r)", filePath: nil, dueAt: 1_900_000_010, cap: perAgent + 1) }
            }
        }
        clock.withLock { $0 += 60 }
        let start = ContinuousClock.now
        let batch = reminderBatch
        let fired = try await onThreads(2) { i in
            let store = i == 0 ? a : b
            var total = 0
            // Until none is due: a batch whose reminders the other node holds fires nothing and looks again.
            while try store.nextReminderDue().map({ $0 <= clock.withLock { $0 } }) ?? false {
                total += try store.deliverDueReminders(limit: batch).delivered
            }
            return total
        }
        let seconds = (ContinuousClock.now - start).seconds
        var messages = 0
        var config = PostgresClient.Configuration(host: "127.0.0.1", port: cluster.port, username: cluster.user, password: nil, database: "reminders", tls: .disable)
        config.options.maximumConnections = 1
        let check = PostgresClient(configuration: config, backgroundLogger: logger)
        let runner = Task { await check.run() }
        defer { runner.cancel() }
        for try await (rows, distinct) in try await check.query("""
            SELECT COUNT(*), COUNT(DISTINCT r.id) FROM message m JOIN reminder r ON r.message_id = m.id WHERE m.sender = 'reminder'
            """).decode((Int, Int).self) {
            guard rows == distinct, rows == perAgent * agents.count else { throw BrokerError.storage("reminders: \(rows) messages for \(distinct) reminders") }
            messages = rows
        }
        return (seconds, (fired[0], fired[1]), messages)
    }

    /// What the dashboard's first screen asks the store, with 500 agents placed on 5 nodes and a million
    /// messages (most acked, some pending, in flight and dead), timed over 50 snapshots.
    func snapshotRun(cluster: PostgresCluster, logger: Logger) async throws -> ([Double], Int) {
        try cluster.createDatabase("snapshot")
        let store = try PostgresBroker.open(host: "127.0.0.1", port: cluster.port, user: cluster.user, password: nil, database: "snapshot", node: "n0",
                                            logger: logger)
        defer { store.shutdown() }
        try store.startNode()
        var config = PostgresClient.Configuration(host: "127.0.0.1", port: cluster.port, username: cluster.user, password: nil, database: "snapshot", tls: .disable)
        config.options.maximumConnections = 1
        let raw = PostgresClient(configuration: config, backgroundLogger: logger)
        let runner = Task { await raw.run() }
        defer { runner.cancel() }
        let rows = 1_000_000
        try await raw.query("""
            INSERT INTO agent (name, created_at, node, state)
            SELECT 'agent' || g, 0, 'n' || (g % 5), 'idle' FROM generate_series(1, 500) g
            """)
        try await raw.query("""
            INSERT INTO hive_node (name, host, started_at, heartbeat_at, cores, memory_mb, load1, lease)
            SELECT 'n' || g, 'host' || g, 0, EXTRACT(EPOCH FROM clock_timestamp()), 8, 32768, 0.5, 3600 FROM generate_series(0, 4) g
            """)
        // 1 % pending, 0.2 % in flight, 0.1 % dead, the rest acked.
        try await raw.query("""
            INSERT INTO message (sender, recipient, body, sent_at, delivered_at, acked_at, dead_at)
            SELECT 'agent' || (1 + g % 500), 'agent' || (1 + (g * 7) % 500), 'message number ' || g || ' about the build and the deploy', g,
                   CASE WHEN g % 100 = 0 THEN NULL ELSE g END,
                   CASE WHEN g % 100 = 0 OR g % 500 = 1 OR g % 1000 = 2 THEN NULL ELSE g END,
                   CASE WHEN g % 1000 = 2 THEN g END
            FROM generate_series(1, \(rows)) g
            """)
        try await raw.query("VACUUM ANALYZE")
        var times: [Double] = []
        for _ in 0..<50 {
            let start = ContinuousClock.now
            let agents = try await onThreads(1) { _ in (try store.agents(), try store.placements(), try store.nodes()) }[0]
            times.append((ContinuousClock.now - start).seconds * 1000)
            guard agents.0.count == 500, agents.1.count == 500, agents.2.count == 5 else {
                throw BrokerError.storage("snapshot: \(agents.0.count) agents, \(agents.1.count) placements, \(agents.2.count) nodes")
            }
        }
        times.sort()
        return (times, rows)
    }
}
