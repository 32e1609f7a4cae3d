import Foundation
import HiveWire
import Synchronization

/// What the harness is doing, for its HTTP endpoint and for `report_state` to core.
public struct HarnessSnapshot: Codable, Sendable, Equatable {
    public var state = AgentState.starting
    public var rateLimitedUntil: Double?
    public var detail: String?
    public var model: String?
    /// The model the operator chose at runtime (core's `set_model`), used instead of the config's.
    public var modelOverride: String?
    /// The model the agent's config names.
    public var configModel: String?
    public var sessionID: String?
    public var contextTokens: Int?
    public var contextWindow: Int?
    public var lastTurnCostUSD: Double?
    public var totalCostUSD: Double = 0
    public var turns: Int = 0
    /// The message the current turn works on.
    public var messageID: Int64?
    public var lastTurnEndedAt: Double?
    /// The Claude Code version of the last turn.
    public var cliVersion: String?
    /// Tools claude was refused in the last turn that had any refusals (for the agent page).
    public var permissionDenials: [String] = []
}

/// Session bookkeeping kept across harness restarts in `<harness>/session.json`.
struct SessionRecord: Codable, Sendable {
    var sessionID: String?
    var lastTurnEndedAt: Double?
    var contextTokens: Int?
    var contextWindow: Int?
    /// The CLI's running totals per model for `sessionID`, as its last turn reported them: the next
    /// continued turn's share is the difference.
    var modelTotals: [String: ModelUsage]?
    /// Tools the manager has been told this agent was denied (each once).
    var deniedToolsReported: [String]?
}

/// The live snapshot, shared by the turn loop (writer) and the HTTP endpoint (reader).
public final class HarnessStatus: Sendable {
    private let snapshot = Mutex(HarnessSnapshot())
    public init() {}
    public func read() -> HarnessSnapshot { snapshot.withLock { $0 } }
    func update(_ change: (inout HarnessSnapshot) -> Void) -> HarnessSnapshot {
        snapshot.withLock { s in change(&s); return s }
    }
}
