import Foundation
@testable import HiveCore
import HiveWire
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Cage tools")
struct CageToolsTests {
    @Test("the cgroup wrapper writes the exec'd process's own pid to every procs file, then runs the command with its arguments")
    func wrapper() throws {
        let dir = FileManager.default.temporaryDirectory.appending(path: "wrap-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let files = ["a", "b"].map { dir.appending(path: $0).path }
        let out = dir.appending(path: "out").path
        let (exe, args) = CgroupLimits.wrap("/bin/sh", ["-c", "echo $$ \"$1\" > \(out)", "sh", "two words"], joining: files)
        let p = Process()
        p.executableURL = URL(filePath: exe)
        p.arguments = args
        try p.run()
        p.waitUntilGone()
        #expect(p.terminationStatus == 0)
        let pid = "\(p.processIdentifier)"
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "\(pid) two words\n", "same process (exec), arguments intact")
        for f in files { #expect(try String(contentsOfFile: f, encoding: .utf8) == "\(pid)\n") }
        #expect(CgroupLimits.wrap("/x", ["y"], joining: []) == ("/x", ["y"]), "no limits: no wrapper")
    }

    @Test("limits without root or controllers are reported as not enforced, never silently dropped")
    func summary() throws {
        var c = CgroupLimits(root: URL(filePath: "/tmp/some-root"))
        #expect(c.prepare(try AgentName("iris"), limits: .init()).summary == "no limits")
        c.base = "/nonexistent-cgroup-root"
        let applied = c.prepare(try AgentName("iris"), limits: .init(memoryMB: 256, pids: 64))
        #expect(applied.procsFiles.isEmpty)
        // (As root each limit says why; as anyone else all are "not enforced (core is not root)".)
        #expect(applied.summary.contains("memory 256 MiB") && applied.summary.contains("pids 64") && applied.summary.contains("not enforced"), "\(applied.summary)")
    }

    @Test("a log's tail: the last lines, a missing file is empty")
    func tail() throws {
        let url = FileManager.default.temporaryDirectory.appending(path: "log-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data((1...500).map { "line \($0)" }.joined(separator: "\n").appending("\n").utf8).write(to: url)
        #expect(HarnessLog.tail(url, lines: 3) == ["line 498", "line 499", "line 500"])
        #expect(HarnessLog.tail(url.appending(path: "nope"), lines: 3).isEmpty)
    }

    @Test("a log that is a symlink or not a plain file is neither read nor appended to")
    func logLinks() throws {
        let dir = FileManager.default.temporaryDirectory.appending(path: "loglink-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let secret = dir.appending(path: "secret")
        try Data("top secret\n".utf8).write(to: secret)
        let link = dir.appending(path: "iris.log")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: secret)
        #expect(HarnessLog.tail(link, lines: 5).isEmpty)
        #expect(HarnessLog.openForAppend(link) == nil)
        #expect(try String(contentsOf: secret, encoding: .utf8) == "top secret\n")
        let fifo = dir.appending(path: "fifo.log")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        #expect(HarnessLog.tail(fifo, lines: 5).isEmpty, "returns at once instead of blocking on a FIFO")
        let plain = dir.appending(path: "plain.log")
        let handle = try #require(HarnessLog.openForAppend(plain))
        handle.write(Data("one\ntwo\n".utf8))
        #expect(HarnessLog.tail(plain, lines: 1) == ["two"])
    }

    @Test("handing a tree to an agent's uid never follows a link out of it", .enabled(if: getuid() == 0))
    func ownershipNoFollow() throws {
        let dir = FileManager.default.temporaryDirectory.appending(path: "own-\(UUID().uuidString)")
        let tree = dir.appending(path: "state")
        try FileManager.default.createDirectory(at: tree.appending(path: "sub"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let outside = dir.appending(path: "outside")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: outside.appending(path: "host-file"))
        try Data("y".utf8).write(to: tree.appending(path: "sub/mine"))
        try FileManager.default.createSymbolicLink(at: tree.appending(path: "escape"), withDestinationURL: outside)
        try FileManager.default.createSymbolicLink(at: tree.appending(path: "sub/file-link"), withDestinationURL: outside.appending(path: "host-file"))
        try Ownership.give(tree, to: 23_456, group: 23_457)
        func owner(_ url: URL) throws -> (Int, Int) {
            var st = stat()
            #expect(lstat(url.path, &st) == 0)
            return (Int(st.st_uid), Int(st.st_gid))
        }
        #expect(try owner(tree.appending(path: "sub/mine")) == (23_456, 23_457))
        #expect(try owner(tree.appending(path: "escape")) == (23_456, 23_457), "the link itself changes hands")
        #expect(try owner(outside) == (0, 0), "its target does not")
        #expect(try owner(outside.appending(path: "host-file")) == (0, 0))
    }

    @Test("a hive's uid block is the first one nobody claimed and that holds no passwd user")
    func uidBlocks() {
        #expect(UIDRange.choose(claimed: [], taken: { _ in false }) == UIDRange(first: 20_000, count: 10_000))
        let chosen = UIDRange.choose(claimed: [20_000], taken: { $0.contains(35_000) })
        #expect(chosen == UIDRange(first: 40_000, count: 10_000), "a claimed block and one holding a user are skipped")
        #expect(UIDRange.choose(claimed: [], taken: { _ in true }) == nil, "nothing free: nil, never a shared block")
        #expect(UIDRange.passwdHas(0...0), "root is in passwd")
    }

    @Test("the disk quota machine parks an agent over its quota once, releases it under 90%, and parks the top owner of a full /shared")
    func diskQuotas() throws {
        let iris = try AgentName("iris"), bob = try AgentName("bob")
        var m = DiskQuotaMachine()
        func usage(iris i: Int64?, bob b: Int64? = 0, shared: Int64 = 0, byAgent: [AgentName: Int64] = [:]) -> DiskQuotaMachine.Usage {
            .init(own: [iris: i, bob: b], quota: [iris: 100, bob: 100], sharedTotal: shared, sharedByAgent: byAgent, sharedQuota: 1000)
        }
        #expect(m.observe(usage(iris: 100)).isEmpty, "at the quota is not over it")
        #expect(m.observe(usage(iris: 101)) == [.park(iris, .own(bytes: 101, quota: 100))])
        #expect(m.observe(usage(iris: 150)).isEmpty, "parked once")
        #expect(m.observe(usage(iris: 95)).isEmpty, "not released above 90%")
        #expect(m.observe(usage(iris: 89)) == [.release(iris)])
        #expect(m.observe(usage(iris: nil)) == [.park(iris, .tooManyFiles)], "a walk that could not finish counts as over")
        #expect(m.observe(usage(iris: 10, shared: 1001, byAgent: [iris: 10, bob: 990])) == [.release(iris), .park(bob, .shared(bytes: 1001, quota: 1000))])
        #expect(m.observe(usage(iris: 10, shared: 1001, byAgent: [iris: 10, bob: 990])).isEmpty, "one agent parked for /shared at a time")
        #expect(m.observe(usage(iris: 10, shared: 850, byAgent: [iris: 10, bob: 840])) == [.release(bob)])
        var gone = DiskQuotaMachine()
        _ = gone.observe(usage(iris: 500))
        #expect(gone.observe(.init(own: [bob: 0], quota: [bob: 100], sharedTotal: 0, sharedByAgent: [:], sharedQuota: 1000)).isEmpty,
                "destroyed: forgotten, never released (released, its cage would start again)")
        #expect(gone.parked.isEmpty)
        // /shared: the writer is parked, not whoever holds the most.
        var shared = DiskQuotaMachine()
        #expect(shared.observe(usage(iris: 10, shared: 700, byAgent: [iris: 600, bob: 100])).isEmpty)
        #expect(shared.observe(usage(iris: 10, shared: 1200, byAgent: [iris: 600, bob: 600])) == [.park(bob, .shared(bytes: 1200, quota: 1000))])
    }

    @Test("tree usage counts blocks without following links and stops counting at its entry cap")
    func treeUsage() throws {
        let dir = FileManager.default.temporaryDirectory.appending(path: "usage-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appending(path: "a/b"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(count: 1 << 20).write(to: dir.appending(path: "a/b/one"))
        try FileManager.default.createSymbolicLink(atPath: dir.appending(path: "usr").path, withDestinationPath: "/usr")
        let all = TreeUsage.measure(dir, maxEntries: 100)
        #expect(all.complete && all.entries == 4 && all.bytes >= 1 << 20 && all.bytes < 2 << 20, "\(all)")
        #expect(all.byOwner[getuid()] == all.bytes)
        #expect(!TreeUsage.measure(dir, maxEntries: 2).complete)
    }

    @Test("finding 22: hive up as root without bubblewrap refuses unless --unsandboxed, and then warns; an ordinary user is told what one uid cannot isolate")
    func upSandbox() throws {
        #expect(throws: RequestError.self) { try UpSandbox.choose(bwrapAvailable: false, asRoot: true, unsandboxed: false) }
        let root = try UpSandbox.choose(bwrapAvailable: false, asRoot: true, unsandboxed: true)
        #expect(root.cage == .process && root.warning?.contains("WITHOUT a sandbox") == true && root.warning?.contains("root: everything") == true)
        #expect(try UpSandbox.choose(bwrapAvailable: false, asRoot: false, unsandboxed: false).warning?.contains("WITHOUT a sandbox") == true)
        let caged = try UpSandbox.choose(bwrapAvailable: true, asRoot: true, unsandboxed: false)
        #expect(caged.cage == .bwrap && caged.warning == nil)
        #expect(try UpSandbox.choose(bwrapAvailable: true, asRoot: false, unsandboxed: false).warning?.contains("share one uid") == true)
    }
}
