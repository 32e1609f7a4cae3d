import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Lets one thread sleep until it is signalled, a deadline passes, or the peer of a socket goes away.
///
/// A parked `recv` blocks its connection's thread here. Signals come from the send that committed a
/// message for the agent (through a self-pipe), so waking is immediate and nothing polls; the socket is
/// watched for `POLLRDHUP` only, so a client that pipelines more requests does not wake the park, but one
/// that disconnects does. Written on `poll(2)` because no package offers "condition variable or socket
/// hang-up, whichever comes first".
public final class Parker: @unchecked Sendable {
    // The self-pipe, made on the first park (most connections never park) and guarded by `lock`.
    private let lock = NSLock()
    private var fds: (read: Int32, write: Int32)?
    /// The connection's socket, or nil when there is no peer to watch (in-process callers, tests).
    private let peer: Int32?

    /// How a wait ended.
    public enum Outcome: Sendable, Equatable { case signalled, timedOut, peerClosed }

    private static let pollRDHUP: Int16 = 0x2000 // POLLRDHUP: Linux, needs _GNU_SOURCE, so not imported

    public init(watching peer: Int32? = nil) {
        self.peer = peer
    }

    deinit {
        if let fds { close(fds.read); close(fds.write) }
    }

    /// Makes the self-pipe if there is none yet. False when the process is out of descriptors: the
    /// caller then does not park (its recv returns empty) rather than the daemon dying.
    public func prepare() -> Bool {
        lock.withLock {
            if fds != nil { return true }
            var p: [Int32] = [0, 0]
            guard pipe(&p) == 0 else { return false }
            for fd in p {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            }
            fds = (p[0], p[1])
            return true
        }
    }

    /// Wakes the waiting thread (or makes its next wait return at once).
    public func signal() {
        guard let w = lock.withLock({ fds?.write }) else { return }
        var byte: UInt8 = 1
        _ = write(w, &byte, 1)
    }

    /// Sleeps until signalled, the deadline passes, or (with `watchPeer`) the watched peer hangs up. A
    /// signal sent before the wait began counts.
    public func wait(until deadline: ContinuousClock.Instant, watchPeer: Bool = true) -> Outcome {
        guard let readFD = lock.withLock({ fds?.read }) else { return .timedOut }
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            if left <= .zero { return drain() ? .signalled : .timedOut }
            let ms = Int32(clamping: (left.components.seconds * 1000) + Int64(left.components.attoseconds / 1_000_000_000_000_000) + 1)
            var fds = [pollfd(fd: readFD, events: Int16(POLLIN), revents: 0)]
            if watchPeer, let peer { fds.append(pollfd(fd: peer, events: Self.pollRDHUP, revents: 0)) }
            let n = poll(&fds, nfds_t(fds.count), ms)
            if n < 0 {
                if errno == EINTR { continue }
                return .timedOut
            }
            if fds[0].revents != 0, drain() { return .signalled }
            if fds.count > 1, fds[1].revents & (Self.pollRDHUP | Int16(POLLHUP) | Int16(POLLERR) | Int16(POLLNVAL)) != 0 {
                return .peerClosed
            }
        }
    }

    /// Empties the pipe; true when there was a signal in it.
    @discardableResult
    public func drain() -> Bool {
        guard let readFD = lock.withLock({ fds?.read }) else { return false }
        var buf = [UInt8](repeating: 0, count: 64)
        var any = false
        while read(readFD, &buf, buf.count) > 0 { any = true }
        return any
    }
}
