/// What a cage's environment may carry over from core's: an allow-list, so nothing else of core's
/// environment (tokens of other tools, host paths, the operator's shell settings) reaches an agent.
///
/// Allowed: what claude needs to reach its model (`ANTHROPIC_*` including the credential, `CLAUDE_CODE_*`,
/// proxy settings), the CLI's behaviour switches (`DISABLE_*`, `ENABLE_TOOL_SEARCH`, `MAX_THINKING_TOKENS`,
/// `MCP_*TIMEOUT`), locale and zone, `PATH`, where claude is (`HIVE_CLAUDE`) and the harness's tuning
/// (`HIVE_HARNESS_*`). Core adds its own settings (forge, home, socket) after this, and the agent's
/// config `env` last.
enum CageEnvironment {
    static let names: Set<String> = [
        "PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "HIVE_CLAUDE", "ENABLE_TOOL_SEARCH", "MAX_THINKING_TOKENS",
        "MCP_TIMEOUT", "MCP_TOOL_TIMEOUT", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    ]
    static let prefixes = ["ANTHROPIC_", "CLAUDE_CODE_", "DISABLE_", "HIVE_HARNESS_"]

    static func filter(_ env: [String: String]) -> [String: String] {
        env.filter { key, _ in names.contains(key) || prefixes.contains(where: key.hasPrefix) }
    }
}

/// How long each harness keeps its own telemetry: each harness sweeps its stores itself, as the agent's
/// uid (root opening files in an agent's directory could be pointed at any SQLite file on the host).
/// Core tells it the windows in its environment.
enum HarnessRetention {
    static func environment(events: Double, stats: Double, interval: Duration) -> [String: String] {
        ["HIVE_HARNESS_EVENTS_RETENTION_SECONDS": String(Int(events)), "HIVE_HARNESS_STATS_RETENTION_SECONDS": String(Int(stats)),
         "HIVE_HARNESS_SWEEP_SECONDS": String(max(1, interval.components.seconds))]
    }
}
