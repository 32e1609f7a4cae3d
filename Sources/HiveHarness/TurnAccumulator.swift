import Foundation
import HiveWire

/// Folds a turn's stream-json events into its numbers and its outcome. Pure: the turn loop feeds it
/// lines and reads the result; tests feed it recorded lines.
public struct TurnAccumulator: Sendable {
    public private(set) var sessionID: String?
    public private(set) var model: String?
    /// The CLI's version, from its init line.
    public private(set) var cliVersion: String?
    /// Tool calls by tool name, each tool_use counted once.
    public private(set) var toolCalls: [String: Int] = [:]
    /// Usage per assistant message id: the CLI repeats a message's usage on every content block.
    private var usageByMessage: [String: Usage] = [:]
    private var anonymousUsage = Usage()
    private var seenToolUses: Set<String> = []
    /// The context the last assistant message saw.
    public private(set) var contextTokens: Int?
    public private(set) var result: ClaudeResult?
    /// `resetsAt` of a `rate_limit_event` with status `rejected` (0 when it gave no time), and its window.
    public private(set) var rejectedUntil: Double?
    public private(set) var rejectedWindow: String?
    public private(set) var compacted = false
    /// The subscription windows' use the run's `rate_limit_event` lines reported, the latest of each.
    public private(set) var windows: [String: WindowUse] = [:]
    public private(set) var notes = 0
    public private(set) var events = 0

    public init() {}

    public mutating func consume(_ event: ClaudeEvent) {
        events += 1
        switch event {
        case .initialized(let session, let model, let version):
            if let session { sessionID = session }
            if let model { self.model = model }
            if let version { cliVersion = version }
        case .assistant(let id, let usage, let tools, _, _):
            if let usage {
                if let id { usageByMessage[id] = usage } else { anonymousUsage = anonymousUsage + usage }
                contextTokens = usage.context
            }
            for tool in tools {
                if let tid = tool.id {
                    guard seenToolUses.insert(tid).inserted else { continue }
                }
                toolCalls[tool.name, default: 0] += 1
            }
        case .rateLimit(let status, let resetsAt, let kind, let windows):
            if status == "rejected" { rejectedUntil = resetsAt ?? 0; rejectedWindow = kind }
            self.windows.merge(windows) { $1 }
        case .compactBoundary:
            compacted = true
        case .result(let r):
            result = r
        case .note:
            notes += 1
        case .toolResult, .status, .apiRetry, .other:
            break
        }
    }

    /// Token totals of the turn: the `result` line's (the only true totals: `assistant` lines carry each
    /// call's usage at its start, `output_tokens: 1`), else each assistant message counted once.
    public var usage: Usage { result?.usage ?? usageByMessage.values.reduce(anonymousUsage, +) }

    /// This turn's share of each model's usage and cost. `modelUsage` and `total_cost_usd` are the
    /// session's running totals on `--continue`; `previous` is what the session's last turn reported
    /// (empty for a fresh session). A total that went down means the CLI started counting afresh.
    public func turnModelUsage(previous: [String: ModelUsage]) -> [String: ModelUsage] {
        guard let totals = result?.modelUsage else { return [:] }
        return totals.reduce(into: [:]) { out, entry in
            let (name, now) = entry
            guard let before = previous[name], before.costUSD <= now.costUSD, before.usage.output <= now.usage.output else {
                out[name] = now
                return
            }
            let u = Usage(input: now.usage.input - before.usage.input, output: now.usage.output - before.usage.output,
                          cacheRead: now.usage.cacheRead - before.usage.cacheRead,
                          cacheCreation: now.usage.cacheCreation - before.usage.cacheCreation,
                          cacheCreation1h: now.usage.cacheCreation1h - before.usage.cacheCreation1h)
            out[name] = ModelUsage(usage: u, costUSD: now.costUSD - before.costUSD)
        }
    }

    /// The CLI's own figure for the turn: the sum of its models' cost deltas (never the session's
    /// running total).
    public func cliCostUSD(previous: [String: ModelUsage]) -> Double {
        turnModelUsage(previous: previous).values.reduce(0) { $0 + $1.costUSD }
    }

    /// This turn's tokens per model, as a price table needs them. `modelUsage` covers every API call of
    /// the run (a compaction call too, which the `result` line's `usage` leaves out) but does not split
    /// cache writes by lifetime; where a model's share lacks the split, the `usage` line's 1-hour share
    /// is applied. With no `modelUsage` at all (a run cut short), the assistant lines' usage counts for
    /// the model the run said it used.
    public func turnTokens(previous: [String: ModelUsage], fallbackModel: String) -> [String: TokenCount] {
        let total = usage
        let longShare = total.cacheCreation > 0 ? Double(total.cacheCreation1h) / Double(total.cacheCreation) : 0
        func tokens(_ u: Usage) -> TokenCount {
            let long = u.cacheCreation1h > 0 ? min(u.cacheCreation1h, u.cacheCreation) : Int((Double(u.cacheCreation) * longShare).rounded())
            return TokenCount(input: u.input, output: u.output, cacheWriteShort: u.cacheCreation - long, cacheWriteLong: long, cacheRead: u.cacheRead)
        }
        let shares = turnModelUsage(previous: previous)
        if shares.isEmpty {
            return total == Usage() ? [:] : [model ?? fallbackModel: tokens(total)]
        }
        return shares.mapValues { tokens($0.usage) }
    }

    /// Tools the CLI refused in this turn.
    public var permissionDenials: [String] { result?.permissionDenials ?? [] }

    public var toolCallCount: Int { toolCalls.values.reduce(0, +) }

    /// A reset time is believed only within a minute (`floor`) to a week from now: a time in the past or
    /// a garbled one must neither busy-loop the agent nor park it for years.
    static func clampReset(_ until: Double, now: Date, floor: Double = 60) -> Double {
        let t = now.timeIntervalSince1970
        return min(max(until, t + floor), t + 7 * 86_400)
    }

    /// What the turn came to, given how the process exited (nil: killed or never started).
    /// `parkFloor`: the shortest park a limit gets (a minute; tests lower it, see `HarnessConfig.parkFloor`).
    public func outcome(exitStatus: Int32?, now: Date = Date(), parkFloor: Double = 60) -> TurnOutcome {
        // A turn that ended well is ok, whatever was said on the way.
        if let result, !result.isError { return .ok }
        // The structured event first (its time is exact), the text second.
        if let until = rejectedUntil {
            return .rateLimited(until: until > 0 ? Self.clampReset(until, now: now, floor: parkFloor) : nil, window: rejectedWindow)
        }
        guard let result else {
            let how = exitStatus.map { "claude exited with status \($0) without a result" } ?? "claude was stopped before it finished"
            return .failed(how)
        }
        guard result.isError else { return .ok }
        switch LimitText.classify(result.text, apiStatus: result.apiErrorStatus, now: now) {
        case .usageLimit(let resetsAt): return .rateLimited(until: resetsAt.map { Self.clampReset($0, now: now, floor: parkFloor) })
        case .billing: return .needsBilling(result.text)
        case .transient: return .transient(result.text)
        case .promptTooLong: return .promptTooLong
        case .needsLogin: return .needsLogin(result.text)
        case .other: return .failed(result.text.isEmpty ? "error result (\(result.subtype))" : result.text)
        }
    }
}
