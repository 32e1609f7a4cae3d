import Foundation
import HiveTelemetry

/// Whether the next turn continues the claude session or starts fresh.
///
/// Continuing re-sends the whole history: cheap while the prompt cache is warm (read at 0.1×), dear once
/// it has gone cold (written again at the cache's multiplier). A fresh session with a handoff note is
/// cheap now but loses the conversation (`freshPenalty`) and starts a new history. ``SessionPlanner``
/// weighs both over the coming turns with what this agent's turns have looked like (``SessionHistory``).
/// Every decision records both estimates, in input-token equivalents at base price, so the policy can be
/// audited from turn stats.
public struct SessionPolicy: Sendable, Equatable {
    /// The seed's rule's share of the window; kept for configs that set it, no longer deciding.
    public var contextFraction: Double = 0.5
    /// Seconds the prompt cache stays warm after a turn; nil: learned from claude's cache writes.
    public var cacheTTL: Double?
    /// Context a fresh session starts with (system prompt, tools) when no measurement exists yet.
    public var freshBaselineTokens: Int = 20_000
    /// What losing the conversation is worth, in input tokens.
    public var freshPenalty: Double = 30_000
    /// The window assumed before claude has reported one.
    public static let defaultWindow = 200_000
    public static let cacheReadMultiplier = SessionCosts.read

    public init(contextFraction: Double = 0.5, cacheTTL: Double? = nil, freshBaselineTokens: Int = 20_000, freshPenalty: Double = 30_000) {
        self.contextFraction = contextFraction
        self.cacheTTL = cacheTTL
        self.freshBaselineTokens = freshBaselineTokens
        self.freshPenalty = freshPenalty
    }

    public enum Action: String, Sendable, Codable { case `continue`, fresh, compact }

    public struct Decision: Sendable, Equatable {
        public var action: Action
        public var reason: String
        /// Estimated cost of continuing (this turn and the coming ones), in base-price input tokens.
        public var continueCost: Double
        /// Estimated cost of a fresh start (this turn and the coming ones), in base-price input tokens.
        public var freshCost: Double
    }

    /// The cache lifetime and write multiplier in force: the setting, else what claude's writes show,
    /// else 5-minute entries.
    public func lifetime(_ history: SessionHistory) -> (ttl: Double, write: Double) {
        if let cacheTTL { return (cacheTTL, cacheTTL >= 3600 ? 2 : 1.25) }
        return history.lifetime ?? (300, 1.25)
    }

    /// Decides for the next turn. `lastContext`/`window`: from the previous turn; `idle`: seconds since it
    /// ended; `requested`: a one-shot "new session" was asked for; `hasSession`: there is one to continue;
    /// `history`: this agent's recent turns.
    public func decide(lastContext: Int?, window: Int?, idle: Double?, requested: Bool, hasSession: Bool,
                       freshBaseline: Int? = nil, history: SessionHistory = .init()) -> Decision {
        let (ttl, write) = lifetime(history)
        let costs = SessionCosts(ttl: ttl, write: write, basePrompt: Double(freshBaseline ?? freshBaselineTokens), handoff: 0,
                                 loss: freshPenalty, window: Double(window ?? Self.defaultWindow))
        let outlook = TurnOutlook.learn(from: history.shapes, ttl: ttl).rounded
        let warm = (idle ?? .infinity) <= ttl
        let (choice, continueCost, freshCost) = SessionPlanner(costs: costs)
            .choose(history: Double(lastContext ?? 0), new: outlook.meanNew, warm: warm, outlook: outlook)
        func make(_ a: Action, _ why: String) -> Decision { Decision(action: a, reason: why, continueCost: continueCost, freshCost: freshCost) }
        if requested { return make(.fresh, "a new session was requested") }
        if !hasSession { return make(.fresh, "no session to continue") }
        let cache = warm ? "cache warm" : "cache cold (idle \(Int(idle ?? 0)) s > \(Int(ttl)) s)"
        let why = "\(cache), context \(lastContext ?? 0); over the coming turns continue ≈ \(Self.tokens(continueCost)), fresh ≈ \(Self.tokens(freshCost)) "
            + "(w \(write), \(Int(outlook.warmChance * 100)) % of turns warm, ~\(Self.tokens(outlook.meanNew))/turn)"
        return make(choice == .fresh ? .fresh : .continue, why)
    }

    static func tokens(_ n: Double) -> String { n.isFinite ? (n >= 10_000 ? "\(Int((n / 1000).rounded()))k" : "\(Int(n.rounded()))") : "∞" }
}

/// What the harness has learned of its agent's recent turns (from turn stats): their shapes (the gap
/// before each and the tokens it added to the context) and the cache lifetime claude writes.
public struct SessionHistory: Sendable, Equatable {
    public var shapes: [TurnShape] = []
    /// From the split of cache writes; nil before any.
    public var ttl: Double?
    public var write: Double?
    public var lifetime: (ttl: Double, write: Double)? { ttl.flatMap { t in write.map { (t, $0) } } }

    public init(shapes: [TurnShape] = [], ttl: Double? = nil, write: Double? = nil) { self.shapes = shapes; self.ttl = ttl; self.write = write }

    /// From turn stats, oldest first: a continued turn's shape is its gap and its context's growth.
    public static func learn(_ turns: [TurnStat]) -> SessionHistory {
        var shapes: [TurnShape] = []
        for (previous, turn) in zip(turns, turns.dropFirst()) where turn.resultKind == "ok" && turn.sessionAction == "continue" {
            guard let before = previous.contextTokens, let after = turn.contextTokens else { continue }
            shapes.append(TurnShape(gap: max(0, turn.startedAt - previous.endedAt), new: Double(max(0, after - before))))
        }
        let long = turns.reduce(0) { $0 + $1.cacheCreation1hTokens }
        let short = turns.reduce(0) { $0 + max(0, $1.cacheCreationTokens - $1.cacheCreation1hTokens) }
        let lifetime = SessionCosts.lifetime(shortWrites: short, longWrites: long)
        return SessionHistory(shapes: shapes, ttl: lifetime?.ttl, write: lifetime?.write)
    }
}

/// Exponential backoff with jitter, capped.
public struct Backoff: Sendable, Equatable {
    public var base: Double
    public var cap: Double
    public init(base: Double = 2, cap: Double = 300) { self.base = base; self.cap = cap }

    /// Seconds to wait before attempt `n` (1-based), ±20 % jitter.
    public func delay(attempt n: Int, random: Double = Double.random(in: 0...1)) -> Double {
        let raw = min(cap, base * pow(2, Double(max(0, n - 1))))
        return raw * (0.8 + 0.4 * random)
    }
}

/// The evaluator over an agent's real turns (`hive stats <agent> --policies`, the stats page): replays
/// them under always-continue, the seed's rule and the planner, beside the offline optimum, each in
/// base-price input tokens, with USD at the agent's model's input price. Output tokens are the same
/// under every choice and left out.
public struct PolicyEvaluation: Codable, Sendable, Equatable {
    public struct Row: Codable, Sendable, Equatable {
        public var policy: String
        public var tokens: Double
        public var usd: Double
        /// Cost ÷ the optimum's.
        public var ratio: Double
    }
    public var turns: Int
    public var rows: [Row]
    /// What the planner saved against always-continue, in USD (negative: it cost more).
    public var savedUSD: Double
    public var ttl: Double
    public var write: Double

    /// Each ok turn's shape: the gap since the previous turn ended, and what it added to the context
    /// (a continued turn its growth; a fresh one what it held beyond the fresh start).
    public static func shapes(_ turns: [TurnStat], basePrompt: Double) -> [TurnShape] {
        var out: [TurnShape] = []
        var previous: TurnStat?
        for t in turns where t.resultKind == "ok" && t.wakeSource != "compact" {
            guard let ctx = t.contextTokens else { continue }
            let gap = previous.map { max(0, t.startedAt - $0.endedAt) } ?? 0
            let grew = t.sessionAction == "continue" ? previous?.contextTokens.map { ctx - $0 } : nil
            out.append(TurnShape(gap: gap, new: Double(max(0, grew ?? (ctx - Int(basePrompt))))))
            previous = t
        }
        return out
    }

    public static func evaluate(_ turns: [TurnStat], policy: SessionPolicy, inputPricePerMillion: Double) -> PolicyEvaluation {
        let history = SessionHistory.learn(turns)
        let (ttl, write) = policy.lifetime(history)
        let base = Double(turns.last(where: { $0.sessionAction == "fresh" && $0.resultKind == "ok" })?.contextTokens ?? policy.freshBaselineTokens)
        let window = Double(turns.last?.contextWindow ?? SessionPolicy.defaultWindow)
        let costs = SessionCosts(ttl: ttl, write: write, basePrompt: base, handoff: 0, loss: policy.freshPenalty, window: window)
        let trace = shapes(turns, basePrompt: base)
        let best = SessionReplay.optimum(trace, costs)
        let usd = { (tokens: Double) in tokens * inputPricePerMillion / 1_000_000 }
        var rows = SessionReplay.Policy.allCases.map { p in
            let c = SessionReplay.cost(trace, p, costs)
            return Row(policy: p.rawValue, tokens: c, usd: usd(c), ratio: best > 0 ? c / best : 1)
        }
        rows.append(Row(policy: "offline optimum", tokens: best, usd: usd(best), ratio: 1))
        let always = rows.first { $0.policy == SessionReplay.Policy.alwaysContinue.rawValue }?.usd ?? 0
        let ours = rows.first { $0.policy == SessionReplay.Policy.planner.rawValue }?.usd ?? 0
        return PolicyEvaluation(turns: trace.count, rows: rows, savedUSD: always - ours, ttl: ttl, write: write)
    }
}
