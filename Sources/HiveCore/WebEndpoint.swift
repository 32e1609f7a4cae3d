import Foundation
import HiveBroker
import HiveHost
import HiveWire
import Logging
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

/// Serves `<run-dir>/web.sock`, the only way `hive web` reaches the hive. It takes the narrow requests of
/// ``WebRequest``; every agent name and relative path is checked here, in core, so the web process
/// cannot read a host file even if every check in it were bypassed. Operator actions go through the
/// same code as the admin socket.
struct WebEndpoint: Sendable {
    let admin: AdminEndpoint
    let feed: DashboardFeed
    var layout: HiveLayout { admin.layout }
    var broker: any HiveStore { admin.broker }

    func handle(_ line: Data, _ parker: Parker) -> Data {
        Respond.to(line, table: WebRequest.table, logger: admin.logger) { request in
            switch request {
            case .snapshot:
                let seq = feed.seq // first: events after it may repeat what the snapshot shows, never miss it
                return ResponseLine.ok(SnapshotCommand.Reply(
                    seq: seq, agents: try admin.list(), approvals: try broker.approvals(recent: 20),
                    messages: try broker.recentMessages(limit: 200), reminders: try broker.pendingReminders(agent: nil),
                    questions: try broker.questions(closed: 10), forge: admin.forge?.forge.baseURL,
                    spend: try admin.sockets.ledger.totals(), budgets: try admin.sockets.budgets.handle(BudgetCommand()).budgets,
                    nodes: try broker.nodes()))
            case .events(let c):
                let wait = try Validate.seconds(c.waitSeconds, field: "wait_seconds", cap: 30)
                return ResponseLine.ok(feed.events(after: c.after, wait: wait))
            case .readFile(let c):
                let root: URL
                if let raw = c.agent {
                    let name = try AgentName(raw)
                    guard try broker.agent(name) != nil else { throw BrokerError.unknownAgent(name.rawValue) }
                    root = layout.stateDir(name)
                } else {
                    root = layout.sharedDir
                }
                return ResponseLine.ok(try ConfinedFile.read(under: root, relPath: c.relPath))
            case .metrics(let c):
                // The web process passes on what the scraper presented; the token is core's to check.
                guard CoreMetrics.admits(c.token, token: try CoreMetrics.token(layout)) else {
                    throw RequestError("a scrape needs Authorization: Bearer <the token in the hive root's metrics.token>")
                }
                return ResponseLine.ok(MetricsCommand.Reply(text: admin.metrics.scrape()))
            case .agentConfig(let c):
                let name = try AgentName(c.agent)
                guard try broker.agent(name) != nil else { throw BrokerError.unknownAgent(name.rawValue) }
                let config = admin.approvals.configs.current(name).encoded()
                return ResponseLine.ok(AgentConfigCommand.Reply(agent: name.rawValue, config: String(decoding: config, as: UTF8.self),
                                                                commit: admin.approvals.repos.deployedSHA(name)))
            case .pageRoute(let c):
                let name = try AgentName(c.agent)
                guard try broker.agent(name) != nil else { throw BrokerError.unknownAgent(name.rawValue) }
                guard let here = broker.nodeName, let placed = try broker.placements()[name.rawValue]?.node, placed != here else {
                    return ResponseLine.ok(PageRouteCommand.Reply(agent: name.rawValue))
                }
                guard let moves = admin.moves else { throw CoreError("this node serves no endpoint (--node-listen), so its dashboard cannot reach node \(placed)") }
                guard let peer = try broker.peer(placed) else { throw CoreError("\(name) runs on node \(placed), which serves no endpoint") }
                let expires = Int(Date().timeIntervalSince1970 + NodeIdentity.ticketLifetime)
                let ticket = try moves.identity.pageTicket(via: here, target: placed, agent: name.rawValue, expires: expires)
                return ResponseLine.ok(PageRouteCommand.Reply(agent: name.rawValue, node: placed, endpoint: peer.endpoint, certificate: peer.certificate,
                                                              via: here, ticket: ticket, expires: Double(expires)))
            case .logs, .send, .approve, .deny, .start, .stop, .restart, .revive, .destroy, .cancelReminder, .forgeRepos, .answer, .setModel, .budget, .search:
                // The same command on the admin socket: one implementation, and this table is the allow-list.
                return admin.handle(line, parker)
            }
        }
    }
}

/// Reads a file under a root (an agent's state dir, the shared space) for the dashboard: the relative
/// path must be plain (no `..`, `.`, empty or absolute parts), and every component is opened relative to
/// its parent without following links, so neither `..` nor a symlink anywhere on the way can leave the root.
enum ConfinedFile {
    static let maxBytes = 1 << 20

    static func read(under root: URL, relPath: String) throws -> ReadFileCommand.Reply {
        guard !relPath.isEmpty, relPath.utf8.count <= 1024, !relPath.contains("\0"), !relPath.hasPrefix("/") else {
            throw RequestError("rel_path must be a relative path of 1 to 1024 bytes")
        }
        let parts = relPath.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count <= 32, parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." && $0.utf8.count <= 255 }) else {
            throw RequestError("rel_path may not contain '..', '.', or empty parts")
        }
        guard let fd = ConfinedPath.openFile(parts, under: root) else {
            throw RequestError("no such file: \(relPath) (or it is a link, passes through one, or is not a regular file)")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw RequestError("cannot read \(relPath)") }
        guard Int(st.st_size) <= maxBytes else {
            throw RequestError("\(relPath) is \(st.st_size) bytes; the dashboard shows files up to \(maxBytes) bytes")
        }
        var data = Data(count: Int(st.st_size))
        let n = data.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard n >= 0 else { throw RequestError("cannot read \(relPath)") }
        data.count = n
        let text = data.contains(0) ? nil : String(data: data, encoding: .utf8)
        return .init(path: relPath, size: n, text: text)
    }
}

/// Polls what no call site publishes (delivery states, the agent list, approvals, reminders, questions)
/// five times a second while core runs.
struct DashboardPoller: Service {
    let feed: DashboardFeed
    func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            feed.poll()
            try? await Task.sleep(for: .milliseconds(200))
        }
        feed.stop()
    }
}
