import Foundation
import HiveClient
import HiveWire
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Lifecycle verbs", .timeLimit(.minutes(3)))
struct LifecycleTests {
    func harnessPIDs(_ hive: LiveHive, _ name: String) -> [Int32] {
        LiveHive.children(of: hive.process!.processIdentifier).filter { pid in
            ((try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? "").contains("agent\u{0}--name\u{0}\(name)\u{0}")
        }
    }

    @Test("stop keeps an agent stopped (also across a core restart) while messages wait; start brings it back")
    func stopStart() async throws {
        let hive = try LiveHive()
        let env = try hive.fakeClaudeEnvironment()
        try await hive.start(cage: "process", environment: env)
        try await hive.spawn("iris")
        try await hive.eventually("iris up") { try await hive.agentRow("iris")?.state == .idle }
        #expect(try hive.cli(["stop", "iris"]).status == 0)
        #expect(try await hive.agentRow("iris")?.state == .stopped)
        #expect(harnessPIDs(hive, "iris").isEmpty)
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "waits for you"))
        #expect(await hive.terminate() == 0)
        try await hive.start(cage: "process", environment: env)
        try await Task.sleep(for: .seconds(1))
        #expect(try await hive.agentRow("iris")?.state == .stopped, "still stopped after a core restart")
        #expect(try await hive.agentRow("iris")?.unread == 1)
        #expect(try hive.cli(["start", "iris"]).status == 0)
        try await hive.eventually("the waiting message was handled", timeout: .seconds(30)) {
            let row = try await hive.agentRow("iris")
            return row?.unread == 0 && row?.inflight == 0 && row?.state == .idle
        }
    }

    @Test("restart replaces the harness without crash noise; restart --all does the manager first and tells it")
    func restart() async throws {
        let hive = try LiveHive()
        try await hive.start(cage: "process", environment: try hive.fakeClaudeEnvironment())
        try await hive.spawn("iris")
        try await hive.eventually("both up") {
            let i = try await hive.agentRow("iris"), m = try await hive.agentRow("manager")
            return i?.state == .idle && m?.state == .idle
        }
        let before = harnessPIDs(hive, "iris")
        #expect(try hive.cli(["restart", "iris"]).status == 0)
        try await hive.eventually("a new harness") {
            let now = harnessPIDs(hive, "iris")
            return !now.isEmpty && now != before
        }
        let all = try await hive.admin().call(RestartCommand(all: true))
        #expect(all.restarted == ["manager", "iris"])
        try await hive.eventually("the manager was told", timeout: .seconds(30)) {
            hive.runs(of: "manager").contains { ($0["prompt"] as? String)?.contains("restarting: planned restart of every agent") == true }
        }
        #expect(!hive.runs(of: "manager").contains { ($0["prompt"] as? String)?.contains("unexpectedly") == true },
                "planned restarts are not reported as crashes")
        #expect(try await hive.admin().raw(#"{"cmd":"restart"}"#)["ok"] as? Bool == false)
    }

    @Test("a tombstone can be revived with its state and inbox; verbs need a cage and a live agent")
    func revive() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("iris")
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "kept"))
        try Data("notes".utf8).write(to: hive.root.appending(path: "agents/iris/state/notes.md"))
        #expect(try hive.cli(["destroy", "iris"]).status == 0)
        #expect(try hive.cli(["revive", "manager"]).err.contains("only a tombstone can be revived"))
        #expect(try hive.cli(["revive", "iris"]).status == 0)
        #expect(try await hive.agent("iris").call(RecvCommand()).messages.first?.body == "kept")
        #expect(FileManager.default.fileExists(atPath: hive.root.appending(path: "agents/iris/state/notes.md").path))
        #expect(try hive.cli(["stop", "iris"]).err.contains("runs no agents (--cage none)"))
    }
}
