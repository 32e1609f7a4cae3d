import Foundation
import HiveClient
import HiveWire
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The scripted stand-in for claude (Tests/Fixtures/fake-claude) and `hive agent` processes that run it.
extension LiveHive {
    static var fakeClaude: String {
        URL(filePath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appending(path: "Fixtures/fake-claude").path
    }

    /// Environment for processes that should run the stand-in: its state and log live in the temp dir.
    func fakeClaudeEnvironment(script: [String: Any]? = nil, for agent: String = "all") throws -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["HIVE_CLAUDE"] = Self.fakeClaude
        env["FAKE_CLAUDE_HOME"] = dir.appending(path: "fake-home").path
        env["FAKE_CLAUDE_LOG"] = claudeLog.path
        env["CLAUDECODE"] = nil
        env["HIVE_HARNESS_PARK_FLOOR"] = "1" // the stand-in's resets are seconds away; the floor is a minute
        if let script {
            let url = dir.appending(path: "script-\(agent).json")
            try JSONSerialization.data(withJSONObject: script).write(to: url)
            env["FAKE_CLAUDE_SCRIPT"] = url.path
        }
        return env
    }

    var claudeLog: URL { dir.appending(path: "claude.jsonl") }

    /// Every claude invocation so far, as the stand-in logged it.
    func claudeRuns() -> [[String: Any]] {
        guard let text = try? String(contentsOf: claudeLog, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    func runs(of agent: String) -> [[String: Any]] {
        claudeRuns().filter { ($0["cwd"] as? String)?.hasSuffix("/agents/\(agent)/state") == true && $0["refused"] == nil }
    }

    /// Starts `hive agent` for `name` on the stand-in, with fast test timings.
    @discardableResult
    func startAgent(_ name: String, script: [String: Any]? = nil, extra: [String] = []) throws -> Process {
        let p = Process()
        p.executableURL = Self.binary
        p.arguments = ["agent", "--name", name, "--root", root.path, "--run-dir", runDir.path,
                       "--failure-backoff", "0.2", "--rate-limit-jitter", "0.2", "--log-level", "debug"] + extra
        p.environment = try fakeClaudeEnvironment(script: script, for: name)
        let log = dir.appending(path: "agent-\(name).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        agents.append(p)
        return p
    }

    /// Waits until `condition` holds, polling (a test helper, not product code), or fails after `timeout`.
    func eventually(_ what: String, timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("timed out waiting until \(what)")
        throw CancellationError()
    }

    /// The first message waiting for `agent` whose body contains `text` (other notices, such as
    /// `spawned`, may come first).
    func message(to agent: String, containing text: String) async throws -> MessageView? {
        try await self.agent(agent).call(RecvCommand(max: 32)).messages.first { $0.body.contains(text) }
    }

    func agentRow(_ name: String) async throws -> AgentSummary? {
        try await admin().call(ListCommand()).agents.first { $0.name == name }
    }

    /// Processes whose parent is `pid` (every thread's children), from /proc.
    static func children(of pid: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { child in
            guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == pid
        }
    }

    /// Turn-stats rows of an agent, straight from its sqlite file.
    func turnStats(_ name: String) throws -> [[String: String]] {
        try sqlite("agents/\(name)/harness/turn-stats.sqlite", "SELECT * FROM turn ORDER BY id")
    }

    /// Rows of a query on a database under the root, through the sqlite3 shell.
    func sqlite(_ relativePath: String, _ query: String) throws -> [[String: String]] {
        let p = Process()
        p.executableURL = URL(filePath: "/usr/bin/sqlite3")
        p.arguments = ["-json", root.appending(path: relativePath).path, query]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilGone()
        let rows = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] ?? []
        return rows.map { $0.mapValues { "\($0)" } }
    }
}
