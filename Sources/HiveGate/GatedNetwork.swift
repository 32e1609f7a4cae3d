import Foundation
import HiveWire

/// How a `gated` cage reaches out, agreed between core (which binds the host ends in the agent's run
/// dir, seen in the cage at `/run/hive`) and the harness (which forwards the cage's loopback ports to
/// them). The cage's network namespace is its own and holds loopback only, so these are the only ways out.
public enum GatedNetwork {
    /// The model API (``ModelGateway``): `ANTHROPIC_BASE_URL` points at this port of the cage's loopback.
    public static let modelSocket = "model.sock"
    public static let modelPort = 4180
    /// Everything else the allow-list names (``ConnectProxy``): `HTTPS_PROXY` and `HTTP_PROXY`.
    public static let proxySocket = "egress.sock"
    public static let proxyPort = 3128
    /// The hive's forge (``SocketRelay``), at the same port as on the host so its URLs stay the same.
    public static let forgeSocket = "forge.sock"
    /// Every socket core binds for a gated cage.
    public static let sockets = [modelSocket, proxySocket, forgeSocket]

    /// One forwarding the harness sets up: the cage's 127.0.0.1:`port` to the socket at `path`.
    public struct Forward: Sendable, Equatable, CustomStringConvertible {
        public var port: Int
        public var path: String
        public init(port: Int, path: String) { self.port = port; self.path = path }

        /// `PORT=PATH`, as `hive agent --forward` takes it.
        public init?(argument: String) {
            guard let eq = argument.firstIndex(of: "="), let port = Int(argument[..<eq]), (1...65535).contains(port) else { return nil }
            let path = String(argument[argument.index(after: eq)...])
            guard path.hasPrefix("/"), path.utf8.count < 108 else { return nil }
            self.port = port
            self.path = path
        }

        public var description: String { "\(port)=\(path)" }

        /// Whether the forwarder hands each connection over whole (the proxy and the forge relay take
        /// them: one hop less) or copies it (the model gateway is an HTTP server of its own).
        public var handsOver: Bool { !path.hasSuffix("/" + GatedNetwork.modelSocket) }
    }

    /// The forwardings of a gated cage whose run dir is at `inside` (`/run/hive`); the forge's when it runs.
    public static func forwards(inside: String, forgePort: Int?) -> [Forward] {
        var list = [Forward(port: modelPort, path: "\(inside)/\(modelSocket)"), Forward(port: proxyPort, path: "\(inside)/\(proxySocket)")]
        if let forgePort { list.append(Forward(port: forgePort, path: "\(inside)/\(forgeSocket)")) }
        return list
    }

    /// A stand-in for the credential, of the same kind as the real one so claude behaves as it would
    /// with it (an OAuth token makes it a subscriber); the gateway replaces it on the way out.
    public static func placeholder(for kind: StoredCredential.Kind) -> (variable: String, value: String) {
        kind == .oauthToken ? ("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat01-held-by-the-hive-gateway")
                            : ("ANTHROPIC_API_KEY", "sk-ant-api03-held-by-the-hive-gateway")
    }

    /// The cage's environment for the gated network: every credential replaced by the placeholder of
    /// `kind`, claude pointed at the model gateway, other HTTP(S) at the proxy, the cage's own loopback
    /// (the forge) reached directly.
    public static func environment(_ env: inout [String: String], credential kind: StoredCredential.Kind) {
        for key in StoredCredential.variables { env[key] = nil }
        let (variable, value) = placeholder(for: kind)
        env[variable] = value
        env["ANTHROPIC_BASE_URL"] = "http://127.0.0.1:\(modelPort)"
        for key in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"] { env[key] = "http://127.0.0.1:\(proxyPort)" }
        for key in ["NO_PROXY", "no_proxy"] { env[key] = "127.0.0.1,localhost,::1" }
    }
}
