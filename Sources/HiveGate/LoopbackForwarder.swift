import Foundation
import HiveHost
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The cage's end of the gated network: a TCP listener on the cage's own loopback that the CLI is
/// pointed at (`HTTPS_PROXY`, `ANTHROPIC_BASE_URL`), each connection carried unchanged to a unix
/// socket that core bound into the cage. The cage has no other way out: its network namespace holds
/// loopback only, so every byte leaves through the gateway, which decides and counts.
public final class LoopbackForwarder: Sendable {
    public let port: Int
    public let socketPath: String
    private let listener: Int32
    /// Connections carried at once; more wait in the listen backlog.
    public static let maxConnections = 64
    private let open = Atomic<Int>(0)
    private let stopped = Atomic<Bool>(false)

    /// Listens on 127.0.0.1:`port` (0: any free port, see ``port``).
    public init(port: Int = 0, to socketPath: String) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw GatewayError("socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let loopback = IPAddress("127.0.0.1")!
        guard loopback.withSockaddr(port: port, { bind(fd, $0, $1) }) == 0, listen(fd, 128) == 0, let bound = IPAddress.boundPort(fd) else {
            let why = String(cString: strerror(errno))
            close(fd)
            throw GatewayError("cannot listen on 127.0.0.1:\(port): \(why)")
        }
        self.port = bound
        self.socketPath = socketPath
        listener = fd
    }

    /// Serves on a thread until ``stop()``.
    public func start() {
        signal(SIGPIPE, SIG_IGN) // see ConnectProxy.start
        Thread.detachNewThread { [self] in
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 {
                    if errno == EINTR { continue }
                    return
                }
                guard open.add(1, ordering: .relaxed).newValue <= Self.maxConnections else {
                    open.subtract(1, ordering: .relaxed)
                    close(client)
                    continue
                }
                Thread.detachNewThread { [self] in
                    defer { close(client); open.subtract(1, ordering: .relaxed) }
                    let upstream = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                    guard upstream >= 0 else { return }
                    defer { close(upstream) }
                    guard UnixSocket.withAddress(socketPath, { connect(upstream, $0, $1) }) == 0 else { return }
                    _ = Tunnel.relay(client, upstream, idle: ConnectProxy.idleTimeout)
                }
            }
        }
    }

    public func stop() {
        guard !stopped.exchange(true, ordering: .sequentiallyConsistent) else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }
}
