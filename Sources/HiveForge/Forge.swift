import Foundation
import HiveHost
import HiveWire
import Logging

/// The hive's private git forge: bare repos under `<root>/forge/repos/<owner>/<name>.git`, its records in
/// `<root>/forge/forge.sqlite`, served over HTTP by ``ForgeServer`` under `/forge/`.
public final class Forge: Sendable {
    public let dir: URL
    public let store: ForgeStore
    /// Where agents and the operator reach it, e.g. `http://127.0.0.1:7001/forge`.
    public let baseURL: String
    let logger: Logger
    /// The organisation every agent reads and the manager and operator write: runbooks, prompts, skills.
    public static let sharedOrg = "shared"
    public static let docsRepo = "docs"
    public static let operatorUser = "operator"

    public init(hiveRoot: URL, baseURL: String, logger: Logger) throws {
        dir = hiveRoot.appending(path: "forge")
        try FileManager.default.createDirectory(at: dir.appending(path: "repos"), withIntermediateDirectories: true)
        chmod(dir.path, 0o700) // tokens' hashes and every repo: core's alone
        store = try ForgeStore(path: dir.appending(path: "forge.sqlite").path)
        self.baseURL = baseURL
        self.logger = logger
    }

    public func repoPath(_ owner: String, _ name: String) -> URL {
        dir.appending(path: "repos").appending(path: owner).appending(path: "\(name).git")
    }

    public func cloneURL(_ repo: ForgeStore.Repo) -> String { "\(baseURL)/\(repo.owner)/\(repo.name).git" }

    /// First boot: the `shared` organisation (every user reads, the manager writes) and `shared/docs`
    /// with a README on what belongs there; the operator's admin token in `<root>/forge/admin-token`.
    public func seed() throws {
        try store.createOrg(Self.sharedOrg, defaultRole: .read)
        try store.setMember(org: Self.sharedOrg, user: AgentName.manager.rawValue, role: .write)
        if try store.repo(owner: Self.sharedOrg, name: Self.docsRepo) == nil {
            let repo = try create(owner: Self.sharedOrg, name: Self.docsRepo, description: "Runbooks, prompts and skills for every agent", isPrivate: true)
            try commitReadme(into: repo)
        }
        let adminFile = dir.appending(path: "admin-token")
        if (try? String(contentsOf: adminFile, encoding: .utf8)).flatMap({ try? store.user(token: $0.trimmingCharacters(in: .whitespacesAndNewlines)) }) == nil {
            let token = try store.issueToken(Self.operatorUser, admin: true)
            try? FileManager.default.removeItem(at: adminFile)
            guard FileManager.default.createFile(atPath: adminFile.path, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
                throw ForgeGit.Failure(description: "cannot write \(adminFile.path)")
            }
        }
    }

    /// The operator's token (for the CLI and the dashboard).
    public func adminToken() -> String? {
        (try? String(contentsOf: dir.appending(path: "admin-token"), encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Records and initialises a bare repo.
    public func create(owner: String, name: String, description: String, isPrivate: Bool) throws -> ForgeStore.Repo {
        let repo = try store.addRepo(owner: owner, name: name, description: description, isPrivate: isPrivate)
        let path = repoPath(owner, name)
        do {
            try FileManager.default.createDirectory(at: path.deletingLastPathComponent(), withIntermediateDirectories: true)
            try ForgeGit.run(["init", "-q", "--bare", "-b", "main", path.path])
            try ForgeGit.run(["-C", path.path, "config", "http.receivepack", "true"])
        } catch {
            try? store.removeRepo(repo.id)
            try? FileManager.default.removeItem(at: path)
            throw error
        }
        logger.info("forge: created \(repo.fullName)")
        return repo
    }

    public func delete(_ repo: ForgeStore.Repo) throws {
        try store.removeRepo(repo.id)
        try? FileManager.default.removeItem(at: repoPath(repo.owner, repo.name))
        logger.info("forge: deleted \(repo.fullName)")
    }

    /// The newest commit on the repo's default branch: hash, subject, unix time (nil when empty).
    public func lastCommit(_ repo: ForgeStore.Repo) -> (sha: String, subject: String, at: Double)? {
        guard let out = try? ForgeGit.run(["-C", repoPath(repo.owner, repo.name).path, "log", "-1", "--format=%H%x00%s%x00%ct"]),
              case let parts = out.trimmingCharacters(in: .newlines).split(separator: "\0", omittingEmptySubsequences: false),
              parts.count == 3 else { return nil }
        return (String(parts[0]), String(parts[1]), Double(parts[2]) ?? 0)
    }

    /// What `user` may do with `repo`.
    public func access(user: String, admin: Bool, to repo: ForgeStore.Repo) throws -> ForgeAccess {
        let isOrg = try store.isOrg(repo.owner)
        return ForgeAccess.level(user: user, admin: admin, owner: repo.owner, ownerIsOrg: isOrg,
                                 role: isOrg ? try store.role(of: user, in: repo.owner) : nil, isPrivate: repo.isPrivate)
    }

    /// The git settings a cage gets so `git clone/push <forge url>` just work: a credential helper that
    /// answers with the agent's name and the token in `tokenFile`.
    public static func gitEnvironment(baseURL: String, user: String, tokenFile: String) -> [String: String] {
        let origin = baseURL.replacingOccurrences(of: "/forge", with: "")
        return [
            "HIVE_FORGE_URL": baseURL,
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "credential.\(origin).helper",
            "GIT_CONFIG_VALUE_0": "!f() { test \"$1\" = get && echo username=\(user) && echo \"password=$(cat \(tokenFile))\"; }; f",
        ]
    }

    private func commitReadme(into repo: ForgeStore.Repo) throws {
        let work = FileManager.default.temporaryDirectory.appending(path: "hive-forge-seed-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        try ForgeGit.run(["init", "-q", "-b", "main", work.path])
        try Data("""
            # shared/docs

            The hive's shared documents, for every agent: runbooks (how to do a recurring job here), prompts
            that worked, skills (step-by-step guides an agent can follow), and notes on this hive's
            conventions. Every agent can clone and pull this repo; the manager and the operator push to it.

            Clone it with `git clone $HIVE_FORGE_URL/shared/docs.git` from inside a cage; no setup needed.
            Keep one topic per file, name files for what they help with, and date what may go stale.

            """.utf8).write(to: work.appending(path: "README.md"))
        try ForgeGit.run(["-C", work.path, "add", "README.md"])
        try ForgeGit.run(["-C", work.path, "-c", "user.name=hive", "-c", "user.email=hive@hive.invalid", "commit", "-q", "-m", "What belongs in shared/docs"])
        try ForgeGit.run(["-C", work.path, "push", "-q", repoPath(repo.owner, repo.name).path, "main"])
    }
}

/// git for the forge's own bookkeeping (init, seed, last commit): no system or user config, no prompts.
enum ForgeGit {
    struct Failure: Error, CustomStringConvertible { let description: String }

    @discardableResult
    static func run(_ args: [String]) throws -> String {
        let result = try ChildProcess.run("/usr/bin/git", args, environment: [
            "PATH": "/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_TERMINAL_PROMPT": "0", "HOME": "/nonexistent", "LC_ALL": "C"])
        guard result.status == 0 else { throw Failure(description: "git \(args.prefix(3).joined(separator: " ")) failed (\(result.status)): \(result.lastError)") }
        return result.text
    }
}
