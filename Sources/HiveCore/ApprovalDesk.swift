import Foundation
import HiveBroker
import HiveWire
import Logging

/// Config changes, each approved by the operator (ARCHITECTURE §8). The manager asks
/// (`request_init_config`, `request_apply_commit`); the operator approves or denies; core carries the
/// approval out and tells the manager the outcome (`approval_resolved`, `config_ready`).
struct ApprovalDesk: Sendable {
    let broker: any HiveStore
    let repos: ConfigRepos
    let configs: ConfigStore
    let lifecycle: Lifecycle
    /// Configs of agents on other nodes (a hive on many hosts, this node serving an endpoint).
    let nodeConfigs: NodeConfigs?
    let logger: Logger

    /// Manager: seed a config repo for `name` from the template, once the operator agrees.
    func requestInit(_ c: RequestInitConfigCommand) throws -> ApprovalView {
        let name = try Self.configurable(c.name)
        if let record = try broker.agent(name), record.destroyedAt != nil {
            throw RequestError("\(name) is destroyed; the operator can revive it (hive revive \(name))")
        }
        guard !repos.hasProposed(name) else {
            throw RequestError("\(name) already has a config repo at \(repos.layout.proposedConfig(name).path); commit to it and request_apply_commit")
        }
        let description = try Self.description(c.description)
        let view = try broker.createApproval(kind: .initConfig, agent: name, commit: nil, description: description, diff: nil,
                                             requestedBy: "manager")
        logger.info("approval \(view.id): init_config for \(name) requested")
        return view
    }

    /// Manager: deploy a commit of `agent`'s proposed repo, once the operator agrees.
    func requestApply(_ c: RequestApplyCommitCommand) throws -> ApprovalView {
        let name = try Self.configurable(c.agent)
        if let record = try broker.agent(name), record.destroyedAt != nil {
            throw RequestError("\(name) is destroyed; the operator can revive it (hive revive \(name))")
        }
        let description = try Self.description(c.description)
        let (sha, diff) = try repos.propose(name, ref: c.commitRef)
        let view = try broker.createApproval(kind: .applyCommit, agent: name, commit: sha, description: description, diff: diff,
                                             requestedBy: "manager")
        try repos.tag(name, "proposal/\(view.id)", sha)
        logger.info("approval \(view.id): apply \(sha.prefix(12)) to \(name) requested")
        return view
    }

    /// Operator: approve and carry out. Returns the approval as it ended (`deployed` or `failed`).
    func approve(_ id: Int64) throws -> ApprovalView {
        let approved = try broker.resolveApproval(id, .approve)
        let name = try AgentName(approved.agent)
        let outcome: Result<String, any Error>
        switch approved.kind {
        case .initConfig:
            outcome = Result {
                try repos.seed(name, description: approved.description ?? "")
                return "the config repo of \(name) is seeded (/agents/\(name)/config in your cage, \(repos.layout.proposedConfig(name).path) on the host)"
            }
        case .applyCommit:
            outcome = Result { try deploy(name, sha: approved.commit ?? "", id: id) }
        }
        switch outcome {
        case .success(let what):
            let done = try broker.resolveApproval(id, .succeed)
            if approved.kind == .initConfig {
                lifecycle.notify(.configReady, about: name, "approval \(id) approved: \(what). Edit agent.json there, commit, then request_apply_commit.")
            } else {
                // The deployed config says which model: a runtime choice made before it no longer applies.
                try? configs.setModelOverride(name, nil)
                lifecycle.notify(.approvalResolved, about: name, "approval \(id) approved and deployed: \(what).")
            }
            return done
        case .failure(let error):
            let reason = "\(error)"
            if let sha = approved.commit { try? repos.tag(name, "failed/\(id)", sha) }
            let done = try broker.resolveApproval(id, .fail, note: reason)
            lifecycle.notify(.approvalResolved, about: name, "approval \(id) was approved but failed, nothing changed: \(reason)")
            logger.warning("approval \(id) for \(name) failed: \(reason)")
            return done
        }
    }

    /// Operator: say no, with an optional note the manager gets.
    func deny(_ id: Int64, note: String?) throws -> ApprovalView {
        let note = try note.map { n -> String in
            guard n.utf8.count <= 2000 else { throw RequestError("deny: the note is longer than 2000 bytes") }
            return n
        }
        let denied = try broker.resolveApproval(id, .deny, note: note)
        lifecycle.notify(.approvalResolved, about: .manager, "approval \(id) (\(denied.kind) for \(denied.agent)) was denied\(note.map { ": \($0)" } ?? "").")
        return denied
    }

    /// Validate → render → (re)start → record. The new config stays only if all of it succeeds; otherwise
    /// what ran before is put back and runs again. A never-deployed, unregistered agent is created here.
    private func deploy(_ name: AgentName, sha: String, id: Int64) throws -> String {
        try repos.tag(name, "approved/\(id)", sha)
        let config = try AgentConfig.parse(try repos.configFile(name, sha: sha))
        let previous = configs.isDeployed(name) ? configs.current(name) : nil
        let record = try broker.agent(name)
        let cages = lifecycle.processes != nil
        // An agent the operator stopped keeps its new config for its next start; one that never ran a
        // deployed config (new, or left stopped by a failed first deploy) is started by this one.
        let operatorStopped = try record != nil && previous != nil && broker.isStopped(name)
        // An agent of another node is rebuilt there, by that node (which puts back what ran before if it fails).
        let elsewhere = try broker.placements()[name.rawValue].map(\.node).flatMap { $0 == broker.nodeName ? nil : $0 }
        configs.set(name, config)
        do {
            if record == nil {
                // A new agent starts on the manager's node; hive move takes it elsewhere, its config with it.
                _ = try lifecycle.spawn(name, node: lifecycle.broker.nodeName, waitReady: true)
            } else if let elsewhere {
                guard let nodeConfigs else { throw CoreError("\(name) runs on node \(elsewhere), and this node serves no endpoint to reach it") }
                let text = String(decoding: try repos.configFile(name, sha: sha), as: UTF8.self)
                try nodeConfigs.push(name, to: elsewhere, deployed: .init(sha: sha, config: text))
            } else if cages && !operatorStopped {
                try lifecycle.rebuild(name, waitReady: true)
            }
            try repos.setDeployed(name, sha)
        } catch {
            // Put back what ran before, and run it again; a new agent whose first config failed is left
            // stopped (registered, so the next apply needs no second init_config).
            configs.set(name, previous)
            if elsewhere != nil {
                // Its node put back what ran before.
            } else if previous == nil {
                _ = try? lifecycle.stop(name)
            } else if cages && !operatorStopped {
                try? lifecycle.rebuild(name)
            }
            throw error
        }
        try? repos.tag(name, "deployed/\(id)", sha)
        if record != nil { lifecycle.notify(.rebuilt, about: name, "\(name) runs config \(sha.prefix(12)) (approval \(id)).") }
        if operatorStopped || !cages {
            return "\(name) has config \(sha.prefix(12)); it is not running (\(cages ? "stopped by the operator: hive start \(name)" : "this core starts no cages"))"
        }
        return "\(name) runs config \(sha.prefix(12))"
    }

    /// An agent the manager may configure: any spawnable name, or the manager itself.
    private static func configurable(_ raw: String) throws -> AgentName {
        raw == AgentName.manager.rawValue ? .manager : try AgentName.spawnable(raw)
    }

    private static func description(_ d: String?) throws -> String? {
        guard let d else { return nil }
        guard d.utf8.count <= 2000 else { throw RequestError("description is longer than 2000 bytes") }
        return d
    }
}
