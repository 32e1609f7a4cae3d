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

    /// A page ticket (see ``PageRouteCommand``): this node (`via`) vouches that its dashboard may open
    /// `agent`'s page on node `target` until `expires` (unix seconds), signed with its endpoint's key. The
    /// target checks it against `via`'s certificate in the database: no secret is shared or stored for it.
    func pageTicket(via: String, target: String, agent: String, expires: Int) throws -> String {
        let key = try P256.Signing.PrivateKey(pemRepresentation: keyPEM)
        let signature = try key.signature(for: Data(Self.ticketText(via: via, target: target, agent: agent, expires: expires).utf8))
        return "\(expires).\(signature.rawRepresentation.base64EncodedString())"
    }

    /// Whether `ticket` is `via`'s (whose certificate is `certificatePEM`) for `agent` on `target`, unexpired
    /// and not valid for longer than ``ticketLifetime`` from `now`.
    static func checkTicket(_ ticket: String, via: String, target: String, agent: String, certificatePEM: String, now: Double) -> Bool {
        let parts = ticket.split(separator: ".", maxSplits: 1).map(String.init)
        guard ticket.utf8.count <= 200, parts.count == 2, let expires = Int(parts[0]), Double(expires) > now,
              Double(expires) <= now + ticketLifetime + 60, // a minute for clocks apart
              let raw = Data(base64Encoded: parts[1]), let signature = try? P256.Signing.ECDSASignature(rawRepresentation: raw),
              let certificate = try? Certificate(pemEncoded: certificatePEM), let key = P256.Signing.PublicKey(certificate.publicKey) else { return false }
        return key.isValidSignature(signature, for: Data(ticketText(via: via, target: target, agent: agent, expires: expires).utf8))
    }

    static let ticketLifetime: Double = 300

    private static func ticketText(via: String, target: String, agent: String, expires: Int) -> String {
        "hive page ticket\nvia \(via)\nto \(target)\nagent \(agent)\nuntil \(expires)"
    }
}
