import Foundation
import HiveTelemetry
import HiveClient
import HiveHost
import HiveWire
import Logging
import Synchronization

/// The harness's serve loop: wait for a message, run claude on it, ack it only after a successful turn.
///
/// Supervised: a broken socket (core restarting, a rebuild) reconnects with backoff and starts over with
/// `requeue_inflight`, so a message popped by an earlier connection is never left undelivered. Nothing
/// in here exits on a failed turn: failures back off and retry, limits park until they lift, and a
/// message that keeps failing is dead-lettered with its reason.
public final class TurnLoop: Sendable {
    public let config: HarnessConfig
    public let events: EventStore
    public let stats: TurnStatsStore
    public let status = HarnessStatus()
    let logger: Logger
    let controls = Mutex(Controls())
    /// Denied tools the manager has not been told about yet (sent after the turn, on the agent's socket).
    let pendingDenialNotices = Mutex<[String]>([])
    /// Subscription window use from the last runs' `rate_limit_event` lines, for the next turn report.
    let pendingWindows = Mutex<[String: WindowUse]>([:])

    struct Controls {
        /// Cancels the claude run in progress.
        var currentTurn: (@Sendable () -> Void)?
        var cancelRequested = false
        var compactRequested = false
        /// A fresh session for the next turn (the agent's page, or the agent's own `new_session` via core).
        var freshRequested = false
        var lastReported: ReportStateCommand?
    }

    public init(config: HarnessConfig, logger: Logger) throws {
        self.config = config
        self.logger = logger
        try FileManager.default.createDirectory(atPath: config.harnessDir, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: config.stateDir, withIntermediateDirectories: true)
        // Before the stores open: harness files an older layout left in state/ move to harness/ once.
        for line in try LegacyLayout.migrate(stateDir: config.stateDir, harnessDir: config.harnessDir) { logger.notice("\(line)") }
        events = try EventStore(path: config.eventsPath)
        stats = try TurnStatsStore(path: config.statsPath)
        let session = loadSession()
        let last = try? stats.last()
        _ = status.update {
            $0.model = config.model
            $0.configModel = config.model
            $0.sessionID = session.sessionID
            $0.contextTokens = session.contextTokens
            $0.contextWindow = session.contextWindow
            $0.lastTurnEndedAt = session.lastTurnEndedAt
            $0.turns = Int(last?.id ?? 0)
        }
    }

    // MARK: Operator controls (the HTTP endpoint)

    /// Stops the turn in progress (its claude process group is terminated). The turn counts as failed.
    public func cancelTurn() -> Bool {
        controls.withLock { c in
            guard let cancel = c.currentTurn else { return false }
            c.cancelRequested = true
            cancel()
            return true
        }
    }

    /// Compacts the session before the next turn.
    public func requestCompact() { controls.withLock { $0.compactRequested = true } }

    /// Puts a note from the agent's page into its inbox, as a `system` message (through its own socket).
    public func deliverNote(_ text: String) async throws -> Int64 {
        try await HiveConnection(path: config.socket).call(RequestNextTurnCommand(reason: "a note from your page: \(text)")).id
    }

    /// Starts the next turn in a fresh session.
    public func requestNewSession() {
        controls.withLock { $0.freshRequested = true }
    }

    /// The model the next turn runs with: the operator's runtime choice (from core), else the config's.
    var model: String { status.read().modelOverride ?? config.model }

    /// Waits until the operator says `hive resume` for this agent (core's count changes), or at most
    /// `atMost` seconds, checking every few seconds.
    private func waitForResume(_ conn: HiveConnection, atMost: Double) async throws {
        let start = try? await conn.call(TurnSettingsCommand()).resumes
        let deadline = ContinuousClock.now + .seconds(atMost)
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .seconds(min(config.resumePoll, atMost)))
            if let now = try? await conn.call(TurnSettingsCommand()).resumes, now != start {
                note("the operator said resume")
                return
            }
        }
    }

    /// Asks core for what the operator changed at runtime (the model). Core not answering keeps what was known.
    private func refreshSettings(_ conn: HiveConnection) async {
        guard let settings = try? await conn.call(TurnSettingsCommand()) else { return }
        if settings.freshSession == true { requestNewSession() }
        let before = status.read().modelOverride
        guard settings.model != before else { return }
        _ = status.update {
            $0.modelOverride = settings.model
            $0.model = settings.model ?? config.model
        }
        note(settings.model.map { "the operator set the model to \($0)" } ?? "back to the config's model (\(config.model))")
    }

    // MARK: The loop

    /// Runs until cancelled. Never returns early on errors.
    public func run() async {
        writeMCPConfig()
        var attempt = 0
        var owedAcks: [Int64] = []
        while !Task.isCancelled {
            do {
                try await serve(owedAcks: &owedAcks, connected: { attempt = 0 })
            } catch is CancellationError {
                break
            } catch {
                attempt += 1
                let wait = Backoff(base: 1, cap: 30).delay(attempt: attempt)
                setState(.disconnected, detail: "agent socket: \(error); reconnecting in \(Int(wait)) s")
                note("serve loop interrupted: \(error); reconnecting in \(String(format: "%.1f", wait)) s")
                try? await Task.sleep(for: .seconds(wait))
                continue
            }
        }
    }

    private func serve(owedAcks: inout [Int64], connected: () -> Void) async throws {
        let conn = try HiveConnection(path: config.socket)
        // A new connection may be a new core that knows nothing of this harness yet: report afresh.
        controls.withLock { $0.lastReported = nil }
        // Acks that a broken connection swallowed go first, with what the turn read through MCP, so a
        // finished turn is not redone.
        if !owedAcks.isEmpty {
            let reply = try await conn.call(AckTurnCommand(ids: owedAcks, allInflight: true))
            for s in reply.skipped { note("could not ack message \(s.id) after reconnecting: \(s.reason)") }
            owedAcks = []
        }
        let requeued = try await conn.call(RequeueInflightCommand()).requeued
        await refreshSettings(conn)
        await reportTurns(conn)
        connected()
        if requeued > 0 { note("requeued \(requeued) message(s) a previous run had not finished") }
        while true {
            try Task.checkCancellation()
            if ClaudeExecutable.resolve(environment: config.environment) == nil {
                await report(conn, state: .claudeMissing, detail: missingClaude)
            } else {
                await report(conn, state: .idle)
            }
            let got = try await conn.call(RecvCommand(waitSeconds: 60, max: 1))
            guard let message = got.messages.first else { continue }
            if try await handle(message, unread: got.unread, conn) {
                do {
                    // The turn also consumed whatever it read with the MCP recv tool.
                    _ = try await conn.call(AckTurnCommand(ids: [message.id], allInflight: true))
                } catch {
                    owedAcks.append(message.id)
                    throw error
                }
            }
        }
    }

    /// Drives turns on one message until it succeeds (true: ack it) or is given up on (false): carries
    /// out what the ``TurnMachine`` decides.
    private func handle(_ message: MessageView, unread: Int, _ conn: HiveConnection) async throws -> Bool {
        var machine = TurnMachine(rules: config.turnRules)
        var action = machine.start
        while true {
            try Task.checkCancellation()
            switch action {
            case .runTurn(let fresh):
                guard let claude = ClaudeExecutable.resolve(environment: config.environment) else {
                    action = machine.handle(.claudeMissing)
                    continue
                }
                if controls.withLock({ c in defer { c.compactRequested = false }; return c.compactRequested }) {
                    _ = try await compact(claude, conn)
                }
                let (outcome, ending) = try await turn(message, unread: unread, claude: claude, conn: conn, forceFresh: fresh)
                if outcome != .ok {
                    // Messages the failed turn read with the MCP recv tool go back to the inbox; this one
                    // stays in hand for the retry.
                    let back = try await conn.call(RequeueInflightCommand(keep: [message.id])).requeued
                    if back > 0 { note("returned \(back) message(s) read during the failed turn to the inbox") }
                }
                action = machine.handle(.turnEnded(outcome, ending, now: Date().timeIntervalSince1970, random: .random(in: 0...1)))
            case .compact:
                note("prompt too long: compacting the session once, then retrying")
                var ok = false
                if let claude = ClaudeExecutable.resolve(environment: config.environment) { ok = try await compact(claude, conn) }
                action = machine.handle(.compacted(ok, random: .random(in: 0...1)))
            case .awaitClaude(let seconds):
                await report(conn, state: .claudeMissing, detail: missingClaude)
                try await Task.sleep(for: .seconds(seconds))
                action = machine.handle(.waited)
            case .wait(let seconds, let r):
                await report(conn, r)
                if r.state == .rateLimited, let until = r.until {
                    note("rate limited until \(Date(timeIntervalSince1970: until)); message \(message.id) waits, unacked")
                }
                try await Task.sleep(for: .seconds(seconds))
                action = machine.handle(.waited)
            case .waitForResume(let seconds, let r):
                await report(conn, r)
                try await waitForResume(conn, atMost: seconds)
                action = machine.handle(.waited)
            case .deadLetter(let reason):
                _ = try await conn.call(DeadLetterCommand(ids: [message.id], reason: reason))
                note("dead-lettered message \(message.id): \(reason)")
                return false
            case .ack:
                return true
            }
        }
    }

    // MARK: One turn

    private func turn(_ message: MessageView, unread: Int, claude: String, conn: HiveConnection,
                      forceFresh: Bool) async throws -> (TurnOutcome, TurnMachine.Ending) {
        await refreshSettings(conn)
        let session = loadSession()
        let now = Date().timeIntervalSince1970
        let requested = controls.withLock { c in defer { c.freshRequested = false }; return c.freshRequested }
        let decision = config.policy.decide(
            lastContext: session.contextTokens, window: session.contextWindow,
            idle: session.lastTurnEndedAt.map { now - $0 }, requested: requested || forceFresh,
            hasSession: session.sessionID != nil, freshBaseline: try? stats.freshBaseline(),
            history: SessionHistory.learn((try? stats.recent(200)) ?? []))
        var prompt = WakePrompt.build(message, unread: unread)
        if decision.action == .fresh, session.sessionID != nil {
            prompt = WakePrompt.freshSessionHandoff(stateDir: config.stateDir) + "\n\n" + prompt
        }
        let snapshot = status.update { $0.messageID = message.id; $0.turns += 1 }
        await report(conn, state: .thinking)
        harnessEvent(["event": "turn_start", "from": message.from, "message_id": message.id, "unread": unread,
                      "session_action": decision.action.rawValue, "reason": decision.reason], turn: snapshot.turns)
        let run = try await runClaude(claude, prompt: prompt, continueSession: decision.action == .continue, turn: snapshot.turns)
        let outcome = run.acc.outcome(exitStatus: run.exit.status, parkFloor: config.parkFloor)
        finishTurn(run, outcome: outcome, wakeSource: message.from, messageID: message.id, decision: decision)
        await reportTurns(conn)
        await reportDenials(conn)
        let ending: TurnMachine.Ending = run.exit.cancelled ? .cancelled
            : run.exit.timedOut ? .timedOut(seconds: Double(config.turnTimeout.components.seconds)) : .finished
        return (outcome, ending)
    }

    /// `/compact` on the current session, as a turn of its own. True when it compacted.
    private func compact(_ claude: String, _ conn: HiveConnection) async throws -> Bool {
        await report(conn, state: .compacting)
        let snapshot = status.update { $0.turns += 1 }
        harnessEvent(["event": "compact_start"], turn: snapshot.turns)
        let decision = SessionPolicy.Decision(action: .compact, reason: "compaction", continueCost: 0, freshCost: 0)
        let run = try await runClaude(claude, prompt: "/compact", continueSession: true, turn: snapshot.turns)
        let outcome = run.acc.outcome(exitStatus: run.exit.status, parkFloor: config.parkFloor)
        finishTurn(run, outcome: outcome, wakeSource: "compact", messageID: nil, decision: decision)
        await reportTurns(conn)
        return outcome == .ok
    }

    // MARK: Bookkeeping

    private var missingClaude: String {
        let wanted = config.environment["HIVE_CLAUDE"] ?? "claude"
        return "'\(wanted)' not found: install Claude Code (claude on PATH) or set HIVE_CLAUDE; messages wait until then"
    }

    func loadSession() -> SessionRecord {
        guard let data = FileManager.default.contents(atPath: config.sessionPath),
              let record = try? JSONDecoder().decode(SessionRecord.self, from: data) else { return SessionRecord() }
        return record
    }

    func saveSession(_ record: SessionRecord) {
        guard let data = try? JSONEncoder().encode(record) else { return }
        try? data.write(to: URL(filePath: config.sessionPath), options: .atomic)
    }

    /// The MCP config claude gets: `hive mcp` on this agent's socket, and the config's extra servers.
    private func writeMCPConfig() {
        var servers: [String: Any] = [:]
        for (name, server) in self.config.extraMCPServers {
            servers[name] = ["type": "stdio", "command": server.command, "args": server.args, "env": server.env]
        }
        servers["hive"] = ["type": "stdio", "command": self.config.hiveExecutable,
                           "args": ["mcp", "--socket", self.config.socket, "--events", self.config.eventsPath]]
        let config: [String: Any] = ["mcpServers": servers]
        if let data = try? JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]) {
            try? data.write(to: URL(filePath: self.config.mcpConfigPath), options: .atomic)
        }
    }

    private func setState(_ state: AgentState, until: Double? = nil, detail: String? = nil) {
        _ = status.update { s in
            s.state = state
            s.rateLimitedUntil = state == .rateLimited ? until : nil
            s.detail = detail
        }
    }

    private func report(_ conn: HiveConnection, _ r: TurnMachine.Report) async {
        await report(conn, state: r.state, until: r.until, window: r.window, detail: r.detail)
    }

    /// Updates the local snapshot and tells core (best effort; only changes are sent).
    private func report(_ conn: HiveConnection, state: AgentState, until: Double? = nil, window: String? = nil, detail: String? = nil) async {
        setState(state, until: until, detail: detail)
        let snapshot = status.read()
        let message = ReportStateCommand(state: state, rateLimitedUntil: until, detail: detail.map { String($0.prefix(480)) },
                                         model: snapshot.model, cliVersion: snapshot.cliVersion, limitWindow: window)
        let changed = controls.withLock { c -> Bool in
            defer { c.lastReported = message }
            return c.lastReported != message
        }
        guard changed else { return }
        harnessEvent(["event": "state", "state": state.rawValue, "detail": detail ?? "", "rate_limited_until": until ?? 0], turn: nil)
        do { _ = try await conn.call(message) } catch { logger.debug("report_state failed: \(error)") }
    }

    func note(_ text: String) {
        logger.info("\(config.name): \(text)")
        harnessEvent(["event": "note", "text": text], turn: nil)
    }

    func harnessEvent(_ body: [String: Any], turn: Int?) {
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data("{}".utf8)
        _ = try? events.append(kind: "harness", body: String(decoding: data, as: UTF8.self), turn: turn.map(Int64.init))
    }
}
