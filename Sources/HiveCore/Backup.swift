import Foundation
import GRDB
import HiveHost
import HiveWire
#if canImport(Glibc)
import Glibc
#endif

/// `hive backup` and `hive restore`: a copy of a hive root taken while it runs, and its way back.
///
/// The broker and the forge's database are copied with SQLite's online backup API in one step (one read
/// transaction: a consistent snapshot however hard core is writing, never a torn file). Everything else
/// under the root (config and applied repos, credentials, the forge's repos, every agent's state and
/// harness dirs, /shared) is copied through descriptors, one component at a time and never through a
/// link: an agent's directories are the agent's to fill, so a link it planted is copied as a link (its
/// target as text), a fifo or socket is skipped, and a file is copied as far as its size when the copy
/// began, holes kept (a sparse terabyte an agent made costs what its blocks hold, and a file it keeps
/// appending to ends). Owners and modes are kept. What is skipped is listed; the run dir, core's lock and
/// the databases' WAL files are left out (the backups of the databases stand for them).
public enum HiveBackup {
    public struct Summary: Sendable, Equatable, CustomStringConvertible {
        public var files = 0, directories = 0, links = 0, bytes: Int64 = 0, databases = 0, skipped: [String] = []
        public var description: String {
            "\(databases) databases, \(files) files (\(bytes / 1_048_576) MiB), \(directories) directories, \(links) links"
                + (skipped.isEmpty ? "" : "; skipped \(skipped.count): \(skipped.prefix(5).joined(separator: ", "))\(skipped.count > 5 ? ", …" : "")")
        }
    }

    static let manifestName = "hive-backup.json"
    /// Databases copied with the backup API, relative to the root.
    static let databases = ["broker.sqlite", "forge/forge.sqlite"]
    /// Never copied: the run dir (sockets), locks, the databases' own WAL and shared-memory files.
    static func excluded(_ relative: String, databasesToo: Bool) -> Bool {
        relative == "run" || relative == "core.lock"
            || databases.contains { (databasesToo && relative == $0) || relative == $0 + "-wal" || relative == $0 + "-shm" }
    }

    /// Copies the hive at `root` into `destination` (which must not exist or be empty), as `destination/root`
    /// with a manifest beside it.
    public static func take(root: URL, to destination: URL, now: Date = Date()) throws -> Summary {
        let rootPath = root.standardizedFileURL.resolvingSymlinksInPath().path
        let destPath = destination.standardizedFileURL.resolvingSymlinksInPath().path
        guard destPath != rootPath, !destPath.hasPrefix(rootPath + "/") else {
            throw CoreError("the backup's destination, \(destination.path), is inside the hive root: it would copy itself")
        }
        // Everything below is made through descriptors of the destination, never by its path again: a
        // directory on the way that someone else can rename cannot send a file elsewhere.
        let dest = try prepareEmpty(destination, what: "the backup's destination")
        defer { close(dest) }
        guard mkdirat(dest, "root", 0o700) == 0 else { throw CoreError("cannot make \(destination.path)/root: \(String(cString: strerror(errno)))") }
        let into = openat(dest, "root", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard into >= 0 else { throw CoreError("cannot open \(destination.path)/root: \(String(cString: strerror(errno)))") }
        defer { close(into) }
        var summary = Summary()
        // The databases first: whatever was acked before the backup began is in their snapshot.
        for db in databases where FileManager.default.fileExists(atPath: root.appending(path: db).path) {
            let parts = db.split(separator: "/").map(String.init)
            for dir in parts.dropLast() where mkdirat(into, dir, 0o755) != 0 && errno != EEXIST {
                throw CoreError("cannot make \(dir) in the backup: \(String(cString: strerror(errno)))")
            }
            var config = Configuration()
            config.readonly = true
            let source = try DatabaseQueue(path: root.appending(path: db).path, configuration: config)
            // SQLite opens by path: this one goes through the descriptor of the backup's root.
            try source.backup(to: try DatabaseQueue(path: "/proc/self/fd/\(into)/\(db)"))
            try source.close()
            summary.databases += 1
        }
        try copyTree(from: root, to: into, skipDatabases: true, summary: &summary)
        let manifest: [String: Any] = ["format": 1, "taken_at": now.timeIntervalSince1970, "root": root.path,
                                       "databases": summary.databases, "files": summary.files, "skipped": summary.skipped]
        let data = try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys])
        let out = openat(dest, manifestName, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard out >= 0 else { throw CoreError("cannot write the manifest: \(String(cString: strerror(errno)))") }
        defer { close(out) }
        guard data.withUnsafeBytes({ write(out, $0.baseAddress, $0.count) }) == data.count else { throw CoreError("cannot write the manifest") }
        return summary
    }

    /// Copies a backup taken by ``take(root:to:now:)`` to `root`, which must not exist or be empty (with
    /// `force`, it may hold files, and the backup's overwrite nothing: a file already there is skipped).
    public static func restore(from backup: URL, to root: URL, force: Bool = false) throws -> Summary {
        guard FileManager.default.fileExists(atPath: backup.appending(path: manifestName).path) else {
            throw CoreError("\(backup.path) is not a hive backup (no \(manifestName))")
        }
        let target: Int32
        if !force { target = try prepareEmpty(root, what: "the root to restore into") } else {
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            target = open(root.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard target >= 0 else { throw CoreError("cannot open \(root.path) (a link is never followed): \(String(cString: strerror(errno)))") }
        }
        defer { close(target) }
        var top = stat()
        guard lstat(backup.appending(path: "root").path, &top) == 0, (top.st_mode & S_IFMT) == S_IFDIR else {
            throw CoreError("\(backup.path)/root is not a directory")
        }
        // Held for the restore: a core cannot start on the root meanwhile, and one running there refuses it.
        let lock = try ExclusiveLock(path: URL(filePath: "/proc/self/fd/\(target)/core.lock"), what: "the hive root", holder: "hive restore")
        defer { withExtendedLifetime(lock) {} }
        var summary = Summary()
        try copyTree(from: backup.appending(path: "root"), to: target, skipDatabases: false, summary: &summary)
        if !force {
            // The root as it was (its owner and mode: the web process reaches the run dir through it).
            _ = fchown(target, top.st_uid, top.st_gid)
            _ = fchmod(target, mode_t(top.st_mode & 0o7777))
        }
        summary.databases = databases.filter { FileManager.default.fileExists(atPath: root.appending(path: $0).path) }.count
        return summary
    }

    /// Makes `dir` (0700), or takes an existing one only if it is empty, a real directory (not a link)
    /// and ours, with no one else allowed to write in it; returns its descriptor, through which everything
    /// that goes in is made.
    static func prepareEmpty(_ dir: URL, what: String) throws -> Int32 {
        if mkdir(dir.path, 0o700) != 0, errno != EEXIST {
            throw CoreError("cannot make \(what), \(dir.path): \(String(cString: strerror(errno)))")
        }
        let fd = open(dir.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw CoreError("\(what), \(dir.path), is not a directory (a link is never followed)") }
        var st = stat()
        var empty = true
        DirectoryListing.forEachEntry(fd, limit: 1) { _, _ in empty = false; return false }
        guard fstat(fd, &st) == 0, st.st_uid == geteuid(), st.st_mode & 0o022 == 0 else {
            close(fd)
            throw CoreError("\(what), \(dir.path), exists and is not an empty directory of yours that only you can write")
        }
        guard empty else {
            close(fd)
            throw CoreError("\(what), \(dir.path), is not empty (restore --force merges into a root that holds files)")
        }
        _ = fchmod(fd, 0o700)
        return fd
    }

    /// Copies the tree at `source` into the open directory `destination`.
    static func copyTree(from source: URL, to destination: Int32, skipDatabases: Bool, summary: inout Summary) throws {
        let src = open(source.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard src >= 0 else { throw CoreError("cannot open \(source.path): \(String(cString: strerror(errno)))") }
        defer { close(src) }
        try copyEntries(src, destination, relative: "", depth: 0, skipDatabases: skipDatabases, summary: &summary)
    }

    private static let maxDepth = 64
    /// lseek's SEEK_DATA and SEEK_HOLE (Linux; the C headers show them only with _GNU_SOURCE).
    private static let seekData: Int32 = 3, seekHole: Int32 = 4

    private static func copyEntries(_ src: Int32, _ dst: Int32, relative: String, depth: Int, skipDatabases: Bool, summary: inout Summary) throws {
        var names: [String] = []
        DirectoryListing.forEachEntry(src) { name, _ in names.append(name); return true }
        for name in names {
            let rel = relative.isEmpty ? name : relative + "/" + name
            if excluded(rel, databasesToo: skipDatabases) { continue }
            var st = stat()
            guard fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { summary.skipped.append(rel + " (vanished)"); continue }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                guard depth < maxDepth else { summary.skipped.append(rel + " (deeper than \(maxDepth))"); continue }
                var existed = false
                if mkdirat(dst, name, 0o700) != 0 {
                    guard errno == EEXIST else { throw CoreError("cannot make \(rel): \(String(cString: strerror(errno)))") }
                    existed = true
                }
                let childSrc = openat(src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard childSrc >= 0 else { summary.skipped.append(rel + " (changed while copied)"); continue }
                defer { close(childSrc) }
                let childDst = openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard childDst >= 0 else { throw CoreError("\(rel) in the destination is not a directory") }
                defer { close(childDst) }
                if !existed {
                    // Owner and mode once its content is in (a directory made 0700 until then).
                    defer { _ = fchown(childDst, st.st_uid, st.st_gid); _ = fchmod(childDst, mode_t(st.st_mode & 0o7777)) }
                    summary.directories += 1
                    try copyEntries(childSrc, childDst, relative: rel, depth: depth + 1, skipDatabases: skipDatabases, summary: &summary)
                    continue
                }
                summary.directories += 1
                try copyEntries(childSrc, childDst, relative: rel, depth: depth + 1, skipDatabases: skipDatabases, summary: &summary)
            case S_IFLNK:
                var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let n = readlinkat(src, name, &buffer, buffer.count - 1)
                guard n >= 0 else { summary.skipped.append(rel + " (unreadable link)"); continue }
                buffer[n] = 0
                guard symlinkat(buffer, dst, name) == 0 else { summary.skipped.append(rel + " (link exists)"); continue }
                _ = fchownat(dst, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW)
                summary.links += 1
            case S_IFREG:
                // Read through its own descriptor, a hard-linked file is only what it holds: copied whole.
                try copyFile(src, dst, name, rel: rel, st, summary: &summary)
            default:
                summary.skipped.append(rel + " (not a file, directory or link)")
            }
        }
    }

    private static func copyFile(_ src: Int32, _ dst: Int32, _ name: String, rel: String, _ st: stat, summary: inout Summary) throws {
        let input = openat(src, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard input >= 0 else { summary.skipped.append(rel + " (changed while copied)"); return }
        defer { close(input) }
        var now = stat()
        guard fstat(input, &now) == 0, (now.st_mode & S_IFMT) == S_IFREG, now.st_ino == st.st_ino else {
            summary.skipped.append(rel + " (changed while copied)"); return
        }
        let output = openat(dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard output >= 0 else {
            if errno == EEXIST { summary.skipped.append(rel + " (already there)"); return }
            throw CoreError("cannot write \(rel): \(String(cString: strerror(errno)))")
        }
        defer { close(output) }
        // As far as the size it had when the copy began, data extent by extent (SEEK_DATA/SEEK_HOLE): holes
        // stay holes, and a file someone keeps appending to still ends.
        let size = Int64(now.st_size)
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var at: Int64 = 0
        while at < size {
            let data = Int64(lseek(input, off_t(at), Self.seekData))
            if data < 0 || data >= size { break }
            let found = Int64(lseek(input, off_t(data), Self.seekHole))
            let hole: Int64 = found < 0 ? size : Swift.min(size, found)
            var pos: Int64 = data
            while pos < hole {
                let n = pread(input, &buffer, Int(Swift.min(Int64(buffer.count), hole - pos)), off_t(pos))
                if n == 0 { break }
                guard n > 0 else { throw CoreError("cannot read \(rel): \(String(cString: strerror(errno)))") }
                var done = 0
                while done < n {
                    let w = buffer[done..<n].withUnsafeBytes { pwrite(output, $0.baseAddress, $0.count, off_t(pos) + off_t(done)) }
                    guard w > 0 else { throw CoreError("cannot write \(rel): \(String(cString: strerror(errno)))") }
                    done += w
                }
                pos += Int64(n)
                summary.bytes += Int64(n)
            }
            at = Swift.max(hole, pos)
        }
        _ = ftruncate(output, off_t(size))
        _ = fchown(output, st.st_uid, st.st_gid)
        _ = fchmod(output, mode_t(st.st_mode & 0o7777))
        summary.files += 1
    }
}
