import Foundation
import HiveBroker
import HiveWire
import Synchronization

/// How fast each agent may do the things that cost the hive something: sending messages (each one wakes
/// a turn somewhere, so a flood is also a cost amplifier) and reporting its state. A token bucket per
/// agent and kind; a refusal says when to try again. The operator's own sends are not limited.
final class AgentRates: Sendable {
    enum Kind: String, Sendable { case send, reportState = "report_state", reportTurn = "report_turn", search }

    struct Policy: Sendable, Equatable {
        var burst: Double
        /// Tokens a second; 0 turns the limit off.
        var perSecond: Double
    }

    private let policies: [Kind: Policy]
    private let buckets = Mutex<[String: TokenBucket]>([:])
    private let clock: @Sendable () -> Double

    /// `report_turn`: one per turn; the burst covers the 20 a harness resends after a reconnect, and the
    /// rate (one every 5 s) bounds the rows an agent can add to the spend table.
    /// `search`: a read, but a full-text one; a burst of 20, then 2 a second.
    init(send: Policy, reportState: Policy = Policy(burst: 30, perSecond: 2), reportTurn: Policy = Policy(burst: 25, perSecond: 0.2),
         search: Policy = Policy(burst: 20, perSecond: 2), clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        policies = [.send: send, .reportState: reportState, .reportTurn: reportTurn, .search: search]
        self.clock = clock
    }

    /// Takes one token of `kind` for `agent`, or refuses with when to retry.
    func take(_ agent: AgentName, _ kind: Kind) throws(RequestError) {
        guard let policy = policies[kind], policy.perSecond > 0 else { return }
        let now = clock()
        let key = "\(agent.rawValue)/\(kind.rawValue)"
        let result = buckets.withLock { b -> Result<Void, TokenBucket.Wait> in
            var bucket = b[key] ?? TokenBucket(burst: policy.burst, refillPerSecond: policy.perSecond, now: now)
            defer { b[key] = bucket }
            return bucket.take(now: now)
        }
        if case .failure(let wait) = result {
            let rate = policy.perSecond >= 1 ? "\(Int(policy.perSecond)) a second" : "one every \(Int((1 / policy.perSecond).rounded())) s"
            throw RequestError("\(kind.rawValue) refused: at most \(rate) after a burst of \(Int(policy.burst)); try again in \(String(format: "%.1f", max(0.1, wait.seconds))) s")
        }
    }

    /// Forgets an agent's buckets (destroyed).
    func forget(_ agent: AgentName) {
        buckets.withLock { b in for k in b.keys where k.hasPrefix("\(agent.rawValue)/") { b[k] = nil } }
    }
}
