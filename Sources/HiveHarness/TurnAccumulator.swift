import Foundation

/// How a turn ended, as the turn loop acts on it.
public enum TurnOutcome: Sendable, Equatable {
    case ok
    /// Park until the limit lifts (unix seconds), or re-probe later when the time is unknown.
    case rateLimited(until: Double?)
    case promptTooLong
    /// Overload, throttling, a dropped connection: retry soon, do not count it against the message.
    case transient(String)
    case needsLogin(String)
    case failed(String)

    /// The `result_kind` column of turn stats.
    public var kind: String {
        switch self {
        case .ok: return "ok"
        case .rateLimited: return "rate_limited"
        case .promptTooLong: return "prompt_too_long"
        case .transient, .needsLogin, .failed: return "failed"
        }
    }
}

/// Folds a turn's stream-json events into its numbers and its outcome. Pure: the turn loop feeds it
/// lines and reads the result; tests feed it recorded lines.
public struct TurnAccumulator: Sendable {
    public private(set) var sessionID: String?
    public private(set) var model: String?
    /// Tool calls by tool name, each tool_use counted once.
    public private(set) var toolCalls: [String: Int] = [:]
    /// Usage per assistant message id: the CLI repeats a message's usage on every content block.
    private var usageByMessage: [String: Usage] = [:]
    private var anonymousUsage = Usage()
    private var seenToolUses: Set<String> = []
    /// The context the last assistant message saw.
    public private(set) var contextTokens: Int?
    public private(set) var result: ClaudeResult?
    /// `resetsAt` of a `rate_limit_event` with status `rejected` (0 when it gave no time).
    public private(set) var rejectedUntil: Double?
    public private(set) var compacted = false
    public private(set) var notes = 0
    public private(set) var events = 0

    public init() {}

    public mutating func consume(_ event: ClaudeEvent) {
        events += 1
        switch event {
        case .initialized(let session, let model):
            if let session { sessionID = session }
            if let model { self.model = model }
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
        case .rateLimit(let status, let resetsAt, _):
            if status == "rejected" { rejectedUntil = resetsAt ?? 0 }
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

    /// Token totals of the turn, each assistant message counted once.
    public var usage: Usage { usageByMessage.values.reduce(anonymousUsage, +) }

    /// Cost of the turn: one claude process per turn, so its cumulative total is the turn's.
    public var costUSD: Double { result?.totalCostUSD ?? 0 }

    public var toolCallCount: Int { toolCalls.values.reduce(0, +) }

    /// What the turn came to, given how the process exited (nil: killed or never started).
    public func outcome(exitStatus: Int32?, now: Date = Date()) -> TurnOutcome {
        if let until = rejectedUntil { return .rateLimited(until: until > 0 ? until : nil) }
        guard let result else {
            let how = exitStatus.map { "claude exited with status \($0) without a result" } ?? "claude was stopped before it finished"
            return .failed(how)
        }
        guard result.isError else { return .ok }
        switch LimitText.classify(result.text, apiStatus: result.apiErrorStatus, now: now) {
        case .usageLimit(let resetsAt): return .rateLimited(until: resetsAt)
        case .transient: return .transient(result.text)
        case .promptTooLong: return .promptTooLong
        case .needsLogin: return .needsLogin(result.text)
        case .other: return .failed(result.text.isEmpty ? "error result (\(result.subtype))" : result.text)
        }
    }
}
