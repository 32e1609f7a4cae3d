import Foundation

/// Whether the next turn continues the claude session or starts fresh.
///
/// Continuing re-sends the whole history: cheap while the prompt cache is warm (read at 0.1×), dear once
/// it has gone cold (re-written at 1.25×). Past `contextFraction` of the window with a cold cache, a fresh
/// session with a handoff note costs less. Every decision records both estimates, in input-token
/// equivalents at base price, so the policy can be audited from turn stats.
public struct SessionPolicy: Sendable, Equatable {
    public var contextFraction: Double = 0.5
    /// Seconds the prompt cache stays warm after a turn.
    public var cacheTTL: Double = 300
    /// Context a fresh session starts with (system prompt, tools) when no measurement exists yet.
    public var freshBaselineTokens: Int = 20_000
    public static let cacheWriteMultiplier = 1.25
    public static let cacheReadMultiplier = 0.1

    public init(contextFraction: Double = 0.5, cacheTTL: Double = 300, freshBaselineTokens: Int = 20_000) {
        self.contextFraction = contextFraction
        self.cacheTTL = cacheTTL
        self.freshBaselineTokens = freshBaselineTokens
    }

    public enum Action: String, Sendable, Codable { case `continue`, fresh, compact }

    public struct Decision: Sendable, Equatable {
        public var action: Action
        public var reason: String
        /// Estimated cost of continuing, in base-price input tokens.
        public var continueCost: Double
        /// Estimated cost of a fresh start, in base-price input tokens.
        public var freshCost: Double
    }

    /// Decides for the next turn. `lastContext`/`window`: from the previous turn; `idle`: seconds since it
    /// ended; `requested`: a one-shot "new session" was asked for; `hasSession`: there is one to continue.
    public func decide(lastContext: Int?, window: Int?, idle: Double?, requested: Bool, hasSession: Bool,
                       freshBaseline: Int? = nil) -> Decision {
        let h = Double(lastContext ?? 0)
        let cold = (idle ?? .infinity) > cacheTTL
        let continueCost = h * (cold ? Self.cacheWriteMultiplier : Self.cacheReadMultiplier)
        let freshCost = Double(freshBaseline ?? freshBaselineTokens) * Self.cacheWriteMultiplier
        func make(_ a: Action, _ why: String) -> Decision { Decision(action: a, reason: why, continueCost: continueCost, freshCost: freshCost) }
        if requested { return make(.fresh, "a new session was requested") }
        if !hasSession { return make(.fresh, "no session to continue") }
        if let window, window > 0, h >= contextFraction * Double(window), cold {
            return make(.fresh, "context \(Int(h)) ≥ \(Int(contextFraction * 100))% of \(window) and cache cold (idle \(Int(idle ?? 0)) s > \(Int(cacheTTL)) s)")
        }
        return make(.continue, cold ? "cache cold but context small" : "cache warm")
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
