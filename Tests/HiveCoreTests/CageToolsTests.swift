import Foundation
@testable import HiveCore
import HiveWire
import Testing

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
        p.waitUntilExit()
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
        #expect(applied.summary.contains("memory 256 MiB: not enforced") && applied.summary.contains("pids 64: not enforced"))
    }

    @Test("a log's tail: the last lines, a missing file is empty")
    func tail() throws {
        let url = FileManager.default.temporaryDirectory.appending(path: "log-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data((1...500).map { "line \($0)" }.joined(separator: "\n").appending("\n").utf8).write(to: url)
        #expect(HarnessLog.tail(url, lines: 3) == ["line 498", "line 499", "line 500"])
        #expect(HarnessLog.tail(url.appending(path: "nope"), lines: 3).isEmpty)
    }
}
