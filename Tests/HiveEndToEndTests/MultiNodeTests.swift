import Foundation
import HiveClient
import HiveHost
import HiveWire
import PostgresFixture
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A hive on many hosts, on one machine: two `hive core` nodes, each with its own root and run dir, sharing
/// one throwaway PostgreSQL cluster (loopback).
@Suite("A hive on two nodes (PostgreSQL)", .serialized, .timeLimit(.minutes(3)), .enabled(if: PostgresCluster.available))
struct MultiNodeTests {
    /// The cluster with an empty database `hive`, and its URL.
    static func database() throws -> (PostgresCluster, String) {
        let cluster = try PostgresCluster()
        try cluster.createDatabase("hive")
        return (cluster, "postgres://\(cluster.user)@127.0.0.1:\(cluster.port)/hive")
    }

    static func node(_ name: String, _ url: String, lease: Int = 15) async throws -> LiveHive {
        let hive = try LiveHive()
        try await hive.start(extra: ["--database", url, "--node", name, "--node-lease", "\(lease)", "--node-listen", "127.0.0.1:0"])
        return hive
    }

    static func summary(_ hive: LiveHive, _ name: String) async throws -> AgentSummary? {
        try await hive.admin().call(ListCommand()).agents.first { $0.name == name }
    }

    @Test("agents on two nodes message each other (a receiver parked on one node is woken by a send on the other), a broadcast crosses nodes, and every node lists every agent with its node")
    func messagingAcrossNodes() async throws {
        let (cluster, url) = try Self.database()
        let a = try await Self.node("a", url), b = try await Self.node("b", url)
        defer { withExtendedLifetime((cluster, a, b)) {} }
        _ = try await a.admin().call(SpawnCommand(name: "alpha", node: "a"))
        _ = try await b.admin().call(SpawnCommand(name: "beta", node: "b"))
        #expect(FileManager.default.fileExists(atPath: a.agentSocket("alpha")) && !FileManager.default.fileExists(atPath: a.agentSocket("beta")),
                "each node serves the sockets of its own agents only")
        #expect(FileManager.default.fileExists(atPath: b.agentSocket("beta")))
        #expect(FileManager.default.fileExists(atPath: a.agentSocket("manager")) && !FileManager.default.fileExists(atPath: b.agentSocket("manager")),
                "the manager is served by the node that made the hive, from its first boot")
        _ = try await a.agent("manager").call(SendCommand(to: "beta", body: "welcome, from the manager on node a"))
        #expect(try await b.agent("beta").call(RecvCommand(max: 10)).messages.map(\.from) == ["manager"])

        let beta = try b.agent("beta")
        async let parked = beta.call(RecvCommand(waitSeconds: 20, max: 10))
        try await Task.sleep(for: .milliseconds(300))
        let sent = ContinuousClock.now
        _ = try await a.agent("alpha").call(SendCommand(to: "beta", body: "hello from node a"))
        let got = try await parked.messages
        #expect(got.map(\.body) == ["hello from node a"] && got.first?.from == "alpha")
        #expect(ContinuousClock.now - sent < .seconds(3), "woken by the send, not by its 20 s wait")

        // Listed on either node, each agent with its node; the manager lives on the node that made the hive.
        for hive in [a, b] {
            let agents = try await hive.admin().call(ListCommand()).agents
            #expect(agents.first { $0.name == "alpha" }?.node == "a" && agents.first { $0.name == "beta" }?.node == "b")
            #expect(agents.first { $0.name == "manager" }?.node == "a")
            #expect(!agents.contains { $0.state == .nodeDown }, "both nodes send heartbeats")
        }
        let table = try b.cli(["ls"]).out
        #expect(table.contains("NODE") && table.contains("alpha"), "\(table)")

        // The operator's broadcast from node b reaches alpha, parked on node a.
        let alpha = try a.agent("alpha")
        async let onA = alpha.call(RecvCommand(waitSeconds: 20, max: 10))
        try await Task.sleep(for: .milliseconds(300))
        #expect(try b.cli(["send", "*", "all hands"]).status == 0)
        #expect(try await onA.messages.map(\.body) == ["all hands"])
    }

    @Test("kill -9 of the node holding the duties: the other takes them within seconds and a reminder fires once; the dead node's agents show node_down and their messages wait until it is back")
    func dutyHolderDies() async throws {
        let (cluster, url) = try Self.database()
        let a = try await Self.node("a", url, lease: 10) // first up: holds every duty
        let b = try await Self.node("b", url, lease: 10)
        defer { withExtendedLifetime((cluster, a, b)) {} }
        _ = try await a.admin().call(SpawnCommand(name: "alpha", node: "a"))
        _ = try await b.admin().call(SpawnCommand(name: "beta", node: "b"))
        _ = try await b.agent("beta").call(RemindCommand(message: "check the build", delaySeconds: 3))
        a.kill9()
        let killed = ContinuousClock.now
        // Fired by node b, which took the duty when a's session died.
        let beta = try b.agent("beta")
        let got = try await beta.call(RecvCommand(waitSeconds: 15, max: 10)).messages
        #expect(got.count == 1 && got.first?.from == "reminder" && got.first?.body.contains("check the build") == true, "\(got)")
        #expect(ContinuousClock.now - killed < .seconds(8), "taken over within seconds")
        _ = try await beta.call(AckTurnCommand(ids: got.map(\.id)))
        #expect(try await beta.call(RecvCommand(waitSeconds: 3, max: 10)).messages.isEmpty, "fired once")

        // node a is gone: alpha shows node_down on b once a's heartbeat is older than its lease; a message to it waits.
        var state: AgentState?
        let deadline = ContinuousClock.now + .seconds(25)
        while state != .nodeDown, ContinuousClock.now < deadline {
            state = try await Self.summary(b, "alpha")?.state
            if state != .nodeDown { try await Task.sleep(for: .milliseconds(250)) }
        }
        #expect(state == .nodeDown)
        #expect(try b.cli(["send", "alpha", "waiting for you"]).status == 0, "a send to an agent of a node that is down is stored, not refused")

        // The dashboard of node b (a real browser): the node list with a down and b up, alpha node_down on a.
        if FirstScreenTests.chromium != nil {
            let (_, port) = try await b.startWeb()
            let dom = try FirstScreenTests.chrome(b, "http://127.0.0.1:\(port)/login?token=\(try b.dashboardToken())", size: (1280, 900), "--dump-dom")
            let nodes = try #require(dom.range(of: "id=\"nodes\"").map { String(dom[$0.upperBound...].prefix(2000)) }, "the node list is on the page")
            #expect(nodes.range(of: #"<td>a</td>.*?badge bad">down<"#, options: .regularExpression) != nil, "\(nodes.prefix(600))")
            #expect(nodes.range(of: #"<td>b</td>.*?badge idle">up<"#, options: .regularExpression) != nil, "\(nodes.prefix(600))")
            let agents = try #require(dom.range(of: "id=\"agents\"").map { String(dom[$0.upperBound...].prefix(4000)) })
            #expect(agents.range(of: #"(?s)>alpha</a>(?:(?!</tr>).)*?<td>a</td>(?:(?!</tr>).)*?badge node_down"#, options: .regularExpression) != nil, "\(agents.prefix(800))")
        }

        // Node a comes back: alpha is served again and finds the message that waited.
        try await a.start(extra: ["--database", url, "--node", "a", "--node-lease", "10", "--node-listen", "127.0.0.1:0"])
        let back = try await a.agent("alpha").call(RecvCommand(waitSeconds: 10, max: 10)).messages
        #expect(back.map(\.body) == ["waiting for you"])
        #expect(try await Self.summary(b, "alpha")?.state != .nodeDown)
    }

    @Test("spawn on another node: that node brings the agent up by itself; hive nodes lists both up; a verb for an agent of another node is refused with its node named; destroyed, its node stops serving it")
    func placement() async throws {
        let (cluster, url) = try Self.database()
        let a = try await Self.node("a", url), b = try await Self.node("b", url)
        defer { withExtendedLifetime((cluster, a, b)) {} }
        let placed = try await a.admin().call(SpawnCommand(name: "gamma", node: "b"))
        #expect(placed.node == "b" && placed.socket.isEmpty)
        let deadline = ContinuousClock.now + .seconds(10)
        while !FileManager.default.fileExists(atPath: b.agentSocket("gamma")), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(FileManager.default.fileExists(atPath: b.agentSocket("gamma")), "node b took up the agent placed on it")
        #expect(!FileManager.default.fileExists(atPath: a.agentSocket("gamma")))
        _ = try await b.agent("gamma").call(SendCommand(to: "operator", body: "up on b"))

        let nodes = try await b.admin().call(NodesCommand())
        #expect(nodes.here == "b" && nodes.nodes.map(\.name) == ["a", "b"] && nodes.nodes.allSatisfy(\.up))
        #expect(nodes.nodes.first { $0.name == "b" }?.agents == 1)
        let listed = try b.cli(["nodes"]).out
        #expect(listed.contains("b *") && listed.contains("up"), "\(listed)")

        let refused = try a.cli(["stop", "gamma"])
        #expect(refused.status != 0 && refused.err.contains("node b"), "\(refused.err)")
        await #expect(throws: (any Error).self, "a node that does not exist is refused") {
            try await a.admin().call(SpawnCommand(name: "delta", node: "nowhere"))
        }
        #expect(try b.cli(["destroy", "gamma"]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: b.agentSocket("gamma")))
        #expect(try await Self.summary(a, "gamma")?.state == .destroyed)
    }

    /// The `hive agent` children a core runs (its cages, --cage process).
    static func cages(of hive: LiveHive) -> [Int32] {
        guard let pid = hive.process?.processIdentifier,
              let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return [] }
        // Each thread's children (core launches cages from several threads).
        let text = tasks.compactMap { try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/children", encoding: .utf8) }.joined(separator: " ")
        return text.split(separator: " ").compactMap { Int32($0) }.filter { child in
            ((try? String(contentsOfFile: "/proc/\(child)/cmdline", encoding: .utf8)) ?? "").split(separator: "\0").dropFirst().first == "agent"
        }
    }

    @Test("fencing: a node that cannot reach the database for its lease stops its cages, and starts them again when it is back")
    func fencing() async throws {
        let (cluster, url) = try Self.database()
        let a = try LiveHive()
        defer { withExtendedLifetime((cluster, a)) {} }
        try await a.start(extra: ["--database", url, "--node", "a", "--node-lease", "10", "--node-listen", "127.0.0.1:0"], cage: "process", environment: try a.fakeClaudeEnvironment())
        _ = try await a.admin().call(SpawnCommand(name: "alpha", node: "a"))
        try await a.eventually("alpha's cage runs") { Self.cages(of: a).count == 2 } // the manager's and alpha's
        try cluster.stop()
        let lost = ContinuousClock.now
        try await a.eventually("the cages stop once the lease is about to run out", timeout: .seconds(25)) { Self.cages(of: a).isEmpty }
        let waited = ContinuousClock.now - lost
        #expect(waited >= .seconds(7) && waited < .seconds(14), "stopped one heartbeat before the 10 s lease ran out, not at once and not late: \(waited)")
        try cluster.start()
        try await a.eventually("the cages start again", timeout: .seconds(25)) { Self.cages(of: a).count == 2 }
        try await a.eventually("alpha is listed again") { try await a.agentRow("alpha") != nil }
    }

    @Test("hive move: the cage stops on one node, its state and harness dirs arrive on the other checked, it runs there with its files, a message sent to it then reaches it there; asked on another node, the move is handed to the agent's node; node endpoints refuse a wrong token; another node's dashboard shows its page through its node (a signed ticket for that one agent)")
    func move() async throws {
        let (cluster, url) = try Self.database()
        let a = try LiveHive(), b = try LiveHive()
        defer { withExtendedLifetime((cluster, a, b)) {} }
        for (hive, name) in [(a, "a"), (b, "b")] {
            try await hive.start(extra: ["--database", url, "--node", name, "--node-listen", "127.0.0.1:0"], cage: "process",
                                 environment: try hive.fakeClaudeEnvironment())
        }
        _ = try await a.admin().call(SpawnCommand(name: "alpha", node: "a"))
        try await a.eventually("alpha's cage runs on a") { Self.cages(of: a).count == 2 } // the manager's and alpha's
        let notes = "agents/alpha/state/notes.md"
        let text = "what alpha learnt on node a\n" + String(repeating: "x", count: 300_000) // more than one chunk of the stream
        try text.write(to: a.root.appending(path: notes), atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: a.root.appending(path: "agents/alpha/state/etc").path, withDestinationPath: "/etc")
        let harnessFiles = try FileManager.default.contentsOfDirectory(atPath: a.root.appending(path: "agents/alpha/harness").path).sorted()
        #expect(!harnessFiles.isEmpty, "the harness keeps its files in its dir")

        let moved = try a.cli(["move", "alpha", "--node", "b"])
        #expect(moved.status == 0 && moved.out.contains("moved alpha from node a to node b"), "\(moved)")
        #expect(try String(contentsOf: b.root.appending(path: notes), encoding: .utf8) == text, "the state dir arrived whole")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: b.root.appending(path: "agents/alpha/state/etc").path) == "/etc",
                "a link the agent made stays a link, never followed")
        #expect(Set(harnessFiles).isSubset(of: Set(try FileManager.default.contentsOfDirectory(atPath: b.root.appending(path: "agents/alpha/harness").path))))
        #expect(!FileManager.default.fileExists(atPath: a.root.appending(path: notes).path), "nothing of it stays on the node it left")
        #expect(!FileManager.default.fileExists(atPath: a.agentSocket("alpha")) && FileManager.default.fileExists(atPath: b.agentSocket("alpha")))
        try await b.eventually("alpha's cage runs on b") { Self.cages(of: b).count == 1 }
        #expect(Self.cages(of: a).count == 1, "only the manager's cage is left on a")
        for hive in [a, b] {
            try await hive.eventually("every node lists alpha on b") { try await Self.summary(hive, "alpha")?.node == "b" }
        }
        // Its inbox did not move: a message sent to it now is there for it on b.
        _ = try await a.admin().call(SendCommand(to: "alpha", body: "welcome to node b"))
        try await b.eventually("alpha's harness on b ran a turn on it, in its moved state dir") {
            b.runs(of: "alpha").contains { "\($0)".contains("welcome to node b") }
        }

        // Node a's dashboard shows alpha's page, served on node b (through b's endpoint, with a's ticket), its live stream too.
        let (_, port) = try await a.startWeb()
        let cookie = try a.webCookie(port)
        try await a.eventually("alpha's page answers through node a's dashboard") {
            let page = try TCPHTTP.request(port, "GET", "/agent/alpha/state", headers: ["Cookie": cookie])
            return page.status == 200 && page.body.contains("\"state\"")
        }
        let stream = try TCPHTTP.request(port, "GET", "/agent/alpha/events/stream", headers: ["Cookie": cookie], readFor: .seconds(5)) { $0.contains("data:") }
        #expect(stream.headers["content-type"] == "text/event-stream" && stream.raw.contains("data:"), "\(stream.raw.prefix(300))")
        #expect(stream.headers["content-security-policy"]?.hasPrefix("sandbox") == true)
        // The ticket opens that agent's page there, for the node that signed it, and nothing else.
        let route = try await a.web.call(PageRouteCommand(agent: "alpha"))
        #expect(route.node == "b" && route.via == "a")
        let ticket = try #require(route.ticket), bEndpoint = try #require(route.endpoint)
        func status(_ path: String, via: String, ticket: String, method: String = "GET") throws -> String {
            try ChildProcess.run("/usr/bin/curl", ["-sk", "-X", method, "-o", "/dev/null", "-w", "%{http_code}", "-H", "X-Hive-Node: \(via)", "-H", "X-Hive-Ticket: \(ticket)",
                                                   bEndpoint + path]).text
        }
        #expect(try status("/node/v1/agents/alpha/page/state", via: "a", ticket: ticket) == "200")
        #expect(try status("/node/v1/agents/beta/page/state", via: "a", ticket: ticket) == "401", "another agent's page")
        #expect(try status("/node/v1/agents/alpha/page/state", via: "b", ticket: ticket) == "401", "another node's name")
        #expect(try status("/node/v1/agents/alpha/page/state", via: "a", ticket: "9999999999." + ticket.split(separator: ".")[1]) == "401", "a later expiry")
        #expect(try status("/node/v1/agents/alpha/move", via: "a", ticket: ticket, method: "POST") == "401", "a ticket is no node token")

        // Asked on a while alpha is on b: b does the move, back to a.
        let back = try a.cli(["move", "alpha", "--node", "a"])
        #expect(back.status == 0 && back.out.contains("from node b to node a"), "\(back)")
        #expect(try String(contentsOf: a.root.appending(path: notes), encoding: .utf8) == text)
        try await a.eventually("alpha's cage runs on a again") { Self.cages(of: a).count == 2 }

        // Refusals, with the reason.
        let manager = try a.cli(["move", "manager", "--node", "b"])
        #expect(manager.status != 0 && manager.err.contains("git side"), "\(manager)")
        let nowhere = try a.cli(["move", "alpha", "--node", "nowhere"])
        #expect(nowhere.status != 0 && nowhere.err.contains("no node named 'nowhere'"), "\(nowhere)")
        // The endpoint answers a node with its token only.
        let endpoint = try #require(try await a.admin().call(NodesCommand()).nodes.first { $0.name == "b" }?.endpoint)
        let curl = try ChildProcess.run("/usr/bin/curl", ["-sk", "-o", "/dev/null", "-w", "%{http_code}", "-H", "X-Hive-Node: a",
                                                          "-H", "Authorization: Bearer \(String(repeating: "0", count: 64))", endpoint + "/node/v1/ping"])
        #expect(curl.text == "401", "a wrong token is refused: \(curl.text)")
    }

    @Test("configs across nodes: an approved config of an agent on another node is carried out there (its node enforces it), kept across that node's restart, and comes along when the agent moves to the git node")
    func configsAcrossNodes() async throws {
        let (cluster, url) = try Self.database()
        let a = try LiveHive(), b = try LiveHive()
        defer { withExtendedLifetime((cluster, a, b)) {} }
        let startB = { try await b.start(extra: ["--database", url, "--node", "b", "--node-listen", "127.0.0.1:0"], cage: "process",
                                         environment: try b.fakeClaudeEnvironment()) }
        try await a.start(extra: ["--database", url, "--node", "a", "--node-listen", "127.0.0.1:0"], cage: "process", environment: try a.fakeClaudeEnvironment())
        try await startB()
        _ = try await a.admin().call(SpawnCommand(name: "alpha", node: "a"))
        _ = try await a.admin().call(SpawnCommand(name: "beta", node: "b"))
        try await b.eventually("beta runs on b") { Self.cages(of: b).count == 1 }
        func sendsToAlpha(_ hive: LiveHive) async throws -> Bool {
            try await hive.agent("beta").raw(#"{"cmd":"send","to":"alpha","body":"hi"}"#)["ok"] as? Bool == true
        }
        #expect(try await sendsToAlpha(b), "on defaults beta may write to anyone")

        // The manager and the approvals are on node a; beta's node b carries the config out.
        let approval = try await a.deploy("beta", #"{"model": "opus", "allowed_recipients": ["manager"]}"#)
        #expect(approval.state == .deployed, "\(approval.note ?? "")")
        #expect(try await !sendsToAlpha(b), "node b enforces the config approved on node a")
        #expect(try await b.agent("beta").raw(#"{"cmd":"send","to":"manager","body":"hi"}"#)["ok"] as? Bool == true)
        #expect(try await b.web.call(AgentConfigCommand(agent: "beta")).config.contains("opus"))

        // Node b restarts: it boots beta with the config it was given.
        b.kill9()
        try await startB()
        #expect(try await !sendsToAlpha(b), "kept across node b's restart")

        // Moved to node a, the git node: the config comes along.
        let moved = try a.cli(["move", "beta", "--node", "a"])
        #expect(moved.status == 0, "\(moved)")
        #expect(try await !sendsToAlpha(a), "on node a too")
        #expect(!FileManager.default.fileExists(atPath: b.root.appending(path: "node/configs/beta.json").path), "node b keeps nothing of it")
    }

    @Test("hive move between bubblewrap nodes: packed and unpacked as the agent's uids, never root; on the new node its files belong to a uid of that node's block, and it runs there", .enabled(if: AdversaryTests.bwrapAsRoot))
    func moveInBubblewrap() async throws {
        let (cluster, url) = try Self.database()
        let a = try LiveHive(), b = try LiveHive()
        b.uidRegistry = a.uidRegistry // one host: the second node claims the next uid block
        defer { withExtendedLifetime((cluster, a, b)) {} }
        for (hive, name) in [(a, "a"), (b, "b")] {
            try await hive.start(extra: ["--database", url, "--node", name, "--node-listen", "127.0.0.1:0"], cage: "bwrap",
                                 environment: try hive.fakeClaudeEnvironment())
        }
        _ = try await a.admin().call(SpawnCommand(name: "alpha", node: "a"))
        try await a.eventually("alpha is idle on a", timeout: .seconds(30)) { try await Self.summary(a, "alpha")?.state == .idle }
        func owner(_ url: URL) throws -> Int { try #require(try FileManager.default.attributesOfItem(atPath: url.path)[.ownerAccountID] as? Int) }
        let state = a.root.appending(path: "agents/alpha/state")
        let uidA = try owner(state)
        let notes = state.appending(path: "notes.md")
        try "written by alpha on a".write(to: notes, atomically: true, encoding: .utf8)
        _ = chown(notes.path, uid_t(uidA), gid_t(uidA)); _ = chmod(notes.path, 0o600) // the agent's own, readable by it alone

        let moved = try a.cli(["move", "alpha", "--node", "b"])
        #expect(moved.status == 0, "\(moved)")
        let arrived = b.root.appending(path: "agents/alpha/state/notes.md")
        #expect(try String(contentsOf: arrived, encoding: .utf8) == "written by alpha on a")
        let uidB = try owner(arrived)
        #expect(uidB != uidA && uidB >= 20_000, "a uid of node b's block, not a's (\(uidA)) and never root: \(uidB)")
        #expect(try owner(b.root.appending(path: "agents/alpha/harness")) == uidB)
        try await b.eventually("alpha is idle on b", timeout: .seconds(30)) { try await Self.summary(b, "alpha")?.state == .idle }
    }
}
