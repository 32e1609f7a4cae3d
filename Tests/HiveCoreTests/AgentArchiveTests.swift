import Foundation
@testable import HiveCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What `hive move` carries between nodes: a tar of an agent's directories, packed and unpacked by GNU
/// tar as the agent's uid (here `nobody` when the tests run as root).
@Suite("an agent's directories as an archive (hive move)")
struct AgentArchiveTests {
    /// A scratch directory every uid can pass through.
    static func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appending(path: "archive-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        _ = chmod(dir.path, 0o755)
        return dir
    }

    static var runner: AgentArchive.Runner? { getuid() == 0 ? AgentArchive.Runner(uid: 65534) : nil }

    /// The staging directory an arrival unpacks into: root's, with `state` and `harness` for the runner.
    static func staging(in dir: URL) throws -> URL {
        let staging = dir.appending(path: "staging")
        #expect(mkdir(staging.path, 0o755) == 0)
        for sub in AgentArchive.members { try Ownership.makeDirectory(sub, in: staging, owner: runner?.uid) }
        return staging
    }

    /// One ustar header (and content) for a hand-made archive: what a hostile node could send.
    static func member(_ name: String, type: Character = "0", link: String = "", content: Data = Data()) -> Data {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int, width: Int) { for (i, b) in text.utf8.prefix(width).enumerated() { header[offset + i] = b } }
        put(name, at: 0, width: 100)
        put(String(format: "%07o", type == "5" ? 0o755 : 0o644), at: 100, width: 8)
        put("0000000", at: 108, width: 8); put("0000000", at: 116, width: 8)
        put(String(format: "%011o", content.count), at: 124, width: 12)
        put(String(format: "%011o", 1_700_000_000), at: 136, width: 12)
        put("        ", at: 148, width: 8)
        header[156] = type.asciiValue!
        put(link, at: 157, width: 100)
        put("ustar", at: 257, width: 6); put("00", at: 263, width: 2)
        put(String(format: "%06o", header.reduce(0) { $0 + Int($1) }) + "\0 ", at: 148, width: 8)
        var out = Data(header) + content
        if content.count % 512 != 0 { out += Data(count: 512 - content.count % 512) }
        return out
    }

    @Test("packed and unpacked: files, modes, links and empty dirs arrive as they were, and the SHA-256 is the stream's")
    func roundTrip() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = dir.appending(path: "agent")
        for sub in ["state/notes", "state/empty", "harness"] {
            try FileManager.default.createDirectory(at: source.appending(path: sub), withIntermediateDirectories: true)
        }
        try "remember this".write(to: source.appending(path: "state/notes/a.md"), atomically: true, encoding: .utf8)
        _ = chmod(source.appending(path: "state/notes/a.md").path, 0o600)
        try FileManager.default.createSymbolicLink(atPath: source.appending(path: "state/host").path, withDestinationPath: "/etc/passwd")
        try Data(repeating: 7, count: 3_000_000).write(to: source.appending(path: "harness/session.bin"))
        if let runner = Self.runner {
            _ = chown(source.path, runner.uid, runner.uid)
            for path in try FileManager.default.subpathsOfDirectory(atPath: source.path) {
                _ = lchown(source.appending(path: path).path, runner.uid, runner.uid)
            }
        }
        let spool = dir.appending(path: "out.tar")
        let packed = try AgentArchive.pack(source, as: Self.runner, into: spool, limit: 1 << 30)
        let bytes = try Data(contentsOf: spool)
        #expect(packed.bytes == Int64(bytes.count) && packed.bytes > 3_000_000)
        #expect(packed.sha256 == NodeIdentity.sha256(bytes), "the hash is of the bytes spooled")

        let staging = try Self.staging(in: dir)
        try AgentArchive.unpack(spool, into: staging, as: Self.runner)
        #expect(try String(contentsOf: staging.appending(path: "state/notes/a.md"), encoding: .utf8) == "remember this")
        let mode = try FileManager.default.attributesOfItem(atPath: staging.appending(path: "state/notes/a.md").path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: staging.appending(path: "state/host").path) == "/etc/passwd")
        #expect(FileManager.default.fileExists(atPath: staging.appending(path: "state/empty").path))
        #expect(try Data(contentsOf: staging.appending(path: "harness/session.bin")) == Data(repeating: 7, count: 3_000_000))
        if let runner = Self.runner {
            let owner = try FileManager.default.attributesOfItem(atPath: staging.appending(path: "harness/session.bin").path)[.ownerAccountID] as? Int
            #expect(owner == Int(runner.uid), "unpacked as the agent's uid, never as root")
        }
    }

    @Test("a hostile archive reaches nothing outside the agent's two directories: not through a link it brings, not with '..', not with an absolute name, not beside them")
    func hostileArchive() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let outside = dir.appending(path: "outside")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        _ = chmod(outside.path, 0o777) // even a directory the agent's uid could write, were it reached
        var tar = Data()
        tar += Self.member("state/", type: "5")
        tar += Self.member("state/out", type: "2", link: outside.path)
        tar += Self.member("state/out/through-link", content: Data("pwned".utf8))
        tar += Self.member("state/up", type: "2", link: "../../outside")
        tar += Self.member("state/up/through-relative-link", content: Data("pwned".utf8))
        tar += Self.member("state/../../outside/dotdot", content: Data("pwned".utf8))
        tar += Self.member("/" + outside.path.dropFirst() + "/absolute", content: Data("pwned".utf8))
        tar += Self.member("beside", content: Data("pwned".utf8))
        tar += Self.member("harness/", type: "5")
        tar += Self.member("harness/fine", content: Data("fine".utf8))
        tar += Data(count: 1024)
        let spool = dir.appending(path: "in.tar")
        try tar.write(to: spool)

        let staging = try Self.staging(in: dir)
        #expect(throws: CoreError.self, "tar's refusals fail the arrival: the agent stays where it was") {
            try AgentArchive.unpack(spool, into: staging, as: Self.runner)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside.path).isEmpty, "nothing was written outside")
        #expect(!FileManager.default.fileExists(atPath: staging.appending(path: "beside").path), "nothing beside the two directories")
        #expect(!FileManager.default.fileExists(atPath: dir.appending(path: "beside").path))
        #expect(try String(contentsOf: staging.appending(path: "harness/fine"), encoding: .utf8) == "fine")
    }
}
