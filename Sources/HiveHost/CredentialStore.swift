import Foundation
import HiveWire
#if canImport(Glibc)
import Glibc
#endif

/// Where stored credentials live on the host (`<root>/credentials/<name>.json`, root's, 0700 and 0600).
extension StoredCredential {
    public static func file(_ name: String, in layout: HiveLayout) -> URL {
        layout.credentialsDir.appending(path: "\(name).json")
    }

    /// Stores the credential under `name` (replacing one of that name), readable by its owner only.
    public func store(as name: String, in layout: HiveLayout) throws {
        let dir = layout.credentialsDir
        // The root above stays as it is (agents' uids must reach it); only this directory is closed.
        try FileManager.default.createDirectory(at: layout.root, withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: dir.path) {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        }
        _ = chmod(dir.path, 0o700)
        let data = try JSONEncoder().encode(self)
        let temp = dir.appending(path: ".\(name).\(UUID().uuidString.prefix(8))")
        guard FileManager.default.createFile(atPath: temp.path, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw RequestError("cannot write \(temp.path)")
        }
        guard rename(temp.path, Self.file(name, in: layout).path) == 0 else {
            try? FileManager.default.removeItem(at: temp)
            throw RequestError("cannot store the credential: \(String(cString: strerror(errno)))")
        }
    }

    public static func load(_ name: String, in layout: HiveLayout) -> StoredCredential? {
        guard isName(name), let data = FileManager.default.contents(atPath: file(name, in: layout).path) else { return nil }
        return try? JSONDecoder().decode(StoredCredential.self, from: data)
    }

    /// Names of the stored credentials, sorted.
    public static func names(in layout: HiveLayout) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: layout.credentialsDir.path)) ?? [])
            .filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.map { String($0.dropLast(5)) }.sorted()
    }
}
