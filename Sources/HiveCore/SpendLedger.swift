import Foundation
import HiveBroker
import HiveHost
import HiveWire
import Logging
import Synchronization

/// Prices and records what agents spend, in the broker (so it survives restarts). Two meters feed it:
/// the gateway of a gated agent (each model answer, the meter an agent cannot forge) and the harness's
/// turn reports (the only one for an agent on the host's network). A gated agent's reports are kept for
/// its per-turn costs and its expected turn, but its gateway's rows are its spend of record.
final class SpendLedger: Sendable {
    private let store: any HiveStore
    private let layout: HiveLayout
    private let logger: Logger
    /// Whether core's gateway meters this agent now (set once the gateways exist).
    private let gatedCheck = Mutex<(@Sendable (AgentName) -> Bool)?>(nil)
    /// Called after each record (budgets look again).
    private let changed = Mutex<[@Sendable (AgentName) -> Void]>([])
    /// Each credential's subscription windows as last seen (the gateway's answers' headers; the harness's
    /// reports for an agent without a gateway). In memory: the next answer after a restart says it again.
    private let windowUse = Mutex<[String: [String: WindowUse]]>([:])
    /// The table, read again at most every 10 s (the operator may edit `<root>/prices.json` at any time).
    private let table = Mutex<(read: Double, table: PriceTable)?>(nil)

    /// The agent's config (its approved models).
    private let configs: @Sendable (AgentName) -> AgentConfig

    init(store: any HiveStore, layout: HiveLayout, configs: @escaping @Sendable (AgentName) -> AgentConfig, logger: Logger) {
        self.store = store; self.layout = layout; self.configs = configs; self.logger = logger
    }

    func meteredByGateway(_ check: @escaping @Sendable (AgentName) -> Bool) { gatedCheck.withLock { $0 = check } }

    /// What keeps an agent's gateway from calling the model (the budgets; set once they exist).
    private let refusalCheck = Mutex<(@Sendable (AgentName) -> (why: String, retryAfter: Double)?)?>(nil)
    func refuseModelCalls(_ check: @escaping @Sendable (AgentName) -> (why: String, retryAfter: Double)?) { refusalCheck.withLock { $0 = check } }
    func modelRefusal(_ name: AgentName) -> (why: String, retryAfter: Double)? { refusalCheck.withLock { $0 }?(name) }
    private func gated(_ name: AgentName) -> Bool { gatedCheck.withLock { $0 }?(name) ?? false }

    func onChange(_ f: @escaping @Sendable (AgentName) -> Void) { changed.withLock { $0.append(f) } }

    /// The operator's table, else the hive's. A broken file is logged and the hive's used meanwhile: a
    /// typo in prices must not stop the meter.
    var prices: PriceTable {
        let now = Date().timeIntervalSince1970
        if let cached = table.withLock({ $0 }), now - cached.read < 10 { return cached.table }
        let t: PriceTable
        do { t = try PriceTable.load(root: layout.root) } catch {
            logger.error("\(error); pricing with the hive's table until it is fixed")
            t = .builtIn
        }
        table.withLock { $0 = (now, t) }
        return t
    }

    /// What an answer (or a report) said of the agent's credential's windows; bounded to the two windows.
    func recordWindows(_ name: AgentName, _ windows: [String: WindowUse]) {
        let credential = configs(name).credential ?? "default"
        let kept = windows.filter { ["five_hour", "seven_day"].contains($0.key) && $0.value.utilization.isFinite && (0...10).contains($0.value.utilization) }
        guard !kept.isEmpty else { return }
        windowUse.withLock { $0[credential, default: [:]].merge(kept) { $1 } }
    }

    func windows(_ credential: String) -> [String: WindowUse] { windowUse.withLock { $0[credential] ?? [:] } }

    /// A model answer the gateway metered, as far as it is known: recorded when it starts, replaced by
    /// its final count when it ends (the same `answer` id).
    func meterAnswer(_ name: AgentName, answer: String, model: String, usage: TokenCount, final: Bool) {
        let usd = prices.cost(model, usage)?.usd ?? 0
        let row = SpendRow(at: Date().timeIntervalSince1970, source: .gateway, turnKey: "answer-" + answer, model: model, tokens: usage, usd: usd, counted: true)
        do {
            try store.meterSpend(name, row)
            for f in changed.withLock({ $0 }) { f(name) }
            if final { CoreMetrics.spent(model: prices.label(model), usage, usd: usd) }
        } catch {
            logger.error("cannot record the spend of \(name): \(error)")
        }
    }

    /// A turn the harness reported, priced here. Checked at the edge: model names and token counts an
    /// agent sends are bounded.
    func reportTurn(_ name: AgentName, _ report: ReportTurnCommand) throws -> ReportTurnCommand.Reply {
        guard report.key.utf8.count <= 64, !report.key.isEmpty else { throw RequestError("key: 1–64 bytes") }
        guard report.models.count <= ReportTurnCommand.maxModels else { throw RequestError("models: at most \(ReportTurnCommand.maxModels)") }
        let now = Date().timeIntervalSince1970
        guard report.endedAt.isFinite, report.endedAt > now - 400 * 86_400, report.endedAt < now + 300 else {
            throw RequestError("ended_at: must be a time within the last 400 days")
        }
        let table = prices
        let counted = !gated(name)
        var rows: [SpendRow] = [], byFamily: [String] = [], unpriced: [String] = [], usd = 0.0
        for (model, tokens) in report.models.sorted(by: { $0.key < $1.key }) {
            guard AgentConfig.isModelName(model) else { throw RequestError("models: '\(model.prefix(100))' is not a model name") }
            let counts = [tokens.input, tokens.output, tokens.cacheWriteShort, tokens.cacheWriteLong, tokens.cacheRead]
            guard counts.allSatisfy({ (0...ReportTurnCommand.maxTokens).contains($0) }) else {
                throw RequestError("models.\(model): token counts must be 0 to \(ReportTurnCommand.maxTokens)")
            }
            // Spend is dated by core's clock, not the report's (an agent cannot backdate it out of today), and
            // recorded under the table's name for the model (its key, its family, or `other`): an agent
            // cannot grow the per-model totals, or the metrics' labels, with names of its own making.
            let model = table.label(model)
            let price = table.cost(model, tokens)
            if price == nil { unpriced.append(model) } else if price?.byFamily == true { byFamily.append(model) }
            usd += price?.usd ?? 0
            rows.append(SpendRow(at: now, source: .harness, turnKey: report.key, model: model, tokens: tokens,
                                 usd: price?.usd ?? 0, counted: counted, cliUSD: rows.isEmpty ? report.cliCostUsd.map { max(0, min($0, 1e6)) } : nil))
        }
        if !gated(name), let windows = report.windows { recordWindows(name, windows) }
        let fresh = try record(name, rows)
        if fresh, let result = report.result { CoreMetrics.turn(result, seconds: report.endedAt - report.startedAt) }
        if fresh, counted { for r in rows { CoreMetrics.spent(model: r.model, r.tokens, usd: r.usd) } }
        return ReportTurnCommand.Reply(usd: usd, byFamily: byFamily, unpriced: unpriced, counted: counted && fresh)
    }

    @discardableResult
    private func record(_ name: AgentName, _ rows: [SpendRow]) throws -> Bool {
        let fresh = try store.recordSpend(name, rows)
        for f in changed.withLock({ $0 }) { f(name) }
        return fresh
    }

    /// Totals per agent, per model and for the hive: today, the last 7 days and this month.
    func totals(now: Date = Date(), calendar: Calendar = .current) throws -> SpendCommand.Reply {
        let periods: [(String, Date)] = [("today", BudgetPeriod.day.interval(containing: now, calendar: calendar).start),
                                         ("7 days", now.addingTimeInterval(-7 * 86_400)),
                                         ("month", BudgetPeriod.month.interval(containing: now, calendar: calendar).start)]
        let table = prices
        return SpendCommand.Reply(periods: try periods.map { name, since in
            let (agents, models) = try store.spendBreakdown(since: since.timeIntervalSince1970)
            var hive = Spent()
            for s in agents.values { hive += s }
            return SpendPeriod(period: name, since: since.timeIntervalSince1970, hive: hive, agents: agents, models: models)
        }, prices: "\(table.date), \(table.source)")
    }
}
