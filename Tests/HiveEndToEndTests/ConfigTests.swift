import Foundation
import HiveClient
import HiveHost
import HiveWire
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Git in a test: the proposed repos may belong to the manager's uid, so ownership checks are off here
/// (only here: core itself reads them as the manager's uid).
@discardableResult
func git(_ args: [String], in dir: URL) throws -> String {
    let r = try ChildProcess.run("/usr/bin/git", ["-c", "safe.directory=*", "-c", "user.name=manager", "-c", "user.email=m@hive.invalid",
                                                  "-C", dir.path] + args)
    guard r.status == 0 else { throw HiveClientError.protocolError("git \(args.joined(separator: " ")) failed: \(r.lastError)") }
    return r.text.trimmingCharacters(in: .whitespacesAndNewlines)
}

extension LiveHive {
    var manager: HiveConnection { get throws { try agent("manager") } }

    /// Writes `agent.json` in the agent's proposed repo and commits it, as the manager would; returns the hash.
    func commitConfig(_ agent: String, _ json: String, message: String = "change") throws -> String {
        let repo = root.appending(path: "agents/\(agent)/config")
        try Data(json.utf8).write(to: repo.appending(path: "agent.json"))
        try git(["commit", "-q", "-am", message], in: repo)
        return try git(["rev-parse", "HEAD"], in: repo)
    }

    func appliedTags(_ agent: String) throws -> [String] {
        try git(["tag", "--list"], in: root.appending(path: "applied/\(agent)")).split(separator: "\n").map(String.init).sorted()
    }

    /// init_config → approve → commit `json` → apply → approve: the two approvals that bring an agent to life.
    func deploy(_ agent: String, _ json: String) async throws -> ApprovalView {
        let initRequest = try await manager.call(RequestInitConfigCommand(name: agent, description: "a test agent")).approval
        _ = try await admin().call(ApproveCommand(id: initRequest.id))
        let sha = try commitConfig(agent, json)
        let apply = try await manager.call(RequestApplyCommitCommand(agent: agent, commitRef: sha)).approval
        return try await admin().call(ApproveCommand(id: apply.id)).approval
    }

    func managerHeard(_ text: String) -> Bool {
        runs(of: "manager").contains { ($0["prompt"] as? String)?.contains(text) == true }
    }
}

@Suite("Config approvals", .timeLimit(.minutes(3)))
struct ConfigTests {
    @Test("init → seed → commit → apply → approve → deployed: the new agent runs with its config; a bad config fails and the old one keeps running; deny")
    func approvalFlow() async throws {
        let hive = try LiveHive()
        try await hive.start(cage: "process", environment: try hive.fakeClaudeEnvironment())

        // 1. init_config: queued, shown to the operator, seeded on approval, the manager told.
        let initRequest = try await hive.manager.call(RequestInitConfigCommand(name: "iris", description: "tests things")).approval
        #expect(initRequest.state == .pending && initRequest.kind == .initConfig)
        #expect(try hive.cli(["pending"]).out.contains("#\(initRequest.id) init_config iris — pending"))
        let seeded = try hive.cli(["approve", "\(initRequest.id)"])
        #expect(seeded.status == 0 && seeded.out.contains("deployed"))
        let repo = hive.root.appending(path: "agents/iris/config")
        let template = try AgentConfig.parse(Data(contentsOf: repo.appending(path: "agent.json")))
        #expect(template.description == "tests things")
        try await hive.eventually("the manager heard config_ready") { hive.managerHeard("config_ready: approval \(initRequest.id) approved") }

        // 2. apply_commit of a real commit, by its short hash: diffed, tagged, approved, deployed.
        let sha = try hive.commitConfig("iris", """
            {"model": "opus", "description": "tests things", "system_prompt": "Be brief.", "allowed_recipients": ["manager"]}
            """)
        let apply = try await hive.manager.call(RequestApplyCommitCommand(agent: "iris", commitRef: String(sha.prefix(8)), description: "first config")).approval
        #expect(apply.commit == sha)
        #expect(apply.diff?.contains("+{\"model\": \"opus\"") == true)
        #expect(apply.diff?.contains("README") == false, "only agent.json, the whole config, is shown")
        #expect(try hive.appliedTags("iris") == ["proposal/\(apply.id)"])
        #expect(try await hive.agentRow("iris") == nil, "nothing runs before the operator approves")
        let deployed = try await hive.admin().call(ApproveCommand(id: apply.id)).approval
        #expect(deployed.state == .deployed)
        #expect(try hive.appliedTags("iris") == ["approved/\(apply.id)", "deployed/\(apply.id)", "proposal/\(apply.id)"])
        #expect(try git(["rev-parse", "main"], in: hive.root.appending(path: "applied/iris")) == sha)
        try await hive.eventually("iris is up") { try await hive.agentRow("iris")?.state == .idle }
        #expect(try await hive.agentRow("iris")?.description == "tests things")

        // It runs with that config: model, prompt addition, allowed recipients enforced in core.
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "hello"))
        try await hive.eventually("iris ran a turn") { !hive.runs(of: "iris").isEmpty }
        let argv = hive.runs(of: "iris")[0]["argv"] as? [String] ?? []
        #expect(argv.firstIndex(of: "--model").map { argv[$0 + 1] } == "opus")
        let appended = argv.firstIndex(of: "--append-system-prompt").map { argv[$0 + 1] } ?? ""
        #expect(appended.hasSuffix("\n\nBe brief."), "the config's addition comes last")
        #expect(appended.contains("/shared/docs.git"), "every agent is told about the forge and shared/docs")
        _ = try await hive.spawn("bob")
        let iris = try hive.agent("iris")
        let refused = try await iris.raw(#"{"cmd":"send","to":"bob","body":"hi"}"#)
        #expect(refused["ok"] as? Bool == false)
        #expect((refused["error"] as? String)?.contains("iris may not message bob") == true)
        #expect(try await iris.raw(#"{"cmd":"send","to":"*","body":"hi all"}"#)["ok"] as? Bool == false)
        #expect(try await iris.call(SendCommand(to: "operator", body: "always reachable")).recipients == ["operator"])
        // Only the manager's socket takes config requests.
        let notManager = try await iris.raw(#"{"cmd":"request_init_config","name":"eve"}"#)
        #expect((notManager["error"] as? String)?.contains("unknown command 'request_init_config'") == true)

        // 3. A bad config: approved, fails its checks, tagged failed; the old one keeps running.
        let pidBefore = harnessPIDs(hive, "iris")
        let bad = try hive.commitConfig("iris", #"{"model": "opus", "network": "wifi", "limits": {"pids": 2}}"#)
        let badRequest = try await hive.manager.call(RequestApplyCommitCommand(agent: "iris", commitRef: bad)).approval
        let badResult = try hive.cli(["approve", "\(badRequest.id)"])
        #expect(badResult.status == 2 && badResult.out.contains("failed"))
        let failed = try #require(try await hive.admin().call(PendingCommand(all: true)).approvals.first { $0.id == badRequest.id })
        #expect(failed.state == .failed)
        #expect(failed.note?.contains("network: must be \"gated\", \"host\" or \"none\"") == true)
        #expect(failed.note?.contains("limits.pids") == true)
        #expect(try hive.appliedTags("iris").contains("failed/\(badRequest.id)"))
        #expect(!(try hive.appliedTags("iris")).contains("deployed/\(badRequest.id)"))
        #expect(try git(["rev-parse", "main"], in: hive.root.appending(path: "applied/iris")) == sha, "main still the deployed commit")
        #expect(harnessPIDs(hive, "iris") == pidBefore, "the running cage was not touched")
        try await hive.eventually("the manager heard of the failure") { hive.managerHeard("approval \(badRequest.id) was approved but failed") }

        // 4. Deny, with a note the manager gets.
        let other = try hive.commitConfig("iris", #"{"model": "haiku"}"#)
        let denyRequest = try await hive.manager.call(RequestApplyCommitCommand(agent: "iris", commitRef: other)).approval
        #expect(try hive.cli(["deny", "\(denyRequest.id)", "--note", "not today"]).status == 0)
        #expect(try await hive.admin().call(PendingCommand()).approvals.isEmpty)
        try await hive.eventually("the manager heard the denial") { hive.managerHeard("was denied: not today") }
        #expect(try await hive.admin().raw(#"{"cmd":"approve","id":\#(denyRequest.id)}"#)["error"] as? String == "approval \(denyRequest.id) is denied, not pending: nothing to do")

        // 5. A model the operator set at runtime holds until a new config is deployed, which decides again.
        #expect(try hive.cli(["model", "iris", "haiku"]).status == 0)
        #expect(try await hive.agent("iris").call(TurnSettingsCommand()).model == "haiku")
        let next = try hive.commitConfig("iris", #"{"model": "opus", "description": "tests things, v2"}"#)
        let nextRequest = try await hive.manager.call(RequestApplyCommitCommand(agent: "iris", commitRef: next)).approval
        #expect(try await hive.admin().call(ApproveCommand(id: nextRequest.id)).approval.state == .deployed)
        #expect(try await hive.agent("iris").call(TurnSettingsCommand()).model == nil, "the new config's model applies")

        // 6. A purge takes the applied repo and the cage log with it: a new iris starts from nothing.
        #expect(FileManager.default.fileExists(atPath: hive.root.appending(path: "logs/iris.log").path))
        #expect(try hive.cli(["destroy", "iris", "--purge"]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: hive.root.appending(path: "applied/iris").path))
        #expect(!FileManager.default.fileExists(atPath: hive.root.appending(path: "logs/iris.log").path))
    }

    @Test("bad requests are refused with a reason: refs that are not hashes or not on a branch, agents without a repo, duplicates")
    func badRequests() async throws {
        let hive = try LiveHive()
        try await hive.start()
        let manager = try hive.manager
        for ref in ["../../etc", "HEAD", "abc", String(repeating: "a", count: 41), "main; rm -rf /"] {
            let r = try await manager.raw(#"{"cmd":"request_apply_commit","agent":"iris","commit_ref":"\#(ref)"}"#)
            #expect((r["error"] as? String)?.contains("7 to 40 hex digits") == true, "\(ref)")
        }
        let noRepo = try await manager.raw(#"{"cmd":"request_apply_commit","agent":"iris","commit_ref":"deadbeef"}"#)
        #expect((noRepo["error"] as? String)?.contains("no config repo yet") == true)
        for name in ["..", "../x", "operator", "*", "Iris"] {
            let r = try await manager.raw(#"{"cmd":"request_init_config","name":"\#(name)"}"#)
            #expect(r["ok"] as? Bool == false, "\(name)")
        }
        let first = try await manager.call(RequestInitConfigCommand(name: "iris")).approval
        let again = try await manager.raw(#"{"cmd":"request_init_config","name":"iris"}"#)
        #expect((again["error"] as? String)?.contains("approval \(first.id)") == true)
        _ = try await hive.admin().call(ApproveCommand(id: first.id))
        let notOnBranch = try await manager.raw(#"{"cmd":"request_apply_commit","agent":"iris","commit_ref":"deadbeef"}"#)
        #expect((notOnBranch["error"] as? String)?.contains("not on any branch") == true)
        let seededTwice = try await manager.raw(#"{"cmd":"request_init_config","name":"iris"}"#)
        #expect((seededTwice["error"] as? String)?.contains("already has a config repo") == true)
    }

    @Test("the manager tends the others but cannot stop, restart or update itself; destroy and purge refuse traversal names")
    func managerLimits() async throws {
        let hive = try LiveHive()
        try await hive.start(cage: "process", environment: try hive.fakeClaudeEnvironment())
        _ = try await hive.spawn("iris")
        try await hive.eventually("iris up") { try await hive.agentRow("iris")?.state == .idle }
        let manager = try hive.manager
        for cmd in ["stop", "restart", "update"] {
            let r = try await manager.raw(#"{"cmd":"\#(cmd)","name":"manager"}"#)
            #expect((r["error"] as? String)?.contains("the manager cannot \(cmd) itself") == true)
        }
        #expect(try await manager.raw(#"{"cmd":"destroy","name":"iris"}"#)["ok"] as? Bool == false, "no destroy on the manager socket")
        #expect(try await manager.call(StopCommand(name: "iris")).state == .stopped)
        #expect(try await hive.agentRow("iris")?.state == .stopped)
        #expect(try await manager.call(UpdateCommand(name: "iris")).restarted == ["iris"])
        try await hive.eventually("iris is back after the update") { try await hive.agentRow("iris")?.state == .idle }
        try await hive.eventually("the manager heard it was rebuilt") { hive.managerHeard("rebuilt: iris was rebuilt") }
        #expect(try await manager.call(LogsCommand(name: "iris")).lines.contains { $0.contains("iris") })
        #expect(try hive.cli(["logs", "iris", "-n", "5"]).out.split(separator: "\n").count <= 5)

        // destroy / purge: nothing that is not an agent name gets near the file system.
        let before = Set(try FileManager.default.contentsOfDirectory(atPath: hive.root.path))
        for name in ["..", "../..", ".", "/", "", "agents/..", "iris/../..", "manager"] {
            let r = try await hive.admin().raw(#"{"cmd":"destroy","name":"\#(name)","purge":true}"#)
            #expect(r["ok"] as? Bool == false, "destroy '\(name)'")
        }
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: hive.root.path)) == before)
        #expect(FileManager.default.fileExists(atPath: hive.root.appending(path: "agents/manager/state").path))
        #expect(try await hive.agentRow("manager")?.state == .idle)
        // Transients are cleared: a rebuild and a destroy leave plain states behind.
        #expect(try hive.cli(["rebuild", "iris"]).status == 0)
        try await hive.eventually("iris idle after rebuild") { try await hive.agentRow("iris")?.state == .idle }
        #expect(try hive.cli(["destroy", "iris"]).status == 0)
        #expect(try await hive.agentRow("iris")?.state == .destroyed)
        #expect(try hive.cli(["rebuild", "iris"]).err.contains("destroyed"))
    }

    @Test("a crashed cage is marked, restarted, and the manager gets container_crash with the log's last lines")
    func crashWatch() async throws {
        let hive = try LiveHive()
        try await hive.start(cage: "process", environment: try hive.fakeClaudeEnvironment())
        _ = try await hive.spawn("iris")
        try await hive.eventually("iris up") { try await hive.agentRow("iris")?.state == .idle }
        let first = harnessPIDs(hive, "iris")
        for pid in first { kill(pid, SIGKILL) }
        try await hive.eventually("marked crashed") { try await hive.agentRow("iris")?.state == .crashed }
        #expect(try await hive.agentRow("iris")?.detail?.contains("restarting in") == true)
        try await hive.eventually("restarted") {
            let now = harnessPIDs(hive, "iris")
            return !now.isEmpty && now != first
        }
        try await hive.eventually("the manager heard container_crash, with log lines") {
            hive.runs(of: "manager").contains { run in
                let prompt = run["prompt"] as? String ?? ""
                guard prompt.contains("container_crash: the cage of iris was killed by signal 9"),
                      let tail = prompt.components(separatedBy: "Last lines of its log:").last else { return false }
                return tail.contains("iris") // the harness logs its agent's name when it starts
            }
        }
        #expect(!(try hive.cli(["logs", "iris"]).out.isEmpty))
    }

    func harnessPIDs(_ hive: LiveHive, _ name: String) -> [Int32] {
        LiveHive.children(of: hive.process!.processIdentifier).filter { pid in
            ((try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? "").contains("agent\u{0}--name\u{0}\(name)\u{0}")
        }
    }
}
