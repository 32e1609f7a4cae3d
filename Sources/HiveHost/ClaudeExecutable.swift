import Foundation
import HiveWire

/// Where the claude CLI is: `$HIVE_CLAUDE` when set (a path or a name), else `claude` on PATH. The one
/// rule the harness (which runs it), core (which binds it into cages) and `hive up` (which reports it)
/// all follow.
public enum ClaudeExecutable {
    /// The Claude Code version the test suite runs (scripts/fetch-claude pins the same): `hive doctor`
    /// and `hive ls` say so when agents run another.
    public static let testedVersion = "2.1.332"

    /// The executable's path, or nil when there is none.
    public static func resolve(environment: [String: String]) -> String? {
        let wanted = environment["HIVE_CLAUDE"].flatMap { $0.isEmpty ? nil : $0 } ?? "claude"
        if wanted.contains("/") { return FileManager.default.isExecutableFile(atPath: wanted) ? wanted : nil }
        for dir in (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(dir)/\(wanted)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
