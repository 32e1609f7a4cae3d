import Foundation
import HiveHost
import HiveWire

/// Runs the git client for core's config repos. Core never runs git hooks or the user's git config:
/// `HOME` and the global config point at a file core writes, and the system config is skipped.
struct Git: Sendable {
    /// The global config file git reads (core's own: an identity, no hooks).
    let globalConfig: URL
    /// Longest any one git command may run.
    var timeout: Double = 60

    struct Failure: Error, CustomStringConvertible {
        let arguments: [String]
        let status: Int32
        let stderr: String
        var description: String {
            let said = stderr.split(separator: "\n").last.map(String.init) ?? "no message"
            return "git \(arguments.prefix(3).joined(separator: " ")) failed (\(status)): \(said)"
        }
    }

    /// Writes core's git config: an identity, no hooks, local fetches allowed.
    func writeConfig() throws {
        var text = "[user]\n\tname = hive core\n\temail = core@hive.invalid\n[init]\n\tdefaultBranch = main\n[protocol \"file\"]\n\tallow = always\n"
        text += "[core]\n\thooksPath = /dev/null\n"
        try FileManager.default.createDirectory(at: globalConfig.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: globalConfig, options: .atomic)
    }

    /// Runs `git -C dir args`, returning its standard output; a non-zero exit throws with git's last line.
    @discardableResult
    func run(_ args: [String], in dir: URL? = nil) throws -> String {
        // A repo made to stall git (a FIFO where a file should be) must not hang core: timeout(1) runs git
        // in a process group of its own and kills the whole group (upload-pack included) when time is up.
        let result = try ChildProcess.run("/usr/bin/timeout", ["-s", "KILL", "\(Int(timeout))", "/usr/bin/git"] + (dir.map { ["-C", $0.path] } ?? []) + args,
                                          environment: [
            "PATH": "/usr/bin:/bin", "HOME": globalConfig.deletingLastPathComponent().path,
            "GIT_CONFIG_GLOBAL": globalConfig.path, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C",
        ])
        guard result.status == 0 else { throw Failure(arguments: args, status: result.status, stderr: String(decoding: result.stderr, as: UTF8.self)) }
        return result.text
    }
}
