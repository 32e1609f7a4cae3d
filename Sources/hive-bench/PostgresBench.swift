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

        // Throughput: senders on both nodes at once.
        let perSender = postgresSends
        let total = 2 * senders * perSender
        let start = ContinuousClock.now
        _ = try await onThreads(2 * senders) { s in
            let n = s < senders ? a : b
            for i in 0..<perSender { _ = try n.send(from: .operator, to: .agent(iris), body: "load \(s) \(i)", inReplyTo: nil) }
        }
        let storeRate = Double(total) / (ContinuousClock.now - start).seconds
        // The floor: the same rows, the same number of concurrent connections, a plain INSERT each.
        var config = PostgresClient.Configuration(host: "127.0.0.1", port: cluster.port, username: cluster.user, password: nil, database: "postgres", tls: .disable)
        config.options.maximumConnections = 2 * senders
        let raw = PostgresClient(configuration: config, backgroundLogger: logger)
        let runner = Task { await raw.run() }
        defer { runner.cancel() }
        try await raw.query("CREATE TABLE raw_message (id BIGSERIAL PRIMARY KEY, sender TEXT NOT NULL, recipient TEXT NOT NULL, body TEXT NOT NULL, sent_at DOUBLE PRECISION NOT NULL)")
        let rawStart = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for s in 0..<(2 * senders) {
                group.addTask {
                    for i in 0..<perSender {
                        let body = "load \(s) \(i)", now = Date().timeIntervalSince1970
                        try await raw.query("INSERT INTO raw_message (sender, recipient, body, sent_at) VALUES ('operator', 'iris', \(body), \(now))")
                    }
                }
            }
            try await group.waitForAll()
        }
        let rawRate = Double(total) / (ContinuousClock.now - rawStart).seconds
        let f = { (v: Double) in String(format: "%.2f", v) }
        return """

            ## PostgreSQL across nodes run of \(ISO8601DateFormatter().string(from: Date()))

            Machine: 2 cores; \(Self.buildKind) build; PostgreSQL from the Debian package, a throwaway cluster on
            loopback with default durability; two nodes (two `PostgresBroker`s: a pool and a LISTEN connection each)
            in this process. Issue 15's first slice: messages only, not yet wired into core.

            | measure | result | target |
            |---|---|---|
            | cross-node wake, send on a to parked recv on b (\(postgresWakes) runs) | p50 \(f(percentile(wakes, 0.5))) ms, p99 \(f(percentile(wakes, 0.99))) ms | p99 ≤ 5 ms |
            | the send's own commit (INSERT + NOTIFY), the wake's floor | p50 \(f(percentile(commits, 0.5))) ms, p99 \(f(percentile(commits, 0.99))) ms | |
            | durable sends, \(senders) senders on each of 2 nodes, \(total) sends | \(String(format: "%.0f", storeRate)) msg/s | |
            | raw INSERT loop, same rows, \(2 * senders) connections | \(String(format: "%.0f", rawRate)) rows/s | |
            | store / raw | \(String(format: "%.0f", 100 * storeRate / rawRate)) % | ≥ 50 % |

            """
    }
}
