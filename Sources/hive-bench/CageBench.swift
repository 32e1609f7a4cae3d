import ArgumentParser
import Foundation
import HiveClient
import HiveHost
import HiveWire
#if canImport(Glibc)
import Glibc
#endif

/// Time from `start` to the harness waiting on its socket (it reports `idle`), per cage backend, and the
/// memory one idle cage adds. Same run: bubblewrap alone starting `/bin/true`, the floor for the bwrap cage.
extension Bench {
    func cageStarts() async throws -> String {
        let dir = URL(filePath: String(cString: mkdtemp(strdup("/tmp/hc-XXXXXX"))!))
        defer { try? FileManager.default.removeItem(at: dir) }
        chmod(dir.path, 0o755) // cage uids read the stand-in from here
        let standIn = dir.appending(path: "claude")
        try Data("#!/bin/sh\ncat >/dev/null\n".utf8).write(to: standIn)
        chmod(standIn.path, 0o755)
        setenv("HIVE_CLAUDE", standIn.path, 1)

        var rows: [String] = []
        var walks = ""
        let backends = FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") ? ["process", "bwrap"] : ["process"]
        for backend in backends {
            let root = dir.appending(path: backend)
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            let core = try await CoreProcess.start(in: root, synchronous: .full, extra: ["--cage", backend])
            defer { core.stop() }
            let admin = try core.admin()
            _ = try await admin.call(SpawnCommand(name: "bench"))
            func state() async throws -> AgentState? { try await admin.call(ListCommand()).agents.first { $0.name == "bench" }?.state }
            for _ in 0..<400 where try await state() != .idle { try await Task.sleep(for: .milliseconds(25)) }
            var samples: [Double] = []
            for _ in 0..<cageStarts {
                _ = try await admin.call(StopCommand(name: "bench"))
                let clock = ContinuousClock()
                let start = clock.now
                _ = try await admin.call(StartCommand(name: "bench"))
                while try await state() != .idle { usleep(500) }
                samples.append((clock.now - start).seconds * 1000)
            }
            try await Task.sleep(for: .seconds(2))
            let memory = Self.cageMemoryKiB(core: core.process.processIdentifier, agent: "bench")
            if backend == "bwrap", getuid() == 0 { walks = try await descriptorWalks(admin: admin, root: root.appending(path: "root"), state: state) }
            samples.sort()
            rows.append("| \(backend) | \(f(samples[samples.count / 2])) ms | \(f(samples[min(samples.count - 1, samples.count * 95 / 100)])) ms | \(f(samples.last!)) ms | \(memory.rss / 1024) MiB | \(memory.pss / 1024) MiB | \(memory.processes) |")
        }
        var floor = "n/a"
        if backends.contains("bwrap") {
            var times: [Double] = []
            for _ in 0..<cageStarts {
                let p = Process()
                p.executableURL = URL(filePath: "/usr/bin/bwrap")
                p.arguments = ["--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
                               "--symlink", "usr/bin", "/bin", "--proc", "/proc", "--dev", "/dev", "--unshare-all", "--die-with-parent", "/bin/true"]
                let clock = ContinuousClock()
                let start = clock.now
                try p.run()
                p.waitUntilGone()
                times.append((clock.now - start).seconds * 1000)
            }
            times.sort()
            floor = "\(f(times[times.count / 2])) ms"
        }
        let date = ISO8601DateFormatter().string(from: Date())
        return """
            ## Cage start run of \(date)

            Machine: \(ProcessInfo.processInfo.processorCount) cores; \(Self.buildKind) build; core as uid \(getuid()).
            `start` on the admin socket until the harness reports `idle` (connected and waiting), \(cageStarts) times
            per backend; claude is a stand-in (never run: no message is sent). Memory: every process of the idle
            cage (bwrap's two and the harness) 2 s after the last start.

            | backend | p50 | p95 | max | cage RSS | cage Pss | processes |
            |---|---|---|---|---|---|---|
            \(rows.joined(separator: "\n"))

            Floor in the same run: bubblewrap alone running `/bin/true` in fresh namespaces, p50 \(floor).
            \(walks)
            """
    }

    private func f(_ v: Double) -> String { String(format: "%.1f", v) }

    /// What root's descriptor walks over an agent's tree cost (docs/security.md, "The rule"): bubblewrap
    /// starts whose state dir of 10,000 files must first be handed to the agent's uid (`Ownership.give`,
    /// forced by giving the tree back to root before each start) against starts where it already is; and
    /// purging that agent (`TreeRemoval`) against `rm -rf` of the same tree.
    private func descriptorWalks(admin: HiveConnection, root: URL, state: () async throws -> AgentState?) async throws -> String {
        let tree = root.appending(path: "agents/bench/state/tree")
        for d in 0..<100 {
            let dir = tree.appending(path: "d\(d)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for i in 0..<100 { _ = FileManager.default.createFile(atPath: dir.appending(path: "f\(i)").path, contents: Data("x".utf8)) }
        }
        func starts(walk: Bool) async throws -> Double {
            var samples: [Double] = []
            for _ in 0..<max(3, cageStarts / 2) {
                _ = try await admin.call(StopCommand(name: "bench"))
                if walk { _ = try ChildProcess.run("/bin/chown", ["-R", "0:0", root.appending(path: "agents/bench/state").path]) }
                let start = ContinuousClock.now
                _ = try await admin.call(StartCommand(name: "bench"))
                while try await state() != .idle { usleep(500) }
                samples.append((ContinuousClock.now - start).seconds * 1000)
            }
            return samples.sorted()[samples.count / 2]
        }
        let withWalk = try await starts(walk: true)
        let without = try await starts(walk: false)
        // The same purge of an agent with an empty tree: what the 10,000 files add.
        _ = try await admin.call(SpawnCommand(name: "empty"))
        for _ in 0..<400 where try await admin.call(ListCommand()).agents.first(where: { $0.name == "empty" })?.state != .idle {
            try await Task.sleep(for: .milliseconds(25))
        }
        var start = ContinuousClock.now
        _ = try await admin.call(DestroyCommand(name: "empty", purge: true))
        let emptyPurge = (ContinuousClock.now - start).seconds * 1000
        let copy = root.deletingLastPathComponent().appending(path: "tree-copy")
        _ = try ChildProcess.run("/bin/cp", ["-a", tree.path, copy.path])
        sync() // both trees on disk: removing blocks not yet written back costs next to nothing
        start = ContinuousClock.now
        _ = try await admin.call(DestroyCommand(name: "bench", purge: true))
        let purge = (ContinuousClock.now - start).seconds * 1000
        start = ContinuousClock.now
        _ = try ChildProcess.run("/bin/rm", ["-rf", copy.path])
        let rm = (ContinuousClock.now - start).seconds * 1000
        return """

            Descriptor walks (a state dir of 10,000 files in 100 dirs, bwrap, p50 of \(max(3, cageStarts / 2)) starts each): a start that
            hands the tree to the agent's uid first \(f(withWalk)) ms, a start whose tree is already the agent's \(f(without)) ms
            (the walk: \(f(withWalk - without)) ms). Purging the agent (its cage stopped, both trees removed through
            descriptors) \(f(purge)) ms, against \(f(emptyPurge)) ms for an agent with empty dirs; `rm -rf` of a copy of
            the state tree, same run, \(f(rm)) ms.

            """
    }

    /// Sums RSS and Pss over the core's child tree that runs `agent`'s harness.
    static func cageMemoryKiB(core: pid_t, agent: String) -> (rss: Int, pss: Int, processes: Int) {
        func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
        // By parent pid from /proc/*/stat: task/<pid>/children misses children started from other threads.
        func children(_ pid: pid_t) -> [pid_t] {
            ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid_t($0) }.filter { child in
                let stat = read("/proc/\(child)/stat")
                guard let close = stat.lastIndex(of: ")") else { return false }
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                return fields.count > 2 && pid_t(fields[1]) == pid
            }
        }
        func tree(_ pid: pid_t) -> [pid_t] { [pid] + children(pid).flatMap(tree) }
        for top in children(core) {
            let all = tree(top)
            guard all.contains(where: { read("/proc/\($0)/cmdline").contains("--name\u{0}\(agent)\u{0}") }) else { continue }
            let mem = all.map { memoryKiB($0) }
            return (mem.reduce(0) { $0 + ($1["VmRSS"] ?? 0) }, mem.reduce(0) { $0 + ($1["Pss"] ?? 0) }, all.count)
        }
        return (0, 0, 0)
    }
}
