import Foundation
import HiveHost
import HiveWire
#if canImport(Glibc)
import Glibc
#endif

/// A failure talking to a hive socket, phrased for the person at the terminal.
public enum HiveClientError: Error, CustomStringConvertible, Sendable {
    /// The socket is missing or nobody listens on it.
    case unreachable(path: String, reason: String)
    /// The server answered `ok: false`.
    case refused(String)
    /// The connection broke or the server sent something unreadable.
    case protocolError(String)

    public var description: String {
        switch self {
        case .unreachable(let path, let reason):
            return "cannot reach the hive at \(path): \(reason). Is `hive core` (or `hive up`) running with this run dir? Set --run-dir or HIVE_RUN_DIR"
        case .refused(let message):
            return message
        case .protocolError(let message):
            return "hive socket protocol error: \(message)"
        }
    }
}

/// One connection to a hive socket (admin or agent), speaking newline-delimited JSON.
///
/// Calls are blocking syscalls on a private serial queue, bridged to async, so a 180-second long-poll
/// parks one thread of this connection and never a thread of Swift's cooperative pool. Written on raw
/// sockets because the clients (CLI, harness, tests) should not need an event loop to send one line.
public final class HiveConnection: @unchecked Sendable {
    // Only touched on `queue`.
    private let fd: Int32
    private var buffer: [UInt8] = []
    private let queue: DispatchQueue
    public let path: String

    /// Connects to the socket at `path`.
    public init(path: String) throws(HiveClientError) {
        self.path = path
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .unreachable(path: path, reason: String(cString: strerror(errno))) }
        guard let rc = UnixSocket.withAddress(path, { connect(fd, $0, $1) }) else {
            close(fd)
            throw .unreachable(path: path, reason: "the path is \(path.utf8.count) bytes, longer than a unix socket allows (\(UnixSocket.maxPathBytes))")
        }
        guard rc == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw .unreachable(path: path, reason: reason)
        }
        self.fd = fd
        self.queue = DispatchQueue(label: "hive.connection")
    }

    deinit { close(fd) }

    /// Sends one command and decodes its reply; an `ok: false` answer throws ``HiveClientError/refused(_:)``.
    public func call<C: HiveCommand>(_ command: C) async throws -> C.Reply {
        let line = try await roundTrip(Envelope(command).line())
        return try Self.decode(C.Reply.self, from: line)
    }

    /// Like ``call(_:)``, blocking the calling thread instead of suspending. For threads that own a
    /// connection (benchmarks, a harness's receive loop), not for Swift's cooperative pool.
    public func callBlocking<C: HiveCommand>(_ command: C) throws -> C.Reply {
        let request = try Envelope(command).line()
        let line = try queue.sync { try writeAll(request); return try readLine() }
        return try Self.decode(C.Reply.self, from: line)
    }

    /// Sends raw bytes (which should end in a newline) and returns the next response line, without it.
    /// Cancelling the task hangs up the connection (the blocked read returns), so a parked `recv` never
    /// holds up a shutdown; the connection is unusable afterwards.
    public func roundTrip(_ request: Data) async throws -> Data {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Data, any Error>) in
                queue.async {
                    c.resume(with: Result { try self.writeAll(request); return try self.readLine() })
                }
            }
        } onCancel: {
            hangUp()
        }
    }

    /// Shuts the socket down in both directions: a blocked call returns with an error at once.
    public func hangUp() {
        shutdown(fd, Int32(SHUT_RDWR))
    }

    /// Decodes a response line: the reply on `ok: true`, else the server's error.
    public static func decode<R: Decodable>(_ type: R.Type, from line: Data) throws -> R {
        let decoder = WireCoding.decoder()
        let status: ReplyStatus
        do { status = try decoder.decode(ReplyStatus.self, from: line) } catch {
            throw HiveClientError.protocolError("unreadable response: \(String(decoding: line.prefix(200), as: UTF8.self))")
        }
        guard status.ok else { throw HiveClientError.refused(status.error ?? "request refused") }
        do { return try decoder.decode(R.self, from: line) } catch {
            throw HiveClientError.protocolError("unexpected response shape: \(error)")
        }
    }

    private func writeAll(_ data: Data) throws {
        guard UnixSocket.writeAll(fd, data) else {
            throw HiveClientError.protocolError("write failed: \(String(cString: strerror(errno)))")
        }
    }

    private func readLine() throws -> Data {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let nl = buffer.firstIndex(of: 0x0A) {
                let line = Data(buffer[..<nl])
                buffer.removeSubrange(...nl)
                return line
            }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                throw HiveClientError.protocolError("read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { throw HiveClientError.protocolError("the hive closed the connection") }
            buffer.append(contentsOf: chunk[..<n])
        }
    }
}
