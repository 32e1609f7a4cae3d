import Foundation
import HiveHost
import HiveWire
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The config each agent runs with: its deployed `agent.json` (checked), or the defaults for an agent
/// nothing was deployed for yet. Core reads it when it renders a cage, sends a message (allowed
/// recipients) or takes a reminder (limits).
final class ConfigStore: Sendable {
    private let layout: HiveLayout
    private let reminderLimits: ReminderLimits
    private let logger: Logger
    private let configs = Mutex([AgentName: AgentConfig]())

    init(layout: HiveLayout, reminderLimits: ReminderLimits, logger: Logger) {
        self.layout = layout
        self.reminderLimits = reminderLimits
        self.logger = logger
    }

    /// Loads what is deployed for each agent (at boot). A deployed file that no longer passes the checks
    /// (an older hive wrote it) is logged and the agent runs on defaults.
    func load(_ names: [AgentName], from repos: ConfigRepos) {
        for name in names {
            guard let sha = repos.deployedSHA(name) else { continue }
            do {
                set(name, try AgentConfig.parse(try repos.configFile(name, sha: sha)))
            } catch {
                logger.error("the deployed config of \(name) (\(sha.prefix(12))) does not pass the checks, running on defaults: \(error)")
            }
        }
    }

    func current(_ name: AgentName) -> AgentConfig {
        configs.withLock { $0[name] } ?? Self.defaults(for: name)
    }

    /// Whether something was deployed for the agent.
    func isDeployed(_ name: AgentName) -> Bool { configs.withLock { $0[name] != nil } }

    /// Sets (or, with nil, forgets) the agent's config, and the reminder limits that follow from it.
    func set(_ name: AgentName, _ config: AgentConfig?) {
        configs.withLock { $0[name] = config }
        reminderLimits.set(name, config.map { c in
            var p = reminderLimits.defaultPolicy
            p.cap = c.reminders.cap
            p.burst = Double(c.reminders.burst)
            p.refillPerSecond = 1 / Double(c.reminders.refillSeconds)
            return p
        })
    }

    /// Writes `config` (what the cage is being built from) as the file the agent's harness reads its
    /// settings from, and returns where it is. Created 0640 (it may hold secrets in `env`), replaced atomically.
    func render(_ name: AgentName, _ config: AgentConfig) throws -> URL {
        let file = layout.renderedConfig(name)
        let dir = file.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let temp = dir.appending(path: ".\(name.rawValue).\(UUID().uuidString.prefix(8))")
        guard FileManager.default.createFile(atPath: temp.path, contents: config.encoded(), attributes: [.posixPermissions: 0o640]) else {
            throw CoreError("cannot write \(temp.path)")
        }
        guard rename(temp.path, file.path) == 0 else {
            try? FileManager.default.removeItem(at: temp)
            throw CoreError("cannot replace \(file.path): \(String(cString: strerror(errno)))")
        }
        return file
    }

    /// The model the operator set for the agent at runtime, if any (`<root>/rendered/<n>.model`).
    func modelOverride(_ name: AgentName) -> String? {
        guard let text = try? String(contentsOf: layout.modelOverride(name), encoding: .utf8) else { return nil }
        let model = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return AgentConfig.isModelName(model) ? model : nil
    }

    /// Sets the runtime model (nil or empty clears it). The agent's harness picks it up at its next turn.
    func setModelOverride(_ name: AgentName, _ model: String?) throws {
        let file = layout.modelOverride(name)
        let model = model?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if model.isEmpty {
            if (try? FileManager.default.removeItem(at: file)) != nil { logger.notice("\(name): runtime model cleared") }
            return
        }
        guard AgentConfig.isModelName(model) else {
            throw RequestError("'\(model.prefix(100))' is not a model name (letters, digits and . _ : - [ ], at most 100 bytes)")
        }
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data((model + "\n").utf8).write(to: file, options: .atomic)
        logger.notice("\(name): runtime model set to \(model) (the config says \(current(name).model))")
    }

    /// The stored credential the agent's claude uses.
    func credential(of name: AgentName) -> String { current(name).credential ?? "default" }
    /// The model the agent's next turn runs with (the operator's runtime choice, else its config's).
    func model(of name: AgentName) -> String { modelOverride(name) ?? current(name).model }

    /// `hive resume` counts per agent (in memory: a harness that restarts tries again anyway).
    private let resumeCounts = Mutex<[AgentName: Int]>([:])
    func resumes(_ name: AgentName) -> Int { resumeCounts.withLock { $0[name] ?? 0 } }
    func resume(_ names: [AgentName]) { resumeCounts.withLock { for n in names { $0[n, default: 0] += 1 } } }

    /// Agents that asked for a fresh session (`new_session`), until their harness next asks for its turn
    /// settings. In memory: a lost request after a core restart costs one continued turn, nothing more.
    private let freshRequests = Mutex<Set<AgentName>>([])
    func requestFreshSession(_ name: AgentName) { _ = freshRequests.withLock { $0.insert(name) } }
    func takeFreshSessionRequest(_ name: AgentName) -> Bool { freshRequests.withLock { $0.remove(name) != nil } }

    /// What an agent runs with before any config of its own is approved: a new agent, so its network is
    /// gated, like the template's. (An approved file without `network` means host: see ``AgentConfig``.)
    static func defaults(for name: AgentName) -> AgentConfig {
        var c = AgentConfig()
        c.network = .gated
        c.description = name == .manager ? "the hive's manager: keeper of every agent's config" : ""
        return c
    }
}
