import Foundation

/// The token economics of one agent's session, and the choice it leads to at each turn: continue the
/// claude session or start fresh with a handoff note (issue 14's session policy). Pure values: the
/// planner, the replay of a trace under each policy and the offline optimum, tested on the issue's
/// synthetic grid. ``SessionPolicy`` decides each turn with it.
///
/// Costs are in input tokens at base price (output is the same whichever way a turn goes):
/// - continue, cache warm (the gap since the last turn within the TTL): 0.1 × history + w × new
/// - continue, cache cold: w × history + w × new
/// - fresh: w × (base prompt + handoff) + w × new + P
/// where w is the write multiplier of the cache in use (1.25 for 5-minute entries, 2 for 1-hour ones) and
/// P what losing the conversation is worth. A turn whose history would pass the window must start fresh.
public struct SessionCosts: Sendable, Equatable {
    /// Seconds a cache entry stays warm (300 for 5-minute entries, 3600 for 1-hour ones).
    public var ttl: Double
    /// The write multiplier of those entries.
    public var write: Double
    /// What a fresh session starts with: system prompt, tools.
    public var basePrompt: Double
    /// The note a fresh session carries over.
    public var handoff: Double
    /// What losing the conversation is worth, in tokens (the operator's setting).
    public var loss: Double
    /// The context window.
    public var window: Double
    public static let read = 0.1

    public init(ttl: Double = 300, write: Double = 1.25, basePrompt: Double = 18_000, handoff: Double = 2_000, loss: Double = 0, window: Double = 200_000) {
        self.ttl = ttl; self.write = write; self.basePrompt = basePrompt; self.handoff = handoff; self.loss = loss; self.window = window
    }

    /// The cache lifetimes claude writes, from the split of a turn's cache writes (a subscription's CLI
    /// writes 1-hour entries, an API key's 5-minute ones unless configured).
    public static func lifetime(shortWrites: Int, longWrites: Int) -> (ttl: Double, write: Double)? {
        guard shortWrites + longWrites > 0 else { return nil }
        return longWrites > shortWrites ? (3600, 2) : (300, 1.25)
    }

    public func continued(history h: Double, new n: Double, warm: Bool) -> Double { (warm ? Self.read : write) * h + write * n }
    public var freshStart: Double { basePrompt + handoff }
    public func fresh(new n: Double) -> Double { write * freshStart + write * n + loss }
    public func fits(history h: Double, new n: Double) -> Bool { h + n <= window }
}

/// One turn of a trace: the gap since the previous turn ended, and the tokens it adds to the history.
public struct TurnShape: Sendable, Equatable {
    public var gap: Double
    public var new: Double
    public init(gap: Double, new: Double) { self.gap = gap; self.new = new }
}

/// What an agent's turns have looked like, for looking ahead: how likely the next turn finds the cache
/// warm, and how many tokens a turn adds. Learned from its own history, starting from a prior that
/// counts as `priorWeight` turns.
public struct TurnOutlook: Sendable, Hashable {
    public var warmChance: Double
    public var meanNew: Double
    public init(warmChance: Double, meanNew: Double) { self.warmChance = warmChance; self.meanNew = meanNew }

    /// To 0.02 and 250 tokens: closer than the learning can tell, and outlooks that round alike share
    /// one look-ahead.
    public var rounded: TurnOutlook {
        TurnOutlook(warmChance: (warmChance * 50).rounded() / 50, meanNew: (meanNew / 250).rounded() * 250)
    }

    /// From the agent's past turns (newest last), with the prior: half the gaps warm, 6k tokens a turn.
    public static func learn(from past: [TurnShape], ttl: Double, prior: TurnOutlook = .init(warmChance: 0.5, meanNew: 6_000), priorWeight: Double = 4) -> TurnOutlook {
        let recent = past.suffix(200)
        let warm = Double(recent.filter { $0.gap <= ttl }.count)
        let new = recent.reduce(0) { $0 + $1.new }
        let n = Double(recent.count)
        return TurnOutlook(warmChance: (warm + prior.warmChance * priorWeight) / (n + priorWeight),
                           meanNew: (new + prior.meanNew * priorWeight) / (n + priorWeight))
    }
}

/// The policy: at each turn (its gap known, so whether the cache is warm is known), the action with the
/// lowest expected cost over the coming turns, by dynamic programming over the history size with the
/// agent's outlook (a value iteration over `horizon` turns on a grid of `step` tokens).
public struct SessionPlanner: Sendable {
    public var costs: SessionCosts
    public var horizon = 40
    public var step = 1_000.0

    public init(costs: SessionCosts, horizon: Int = 40) { self.costs = costs; self.horizon = horizon }

    public enum Choice: String, Sendable, Equatable { case `continue`, fresh }

    /// The expected cost of the coming `horizon` turns from each history size (grid index), deciding
    /// well at each: V_k(h) = E[min(continue, fresh)] over the next turn's warmth, with its mean new tokens.
    public func values(_ outlook: TurnOutlook) -> [Double] {
        let size = Int(costs.window / step) + 1
        let n = outlook.meanNew, p = outlook.warmChance
        let growth = Int((n / step).rounded())
        let restart = min(size - 1, Int(((costs.freshStart + n) / step).rounded()))
        let freshNow = costs.fresh(new: n)
        var v = [Double](repeating: 0, count: size), next = v
        for _ in 0..<horizon {
            let fresh = freshNow + v[restart]
            for i in 0..<size {
                let h = Double(i) * step
                guard costs.fits(history: h, new: n) else { next[i] = fresh; continue }
                let after = v[min(size - 1, i + growth)]
                let warm = min(costs.continued(history: h, new: n, warm: true) + after, fresh)
                let cold = min(costs.continued(history: h, new: n, warm: false) + after, fresh)
                next[i] = p * warm + (1 - p) * cold
            }
            swap(&v, &next)
        }
        return v
    }

    private func value(_ v: [Double], _ h: Double) -> Double {
        let i = min(v.count - 1, max(0, Int((h / step).rounded())))
        return v[i]
    }

    /// Continue or fresh for a turn of `new` tokens on `history`, the cache `warm` or not; `future` is
    /// ``values(_:)`` for the outlook (computed once for many turns when the outlook has not moved).
    public func choose(history: Double, new: Double, warm: Bool, outlook: TurnOutlook, future given: [Double]? = nil) -> (Choice, continueCost: Double, freshCost: Double) {
        let future = given ?? values(outlook)
        let fresh = costs.fresh(new: new) + value(future, costs.freshStart + new)
        guard costs.fits(history: history, new: new) else { return (.fresh, .infinity, fresh) }
        let cont = costs.continued(history: history, new: new, warm: warm) + value(future, history + new)
        return (cont <= fresh ? .continue : .fresh, cont, fresh)
    }
}

/// Replays a trace of turns under a policy and prices it; and the offline optimum, which knows the
/// whole trace (dynamic programming over the turns where a session restarts). What `hive stats
/// --policies` and the benchmarks compare.
public enum SessionReplay {
    public enum Policy: String, Sendable, CaseIterable {
        /// Continue until the window forces a fresh start.
        case alwaysContinue = "always continue"
        /// The seed's rule: fresh when the history is at least half the window and the cache cold by a fixed 300 s TTL.
        case seedRule = "seed rule"
        /// ``SessionPlanner`` with the outlook learned from the trace so far.
        case planner = "planner"
    }

    /// The cost of `turns` under `policy`. The first turn starts a session (no conversation lost yet).
    public static func cost(_ turns: [TurnShape], _ policy: Policy, _ costs: SessionCosts) -> Double {
        guard let first = turns.first else { return 0 }
        let planner = SessionPlanner(costs: costs)
        var memo: [TurnOutlook: [Double]] = [:]
        var total = costs.fresh(new: first.new) - costs.loss
        var h = costs.freshStart + first.new
        for t in 1..<max(1, turns.count) where t < turns.count {
            let turn = turns[t]
            let warm = turn.gap <= costs.ttl
            var fresh: Bool
            switch policy {
            case .alwaysContinue: fresh = false
            case .seedRule: fresh = h >= 0.5 * costs.window && turn.gap > 300
            case .planner:
                // Online: it knows the gap (the cache's warmth) when the turn comes, not yet what the turn will add.
                let outlook = TurnOutlook.learn(from: Array(turns[1..<t]), ttl: costs.ttl).rounded
                let future = memo[outlook] ?? planner.values(outlook)
                memo[outlook] = future
                fresh = planner.choose(history: h, new: outlook.meanNew, warm: warm, outlook: outlook, future: future).0 == .fresh
            }
            if !costs.fits(history: h, new: turn.new) { fresh = true }
            if fresh {
                total += costs.fresh(new: turn.new)
                h = costs.freshStart + turn.new
            } else {
                total += costs.continued(history: h, new: turn.new, warm: warm)
                h += turn.new
            }
        }
        return total
    }

    /// The least any policy could have paid, knowing every turn in advance: best[t][r] is the cheapest way
    /// through turn t with the session last started at turn r.
    public static func optimum(_ turns: [TurnShape], _ costs: SessionCosts) -> Double {
        guard let first = turns.first else { return 0 }
        let count = turns.count
        var prefix = [0.0]
        for t in turns { prefix.append(prefix.last! + t.new) }
        // History after turn t in a session started at r: the start plus every turn's tokens since r.
        func history(_ r: Int, _ t: Int) -> Double { costs.freshStart + prefix[t + 1] - prefix[r] }
        var best = [Double](repeating: .infinity, count: count)
        best[0] = costs.fresh(new: first.new) - costs.loss
        for t in 1..<max(1, count) where t < count {
            var next = [Double](repeating: .infinity, count: count)
            let turn = turns[t]
            let warm = turn.gap <= costs.ttl
            var cheapest = Double.infinity
            for r in 0..<t where best[r] < .infinity {
                cheapest = min(cheapest, best[r])
                let h = history(r, t - 1)
                if costs.fits(history: h, new: turn.new) {
                    next[r] = best[r] + costs.continued(history: h, new: turn.new, warm: warm)
                }
            }
            next[t] = cheapest + costs.fresh(new: turn.new)
            best = next
        }
        return best.min() ?? 0
    }
}

/// Synthetic traces for the policy grid (tests and `hive-bench --policy-grid`): gaps exponentially
/// distributed around a mean, new tokens per turn uniform in a range, from a seed.
public enum SyntheticTrace {
    public static func make(turns: Int = 120, meanGap: Double, newTokens: ClosedRange<Double> = 2_000...12_000, seed: UInt64) -> [TurnShape] {
        var rng = SplitMix64(seed: seed)
        return (0..<turns).map { _ in
            TurnShape(gap: -meanGap * log(1 - rng.unit()), new: newTokens.lowerBound + (newTokens.upperBound - newTokens.lowerBound) * rng.unit())
        }
    }

    /// One cell of the grid: each policy's cost divided by the optimum's, averaged over `seeds`.
    public static func ratios(meanGap: Double, costs: SessionCosts, seeds: Int = 5) -> [SessionReplay.Policy: Double] {
        var sums: [SessionReplay.Policy: Double] = [:]
        for seed in 0..<seeds {
            let trace = make(meanGap: meanGap, seed: UInt64(seed) &* 7919 &+ UInt64(meanGap))
            let best = SessionReplay.optimum(trace, costs)
            for p in SessionReplay.Policy.allCases { sums[p, default: 0] += SessionReplay.cost(trace, p, costs) / best }
        }
        return sums.mapValues { $0 / Double(seeds) }
    }
}

/// A small seeded generator (SplitMix64): the same trace from the same seed on every machine.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
    /// In [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
