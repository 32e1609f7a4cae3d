import Foundation
import HiveBroker
import HiveWire
import Logging

/// Serves one agent's socket. The agent's name is fixed when the socket is created: nothing in a
/// request can make it act as anyone else.
struct AgentEndpoint: Sendable {
    let name: AgentName
    let broker: Broker
    let board: AgentStatusBoard
    let layout: HiveLayout
    let reminders: ReminderDesk
    let logger: Logger

    func handle(_ line: Data, _ parker: Parker) -> Data {
        Respond.to(line, table: AgentRequest.table, logger: logger) { request in
            switch request {
            case .send(let c):
                return ResponseLine.ok(try broker.send(from: .agent(name), to: try Recipient(c.to), body: c.body, inReplyTo: c.inReplyTo))
            case .recv(let c):
                let max = try Validate.count(c.max, field: "max", default: 1, cap: WireLimits.maxRecvBatch)
                let wait = try Validate.seconds(c.waitSeconds, field: "wait_seconds", cap: WireLimits.maxRecvWaitSeconds)
                return ResponseLine.ok(try broker.recv(name, max: max, wait: wait, parker: parker))
            case .ackTurn(let c):
                return ResponseLine.ok(try broker.ackTurn(name, ids: c.ids, allInflight: c.allInflight ?? false))
            case .requeueInflight(let c):
                guard (c.keep?.count ?? 0) <= WireLimits.maxAckIDs else { throw BrokerError.tooManyIDs(c.keep?.count ?? 0) }
                return ResponseLine.ok(RequeueInflightCommand.Reply(requeued: try broker.requeueInflight(name, keep: c.keep ?? [])))
            case .status:
                let counts = try broker.counts(name.rawValue)
                return ResponseLine.ok(StatusCommand.Reply(name: name.rawValue, unread: counts.unread, inflight: counts.inflight,
                                                           pendingReminders: try broker.pendingReminderCount(name)))
            case .recent(let c):
                let limit = try Validate.count(c.limit, field: "limit", default: 20, cap: WireLimits.maxListLimit)
                return ResponseLine.ok(RecentCommand.Reply(messages: try broker.recent(name.rawValue, limit: limit)))
            case .whoami:
                return ResponseLine.ok(WhoamiCommand.Reply(name: name.rawValue, role: name == .manager ? "manager" : "agent"))
            case .deadLetter(let c):
                let (reply, dead) = try broker.deadLetter(name, ids: c.ids, reason: c.reason)
                for message in dead { notifyDeadLetter(message, reason: c.reason) }
                return ResponseLine.ok(reply)
            case .reportState(let c):
                board.report(name, c)
                return ResponseLine.ok(ReportStateCommand.Reply())
            case .requestNextTurn(let c):
                let why = c.reason.map { ": \($0.prefix(1000))" } ?? ""
                let sent = try broker.send(from: .system, to: .agent(name),
                                           body: "You asked for another turn (request_next_turn)\(why).", inReplyTo: nil)
                return ResponseLine.ok(RequestNextTurnCommand.Reply(id: sent.ids[0]))
            case .newSession:
                try NewSessionFlag.raise(in: layout.harnessDir(name))
                return ResponseLine.ok(NewSessionCommand.Reply())
            case .remind(let c):
                return ResponseLine.ok(try reminders.remind(c, for: name))
            case .reminderRollup(let c):
                guard c.sinceSecs.isFinite, c.sinceSecs >= 0 else { throw RequestError("field 'since_secs' must be 0 or more seconds") }
                return ResponseLine.ok(try broker.reminderRollup(name, since: c.sinceSecs))
            }
        }
    }
}

extension AgentEndpoint {
    /// Tells the manager (or, for the manager's own messages, the operator) that a message was given up on.
    private func notifyDeadLetter(_ message: MessageView, reason: String) {
        let to: Recipient = name == .manager ? .operator : .agent(.manager)
        let body = String("""
            \(name) dead-lettered message \(message.id) from \(message.from) after repeated failed turns: \(reason)
            The message was: \(message.body)
            """.prefix(WireLimits.maxBodyBytes))
        do {
            _ = try broker.send(from: .system, to: to, body: body, inReplyTo: nil)
        } catch {
            logger.error("could not tell \(to) about dead letter \(message.id): \(error)")
        }
        logger.warning("\(name) dead-lettered message \(message.id): \(reason)")
    }
}

/// The one-shot "start the next turn in a fresh session" flag: a file in the harness dir that the harness
/// removes when it acts on it.
public enum NewSessionFlag {
    public static let fileName = "new-session-requested"

    static func raise(in harnessDir: URL) throws {
        try FileManager.default.createDirectory(at: harnessDir, withIntermediateDirectories: true)
        try Data("requested\n".utf8).write(to: harnessDir.appending(path: fileName))
    }
}

/// Shared request plumbing: decode, run, and turn every failure into an error line.
enum Respond {
    static func to<Request>(_ line: Data, table: CommandTable<Request>, logger: Logger,
                            _ body: (Request) throws -> Data) -> Data {
        let request: Request
        do { request = try table.decode(line) } catch { return ResponseLine.failure(error.message) }
        do {
            return try body(request)
        } catch let e as BrokerError {
            if case .storage = e { logger.error("\(e)") }
            return ResponseLine.failure(e.description)
        } catch let e as NameError {
            return ResponseLine.failure(e.description)
        } catch let e as CoreError {
            return ResponseLine.failure(e.description)
        } catch let e as LayoutError {
            return ResponseLine.failure(e.description)
        } catch let e as RequestError {
            return ResponseLine.failure(e.message)
        } catch {
            logger.error("request failed: \(error)")
            return ResponseLine.failure("internal error; the core's log has the details")
        }
    }
}

/// Range checks for numeric request fields, with messages that name the field.
enum Validate {
    /// A positive count; nil means `default`, values above `cap` are clamped to it.
    static func count(_ value: Int?, field: String, default def: Int, cap: Int) throws(RequestError) -> Int {
        guard let value else { return def }
        guard value >= 1 else { throw RequestError("field '\(field)' must be at least 1") }
        return min(value, cap)
    }

    /// A non-negative number of seconds; nil means zero, values above `cap` are clamped to it.
    static func seconds(_ value: Double?, field: String, cap: Double) throws(RequestError) -> Duration {
        guard let value else { return .zero }
        guard value.isFinite, value >= 0 else { throw RequestError("field '\(field)' must be a number of seconds, 0 or more") }
        return .milliseconds(Int64(min(value, cap) * 1000))
    }
}
