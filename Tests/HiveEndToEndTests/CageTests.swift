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
    @Test("a caged agent sees only its own dirs at /agents/<n>, its own sockets, /shared; runs as an unprivileged uid")
    func isolation() async throws {
        let hive = try LiveHive()
        let probe = hive.dir.appending(path: "probe-claude")
        try Data("""
            #!/bin/sh
            cat > /dev/null
            { echo "uid=$(id -u)"; echo "agents=$(ls /agents | tr '\\n' ' ')"; echo "run=$(ls /run/hive | tr '\\n' ' ')"
              echo "root=$(ls /root 2>/dev/null | wc -l)"; echo "cwd=$(pwd)"; echo "shared=$(touch /shared/from-$(id -u) && echo ok)"
              echo "hostroot=$(ls \(hive.root.path) 2>/dev/null | wc -l)"; echo "usr=$(touch /usr/x 2>/dev/null && echo writable || echo read-only)"; } > probe.txt
            printf '%s\\n' '{"type":"system","subtype":"init","session_id":"p"}' '{"type":"result","subtype":"success","is_error":false,"result":"ok","total_cost_usd":0}'

            """.utf8).write(to: probe)
        chmod(probe.path, 0o755)
        var env = ProcessInfo.processInfo.environment
        env["HIVE_CLAUDE"] = probe.path
        try await hive.start(cage: "bwrap", environment: env)
        try await hive.spawn("iris")
        try await hive.spawn("bob")
        try await hive.eventually("iris is up in its cage") { try await hive.agentRow("iris")?.state == "idle" }
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "look around"))
        let report = hive.root.appending(path: "agents/iris/state/probe.txt")
        try await hive.eventually("the probe ran") { FileManager.default.fileExists(atPath: report.path) }
        try await hive.eventually("the turn was acked") { try await hive.agentRow("iris")?.inflight == 0 }
        let text = try String(contentsOf: report, encoding: .utf8)
        let seen = Dictionary(uniqueKeysWithValues: text.split(separator: "\n").compactMap { line -> (String, String)? in
            let parts = line.split(separator: "=", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), String(parts[1]).trimmingCharacters(in: .whitespaces)) : nil
        })
        let uid = Int(seen["uid"] ?? "0") ?? 0
        #expect(uid >= 20_000, "never host root")
        #expect(seen["agents"] == "iris", "bob and the manager are not visible")
        #expect(seen["run"] == "mcp.sock web.sock", "only its own sockets")
        #expect(seen["root"] == "0" && seen["hostroot"] == "0", "host files are not visible")
        #expect(seen["cwd"] == "/agents/iris/state", "the same path the manager uses")
        #expect(seen["shared"] == "ok")
        #expect(seen["usr"] == "read-only")
        let attrs = try FileManager.default.attributesOfItem(atPath: report.path)
        #expect((attrs[.ownerAccountID] as? NSNumber)?.intValue == uid, "files the agent writes are owned by its uid on the host")
        #expect(FileManager.default.fileExists(atPath: hive.root.appending(path: "shared/from-\(uid)").path))
        // Each agent gets its own uid.
        try await hive.eventually("bob is up") { try await hive.agentRow("bob")?.state == "idle" }
        let bobUID = try FileManager.default.attributesOfItem(atPath: hive.runDir.appending(path: "agents/bob/mcp.sock").path)[.ownerAccountID] as? NSNumber
        #expect(bobUID != nil && bobUID!.intValue != uid)
    }
}
