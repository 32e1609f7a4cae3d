import Foundation
@testable import HiveForge
import Testing

@Suite("Forge rules")
struct ForgeRulesTests {
    @Test("owners write their own repos; organisation roles; private by default; the operator may do anything")
    func access() {
        func level(_ user: String, admin: Bool = false, owner: String, org: Bool = false, role: ForgeAccess.Role? = nil, priv: Bool = true) -> ForgeAccess {
            ForgeAccess.level(user: user, admin: admin, owner: owner, ownerIsOrg: org, role: role, isPrivate: priv)
        }
        #expect(level("iris", owner: "iris") == .write)
        #expect(level("bob", owner: "iris") == .none, "private: others do not even see it")
        #expect(level("bob", owner: "iris", priv: false) == .read)
        #expect(level("bob", owner: "shared", org: true, role: .read) == .read)
        #expect(level("manager", owner: "shared", org: true, role: .write) == .write)
        #expect(level("bob", owner: "team", org: true, role: nil) == .none)
        #expect(level("operator", admin: true, owner: "iris") == .write)
        #expect(level("iris", owner: "iris", org: true, role: nil) == .none, "an organisation named like a user is not that user's")
    }

    @Test("names: owners are agent-shaped, repos plain; traversal and .git suffixes refused")
    func names() throws {
        #expect(try ForgeName.owner("iris") == "iris")
        #expect(try ForgeName.owner("operator") == "operator")
        for bad in ["..", "../x", "Iris", "", "a/b", "-x"] { #expect(throws: ForgeError.self) { try ForgeName.owner(bad) } }
        #expect(try ForgeName.repo("notes.v2_x-y") == "notes.v2_x-y")
        for bad in ["..", ".", ".hidden", "a..b", "x.git", "a/b", "", String(repeating: "a", count: 101), "sp ace", "%2e%2e"] {
            #expect(throws: ForgeError.self) { try ForgeName.repo(bad) }
        }
    }

    @Test("tokens: only the hash is stored; a new token replaces the old; revoked tokens stop working")
    func tokens() throws {
        let dir = FileManager.default.temporaryDirectory.appending(path: "forge-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try ForgeStore(path: dir.appending(path: "f.sqlite").path)
        let first = try store.issueToken("iris")
        #expect(try store.user(token: first)?.name == "iris")
        let raw = try Data(contentsOf: dir.appending(path: "f.sqlite"))
        #expect(raw.range(of: Data(first.utf8)) == nil, "the token itself is not on disk")
        let second = try store.issueToken("iris")
        #expect(try store.user(token: first) == nil && store.user(token: second)?.name == "iris")
        try store.revoke("iris")
        #expect(try store.user(token: second) == nil)
        #expect(try store.user(token: "hive_guess") == nil)
    }

    @Test("the CGI header block: status, fields, and the body after it")
    func cgiHead() throws {
        let bytes = Array("Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope".utf8)
        let (head, rest) = try #require(GitBackend.splitHead(bytes))
        #expect(head.0 == 404)
        #expect(head.1.first! == ("Content-Type", "text/plain"))
        #expect(rest == Array("nope".utf8))
        #expect(GitBackend.splitHead(Array("Content-Type: x\n".utf8)) == nil, "not complete yet")
        #expect(GitBackend.splitHead(Array("Content-Type: x\n\n".utf8))?.0.0 == 200)
    }
}
