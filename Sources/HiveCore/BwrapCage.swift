import Foundation
import HiveBroker
import HiveGate
import HiveHost
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
/// | `/run/hive` | `<run-dir>/agents/<n>` | root's: its own `mcp.sock`, and `page/` (its `web.sock`), the only part it writes |
/// | `/shared` | `<root>/shared` | read-write, every agent |
/// | `/run/hive-agent.json` | `<root>/rendered/<n>.json` | read-only: the config core rendered |
/// | (manager only) `/agents`, `/applied` | `<root>/agents`, `<root>/applied` | read-write; read-only |
/// | `/usr`, `/etc`, the Swift runtime, the `hive` binary, claude | same paths | read-only |
/// | `/tmp` | a private tmpfs | |
public struct BwrapCage: Sendable {
    let layout: HiveLayout
    let broker: any HiveStore
    /// The host uids this hive's cages run as (when core is root).
    let uids: UIDRange
    /// The `hive` executable and claude, bound read-only at their host paths.
    let hive: String
    let logger: Logger

    public static var available: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") }

    /// Where the harness finds its rendered config inside the cage.
    static let configPath = "/run/hive-agent.json"

    /// The uid a cage runs as, or nil when core is not root (then cages run as core's own uid).
    func uid(_ name: AgentName) throws -> uid_t? {
        getuid() == 0 ? uid_t(try broker.cageUID(for: name, in: uids.first...uids.last, skip: UIDRange.taken)) : nil
    }

    /// A uid of this node's block for an agent arriving from another node (hive move), nobody's before;
    /// nil when core is not root. The move's arrival records it as the agent's.
    func reserveUID() throws -> uid_t? {
        getuid() == 0 ? uid_t(try broker.reserveUID(in: uids.first...uids.last, skip: UIDRange.taken)) : nil
    }

    /// Prepares the host side of `name`'s cage and returns the command that runs `hive agent` in it.
    /// Not a pure builder: it allocates the agent's uid (recorded in the store), hands its directories
    /// and socket to that uid, and makes the shared space. `rendered` is its config file; `forwards` are
    /// a gated cage's ways out (its harness listens on the cage's loopback, core serves the sockets).
    func prepare(_ name: AgentName, config: AgentConfig, rendered: URL,
                 environment: [String: String], forwards: [GatedNetwork.Forward] = []) throws -> (executable: String, arguments: [String], environment: [String: String]) {
        let shared = layout.sharedDir
        try FileManager.default.createDirectory(at: shared, withIntermediateDirectories: true)
        _ = chmod(shared.path, 0o1777) // every agent writes here; sticky, like /tmp
        try AgentDirectories.create(name, in: layout)
        var prefix: [String] = []
        if let uid = try uid(name) {
            // Never run a cage as host root: an unprivileged uid per agent, owning its directories. The
            // state dir's group is the manager's (setgid, group-writable), so the manager can tend it;
            // the harness dir stays the agent's alone.
            // (Only where the manager runs: asked on another node, that node would give it a uid of its own.)
            let managerGID = broker.mayRun(.manager) ? try self.uid(.manager) ?? uid : uid
            // (These paths' parents are root's, so the agent cannot swap the top directories themselves.)
            try Ownership.give(layout.stateDir(name), to: uid, group: managerGID)
            _ = chmod(layout.stateDir(name).path, 0o2770)
            try Ownership.give(layout.harnessDir(name), to: uid, group: gid_t(uid))
            _ = chmod(layout.harnessDir(name).path, 0o770)
            AgentRunDir.give(name, to: uid, in: layout)
            _ = chown(rendered.path, 0, gid_t(uid))
            prefix = ["/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", "--"]
        }
        // claude's HOME (its settings and login) is per agent, inside the harness dir the agent writes.
        try Ownership.makeDirectory("home", in: layout.harnessDir(name), owner: try uid(name))
        var env = environment
        // Bound at its real path: a symlinked install resolves to the file that exists in the cage.
        var claude = ClaudeExecutable.resolve(environment: environment).map { URL(filePath: $0).resolvingSymlinksInPath().path }
        if getuid() == 0, let c = claude { claude = try AgentBinaries.reachable(c, in: layout) }
        if let claude { env["HIVE_CLAUDE"] = claude }
        env["HOME"] = "/agents/\(name)/harness/home"
        env["HIVE_SOCKET"] = "/run/hive/mcp.sock"

        let inside = "/agents/\(name)"
        var args = ["--die-with-parent", "--unshare-all", "--hostname", name.rawValue,
                    "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
                    "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
                    "--ro-bind", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run",
                    "--bind", layout.agentRunDir(name).path, "/run/hive",
                    "--ro-bind", rendered.path, Self.configPath]
        if name == .manager {
            // The manager tends every agent: all of /agents (each agent's state, its own harness, every
            // proposed config repo; other harness dirs are there but closed to it by their modes) and
            // the applied repos read-only.
            try FileManager.default.createDirectory(at: layout.appliedDir, withIntermediateDirectories: true)
            args += ["--bind", layout.root.appending(path: "agents").path, "/agents",
                     "--ro-bind", layout.appliedDir.path, "/applied"]
        } else {
            args += ["--bind", layout.stateDir(name).path, "\(inside)/state",
                     "--bind", layout.harnessDir(name).path, "\(inside)/harness"]
        }
        args += ["--bind", shared.path, "/shared"]
        // host: the host's network. gated and none: the cage's own namespace, loopback only (gated adds
        // the forwards to core's gateway below).
        if config.network == .host { args.append("--share-net") }
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
                 "--web-socket", "/run/hive/\(AgentRunDir.page)/web.sock", "--config", Self.configPath, "--supervised", "--sandbox", "bwrap"]
        args += forwards.flatMap { ["--forward", $0.description] }
        if prefix.isEmpty { return ("/usr/bin/bwrap", args, env) }
        return (prefix[0], Array(prefix.dropFirst()) + ["/usr/bin/bwrap"] + args, env)
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
