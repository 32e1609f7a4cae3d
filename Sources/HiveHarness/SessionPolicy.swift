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
