import Foundation
import HiveBroker
import HiveWire
import Logging
import Synchronization

/// Enforces budgets: before a turn (a `recv` that would hand out a message) it asks ``BudgetCheck``
/// with the agent's spend of record, the hive's, and the p90 of the agent's recent turns; over, the
/// agent gets nothing (its messages wait unacked), `list` shows `over_budget`, and the manager and the
/// operator are told once per period. It resumes by itself when the period renews (the parked `recv`
/// wakes then) or at once when the operator raises the cap (`hive budget`, which wakes it).
/// A turn already running is never stopped: what it costs is recorded, and it is the overshoot.
final class BudgetDesk: Sendable {
    struct Hold: Sendable, Equatable {
        var until: Double
        var detail: String
    }

    private let store: any HiveStore
    private let configs: ConfigStore
    private let ledger: SpendLedger
    /// Sends a notice about an agent to the manager and the operator.
    private let notify: @Sendable (AgentName, String) -> Void
    private let now: @Sendable () -> Date
    private let calendar: Calendar
    private let logger: Logger
    /// Verdicts are asked on every recv and five times a second per row of the dashboard: each is kept
    /// for a second, and dropped when spend or a cap changes.
    private let cache = Mutex<[AgentName: (at: Double, view: BudgetView)]>([:])
    private let operatorCaps = Mutex<[String: Budget]?>(nil)
    /// Agents held now (for the notice when they resume), and the parked receivers to wake on a raise.
    private let held = Mutex<Set<AgentName>>([])
    private let parked = Mutex<[ObjectIdentifier: Parker]>([:])
    /// Notices already sent (or found sent), so a held agent's checks do not write to the store each time.
    private let noticed = Mutex<Set<String>>([])

    static let hiveScope = "hive"

    init(store: any HiveStore, configs: ConfigStore, ledger: SpendLedger, notify: @escaping @Sendable (AgentName, String) -> Void,
         now: @escaping @Sendable () -> Date = { Date() }, calendar: Calendar = .current, logger: Logger) {
        self.store = store; self.configs = configs; self.ledger = ledger; self.notify = notify; self.now = now
        self.calendar = calendar; self.logger = logger
        ledger.onChange { [weak self] _ in self?.forget() }
    }

    private func forget() { cache.withLock { $0 = [:] } }

    private func caps() -> [String: Budget] {
        if let c = operatorCaps.withLock({ $0 }) { return c }
        let c = (try? store.operatorBudgets()) ?? [:]
        operatorCaps.withLock { $0 = c }
        return c
    }

    /// The agent's caps: the operator's raise when there is one, else its `agent.json`'s.
    func effective(_ name: AgentName) -> (budget: Budget, source: String) {
        if let raised = caps()[name.rawValue] { return (raised, "operator") }
        let own = configs.current(name).budget
        return (own, own.isEmpty ? "none" : "agent.json")
    }

    private func spending(_ name: AgentName?) throws -> BudgetCheck.Spending {
        let t = now()
        return BudgetCheck.Spending(day: try store.spent(name, since: BudgetPeriod.day.interval(containing: t, calendar: calendar).start.timeIntervalSince1970, excluding: nil),
                                    month: try store.spent(name, since: BudgetPeriod.month.interval(containing: t, calendar: calendar).start.timeIntervalSince1970, excluding: nil))
    }

    /// The agent's budget, spend and verdict.
    func view(_ name: AgentName) throws -> BudgetView {
        let t = now()
        if let c = cache.withLock({ $0[name] }), t.timeIntervalSince1970 - c.at < 1 { return c.view }
        let (budget, source) = effective(name)
        let check = BudgetCheck(agent: budget, hive: caps()[Self.hiveScope] ?? Budget(), isManager: name == .manager)
        var mine = try spending(name)
        let credential = configs.credential(of: name)
        mine.windows = ledger.windows(credential)
        var hive = check.hive.isEmpty || check.isManager ? BudgetCheck.Spending() : try spending(nil)
        hive.windows = mine.windows
        let expected = BudgetCheck.expected(try store.recentTurnCosts(name, limit: 50))
        let verdict = check.verdict(agentSpend: mine, hiveSpend: hive, expected: expected, now: t, calendar: calendar)
        var view = BudgetView(scope: name.rawValue, budget: budget, source: source, today: mine.day, month: mine.month, expectedTurn: expected,
                              status: "ok", detail: budget.isEmpty ? "no budget" : "within its budget")
        view.credential = credential
        view.windows = mine.windows
        switch verdict {
        case .ok: break
        case .warning(let scope, let cap, let share):
            view.status = "warning"
            view.detail = "\(Int(share * 100)) % of \(scope == .hive ? "the hive's" : "its") \(cap.text)"
        case .over(let scope, let cap, let spent, let renewsAt):
            view.status = "over"
            view.renewsAt = renewsAt
            let expectedText = cap.unit == .usd ? String(format: "%.4f USD", expected.usd) : "\(expected.tokens) tokens"
            let why = cap.period == .window ? "\(cap.spentText(spent)) is used up"
                : "\(cap.spentText(spent)) would be passed by its next turn (expected \(expectedText))"
            view.detail = "held: \(scope == .hive ? "the hive's" : "its") \(why); "
                + "renews \(Self.format(renewsAt)) or when the operator raises it"
        }
        cache.withLock { $0[name] = (t.timeIntervalSince1970, view) }
        act(name, verdict, view)
        return view
    }

    /// The hive's cap and total spend (every agent's, the manager's included).
    func hiveView() throws -> BudgetView {
        let budget = caps()[Self.hiveScope] ?? Budget()
        let spend = try spending(nil)
        let check = BudgetCheck(agent: budget, hive: Budget(), isManager: false)
        var view = BudgetView(scope: Self.hiveScope, budget: budget, source: budget.isEmpty ? "none" : "operator", today: spend.day, month: spend.month,
                              expectedTurn: Spent(), status: "ok", detail: budget.isEmpty ? "no budget" : "within its budget")
        switch check.verdict(agentSpend: spend, hiveSpend: spend, expected: Spent(), now: now(), calendar: calendar) {
        case .ok: break
        case .warning(_, let cap, let share): view.status = "warning"; view.detail = "\(Int(share * 100)) % of \(cap.text)"
        case .over(_, let cap, let spent, let renewsAt):
            view.status = "over"; view.renewsAt = renewsAt
            view.detail = "\(cap.spentText(spent)) reached: agents but the manager are held until \(Self.format(renewsAt))"
        }
        return view
    }

    /// What keeps `name` from its next turn, if anything. With no cap anywhere, no query is made.
    func hold(_ name: AgentName) -> Hold? {
        let hiveCapped = !(caps()[Self.hiveScope]?.isEmpty ?? true) && name != .manager
        guard hiveCapped || !effective(name).budget.isEmpty || held.withLock({ $0.contains(name) }) else { return nil }
        do {
            let v = try view(name)
            guard v.status == "over", let until = v.renewsAt else { return nil }
            return Hold(until: until, detail: v.detail)
        } catch {
            logger.error("cannot check the budget of \(name): \(error); letting it run")
            return nil
        }
    }

    /// Why `name`'s gateway refuses a model call now: held, and no message of it in flight (no turn of
    /// it running; a running turn is never stopped by a budget). Nil: it may call.
    func gatewayRefusal(_ name: AgentName) -> (why: String, retryAfter: Double)? {
        guard let hold = hold(name) else { return nil }
        guard ((try? store.counts(name.rawValue))?.inflight ?? 0) == 0 else { return nil }
        return (hold.detail, hold.until - now().timeIntervalSince1970)
    }

    /// Waits, parked, while `name` is held: until the cap renews, `atMost`, or a raise wakes it. The
    /// receiver is registered before the hold is looked at again, so a raise in between is not missed.
    func park(_ name: AgentName, _ parker: Parker, atMost: Duration) {
        guard parker.prepare() else { return }
        let id = ObjectIdentifier(parker)
        parked.withLock { $0[id] = parker }
        defer { _ = parked.withLock { $0.removeValue(forKey: id) } }
        guard let hold = hold(name) else { return }
        // At least a second: a verdict cached just before a renewal must not make the harness spin.
        let renewal = ContinuousClock.now + .milliseconds(Int64(max(1, hold.until - now().timeIntervalSince1970) * 1000))
        _ = parker.wait(until: min(ContinuousClock.now + atMost, renewal))
    }

    /// True the first time a notice of `kind` about `name` for this scope, cap and period is asked for.
    private func first(_ name: AgentName, _ kind: String, _ scope: BudgetCheck.Scope, _ cap: Budget.Cap) -> Bool {
        let period = "\(scope == .hive ? "hive" : "own")-" + BudgetCheck.periodKey(cap, now: now(), calendar: calendar)
        guard noticed.withLock({ $0.insert("\(name)/\(kind)/\(period)").inserted }) else { return false }
        return (try? store.firstNotice(name, kind: kind, period: period)) == true
    }

    /// Notices: once per period for a hold and for a warning; once when a held agent may run again.
    private func act(_ name: AgentName, _ verdict: BudgetCheck.Verdict, _ view: BudgetView) {
        switch verdict {
        case .over(let scope, let cap, _, _):
            held.withLock { _ = $0.insert(name) }
            if first(name, "over", scope, cap) {
                logger.warning("\(name) \(view.detail)")
                notify(name, "\(name) is \(view.detail). Its messages wait unacked. Raise it with: hive budget \(name) --usd-per-day N (or the dashboard).")
            }
        case .warning(let scope, let cap, _):
            if first(name, "warning", scope, cap) {
                notify(name, "\(name) has used \(view.detail).")
            }
            fallthrough
        case .ok:
            if held.withLock({ $0.remove(name) }) != nil {
                logger.notice("\(name) is within its budget again")
                notify(name, "\(name) is within its budget again and takes its messages.")
            }
        }
    }

    /// `budget` on the admin socket: show, set or clear the operator's caps. A change wakes every held agent.
    func handle(_ c: BudgetCommand) throws -> BudgetCommand.Reply {
        let scope = c.agent ?? Self.hiveScope
        if scope != Self.hiveScope { _ = try AgentName(scope) }
        if c.clear == true || c.set != nil {
            if let set = c.set {
                guard !set.isEmpty else { throw RequestError("set: give at least one cap (usd_per_day, usd_per_month, tokens_per_day, tokens_per_month), or clear") }
                // The same checks as agent.json's, on the wire's values.
                let encoded = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(set)) as? [String: Any] ?? [:]
                let (_, problems) = Budget.parse(encoded, at: "budget")
                guard problems.isEmpty else { throw RequestError(problems.joined(separator: "; ")) }
            }
            try store.setOperatorBudget(scope, c.clear == true ? nil : c.set)
            operatorCaps.withLock { $0 = nil }
            forget()
            for p in parked.withLock({ Array($0.values) }) { p.signal() }
            logger.notice("budget of \(scope) \(c.clear == true ? "cleared" : "set") by the operator")
        }
        if let agent = c.agent { return BudgetCommand.Reply(budgets: [try view(try AgentName(agent))]) }
        let agents = try store.agents().filter { $0.record.destroyedAt == nil }.compactMap { try? AgentName($0.record.name) }
        return BudgetCommand.Reply(budgets: [try hiveView()] + (try agents.map { try view($0) }))
    }

    static func format(_ t: Double) -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd HH:mm zzz"
        return "at " + f.string(from: Date(timeIntervalSince1970: t))
    }
}
