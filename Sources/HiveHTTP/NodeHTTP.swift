import HTTPTypes
import Hummingbird
import NIOSSL

/// What the nodes of a hive on many hosts say to each other over HTTPS, and how a caller trusts the node
/// it calls: exactly the certificate that node's row in the database names (pinned; no CA, no host name).
public enum NodeHTTP {
    /// The calling node's name.
    public static let node = HTTPField.Name("X-Hive-Node")!
    /// A page ticket: the calling node vouches that its dashboard may open one agent's page (see PageRouteCommand).
    public static let ticket = HTTPField.Name("X-Hive-Ticket")!
    /// The SHA-256 (hex) of an agent's archive on its way to another node.
    public static let sha256 = HTTPField.Name("X-Hive-SHA256")!

    /// The client side of a call to a node whose certificate (PEM) is `certificatePEM`: only that one is trusted.
    public static func clientTLS(pinning certificatePEM: String) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(certificatePEM.utf8), format: .pem)])
        tls.certificateVerification = .noHostnameVerification // pinned: the name a node is reached by does not matter
        tls.minimumTLSVersion = .tlsv13
        return tls
    }
}
