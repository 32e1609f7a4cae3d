import AsyncAlgorithms
import Foundation
import Hummingbird
import ServiceLifecycle

/// A server-sent-events response, the one writer the dashboard's feed and an agent's page share.
///
/// The producer gets a ``Sink`` to send frames (or comments) into and returns when its stream is over;
/// a comment goes out every `heartbeat` so a vanished client is noticed (and proxies keep the connection),
/// and the response ends on graceful shutdown. Frames are written in the order they were sent, each
/// batch the producer sends as one write, and a send returns only once the client's connection took
/// it (an `AsyncChannel`): a slow client holds its producer back instead of growing a buffer.
public enum EventStream {
    public static let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache", .init("X-Accel-Buffering")!: "no"]

    /// Where a producer sends what the client reads.
    public struct Sink: Sendable {
        let channel: AsyncChannel<String>
        /// One or more frames made with ``frame(id:event:data:)``, as one write.
        public func send(_ text: String) async { await channel.send(text) }
        /// A comment line: the client ignores it (used for keep-alives and notes).
        public func comment(_ text: String) async { await channel.send(": \(text)\n\n") }
    }

    /// One event as SSE text: `id` lets a reconnecting client resume (`Last-Event-ID`).
    public static func frame(id: Int64, event: String? = nil, data: String) -> String {
        "id: \(id)\n" + (event.map { "event: \($0)\n" } ?? "") + "data: \(data)\n\n"
    }

    /// The response. `retry` (ms) tells the browser how soon to reconnect; `produce` runs until the
    /// stream is over, the client is gone, or the server shuts down.
    public static func response(retry: Int? = nil, heartbeat: Duration = .seconds(15),
                                produce: @escaping @Sendable (Sink) async -> Void) -> Response {
        Response(status: .ok, headers: headers, body: ResponseBody { writer in
            let channel = AsyncChannel<String>()
            let sink = Sink(channel: channel)
            if let retry { try await writer.write(ByteBuffer(string: "retry: \(retry)\n\n")) }
            let producer = Task {
                await produce(sink)
                channel.finish()
            }
            let beat = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: heartbeat)
                    await sink.comment("ping")
                }
            }
            defer { producer.cancel(); beat.cancel(); channel.finish() }
            try await withGracefulShutdownHandler {
                for await text in channel { try await writer.write(ByteBuffer(string: text)) }
            } onGracefulShutdown: {
                channel.finish()
            }
            try await writer.finish(nil)
        })
    }
}
