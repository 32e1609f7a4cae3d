import Foundation
import HiveClient
import HiveWire
import ModelStandIn
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The real Claude Code CLI, pinned by `scripts/fetch-claude` (fetched on first use, then cached outside
/// the repo), talking to `ModelStandIn`: only the model is ours.
enum RealClaude {
    static let version = "2.1.332"

    /// The cached CLI's path; fetches it when missing. Throws with the script's output when it cannot.
    static let path: Result<String, FetchError> = {
        let script = URL(filePath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appending(path: "scripts/fetch-claude")
        let p = Process()
        p.executableURL = URL(filePath: "/bin/bash")
        p.arguments = [script.path]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        do { try p.run() } catch { return .failure(FetchError(description: "cannot run \(script.path): \(error)")) }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilGone()
        let path = String(decoding: o, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard p.terminationStatus == 0, FileManager.default.isExecutableFile(atPath: path) else {
            return .failure(FetchError(description: "scripts/fetch-claude failed: \(String(decoding: e, as: UTF8.self))"))
        }
        return .success(path)
    }()

    struct FetchError: Error, CustomStringConvertible { var description: String }

    /// The environment for core (and so for every cage) that points the real CLI at `api`, as an API-key
    /// user (or a subscriber with an OAuth token). Retries are bounded so no test sits out the CLI's own.
    static func environment(api: ModelStandIn, subscriber: Bool = false, extra: [String: String] = [:]) throws -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["HIVE_CLAUDE"] = try path.get()
        env["ANTHROPIC_BASE_URL"] = api.baseURL
        env["ANTHROPIC_API_KEY"] = nil
        env["CLAUDE_CODE_OAUTH_TOKEN"] = nil
        if subscriber { env["CLAUDE_CODE_OAUTH_TOKEN"] = "sk-ant-oat01-test" } else { env["ANTHROPIC_API_KEY"] = "sk-ant-api03-test" }
        env["CLAUDE_CODE_MAX_RETRIES"] = "1"
        env["CLAUDECODE"] = nil
        env.merge(extra) { $1 }
        return env
    }
}

extension LiveHive {
    /// Starts core with bubblewrap cages (or process cages where bubblewrap is missing) whose claude is the
    /// real CLI pointed at `api`.
    func startReal(api: ModelStandIn, subscriber: Bool = false, extra: [String: String] = [:]) async throws {
        let cage = FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") ? "bwrap" : "process"
        try await start(cage: cage, environment: try RealClaude.environment(api: api, subscriber: subscriber, extra: extra))
    }

    /// Spawns each agent and waits (up to 30 s) until its harness reports idle.
    func spawnIdle(_ names: String...) async throws {
        for name in names { try await spawn(name) }
        for name in names {
            try await eventually("\(name) is idle", timeout: .seconds(30)) { try await agentRow(name)?.state == .idle }
        }
    }

    /// The operator's inbox, as `hive inbox` reads it.
    func operatorInbox() async throws -> [MessageView] {
        try await admin().call(InboxCommand()).messages
    }
}
