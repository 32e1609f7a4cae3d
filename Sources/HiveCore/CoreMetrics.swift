import Foundation
import HiveBroker
import HiveHost
import HiveMetrics
import HiveWire
import Hummingbird
import Logging
import Metrics

/// What core counts as things happen (the static recorders, called where they happen) and what it reads
/// afresh for each scrape (``refresh()``: counts and states that are cheaper to ask than to track).
struct CoreMetrics: Sendable {
    let broker: any HiveStore
    let layout: HiveLayout
    let budgets: BudgetDesk
    /// The agents as `list` shows them (states with holds applied).
    let agents: @Sendable () throws -> [AgentSummary]

    /// The exposition, after reading what is read at scrape time.
    func scrape() -> String {
        refresh()
        return HiveMetrics.text()
    }

    func refresh() {
        typealias N = HiveMetrics.Name
        if let counts = try? broker.messageCounts() {
            for state in [MessageState.pending, .delivered, .dead] {
                Gauge(label: N.messages, dimensions: [("state", state.rawValue)]).record(counts[state] ?? 0)
            }
        }
        if let list = try? agents() {
            var byState: [AgentState: Int] = [:]
            for a in list where a.state != .destroyed { byState[a.state, default: 0] += 1 }
            for state in AgentState.allCases where state != .destroyed {
                Gauge(label: N.agents, dimensions: [("state", state.rawValue)]).record(byState[state] ?? 0)
            }
            for a in list where a.state != .destroyed {
                guard let name = try? AgentName(a.name), let view = try? budgets.view(name) else { continue }
                Gauge(label: N.agentSpend, dimensions: [("agent", a.name), ("period", "today")]).record(view.today.usd)
                Gauge(label: N.agentSpend, dimensions: [("agent", a.name), ("period", "month")]).record(view.month.usd)
                if let cap = view.budget.usdPerDay { Gauge(label: N.agentBudget, dimensions: [("agent", a.name), ("period", "day")]).record(cap) }
                if let cap = view.budget.usdPerMonth { Gauge(label: N.agentBudget, dimensions: [("agent", a.name), ("period", "month")]).record(cap) }
            }
        }
        if let pending = try? broker.pendingReminders(agent: nil) {
            Gauge(label: N.remindersPending).record(pending.count)
            let now = Date().timeIntervalSince1970
            let oldestDue = pending.map(\.dueAt).min()
            Gauge(label: N.reminderLag).record(oldestDue.map { max(0, now - $0) } ?? 0)
        }
        if let approvals = try? broker.approvals(recent: 0) {
            Gauge(label: N.approvalsPending).record(approvals.filter { $0.state == .pending }.count)
        }
        let wal = (try? FileManager.default.attributesOfItem(atPath: layout.brokerDatabase.path + "-wal"))?[.size] as? NSNumber
        Gauge(label: N.sqliteWAL).record(wal?.intValue ?? 0)
    }

    /// Counters that exist from the start at 0 (a series that appears only once something happens
    /// cannot be told from a scrape that lost it).
    static func preregister() {
        Counter(label: HiveMetrics.Name.messagesSent).increment(by: 0)
        Counter(label: HiveMetrics.Name.cageRestarts).increment(by: 0)
        for outcome in TurnResultKind.allCases { Counter(label: HiveMetrics.Name.turns, dimensions: [("outcome", outcome.rawValue)]).increment(by: 0) }
    }

    // MARK: Recorded where they happen

    static func sent(_ count: Int) { Counter(label: HiveMetrics.Name.messagesSent).increment(by: Int64(count)) }

    /// A message handed to a receiver `seconds` after it was sent.
    static func woke(after seconds: Double) {
        Metrics.Timer(label: HiveMetrics.Name.wakeLatency).recordNanoseconds(Int64(max(0, seconds) * 1e9))
    }

    /// A finished turn, as its harness reported it.
    static func turn(_ outcome: TurnResultKind, seconds: Double) {
        Counter(label: HiveMetrics.Name.turns, dimensions: [("outcome", outcome.rawValue)]).increment()
        Metrics.Timer(label: HiveMetrics.Name.turnDuration).recordNanoseconds(Int64(min(max(0, seconds), 86_400) * 1e9))
    }

    /// Spend of record: tokens by kind, and USD, of one model.
    static func spent(model: String, _ t: TokenCount, usd: Double) {
        for (kind, n) in [("input", t.input), ("output", t.output), ("cache_write_5m", t.cacheWriteShort), ("cache_write_1h", t.cacheWriteLong),
                          ("cache_read", t.cacheRead)] where n > 0 {
            Counter(label: HiveMetrics.Name.tokens, dimensions: [("kind", kind), ("model", model)]).increment(by: Int64(n))
        }
        if usd > 0 { FloatingPointCounter(label: HiveMetrics.Name.cost, dimensions: [("model", model)]).increment(by: usd) }
    }

    static func cageRestarted() { Counter(label: HiveMetrics.Name.cageRestarts).increment() }
}

/// `hive core --metrics-listen`: GET /metrics on a loopback port, for a node without `hive web`.
enum MetricsServer {
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    static func application(_ metrics: CoreMetrics, host: String, port: Int, logger: Logger) -> some ApplicationProtocol {
        let router = Router()
        router.get("/metrics") { _, _ in
            // Gathered on a thread of its own: the scrape reads the store, which blocks.
            let text = await withCheckedContinuation { done in DispatchQueue.global().async { done.resume(returning: metrics.scrape()) } }
            return Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "hive-metrics"), logger: logger)
    }
}
