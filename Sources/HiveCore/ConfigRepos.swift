import Foundation
import HiveHost
import HiveWire
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The two config repos of each agent (ARCHITECTURE §8): the *proposed* repo `agents/<n>/config`, which
/// the manager writes, and the *applied* repo `applied/<n>` (bare, core's only), into which core fetches
/// the commits the manager asks to deploy and tags them `proposal/<id>`, `approved/<id>`,
/// `deployed/<id>` or `failed/<id>`. Its `main` is what is deployed.
final class ConfigRepos: Sendable {
    let layout: HiveLayout
    private let git: Git
    /// The uid the manager's cage runs as, when cages run as other uids: it owns the proposed repos, and
    /// core reads them only as that uid (so a proposed repo pointing elsewhere cannot read host files).
    private let managerUID: @Sendable () -> uid_t?
    /// One git operation at a time: approvals are rare, and this keeps tags and `main` consistent.
    private let lock = Mutex(0)
    static let emptyTree = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
    static let maxDiffBytes = 64 * 1024

    init(layout: HiveLayout, managerUID: @escaping @Sendable () -> uid_t?) {
        self.layout = layout
        self.git = Git(globalConfig: layout.appliedDir.appending(path: "core.gitconfig"))
        self.managerUID = managerUID
    }

    /// Whether the agent has a proposed repo (its `.git` a real directory, not a link or anything else).
    func hasProposed(_ name: AgentName) -> Bool {
        var st = stat()
        return lstat(layout.proposedConfig(name).appending(path: ".git").path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Seeds the proposed repo from the template: `agent.json` and a README, one commit on `main`.
    ///
    /// The manager can write the proposed repo's directory (it may have emptied it and planted links),
    /// so root writes nothing there: the repo is made in a directory of core's own, handed to the
    /// manager's uid, and renamed into place in one step (`<root>/agents/<n>` and the applied dir are
    /// root's). A non-empty directory in the way is refused, never cleared.
    func seed(_ name: AgentName, description: String) throws {
        try lock.withLock { _ in
            let dir = layout.proposedConfig(name)
            guard !hasProposed(name) else { throw CoreError("\(name) already has a config repo at \(dir.path)") }
            try prepare()
            let made = ".seed-\(name.rawValue)-\(UUID().uuidString)"
            let work = layout.appliedDir.appending(path: made)
            defer { try? TreeRemoval.remove(made, in: layout.appliedDir) }
            try FileManager.default.createDirectory(at: work, withIntermediateDirectories: false)
            try git.run(["init", "-q", "-b", "main"], in: work)
            try AgentConfig.template(description: description).write(to: work.appending(path: AgentConfig.fileName))
            try Data(Self.readme(name).utf8).write(to: work.appending(path: "README.md"))
            try git.run(["add", "-A"], in: work)
            try git.run(["commit", "-q", "-m", "Seed the config of \(name) from the template"], in: work)
            if let uid = managerUID() { try Ownership.give(work, to: uid, group: gid_t(uid)) }
            try FileManager.default.createDirectory(at: layout.agentDir(name), withIntermediateDirectories: true) // root's
            guard rename(work.path, dir.path) == 0 else {
                if errno == ENOTEMPTY || errno == EEXIST {
                    throw RequestError("\(dir.path) is in the way: it has files but no git repo. Empty it (or remove it), then request_init_config again")
                }
                throw CoreError("could not put the config repo of \(name) in place: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Removes the applied repo (the agent was purged; a new agent of that name starts from nothing).
    func removeApplied(_ name: AgentName) {
        lock.withLock { _ in try? FileManager.default.removeItem(at: layout.appliedRepo(name)) }
    }

    /// Fetches the proposed repo's branches into the applied repo, resolves `ref` (7–40 hex digits) to
    /// a commit on one of them, and returns it with its diff against what is deployed.
    func propose(_ name: AgentName, ref: String) throws -> (sha: String, diff: String) {
        guard ref.range(of: "^[0-9a-fA-F]{7,40}$", options: .regularExpression) != nil else {
            throw RequestError("commit_ref must be 7 to 40 hex digits of a commit hash, not '\(ref.prefix(64))'")
        }
        return try lock.withLock { _ in
            guard hasProposed(name) else {
                throw RequestError("\(name) has no config repo yet: request_init_config first, then commit to \(layout.proposedConfig(name).path)")
            }
            try prepare()
            let applied = try appliedRepo(name)
            var fetch = ["fetch", "-q", "--no-tags", "--prune"]
            if let uid = managerUID() {
                // upload-pack runs as the manager's uid: it can read only what the manager can.
                fetch += ["--upload-pack", "/usr/bin/setpriv --reuid=\(uid) --regid=\(uid) --clear-groups -- git-upload-pack"]
            }
            fetch += [layout.proposedConfig(name).path, "+refs/heads/*:refs/proposed/heads/*"]
            do { try git.run(fetch, in: applied) } catch {
                throw CoreError("could not read the config repo of \(name): \(error)")
            }
            let sha: String
            do {
                sha = try git.run(["rev-parse", "--verify", "--quiet", "\(ref.lowercased())^{commit}"], in: applied)
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            } catch {
                throw RequestError("commit \(ref) is not on any branch of \(name)'s config repo (or is ambiguous); commit it to a branch and give its hash")
            }
            let base = deployedSHA(name) ?? Self.emptyTree
            // agent.json is the whole config: the operator sees its diff and nothing that could push it out
            // of view; as text, whatever attributes the repo sets.
            var diff = try git.run(["diff", "--no-color", "--no-ext-diff", "--text", "--no-textconv", base, sha, "--", AgentConfig.fileName], in: applied)
            if diff.isEmpty { diff = "(\(AgentConfig.fileName) is unchanged)\n" }
            if diff.utf8.count > Self.maxDiffBytes {
                diff = String(decoding: diff.utf8.prefix(Self.maxDiffBytes), as: UTF8.self) + "\n… (diff cut at 64 KiB)\n"
            }
            return (sha, diff)
        }
    }

    /// `agent.json` as committed in `sha` of the applied repo.
    func configFile(_ name: AgentName, sha: String) throws -> Data {
        do {
            return Data(try git.run(["show", "\(sha):\(AgentConfig.fileName)"], in: try appliedRepo(name)).utf8)
        } catch {
            throw ConfigError(["commit \(sha.prefix(12)) has no \(AgentConfig.fileName) at the top of the repo"])
        }
    }

    /// The deployed commit (the applied repo's `main`), or nil when nothing was deployed yet.
    func deployedSHA(_ name: AgentName) -> String? {
        let repo = layout.appliedRepo(name)
        guard FileManager.default.fileExists(atPath: repo.appending(path: "HEAD").path) else { return nil }
        return (try? git.run(["rev-parse", "--verify", "--quiet", "refs/heads/main"], in: repo))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func tag(_ name: AgentName, _ tag: String, _ sha: String) throws {
        try lock.withLock { _ in _ = try git.run(["tag", "-f", tag, sha], in: try appliedRepo(name)) }
    }

    /// Makes `sha` the deployed commit.
    func setDeployed(_ name: AgentName, _ sha: String) throws {
        try lock.withLock { _ in _ = try git.run(["update-ref", "refs/heads/main", sha], in: try appliedRepo(name)) }
    }

    /// Tags of the applied repo (for tests and the operator), sorted.
    func tags(_ name: AgentName) -> [String] {
        ((try? git.run(["tag", "--list"], in: layout.appliedRepo(name))) ?? "").split(separator: "\n").map(String.init).sorted()
    }

    private func appliedRepo(_ name: AgentName) throws -> URL {
        let repo = layout.appliedRepo(name)
        if !FileManager.default.fileExists(atPath: repo.appending(path: "HEAD").path) {
            try FileManager.default.createDirectory(at: repo, withIntermediateDirectories: true)
            try git.run(["init", "-q", "--bare", "-b", "main"], in: repo)
        }
        return repo
    }

    /// The applied dir and core's git config; readable by the manager's group only.
    private func prepare() throws {
        try FileManager.default.createDirectory(at: layout.appliedDir, withIntermediateDirectories: true)
        if let uid = managerUID() {
            _ = chown(layout.appliedDir.path, 0, gid_t(uid))
            _ = chmod(layout.appliedDir.path, 0o750)
        }
        if !FileManager.default.fileExists(atPath: layout.appliedDir.appending(path: "core.gitconfig").path) {
            try git.writeConfig()
            _ = chmod(layout.appliedDir.appending(path: "core.gitconfig").path, 0o644)
        }
    }

    static func readme(_ name: AgentName) -> String {
        """
        # Config of \(name)

        `agent.json` is the whole configuration of this agent. Commit a change here, then ask core to
        deploy it with `request_apply_commit(agent: "\(name)", commit_ref: <hash>)`; the operator sees the
        diff and approves or denies it. Only approved commits run.

        | field | meaning |
        |---|---|
        | `model` | claude's model (`sonnet`, `opus`, a full model id) |
        | `description` | one line: what this agent is for |
        | `system_prompt` | appended to claude's system prompt |
        | `allowed_recipients` | agent names it may message, or `"*"`; `manager` and `operator` always |
        | `mcp_servers` | extra MCP servers: `{"name": {"command": "...", "args": [], "env": {}}}` |
        | `env` | extra environment variables for claude (not `HOME`, `PATH` or `HIVE_*`) |
        | `network` | `"gated"` (new agents): loopback only in the cage, out through the hive's gateway (the model with the credential added there, the forge, and `egress.allow`); `"host"`: the host's network and the credential in claude's environment; `"none"`: nothing, not even the model |
        | `egress` | for `gated`: `{"allow": ["pypi.org", "*.pythonhosted.org", "http://deb.debian.org"], "mb_per_minute": 600, "connections": 32}`; HTTPS to the listed hosts (`*.x` for hosts under x), plain HTTP only where written `http://`, addresses only where listed; names are resolved by the hive and private addresses refused |
        | `models` | models the gateway lets claude use besides `model` (`["haiku"]`: claude's background calls); aliases cover their family |
        | `limits` | `{"memory_mb": 2048, "pids": 512, "disk_mb": 4096}`: memory and pids through cgroups where the host has them; disk measured by core, which parks the agent past it |
        | `reminders` | `{"cap": 100, "burst": 20, "refill_seconds": 60}` |
        | `session` | `{"fresh_penalty_tokens": 30000, "turn_timeout_seconds": 1800}`; `cache_ttl_seconds` pins the prompt cache's lifetime (learned otherwise) |

        Unknown fields are refused, and every bad field is named in the failure message.

        """
    }
}
