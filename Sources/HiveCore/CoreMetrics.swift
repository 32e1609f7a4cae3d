import Foundation
import HiveBroker
import HiveHost
import HiveMetrics
import HiveWire
import Hummingbird
import Logging
import Metrics
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What core counts as things happen (the static recorders, called where they happen) and what it reads
/// afresh for each scrape (``refresh()``: counts and states that are cheaper to ask than to track).
struct CoreMetrics: Sendable {
    let broker: any HiveStore
    let layout: HiveLayout
    let budgets: BudgetDesk
    /// The agents as `list` shows them (states with holds applied).
    let agents: @Sendable () throws -> [AgentSummary]

    /// The exposition, after reading what is read at scrape time. One scrape at a time, and a scrape
    /// within 5 s of the last gets its text: scraping in a loop costs core no more than every 5 s.
    func scrape() -> String {
        Self.lastScrape.withLock { last in
            let now = ContinuousClock.now
            if let last = last, now - last.at < .seconds(5) { return last.text }
            refresh()
            let text = HiveMetrics.text()
            last = (now, text)
            return text
        }
    }
    private static let lastScrape = Mutex<(at: ContinuousClock.Instant, text: String)?>(nil)

    static let tokenFile = "metrics.token"

    /// The scrapers' bearer token, `<root>/metrics.token` (0600, made on first use): give Prometheus a copy.
    static func token(_ layout: HiveLayout) throws -> String {
        let file = layout.root.appending(path: tokenFile)
        if let text = try? String(contentsOf: file, encoding: .utf8), text.count >= 32 { return text.trimmingCharacters(in: .whitespacesAndNewlines) }
        var bytes = [UInt8](repeating: 0, count: 32)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        let token = bytes.map { String(format: "%02x", $0) }.joined()
        let fd = open(file.path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CoreError("cannot write \(file.path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        _ = (token + "\n").withCString { write(fd, $0, strlen($0)) }
        return token
    }

    /// Whether `presented` is the token (constant time).
    static func admits(_ presented: String?, token: String) -> Bool {
        guard let presented, presented.utf8.count == token.utf8.count else { return false }
        return zip(presented.utf8, token.utf8).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
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
            for a in list {
                let spend = ["today", "month"].map { Gauge(label: N.agentSpend, dimensions: [("agent", a.name), ("period", $0)]) }
                let caps = ["day", "month"].map { Gauge(label: N.agentBudget, dimensions: [("agent", a.name), ("period", $0)]) }
                // A destroyed agent's series go (a gauge left at its last value would still count it), and
                // so does a cap no longer in force.
                guard a.state != .destroyed, let name = try? AgentName(a.name), let view = try? budgets.view(name) else {
                    for g in spend + caps { g.destroy() }
                    continue
                }
                spend[0].record(view.today.usd)
                spend[1].record(view.month.usd)
                for (gauge, cap) in zip(caps, [view.budget.usdPerDay, view.budget.usdPerMonth]) {
                    if let cap { gauge.record(cap) } else { gauge.destroy() }
                }
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

    static func application(_ metrics: CoreMetrics, token: String, host: String, port: Int, logger: Logger) -> some ApplicationProtocol {
        let router = Router()
        router.get("/metrics") { request, _ in
            let presented = request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
            guard CoreMetrics.admits(presented, token: token) else {
                return Response(status: .unauthorized, headers: [.contentType: "text/plain", .wwwAuthenticate: "Bearer"],
                                body: .init(byteBuffer: ByteBuffer(string: "a scrape needs Authorization: Bearer <the token in the hive root's metrics.token>\n")))
            }
            // Gathered on a thread of its own: the scrape reads the store, which blocks.
            let text = await withCheckedContinuation { done in DispatchQueue.global().async { done.resume(returning: metrics.scrape()) } }
            return Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "hive-metrics"), logger: logger)
    }
}
