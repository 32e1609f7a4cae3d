import Foundation
import HiveBroker
import HiveHost
import HiveWire
import Logging

/// Serves the operator's admin socket (`host.sock`). Everything sent through it is sent as `operator`.
struct AdminEndpoint: Sendable {
    let layout: HiveLayout
    let broker: any HiveStore
    let sockets: AgentSockets
    let processes: AgentProcesses?
    let cage: CageMode
    let approvals: ApprovalDesk
    let forge: ForgeDesk?
    /// `hive move`, on a node that serves an endpoint.
    let moves: AgentMoves?
    let logger: Logger
    var lifecycle: Lifecycle { approvals.lifecycle }
    var metrics: CoreMetrics { CoreMetrics(broker: broker, layout: layout, budgets: sockets.budgets, agents: { try list() }) }

    func handle(_ line: Data, _ parker: Parker) -> Data {
        Respond.to(line, table: AdminRequest.table, logger: logger) { request in
            switch request {
            case .list:
                return ResponseLine.ok(ListCommand.Reply(agents: try list()))
            case .spawn(let c):
                let node = try c.node.map { try AgentName($0).rawValue } // a node's name follows an agent name's rules
                return ResponseLine.ok(try lifecycle.spawn(try AgentName.spawnable(c.name), node: node))
            case .move(let c):
                let name = try AgentName(c.name), node = try AgentName(c.node).rawValue
                guard let moves else {
                    throw CoreError(broker.nodeName == nil ? "this hive runs on one host: there is no other node to move \(name) to"
                                    : "this node serves no endpoint (hive core --node-listen), so it cannot move agents")
                }
                return ResponseLine.ok(try moves.move(name, to: node))
            case .nodes:
                return ResponseLine.ok(NodesCommand.Reply(nodes: try broker.nodes(), here: broker.nodeName))
            case .destroy(let c):
                let name = try AgentName(c.name)
                try lifecycle.destroy(name, purge: c.purge ?? false)
                return ResponseLine.ok(DestroyCommand.Reply(name: name.rawValue, purged: c.purge ?? false))
            case .send(let c):
                return ResponseLine.ok(try broker.send(from: .operator, to: try Recipient(c.to), body: c.body, inReplyTo: c.inReplyTo))
            case .inbox(let c):
                let limit = try Validate.count(c.limit, field: "limit", default: 50, cap: WireLimits.maxListLimit)
                return ResponseLine.ok(InboxCommand.Reply(messages: try broker.operatorInbox(limit: limit)))
            case .reminders(let c):
                let agent = try c.agent.map { try AgentName($0) }
                return ResponseLine.ok(RemindersCommand.Reply(reminders: try broker.pendingReminders(agent: agent)))
            case .cancelReminder(let c):
                try broker.cancelReminder(c.id)
                sockets.reminders.scheduler.kick()
                return ResponseLine.ok(CancelReminderCommand.Reply(id: c.id))
            case .start(let c):
                return ResponseLine.ok(try lifecycle.start(try AgentName(c.name)))
            case .stop(let c):
                return ResponseLine.ok(try lifecycle.stop(try AgentName(c.name)))
            case .restart(let c):
                return ResponseLine.ok(try restart(c.name, all: c.all, rebuild: false))
            case .rebuild(let c):
                return ResponseLine.ok(try restart(c.name, all: c.all, rebuild: true))
            case .logs(let c):
                return ResponseLine.ok(try HarnessLog.reply(layout, c))
            case .pending(let c):
                return ResponseLine.ok(PendingCommand.Reply(approvals: try broker.approvals(recent: c.all == true ? 50 : 0)))
            case .approve(let c):
                return ResponseLine.ok(ApproveCommand.Reply(approval: try approvals.approve(c.id)))
            case .deny(let c):
                return ResponseLine.ok(ApproveCommand.Reply(approval: try approvals.deny(c.id, note: c.note)))
            case .gatewayLog(let c):
                let name = try AgentName(c.agent)
                guard try broker.agent(name) != nil else { throw BrokerError.unknownAgent(name.rawValue) }
                let limit = try Validate.count(c.limit, field: "limit", default: 50, cap: WireLimits.maxListLimit)
                return ResponseLine.ok(try GatewayReport.reply(broker, name, limit: limit, layout: layout))
            case .budget(let c):
                if let agent = c.agent {
                    let name = try AgentName(agent)
                    guard try broker.agent(name) != nil else { throw BrokerError.unknownAgent(name.rawValue) }
                }
                return ResponseLine.ok(try sockets.budgets.handle(c))
            case .spend:
                return ResponseLine.ok(try sockets.ledger.totals())
            case .search(let c):
                let limit = try Validate.count(c.limit, field: "limit", default: 20, cap: SearchQuery.maxResults)
                return ResponseLine.ok(SearchCommand.Reply(hits: try broker.search(try SearchQuery.parse(c.query), party: nil, limit: limit)))
            case .metrics:
                return ResponseLine.ok(MetricsCommand.Reply(text: metrics.scrape()))
            case .forgeRepos:
                guard let forge else { throw CoreError("this core runs no forge (--forge-listen off)") }
                return ResponseLine.ok(try forge.repos())
            case .questions(let c):
                return ResponseLine.ok(QuestionsCommand.Reply(questions: try broker.questions(closed: c.all == true ? 50 : 0)))
            case .answer(let c):
                return ResponseLine.ok(AnswerCommand.Reply(question: try broker.answer(c.id, by: .operator, choices: c.choices, answer: c.answer)))
            case .setModel(let c):
                let name = try AgentName(c.agent)
                guard try broker.agent(name) != nil else { throw BrokerError.unknownAgent(name.rawValue) }
                let configs = approvals.configs
                try configs.setModelOverride(name, c.model)
                return ResponseLine.ok(SetModelCommand.Reply(agent: name.rawValue, model: configs.modelOverride(name), configModel: configs.current(name).model))
            case .resume(let c):
                let names: [AgentName]
                if c.all == true {
                    names = try broker.agents().filter { $0.record.destroyedAt == nil }.compactMap { try? AgentName($0.record.name) }
                } else {
                    guard let a = c.agent else { throw RequestError("name an agent, or all: true") }
                    let name = try AgentName(a)
                    guard try broker.agent(name) != nil else { throw BrokerError.unknownAgent(name.rawValue) }
                    names = [name]
                }
                approvals.configs.resume(names)
                return ResponseLine.ok(ResumeCommand.Reply(resumed: names.map(\.rawValue)))
            case .revive(let c):
                return ResponseLine.ok(try lifecycle.revive(try AgentName(c.name)))
            case .info:
                return ResponseLine.ok(InfoCommand.Reply(root: layout.root.path, runDir: layout.runDir.path, cage: cage.rawValue,
                                                         synchronous: broker.durability, forge: forge?.forge.baseURL))
            }
        }
    }

    /// `restart` / `rebuild`: one agent by name, or all of them (the manager first).
    private func restart(_ name: String?, all: Bool?, rebuild: Bool) throws -> RestartCommand.Reply {
        let verb = rebuild ? "rebuild" : "restart"
        switch (name, all ?? false) {
        case (let name?, false):
            let agent = try AgentName(name)
            if rebuild { try lifecycle.rebuild(agent) } else { try lifecycle.restart(agent) }
            return RestartCommand.Reply(restarted: [name])
        case (nil, true):
            return RestartCommand.Reply(restarted: try lifecycle.restartAll(rebuild: rebuild))
        default:
            throw RequestError("\(verb): give either name or \"all\": true")
        }
    }

    func list() throws -> [AgentSummary] {
        let today = try broker.spendBreakdown(since: BudgetPeriod.day.interval(containing: Date()).start.timeIntervalSince1970).agents
        // A hive on many hosts: agents of other nodes show what their node last published, or node_down.
        let here = broker.nodeName
        let placements = here == nil ? [:] : try broker.placements()
        return try broker.agents().map { a in
            var summary = AgentSummary(name: a.record.name, state: .destroyed, unread: a.unread, inflight: a.inflight,
                                       deadLetters: a.dead, createdAt: a.record.createdAt)
            let placement = placements[a.record.name]
            summary.node = placement?.node
            if a.record.destroyedAt == nil, let placement, placement.node != here {
                summary.state = placement.nodeUp ? placement.state ?? .running : .nodeDown
                summary.detail = placement.nodeUp ? placement.detail : "node \(placement.node) has not sent a heartbeat; its messages wait"
                summary.stateSince = placement.since
                summary.todayUsd = today[a.record.name]?.usd ?? 0
            } else if a.record.destroyedAt == nil, let name = try? AgentName(a.record.name) {
                let s = sockets.board.state(of: name, connected: sockets.connectionCount(name) > 0)
                summary.state = s.state
                summary.rateLimitedUntil = s.rateLimitedUntil
                summary.detail = s.detail
                summary.cliVersion = s.cliVersion
                summary.stateSince = s.since
                let configs = approvals.configs
                // A hold stops the next turn, never the running one: an agent in a turn shows that turn.
                let inTurn = s.state == .thinking || s.state == .compacting
                if !inTurn, s.state != .rateLimited,
                   let hold = sockets.limits.hold(credential: { configs.credential(of: name) }, model: { configs.model(of: name) }) {
                    summary.state = .rateLimited
                    summary.rateLimitedUntil = hold.until
                    summary.detail = "waits with its credential '\(configs.credential(of: name))': \(hold.reportedBy) hit its \(hold.window ?? "usage") limit"
                }
                if !inTurn, let hold = sockets.budgets.hold(name) {
                    summary.state = .overBudget
                    summary.detail = hold.detail
                }
                summary.todayUsd = today[name.rawValue]?.usd ?? 0
                summary.cage = processes?.isolation(name)
                summary.description = approvals.configs.current(name).description
            }
            return summary
        }
    }
}

