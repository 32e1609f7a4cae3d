import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A TCP listener on 127.0.0.1 that hands each connection to `serve` on a thread of its own: the
/// forwarder in the cage, and the servers the gateway's tests and benchmark talk to.
public final class LoopbackListener: Sendable {
    public let port: Int
    private let fd: Int32

    /// Listens on 127.0.0.1:`port` (0: any free port, see ``port``).
    public init(port: Int = 0) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw GatewayError("socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard IPAddress("127.0.0.1")!.withSockaddr(port: port, { bind(fd, $0, $1) }) == 0, listen(fd, 128) == 0,
              let bound = IPAddress.boundPort(fd) else {
            let why = String(cString: strerror(errno))
            close(fd)
            throw GatewayError("cannot listen on 127.0.0.1:\(port): \(why)")
        }
        self.fd = fd
        self.port = bound
    }

    /// Accepts until ``stop()``; `serve` gets each connection and closes it when done.
    public func start(_ serve: @escaping @Sendable (Int32) -> Void) {
        let fd = self.fd
        Thread.detachNewThread {
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 {
                    if errno == EINTR { continue }
                    return // stopped
                }
                Thread.detachNewThread { serve(client) }
            }
        }
    }

    /// Stops accepting (connections already handed out go on).
    public func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
    }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR)) // wakes a blocked accept, which close alone would not
        close(fd)
    }
}
