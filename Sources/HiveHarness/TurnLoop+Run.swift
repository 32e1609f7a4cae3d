import Foundation
import HiveClient
import HiveTelemetry
import HiveWire
import Synchronization

/// One claude run of a turn, and what the harness records of it: the turn's stats row, the session
/// bookkeeping, the agent page's snapshot, and the denied tools the manager hears about.
extension TurnLoop {
    struct Run {
        var acc: TurnAccumulator
        var exit: ClaudeExit
        var startedAt: Double
    }

    func runClaude(_ claude: String, prompt: String, continueSession: Bool, turn: Int) async throws -> Run {
        var args = ["--print", "--verbose", "--output-format", "stream-json", "--model", model,
                    "--mcp-config", config.mcpConfigPath, "--strict-mcp-config"] + config.permissionArguments
        if continueSession { args.append("--continue") }
        if let addition = config.appendedSystemPrompt { args += ["--append-system-prompt", addition] }
        let invocation = ClaudeInvocation(executable: claude, arguments: args, workingDirectory: config.stateDir,
                                          environment: config.claudeEnvironment, prompt: prompt, timeout: config.turnTimeout)
        let acc = Mutex(TurnAccumulator())
        let startedAt = Date().timeIntervalSince1970
        let events = self.events
        let logger = self.logger
        let task = Task<Result<ClaudeExit, any Error>, Never> {
            do {
                let exit = try await ClaudeRunner.run(invocation, onStdout: { line in
                    acc.withLock { a in for e in ClaudeEvent.events(in: line) { a.consume(e) } }
                    do { try events.append(kind: "stdout", body: String(decoding: line, as: UTF8.self), turn: Int64(turn)) } catch {
                        logger.error("event store: \(error)")
                    }
                }, onStderr: { line in
                    _ = try? events.append(kind: "stderr", body: line, turn: Int64(turn))
                })
                return .success(exit)
            } catch {
                return .failure(error)
            }
        }
        controls.withLock { $0.currentTurn = { task.cancel() }; $0.cancelRequested = false }
        let result = await withTaskCancellationHandler { await task.value } onCancel: { task.cancel() }
        let cancelledByOperator = controls.withLock { c -> Bool in
            c.currentTurn = nil
            return c.cancelRequested
        }
        try Task.checkCancellation()
        var exit: ClaudeExit
        switch result {
        case .success(let e): exit = e
        case .failure(let error):
            note("claude could not run: \(error)")
            exit = ClaudeExit(status: nil, signal: nil, timedOut: false, cancelled: false)
        }
        if cancelledByOperator { exit.cancelled = true }
        return Run(acc: acc.withLock { $0 }, exit: exit, startedAt: startedAt)
    }

    func finishTurn(_ run: Run, outcome: TurnOutcome, wakeSource: String, messageID: Int64?, decision: SessionPolicy.Decision) {
        let acc = run.acc
        let ended = Date().timeIntervalSince1970
        var detail: String?
        switch outcome {
        case .ok: detail = nil
        case .rateLimited(let until, let window):
            detail = (until.map { "limit resets at \(Int($0))" } ?? "limit hit, reset unknown") + (window.map { " (\($0))" } ?? "")
        case .promptTooLong: detail = "Prompt is too long"
        case .transient(let t), .needsLogin(let t), .needsBilling(let t), .failed(let t): detail = String(t.prefix(1000))
        }
        if run.exit.timedOut { detail = "timed out after \(config.turnTimeout)" }
        if run.exit.cancelled { detail = "cancelled" }
        let denials = acc.permissionDenials
        if !denials.isEmpty, outcome == .ok { detail = "ran, but claude was refused: \(Set(denials).sorted().joined(separator: ", "))" }
        var session = loadSession()
        // The CLI's per-model totals run on across a continued session; a new session id starts from zero.
        let previous = (acc.sessionID != nil && acc.sessionID == session.sessionID) ? (session.modelTotals ?? [:]) : [:]
        let shares = acc.turnModelUsage(previous: previous)
        let cliCost = shares.values.reduce(0) { $0 + $1.costUSD }
        let tokens = acc.turnTokens(previous: previous, fallbackModel: model)
        // Ours from the tokens and the hive's table; core answers the report with its own price (the
        // operator's table, if any), which then replaces it.
        let cost = tokens.reduce(0) { $0 + (PriceTable.builtIn.cost($1.key, $1.value)?.usd ?? 0) }
        let usage = acc.usage
        var stat = TurnStat(
            id: nil, startedAt: run.startedAt, endedAt: ended, model: acc.model ?? model, sessionID: acc.sessionID,
            wakeSource: wakeSource, messageID: messageID,
            resultKind: ((run.exit.timedOut || run.exit.cancelled) ? TurnResultKind.failed : outcome.kind).rawValue, detail: detail,
            inputTokens: usage.input, outputTokens: usage.output, cacheReadTokens: usage.cacheRead,
            cacheCreationTokens: usage.cacheCreation, contextTokens: acc.contextTokens,
            contextWindow: acc.result?.contextWindow, costUSD: cost, toolCalls: acc.toolCallCount,
            toolBreakdown: Self.json(acc.toolCalls), sessionAction: decision.action.rawValue, sessionReason: decision.reason,
            estimatedContinueCost: decision.continueCost, estimatedFreshCost: decision.freshCost,
            exitStatus: run.exit.status.map(Int.init) ?? run.exit.signal.map { 128 + Int($0) })
        stat.cacheCreation1hTokens = usage.cacheCreation1h
        stat.cliCostUSD = acc.result == nil ? nil : cliCost
        stat.modelUsage = Self.json(Dictionary(uniqueKeysWithValues: tokens.map { name, t in
            (name, ["input": t.input, "output": t.output, "cache_read": t.cacheRead, "cache_creation": t.cacheWriteShort + t.cacheWriteLong,
                    "cache_creation_1h": t.cacheWriteLong, "cost_usd": PriceTable.builtIn.cost(name, t)?.usd ?? 0,
                    "cli_cost_usd": shares[name]?.costUSD ?? 0] as [String: Any])
        }))
        stat.permissionDenials = Self.json(denials)
        stat.cliVersion = acc.cliVersion
        do { try stats.record(stat) } catch { logger.error("turn stats: \(error)") }
        if let id = acc.sessionID { session.sessionID = id }
        if let totals = acc.result?.modelUsage, !totals.isEmpty { session.modelTotals = totals }
        if acc.result != nil {
            session.lastTurnEndedAt = ended
            if let ctx = acc.contextTokens { session.contextTokens = ctx }
            if acc.compacted { session.contextTokens = nil }
            if let w = acc.result?.contextWindow { session.contextWindow = w }
        }
        let newlyDenied = Set(denials).subtracting(session.deniedToolsReported ?? []).sorted()
        session.deniedToolsReported = (session.deniedToolsReported ?? []) + newlyDenied
        saveSession(session)
        _ = status.update {
            $0.sessionID = session.sessionID
            $0.contextTokens = session.contextTokens
            $0.contextWindow = session.contextWindow
            $0.lastTurnCostUSD = cost
            $0.totalCostUSD += cost
            $0.lastTurnEndedAt = ended
            $0.messageID = nil
            $0.cliVersion = acc.cliVersion ?? $0.cliVersion
            if !denials.isEmpty { $0.permissionDenials = Array(Set(denials)).sorted() }
            if let m = acc.model { $0.model = m }
        }
        if !newlyDenied.isEmpty { pendingDenialNotices.withLock { $0 += newlyDenied } }
        if !acc.windows.isEmpty { pendingWindows.withLock { $0.merge(acc.windows) { $1 } } }
        harnessEvent(["event": "turn_end", "result": stat.resultKind, "detail": detail ?? "", "cost_usd": cost,
                      "tool_calls": acc.toolCallCount, "context_tokens": acc.contextTokens ?? 0,
                      "permission_denials": denials], turn: status.read().turns)
    }

    /// Sends core the turns it has not acknowledged (this one, and any a broken connection or a core
    /// restart swallowed), oldest first, 20 at most per call. Core meters them (an agent without a
    /// gateway), expects its next turn's cost from them, and answers its price, which replaces ours. A
    /// report core refuses for good (not for its rate) keeps our price, so it cannot block the rest.
    func reportTurns(_ conn: HiveConnection) async {
        guard let pending = try? stats.unreported(limit: 20) else { return }
        for t in pending {
            guard let id = t.id else { continue }
            let windows = t.id == pending.last?.id ? pendingWindows.withLock { $0 } : [:]
            let report = ReportTurnCommand(key: "\(id)-\(Int(t.startedAt))", startedAt: t.startedAt, endedAt: t.endedAt,
                                           models: Self.tokens(modelUsage: t.modelUsage), cliCostUsd: t.cliCostUSD,
                                           windows: windows.isEmpty ? nil : windows, result: TurnResultKind(rawValue: t.resultKind))
            do {
                let reply = try await conn.call(report)
                try stats.markReported(id, costUSD: reply.usd)
                if !windows.isEmpty { pendingWindows.withLock { $0 = [:] } }
            } catch HiveClientError.refused(let why) where !why.hasPrefix("report_turn refused: at most") {
                note("core refused the report of turn \(id): \(why)")
                try? stats.markReported(id, costUSD: t.costUSD)
            } catch {
                return // sent again after the next turn or reconnect
            }
        }
    }

    /// The per-model tokens a turn-stats row keeps in `model_usage`.
    static func tokens(modelUsage json: String) -> [String: TokenCount] {
        guard let o = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: [String: Any]] else { return [:] }
        return o.prefix(ReportTurnCommand.maxModels).reduce(into: [:]) { out, entry in
            func int(_ k: String) -> Int { (entry.value[k] as? NSNumber)?.intValue ?? 0 }
            let long = int("cache_creation_1h")
            out[entry.key] = TokenCount(input: int("input"), output: int("output"), cacheWriteShort: max(0, int("cache_creation") - long),
                                        cacheWriteLong: long, cacheRead: int("cache_read"))
        }
    }

    /// Tells the manager, once per tool, that claude was refused a tool here: the turn ran and was acked,
    /// but the agent did not do what it meant to, and only a config change (permissions) can fix it.
    func reportDenials(_ conn: HiveConnection) async {
        let tools = pendingDenialNotices.withLock { t in defer { t = [] }; return t }
        guard !tools.isEmpty, config.name != .manager else { return }
        let body = "\(config.name) was refused \(tools.count == 1 ? "the tool" : "the tools") \(tools.joined(separator: ", ")) "
            + "(permissions in its agent.json). Its turns run, but without \(tools.count == 1 ? "that tool" : "those tools")."
        do { _ = try await conn.call(SendCommand(to: "manager", body: body)) } catch { note("could not tell the manager about denied tools: \(error)") }
    }

    static func json(_ value: Any) -> String {
        (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
