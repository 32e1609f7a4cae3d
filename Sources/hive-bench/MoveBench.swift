import ArgumentParser
import Foundation
import HiveClient
import HiveHost
import HiveWire
import PostgresFixture

extension Bench {
    /// `hive move` between two nodes on this machine (two `hive core` processes on one throwaway
    /// PostgreSQL cluster, their endpoints on loopback): an agent whose state dir holds `megabytes` of
    /// incompressible data in files of 1 MiB and 2,000 small files, moved there and back. Beside it, in
    /// the same run, the physical limit of the same copy: `tar -c | tar -x` of the same directory into a
    /// fresh one (no hash, no TLS, no spool).
    func moveRun() async throws -> String {
        let cluster = try PostgresCluster()
        try cluster.createDatabase("hive")
        let url = "postgres://\(cluster.user)@127.0.0.1:\(cluster.port)/hive"
        let base = URL(filePath: "/tmp/hbm-\(UUID().uuidString.prefix(8))") // short: agents' socket paths must fit
        defer { try? FileManager.default.removeItem(at: base) }
        var cores: [CoreProcess] = []
        defer { cores.forEach { $0.stop() } }
        for name in ["a", "b"] {
            cores.append(try await CoreProcess.start(in: base.appending(path: name), synchronous: .full,
                                                     extra: ["--database", url, "--node", name, "--node-listen", "127.0.0.1:0", "--forge-listen", "127.0.0.1:0"]))
        }
        _ = try await cores[0].admin().call(SpawnCommand(name: "mover", node: "a"))
        let state = base.appending(path: "a/root/agents/mover/state")
        try FileManager.default.createDirectory(at: state.appending(path: "small"), withIntermediateDirectories: true)
        var random = SystemRandomNumberGenerator()
        for i in 0..<moveMB {
            let chunk = Data((0..<(1 << 20) / 8).flatMap { _ in withUnsafeBytes(of: random.next() as UInt64) { Array($0) } })
            try chunk.write(to: state.appending(path: "blob-\(i).bin"))
        }
        for i in 0..<2000 { try Data("note \(i)\n".utf8).write(to: state.appending(path: "small/\(i).md")) }

        // The floor: the same tree through tar and back, on this machine.
        let floorDir = base.appending(path: "floor")
        try FileManager.default.createDirectory(at: floorDir, withIntermediateDirectories: true)
        let floorStart = ContinuousClock.now
        let pipe = try ChildProcess.run("/bin/sh", ["-c", "tar -C '\(base.appending(path: "a/root/agents/mover").path)' -cf - state harness | tar -C '\(floorDir.path)' -xf -"])
        guard pipe.status == 0 else { throw ValidationError("tar | tar failed: \(pipe.lastError)") }
        let floor = (ContinuousClock.now - floorStart).seconds

        var times: [Double] = []
        var bytes: Int64 = 0
        for (target, asked) in [("b", 0), ("a", 0)] {
            let start = ContinuousClock.now
            let reply = try await cores[asked].admin().call(MoveCommand(name: "mover", node: target))
            times.append((ContinuousClock.now - start).seconds)
            bytes = reply.bytes
        }
        let mb = Double(bytes) / 1_048_576
        let host = ProcessInfo.processInfo
        func f(_ x: Double) -> String { String(format: "%.3g", x) }
        return """
            ## hive move run of \(ISO8601DateFormatter().string(from: Date()))

            Machine: \(host.processorCount) cores, \(host.physicalMemory / 1_073_741_824) GiB, \(host.operatingSystemVersionString); release build; two nodes and PostgreSQL on this machine, the endpoints on loopback (TLS 1.3).

            An agent (no cage) whose state dir holds \(moveMB) MiB in 1 MiB files of random bytes and 2,000 small files: an archive of \(f(mb)) MiB.

            | | seconds | MiB/s | of the floor |
            |---|---|---|---|
            | floor: `tar -c \\| tar -x` of the same dirs, same machine | \(f(floor)) | \(f(mb / floor)) | 100 % |
            | hive move a → b (asked on a, the agent's node) | \(f(times[0])) | \(f(mb / times[0])) | \(f(floor / times[0] * 100)) % |
            | hive move b → a (asked on a, handed to b) | \(f(times[1])) | \(f(mb / times[1])) | \(f(floor / times[1] * 100)) % |

            A move packs, hashes and spools the archive, streams it over TLS, and the other node spools it again, checks it and unpacks it: the file is written three times where the floor writes it once.

            """
    }
}
