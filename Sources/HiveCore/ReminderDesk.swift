import Foundation
import HiveBroker
import HiveWire

/// Takes `remind` requests: checks timing and limits, spills long texts to the agent's state dir,
/// stores the reminder and tells the scheduler.
struct ReminderDesk: Sendable {
    let broker: Broker
    let layout: HiveLayout
    let limits: ReminderLimits
    let scheduler: ReminderScheduler
    /// Seconds an `at_unix` may lie in the past (clock skew, a slow turn) and still fire at once.
    static let pastTolerance = 60.0
    /// Texts longer than this are saved to a file and the reminder points to it.
    static let spillBytes = 3000

    func remind(_ c: RemindCommand, for agent: AgentName, now: Double = Date().timeIntervalSince1970) throws -> RemindCommand.Reply {
        guard !c.message.isEmpty else { throw RequestError("remind: message is empty") }
        let dueAt: Double
        switch (c.delaySeconds, c.atUnix) {
        case (nil, nil): throw RequestError("remind: give exactly one of delay_seconds or at_unix")
        case (.some, .some): throw RequestError("remind: give exactly one of delay_seconds or at_unix, not both")
        case (let d?, nil):
            guard d.isFinite, d >= 0 else { throw RequestError("remind: delay_seconds must be 0 or more") }
            dueAt = now + d
        case (nil, let at?):
            guard at.isFinite else { throw RequestError("remind: at_unix must be unix seconds") }
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
        var body = c.message
        var spilled: String?
        if body.utf8.count > Self.spillBytes {
            let dir = layout.stateDir(agent).appending(path: "reminders")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let file = dir.appending(path: "reminder-\(Int(now))-\(UUID().uuidString.prefix(8)).md")
            try Data(body.utf8).write(to: file)
            spilled = file.path
            var start = String(c.message.prefix(300))
            while start.utf8.count > 600 { start.removeLast() }
            body = "The full text (\(c.message.utf8.count) bytes) is in \(file.path). It begins:\n\(start)…"
        }
        let created: (id: Int64, pending: Int)
        do {
            created = try broker.createReminder(agent, body: body, filePath: c.filePath, dueAt: dueAt, cap: limits.policy(for: agent).cap)
        } catch {
            if let spilled { try? FileManager.default.removeItem(atPath: spilled) }
            throw error
        }
        let (id, pending) = created
        scheduler.kick()
        return RemindCommand.Reply(id: id, dueAt: dueAt, pending: pending, spilledTo: spilled)
    }
}
