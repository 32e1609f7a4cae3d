import Foundation
import Metrics
import Prometheus
import Synchronization

/// The hive's metrics. Code counts and times through swift-metrics (`Counter`, `Timer`, `Gauge`); each
/// process that serves `/metrics` bootstraps it once onto a Prometheus registry, whose text is what it
/// serves. A process that never bootstraps (a unit test, the CLI) counts into nothing.
///
/// Names follow Prometheus conventions: a `hive_` prefix, base units in the name (`_seconds`, `_bytes`,
/// `_usd`), `_total` on counters. Labels are bounded: states and kinds are enums, models are those the
/// price table knows (others are `other`), and an agent's name is a label only on the per-agent spend
/// and budget gauges (agents are what the operator made; there are tens, not thousands).
public enum HiveMetrics {
    public static let registry = PrometheusCollectorRegistry()
    private static let booted = Mutex(false)

    /// Makes swift-metrics report into ``registry`` (once; later calls do nothing).
    public static func bootstrap() {
        guard booted.withLock({ b in defer { b = true }; return !b }) else { return }
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = [
            Name.wakeLatency: [.microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                               .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1)],
            Name.turnDuration: [.seconds(1), .seconds(5), .seconds(15), .seconds(30), .seconds(60), .seconds(120), .seconds(300), .seconds(600),
                                .seconds(1800), .seconds(3600)],
            Name.sqliteCommit: [.microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                                .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250)],
            Name.postgresCommit: [.microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                                  .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1)],
            Name.webRequestDuration: [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                                      .milliseconds(100), .milliseconds(250), .milliseconds(1000), .seconds(5)],
        ]
        MetricsSystem.bootstrap(factory)
    }

    /// Adds to the counter `name`.
    public static func count(_ name: String, by n: Int = 1, labels: [(String, String)] = []) {
        Counter(label: name, dimensions: labels).increment(by: Int64(n))
    }

    /// Sets the gauge `name`.
    public static func set(_ name: String, _ value: Double, labels: [(String, String)] = []) {
        Gauge(label: name, dimensions: labels).record(value)
    }

    /// Records a duration in the histogram `name`.
    public static func record(_ name: String, seconds: Double, labels: [(String, String)] = []) {
        Metrics.Timer(label: name, dimensions: labels).recordNanoseconds(Int64(min(max(0, seconds), 1e9) * 1e9))
    }

    /// Runs `body` and records how long it took in the histogram `name`.
    public static func time<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        let start = ContinuousClock.now
        defer {
            let d = ContinuousClock.now - start
            Metrics.Timer(label: name).recordNanoseconds(d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000)
        }
        return try body()
    }

    /// The Prometheus text exposition of everything counted so far.
    public static func text() -> String { registry.emitToString() }

    /// Every metric's name, in one place (docs/operations.md lists them with their labels).
    public enum Name {
        // Messages
        public static let messages = "hive_messages"                          // gauge {state}
        public static let messagesSent = "hive_messages_sent_total"           // counter
        public static let wakeLatency = "hive_wake_latency_seconds"           // histogram: sent → handed to a receiver
        // Turns and what they cost
        public static let turns = "hive_turns_total"                          // counter {outcome}
        public static let turnDuration = "hive_turn_duration_seconds"         // histogram
        public static let tokens = "hive_tokens_total"                        // counter {kind, model}
        public static let cost = "hive_cost_usd_total"                        // counter {model}
        // Agents
        public static let agents = "hive_agents"                              // gauge {state}
        public static let agentSpend = "hive_agent_spend_usd"                 // gauge {agent, period}
        public static let agentBudget = "hive_agent_budget_usd"               // gauge {agent, period}: the USD cap in force
        public static let cageRestarts = "hive_cage_restarts_total"           // counter
        // Reminders, approvals, questions
        public static let remindersPending = "hive_reminders_pending"         // gauge
        public static let reminderLag = "hive_reminder_lag_seconds"           // gauge: how late the oldest due one is
        public static let approvalsPending = "hive_approvals_pending"         // gauge
        // The store
        public static let sqliteCommit = "hive_sqlite_commit_seconds"         // histogram: a send's write transaction
        public static let sqliteWAL = "hive_sqlite_wal_bytes"                 // gauge
        public static let postgresCommit = "hive_postgres_commit_seconds"     // histogram: a batch of sends' transaction (PostgreSQL store)
        // The web process
        public static let webRequests = "hive_web_requests_total"             // counter {code}
        public static let webRequestDuration = "hive_web_request_duration_seconds" // histogram
        public static let webSSEClients = "hive_web_sse_clients"              // gauge
    }
}
