import Foundation
import HiveWire
#if canImport(Glibc)
import Glibc
#endif

/// Opens a file under a root one component at a time, each relative to its parent's descriptor and never
/// through a link (`O_NOFOLLOW`): neither `..` nor a symlink an agent planted anywhere on the way can lead
/// outside the root. What root uses to read anything that lives in an agent's directories.
public enum ConfinedPath {
    /// A read-only descriptor of the regular file at `parts` under `root`, or nil (missing, a link, not a
    /// regular file, a file with other hard links, larger than `maxBytes`). The caller closes it.
    public static func openFile(_ parts: [String], under root: URL, maxBytes: Int = 1 << 30) -> Int32? {
        guard !parts.isEmpty, parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." && !$0.contains("/") }) else { return nil }
        var dir = open(root.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard dir >= 0 else { return nil }
        for part in parts.dropLast() {
            let next = openat(dir, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            close(dir)
            guard next >= 0 else { return nil }
            dir = next
        }
        let fd = openat(dir, parts.last!, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        close(dir)
        guard fd >= 0 else { return nil }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_nlink == 1, Int(st.st_size) <= maxBytes else { close(fd); return nil }
        return fd
    }

    /// Copies what `fd` holds into a new file at `to` (0600), then closes `fd`.
    public static func copy(_ fd: Int32, to url: URL) throws {
        defer { close(fd) }
        let out = open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard out >= 0 else { throw RequestError("cannot create \(url.path): \(String(cString: strerror(errno)))") }
        defer { close(out) }
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = read(fd, &buf, buf.count)
            if n == 0 { return }
            guard n > 0 else { throw RequestError("cannot read: \(String(cString: strerror(errno)))") }
            var done = 0
            while done < n {
                let w = buf[done..<n].withUnsafeBytes { write(out, $0.baseAddress, $0.count) }
                guard w > 0 else { throw RequestError("cannot write \(url.path): \(String(cString: strerror(errno)))") }
                done += w
            }
        }
    }
}
