import Foundation

/// Why a request line was refused before it reached any command.
public struct RequestError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A command with its `cmd` tag, as a client writes it.
public struct Envelope<C: HiveCommand>: Encodable, Sendable {
    public let command: C
    public init(_ command: C) { self.command = command }

    private enum Key: String, CodingKey { case cmd }

    public func encode(to encoder: any Encoder) throws {
        try command.encode(to: encoder)
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(C.cmd, forKey: .cmd)
    }

    /// The request as one wire line, newline included.
    public func line() throws -> Data {
        var data = try WireCoding.encoder().encode(self)
        data.append(0x0A)
        return data
    }
}

/// The `ok` / `version` / `error` part every response line has.
public struct ReplyStatus: Codable, Sendable {
    public var ok: Bool
    public var version: Int
    public var error: String?
}

/// A successful response: the command's reply plus `ok: true` and the protocol version.
public struct Reply<P: Encodable & Sendable>: Encodable, Sendable {
    public let payload: P
    public init(_ payload: P) { self.payload = payload }
    private enum Key: String, CodingKey { case ok, version }
    public func encode(to encoder: any Encoder) throws {
        try payload.encode(to: encoder)
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(true, forKey: .ok)
        try c.encode(WireLimits.protocolVersion, forKey: .version)
    }
}

/// Builds response lines.
public enum ResponseLine {
    /// A success line for `payload`, newline included.
    public static func ok<P: Encodable & Sendable>(_ payload: P) -> Data {
        do {
            var data = try WireCoding.encoder().encode(Reply(payload))
            data.append(0x0A)
            return data
        } catch {
            return failure("could not encode the response: \(error)")
        }
    }

    /// An error line, newline included.
    public static func failure(_ message: String) -> Data {
        let status = ReplyStatus(ok: false, version: WireLimits.protocolVersion, error: message)
        // Encoding three plain fields cannot fail.
        var data = (try? WireCoding.encoder().encode(status)) ?? Data(#"{"ok":false,"version":1,"error":"internal error"}"#.utf8)
        data.append(0x0A)
        return data
    }
}

/// Decodes the `cmd` tag of a line and then the command it names.
public struct CommandTable<Request: Sendable>: Sendable {
    private let decoders: [String: @Sendable (Data, JSONDecoder) throws -> Request]

    public init() { decoders = [:] }
    private init(_ d: [String: @Sendable (Data, JSONDecoder) throws -> Request]) { decoders = d }

    /// Adds `C`, wrapped into the request enum by `wrap`.
    public func with<C: HiveCommand>(_: C.Type, _ wrap: @escaping @Sendable (C) -> Request) -> CommandTable {
        var d = decoders
        d[C.cmd] = { data, decoder in wrap(try decoder.decode(C.self, from: data)) }
        return CommandTable(d)
    }

    /// Every `cmd` this table knows, sorted.
    public var commands: [String] { decoders.keys.sorted() }

    /// The same commands, each wrapped once more: how a wider socket (the manager's) takes every
    /// command of a narrower one.
    public func mapped<Wider: Sendable>(_ wrap: @escaping @Sendable (Request) -> Wider) -> CommandTable<Wider> {
        CommandTable<Wider>(decoders.mapValues { decode in { data, decoder in wrap(try decode(data, decoder)) } })
    }

    private struct Tag: Decodable { let cmd: String }

    private static func numberMisfit(in line: Data) -> String {
        let object = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any] ?? [:]
        let suspects = object.compactMap { key, value -> String? in
            guard let n = value as? NSNumber, !(value is Bool) else { return nil }
            let d = n.doubleValue
            return d != d.rounded() || abs(d) > 9.0e15 ? key : nil
        }.sorted()
        let named = suspects.isEmpty ? "a number field" : suspects.map { "field '\($0)'" }.joined(separator: ", ")
        return "\(named) does not fit: ids, max and limit take whole numbers"
    }

    /// Decodes one line (without its newline) or says, in a sentence, why not.
    public func decode(_ line: Data) throws(RequestError) -> Request {
        let decoder = WireCoding.decoder()
        let tag: Tag
        do {
            tag = try decoder.decode(Tag.self, from: line)
        } catch let DecodingError.keyNotFound(key, ctx) where ctx.codingPath.isEmpty && key.stringValue == "cmd" {
            throw RequestError("missing field 'cmd'; known commands: \(commands.joined(separator: ", "))")
        } catch {
            if case DecodingError.typeMismatch(_, let ctx) = error, ctx.codingPath.isEmpty {
                throw RequestError("request is not a JSON object on one line")
            }
            throw RequestError(WireCoding.explain(error))
        }
        guard let decode = decoders[tag.cmd] else {
            throw RequestError("unknown command '\(tag.cmd.prefix(64))'; known commands: \(commands.joined(separator: ", "))")
        }
        do {
            return try decode(line, decoder)
        } catch DecodingError.dataCorrupted(let ctx) where ctx.codingPath.isEmpty {
            // Foundation reports a fraction or an oversized number in an integer field as "not valid
            // JSON" without naming the field; the line did parse, so name the suspects ourselves.
            throw RequestError("\(tag.cmd): \(Self.numberMisfit(in: line))")
        } catch {
            throw RequestError("\(tag.cmd): \(WireCoding.explain(error))")
        }
    }
}

/// What an agent's socket accepts.
public enum AgentRequest: Sendable {
    case send(SendCommand)
    case recv(RecvCommand)
    case ackTurn(AckTurnCommand)
    case requeueInflight(RequeueInflightCommand)
    case status(StatusCommand)
    case recent(RecentCommand)
    case whoami(WhoamiCommand)
    case deadLetter(DeadLetterCommand)
    case reportState(ReportStateCommand)
    case requestNextTurn(RequestNextTurnCommand)
    case newSession(NewSessionCommand)
    case remind(RemindCommand)
    case reminderRollup(ReminderRollupCommand)
    case ask(AskCommand)
    case answer(AnswerCommand)
    case questions(QuestionsCommand)
    case turnSettings(TurnSettingsCommand)
    case gatewayLog(GatewayLogCommand)
    case reportTurn(ReportTurnCommand)
    case search(SearchCommand)

    /// The decoding table for agent sockets.
    public static let table = CommandTable<AgentRequest>()
        .with(SendCommand.self, AgentRequest.send)
        .with(RecvCommand.self, AgentRequest.recv)
        .with(AckTurnCommand.self, AgentRequest.ackTurn)
        .with(RequeueInflightCommand.self, AgentRequest.requeueInflight)
        .with(StatusCommand.self, AgentRequest.status)
        .with(RecentCommand.self, AgentRequest.recent)
        .with(WhoamiCommand.self, AgentRequest.whoami)
        .with(DeadLetterCommand.self, AgentRequest.deadLetter)
        .with(ReportStateCommand.self, AgentRequest.reportState)
        .with(RequestNextTurnCommand.self, AgentRequest.requestNextTurn)
        .with(NewSessionCommand.self, AgentRequest.newSession)
        .with(RemindCommand.self, AgentRequest.remind)
        .with(ReminderRollupCommand.self, AgentRequest.reminderRollup)
        .with(AskCommand.self, AgentRequest.ask)
        .with(AnswerCommand.self, AgentRequest.answer)
        .with(QuestionsCommand.self, AgentRequest.questions)
        .with(TurnSettingsCommand.self, AgentRequest.turnSettings)
        .with(GatewayLogCommand.self, AgentRequest.gatewayLog)
        .with(ReportTurnCommand.self, AgentRequest.reportTurn)
        .with(SearchCommand.self, AgentRequest.search)
}

/// What the operator's admin socket (`host.sock`) accepts.
public enum AdminRequest: Sendable {
    case list(ListCommand)
    case nodes(NodesCommand)
    case move(MoveCommand)
    case spawn(SpawnCommand)
    case destroy(DestroyCommand)
    case send(SendCommand)
    case inbox(InboxCommand)
    case info(InfoCommand)
    case reminders(RemindersCommand)
    case cancelReminder(CancelReminderCommand)
    case start(StartCommand)
    case stop(StopCommand)
    case restart(RestartCommand)
    case revive(ReviveCommand)
    case rebuild(RebuildCommand)
    case logs(LogsCommand)
    case pending(PendingCommand)
    case approve(ApproveCommand)
    case deny(DenyCommand)
    case forgeRepos(ForgeReposCommand)
    case questions(QuestionsCommand)
    case answer(AnswerCommand)
    case setModel(SetModelCommand)
    case resume(ResumeCommand)
    case gatewayLog(GatewayLogCommand)
    case budget(BudgetCommand)
    case spend(SpendCommand)
    case metrics(MetricsCommand)
    case search(SearchCommand)

    /// The decoding table for the admin socket.
    public static let table = CommandTable<AdminRequest>()
        .with(ListCommand.self, AdminRequest.list)
        .with(NodesCommand.self, AdminRequest.nodes)
        .with(MoveCommand.self, AdminRequest.move)
        .with(GatewayLogCommand.self, AdminRequest.gatewayLog)
        .with(SpawnCommand.self, AdminRequest.spawn)
        .with(DestroyCommand.self, AdminRequest.destroy)
        .with(SendCommand.self, AdminRequest.send)
        .with(InboxCommand.self, AdminRequest.inbox)
        .with(InfoCommand.self, AdminRequest.info)
        .with(RemindersCommand.self, AdminRequest.reminders)
        .with(CancelReminderCommand.self, AdminRequest.cancelReminder)
        .with(StartCommand.self, AdminRequest.start)
        .with(StopCommand.self, AdminRequest.stop)
        .with(RestartCommand.self, AdminRequest.restart)
        .with(ReviveCommand.self, AdminRequest.revive)
        .with(RebuildCommand.self, AdminRequest.rebuild)
        .with(LogsCommand.self, AdminRequest.logs)
        .with(PendingCommand.self, AdminRequest.pending)
        .with(ApproveCommand.self, AdminRequest.approve)
        .with(DenyCommand.self, AdminRequest.deny)
        .with(ForgeReposCommand.self, AdminRequest.forgeRepos)
        .with(QuestionsCommand.self, AdminRequest.questions)
        .with(AnswerCommand.self, AdminRequest.answer)
        .with(SetModelCommand.self, AdminRequest.setModel)
        .with(ResumeCommand.self, AdminRequest.resume)
        .with(BudgetCommand.self, AdminRequest.budget)
        .with(SpendCommand.self, AdminRequest.spend)
        .with(MetricsCommand.self, AdminRequest.metrics)
        .with(SearchCommand.self, AdminRequest.search)
}

/// What the manager's socket accepts: every agent command, and the config gatekeeper's own.
/// (The manager cannot stop itself: core refuses that, whatever the request says.)
public enum ManagerRequest: Sendable {
    case agent(AgentRequest)
    case requestInitConfig(RequestInitConfigCommand)
    case requestApplyCommit(RequestApplyCommitCommand)
    case start(StartCommand)
    case stop(StopCommand)
    case restart(RestartCommand)
    case update(UpdateCommand)
    case logs(LogsCommand)

    public static let table = AgentRequest.table.mapped(ManagerRequest.agent)
        .with(RequestInitConfigCommand.self, ManagerRequest.requestInitConfig)
        .with(RequestApplyCommitCommand.self, ManagerRequest.requestApplyCommit)
        .with(StartCommand.self, ManagerRequest.start)
        .with(StopCommand.self, ManagerRequest.stop)
        .with(RestartCommand.self, ManagerRequest.restart)
        .with(UpdateCommand.self, ManagerRequest.update)
        .with(LogsCommand.self, ManagerRequest.logs)
}
