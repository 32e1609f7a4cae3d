import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HiveClient
import HiveHost
import HiveWire
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A client of the forge's HTTP API, as an agent's script would be.
struct ForgeClient {
    let base: String
    let token: String?

    func call(_ method: String, _ path: String, _ body: [String: Any]? = nil) async throws -> (Int, Any?) {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = method
        if let token { request.setValue("token \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, try? JSONSerialization.jsonObject(with: data))
    }
}

extension LiveHive {
    func forgeURL() async throws -> String { try #require(try await admin().call(InfoCommand()).forge) }
    func forgeToken(_ agent: String) throws -> String {
        try String(contentsOf: root.appending(path: "agents/\(agent)/harness/forge-token"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }
    func adminForgeToken() throws -> String {
        try String(contentsOf: root.appending(path: "forge/admin-token"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs git as `user` with `token`, configured the way a cage is (a credential helper reading a file).
    @discardableResult
    func gitAs(_ user: String, token: String, _ args: [String], in dir: URL) throws -> (status: Int32, err: String) {
        let tokenFile = self.dir.appending(path: "token-\(user)")
        try Data(token.utf8).write(to: tokenFile)
        let base = try #require(try? awaitForge())
        let origin = base.replacingOccurrences(of: "/forge", with: "")
        let env = ["PATH": "/usr/bin:/bin", "HOME": self.dir.path, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1",
                   "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "credential.\(origin).helper",
                   "GIT_CONFIG_VALUE_0": "!f() { test \"$1\" = get && echo username=\(user) && echo \"password=$(cat \(tokenFile.path))\"; }; f"]
        let r = try ChildProcess.run("/usr/bin/git", ["-c", "user.name=\(user)", "-c", "user.email=\(user)@hive.invalid", "-c", "init.defaultBranch=main"] + args,
                                     environment: env, directory: dir)
        return (r.status, String(decoding: r.stderr, as: UTF8.self))
    }

    /// The forge URL from `info`, read synchronously (for helpers that are not async).
    func awaitForge() throws -> String {
        try admin().callBlocking(InfoCommand()).forge ?? ""
    }
}

@Suite("Forge", .timeLimit(.minutes(3)))
struct ForgeTests {
    @Test("create through the API, push, clone back; private to others; organisation roles; shared/docs; revoked tokens; bad names")
    func forge() async throws {
        let hive = try LiveHive()
        try await hive.start()
        _ = try await hive.spawn("iris")
        _ = try await hive.spawn("bob")
        let base = try await hive.forgeURL()
        let iris = ForgeClient(base: base, token: try hive.forgeToken("iris"))
        let bob = ForgeClient(base: base, token: try hive.forgeToken("bob"))
        let manager = ForgeClient(base: base, token: try hive.forgeToken("manager"))
        let admin = ForgeClient(base: base, token: try hive.adminForgeToken())

        // iris makes a repo and pushes to it; cloning it back gives the same content.
        let (created, repo) = try await iris.call("POST", "/api/v1/user/repos", ["name": "notes", "description": "my notes"])
        #expect(created == 201)
        let cloneURL = try #require((repo as? [String: Any])?["clone_url"] as? String)
        #expect(cloneURL == "\(base)/iris/notes.git")
        let work = hive.dir.appending(path: "work")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        #expect(try hive.gitAs("iris", token: iris.token!, ["init", "-q"], in: work).status == 0)
        try Data("hello forge\n".utf8).write(to: work.appending(path: "a.txt"))
        try hive.gitAs("iris", token: iris.token!, ["add", "a.txt"], in: work)
        try hive.gitAs("iris", token: iris.token!, ["commit", "-qm", "first"], in: work)
        let push = try hive.gitAs("iris", token: iris.token!, ["push", "-q", cloneURL, "main"], in: work)
        #expect(push.status == 0, "\(push.err)")
        let back = hive.dir.appending(path: "back")
        #expect(try hive.gitAs("iris", token: iris.token!, ["clone", "-q", cloneURL, back.path], in: hive.dir).status == 0)
        #expect(try String(contentsOf: back.appending(path: "a.txt"), encoding: .utf8) == "hello forge\n")
        let (_, listed) = try await iris.call("GET", "/api/v1/repos/iris/notes")
        #expect(((listed as? [String: Any])?["last_commit"] as? [String: Any])?["message"] as? String == "first")

        // bob cannot see it: 404 from the API and from git, and it is not in his list.
        #expect(try await bob.call("GET", "/api/v1/repos/iris/notes").0 == 404)
        #expect(try hive.gitAs("bob", token: bob.token!, ["clone", "-q", cloneURL, hive.dir.appending(path: "bob").path], in: hive.dir).status != 0)
        let (_, bobs) = try await bob.call("GET", "/api/v1/user/repos")
        #expect(!((bobs as? [[String: Any]]) ?? []).contains { $0["full_name"] as? String == "iris/notes" })
        #expect(try await bob.call("DELETE", "/api/v1/repos/iris/notes").0 == 404)

        // shared/docs: everyone reads; only the manager and the operator push; org repos by role.
        let docs = "\(base)/shared/docs.git"
        for (who, token) in [("iris", iris.token!), ("manager", manager.token!), ("operator", admin.token!)] {
            let dir = hive.dir.appending(path: "docs-\(who)")
            #expect(try hive.gitAs(who, token: token, ["clone", "-q", docs, dir.path], in: hive.dir).status == 0, "\(who) clones shared/docs")
            #expect(FileManager.default.fileExists(atPath: dir.appending(path: "README.md").path))
            try Data("by \(who)\n".utf8).write(to: dir.appending(path: "\(who).md"))
            try hive.gitAs(who, token: token, ["add", "."], in: dir)
            try hive.gitAs(who, token: token, ["commit", "-qm", "from \(who)"], in: dir)
            let pushed = try hive.gitAs(who, token: token, ["pull", "-q", "--rebase"], in: dir).status == 0
                && hive.gitAs(who, token: token, ["push", "-q", "origin", "main"], in: dir).status == 0
            #expect(pushed == (who != "iris"), "\(who) push to shared/docs")
        }
        #expect(try await iris.call("POST", "/api/v1/orgs/shared/repos", ["name": "x"]).0 == 403)
        #expect(try await manager.call("POST", "/api/v1/orgs/shared/repos", ["name": "runbooks"]).0 == 201)
        #expect(try await iris.call("GET", "/api/v1/repos/shared/runbooks").0 == 200, "org members read org repos")
        #expect(try await iris.call("POST", "/api/v1/orgs/nosuch/repos", ["name": "x"]).0 == 404)

        // Bad input: clear 4xx, never 500, never a path outside the forge.
        #expect(try await iris.call("POST", "/api/v1/user/repos", ["name": "../escape"]).0 == 422)
        #expect(try await iris.call("POST", "/api/v1/user/repos", ["name": "notes"]).0 == 409)
        #expect(try await iris.call("POST", "/api/v1/user/repos", ["nom": "x"]).0 == 422)
        #expect(try await iris.call("GET", "/api/v1/repos/iris/..%2f..%2fetc").0 == 422)
        #expect(try await iris.call("GET", "/api/v1/repos/Iris/notes").0 == 422)
        #expect(try await ForgeClient(base: base, token: nil).call("GET", "/api/v1/user/repos").0 == 401)
        #expect(try await ForgeClient(base: base, token: "hive_nope").call("GET", "/api/v1/user/repos").0 == 401)
        for path in ["/iris/notes.git/../../../etc/passwd", "/iris/notes.git/config", "/iris/notes.git/objects/info/packs", "/x/y"] {
            let (status, _) = try await iris.call("GET", path)
            #expect([404, 422].contains(status), "\(path): \(status)")
        }

        // A destroyed agent's token stops working, for the API and for git.
        #expect(try hive.cli(["destroy", "iris"]).status == 0)
        #expect(try await iris.call("GET", "/api/v1/user/repos").0 == 401)
        #expect(try hive.gitAs("iris", token: iris.token!, ["ls-remote", cloneURL], in: hive.dir).status != 0)
        // The operator sees every repo, with its last commit.
        let repos = try hive.cli(["forge", "repos", "--json"])
        #expect(repos.out.contains("iris/notes") && repos.out.contains("shared/docs") && repos.out.contains("\"last_message\" : \"first\""),
                "\(repos.out) \(repos.err)")
    }

    @Test("a push of tens of MB streams through without the forge holding it in memory")
    func largePush() async throws {
        let hive = try LiveHive()
        try await hive.start()
        _ = try await hive.spawn("iris")
        let base = try await hive.forgeURL()
        let token = try hive.forgeToken("iris")
        #expect(try await ForgeClient(base: base, token: token).call("POST", "/api/v1/user/repos", ["name": "big"]).0 == 201)
        let work = hive.dir.appending(path: "big")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        try hive.gitAs("iris", token: token, ["init", "-q"], in: work)
        var blob = [UInt8](repeating: 0, count: 48 << 20)
        var rng = SystemRandomNumberGenerator()
        for i in stride(from: 0, to: blob.count, by: 8) { withUnsafeBytes(of: rng.next() as UInt64) { for (j, b) in $0.enumerated() { blob[i + j] = b } } }
        try Data(blob).write(to: work.appending(path: "blob.bin"))
        try hive.gitAs("iris", token: token, ["add", "blob.bin"], in: work)
        try hive.gitAs("iris", token: token, ["commit", "-qm", "48 MB"], in: work)
        let before = LiveHive.rssKiB(hive.process!.processIdentifier)
        let push = try hive.gitAs("iris", token: token, ["push", "-q", "\(base)/iris/big.git", "main"], in: work)
        #expect(push.status == 0, "\(push.err)")
        let after = LiveHive.rssKiB(hive.process!.processIdentifier)
        #expect(after - before < 32 * 1024, "core grew by \((after - before) / 1024) MiB for a 48 MB push")
        let back = hive.dir.appending(path: "big-back")
        #expect(try hive.gitAs("iris", token: token, ["clone", "-q", "\(base)/iris/big.git", back.path], in: hive.dir).status == 0)
        #expect(try Data(contentsOf: back.appending(path: "blob.bin")).count == 48 << 20)
    }
}

extension LiveHive {
    static func rssKiB(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }
}
