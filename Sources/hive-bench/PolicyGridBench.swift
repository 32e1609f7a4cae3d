import Foundation
import HiveHarness

/// Issue 14's grid: each session policy's cost on synthetic traces divided by the offline optimum's,
/// per cell averaged over five seeds (the same grid the tests hold the planner to).
extension Bench {
    func sessionPolicyGrid() -> String {
        let start = ContinuousClock.now
        var rows: [String] = []
        var worst = 0.0
        for (ttl, write) in [(300.0, 1.25), (3600.0, 2.0)] {
            for loss in [0.0, 30_000, 100_000] {
                for meanGap in [60.0, 300, 900, 3600] {
                    let r = SyntheticTrace.ratios(meanGap: meanGap, costs: SessionCosts(ttl: ttl, write: write, loss: loss))
                    let f = { (p: SessionReplay.Policy) in String(format: "%.3f", r[p] ?? .nan) }
                    worst = max(worst, r[.planner] ?? .infinity)
                    rows.append("| \(Int(ttl)) s (w \(write)) | \(Int(loss / 1000))k | \(Int(meanGap)) s | \(f(.planner)) | \(f(.seedRule)) | \(f(.alwaysContinue)) |")
                }
            }
        }
        return """

            ## Session policy grid run of \(ISO8601DateFormatter().string(from: Date()))

            Machine: 2 cores; \(Self.buildKind) build; \(String(format: "%.1f", (ContinuousClock.now - start).seconds)) s for the grid. 120 turns per trace, gaps exponential
            around the mean, 2k-12k new tokens a turn, base prompt 18k plus a 2k handoff, window 200k; five seeds
            per cell. Each number is the policy's cost ÷ the offline optimum's (dynamic programming over reset
            points), averaged over the seeds. The planner decides online: it knows the gap when a turn comes,
            learns the chance of a warm cache and the tokens per turn from the turns so far, and looks 40 turns
            ahead; the seed's rule is fresh at half the window with a cold cache by a fixed 300 s.

            | cache | P | mean gap | planner | seed rule | always continue |
            |---|---|---|---|---|---|
            \(rows.joined(separator: "\n"))

            Worst cell for the planner: \(String(format: "%.3f", worst)) of the optimum (target: within 1.05 in every cell).

            """
    }
}
