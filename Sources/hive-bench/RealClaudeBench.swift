import Foundation
import HiveClient
import HiveWire
import ModelStandIn
#if canImport(Glibc)
import Glibc
#endif

/// The harness's overhead per turn with the real Claude Code CLI, against the stand-in API in the same
/// process: a turn through the hive (send → harness → claude with the hive's MCP server → ack) beside
/// the CLI alone on the same prompt with the same MCP server, and the CLI's own costs (process start,
/// MCP start), and what tool search costs (requests and request bytes per turn that uses a hive tool).
extension Bench {
    static var buildKind: String {
        #if DEBUG
        return "debug (an upper bound of the harness's own time)"
        #else
        return "release"
        #endif
    }

    func realClaude(claude: String, runs: Int) async throws -> String {
        let api = try await ModelStandIn()
        defer { Task { await api.stop() } }
        let dir = URL(filePath: String(cString: mkdtemp(strdup("/tmp/hc-XXXXXX"))!))
        defer { try? FileManager.default.removeItem(at: dir) }
        let core = try await CoreProcess.start(in: dir, synchronous: .full)
        defer { core.stop() }
        _ = try await core.admin().call(SpawnCommand(name: "bench"))
        let agentSocket = core.runDir.appending(path: "agents/bench/mcp.sock").path
        let home = dir.appending(path: "home"), cwd = dir.appending(path: "root/agents/bench/state")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: cwd, withIntermediateDirectories: true)
        let emptyMCP = dir.appending(path: "none.json"), hiveMCP = dir.appending(path: "hive.json")
        try Data(#"{"mcpServers":{}}"#.utf8).write(to: emptyMCP)
        try JSONSerialization.data(withJSONObject: ["mcpServers": ["hive": ["type": "stdio", "command": core.hive.path,
                                                                             "args": ["mcp", "--socket", agentSocket]]]])
            .write(to: hiveMCP)
        var env = ["HOME": home.path, "PATH": "/usr/bin:/bin", "ANTHROPIC_BASE_URL": api.baseURL, "ANTHROPIC_API_KEY": "sk-ant-api03-bench",
                   "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1",
                   "CLAUDE_CODE_MAX_RETRIES": "2", "ENABLE_TOOL_SEARCH": "false"]
        let prompt = "@say ok"

        /// Mean seconds of `runs` CLI runs (a fresh session each, as `--print` without `--continue`).
        func cliAlone(mcp: URL, extraEnv: [String: String] = [:]) throws -> Double {
            var total = 0.0
            for _ in 0..<runs {
                let p = Process()
                p.executableURL = URL(filePath: claude)
                p.arguments = ["--print", "--verbose", "--output-format", "stream-json", "--mcp-config", mcp.path, "--strict-mcp-config",
                               "--permission-mode", "default", "--allowedTools", "mcp__hive"]
                p.environment = env.merging(extraEnv) { $1 }
                p.currentDirectoryURL = cwd
                let input = Pipe(), output = Pipe()
                p.standardInput = input
                p.standardOutput = output
                p.standardError = FileHandle.nullDevice
                let start = ContinuousClock.now
                try p.run()
                try input.fileHandleForWriting.write(contentsOf: Data(prompt.utf8))
                try input.fileHandleForWriting.close()
                _ = output.fileHandleForReading.readDataToEndOfFile()
                p.waitUntilGone()
                total += (ContinuousClock.now - start).seconds
            }
            return total / Double(runs)
        }
        let bare = try cliAlone(mcp: emptyMCP)
        let withMCP = try cliAlone(mcp: hiveMCP)

        // Tool search: one turn that sends through a hive tool, with it on and off.
        func toolTurn(search: Bool) throws -> (requests: Int, bytes: Int) {
            let before = api.messageRequests.count
            let marker = "tool-search-\(search)"
            let p = Process()
            p.executableURL = URL(filePath: claude)
            p.arguments = ["--print", "--verbose", "--output-format", "stream-json", "--mcp-config", hiveMCP.path, "--strict-mcp-config",
                           "--permission-mode", "default", "--allowedTools", "mcp__hive"]
            p.environment = env.merging(["ENABLE_TOOL_SEARCH": search ? "true" : "false"]) { $1 }
            p.currentDirectoryURL = cwd
            let input = Pipe()
            p.standardInput = input
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            try input.fileHandleForWriting.write(contentsOf: Data("\(marker)\n@tool whoami {}\n@say ok".utf8))
            try input.fileHandleForWriting.close()
            p.waitUntilGone()
            let calls = api.messageRequests.dropFirst(before)
            return (calls.count, calls.map(\.body.count).reduce(0, +))
        }
        let searchOn = try toolTurn(search: true)
        let searchOff = try toolTurn(search: false)

        // Turns through the hive: the harness runs the same CLI with the same MCP server.
        env["HIVE_CLAUDE"] = claude
        let harness = Process()
        harness.executableURL = core.hive
        harness.arguments = ["agent", "--name", "bench", "--root", dir.appending(path: "root").path, "--run-dir", core.runDir.path,
                             "--log-level", "warning", "--web-socket", "none"]
        harness.environment = env
        try harness.run()
        defer { if harness.isRunning { kill(harness.processIdentifier, SIGTERM); harness.waitUntilGone() } }
        let admin = try core.admin()
        for _ in 0..<200 where try await admin.call(ListCommand()).agents.first(where: { $0.name == "bench" })?.state != "idle" {
            try await Task.sleep(for: .milliseconds(50))
        }
        // One turn to warm up (the first session), then `runs` turns one after another.
        func turns(_ n: Int) async throws -> Double {
            let start = ContinuousClock.now
            for _ in 0..<n { _ = try await admin.call(SendCommand(to: "bench", body: prompt)) }
            while true {
                let row = try await admin.call(ListCommand()).agents.first { $0.name == "bench" }
                if row?.unread == 0 && row?.inflight == 0 { break }
                try await Task.sleep(for: .milliseconds(5))
            }
            return (ContinuousClock.now - start).seconds / Double(n)
        }
        _ = try await turns(1)
        let perTurn = try await turns(runs)
        func ms(_ s: Double) -> String { String(format: "%.0f ms", s * 1000) }
        let date = ISO8601DateFormatter().string(from: Date())
        return """
            ## Real CLI run of \(date)

            Machine: \(ProcessInfo.processInfo.processorCount) cores; \(Self.buildKind) build; Claude Code \(ClaudeExecutable.testedVersion) (`scripts/fetch-claude`)
            against `ModelStandIn` on loopback (answers at once); \(runs) runs each, means.

            | what | value |
            |---|---|
            | the CLI alone, no MCP server (process start to exit) | \(ms(bare)) |
            | the CLI alone with the hive's MCP server (`hive mcp`) | \(ms(withMCP)) |
            | of which MCP start | \(ms(withMCP - bare)) |
            | a turn through the hive (send → harness → the same CLI and MCP server → stats → ack) | \(ms(perTurn)) |
            | **harness overhead per turn** (turn minus the CLI alone with MCP) | **\(ms(perTurn - withMCP))** |
            | a turn using one hive tool, tool search on: API requests, request bytes | \(searchOn.requests), \(searchOn.bytes / 1024) KiB |
            | the same turn, tool search off (what the harness sets) | \(searchOff.requests), \(searchOff.bytes / 1024) KiB |

            """
    }
}
