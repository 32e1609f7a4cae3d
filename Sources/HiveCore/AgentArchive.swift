import Crypto
import Foundation
import HiveHost
import HiveWire
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// An agent's `state` and `harness` directories as one tar stream, for `hive move`: packed on the node it
/// leaves, unpacked on the node it reaches.
///
/// Both trees are the agent's to write (the state dir the manager's too), so root never walks them:
/// GNU tar runs as the agent's own uid (through `setpriv`), reading what that uid may read and writing
/// only where it may write. On the way in it writes into two fresh directories of a staging directory
/// root made and no agent can reach, so a hostile archive (links out, `..`, absolute names, devices) can
/// reach nothing the agent could not already reach from its cage; GNU tar also refuses `..` and strips
/// leading slashes on its own. Root then only renames the two directories into place. tar rather than a
/// hand-written walker: it is on every Debian host, keeps sparse files, modes and times, and its refusals
/// are decades old.
enum AgentArchive {
    static let members = ["state", "harness"]

    /// The uid (and its extra groups) tar runs as; nil runs it as core's own (core not root: cages are too).
    struct Runner: Sendable {
        var uid: uid_t
        var groups: [gid_t] = []
        var prefix: [String] {
            ["/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(uid)"]
                + (groups.isEmpty ? ["--clear-groups"] : ["--groups=\(groups.map(String.init).joined(separator: ","))"]) + ["--"]
        }
    }

    struct Packed: Sendable {
        var bytes: Int64
        var sha256: String
    }

    /// Packs `<dir>/state` and `<dir>/harness` into `spool` (a file only root reads), hashing as it goes.
    static func pack(_ dir: URL, as runner: Runner?, into spool: URL, limit: Int64) throws -> Packed {
        let out = try FileHandle(forWritingTo: created(spool))
        defer { try? out.close() }
        let p = Process()
        let command = (runner?.prefix ?? []) + ["/usr/bin/tar", "--create", "--sparse", "--file=-", "--directory=\(dir.path)"] + members
        p.executableURL = URL(filePath: command[0])
        p.arguments = Array(command.dropFirst())
        p.environment = ["PATH": "/usr/bin:/bin", "LC_ALL": "C"]
        p.currentDirectoryURL = URL(filePath: "/")
        let pipe = Pipe(), err = Pipe()
        p.standardOutput = pipe
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let errors = drain(err)
        var hash = SHA256()
        var bytes: Int64 = 0
        var failure: (any Error)?
        while true {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            hash.update(data: chunk)
            bytes += Int64(chunk.count)
            if failure == nil, bytes > limit {
                failure = CoreError("the archive passed \(limit) bytes (the most this node's free disk, less its reserve, takes)")
                p.terminate()
            }
            do { if failure == nil { try out.write(contentsOf: chunk) } } catch { failure = error; p.terminate() }
        }
        let status = p.waitUntilGone() ?? p.terminationStatus
        if let failure { throw CoreError("cannot spool the archive to \(spool.path): \(failure)") }
        // Only a clean exit is a whole archive: 1 ("a file changed as it was read", the manager writing in a
        // state dir) may have lost a write, and a signal's number could pass for an exit status.
        guard status == 0, p.terminationReason == .exit else {
            throw CoreError("tar could not pack \(dir.path) (exit \(status)): \(errors.wait())")
        }
        return Packed(bytes: bytes, sha256: NodeIdentity.hex(hash.finalize()))
    }

    /// Unpacks `spool` into `staging/state` and `staging/harness`, which the caller made for `runner`'s uid
    /// in a directory of root's; nothing else in the archive is taken.
    static func unpack(_ spool: URL, into staging: URL, as runner: Runner?) throws {
        let p = Process()
        let command = (runner?.prefix ?? []) + ["/usr/bin/tar", "--extract", "--file=-", "--directory=\(staging.path)", "--no-same-owner",
                                                "--preserve-permissions", "--no-overwrite-dir", "--delay-directory-restore"] + members
        p.executableURL = URL(filePath: command[0])
        p.arguments = Array(command.dropFirst())
        p.environment = ["PATH": "/usr/bin:/bin", "LC_ALL": "C"]
        p.currentDirectoryURL = URL(filePath: "/")
        let err = Pipe()
        p.standardInput = try FileHandle(forReadingFrom: spool)
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        let errors = drain(err)
        let status = p.waitUntilGone() ?? p.terminationStatus
        guard status == 0, p.terminationReason == .exit else { throw CoreError("tar could not unpack the archive (exit \(status)): \(errors.wait())") }
    }

    /// A new empty file only its owner reads.
    static func created(_ file: URL) throws -> URL {
        try? FileManager.default.removeItem(at: file)
        guard FileManager.default.createFile(atPath: file.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw CoreError("cannot create \(file.path)")
        }
        return file
    }

    /// Reads a child's stderr on a thread of its own; `wait()` gives its last lines (bounded).
    private static func drain(_ pipe: Pipe) -> Drained {
        let drained = Drained()
        Thread {
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            let text = String(decoding: data.suffix(2000), as: UTF8.self)
            drained.text.withLock { $0 = text.split(separator: "\n").suffix(5).joined(separator: "; ") }
            drained.done.signal()
        }.start()
        return drained
    }

    private final class Drained: Sendable {
        let text = Mutex("")
        let done = DispatchSemaphore(value: 0)
        func wait() -> String {
            done.wait()
            return text.withLock { $0.isEmpty ? "no message" : $0 }
        }
    }
}
