import Foundation
import HiveBroker
import HiveWire
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The bubblewrap cage: an agent's harness (and the claude it runs) in its own mount, pid, ipc and uts
/// namespaces (and network namespace unless the agent has network), as an unprivileged uid, seeing
/// only its own directories, at the same paths the manager uses:
///
/// | inside | from the host | |
/// |---|---|---|
/// | `/agents/<n>/state` | `<root>/agents/<n>/state` | read-write, the agent's |
/// | `/agents/<n>/harness` | `<root>/agents/<n>/harness` | read-write, the harness's |
/// | `/run/hive` | `<run-dir>/agents/<n>` | its own `mcp.sock` and `web.sock` only |
/// | `/shared` | `<root>/shared` | read-write, every agent |
/// | `/usr`, `/etc`, the Swift runtime, the `hive` binary, claude | same paths | read-only |
/// | `/tmp` | a private tmpfs | |
public struct BwrapCage: Sendable {
    let layout: HiveLayout
    let broker: Broker
    /// The `hive` executable and claude, bound read-only at their host paths.
    let hive: String
    let logger: Logger
    /// Whether agents get the host's network (`--share-net`).
    var network = true

    public static var available: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") }

    /// The command that runs `hive agent` for `name` in its cage, and prepares the host side (uid,
    /// ownership of its directories and socket, the shared space).
    func command(for name: AgentName, environment: [String: String]) throws -> (executable: String, arguments: [String], environment: [String: String]) {
        let shared = layout.root.appending(path: "shared")
        try FileManager.default.createDirectory(at: shared, withIntermediateDirectories: true)
        _ = chmod(shared.path, 0o1777) // every agent writes here; sticky, like /tmp
        // claude's HOME (its settings and login) is per agent, inside the harness dir.
        try FileManager.default.createDirectory(at: layout.harnessDir(name).appending(path: "home"), withIntermediateDirectories: true)
        var prefix: [String] = []
        if getuid() == 0 {
            // Never run a cage as host root: an unprivileged uid per agent, owning its directories.
            let uid = try broker.cageUID(for: name)
            for dir in [layout.stateDir(name), layout.harnessDir(name), layout.agentRunDir(name)] {
                try Ownership.give(dir, to: uid_t(uid))
            }
            prefix = ["/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", "--"]
        }
        var env = environment
        // Bound at its real path: a symlinked install resolves to the file that exists in the cage.
        let claude = ClaudeExecutable.resolve(environment: environment).map { URL(filePath: $0).resolvingSymlinksInPath().path }
        if let claude { env["HIVE_CLAUDE"] = claude }
        env["HOME"] = "/agents/\(name)/harness/home"
        env["HIVE_SOCKET"] = "/run/hive/mcp.sock"

        let inside = "/agents/\(name)"
        var args = ["--die-with-parent", "--unshare-all", "--hostname", name.rawValue,
                    "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
                    "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
                    "--ro-bind", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run",
                    "--bind", layout.agentRunDir(name).path, "/run/hive",
                    "--bind", layout.stateDir(name).path, "\(inside)/state",
                    "--bind", layout.harnessDir(name).path, "\(inside)/harness",
                    "--bind", shared.path, "/shared"]
        if network { args.append("--share-net") }
        // The Swift runtime the binary links (a directory), the binary itself and claude (just the files:
        // binding their directories would show whatever else lives there), read-only at their own paths.
        var readOnly = Set([hive])
        if let runtime = SwiftRuntime.directory { readOnly.insert(runtime) }
        if let claude { readOnly.insert(claude) }
        for path in readOnly.sorted() where !path.hasPrefix("/usr/") && !path.hasPrefix("/etc/") {
            args += ["--ro-bind", path, path]
        }
        args += ["--chdir", "\(inside)/state", "--",
                 hive, "agent", "--name", name.rawValue, "--socket", "/run/hive/mcp.sock",
                 "--state-dir", "\(inside)/state", "--harness-dir", "\(inside)/harness",
                 "--web-socket", "/run/hive/web.sock", "--supervised"]
        if prefix.isEmpty { return ("/usr/bin/bwrap", args, env) }
        return (prefix[0], Array(prefix.dropFirst()) + ["/usr/bin/bwrap"] + args, env)
    }
}

/// Hands a directory tree to an agent's uid (cages never write as root).
enum Ownership {
    static func give(_ dir: URL, to uid: uid_t) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        _ = chown(dir.path, uid, gid_t(uid))
        let walker = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil)
        while let item = walker?.nextObject() as? URL { _ = lchown(item.path, uid, gid_t(uid)) }
    }
}

/// Where the Swift runtime libraries the binary links live (a dynamically linked build needs them in
/// the cage); nil when they are in the system paths or linked statically.
enum SwiftRuntime {
    static let directory: String? = {
        // /proc files report size 0; read to EOF rather than by size.
        let maps = FileHandle(forReadingAtPath: "/proc/self/maps").map { String(decoding: $0.readDataToEndOfFile(), as: UTF8.self) } ?? ""
        guard let line = maps.split(separator: "\n").first(where: { $0.hasSuffix("/libswiftCore.so") }),
              let path = line.split(separator: " ").last else { return nil }
        // <toolchain>/usr/lib/swift/linux/libswiftCore.so → <toolchain>
        var url = URL(filePath: String(path))
        for _ in 0..<5 { url.deleteLastPathComponent() }
        return url.path == "/" ? nil : url.path
    }()
}
