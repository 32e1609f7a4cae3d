import Foundation
@testable import HiveHarness
import Testing

/// The session policy against the offline optimum on synthetic traces (issue 14's grid): 120 turns, gaps
/// exponential with means 60 s to an hour, 2k-12k new tokens a turn, an 18k base prompt, a 200k window,
/// P in {0, 30k, 100k}, 5-minute (w 1.25) and 1-hour (w 2) caches, five seeds each.
@Suite("Session planner")
struct SessionPlannerTests {
    @Test("the cost model prices warm, cold and fresh turns as the cache's multipliers say; the cache lifetime is read from the writes")
    func costModel() {
        let c = SessionCosts(ttl: 300, write: 1.25, basePrompt: 18_000, handoff: 2_000, loss: 30_000, window: 200_000)
        #expect(c.continued(history: 100_000, new: 4_000, warm: true) == 10_000 + 5_000)
        #expect(c.continued(history: 100_000, new: 4_000, warm: false) == 125_000 + 5_000)
        #expect(c.fresh(new: 4_000) == 25_000 + 5_000 + 30_000)
        #expect(!c.fits(history: 198_000, new: 4_000))
        #expect(SessionCosts.lifetime(shortWrites: 0, longWrites: 5_000)! == (3600, 2))
        #expect(SessionCosts.lifetime(shortWrites: 5_000, longWrites: 0)! == (300, 1.25))
        #expect(SessionCosts.lifetime(shortWrites: 0, longWrites: 0) == nil)
    }

    @Test("the optimum is never beaten, and is what a brute force over every reset pattern finds on a short trace")
    func optimumIsOptimal() {
        let costs = SessionCosts(ttl: 300, write: 1.25, loss: 10_000, window: 60_000)
        let trace = SyntheticTrace.make(turns: 10, meanGap: 300, seed: 42)
        var brute = Double.infinity
        for mask in 0..<(1 << 9) {
            var total = costs.fresh(new: trace[0].new) - costs.loss, h = costs.freshStart + trace[0].new, ok = true
            for t in 1..<10 {
                let fresh = mask & (1 << (t - 1)) != 0
                if fresh { total += costs.fresh(new: trace[t].new); h = costs.freshStart + trace[t].new; continue }
                guard costs.fits(history: h, new: trace[t].new) else { ok = false; break }
                total += costs.continued(history: h, new: trace[t].new, warm: trace[t].gap <= costs.ttl)
                h += trace[t].new
            }
            if ok { brute = min(brute, total) }
        }
        let best = SessionReplay.optimum(trace, costs)
        #expect(abs(best - brute) < 1e-6, "\(best) vs \(brute)")
        for p in SessionReplay.Policy.allCases { #expect(SessionReplay.cost(trace, p, costs) >= best - 1e-6) }
    }

    @Test("in every cell of the grid the planner is within 5 % of the offline optimum, averaged over five seeds")
    func grid() {
        var worst = (ratio: 0.0, cell: "")
        for (ttl, write) in [(300.0, 1.25), (3600.0, 2.0)] {
            for loss in [0.0, 30_000, 100_000] {
                for meanGap in [60.0, 300, 900, 3600] {
                    let r = SyntheticTrace.ratios(meanGap: meanGap, costs: SessionCosts(ttl: ttl, write: write, loss: loss))
                    let ours = r[.planner] ?? .infinity
                    if ours > worst.ratio { worst = (ours, "ttl \(Int(ttl)) P \(Int(loss)) gap \(Int(meanGap))") }
                    #expect(ours <= 1.05, "ttl \(Int(ttl)), P \(Int(loss)), mean gap \(Int(meanGap)) s: planner \(ours), seed rule \(r[.seedRule] ?? 0)")
                }
            }
        }
        #expect(worst.ratio >= 1, "nothing beats the optimum (\(worst.cell))")
    }
}
