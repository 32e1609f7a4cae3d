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
    public var port: Int { listener.port }
    public let socketPath: String
    private let listener: Listener
    /// Connections carried at once; more are closed at once.
    public static let maxConnections = 64

    /// Whether each connection is handed over whole (``HandOff``) rather than copied.
    public let handOver: Bool

    /// Listens on 127.0.0.1:`port` (0: any free port, see ``port``). `handOver`: send each accepted
    /// connection itself to the socket (the gateway's proxy and forge ends take them), else copy its bytes.
    public init(port: Int = 0, to socketPath: String, handOver: Bool = false) throws {
        listener = try Listener(loopbackPort: port, cap: Self.maxConnections)
        self.socketPath = socketPath
        self.handOver = handOver
    }

    /// Serves on a thread until ``stop()``.
    public func start() {
        signal(SIGPIPE, SIG_IGN) // see ConnectProxy.start
        listener.start { [self] client in
            defer { close(client) }
            let upstream = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard upstream >= 0 else { return }
            defer { close(upstream) }
            guard UnixSocket.withAddress(socketPath, { connect(upstream, $0, $1) }) == 0 else { return }
            if handOver {
                _ = HandOff.send(client, over: upstream) // the gateway holds it now; this copy closes
            } else {
                _ = Tunnel.relay(client, upstream, idle: ConnectProxy.idleTimeout)
            }
        }
    }

    public func stop() { listener.stop() }
}
