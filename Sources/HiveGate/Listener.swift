import Foundation
import HiveHost
import HiveWire
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A listening socket that hands each connection to `serve` on a thread of its own: TCP on 127.0.0.1
/// (the forwarder in the cage, the servers the gateway's tests and benchmark talk to) or a unix socket
/// (the gateway's ends in each agent's run dir).
public final class Listener: Sendable {
    /// The TCP port (0 for a unix socket).
    public let port: Int
    /// The unix socket's path, removed on ``stop()``.
    public let path: String?
    private let fd: Int32
    /// Connections served at once; more are closed on the accept thread, before any thread is spent on them.
    private let cap: Int
    private let open = Atomic<Int>(0)
    /// Whether the accept thread runs, and whether the descriptor is done with. Stopping and the thread's
    /// closing happen under this lock: a number closed and reused by a newer socket is never shut down.
    private let life = Mutex<(started: Bool, done: Bool)>((false, false))

    /// Listens on 127.0.0.1:`port` (0: any free port, see ``port``), serving `cap` connections at once.
    public init(loopbackPort port: Int = 0, cap: Int = 256) throws {
        self.cap = cap
        let fd = try Self.socket(AF_INET)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard IPAddress("127.0.0.1")!.withSockaddr(port: port, { bind(fd, $0, $1) }) == 0, listen(fd, 128) == 0,
              let bound = IPAddress.boundPort(fd) else {
            throw Self.failed(fd, "cannot listen on 127.0.0.1:\(port)")
        }
        self.fd = fd
        self.port = bound
        self.path = nil
    }

    /// Listens on a unix socket at `path` (whatever was there is removed first), with `mode`, owned by
    /// `owner` when given (the agent's uid, so its cage can connect and no other local user can).
    public init(unixPath path: String, mode: mode_t, owner: (uid_t, gid_t)? = nil, cap: Int = 256) throws {
        self.cap = cap
        let fd = try Self.socket(AF_UNIX)
        unlink(path)
        guard UnixSocket.withAddress(path, { bind(fd, $0, $1) }) == 0, chmod(path, mode) == 0,
              owner.map({ lchown(path, $0.0, $0.1) }) ?? 0 == 0, listen(fd, 64) == 0 else {
            unlink(path)
            throw Self.failed(fd, "cannot serve \(path)")
        }
        self.fd = fd
        self.port = 0
        self.path = path
    }

    private static func socket(_ family: Int32) throws -> Int32 {
        let fd = Glibc.socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw GatewayError("socket: \(String(cString: strerror(errno)))") }
        return fd
    }

    private static func failed(_ fd: Int32, _ what: String) -> GatewayError {
        let why = String(cString: strerror(errno))
        close(fd)
        return GatewayError("\(what): \(why)")
    }

    /// Accepts until ``stop()``; `serve` gets each connection and closes it when done.
    public func start(_ serve: @escaping @Sendable (Int32) -> Void) {
        signal(SIGPIPE, SIG_IGN) // splice(2) has no MSG_NOSIGNAL: a peer gone mid-tunnel is an error, not a signal
        life.withLock { $0.started = true }
        Thread.detachNewThread { [self] in
            // This thread owns the descriptor from here and closes it when it stops: closed anywhere else,
            // its number could be reused by a newer socket that this loop would then serve.
            defer { life.withLock { l in l.done = true; close(fd) } }
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    if errno == EMFILE || errno == ENFILE { Thread.sleep(forTimeInterval: 0.05); continue } // out of descriptors: wait, don't stop serving
                    return // stopped
                }
                _ = fcntl(client, F_SETFD, FD_CLOEXEC) // no child of this process inherits a tunnel
                guard open.add(1, ordering: .relaxed).newValue <= cap else {
                    open.subtract(1, ordering: .relaxed)
                    close(client)
                    continue
                }
                Thread.detachNewThread { [self] in
                    serve(client)
                    open.subtract(1, ordering: .relaxed)
                }
            }
        }
    }

    /// Stops accepting (connections already handed out go on) and removes a unix socket's file.
    public func stop() {
        life.withLock { l in
            if !l.done { shutdown(fd, Int32(SHUT_RDWR)) } // wakes a blocked accept, which close alone would not
        }
        if let path { unlink(path) }
    }

    deinit {
        // The accept thread holds this listener while it runs: here it has ended (and closed), or never started.
        life.withLock { l in if !l.started && !l.done { close(fd) } }
    }
}
