import CSplice
import Foundation
import HiveHost
#if canImport(Glibc)
import Glibc
#endif

/// Two connected sockets copied into each other until one side closes, on the calling thread.
/// Shared by the gateway's CONNECT relay (host side) and the forwarder in the cage.
///
/// The bytes move with `splice(2)` through a pipe per direction, inside the kernel: the tunnel's two
/// hops copied every byte through user space otherwise (31 % of direct loopback for a 500 MB download,
/// `hive-bench --gateway-mb`). Where splice is refused (a socket type without it), the same loop falls
/// back to read and write.
enum Tunnel {
    enum End: Equatable {
        /// Side 0 or 1 closed (or reset).
        case closedBy(Int)
        /// Nothing moved either way for the idle time.
        case idle
        case failed(String)
    }

    /// Bytes per splice, and each pipe's size: 1 MiB (Linux's default pipe-max-size) moved 500 MB at 74-92 %
    /// of direct loopback against 64 % with 256 KiB, the forwarder handing connections over (`hive-bench --gateway-mb`).
    static let chunk = 1024 * 1024

    /// Copies `a` ⇄ `b`; `pay(n)` runs before each chunk of `n` bytes is passed on (it may pause).
    /// Returns the bytes moved from `a` to `b` and from `b` to `a`, and how it ended.
    static func relay(_ a: Int32, _ b: Int32, idle: Double, pay: (Int) -> Void = { _ in }) -> ((Int, Int), End) {
        var fds = [pollfd(fd: a, events: Int16(POLLIN), revents: 0), pollfd(fd: b, events: Int16(POLLIN), revents: 0)]
        var pipes: [[Int32]] = []
        for _ in 0..<2 {
            var p: [Int32] = [-1, -1]
            if csplice_pipe(&p, Int32(chunk)) == 0 { pipes.append(p) }
        }
        defer { for p in pipes { close(p[0]); close(p[1]) } }
        var spliced = pipes.count == 2
        var buffer = [UInt8](repeating: 0, count: spliced ? 0 : chunk)
        var moved = [0, 0]
        while true {
            let ready = poll(&fds, 2, Int32(idle * 1000))
            if ready == 0 { return ((moved[0], moved[1]), .idle) }
            if ready < 0 {
                if errno == EINTR { continue }
                return ((moved[0], moved[1]), .failed("poll: \(String(cString: strerror(errno)))"))
            }
            for i in 0..<2 where fds[i].revents != 0 {
                let from = fds[i].fd, to = fds[1 - i].fd
                var n = -1
                if spliced {
                    n = csplice_move(from, pipes[i][1], UInt(chunk), 1)
                    if n < 0, errno == EINVAL {
                        spliced = false // this pair of sockets does not splice: copy from here on
                        buffer = [UInt8](repeating: 0, count: chunk)
                    }
                }
                if !spliced { n = read(from, &buffer, buffer.count) }
                if n < 0, errno == EAGAIN || errno == EINTR { continue }
                if n <= 0 { return ((moved[0], moved[1]), .closedBy(i)) }
                pay(n)
                let ok = spliced ? drain(pipes[i][0], into: to, n) : writeAll(to, buffer, n)
                guard ok else { return ((moved[0], moved[1]), .failed("the other side stopped taking bytes")) }
                moved[i] += n
            }
        }
    }

    /// Moves `count` bytes already in the pipe `from` into the socket `to`.
    static func drain(_ from: Int32, into to: Int32, _ count: Int) -> Bool {
        var left = count
        while left > 0 {
            let n = csplice_move(from, to, UInt(left), 0)
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            if n == 0 { return false }
            left -= n
        }
        return true
    }

    /// Writes the first `count` bytes of `buffer` without copying them into a `Data` first (that extra
    /// copy per chunk showed in `hive-bench --gateway-mb`: 866 → 1051 MB/s, debug build, same run).
    static func writeAll(_ fd: Int32, _ buffer: [UInt8], _ count: Int) -> Bool {
        buffer.withUnsafeBytes { raw in
            var offset = 0
            while offset < count {
                let n = send(fd, raw.baseAddress! + offset, count - offset, Int32(MSG_NOSIGNAL))
                if n < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += n
            }
            return true
        }
    }
}
