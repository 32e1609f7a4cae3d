import Foundation
import HiveBroker
import HiveHost
import HiveWire

/// Takes `remind` requests: checks timing and limits, stores the reminder and tells the scheduler.
///
/// Core writes nothing for a reminder into the agent's directories (root writing where an agent can
/// plant links is how a host file gets overwritten): long texts are saved by `hive mcp`, as the agent,
/// in its own state dir, and the reminder carries the path.
struct ReminderDesk: Sendable {
    let broker: any HiveStore
    let layout: HiveLayout
    let limits: ReminderLimits
    let scheduler: ReminderScheduler
    /// Seconds an `at_unix` may lie in the past (clock skew, a slow turn) and still fire at once.
    static let pastTolerance = 60.0
    /// Longest reminder text core takes; `hive mcp` saves longer ones to a file first.
    public static let maxBytes = 3000
    /// The latest `at_unix` taken before any conversion (year 5138): a number past it is refused as such.
    static let latestUnix = 1e11

    func remind(_ c: RemindCommand, for agent: AgentName, now: Double = Date().timeIntervalSince1970) throws -> RemindCommand.Reply {
        guard !c.message.isEmpty else { throw RequestError("remind: message is empty") }
        guard c.message.utf8.count <= Self.maxBytes else {
            throw RequestError("remind: message is \(c.message.utf8.count) bytes, more than \(Self.maxBytes); save the text in a file and give file_path")
        }
        let dueAt: Double
        switch (c.delaySeconds, c.atUnix) {
        case (nil, nil): throw RequestError("remind: give exactly one of delay_seconds or at_unix")
        case (.some, .some): throw RequestError("remind: give exactly one of delay_seconds or at_unix, not both")
        case (let d?, nil):
            guard d.isFinite, d >= 0, d <= Self.latestUnix else { throw RequestError("remind: delay_seconds must be a number of seconds, 0 or more") }
            dueAt = now + d
        case (nil, let at?):
            guard at.isFinite, at >= 0, at <= Self.latestUnix else { throw RequestError("remind: at_unix must be unix seconds (0 to 1e11)") }
            guard at >= now - Self.pastTolerance else {
                throw RequestError("remind: at_unix \(Int(at)) is \(Int(now - at)) s in the past; use a future time or delay_seconds")
            }
            dueAt = max(at, now)
        }
        guard dueAt - now <= limits.policy(for: agent).horizon else {
            throw RequestError("remind: that is more than \(Int(limits.policy(for: agent).horizon / 86400)) days ahead; set a nearer reminder")
        }
        if let path = c.filePath {
            guard !path.isEmpty, path.utf8.count <= 512, !path.contains("\0"), !path.contains("\n") else {
                throw RequestError("remind: file_path must be one line of at most 512 bytes")
            }
        }
        try limits.take(agent, now: now)
        do {
            return try store(c, for: agent, dueAt: dueAt, now: now)
        } catch {
            limits.refund(agent)
            throw error
        }
    }

    private func store(_ c: RemindCommand, for agent: AgentName, dueAt: Double, now: Double) throws -> RemindCommand.Reply {
        let (id, pending) = try broker.createReminder(agent, body: c.message, filePath: c.filePath, dueAt: dueAt,
                                                      cap: limits.policy(for: agent).cap)
        scheduler.kick()
        return RemindCommand.Reply(id: id, dueAt: dueAt, pending: pending, spilledTo: nil)
    }
}
