import Foundation
import HiveWire
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A unix socket whose every connection is carried to one fixed TCP endpoint chosen by the hive (a
/// gated cage's way to the forge): nothing is parsed, the endpoint cannot be steered, each connection
/// is logged with what it moved.
public final class SocketRelay: Sendable {
    public static let maxConnections = 32
    private let listener: Listener
    private let address: IPAddress
    private let port: Int
    private let open = Atomic<Int>(0)
    private let record: @Sendable (_ allowed: Bool, _ note: String, _ out: Int, _ in: Int) -> Void

    public init(path: String, owner: (uid_t, gid_t)?, to address: IPAddress, port: Int,
                record: @escaping @Sendable (_ allowed: Bool, _ note: String, _ out: Int, _ in: Int) -> Void) throws {
        listener = try Listener(unixPath: path, mode: 0o660, owner: owner)
        self.address = address
        self.port = port
        self.record = record
    }

    public func start() {
        listener.start { [self] client in
            defer { close(client) }
            guard open.add(1, ordering: .relaxed).newValue <= Self.maxConnections else {
                open.subtract(1, ordering: .relaxed)
                record(false, "\(Self.maxConnections) connections are open already", 0, 0)
                return
            }
            defer { open.subtract(1, ordering: .relaxed) }
            guard let upstream = ConnectProxy.dial([address], port: port) else {
                record(true, "\(address):\(port) did not answer", 0, 0)
                return
            }
            defer { close(upstream) }
            let (moved, _) = Tunnel.relay(client, upstream, idle: ConnectProxy.idleTimeout)
            record(true, "closed", moved.0, moved.1)
        }
    }

    public func stop() { listener.stop() }
}
