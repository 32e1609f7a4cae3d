import Foundation
import HiveHost
import HiveWire
#if canImport(Glibc)
import Glibc
#endif

/// `hive doctor`: what this host lacks for agents to run, each finding with the fix. Checks only; it
/// changes nothing.
public enum HostDoctor {
    public struct Finding: Sendable, Equatable {
        public enum Level: String, Sendable { case ok, warning, blocking }
        public var level: Level
        public var check: String
        public var detail: String
        public var fix: String?
    }

    /// Runs every check for a hive at `root` whose agents get `environment` (core's, for the claude lookup
    /// and the login).
    public static func run(root: URL, environment: [String: String], credentialsStored: Bool = false) -> [Finding] {
        var out: [Finding] = []
        let isRoot = getuid() == 0
        if BwrapCage.available {
            let probe = run("/usr/bin/bwrap", ["--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "/bin/true"])
            if probe.status == 0 {
                out.append(.init(level: .ok, check: "bubblewrap", detail: "installed; a test cage starts"))
            } else {
                out.append(.init(level: .blocking, check: "bubblewrap", detail: "a test cage fails: \(probe.stderr.prefix(200))",
                                 fix: "enable user namespaces: sysctl -w kernel.unprivileged_userns_clone=1 (Debian) or user.max_user_namespaces=15000"))
            }
        } else {
            out.append(.init(level: .blocking, check: "bubblewrap", detail: "not installed: agents would run without a sandbox",
                             fix: "apt-get install bubblewrap"))
        }
        // Core enforces limits through the cgroup v1 memory and pids controllers (CgroupLimits), as root.
        let v1 = ["memory", "pids"].allSatisfy { FileManager.default.fileExists(atPath: "/sys/fs/cgroup/\($0)/cgroup.procs") }
        if v1 && isRoot {
            out.append(.init(level: .ok, check: "cgroups", detail: "memory and pids controllers (v1): agents' limits are enforced"))
        } else {
            out.append(.init(level: .warning, check: "cgroups",
                             detail: isRoot ? "no cgroup v1 memory and pids controllers: agents' memory and process limits are not enforced"
                                            : "not root: agents' memory and process limits are not enforced",
                             fix: isRoot ? "mount the memory and pids controllers under /sys/fs/cgroup" : "run the hive as root to enforce limits"))
        }
        out += claude(environment)
        let login = ["ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN"].first { !(environment[$0] ?? "").isEmpty }
        if credentialsStored || login != nil {
            out.append(.init(level: .ok, check: "login", detail: credentialsStored ? "a credential is stored (hive login)" : "\(login!) is set"))
        } else {
            out.append(.init(level: .blocking, check: "login", detail: "no credential: every agent's claude will say it is not logged in",
                             fix: "hive login (an OAuth token from `claude setup-token`, or an API key), or export ANTHROPIC_API_KEY before hive up"))
        }
        var fs = statvfs()
        let probePath = FileManager.default.fileExists(atPath: root.path) ? root.path : root.deletingLastPathComponent().path
        if statvfs(probePath, &fs) == 0 {
            let free = Double(fs.f_bavail) * Double(fs.f_frsize)
            let gib = free / 1_073_741_824
            out.append(free < 2 * 1_073_741_824
                       ? .init(level: .warning, check: "disk", detail: String(format: "%.1f GiB free under %@", gib, probePath),
                               fix: "free some space: the broker refuses writes when the disk is nearly full")
                       : .init(level: .ok, check: "disk", detail: String(format: "%.0f GiB free under %@", gib, probePath)))
        }
        if isRoot {
            if let blocked = AgentBinaries.blockingDirectory(above: root.path + "/x") {
                out.append(.init(level: .blocking, check: "hive root", detail: "\(root.path) is not reachable by agents' uids (\(blocked) is closed)",
                                 fix: "use a root outside it, e.g. --root /var/lib/hyperhive (the default as root)"))
            } else {
                out.append(.init(level: .ok, check: "hive root", detail: "\(root.path) is reachable by agents' uids"))
            }
        } else {
            out.append(.init(level: .warning, check: "isolation", detail: "run by an ordinary user: every agent runs as \(NSUserName()), so agents can read each other's files and this user's",
                             fix: "run the hive as root (agents then get a uid each), or accept one shared identity"))
        }
        return out
    }

    /// A helper program's status and text output (status -1 when it cannot start).
    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) -> (status: Int32, stdout: String, stderr: String) {
        guard let o = try? ChildProcess.run(executable, arguments, environment: environment) else { return (-1, "", "cannot run \(executable)") }
        return (o.status, o.text, String(decoding: o.stderr, as: UTF8.self))
    }

    /// The claude executable: found, of which kind, runnable in a cage, and which version.
    static func claude(_ environment: [String: String]) -> [Finding] {
        guard let path = ClaudeExecutable.resolve(environment: environment) else {
            return [.init(level: .blocking, check: "claude", detail: "'\(environment["HIVE_CLAUDE"] ?? "claude")' not found on PATH",
                          fix: "install Claude Code (the native installer puts it in ~/.local/bin), or set HIVE_CLAUDE to its path; scripts/fetch-claude fetches the tested version")]
        }
        var out: [Finding] = []
        let real = URL(filePath: path).resolvingSymlinksInPath().path
        let head = FileHandle(forReadingAtPath: real).map { h -> Data in defer { try? h.close() }; return h.readData(ofLength: 256) } ?? Data()
        let text = String(decoding: head, as: UTF8.self)
        if text.hasPrefix("#!") && text.contains("node") {
            // An npm install: a script run by node, which must be visible in the cage too (/usr is bound).
            let node = run("/usr/bin/env", ["which", "node"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            if node.hasPrefix("/usr/") {
                out.append(.init(level: .ok, check: "claude", detail: "\(path): an npm install run by \(node)"))
            } else {
                out.append(.init(level: .blocking, check: "claude", detail: "\(path) is an npm install whose node (\(node.isEmpty ? "not found" : node)) is not under /usr, so cages cannot run it",
                                 fix: "install Claude Code's native binary (scripts/fetch-claude, or the native installer) and set HIVE_CLAUDE to it"))
            }
        } else {
            out.append(.init(level: .ok, check: "claude", detail: path == real ? path : "\(path) → \(real)"))
        }
        let probe = run(real, ["--version"], environment: ["HOME": NSTemporaryDirectory(), "PATH": "/usr/bin:/bin", "DISABLE_AUTOUPDATER": "1"])
        let version = probe.stdout.split(separator: " ").first.map(String.init) ?? ""
        if probe.status != 0 || version.isEmpty {
            out.append(.init(level: .blocking, check: "claude version", detail: "`\(real) --version` failed: \(probe.stderr.prefix(200))", fix: "reinstall Claude Code"))
        } else if version != ClaudeExecutable.testedVersion {
            out.append(.init(level: .warning, check: "claude version", detail: "\(version); the hive was tested with \(ClaudeExecutable.testedVersion)",
                             fix: "HIVE_CLAUDE=\"$(scripts/fetch-claude)\" runs the tested version"))
        } else {
            out.append(.init(level: .ok, check: "claude version", detail: "\(version), the tested version"))
        }
        return out
    }
}
