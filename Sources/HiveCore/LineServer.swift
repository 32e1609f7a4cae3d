import AsyncAlgorithms
import Foundation
import HiveBroker
import HiveWire
import Logging
import NIOCore
import NIOPosix

/// Answers one request line with one response line (both without framing concerns).
typealias LineHandler = @Sendable (_ line: Data, _ connection: InboxWaiters.Connection) async -> Data

/// A unix-socket server speaking newline-delimited JSON: one request per line, one response line back,
/// in order, per connection. A parked request (a long-poll `recv`) is released when its peer goes away.
struct LineServer: Sendable {
    let path: URL
    let mode: mode_t
    let waiters: InboxWaiters
    let logger: Logger
    let handler: LineHandler
    /// Called with +1 / -1 as connections open and close.
    var onConnectionChange: (@Sendable (Int) -> Void)? = nil

    /// Binds the socket (replacing a stale file) and sets its mode. Serving starts with ``Bound/serve()``.
    func bind() async throws -> Bound {
        try HiveLayout.checkSocketPath(path)
        try FileManager.default.createDirectory(at: path.deletingLastPathComponent(), withIntermediateDirectories: true)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .bind(unixDomainSocketPath: path.path, cleanupExistingSocketFile: true) { child in
                child.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: child)
                }
            }
        // The socket is created with the umask's mode; tighten (or open) it before anyone is told of it.
        guard chmod(path.path, mode) == 0 else {
            try? await channel.channel.close()
            throw CoreError("cannot set the mode of \(path.path)")
        }
        return Bound(server: self, channel: channel)
    }

    /// A bound socket, ready to serve.
    struct Bound: Sendable {
        let server: LineServer
        let channel: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>

        /// Serves until the task is cancelled, then closes every connection and removes the socket file.
        func serve() async {
            let server = self.server
            defer { unlink(server.path.path) }
            do {
                try await withThrowingDiscardingTaskGroup { group in
                    try await channel.executeThenClose { inbound in
                        for try await connection in inbound {
                            group.addTask { await server.handle(connection) }
                        }
                    }
                }
            } catch is CancellationError {
            } catch {
                server.logger.error("socket \(server.path.path) stopped: \(error)")
            }
        }
    }

    private func handle(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        let id = waiters.openConnection()
        onConnectionChange?(1)
        defer {
            waiters.forgetConnection(id)
            onConnectionChange?(-1)
        }
        do {
            try await connection.executeThenClose { inbound, outbound in
                // The reader hands lines over one at a time (AsyncChannel waits for the consumer), so a
                // flooding peer is slowed by backpressure instead of buffered without bound. Reading on
                // while a request runs is what lets a parked recv notice that its peer has gone.
                let lines = AsyncChannel<Framed>()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        var framer = LineFramer(maxLine: WireLimits.maxLineBytes)
                        defer { lines.finish() }
                        for try await chunk in inbound {
                            for item in framer.push(chunk) { await lines.send(item) }
                        }
                        if let last = framer.finish() { await lines.send(last) }
                        waiters.closeConnection(id)
                    }
                    group.addTask {
                        for await item in lines {
                            let response: Data
                            switch item {
                            case .line(let data): response = await handler(data, id)
                            case .overlong(let bytes):
                                response = ResponseLine.failure("request line is longer than \(WireLimits.maxLineBytes) bytes (\(bytes)+ bytes); it was discarded")
                            }
                            try await outbound.write(ByteBuffer(bytes: response))
                        }
                    }
                    try await group.waitForAll()
                }
            }
        } catch {
            // A peer that vanished mid-write is normal for a long-poll client; nothing to report.
            logger.debug("connection on \(path.lastPathComponent) ended: \(error)")
        }
    }
}

/// One unit the framer produced: a complete line, or the news that an over-long one was dropped.
enum Framed: Sendable {
    case line(Data)
    case overlong(bytes: Int)
}

/// Splits a byte stream into `\n`-terminated lines, dropping (and reporting) lines over `maxLine` bytes
/// so a bad client gets an error and the connection stays usable. NIO's `splitLines` ends the stream on
/// an oversized line instead, which is why this is written by hand.
struct LineFramer {
    let maxLine: Int
    private var buffer: [UInt8] = []
    private var discarding = 0

    init(maxLine: Int) { self.maxLine = maxLine }

    mutating func push(_ chunk: ByteBuffer) -> [Framed] {
        var out: [Framed] = []
        var bytes = chunk.readableBytesView[...]
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
