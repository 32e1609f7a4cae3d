import Foundation
import HiveClient
import HiveWire
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Backup and restore", .serialized, .timeLimit(.minutes(2)))
struct BackupTests {
    @Test("a backup taken while messages flow restores every acked message, every agent and their dirs; an agent's planted link is copied as a link, never followed; a non-empty root is refused")
    func backupRestore() async throws {
        let hive = try LiveHive()
        try await hive.start()
        for name in ["iris", "bob"] { _ = try await hive.spawn(name) }
        // The agent's own dir, as a hostile agent would fill it.
        let state = hive.root.appending(path: "agents/iris/state")
        try Data("remember the migration\n".utf8).write(to: state.appending(path: "notes.txt"))
        try FileManager.default.createSymbolicLink(atPath: state.appending(path: "evil").path, withDestinationPath: "/etc/shadow")
        _ = mkfifo(state.appending(path: "pipe").path, 0o644)
        // Messages acked before the backup begins must all come back.
        for n in 0..<50 { _ = try await hive.admin().call(SendCommand(to: "iris", body: "before \(n)")) }
        let got = try await hive.agent("iris").call(RecvCommand(waitSeconds: 0, max: 32))
        let more = try await hive.agent("iris").call(RecvCommand(waitSeconds: 0, max: 32))
        let ackedBefore = Set((got.messages + more.messages).map(\.id))
        _ = try await hive.agent("iris").call(AckTurnCommand(ids: Array(ackedBefore)))
        #expect(ackedBefore.count == 50)
        // Traffic during the backup.
        let sent = Mutex(0)
        let flowing = Task {
            var n = 0
            while !Task.isCancelled {
                _ = try? await hive.agent("bob").call(SendCommand(to: "iris", body: "during \(n)"))
                n += 1
                sent.withLock { $0 = n }
            }
            return n
        }
        // The backup starts once traffic flows (the sender's task may start late on a busy machine).
        let flows = ContinuousClock.now + .seconds(10)
        while sent.withLock({ $0 }) == 0 && ContinuousClock.now < flows { try await Task.sleep(for: .milliseconds(5)) }
        let destination = hive.dir.appending(path: "backup")
        let taken = try hive.cli(["backup", destination.path])
        flowing.cancel()
        let during = await flowing.value
        #expect(taken.status == 0 && taken.out.contains("2 databases"), "\(taken.out)\(taken.err)")
        #expect(taken.out.contains("pipe (not a file, directory or link)"), "the fifo is skipped and said: \(taken.out)")
        #expect(during > 0, "messages flowed while the backup ran")
        // A destination someone else prepared is refused, never written through: a link to elsewhere, and
        // an empty directory of another owner.
        let elsewhere = hive.dir.appending(path: "elsewhere")
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: hive.dir.appending(path: "linked").path, withDestinationPath: elsewhere.path)
        let viaLink = try hive.cli(["backup", hive.dir.appending(path: "linked").path])
        #expect(viaLink.status != 0 && viaLink.err.contains("a link is never followed"), "\(viaLink.err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere.path).isEmpty, "nothing written through the link")
        if getuid() == 0 {
            let theirs = hive.dir.appending(path: "theirs")
            try FileManager.default.createDirectory(at: theirs, withIntermediateDirectories: true)
            _ = chown(theirs.path, 12_345, 12_345)
            let foreign = try hive.cli(["backup", theirs.path])
            #expect(foreign.status != 0 && foreign.err.contains("not an empty directory of yours"), "\(foreign.err)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: theirs.path).isEmpty)
        }
        #expect(await hive.terminate() == 0)

        let restored = try LiveHive()
        let put = try restored.cli(["restore", destination.path, "--root", restored.root.path])
        #expect(put.status == 0, "\(put.out)\(put.err)")
        try await restored.start()
        let names = try await restored.admin().call(ListCommand()).agents.map(\.name)
        #expect(Set(names) == ["bob", "iris", "manager"])
        let acked = try restored.sqlite("broker.sqlite", "SELECT id FROM message WHERE acked_at IS NOT NULL").compactMap { Int64($0["id"] ?? "") }
        #expect(ackedBefore.isSubset(of: Set(acked)), "every message acked before the backup is back, acked")
        let restoredState = restored.root.appending(path: "agents/iris/state")
        #expect(try String(contentsOf: restoredState.appending(path: "notes.txt"), encoding: .utf8) == "remember the migration\n")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: restoredState.appending(path: "evil").path) == "/etc/shadow",
                "the link is a link, its target never read")
        #expect(!FileManager.default.fileExists(atPath: restoredState.appending(path: "pipe").path))
        // Messages still flow on the restored hive.
        _ = try await restored.admin().call(SendCommand(to: "bob", body: "after the restore"))
        #expect(try await restored.agent("bob").call(RecvCommand(waitSeconds: 1, max: 1)).messages.first?.body == "after the restore")
        // Into a root that holds a hive: refused unless asked.
        let again = try restored.cli(["restore", destination.path, "--root", restored.root.path])
        #expect(again.status != 0 && again.err.contains("is not empty"), "\(again.err)")
        let running = try restored.cli(["restore", destination.path, "--root", restored.root.path, "--force"])
        #expect(running.status != 0 && running.err.contains("already owned by a running hive core"), "\(running.err)")
    }
}
