import Foundation
import HiveWire

/// Whether an agent may take its next turn under its budget and the hive's: a pure function of caps,
/// spend and the turn's expected cost, tested without a store. ``BudgetDesk`` feeds it and acts on it.
struct BudgetCheck: Sendable {
    /// Spend of one scope over the current day and month.
    struct Spending: Sendable, Equatable {
        var day = Spent()
        var month = Spent()
        /// The credential's subscription windows, by the API's names (`five_hour`, `seven_day`).
        var windows: [String: WindowUse] = [:]
        func amount(_ cap: Budget.Cap) -> Double {
            switch cap.unit {
            case .usd, .tokens: return (cap.period == .day ? day : month).amount(cap.unit)
            case .fiveHour, .sevenDay: return windows[cap.unit.rawValue]?.utilization ?? 0
            }
        }
    }

    enum Scope: Sendable, Equatable { case agent, hive }

    enum Verdict: Sendable, Equatable {
        case ok
        /// A cap is at or past its warning share.
        case warning(Scope, Budget.Cap, share: Double)
        /// The next turn would pass a cap (or one is used up): hold until `renewsAt`.
        case over(Scope, Budget.Cap, spent: Double, renewsAt: Double)

        var isOver: Bool { if case .over = self { return true } else { return false } }
    }

    var agent: Budget
    var hive: Budget
    /// The manager is never held by the hive's cap: someone must be able to propose a fix.
    var isManager: Bool

    /// The verdict for one more turn expected to cost `expected`. Of several caps passed, the one that
    /// renews last holds (the agent cannot run before it).
    func verdict(agentSpend: Spending, hiveSpend: Spending, expected: Spent, now: Date, calendar: Calendar = .current) -> Verdict {
        var scopes: [(Scope, Budget, Spending)] = [(.agent, agent, agentSpend)]
        if !isManager { scopes.append((.hive, hive, hiveSpend)) }
        var over: Verdict?, overEnds = -Double.infinity
        var warning: Verdict?, warningShare = 0.0
        for (scope, budget, spending) in scopes {
            for cap in budget.caps {
                let spent = spending.amount(cap)
                if cap.period == .window {
                    // A window's share: used up to the share, the agent waits for the window's reset (a
                    // window whose reset has passed is stale and holds nobody; with no reset time known,
                    // it is looked at again in an hour).
                    let t = now.timeIntervalSince1970
                    guard let use = spending.windows[cap.unit.rawValue], (use.resetsAt ?? .infinity) > t else { continue }
                    if use.utilization >= cap.limit {
                        let ends = use.resetsAt ?? t + 3600
                        if ends > overEnds { over = .over(scope, cap, spent: use.utilization, renewsAt: ends); overEnds = ends }
                    } else if use.utilization / cap.limit >= (budget.warnAt ?? Budget.defaultWarnAt), use.utilization / cap.limit > warningShare {
                        warning = .warning(scope, cap, share: use.utilization / cap.limit); warningShare = use.utilization / cap.limit
                    }
                    continue
                }
                let ends = cap.period.interval(containing: now, calendar: calendar).end.timeIntervalSince1970
                // The expected turn counts once something was spent this period: a turn dearer than the
                // whole cap must still get its one turn after a renewal, not be held for ever.
                if spent >= cap.limit || (spent > 0 && spent + expected.amount(cap.unit) > cap.limit) {
                    if ends > overEnds { over = .over(scope, cap, spent: spent, renewsAt: ends); overEnds = ends }
                    continue
                }
                let share = cap.limit > 0 ? spent / cap.limit : 1
                if share >= (budget.warnAt ?? Budget.defaultWarnAt), share > warningShare {
                    warning = .warning(scope, cap, share: share); warningShare = share
                }
            }
        }
        return over ?? warning ?? .ok
    }

    /// The p90 of recent turn costs (nearest rank), each unit on its own; nothing known costs nothing.
    static func expected(_ turns: [Spent]) -> Spent {
        guard !turns.isEmpty else { return Spent() }
        func p90(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            return sorted[min(sorted.count - 1, Int((0.9 * Double(sorted.count)).rounded(.up)) - 1)]
        }
        return Spent(usd: p90(turns.map(\.usd)), tokens: Int(p90(turns.map { Double($0.tokens) })))
    }

    /// A notice's period key: the same all through one day or month.
    static func periodKey(_ cap: Budget.Cap, now: Date, calendar: Calendar = .current) -> String {
        "\(cap.period.rawValue)-\(Int(cap.period.interval(containing: now, calendar: calendar).start.timeIntervalSince1970))-\(cap.unit.rawValue)"
    }
}

extension Budget.Cap {
    /// "5.00 USD a day (spent 5.12)", "60 % of the credential's five_hour window (used 64 %)".
    func spentText(_ spent: Double) -> String {
        switch unit {
        case .usd: return text + " (spent " + String(format: "%.2f", spent) + ")"
        case .tokens: return text + " (spent \(Int(spent)))"
        case .fiveHour, .sevenDay: return text + " (used \(Int((spent * 100).rounded())) %)"
        }
    }
}
