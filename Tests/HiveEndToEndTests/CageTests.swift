import Foundation
import HiveClient
import HiveWire
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The bubblewrap cage, seen from inside by a stand-in claude that reports what it sees.
@Suite("Bubblewrap cage", .timeLimit(.minutes(2)), .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap")))
struct CageTests {
    /// A probe's `key=value` lines.
    static func fields(_ text: String) -> [String: String] {
        Dictionary(text.split(separator: "\n").compactMap { line -> (String, String)? in
            let parts = line.split(separator: "=", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), String(parts[1]).trimmingCharacters(in: .whitespaces)) : nil
        }, uniquingKeysWith: { $1 })
    }

    @Test("a caged agent sees only its own dirs at /agents/<n>, its own sockets, /shared; runs as an unprivileged uid")
    func isolation() async throws {
        let hive = try LiveHive()
        try await hive.startCaged(probe: """
            #!/bin/sh
            cat > /dev/null
            { echo "uid=$(id -u)"; echo "agents=$(ls /agents | tr '\\n' ' ')"; echo "run=$(ls /run/hive | tr '\\n' ' ')"
              echo "root=$(ls /root 2>/dev/null | wc -l)"; echo "cwd=$(pwd)"; echo "shared=$(touch /shared/from-$(id -u) && echo ok)"
              echo "hostroot=$(ls \(hive.root.path) 2>/dev/null | wc -l)"; echo "usr=$(touch /usr/x 2>/dev/null && echo writable || echo read-only)"; } > probe.txt
            printf '%s\\n' '{"type":"system","subtype":"init","session_id":"p"}' '{"type":"result","subtype":"success","is_error":false,"result":"ok","total_cost_usd":0}'

            """)
        try await hive.spawn("iris")
        try await hive.spawn("bob")
        try await hive.eventually("iris is up in its cage") { try await hive.agentRow("iris")?.state == .idle }
        // The cage outlives the request that started it (bwrap's die-with-parent is tied to the starting
        // *thread*; a cage started from a connection thread was killed when that thread ended).
        try await Task.sleep(for: .seconds(1.5))
        let crashes = try hive.sqlite("broker.sqlite", "SELECT count(*) AS n FROM message WHERE body LIKE 'container_crash:%'")
        #expect(crashes.first?["n"] == "0", "no cage died after its start request ended")
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "look around"))
        let report = hive.root.appending(path: "agents/iris/state/probe.txt")
        try await hive.eventually("the probe ran") { FileManager.default.fileExists(atPath: report.path) }
        try await hive.eventually("the turn was acked") { try await hive.agentRow("iris")?.inflight == 0 }
        let text = try String(contentsOf: report, encoding: .utf8)
        let seen = Self.fields(text)
        let uid = Int(seen["uid"] ?? "0") ?? 0
        // As root every agent has a uid of its own; a hive run by an ordinary user runs them all as that user.
        #expect(getuid() == 0 ? uid >= 20_000 : uid == Int(getuid()), "never host root")
        #expect(seen["agents"] == "iris", "bob and the manager are not visible")
        #expect(seen["run"] == "egress.sock forge.sock mcp.sock model.sock page", "only its own sockets: the hive's, and its gated network's ends")
        #expect(seen["root"] == "0" && seen["hostroot"] == "0", "host files are not visible")
        #expect(seen["cwd"] == "/agents/iris/state", "the same path the manager uses")
        #expect(seen["shared"] == "ok")
        #expect(seen["usr"] == "read-only")
        let attrs = try FileManager.default.attributesOfItem(atPath: report.path)
        #expect((attrs[.ownerAccountID] as? NSNumber)?.intValue == uid, "files the agent writes are owned by its uid on the host")
        #expect(FileManager.default.fileExists(atPath: hive.root.appending(path: "shared/from-\(uid)").path))
        // Each agent gets its own uid.
        try await hive.eventually("bob is up") { try await hive.agentRow("bob")?.state == .idle }
        let bobUID = try FileManager.default.attributesOfItem(atPath: hive.runDir.appending(path: "agents/bob/mcp.sock").path)[.ownerAccountID] as? NSNumber
        #expect(bobUID != nil && (getuid() != 0 || bobUID!.intValue != uid))
    }

    @Test("the manager sees every agent's state and config, not their harness dirs; network none leaves only loopback; limits go through cgroups")
    func managerViewNetworkLimits() async throws {
        let hive = try LiveHive()
        try await hive.startCaged(probe: """
            #!/bin/sh
            cat > /dev/null
            me=$(cat /proc/sys/kernel/hostname)
            { echo "net=$(awk -F: 'NR>2 {gsub(/ /, "", $1); print $1}' /proc/net/dev | sort | tr '\n' ' ')"
              [ "$me" = iris ] && echo "forks=$(python3 -c 'import os, time
            n = 0
            for i in range(200):
                try:
                    pid = os.fork()
                except OSError:
                    break
                if pid == 0:
                    time.sleep(3); os._exit(0)
                n += 1
            print(n)')"
              if [ "$me" = manager ]; then
                echo "agents=$(ls /agents | tr '\n' ' ')"
                echo "iris_config=$(grep -c '"network": "none"' /agents/iris/config/agent.json 2>/dev/null)"
                echo "iris_state=$(touch /agents/iris/state/from-manager 2>/dev/null && echo writable)"
                echo "iris_harness=$(ls /agents/iris/harness >/dev/null 2>&1 && echo readable || echo closed)"
                echo "applied=$(ls /applied | tr '\n' ' ')"
                echo "applied_write=$(touch /applied/x 2>/dev/null && echo writable || echo read-only)"
              fi; } > probe-$me.tmp && mv probe-$me.tmp probe-$me.txt  # whole, never read half-written
            printf '%s\n' '{"type":"system","subtype":"init","session_id":"p"}' '{"type":"result","subtype":"success","is_error":false,"result":"ok","total_cost_usd":0}'

            """)
        let deployed = try await hive.deploy("iris", #"{"network": "none", "limits": {"memory_mb": 256, "pids": 64}}"#)
        #expect(deployed.state == .deployed, "\(deployed.note ?? "")")
        try await hive.eventually("iris is up in its cage") { try await hive.agentRow("iris")?.state == .idle }

        let enforced = getuid() == 0 && FileManager.default.fileExists(atPath: "/sys/fs/cgroup/pids/cgroup.procs")
            && FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory/cgroup.procs")
        let cage = try await hive.agentRow("iris")?.cage ?? ""
        #expect(cage.hasPrefix("bwrap, network none"))
        #expect(cage.contains(enforced ? "memory 256 MiB (enforced), pids 64 (enforced)" : "not enforced"), "\(cage)")

        func report(_ agent: String) -> [String: String] {
            let text = (try? String(contentsOf: hive.root.appending(path: "agents/\(agent)/state/probe-\(agent).txt"), encoding: .utf8)) ?? ""
            return Self.fields(text)
        }
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "look around"))
        try await hive.eventually("iris's probe ran") { report("iris")[enforced ? "forks" : "net"] != nil }
        #expect(report("iris")["net"] == "lo", "network none: only its own loopback")
        var groups: [String] = []
        if enforced {
            let forks = Int(report("iris")["forks"] ?? "") ?? -1
            #expect(forks >= 0 && forks < 64, "the pids limit holds inside the cage (forked \(forks) of 200)")
            groups = try FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup/memory").filter { $0.hasPrefix("hyperhive-") && $0.hasSuffix("-iris") }
            let limits = groups.compactMap { try? String(contentsOfFile: "/sys/fs/cgroup/memory/\($0)/memory.limit_in_bytes", encoding: .utf8) }
            #expect(limits.contains("268435456\n"), "memory limit set: \(limits)")
        }

        // The manager may have run a turn before iris was deployed (a notice): look at a report made now.
        try? FileManager.default.removeItem(at: hive.root.appending(path: "agents/manager/state/probe-manager.txt"))
        _ = try await hive.admin().call(SendCommand(to: "manager", body: "look around"))
        try await hive.eventually("the manager's probe saw iris") { report("manager")["iris_state"] == "writable" }
        let seen = report("manager")
        #expect(seen["agents"]?.contains("iris") == true && seen["agents"]?.contains("manager") == true)
        #expect(seen["iris_config"] == "1", "reads iris's proposed config")
        // Only uids tell agents apart: as an ordinary user's hive (one uid) the manager can read it, as `hive up` says.
        #expect(seen["iris_harness"] == (getuid() == 0 ? "closed" : "readable"), "another agent's harness dir stays closed (as root)")
        #expect(seen["applied"]?.contains("iris") == true && seen["applied_write"] == "read-only")
        #expect(seen["net"] == "lo", "the manager is gated like any new agent: loopback only, out through the gateway")
        #expect(FileManager.default.fileExists(atPath: hive.root.appending(path: "agents/iris/state/from-manager").path))

        // A graceful stop removes the cgroups it made.
        #expect(await hive.terminate() == 0)
        for g in groups { #expect(!FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory/\(g)/cgroup.procs") || (try? String(contentsOfFile: "/sys/fs/cgroup/memory/\(g)/cgroup.procs", encoding: .utf8)) != "", "\(g)") }
        let left = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup/pids")) ?? []
        #expect(!groups.contains { left.contains($0) }, "groups removed on shutdown")
    }

    @Test("from inside a real cage, git push to the agent's own new repo works with no setup; shared/docs is read-only to it")
    func forgeFromCage() async throws {
        let hive = try LiveHive()
        try await hive.startCaged(probe: """
            #!/bin/sh
            cat > /dev/null
            me=$(cat /proc/sys/kernel/hostname)
            out=/agents/$me/state/forge.txt
            if [ "$me" = iris ]; then
              cd /tmp
              python3 -c 'import json, os, urllib.request
            token = open("/agents/iris/harness/forge-token").read().strip()
            req = urllib.request.Request(os.environ["HIVE_FORGE_URL"] + "/api/v1/user/repos", data=json.dumps({"name": "fromcage"}).encode(),
                                         headers={"Authorization": "token " + token, "Content-Type": "application/json"})
            print("create=%d" % urllib.request.urlopen(req).status)' > $out 2>&1
              git init -q -b main w && cd w && echo "made in a cage" > f && git add f && git -c user.name=iris -c user.email=i@x commit -qm cage
              git push -q "$HIVE_FORGE_URL/iris/fromcage.git" main 2>>$out && echo push=ok >> $out
              cd /tmp && git clone -q "$HIVE_FORGE_URL/shared/docs.git" d 2>>$out && echo docs=ok >> $out
              cd d && echo x > x && git add x && git -c user.name=iris -c user.email=i@x commit -qm x
              if git push -q origin main 2>/dev/null; then echo docs_push=accepted >> $out; else echo docs_push=refused >> $out; fi
            fi
            printf '%s\\n' '{"type":"system","subtype":"init","session_id":"p"}' '{"type":"result","subtype":"success","is_error":false,"result":"ok","total_cost_usd":0}'

            """)
        _ = try await hive.spawn("iris")
        try await hive.eventually("iris is up in its cage") { try await hive.agentRow("iris")?.state == .idle }
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "use the forge"))
        let report = hive.root.appending(path: "agents/iris/state/forge.txt")
        try await hive.eventually("the probe finished", timeout: .seconds(30)) {
            ((try? String(contentsOf: report, encoding: .utf8)) ?? "").contains("docs_push=")
        }
        let text = try String(contentsOf: report, encoding: .utf8)
        #expect(text.contains("create=201"), "\(text)")
        #expect(text.contains("push=ok"), "\(text)")
        #expect(text.contains("docs=ok"), "\(text)")
        #expect(text.contains("docs_push=refused"), "\(text)")
        // The operator sees what the agent pushed.
        let back = hive.dir.appending(path: "back")
        let base = try await hive.forgeURL()
        #expect(try hive.gitAs("operator", token: try hive.adminForgeToken(), ["clone", "-q", "\(base)/iris/fromcage.git", back.path], in: hive.dir).status == 0)
        #expect(try String(contentsOf: back.appending(path: "f"), encoding: .utf8) == "made in a cage\n")
    }
}

extension LiveHive {
    /// Starts core with bubblewrap cages whose "claude" is `probe`, a shell script that reports what it sees
    /// and then answers like claude.
    func startCaged(probe script: String) async throws {
        let probe = dir.appending(path: "probe-claude")
        try Data(script.utf8).write(to: probe)
        chmod(probe.path, 0o755)
        var env = ProcessInfo.processInfo.environment
        env["HIVE_CLAUDE"] = probe.path
        try await start(cage: "bwrap", environment: env)
    }
}
