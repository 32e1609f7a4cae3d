import Foundation
import HiveBroker
import HiveHost
import HiveWire
import Logging

/// Serves one agent's socket. The agent's name is fixed when the socket is created: nothing in a
/// request can make it act as anyone else.
struct AgentEndpoint: Sendable {
    let name: AgentName
    let broker: any HiveStore
    let board: AgentStatusBoard
    let layout: HiveLayout
    let reminders: ReminderDesk
    let configs: ConfigStore
    let rates: AgentRates
    let reserve: DiskReserve
    let limits: CredentialLimits
    let ledger: SpendLedger
    let budgets: BudgetDesk
    /// Set on the manager's socket only: what the config gatekeeper may do beyond any agent.
    let manager: ManagerDesk?
    let logger: Logger

    func handle(_ line: Data, _ parker: Parker) -> Data {
        guard let manager else {
            return Respond.to(line, table: AgentRequest.table, logger: logger) { try agent($0, parker) }
        }
        return Respond.to(line, table: ManagerRequest.table, logger: logger) { request in
            if case .agent(let r) = request { return try agent(r, parker) }
            return try manager.handle(request)
        }
    }

    private func agent(_ request: AgentRequest, _ parker: Parker) throws -> Data {
            switch request {
            case .send(let c):
                let to = try allowed(try Recipient(c.to))
                try rates.take(name, .send)
                try reserve.check()
                return ResponseLine.ok(try broker.send(from: .agent(name), to: to, body: c.body, inReplyTo: c.inReplyTo))
            case .recv(let c):
                let max = try Validate.count(c.max, field: "max", default: 1, cap: WireLimits.maxRecvBatch)
                let wait = try Validate.seconds(c.waitSeconds, field: "wait_seconds", cap: WireLimits.maxRecvWaitSeconds)
                // Another agent on the same credential hit its limit: wait for the same reset, with nothing
                // handed out (the harness's long poll comes back empty; a parked one is woken to see it).
                let held = { limits.hold(credential: { configs.credential(of: name) }, model: { configs.model(of: name) }) }
                if let hold = held() {
                    let holdEnd = ContinuousClock.now + .milliseconds(Int64(Swift.max(0, hold.until - Date().timeIntervalSince1970) * 1000))
                    _ = parker.wait(until: min(ContinuousClock.now + wait, holdEnd))
                    return ResponseLine.ok(RecvCommand.Reply(messages: [], unread: 0))
                }
                // Over its budget (or the hive's): nothing handed out until the period renews or the operator
                // raises the cap (which wakes this park).
                if budgets.hold(name) != nil {
                    budgets.park(name, parker, atMost: wait)
                    return ResponseLine.ok(RecvCommand.Reply(messages: [], unread: 0))
                }
                let reply = try broker.recv(name, max: max, wait: wait, parker: parker, mayDeliver: { held() == nil && budgets.hold(name) == nil })
                let now = Date().timeIntervalSince1970
                for m in reply.messages where !m.redelivered { CoreMetrics.woke(after: now - m.sentAt) }
                return ResponseLine.ok(reply)
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
            case .gatewayLog(let c):
                // Its own gateway's decisions only (its page shows them); another agent's are the operator's to see.
                guard c.agent == name.rawValue else { throw RequestError("an agent sees only its own gateway log (agent: \"\(name)\")") }
                let limit = try Validate.count(c.limit, field: "limit", default: 50, cap: WireLimits.maxListLimit)
                return ResponseLine.ok(try GatewayReport.reply(broker, name, limit: limit, layout: layout))
            case .reportTurn(let c):
                try rates.take(name, .reportTurn)
                return ResponseLine.ok(try ledger.reportTurn(name, c))
            case .search(let c):
                // Its own messages only: what it sent or received.
                try rates.take(name, .search)
                let limit = try Validate.count(c.limit, field: "limit", default: 20, cap: SearchQuery.maxResults)
                return ResponseLine.ok(SearchCommand.Reply(hits: try broker.search(try SearchQuery.parse(c.query), party: name.rawValue, limit: limit)))
            case .whoami:
                return ResponseLine.ok(WhoamiCommand.Reply(name: name.rawValue, role: name == .manager ? .manager : .agent))
            case .deadLetter(let c):
                guard c.reason.utf8.count <= 1000 else { throw RequestError("reason is \(c.reason.utf8.count) bytes; at most 1000") }
                try rates.take(name, .send) // each dead letter is a notice to the manager
                let (reply, dead) = try broker.deadLetter(name, ids: c.ids, reason: c.reason)
                for message in dead { notifyDeadLetter(message, reason: c.reason) }
                return ResponseLine.ok(reply)
            case .reportState(let c):
                let checked = try c.checked()
                try rates.take(name, .reportState)
                board.report(name, checked)
                if checked.state == .rateLimited, let until = checked.rateLimitedUntil {
                    limits.record(credential: configs.credential(of: name), until: until, window: checked.limitWindow, by: name)
                    let live = (try? broker.agents().filter { $0.record.destroyedAt == nil }.compactMap { try? AgentName($0.record.name) }) ?? []
                    broker.wakeReceivers(live.filter { $0 != name })
                } else if checked.state != .rateLimited {
                    limits.release(by: name)
                }
                return ResponseLine.ok(ReportStateCommand.Reply())
            case .requestNextTurn(let c):
                let why = c.reason.map { ": \($0.prefix(1000))" } ?? ""
                let sent = try broker.send(from: .system, to: .agent(name),
                                           body: "You asked for another turn (request_next_turn)\(why).", inReplyTo: nil)
                return ResponseLine.ok(RequestNextTurnCommand.Reply(id: sent.ids[0]))
            case .newSession:
                // Core keeps the request and hands it to the harness with its next turn's settings:
                // root writes nothing into the agent's directories for it.
                configs.requestFreshSession(name)
                return ResponseLine.ok(NewSessionCommand.Reply())
            case .remind(let c):
                try reserve.check()
                return ResponseLine.ok(try reminders.remind(c, for: name))
            case .reminderRollup(let c):
                guard c.sinceSecs.isFinite, c.sinceSecs >= 0 else { throw RequestError("field 'since_secs' must be 0 or more seconds") }
                return ResponseLine.ok(try broker.reminderRollup(name, since: c.sinceSecs))
            case .ask(let c):
                let to = try allowed(try Recipient(c.to ?? "operator"))
                try reserve.check()
                let q = try broker.ask(name, to: to, try QuestionLifecycle.check(c))
                return ResponseLine.ok(AskCommand.Reply(id: q.id, to: q.to, expiresAt: q.expiresAt))
            case .answer(let c):
                return ResponseLine.ok(AnswerCommand.Reply(question: try broker.answer(c.id, by: .agent(name), choices: c.choices, answer: c.answer)))
            case .questions(let c):
                return ResponseLine.ok(QuestionsCommand.Reply(questions: try broker.questions(to: name.rawValue, closed: c.all == true ? 20 : 0)))
            case .turnSettings:
                return ResponseLine.ok(TurnSettingsCommand.Reply(model: configs.modelOverride(name), resumes: configs.resumes(name),
                                                                freshSession: configs.takeFreshSessionRequest(name)))
            }
    }

    /// `to`, if this agent's config lets it reach them (messages and questions alike).
    private func allowed(_ to: Recipient) throws -> Recipient {
        let config = configs.current(name)
        guard config.allows(to) else {
            throw RequestError("\(name) may not message \(to): its config allows \(config.allowedRecipients.isEmpty ? "nobody else" : config.allowedRecipients.joined(separator: ", ")); manager and operator are always reachable")
        }
        return to
    }
}

extension AgentEndpoint {
    /// Tells the manager (or, for the manager's own messages, the operator) that a message was given up on.
    private func notifyDeadLetter(_ message: MessageView, reason: String) {
        let to: Recipient = name == .manager ? .operator : .agent(.manager)
        let body = SystemNotice.deadLetter.body("""
            \(name) dead-lettered message \(message.id) from \(message.from) after repeated failed turns. Its harness said:
            \(VisibleText.quote(reason, by: "\(name)'s harness", budget: 1000))
            The message was:
            \(VisibleText.quote(message.body, by: message.from))
            """)
        do {
            _ = try broker.send(from: .system, to: to, body: body, inReplyTo: nil)
        } catch {
            logger.error("could not tell \(to) about dead letter \(message.id): \(error)")
        }
        logger.warning("\(name) dead-lettered message \(message.id): \(reason)")
    }
}

