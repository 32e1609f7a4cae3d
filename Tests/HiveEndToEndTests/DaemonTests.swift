import Foundation
import HiveClient
import HiveTelemetry
import HiveWire
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The core daemon as an operator meets it: boot, restart, crash, CLI, refusals.
@Suite("Core daemon end to end", .timeLimit(.minutes(3)))
struct DaemonTests {
    @Test("kill -9 with messages pending and in flight loses none of them")
    func crashLosesNothing() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("iris")
        let admin = try hive.admin()
        var sent: [Int64] = []
        for i in 0..<50 { sent += try await admin.call(SendCommand(to: "iris", body: "job \(i)")).ids }
        let inflight = try await hive.agent("iris").call(RecvCommand(max: 10)).messages
        #expect(inflight.count == 10)

        hive.kill9()
        try await hive.start()

        let iris = try await hive.admin().call(ListCommand()).agents.first { $0.name == "iris" }
        #expect(iris?.unread == 40)
        #expect(iris?.inflight == 10)
        let c = try hive.agent("iris")
        #expect(try await c.call(RequeueInflightCommand()).requeued == 10)
        var got: [MessageView] = []
        while true {
            let batch = try await c.call(RecvCommand(max: 32)).messages
            if batch.isEmpty { break }
            got += batch
        }
        #expect(got.map(\.id) == sent, "every message, once, in order")
        #expect(got.filter(\.redelivered).map(\.id) == Array(sent.prefix(10)))
        #expect(Set(got.map(\.body)).count == 50)
    }

    @Test("a second core on the same root refuses to start and names the running one")
    func secondCoreRefused() async throws {
        let hive = try LiveHive()
        try await hive.start()
        let pid = hive.process!.processIdentifier
        let second = try hive.launch(["core", "--root", hive.root.path, "--run-dir", hive.dir.appending(path: "run2").path])
        second.waitUntilGone()
        #expect(second.terminationStatus != 0)
        let log = hive.lastLog()
        #expect(log.contains("already owned by a running hive core"))
        #expect(log.contains("pid \(pid)"))
        #expect(try await hive.admin().call(ListCommand()).agents.count == 1, "the first core is unharmed")
    }

    @Test("SIGTERM stops the core promptly, even with a recv parked, and removes its sockets")
    func gracefulStop() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("iris")
        let iris = try hive.agent("iris")
        let parked = Task { try? await iris.call(RecvCommand(waitSeconds: 120)) }
        try await Task.sleep(for: .milliseconds(200))
        let start = ContinuousClock.now
        let status = await hive.terminate(timeout: .seconds(15))
        #expect(status == 0)
        #expect(ContinuousClock.now - start < .seconds(10))
        parked.cancel()
        #expect(!FileManager.default.fileExists(atPath: hive.adminSocket))
        #expect(!FileManager.default.fileExists(atPath: hive.agentSocket("iris")))
    }

    @Test("the registry survives restarts; the manager is registered on first boot")
    func registryPersists() async throws {
        let hive = try LiveHive()
        try await hive.start()
        #expect(try await hive.admin().call(ListCommand()).agents.map(\.name) == ["manager"])
        try await hive.spawn("iris")
        #expect(await hive.terminate() == 0)
        try await hive.start()
        #expect(try await hive.admin().call(ListCommand()).agents.map(\.name) == ["iris", "manager"])
        #expect(try await hive.agent("iris").call(WhoamiCommand()).name == "iris", "its socket is back without a process behind it")
    }

    @Test("sockets: admin and agent sockets are mode 0660; list shows who is connected")
    func sockets() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("iris")
        for path in [hive.adminSocket, hive.agentSocket("iris"), hive.agentSocket("manager")] {
            let attrs = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attrs[.posixPermissions] as? Int) == 0o660, "\(path)")
        }
        #expect(try await hive.admin().call(ListCommand()).agents.first { $0.name == "iris" }?.state == .stopped)
        let iris = try hive.agent("iris")
        _ = try await iris.call(WhoamiCommand())
        #expect(try await hive.admin().call(ListCommand()).agents.first { $0.name == "iris" }?.state == .running)
    }

    @Test("names that are reserved or could leave the hive are refused, and nothing is touched")
    func refusedNames() async throws {
        let hive = try LiveHive()
        try await hive.start()
        for bad in ["..", "../x", "/etc", "", "Iris", "operator", "manager", "*", "a/b"] {
            let cli = try hive.cli(["spawn", bad])
            #expect(cli.status != 0, "hive spawn '\(bad)' must fail")
            #expect(!cli.err.isEmpty)
            let r = try await hive.admin().raw(#"{"cmd":"spawn","name":"\#(bad)"}"#)
            #expect(r["ok"] as? Bool == false)
        }
        for bad in ["..", ".", "/", "../..", "agents"] {
            let r = try await hive.admin().raw(#"{"cmd":"destroy","name":"\#(bad)","purge":true}"#)
            #expect(r["ok"] as? Bool == false, "destroy '\(bad)' must be refused")
        }
        #expect(FileManager.default.fileExists(atPath: hive.root.appending(path: "broker.sqlite").path), "the hive root is intact")
        #expect(try await hive.admin().call(ListCommand()).agents.map(\.name) == ["manager"])
        let refusal = try hive.cli(["spawn", ".."])
        #expect(refusal.err.contains("not a valid agent name"))
    }

    @Test("operator CLI: ls, send, inbox, spawn, destroy")
    func cli() async throws {
        let hive = try LiveHive()
        try await hive.start()
        #expect(try hive.cli(["spawn", "iris"]).status == 0)
        let ls = try hive.cli(["ls", "--json"])
        #expect(ls.status == 0)
        let agents = try JSONSerialization.jsonObject(with: Data(ls.out.utf8)) as? [[String: Any]]
        #expect(agents?.compactMap { $0["name"] as? String } == ["iris", "manager"])
        #expect(agents?.first?["state"] as? String == "stopped")
        #expect(agents?.first?["unread"] as? Int == 0)

        let send = try hive.cli(["send", "iris", "from the shell"])
        #expect(send.status == 0)
        #expect(try hive.cli(["ls"]).out.contains("iris"))
        let got = try await hive.agent("iris").call(RecvCommand()).messages
        #expect(got.first?.body == "from the shell")

        _ = try await hive.agent("iris").call(SendCommand(to: "operator", body: "done", inReplyTo: got.first?.id))
        let inbox = try hive.cli(["inbox", "--json"])
        let messages = try JSONSerialization.jsonObject(with: Data(inbox.out.utf8)) as? [[String: Any]]
        #expect(messages?.first?["body"] as? String == "done")
        #expect(messages?.first?["in_reply_to"] as? Int == Int(got.first?.id ?? -1))

        let bad = try hive.cli(["send", "ghost", "hello"])
        #expect(bad.status != 0)
        #expect(bad.err.contains("unknown recipient 'ghost'"))

        #expect(try hive.cli(["destroy", "manager"]).err.contains("cannot be destroyed"))
        #expect(try hive.cli(["destroy", "iris"]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: hive.agentSocket("iris")))
        #expect(FileManager.default.fileExists(atPath: hive.root.appending(path: "agents/iris/state").path), "a tombstone keeps its state")
        #expect(try await hive.admin().call(ListCommand()).agents.first?.state == .destroyed)
        #expect(try hive.cli(["destroy", "iris", "--purge"]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: hive.root.appending(path: "agents/iris").path))
        #expect(try hive.cli(["spawn", "iris"]).status == 0, "a purged name can be reused")

        let down = try hive.cli(["ls", "--run-dir", hive.dir.appending(path: "nowhere").path])
        #expect(down.status != 0)
        #expect(down.err.contains("cannot reach the hive"))
    }

    @Test("the broker's WAL stays small under a burst of sends")
    func walStaysSmall() async throws {
        let hive = try LiveHive()
        try await hive.start()
        let connections = try (0..<4).map { _ in try hive.admin() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for c in connections {
                group.addTask { for i in 0..<600 { _ = try await c.call(SendCommand(to: "manager", body: "load \(i)")) } }
            }
            try await group.waitForAll()
        }
        // Each send writes about five WAL pages: 2400 sends unchecked would leave a WAL of ~48 MB.
        let wal = try FileManager.default.attributesOfItem(atPath: hive.root.appending(path: "broker.sqlite-wal").path)
        let bytes = (wal[.size] as? Int) ?? 0
        #expect(bytes < 16 << 20, "WAL is \(bytes) bytes")
        #expect(try await hive.agent("manager").call(StatusCommand()).unread == 2400)
    }

    @Test("messages handed to an agent that then vanished are put back in its inbox")
    func inflightWatchdog() async throws {
        let hive = try LiveHive()
        try await hive.start(extra: ["--inflight-grace", "1"])
        try await hive.spawn("iris")
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "popped and abandoned"))
        do {
            let c = try hive.agent("iris")
            #expect(try await c.call(RecvCommand()).messages.count == 1)
            c.hangUp()
        }
        try await hive.eventually("requeued", timeout: .seconds(15)) {
            let row = try await hive.agentRow("iris")
            return row?.unread == 1 && row?.inflight == 0
        }
        #expect(try await hive.agent("iris").call(RecvCommand()).messages.first?.redelivered == true)
    }

    @Test("each harness sweeps its own old telemetry when it starts, with the windows core passes; core opens none of it")
    func telemetryRetention() async throws {
        let hive = try LiveHive()
        try await hive.start()
        try await hive.spawn("iris")
        #expect(await hive.terminate() == 0)
        let harness = hive.root.appending(path: "agents/iris/harness")
        let now = Date().timeIntervalSince1970
        do {
            let events = try EventStore(path: harness.appending(path: "events.sqlite").path)
            for i in 0..<1500 { try events.append(kind: "stdout", body: "old \(i)", turn: 1, at: now - 8 * 86400) }
            try events.append(kind: "stdout", body: "recent", turn: 2, at: now - 3600)
        }
        try await hive.start(cage: "process", environment: try hive.fakeClaudeEnvironment())
        try await hive.eventually("old events are gone") {
            try EventStore(path: harness.appending(path: "events.sqlite").path).events(after: 0).map(\.body).filter { !$0.hasPrefix("{") } == ["recent"]
        }
    }

    @Test("a run dir too long for unix sockets is refused with the path named")
    func longRunDir() async throws {
        let hive = try LiveHive()
        let long = hive.dir.appending(path: String(repeating: "r", count: 90)).path
        let p = try hive.launch(["core", "--root", hive.root.path, "--run-dir", long])
        p.waitUntilGone()
        #expect(p.terminationStatus != 0)
        #expect(hive.lastLog().contains("unix sockets allow at most 107"))
    }
}

extension LiveHive {
    /// Starts `hive up` on this temp root; stdout comes back as a pipe.
    func up(_ extra: [String] = []) throws -> (Process, Pipe) {
        let p = Process()
        p.executableURL = LiveHive.binary
        p.arguments = ["up", "--root", root.path, "--forge-listen", "127.0.0.1:0", "--listen", "127.0.0.1:\(LiveHive.freePort())"] + extra
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        p.environment = ProcessInfo.processInfo.environment.merging(["HIVE_UID_REGISTRY": uidRegistry.path]) { $1 }
        try p.run()
        return (p, out)
    }
}

@Suite("hive up", .timeLimit(.minutes(1)))
struct UpTests {
    @Test("hive up starts a hive on a fresh root, says how to use it, and stops cleanly on Ctrl-C")
    func up() async throws {
        let hive = try LiveHive()
        let (p, out) = try hive.up()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        var banner = Data()
        while !String(decoding: banner, as: UTF8.self).contains("Ctrl-C stops the hive") {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            banner += chunk
        }
        let text = String(decoding: banner, as: UTF8.self)
        #expect(text.contains("admin socket \(hive.root.path)/run/host.sock"))
        #expect(text.contains("export HIVE_RUN_DIR=\(hive.root.path)/run"))
        #expect(text.contains("agents       manager"))

        let admin = try HiveConnection(path: hive.root.appending(path: "run/host.sock").path)
        #expect(try await admin.call(ListCommand()).agents.map(\.name) == ["manager"])

        // Finding 8: the dashboard is started again when it dies (an agent's page must not take it away).
        let port = try #require(text.firstMatch(of: /http:\/\/127\.0\.0\.1:(\d+)\/login/).flatMap { Int($0.1) })
        try await hive.eventually("the dashboard answers") { (try? TCPHTTP.request(port, "GET", "/login", readFor: .seconds(2)))?.status == 200 }
        let web = try #require(AdversaryTests.children(of: p.processIdentifier).first { AdversaryTests.commandLine($0).contains("\u{0}web\u{0}") },
                               "\(AdversaryTests.children(of: p.processIdentifier).map(AdversaryTests.commandLine))")
        kill(web, SIGKILL)
        try await hive.eventually("the dashboard is back") {
            AdversaryTests.children(of: p.processIdentifier).contains { $0 != web && AdversaryTests.commandLine($0).contains("\u{0}web\u{0}") }
                && (try? TCPHTTP.request(port, "GET", "/login", readFor: .seconds(2)))?.status == 200
        }

        kill(p.processIdentifier, SIGINT)
        p.waitUntilGone()
        #expect(p.terminationStatus == 0)
        #expect(!FileManager.default.fileExists(atPath: hive.root.appending(path: "run/host.sock").path))
    }
}

@Suite("hive up --demo", .timeLimit(.minutes(2)))
struct DemoTests {
    @Test("the demo runs the manager and two agents on a labeled stand-in: messages flow, turns run, stats fill")
    func demo() async throws {
        let hive = try LiveHive()
        let (p, out) = try hive.up(["--demo"])
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        try await hive.eventually("both agents reported to the operator", timeout: .seconds(40)) {
            let inbox = try hive.cli(["inbox", "--json", "--run-dir", hive.root.appending(path: "run").path]).out
            return inbox.contains("alice reports") && inbox.contains("bob reports")
        }
        let banner = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        #expect(banner.contains("DEMO: a scripted stand-in, not Claude"))
        #expect(try hive.turnStats("manager").count >= 3)
        #expect(try hive.turnStats("alice").first?["result_kind"] == "ok")

        // A new agent in two approvals: the operator asks the (demo) manager, approves its init_config,
        // then the commit the manager makes; the agent then runs in its own cage and answers.
        let run = ["--run-dir", hive.root.appending(path: "run").path]
        #expect(try hive.cli(["send", "manager", "new agent iris"] + run).status == 0)
        func pending(_ kind: String) throws -> Int64? {
            let list = try JSONSerialization.jsonObject(with: Data(try hive.cli(["pending", "--json"] + run).out.utf8)) as? [[String: Any]] ?? []
            return list.first { $0["kind"] as? String == kind && $0["state"] as? String == "pending" }?["id"] as? Int64
        }
        try await hive.eventually("the manager asked for init_config", timeout: .seconds(20)) { try pending("init_config") != nil }
        #expect(try hive.cli(["approve", "\(try pending("init_config")!)"] + run).status == 0)
        try await hive.eventually("the manager committed and asked to apply", timeout: .seconds(20)) { try pending("apply_commit") != nil }
        #expect(try hive.cli(["approve", "\(try pending("apply_commit")!)"] + run).out.contains("deployed"))
        #expect(try hive.cli(["send", "iris", "hello iris"] + run).status == 0)
        try await hive.eventually("iris answered", timeout: .seconds(20)) {
            try hive.cli(["inbox", "--json"] + run).out.contains("iris here: done with")
        }

        // A question: the demo opens with one from the manager; the operator answers on the CLI and the
        // manager acknowledges.
        try await hive.eventually("the manager asked a question", timeout: .seconds(20)) {
            try hive.cli(["questions"] + run).out.contains("What should the swarm look at next?")
        }
        let id = try #require(try hive.cli(["questions"] + run).out.firstMatch(of: /#(\d+) manager → operator/)?.1)
        #expect(try hive.cli(["answer", String(id), "--choice", "2"] + run).status == 0)
        try await hive.eventually("the manager got the answer", timeout: .seconds(20)) {
            try hive.cli(["inbox", "--json"] + run).out.contains("Thanks, noted: chose: the tests")
        }
        let corePID = p.processIdentifier
        kill(p.processIdentifier, SIGINT)
        p.waitUntilGone()
        #expect(p.terminationStatus == 0)
        #expect(LiveHive.children(of: corePID).isEmpty)
    }
}
