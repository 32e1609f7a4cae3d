import Crypto
import Foundation
import HiveHost
import NIOSSL
import X509
#if canImport(Glibc)
import Glibc
#endif

/// Who this node is to the other nodes of a hive on many hosts: the key and self-signed certificate its
/// endpoint serves, and its node token. Made at first start in `<root>/node` (root's, 0700) and kept.
///
/// Trust goes through the database: a node publishes its certificate and its token's SHA-256 in its row,
/// another node pins exactly that certificate when it calls (no CA, no hostname to get right), and checks a
/// caller's token against its row. Whoever can write the database could already move any agent, so it is
/// the one anchor; nothing secret is in it (a token's hash, a public certificate).
struct NodeIdentity: Sendable {
    let certificatePEM: String
    let keyPEM: String
    let token: String
    var tokenSHA256: String { Self.sha256(token) }

    static func sha256(_ text: String) -> String { sha256(Data(text.utf8)) }
    static func sha256(_ data: some DataProtocol) -> String { hex(SHA256.hash(data: data)) }
    static func hex(_ digest: SHA256.Digest) -> String { digest.map { String(format: "%02x", $0) }.joined() }

    /// Reads this node's identity from `dir`, or makes it there (`node` names the certificate's subject).
    static func load(from dir: URL, node: String) throws -> NodeIdentity {
        let fm = FileManager.default
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        _ = chmod(dir.path, 0o700)
        let cert = dir.appending(path: "endpoint.crt"), key = dir.appending(path: "endpoint.key"), token = dir.appending(path: "token")
        if let c = try? String(contentsOf: cert, encoding: .utf8), let k = try? String(contentsOf: key, encoding: .utf8),
           let t = try? String(contentsOf: token, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), t.utf8.count >= 32 {
            return NodeIdentity(certificatePEM: c, keyPEM: k, token: t)
        }
        let made = try make(node: node)
        for (file, text) in [(key, made.keyPEM), (token, made.token + "\n"), (cert, made.certificatePEM)] {
            guard fm.createFile(atPath: file.path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw CoreError("cannot write \(file.path)")
            }
        }
        return made
    }

    /// A new P-256 key, a certificate for it signed by itself (valid 20 years: it is pinned, never
    /// chained, and replacing it is deleting `<root>/node` and restarting), and a random 256-bit token.
    static func make(node: String) throws -> NodeIdentity {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("hive node \(node)") }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(20 * 365 * 86400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true))
                try ExtendedKeyUsage([.serverAuth])
            },
            issuerPrivateKey: .init(key))
        var random = SystemRandomNumberGenerator()
        let token = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &random)) }.joined()
        return NodeIdentity(certificatePEM: try certificate.serializeAsPEM().pemString, keyPEM: key.pemRepresentation, token: token)
    }

    /// The server side: this certificate and key.
    func serverTLS() throws -> TLSConfiguration {
        let certificate = try NIOSSLCertificate(bytes: Array(certificatePEM.utf8), format: .pem)
        let key = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: [.certificate(certificate)], privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv13
        return tls
    }

    /// The client side, calling `peer`: only the certificate its row names is trusted.
    static func clientTLS(pinning certificatePEM: String) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(certificatePEM.utf8), format: .pem)])
        tls.certificateVerification = .noHostnameVerification // pinned: the name a node is reached by does not matter
        tls.minimumTLSVersion = .tlsv13
        return tls
    }
}
