import Foundation
import HiveBroker
import HiveHost
import HiveWire
import Logging
import NIOCore

/// Agents' configs in a hive on many hosts. The git side (config repos, approvals) is on the manager's
/// node: an approved config of an agent placed on another node is carried out there, through that node's
/// endpoint (``push(_:to:deployed:)``: validate, render, restart, or put back what ran before), and the
/// agent's node keeps what it got under `<root>/node/configs` (root's) to boot with. An agent arriving on a
/// node (hive move) gets its deployed config from the git node before the move counts as done.
struct NodeConfigs: Sendable {
    let store: any HiveStore
    let configs: ConfigStore
    let repos: ConfigRepos
    let identity: NodeIdentity
    let logger: Logger
    var layout: HiveLayout { repos.layout }
    var link: NodeLink { NodeLink(here: store.nodeName ?? "", identity: identity) }

    /// What an agent.json is allowed to weigh on its way between nodes.
    static let maxConfig = 256 * 1024

    /// A deployed config on its way: the commit and its agent.json.
    struct Deployed: Codable, Sendable {
        var sha: String
        var config: String
    }

    /// What the git node answers for an agent's config: what is deployed, or nothing (its defaults).
    struct Answer: Codable, Sendable {
        var deployed: Deployed?
    }

    /// The node holding the git side: the manager's.
    func gitNode() throws -> String? { try store.placements()[AgentName.manager.rawValue]?.node }
    /// Whether this node holds it (asked of the database, not of this node's lease on the manager).
    var holdsGit: Bool { store.nodeName == nil || (try? gitNode()) == store.nodeName }

    private func file(_ name: AgentName) -> URL { layout.nodeDir.appending(path: "configs").appending(path: "\(name.rawValue).json") }

    /// At boot on a node without the git side: the configs it was given for its agents.
    func loadKept(_ names: [AgentName]) {
        for name in names {
            guard let data = try? Data(contentsOf: file(name)) else { continue }
            do {
                let kept = try JSONDecoder().decode(Deployed.self, from: data)
                configs.set(name, try AgentConfig.parse(Data(kept.config.utf8)))
            } catch {
                logger.error("the config kept for \(name) in \(file(name).path) does not pass the checks, running on defaults: \(error)")
            }
        }
    }

    /// Keeps (or, with nil, forgets) what this node was given for `name`.
    func keep(_ name: AgentName, _ deployed: Deployed?) throws {
        guard let deployed else { try? FileManager.default.removeItem(at: file(name)); return }
        try FileManager.default.createDirectory(at: file(name).deletingLastPathComponent(), withIntermediateDirectories: true)
        try JSONEncoder().encode(deployed).write(to: file(name), options: .atomic)
    }

    /// On the git node: what is deployed for `name` (nil: nothing, it runs on defaults).
    func deployed(_ name: AgentName) throws -> Deployed? {
        guard let sha = repos.deployedSHA(name) else { return nil }
        return Deployed(sha: sha, config: String(decoding: try repos.configFile(name, sha: sha), as: UTF8.self))
    }

    /// On the git node: carries out an approved config of an agent placed on `node`; throws (with that
    /// node's reason) when it could not, and then the agent runs what it ran before.
    func push(_ name: AgentName, to node: String, deployed: Deployed) throws {
        guard let peer = try store.peer(node), peer.up else { throw CoreError("\(name) runs on node \(node), which is down or serves no endpoint") }
        let (link, body) = (self.link, try JSONEncoder().encode(deployed))
        let answer = try Blocking.run {
            try await link.call(peer, .PUT, "/node/v1/agents/\(name.rawValue)/config", headers: [("Content-Type", "application/json")],
                                body: .bytes(ByteBuffer(bytes: body)), timeout: Lifecycle.readyTimeout + .seconds(30))
        }
        guard answer.status == 200 else { throw CoreError("node \(node) could not run it: \(answer.message)") }
    }

    /// On an agent's node, from the git node: validate, render, restart; or put back what ran before.
    func apply(_ name: AgentName, _ deployed: Deployed, lifecycle: Lifecycle) throws {
        let config = try AgentConfig.parse(Data(deployed.config.utf8))
        let previous = configs.isDeployed(name) ? configs.current(name) : nil
        let kept = try? Data(contentsOf: file(name))
        let running = lifecycle.processes != nil && (try? store.isStopped(name)) != true
        configs.set(name, config)
        do {
            if running { try lifecycle.rebuild(name, waitReady: true) }
            try keep(name, deployed)
        } catch {
            configs.set(name, previous)
            if let kept { try? kept.write(to: file(name), options: .atomic) } else { try? keep(name, nil) }
            if running { try? lifecycle.rebuild(name) }
            throw error
        }
        logger.info("\(name) runs config \(deployed.sha.prefix(12)), from the git node")
    }

    /// On a node an agent arrives on (before the move counts as done): its deployed config, from the git
    /// node's repos when they are here, else fetched from the git node.
    func arriving(_ name: AgentName) throws {
        if holdsGit {
            configs.set(name, nil)
            configs.load([name], from: repos)
            return
        }
        guard let node = try gitNode(), let peer = try store.peer(node) else { throw CoreError("no node holding the git side serves an endpoint") }
        let link = self.link
        let answer = try Blocking.run { try await link.call(peer, .GET, "/node/v1/agents/\(name.rawValue)/config", timeout: .seconds(30)) }
        guard answer.status == 200, let got = try? JSONDecoder().decode(Answer.self, from: answer.body) else {
            throw CoreError("the git node \(node) did not give \(name)'s config: \(answer.message)")
        }
        if let deployed = got.deployed {
            configs.set(name, try AgentConfig.parse(Data(deployed.config.utf8)))
            try keep(name, deployed)
        } else {
            configs.set(name, nil) // nothing deployed: defaults
            try keep(name, nil)
        }
    }

    /// On the node an agent left: what it kept for it goes.
    func left(_ name: AgentName) {
        if !holdsGit { configs.set(name, nil) }
        try? keep(name, nil)
    }
}
