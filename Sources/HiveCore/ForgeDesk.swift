import Foundation
import HiveForge
import HiveHost
import HiveWire
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Core's side of the forge: each agent's user and token (issued at spawn, revoked at destroy, kept in
/// `harness/forge-token`), the git settings its cage gets, and the operator's list of repos.
struct ForgeDesk: Sendable {
    let forge: Forge
    let layout: HiveLayout
    /// The uid that should own an agent's token file (nil: core's own).
    let owner: @Sendable (AgentName) -> uid_t?
    let logger: Logger

    static let tokenFile = "forge-token"

    /// Makes sure the agent has a working token in its harness dir.
    func ensureToken(_ name: AgentName) {
        let file = layout.harnessDir(name).appending(path: Self.tokenFile)
        if let current = SafeFile.read(file, max: 256)?.trimmingCharacters(in: .whitespacesAndNewlines),
           (try? forge.store.user(token: current))??.name == name.rawValue {
            return
        }
        do {
            let token = try forge.store.issueToken(name.rawValue)
            let uid = owner(name)
            try SafeFile.replace(file, with: Data((token + "\n").utf8), owner: uid.map { ($0, gid_t($0)) })
        } catch {
            logger.error("forge: could not give \(name) a token: \(error)")
        }
    }

    func revoke(_ name: AgentName) {
        do { try forge.store.revoke(name.rawValue) } catch { logger.error("forge: could not revoke the token of \(name): \(error)") }
    }

    /// What the agent's cage adds to its environment so git reaches the forge with its token.
    func environment(for name: AgentName, caged: Bool) -> [String: String] {
        let file = caged ? "/agents/\(name)/harness/\(Self.tokenFile)" : layout.harnessDir(name).appending(path: Self.tokenFile).path
        return Forge.gitEnvironment(baseURL: forge.baseURL, user: name.rawValue, tokenFile: file)
    }

    func repos() throws -> ForgeReposCommand.Reply {
        let repos = try forge.store.allRepos().map { repo in
            let last = forge.lastCommit(repo)
            return ForgeRepoView(fullName: repo.fullName, description: repo.description, isPrivate: repo.isPrivate,
                                 cloneURL: forge.cloneURL(repo), lastCommit: last?.sha, lastMessage: last?.subject, lastCommitAt: last?.at)
        }
        return .init(url: forge.baseURL, repos: repos)
    }
}

/// Files core writes into or reads from a directory an agent can write: never through a link, and
/// replaced by rename, so an agent cannot aim core's root privileges at a host file.
enum SafeFile {
    static func replace(_ url: URL, with data: Data, owner: (uid_t, gid_t)?) throws {
        let temp = url.deletingLastPathComponent().appending(path: ".\(url.lastPathComponent).\(UUID().uuidString.prefix(8))")
        let fd = open(temp.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CoreError("cannot create \(temp.path): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if let owner { _ = fchown(fd, owner.0, owner.1) }
        close(fd)
        guard written == data.count, rename(temp.path, url.path) == 0 else {
            unlink(temp.path)
            throw CoreError("cannot write \(url.path): \(String(cString: strerror(errno)))")
        }
    }

    /// A small regular file's text, or nil (missing, a link, not a plain file, too big).
    static func read(_ url: URL, max: Int) -> String? {
        let fd = open(url.path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, Int(st.st_size) <= max else { return nil }
        var buf = [UInt8](repeating: 0, count: max)
        let n = Glibc.read(fd, &buf, max)
        return n >= 0 ? String(decoding: buf[..<n], as: UTF8.self) : nil
    }
}
