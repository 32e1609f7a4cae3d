import Foundation
import HiveBroker
import HiveWire
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The manager's own requests: config approvals and the lifecycle of the *other* agents.
struct ManagerDesk: Sendable {
    let approvals: ApprovalDesk
    var lifecycle: Lifecycle { approvals.lifecycle }

    func handle(_ request: ManagerRequest) throws -> Data {
        switch request {
        case .agent:
            throw RequestError("internal: agent requests are handled by the agent endpoint")
        case .requestInitConfig(let c):
            return ResponseLine.ok(ApproveCommand.Reply(approval: try approvals.requestInit(c)))
        case .requestApplyCommit(let c):
            return ResponseLine.ok(ApproveCommand.Reply(approval: try approvals.requestApply(c)))
        case .start(let c):
            return ResponseLine.ok(try lifecycle.start(try other(c.name, "start")))
        case .stop(let c):
            return ResponseLine.ok(try lifecycle.stop(try other(c.name, "stop")))
        case .restart(let c):
            guard let raw = c.name, c.all != true else { throw RequestError("restart: the manager restarts one agent at a time; give name") }
            let name = try other(raw, "restart")
            try lifecycle.restart(name)
            return ResponseLine.ok(RestartCommand.Reply(restarted: [name.rawValue]))
        case .update(let c):
            let name = try other(c.name, "update")
            try lifecycle.rebuild(name)
            lifecycle.notify(.rebuilt, about: name, "\(name) was rebuilt from its applied config (update).")
            return ResponseLine.ok(RestartCommand.Reply(restarted: [name.rawValue]))
        case .logs(let c):
            return ResponseLine.ok(try HarnessLog.reply(lifecycle.layout, c))
        }
    }

    /// The agent a lifecycle request names, which must not be the manager itself.
    private func other(_ raw: String, _ verb: String) throws -> AgentName {
        let name = try AgentName(raw)
        guard name != .manager else {
            throw RequestError("the manager cannot \(verb) itself; the operator can (hive \(verb) manager)")
        }
        return name
    }
}
