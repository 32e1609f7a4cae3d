import Foundation
import HiveClient
import HiveHost
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

        /// One CLI run on `input` (a fresh session, as `--print` without `--continue`); its seconds.
        func runCLI(mcp: URL, input text: String, env extra: [String: String] = [:]) throws -> Double {
            let p = Process()
            p.executableURL = URL(filePath: claude)
            p.arguments = ["--print", "--verbose", "--output-format", "stream-json", "--mcp-config", mcp.path, "--strict-mcp-config",
                           "--permission-mode", "default", "--allowedTools", "mcp__hive"]
            p.environment = env.merging(extra) { $1 }
            p.currentDirectoryURL = cwd
            let input = Pipe(), output = Pipe()
            p.standardInput = input
            p.standardOutput = output
            p.standardError = FileHandle.nullDevice
            let start = ContinuousClock.now
            try p.run()
            try input.fileHandleForWriting.write(contentsOf: Data(text.utf8))
            try input.fileHandleForWriting.close()
            _ = output.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilGone()
            return (ContinuousClock.now - start).seconds
        }
        /// Mean seconds of `runs` CLI runs.
        func cliAlone(mcp: URL) throws -> Double {
            try (0..<runs).map { _ in try runCLI(mcp: mcp, input: prompt) }.reduce(0, +) / Double(runs)
        }
        let bare = try cliAlone(mcp: emptyMCP)
        let withMCP = try cliAlone(mcp: hiveMCP)

        // Tool search: one turn that sends through a hive tool, with it on and off.
        func toolTurn(search: Bool) throws -> (requests: Int, bytes: Int) {
            let before = api.messageRequests.count
            _ = try runCLI(mcp: hiveMCP, input: "tool-search-\(search)\n@tool whoami {}\n@say ok",
                           env: ["ENABLE_TOOL_SEARCH": search ? "true" : "false"])
            let calls = api.messageRequests.dropFirst(before)
            return (calls.count, calls.map(\.body.count).reduce(0, +))
        }
        let searchOn = try toolTurn(search: true)
        let searchOff = try toolTurn(search: false)

        // Turns through the hive: the harness runs the same CLI with the same MCP server.
        env["HIVE_CLAUDE"] = claude
        let harness = try await core.startHarness(root: dir.appending(path: "root"), environment: env, extra: ["--web-socket", "none"])
        defer { if harness.isRunning { kill(harness.processIdentifier, SIGTERM); harness.waitUntilGone() } }
        let admin = try core.admin()
        // One turn to warm up (the first session), then `runs` turns one after another.
        func turns(_ n: Int) async throws -> Double {
            let start = ContinuousClock.now
            for _ in 0..<n { _ = try await admin.call(SendCommand(to: "bench", body: prompt)) }
            try await core.waitDrained()
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
