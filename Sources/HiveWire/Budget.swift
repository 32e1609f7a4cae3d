import Foundation

/// A spending cap: USD or tokens per day and per month (the host's time zone), with the share at which
/// the manager and the operator are warned. An agent's is `budget` in its `agent.json` (the manager
/// proposes, the operator approves); the hive-wide one and per-agent raises are the operator's
/// (`hive budget`). Tokens are input + output + cache writes (what a cap on work means; cache reads are
/// a tenth of the price and counted in USD only). Nil fields cap nothing.
public struct Budget: Codable, Sendable, Equatable {
    public var usdPerDay: Double?
    public var usdPerMonth: Double?
    public var tokensPerDay: Int?
    public var tokensPerMonth: Int?
    /// The share of a credential's 5-hour and weekly windows (subscriptions, where USD is notional) past
    /// which this agent waits for the window to reset: 0.6 leaves the last 40 % to other agents.
    public var fiveHourShare: Double?
    public var sevenDayShare: Double?
    /// The share of a cap at which the warning goes out, 0.1–1.
    public var warnAt: Double?

    public static let defaultWarnAt = 0.8

    public init(usdPerDay: Double? = nil, usdPerMonth: Double? = nil, tokensPerDay: Int? = nil, tokensPerMonth: Int? = nil,
                fiveHourShare: Double? = nil, sevenDayShare: Double? = nil, warnAt: Double? = nil) {
        self.usdPerDay = usdPerDay; self.usdPerMonth = usdPerMonth; self.tokensPerDay = tokensPerDay; self.tokensPerMonth = tokensPerMonth
        self.fiveHourShare = fiveHourShare; self.sevenDayShare = sevenDayShare; self.warnAt = warnAt
    }

    /// No cap at all.
    public var isEmpty: Bool { caps.isEmpty }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case usdPerDay = "usd_per_day", usdPerMonth = "usd_per_month", tokensPerDay = "tokens_per_day", tokensPerMonth = "tokens_per_month"
        case fiveHourShare = "five_hour_share", sevenDayShare = "seven_day_share"
        case warnAt = "warn_at"
    }

    // Written with the file's snake_case names; read under either spelling, because the wire's decoder
    // turns `usd_per_day` into `usdPerDay` before it looks (and a file's own names are snake_case).
    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        func read<T: Decodable>(_ key: CodingKeys) throws -> T? {
            // usd_per_day → usdPerDay, as the wire's decoder spells it.
            let parts = key.rawValue.split(separator: "_")
            let camel = String(parts[0]) + parts.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
            for name in [key.rawValue, camel] where c.contains(AnyKey(stringValue: name)) {
                return try c.decodeIfPresent(T.self, forKey: AnyKey(stringValue: name))
            }
            return nil
        }
        self.init(usdPerDay: try read(.usdPerDay), usdPerMonth: try read(.usdPerMonth), tokensPerDay: try read(.tokensPerDay),
                  tokensPerMonth: try read(.tokensPerMonth), fiveHourShare: try read(.fiveHourShare), sevenDayShare: try read(.sevenDayShare),
                  warnAt: try read(.warnAt))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(usdPerDay, forKey: .usdPerDay)
        try c.encodeIfPresent(usdPerMonth, forKey: .usdPerMonth)
        try c.encodeIfPresent(tokensPerDay, forKey: .tokensPerDay)
        try c.encodeIfPresent(tokensPerMonth, forKey: .tokensPerMonth)
        try c.encodeIfPresent(fiveHourShare, forKey: .fiveHourShare)
        try c.encodeIfPresent(sevenDayShare, forKey: .sevenDayShare)
        try c.encodeIfPresent(warnAt, forKey: .warnAt)
    }

    /// The caps in force, each with its period and unit.
    public var caps: [Cap] {
        var caps: [Cap] = []
        if let v = usdPerDay { caps.append(Cap(period: .day, unit: .usd, limit: v)) }
        if let v = usdPerMonth { caps.append(Cap(period: .month, unit: .usd, limit: v)) }
        if let v = tokensPerDay { caps.append(Cap(period: .day, unit: .tokens, limit: Double(v))) }
        if let v = tokensPerMonth { caps.append(Cap(period: .month, unit: .tokens, limit: Double(v))) }
        if let v = fiveHourShare { caps.append(Cap(period: .window, unit: .fiveHour, limit: v)) }
        if let v = sevenDayShare { caps.append(Cap(period: .window, unit: .sevenDay, limit: v)) }
        return caps
    }

    public struct Cap: Sendable, Equatable {
        public var period: BudgetPeriod
        public var unit: Unit
        public var limit: Double
        /// USD, tokens, or a share of a subscription window (`five_hour`, `seven_day`, the API's names).
        public enum Unit: String, Sendable, Equatable { case usd, tokens, fiveHour = "five_hour", sevenDay = "seven_day" }
        public init(period: BudgetPeriod, unit: Unit, limit: Double) { self.period = period; self.unit = unit; self.limit = limit }
        /// "5.00 USD a day", "2000000 tokens a month", "60 % of the credential's five_hour window".
        public var text: String {
            switch unit {
            case .usd: return String(format: "%.2f USD", limit) + (period == .day ? " a day" : " a month")
            case .tokens: return "\(Int(limit)) tokens" + (period == .day ? " a day" : " a month")
            case .fiveHour, .sevenDay: return "\(Int((limit * 100).rounded())) % of the credential's \(unit.rawValue) window"
            }
        }
    }

    /// Reads a `budget` object (from `agent.json` or the operator's command), naming each bad field.
    public static func parse(_ o: [String: Any], at parent: String) -> (Budget, [String]) {
        var b = Budget(), problems: [String] = []
        let keys = Set(CodingKeys.allCases.map(\.stringValue))
        for key in o.keys.sorted() where !keys.contains(key) {
            problems.append("\(parent).\(key.prefix(64)): unknown field (known: \(keys.sorted().joined(separator: ", ")))")
        }
        func number(_ key: String, _ range: ClosedRange<Double>, whole: Bool) -> Double? {
            guard let v = o[key], !(v is NSNull) else { return nil }
            guard !(v is Bool), let n = (v as? NSNumber)?.doubleValue, n.isFinite, range.contains(n), !whole || n == n.rounded() else {
                problems.append("\(parent).\(key): must be \(whole ? "a whole number" : "a number") from \(range.lowerBound) to \(range.upperBound)")
                return nil
            }
            return n
        }
        b.usdPerDay = number("usd_per_day", 0...1_000_000, whole: false)
        b.usdPerMonth = number("usd_per_month", 0...10_000_000, whole: false)
        b.tokensPerDay = number("tokens_per_day", 0...1e12, whole: true).map { Int($0) }
        b.tokensPerMonth = number("tokens_per_month", 0...1e13, whole: true).map { Int($0) }
        b.fiveHourShare = number("five_hour_share", 0.01...1, whole: false)
        b.sevenDayShare = number("seven_day_share", 0.01...1, whole: false)
        b.warnAt = number("warn_at", 0.1...1, whole: false)
        return (b, problems)
    }
}

/// A budget's period, in the host's time zone; `window` is a subscription window's own (it renews when
/// the API says).
public enum BudgetPeriod: String, Codable, Sendable, Equatable, CaseIterable {
    case day, month, window

    /// When the period holding `date` began and when it renews (a window: the day, for want of better).
    public func interval(containing date: Date, calendar: Calendar = .current) -> (start: Date, end: Date) {
        let c: Calendar.Component = self == .month ? .month : .day
        let i = calendar.dateInterval(of: c, for: date) ?? DateInterval(start: calendar.startOfDay(for: date), duration: 86_400)
        return (i.start, i.end)
    }
}

/// How much of a subscription window a credential has used (0–1, as the API reports it), and when the
/// window resets (unix seconds), as core last saw it.
public struct WindowUse: Codable, Sendable, Equatable {
    public var utilization: Double
    @Nullable public var resetsAt: Double?
    /// When it was seen.
    public var at: Double
    public init(utilization: Double, resetsAt: Double?, at: Double) { self.utilization = utilization; self.resetsAt = resetsAt; self.at = at }
}

/// What was spent over a period: USD as priced by core, tokens as budgets count them.
public struct Spent: Codable, Sendable, Equatable {
    public var usd: Double
    public var tokens: Int
    public init(usd: Double = 0, tokens: Int = 0) { self.usd = usd; self.tokens = tokens }
    public static func += (a: inout Spent, b: Spent) { a.usd += b.usd; a.tokens += b.tokens }
    public func amount(_ unit: Budget.Cap.Unit) -> Double { unit == .usd ? usd : Double(tokens) }
}

/// The harness's account of one finished turn, per model, on its agent's socket: what core meters for an
/// agent without a gateway, and the turn costs its budget expects (p90). Core prices it with its own table
/// and answers the price; `key` makes a report sent twice (after a reconnect) count once.
public struct ReportTurnCommand: HiveCommand {
    public static let cmd = "report_turn"
    /// The harness's own id of the turn (its turn-stats row), unique per agent.
    public var key: String
    public var startedAt: Double
    public var endedAt: Double
    /// Tokens per model id, this turn's share (compaction calls included).
    public var models: [String: TokenCount]
    /// The CLI's own figure for the turn (the delta of its running `total_cost_usd`), kept for comparison.
    public var cliCostUsd: Double?
    /// The subscription windows' use the CLI's `rate_limit_event` lines reported (`five_hour`, `seven_day`):
    /// core keeps them for the credential of an agent it does not meter itself.
    @Nullable public var windows: [String: WindowUse]?
    /// How the turn ended (turn stats' `result_kind`: `ok`, `failed`, `prompt_too_long`, `rate_limited`).
    @Nullable public var result: TurnResultKind?

    public static let maxModels = 16
    /// Per field and model: more than a turn of 250 calls at a 200k context could use.
    public static let maxTokens = 50_000_000

    public init(key: String, startedAt: Double, endedAt: Double, models: [String: TokenCount], cliCostUsd: Double? = nil, windows: [String: WindowUse]? = nil,
                result: TurnResultKind? = nil) {
        self.key = key; self.startedAt = startedAt; self.endedAt = endedAt; self.models = models; self.cliCostUsd = cliCostUsd; self.windows = windows
        self.result = result
    }

    public struct Reply: Codable, Sendable, Equatable {
        /// The turn's cost by the hive's price table.
        public var usd: Double
        /// Models priced by their family only, and models not priced at all.
        public var byFamily: [String]
        public var unpriced: [String]
        /// Whether this report counts toward the budget (false: the gateway metered the turn already, or
        /// the same key was reported before).
        public var counted: Bool
        public init(usd: Double, byFamily: [String], unpriced: [String], counted: Bool) {
            self.usd = usd; self.byFamily = byFamily; self.unpriced = unpriced; self.counted = counted
        }
    }
}

/// `budget`: the operator's view of budgets and spend, and the operator's changes (admin socket). With
/// `agent`, that agent; without, the hive. `set` replaces the operator's cap (an agent's raise wins over
/// its `agent.json` until `clear`).
public struct BudgetCommand: HiveCommand {
    public static let cmd = "budget"
    @Nullable public var agent: String?
    @Nullable public var set: Budget?
    @Nullable public var clear: Bool?
    public init(agent: String? = nil, set: Budget? = nil, clear: Bool? = nil) { self.agent = agent; self.set = set; self.clear = clear }

    public struct Reply: Codable, Sendable, Equatable {
        public var budgets: [BudgetView]
        public init(budgets: [BudgetView]) { self.budgets = budgets }
    }
}

/// One budget as `hive budget` and the dashboard show it.
public struct BudgetView: Codable, Sendable, Equatable {
    /// An agent's name, or `hive`.
    public var scope: String
    /// The caps in force, and where they come from: `agent.json`, `operator`, or `none`.
    public var budget: Budget
    public var source: String
    public var today: Spent
    public var month: Spent
    /// What one more turn is expected to cost (the p90 of the agent's recent turns).
    public var expectedTurn: Spent
    /// `ok`, `warning` or `over`, with the sentence that says why.
    public var status: String
    public var detail: String
    /// When the cap that holds it renews (unix seconds), when over.
    @Nullable public var renewsAt: Double?
    /// The agent's credential and its subscription windows' use, as last seen (empty for an API key).
    @Nullable public var credential: String?
    public var windows: [String: WindowUse] = [:]
    public init(scope: String, budget: Budget, source: String, today: Spent, month: Spent, expectedTurn: Spent, status: String, detail: String,
                renewsAt: Double? = nil) {
        self.scope = scope; self.budget = budget; self.source = source; self.today = today; self.month = month
        self.expectedTurn = expectedTurn; self.status = status; self.detail = detail; self.renewsAt = renewsAt
    }
}

/// `spend`: priced totals per agent, per model and for the hive over today, 7 days and the month.
public struct SpendCommand: HiveCommand {
    public static let cmd = "spend"
    public init() {}
    public struct Reply: Codable, Sendable, Equatable {
        public var periods: [SpendPeriod]
        /// The price table's date and source.
        public var prices: String
        public init(periods: [SpendPeriod], prices: String) { self.periods = periods; self.prices = prices }
    }
}

public struct SpendPeriod: Codable, Sendable, Equatable {
    /// `today`, `7 days` or `month`.
    public var period: String
    public var since: Double
    public var hive: Spent
    public var agents: [String: Spent]
    public var models: [String: Spent]
    public init(period: String, since: Double, hive: Spent, agents: [String: Spent], models: [String: Spent]) {
        self.period = period; self.since = since; self.hive = hive; self.agents = agents; self.models = models
    }
}
