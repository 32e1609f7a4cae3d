import Foundation
import HiveWire
#if canImport(Glibc)
import Glibc
#endif

/// Memory and process-count limits for a cage, through the host's cgroup v1 controllers (what this
/// kind of host offers; bubblewrap has no limits of its own). Each agent gets
/// `/sys/fs/cgroup/{memory,pids}/hyperhive-<hive>-<agent>`; the cage's first process joins them before
/// it execs, so everything it starts is counted. Where the controllers are missing or core is not root,
/// nothing is enforced and ``Applied/summary`` says so (`hive ls` shows it).
struct CgroupLimits: Sendable {
    var base = "/sys/fs/cgroup"
    /// Tells this hive's groups from another hive's on the same host.
    let hiveTag: String

    init(root: URL) {
        // FNV-1a of the root path: short, stable across restarts.
        var h: UInt32 = 2166136261
        for b in root.path.utf8 { h = (h ^ UInt32(b)) &* 16777619 }
        hiveTag = String(h, radix: 16)
    }

    struct Applied: Sendable, Equatable {
        /// `cgroup.procs` files the cage's first process writes its pid to.
        var procsFiles: [String] = []
        /// One line for `hive ls`.
        var summary: String
    }

    private func group(_ controller: String, _ name: AgentName) -> String {
        "\(base)/\(controller)/hyperhive-\(hiveTag)-\(name)"
    }

    /// Creates (or updates) the agent's groups with its limits.
    func prepare(_ name: AgentName, limits: AgentConfig.Limits) -> Applied {
        var wanted: [(controller: String, file: String, value: String, label: String)] = []
        if let mb = limits.memoryMB { wanted.append(("memory", "memory.limit_in_bytes", "\(mb * 1024 * 1024)", "memory \(mb) MiB")) }
        if let pids = limits.pids { wanted.append(("pids", "pids.max", "\(pids)", "pids \(pids)")) }
        guard !wanted.isEmpty else { return Applied(summary: "no limits") }
        let labels = wanted.map(\.label).joined(separator: ", ")
        guard getuid() == 0 else { return Applied(summary: "\(labels): not enforced (core is not root)") }
        var applied = Applied(summary: "")
        var parts: [String] = []
        for w in wanted {
            guard FileManager.default.fileExists(atPath: "\(base)/\(w.controller)/cgroup.procs") else {
                parts.append("\(w.label): not enforced (no cgroup v1 \(w.controller) controller on this host)")
                continue
            }
            let dir = group(w.controller, name)
            if mkdir(dir, 0o755) != 0 && errno != EEXIST {
                parts.append("\(w.label): not enforced (cannot create \(dir): \(String(cString: strerror(errno))))")
                continue
            }
            do {
                try Data(w.value.utf8).write(to: URL(filePath: "\(dir)/\(w.file)"))
                applied.procsFiles.append("\(dir)/cgroup.procs")
                parts.append("\(w.label) (enforced)")
            } catch {
                parts.append("\(w.label): not enforced (cannot write \(w.file))")
            }
        }
        applied.summary = parts.joined(separator: ", ")
        return applied
    }

    /// Removes the agent's groups once its cage is gone. The cage's inner processes die a moment after
    /// the outer one (they follow it through --die-with-parent), so a busy group is retried for up to a second.
    func release(_ name: AgentName) {
        for controller in ["memory", "pids"] {
            let dir = group(controller, name)
            for _ in 0..<40 {
                if rmdir(dir) == 0 || errno == ENOENT { break }
                guard errno == EBUSY else { break }
                usleep(25_000)
            }
        }
    }

    /// Wraps a command so its first process joins `procsFiles` before it execs (so every child is in them).
    static func wrap(_ executable: String, _ arguments: [String], joining procsFiles: [String]) -> (String, [String]) {
        guard !procsFiles.isEmpty else { return (executable, arguments) }
        let script = #"for f in "$@"; do [ "$f" = -- ] && break; echo $$ > "$f" || exit 70; shift; done; shift; exec "$@""#
        return ("/bin/sh", ["-c", script, "hive-cage"] + procsFiles + ["--", executable] + arguments)
    }
}
