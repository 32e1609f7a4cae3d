import Foundation
import HiveWire
import Hummingbird

/// The responses every HTTP face of the hive builds (the dashboard, an agent's page, the forge's API):
/// JSON in the wire's conventions, pages, and refusals with a reason a person can read.
public enum Reply {
    /// `value` as JSON, snake_case keys, like the sockets.
    public static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        guard let data = try? WireCoding.encoder().encode(value) else {
            return error("could not encode the response", status: .internalServerError)
        }
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// A refusal: `{"error": text}`.
    public static func error(_ text: String, status: HTTPResponse.Status) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: ["error": text], options: [.sortedKeys])) ?? Data()
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// JSON bytes made elsewhere (a socket's reply line), as they are.
    public static func raw(_ data: Data, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// An HTML page, with `headers` besides its content type (a page's own Content-Security-Policy, say).
    public static func html(_ text: String, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var fields: HTTPFields = [.contentType: "text/html; charset=utf-8"]
        fields.append(contentsOf: headers)
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
