import Foundation
import HiveBroker
import HiveHost
import HiveWire
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// A unix-socket server speaking newline-delimited JSON: one request per line, one response line back,
/// in order, per connection, each connection served by a thread of its own.
///
/// Hand-written on blocking sockets rather than SwiftNIO: the broker's work per request is a few
/// microseconds of SQLite plus (for sends) one fsync, and the NIO + async/await version spent more than
/// that again hopping between event loop, tasks and GRDB's queues (whoami round trip 134 µs vs about
/// 40 µs here; docs/benchmarks.md). A blocked thread per connection also gives backpressure for free
/// and lets a parked `recv` watch its own socket for a hang-up (see `Parker`).
final class LineServer: @unchecked Sendable {
    /// Answers one request line; `parker` is this connection's, for requests that may park.
    typealias Handler = @Sendable (_ line: Data, _ parker: Parker) -> Data

    /// Connections beyond this many on one socket are told so and closed.
    static let maxConnections = 256

    let path: URL
    private let mode: mode_t
    private let logger: Logger
    private let handler: Handler
    private let onConnectionChange: (@Sendable (Int) -> Void)?

    // Guarded by `lock`.
    private let lock = NSCondition()
    private var listenFD: Int32 = -1
    private var connections: Set<Int32> = []
    private var threads = 0
    private var stopping = false

    init(path: URL, mode: mode_t, logger: Logger, handler: @escaping Handler,
         onConnectionChange: (@Sendable (Int) -> Void)? = nil) {
        self.path = path
        self.mode = mode
        self.logger = logger
        self.handler = handler
        self.onConnectionChange = onConnectionChange
    }

    /// Binds and starts accepting. Returns once connections are accepted.
    func start() throws {
        try listen()
        startAccepting()
    }

    /// Binds the socket (replacing a stale file: the caller holds the run dir's lock) and sets its mode.
    /// Clients can connect from now on but wait until ``startAccepting()``.
    func listen() throws {
        try HiveLayout.checkSocketPath(path)
        try FileManager.default.createDirectory(at: path.deletingLastPathComponent(), withIntermediateDirectories: true)
        unlink(path.path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw CoreError("cannot create a socket: \(String(cString: strerror(errno)))") }
        let bound = UnixSocket.withAddress(path.path) { Glibc.bind(fd, $0, $1) } ?? -1
        // The socket is created with the umask's mode; set ours before anyone can be told of it.
        guard bound == 0, chmod(path.path, mode) == 0, Glibc.listen(fd, 256) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw CoreError("cannot listen on \(path.path): \(reason)")
        }
        lock.lock()
        listenFD = fd
        lock.unlock()
    }

    /// Starts the thread that accepts connections.
    func startAccepting() {
        lock.lock()
        let fd = listenFD
        guard fd >= 0, !stopping else { lock.unlock(); return }
        threads += 1
        lock.unlock()
        spawn { self.acceptLoop(fd) }
    }

    /// Stops accepting, hangs up every connection (a parked `recv` sees the hang-up), waits for every
    /// connection thread to finish and removes the socket file.
    func stop() {
        lock.lock()
        guard !stopping else { lock.unlock(); return }
        stopping = true
        // Linux wakes a blocked accept() with EINVAL when the listening socket is shut down.
        if listenFD >= 0 { shutdown(listenFD, Int32(SHUT_RDWR)) }
        for fd in connections { shutdown(fd, Int32(SHUT_RDWR)) }
        while threads > 0 { lock.wait() }
        if listenFD >= 0 { close(listenFD) }
        listenFD = -1
        lock.unlock()
        unlink(path.path)
    }

    private func spawn(_ body: @escaping @Sendable () -> Void) {
        let thread = Thread(block: body)
        thread.stackSize = 1 << 20
        thread.start()
    }

    private func threadFinished() {
        lock.lock()
        threads -= 1
        lock.broadcast()
        lock.unlock()
    }

    private func acceptLoop(_ listener: Int32) {
        defer { threadFinished() }
        while true {
            let fd = accept(listener, nil, nil)
            lock.lock()
            let stop = stopping
            lock.unlock()
            if stop {
                if fd >= 0 { close(fd) }
                return
            }
            guard fd >= 0 else {
                if errno == EINTR || errno == ECONNABORTED { continue }
                logger.error("accept on \(path.path) failed: \(String(cString: strerror(errno)))")
                usleep(50_000) // out of file descriptors: back off instead of spinning
                continue
            }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            lock.lock()
            if stopping { // stop() began after accept returned: it will not hang this one up, so don't serve it
                lock.unlock()
                close(fd)
                return
            }
            if connections.count >= Self.maxConnections {
                lock.unlock()
                _ = UnixSocket.writeAll(fd, ResponseLine.failure("too many connections on this socket (\(Self.maxConnections)); close some and retry"))
                close(fd)
                continue
            }
            connections.insert(fd)
            threads += 1
            lock.unlock()
            spawn { self.serve(fd) }
        }
    }

    private func serve(_ fd: Int32) {
        onConnectionChange?(1)
        defer {
            lock.lock()
            connections.remove(fd)
            close(fd)
            lock.unlock()
            onConnectionChange?(-1)
            threadFinished()
        }
        let parker = Parker(watching: fd)
        var framer = LineFramer(maxLine: WireLimits.maxLineBytes)
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            // End of input: a last line without its newline still gets its answer (half-close works).
            let items = n == 0 ? framer.finish().map { [$0] } ?? [] : framer.push(chunk[..<n])
            for item in items {
                let response: Data
                switch item {
                case .line(let line): response = handler(line, parker)
                case .overlong(let bytes):
                    response = ResponseLine.failure("request line is longer than \(WireLimits.maxLineBytes) bytes (\(bytes)+ bytes); it was discarded")
                }
                guard UnixSocket.writeAll(fd, response) else { return }
            }
            if n == 0 { return }
        }
    }
}

/// One unit the framer produced: a complete line, or the news that an over-long one was dropped.
enum Framed: Sendable, Equatable {
    case line(Data)
    case overlong(bytes: Int)
}

/// Splits a byte stream into `\n`-terminated lines, dropping (and reporting) lines over `maxLine` bytes
/// so a bad client gets an error and the connection stays usable.
struct LineFramer {
    let maxLine: Int
    private var buffer: [UInt8] = []
    private var discarding = 0

    init(maxLine: Int) { self.maxLine = maxLine }

    mutating func push(_ chunk: ArraySlice<UInt8>) -> [Framed] {
        var out: [Framed] = []
        var bytes = chunk
        while let nl = bytes.firstIndex(of: 0x0A) {
            let piece = bytes[bytes.startIndex..<nl]
            bytes = bytes[bytes.index(after: nl)...]
            if discarding > 0 {
                out.append(.overlong(bytes: discarding + piece.count))
                discarding = 0
                continue
            }
            if buffer.count + piece.count > maxLine {
                out.append(.overlong(bytes: buffer.count + piece.count))
                buffer.removeAll(keepingCapacity: true)
                continue
            }
            buffer.append(contentsOf: piece)
            if let line = take() { out.append(.line(line)) }
        }
        if discarding > 0 {
            discarding += bytes.count
        } else if buffer.count + bytes.count > maxLine {
            discarding = buffer.count + bytes.count
            buffer.removeAll(keepingCapacity: false)
        } else {
            buffer.append(contentsOf: bytes)
        }
        return out
    }

    /// At end of input: a last line without its newline still counts.
    mutating func finish() -> Framed? {
        if discarding > 0 { return .overlong(bytes: discarding) }
        return take().map(Framed.line)
    }

    /// Returns the buffered line (without a trailing `\r`), or nil for a blank one.
    private mutating func take() -> Data? {
        defer { buffer.removeAll(keepingCapacity: true) }
        var line = buffer[...]
        if line.last == 0x0D { line = line.dropLast() }
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return nil }
        return Data(line)
    }
}
