import Foundation
import HiveHost
import HiveWire
import Logging
#if canImport(Glibc)
import Glibc
#endif

// The one place core (root) touches what an agent or the manager can write (docs/security.md, "The
// rule"). Everything here starts from a directory whose path no agent can write (`<root>/agents`,
// `<run>/agents`, an agent's root-owned top directory) and goes on through descriptors opened without
// following links: a link, a swap or a rename an agent makes mid-walk can make the work stop short,
// never reach a host file. Everything else in core leaves agent-writable trees alone.

/// Hands a directory tree to an agent's uid (cages never write as root).
///
/// Each directory is opened with `O_NOFOLLOW` relative to its parent's descriptor and each entry is
/// changed with `AT_SYMLINK_NOFOLLOW`. A tree whose top already has the right owner is left alone (what
/// the agent made is its own).
enum Ownership {
    static func give(_ dir: URL, to uid: uid_t, group: gid_t) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let fd = open(dir.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw CoreError("cannot open \(dir.path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return }
        if st.st_uid == uid && st.st_gid == group { return }
        _ = fchown(fd, uid, group)
        walk(fd, uid, group, depth: 0)
    }

    /// Makes the directory `name` in `parent` (an agent's directory: a link or file there is refused,
    /// never followed) and gives it to `owner` (and its own group); nothing to do if it is there already.
    static func makeDirectory(_ name: String, in parent: URL, owner: uid_t?) throws {
        let fd = open(parent.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw CoreError("cannot open \(parent.path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        if mkdirat(fd, name, 0o755) != 0 && errno != EEXIST {
            throw CoreError("cannot make \(parent.appending(path: name).path): \(String(cString: strerror(errno)))")
        }
        let dir = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard dir >= 0 else { throw CoreError("\(parent.appending(path: name).path) is not a directory (a link or a file is never followed)") }
        defer { close(dir) }
        if let owner { _ = fchown(dir, owner, gid_t(owner)) }
    }

    private static func walk(_ dirFD: Int32, _ uid: uid_t, _ group: gid_t, depth: Int) {
        guard depth < 64 else { return }
        DirectoryListing.forEachEntry(dirFD) { name, isDirectory in
            _ = fchownat(dirFD, name, uid, group, AT_SYMLINK_NOFOLLOW)
            guard isDirectory else { return true }
            let child = openat(dirFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if child >= 0 {
                walk(child, uid, group, depth: depth + 1)
                close(child)
            }
            return true
        }
    }
}

/// Removes a tree an agent could write (its directories, its page dir, the manager's config repos).
///
/// The walk holds a descriptor per level, so a tree deeper than ``maxDepth`` (an agent can nest
/// directories far deeper than any descriptor budget) is cut: the too-deep directory is renamed up into
/// the top directory and removed from there, which costs one rename per ``maxDepth`` levels.
enum TreeRemoval {
    static let maxDepth = 64
    /// How long to keep trying while something changes the tree under the walk.
    static let patience = Duration.seconds(10)

    /// Removes `name` in `parent` and everything under it. `parent` must be a directory no agent can
    /// write (its path is trusted; it is opened without following a final link). Missing is fine.
    static func remove(_ name: String, in parent: URL) throws {
        let top = open(parent.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard top >= 0 else {
            if errno == ENOENT { return }
            throw CoreError("cannot open \(parent.path): \(String(cString: strerror(errno)))")
        }
        defer { close(top) }
        // Something racing the walk (renaming as it goes) can make one pass fall short; the next pass sees
        // what is there now. Cages are stopped before their trees go, so this is bounded in practice too.
        let deadline = ContinuousClock.now + patience
        repeat {
            var queue = [name]
            var complete = true
            while let next = queue.popLast(), ContinuousClock.now < deadline {
                complete = removeEntry(next, in: top, top: top, depth: 0, deadline: deadline, queue: &queue) && complete
            }
            if complete && queue.isEmpty { return }
        } while ContinuousClock.now < deadline
        throw CoreError("could not remove all of \(parent.appending(path: name).path): something kept changing under it")
    }

    /// Removes one entry (a whole directory through its descriptor), checking `deadline` as it goes: a
    /// tree that grows as fast as it is removed cannot hold core here past it.
    private static func removeEntry(_ name: String, in dirFD: Int32, top: Int32, depth: Int, deadline: ContinuousClock.Instant,
                                    queue: inout [String]) -> Bool {
        guard ContinuousClock.now < deadline else { return false }
        var st = stat()
        guard fstatat(dirFD, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return errno == ENOENT }
        guard st.st_mode & S_IFMT == S_IFDIR else { return unlinkat(dirFD, name, 0) == 0 || errno == ENOENT }
        if depth >= maxDepth {
            let aside = ".removing-\(UUID().uuidString)"
            guard renameat(dirFD, name, top, aside) == 0 else { return false }
            queue.append(aside)
            return true
        }
        // Swapped for a link or a file since the fstatat: O_NOFOLLOW | O_DIRECTORY refuse it, and the pass
        // falls short (the next one sees what is there now).
        let fd = openat(dirFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        // In batches from a fresh listing each time (what was removed is gone from it): a directory of
        // millions of names never sits in memory whole.
        var complete = true
        while true {
            var batch: [String] = []
            DirectoryListing.forEachEntry(fd, limit: 1024) { entry, _ in batch.append(entry); return true }
            if batch.isEmpty { break }
            var removed = 0
            for entry in batch where removeEntry(entry, in: fd, top: top, depth: depth + 1, deadline: deadline, queue: &queue) { removed += 1 }
            if removed < batch.count { complete = false }
            if removed == 0 || ContinuousClock.now >= deadline { break } // what is left does not go: the next pass tries again
        }
        return (unlinkat(dirFD, name, AT_REMOVEDIR) == 0 || errno == ENOENT) && complete
    }

}

/// An agent's run dir, `<run>/agents/<n>`, mounted at `/run/hive` in its cage. It is root's (0755) and
/// holds the agent's identity socket `mcp.sock`, which core binds, and `page/`, the one directory there
/// the agent writes: its page server's `web.sock`. The web process (its group) can enter `page/` and
/// nothing else there speaks to it, so it can never speak as the agent; the agent cannot move, replace or
/// block its own `mcp.sock`.
enum AgentRunDir {
    static let page = "page"
    static let webGID = gid_t(WebSurface.uid)

    /// Makes the run dir anew (whatever was there, an older layout's or an agent's, is removed first).
    static func create(_ name: AgentName, in layout: HiveLayout) throws {
        let agents = layout.runDir.appending(path: "agents")
        try FileManager.default.createDirectory(at: agents, withIntermediateDirectories: true)
        try TreeRemoval.remove(name.rawValue, in: agents)
        let top = open(agents.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard top >= 0 else { throw CoreError("cannot open \(agents.path): \(String(cString: strerror(errno)))") }
        defer { close(top) }
        guard mkdirat(top, name.rawValue, 0o755) == 0 else {
            throw CoreError("cannot make the run dir of \(name): \(String(cString: strerror(errno)))")
        }
        let dir = openat(top, name.rawValue, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard dir >= 0 else { throw CoreError("cannot open the run dir of \(name): \(String(cString: strerror(errno)))") }
        defer { close(dir) }
        _ = fchmod(dir, 0o755) // whatever the umask
        guard mkdirat(dir, page, 0o750) == 0 else {
            throw CoreError("cannot make the page dir of \(name): \(String(cString: strerror(errno)))")
        }
        give(name, to: getuid(), in: layout)
    }

    /// Hands the page dir to the uid the agent's cage runs as (setgid to the web's group, so its
    /// `web.sock` gets that group) and its identity socket to that uid and its own group.
    static func give(_ name: AgentName, to uid: uid_t, in layout: HiveLayout) {
        let dir = open(layout.agentRunDir(name).path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard dir >= 0 else { return }
        defer { close(dir) }
        let root = getuid() == 0
        _ = fchownat(dir, page, uid, root ? webGID : getgid(), AT_SYMLINK_NOFOLLOW)
        _ = fchmodat(dir, page, root ? 0o2750 : 0o750, 0)
        // The socket keeps its owner's own group: the web's group never reaches the agent's identity.
        _ = fchownat(dir, "mcp.sock", uid, root ? gid_t(uid) : getgid(), AT_SYMLINK_NOFOLLOW)
    }

    /// Removes the run dir (the agent was destroyed).
    static func remove(_ name: AgentName, in layout: HiveLayout) {
        try? TreeRemoval.remove(name.rawValue, in: layout.runDir.appending(path: "agents"))
    }
}

/// How much disk a tree an agent writes takes (its `st_blocks`, so sparse files count what they use),
/// and whose it is, walked through descriptors like everything here. The walk stops counting at
/// `maxEntries` entries or ``maxDepth`` levels: `complete` is then false.
enum TreeUsage {
    static let maxDepth = 256
    struct Result {
        var bytes: Int64 = 0
        var entries = 0
        var complete = true
        var byOwner: [uid_t: Int64] = [:]
    }

    static func measure(_ dir: URL, maxEntries: Int) -> Result {
        var result = Result()
        let fd = open(dir.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return result }
        walk(fd, depth: 0, maxEntries: maxEntries, into: &result)
        close(fd)
        return result
    }

    private static func walk(_ dirFD: Int32, depth: Int, maxEntries: Int, into result: inout Result) {
        guard depth < maxDepth else { result.complete = false; return }
        DirectoryListing.forEachEntry(dirFD) { name, _ in
            guard result.entries < maxEntries else { result.complete = false; return false }
            result.entries += 1
            var st = stat()
            guard fstatat(dirFD, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return true }
            let bytes = Int64(st.st_blocks) * 512
            result.bytes += bytes
            result.byOwner[st.st_uid, default: 0] += bytes
            guard st.st_mode & S_IFMT == S_IFDIR else { return true }
            let child = openat(dirFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard child >= 0 else { return true }
            walk(child, depth: depth + 1, maxEntries: maxEntries, into: &result)
            close(child)
            return true
        }
    }
}

/// Reading an open directory as it goes (the walks above share it).
enum DirectoryListing {
    /// Calls `body` with each entry of an open directory (not `.` or `..`) and whether it is a
    /// directory, at most `limit` of them, until `body` says false; read as it goes, never collected.
    static func forEachEntry(_ dirFD: Int32, limit: Int = .max, _ body: (String, Bool) -> Bool) {
        let copy = dup(dirFD)
        guard copy >= 0 else { return }
        guard let dir = fdopendir(copy) else { close(copy); return }
        defer { closedir(dir) }
        rewinddir(dir) // the descriptor is shared with earlier listings: start from the top
        var seen = 0
        while seen < limit, let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name == "." || name == ".." { continue }
            seen += 1
            guard body(name, entry.pointee.d_type == UInt8(DT_DIR)) else { return }
        }
    }
}
