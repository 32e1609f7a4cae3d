import Foundation
import HiveClient
import HiveHost
import HiveWire
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A bare HTTP/1.1 client over TCP loopback (one request per connection), for the dashboard's tests.
enum TCPHTTP {
    struct Reply { var status: Int; var headers: [String: String]; var body: String; var raw: String = "" }

    static func request(_ port: Int, _ method: String, _ path: String, headers: [String: String] = [:], body: String = "",
                        readFor: Duration = .seconds(10), until stop: ((String) -> Bool)? = nil) throws -> Reply {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0 else { throw HiveClientError.protocolError("cannot connect to 127.0.0.1:\(port)") }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        _ = UnixSocket.writeAll(fd, Data((head + "\r\n" + body).utf8))
        let text = UnixHTTP.readResponse(fd, for: readFor, until: stop)
        let parts = text.components(separatedBy: "\r\n\r\n")
        let lines = (parts.first ?? "").components(separatedBy: "\r\n")
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        var fields: [String: String] = [:]
        for line in lines.dropFirst() {
            if let c = line.firstIndex(of: ":") { fields[line[..<c].lowercased()] = line[line.index(after: c)...].trimmingCharacters(in: .whitespaces) }
        }
        let rest = parts.dropFirst().joined(separator: "\r\n\r\n")
        return Reply(status: status, headers: fields, body: fields["transfer-encoding"] == "chunked" ? UnixHTTP.dechunk(rest) : rest, raw: text)
    }
}

extension LiveHive {
    static func freePort() -> Int { TCPPort.free() }

    /// Starts `hive web` on a free loopback port (or `listen`) and waits until it answers.
    func startWeb(listen: String? = nil, extra: [String] = []) async throws -> (Process, Int) {
        let port = Self.freePort()
        let p = try launch(["web", "--run-dir", runDir.path, "--listen", listen ?? "127.0.0.1:\(port)"] + extra)
        agents.append(p)
        try await eventually("the dashboard answers") { (try? TCPHTTP.request(port, "GET", "/login", readFor: .seconds(2)))?.status == 200 }
        return (p, port)
    }

    var web: HiveConnection { get throws { try HiveConnection(path: runDir.appending(path: "web.sock").path) } }

    /// The loopback dashboard's token (root's file) and a session cookie opened with it.
    func dashboardToken() throws -> String {
        try String(contentsOf: runDir.appending(path: "dashboard-token"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func webCookie(_ port: Int) throws -> String {
        let r = try TCPHTTP.request(port, "GET", "/login?token=\(try dashboardToken())")
        guard r.status == 303, let cookie = r.headers["set-cookie"]?.split(separator: ";").first else {
            throw HiveClientError.protocolError("login with the dashboard token failed: \(r.status)")
        }
        return String(cookie)
    }
}

@Suite("Dashboard", .timeLimit(.minutes(3)))
struct WebTests {
    @Test("core's web surface reads only plain files inside an agent's state dir or /shared: traversal, links and other agents' files refused")
    func confinedReads() async throws {
        let hive = try LiveHive()
        try await hive.start()
        _ = try await hive.spawn("iris")
        _ = try await hive.spawn("bob")
        let state = hive.root.appending(path: "agents/iris/state")
        try FileManager.default.createDirectory(at: state.appending(path: "sub"), withIntermediateDirectories: true)
        try Data("hello".utf8).write(to: state.appending(path: "notes.md"))
        try Data("deep".utf8).write(to: state.appending(path: "sub/a.txt"))
        try Data("bob's".utf8).write(to: hive.root.appending(path: "agents/bob/state/secret.txt"))
        try FileManager.default.createSymbolicLink(atPath: state.appending(path: "link").path, withDestinationPath: "/etc/passwd")
        try FileManager.default.createSymbolicLink(atPath: state.appending(path: "dirlink").path, withDestinationPath: "/etc")
        try FileManager.default.createSymbolicLink(atPath: state.appending(path: "bobs").path, withDestinationPath: "../../bob/state")
        try FileManager.default.createDirectory(at: hive.root.appending(path: "shared"), withIntermediateDirectories: true)
        try Data("for all".utf8).write(to: hive.root.appending(path: "shared/doc.md"))
        let web = try hive.web

        #expect(try await web.call(ReadFileCommand(agent: "iris", relPath: "notes.md")).text == "hello")
        #expect(try await web.call(ReadFileCommand(agent: "iris", relPath: "sub/a.txt")).text == "deep")
        #expect(try await web.call(ReadFileCommand(agent: nil, relPath: "doc.md")).text == "for all")
        let refused: [(String?, String)] = [
            ("iris", "../bob/state/secret.txt"), ("iris", "/etc/passwd"), ("iris", "sub/../../bob/state/secret.txt"), ("iris", "link"),
            ("iris", "dirlink/passwd"), ("iris", "bobs/secret.txt"), ("iris", ""), ("iris", "."), ("iris", "sub//a.txt"), ("iris", "sub/"),
            ("iris", String(repeating: "a", count: 300)), ("iris", "secret.txt"), ("iris", "%2e%2e/bob/state/secret.txt"),
            ("..", "bob/state/secret.txt"), ("../bob", "secret.txt"), ("nobody", "x"), (nil, "../broker.sqlite"), (nil, "../agents/bob/state/secret.txt"),
        ]
        for (agent, path) in refused {
            let line = try Envelope(ReadFileCommand(agent: agent, relPath: path)).line()
            let reply = try JSONSerialization.jsonObject(with: try await web.roundTrip(line)) as? [String: Any] ?? [:]
            #expect(reply["ok"] as? Bool == false, "read_file \(agent ?? "shared") '\(path)' was not refused")
        }
        // The web socket takes only its narrow set: no spawning, no listing of the admin kind.
        for cmd in ["spawn", "list", "info", "rebuild", "pending", "revive_all"] {
            let r = try await web.raw(#"{"cmd":"\#(cmd)","name":"eve"}"#)
            #expect((r["error"] as? String)?.hasPrefix("unknown command") == true, "\(cmd)")
        }
        if getuid() == 0 {
            var st = stat()
            #expect(stat(hive.runDir.appending(path: "web.sock").path, &st) == 0)
            #expect(st.st_gid == WebSurface.uid && st.st_mode & 0o777 == 0o660, "web.sock: the web process's group only")
        }
    }

    @Test("hive web: unprivileged; the page renders the swarm; live events; actions need the CSRF token; approve from the web; agent pages on one origin")
    func dashboard() async throws {
        let hive = try LiveHive()
        try await hive.start(cage: "process", environment: try hive.fakeClaudeEnvironment())
        _ = try await hive.spawn("iris")
        try await hive.eventually("iris up") { try await hive.agentRow("iris")?.state == .idle }
        let (web, port) = try await hive.startWeb()

        if getuid() == 0 {
            let status = try String(contentsOfFile: "/proc/\(web.processIdentifier)/status", encoding: .utf8)
            #expect(status.contains("Uid:\t\(WebSurface.uid)\t\(WebSurface.uid)\t\(WebSurface.uid)\t\(WebSurface.uid)"))
            let groups = status.split(separator: "\n").first { $0.hasPrefix("Groups:") }?.dropFirst(7).trimmingCharacters(in: .whitespaces)
            #expect(groups == "", "no supplementary groups")
            for task in try FileManager.default.contentsOfDirectory(atPath: "/proc/\(web.processIdentifier)/task") {
                let t = try String(contentsOfFile: "/proc/\(web.processIdentifier)/task/\(task)/status", encoding: .utf8)
                #expect(t.contains("Uid:\t\(WebSurface.uid)\t"), "every thread, the main one included, is unprivileged")
            }
            // That uid has no permission bits for core's secrets (the forge's admin token is 0600 root).
            let probe = Process()
            probe.executableURL = URL(filePath: "/usr/bin/setpriv")
            probe.arguments = ["--reuid=\(WebSurface.uid)", "--regid=\(WebSurface.uid)", "--clear-groups", "--", "/bin/cat", hive.root.appending(path: "forge/admin-token").path]
            probe.standardOutput = FileHandle.nullDevice
            probe.standardError = FileHandle.nullDevice
            try probe.run()
            probe.waitUntilGone()
            #expect(probe.terminationStatus != 0, "the web uid cannot read a root-only file")
        }

        #expect(try TCPHTTP.request(port, "GET", "/").status == 303, "no session, no dashboard (loopback included)")
        for _ in 0..<12 { #expect(try TCPHTTP.request(port, "GET", "/login?token=wrong").body.contains("password"), "a wrong token opens nothing") }
        let cookie = try hive.webCookie(port) // not throttled: the token cannot be guessed, so nothing on loopback can lock it out
        let page = try TCPHTTP.request(port, "GET", "/", headers: ["Cookie": cookie])
        #expect(page.status == 200)
        #expect(page.body.contains("\"name\":\"iris\"") && page.body.contains("\"name\":\"manager\""), "the snapshot is in the page")
        let csrf = try #require(page.body.firstMatch(of: /const CSRF = "([0-9a-f]{64})"/)?.1).description
        let snapshot = try await hive.web.call(SnapshotCommand())

        // Live: a message sent after the subscription arrives as an event.
        let reader = Task {
            try TCPHTTP.request(port, "GET", "/events?after=\(snapshot.seq)", headers: ["Cookie": cookie], readFor: .seconds(10)) { $0.contains("ping from the test") }
        }
        try await Task.sleep(for: .milliseconds(500))
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "ping from the test"))
        let stream = try await reader.value
        #expect(stream.headers["content-type"] == "text/event-stream")
        // (Read as it arrived: the stream is cut mid-chunk when the test has seen enough.)
        #expect(stream.raw.contains("\"kind\":\"message\"") && stream.raw.contains("ping from the test"), "\(stream.raw.prefix(3000))")

        // Actions: refused without the CSRF token, carried out with it.
        let send = #"{"cmd":"send","to":"iris","body":"from the dashboard"}"#
        #expect(try TCPHTTP.request(port, "POST", "/api/action", headers: ["Content-Type": "application/json", "Cookie": cookie], body: send).status == 403)
        #expect(try TCPHTTP.request(port, "POST", "/api/action", headers: ["X-Hive-CSRF": String(repeating: "0", count: 64), "Cookie": cookie], body: send).status == 403)
        #expect(try TCPHTTP.request(port, "POST", "/api/action", headers: ["X-Hive-CSRF": csrf, "Cookie": cookie], body: send).status == 200)
        try await hive.eventually("iris got it") { hive.runs(of: "iris").contains { ($0["prompt"] as? String)?.contains("from the dashboard") == true } }
        #expect(try TCPHTTP.request(port, "POST", "/api/action", headers: ["X-Hive-CSRF": csrf, "Cookie": cookie], body: #"{"cmd":"spawn","name":"eve"}"#).status == 400)
        let model = try TCPHTTP.request(port, "POST", "/api/action", headers: ["X-Hive-CSRF": csrf, "Cookie": cookie], body: #"{"cmd":"set_model","agent":"iris","model":"opus"}"#)
        #expect(model.status == 200 && model.body.contains("\"model\":\"opus\""), "the operator sets the model on the dashboard: \(model.body)")
        #expect(try TCPHTTP.request(port, "POST", "/api/action", headers: ["X-Hive-CSRF": csrf, "Cookie": cookie], body: #"{"cmd":"set_model","agent":"iris","model":"-rf"}"#).status == 422)
        _ = try TCPHTTP.request(port, "POST", "/api/action", headers: ["X-Hive-CSRF": csrf, "Cookie": cookie], body: #"{"cmd":"set_model","agent":"iris","model":""}"#)

        // Approve a config change from the web.
        let request = try await hive.manager.call(RequestInitConfigCommand(name: "bob")).approval
        let approved = try TCPHTTP.request(port, "POST", "/api/action", headers: ["X-Hive-CSRF": csrf, "Cookie": cookie], body: #"{"cmd":"approve","id":\#(request.id)}"#)
        #expect(approved.status == 200 && approved.body.contains("\"state\":\"deployed\""))

        // Answer a question from the web; the asker's turn gets the answer.
        let asked = try await hive.agent("iris").call(AskCommand(question: "Roll back?", options: ["yes", "no"]))
        let withQuestion = try TCPHTTP.request(port, "GET", "/", headers: ["Cookie": cookie])
        #expect(withQuestion.body.contains("\"question\":\"Roll back?\""), "open questions are in the page's snapshot")
        let answer = #"{"cmd":"answer","id":\#(asked.id),"choices":["no"],"answer":"not yet"}"#
        #expect(try TCPHTTP.request(port, "POST", "/api/action", headers: ["Cookie": cookie], body: answer).status == 403, "CSRF applies")
        let answeredReply = try TCPHTTP.request(port, "POST", "/api/action", headers: ["X-Hive-CSRF": csrf, "Cookie": cookie], body: answer)
        #expect(answeredReply.status == 200 && answeredReply.body.contains("\"state\":\"answered\""), "\(answeredReply.body)")
        try await hive.eventually("iris got the answer") {
            hive.runs(of: "iris").contains { ($0["prompt"] as? String)?.contains("[answer to question \(asked.id)] operator answered") == true }
        }

        // The agent's own UI through the same origin, its live stream included; cross-origin POSTs refused.
        let agentPage = try TCPHTTP.request(port, "GET", "/agent/iris/", headers: ["Cookie": cookie])
        #expect(agentPage.status == 200 && agentPage.body.contains("iris"))
        #expect(agentPage.headers["content-security-policy"]?.hasPrefix("sandbox") == true, "an agent's page cannot act as the dashboard")
        let state = try TCPHTTP.request(port, "GET", "/agent/iris/state", headers: ["Cookie": cookie])
        #expect(state.status == 200 && state.body.contains("\"state\""))
        let agentStream = try TCPHTTP.request(port, "GET", "/agent/iris/events/stream", headers: ["Cookie": cookie], readFor: .seconds(5)) { $0.contains("data:") }
        #expect(agentStream.headers["content-type"] == "text/event-stream" && agentStream.raw.contains("data:"))
        #expect(try TCPHTTP.request(port, "POST", "/agent/iris/cancel", headers: ["Cookie": cookie, "Origin": "http://evil.example"]).status == 403)

        // A person opening an agent's page goes on to its capability path; the sandboxed page loads its own
        // data there without the cookie, and cannot reach another agent's with it.
        let opened = try TCPHTTP.request(port, "GET", "/agent/iris/stats?range=7d", headers: ["Cookie": cookie, "Sec-Fetch-Mode": "navigate"])
        #expect(opened.status == 303)
        let location = try #require(opened.headers["location"])
        let cap = try #require(location.firstMatch(of: /^\.\.\/\.\.\/agent\/iris\/~([0-9a-f]{64})\/stats\?range=7d$/)?.1).description
        let own = try TCPHTTP.request(port, "GET", "/agent/iris/~\(cap)/state", headers: ["Origin": "null"])
        #expect(own.status == 200 && own.body.contains("\"state\"") && own.headers["access-control-allow-origin"] == "*")
        #expect(own.headers["referrer-policy"] == "no-referrer")
        #expect(try TCPHTTP.request(port, "GET", "/agent/bob/~\(cap)/state", headers: ["Origin": "null"]).status == 401, "iris's capability does not open bob")
        #expect(try TCPHTTP.request(port, "GET", "/agent/iris/~\(String(repeating: "0", count: 64))/state").status == 401)
        #expect(try TCPHTTP.request(port, "POST", "/agent/iris/cancel", headers: ["Cookie": cookie, "Origin": "null"]).status == 403,
                "a sandboxed page cannot act through the cookie")
        #expect(try TCPHTTP.request(port, "POST", "/agent/iris/~\(cap)/cancel", headers: ["Origin": "null"]).status == 200)
        // The model is the operator's, set on the dashboard (with its CSRF token); never from an agent's page.
        #expect(try TCPHTTP.request(port, "POST", "/agent/iris/~\(cap)/model", headers: ["Origin": "null"], body: "opus").status == 403)
        #expect(try TCPHTTP.request(port, "GET", "/agent/iris/", headers: ["Sec-Fetch-Mode": "navigate"]).headers["location"] == "../../login")
        #expect(try TCPHTTP.request(port, "GET", "/agent/..%2f..%2fetc/", headers: ["Cookie": cookie]).status == 404)
        #expect(try TCPHTTP.request(port, "GET", "/api/file?agent=iris&path=../../../etc/passwd", headers: ["Cookie": cookie]).status == 422)
        try Data("# plan\n".utf8).write(to: hive.root.appending(path: "agents/iris/state/plan.md"))
        let file = try TCPHTTP.request(port, "GET", "/api/file?agent=iris&path=plan.md", headers: ["Cookie": cookie])
        #expect(file.status == 200 && file.body.contains("\"text\":\"# plan\\n\""), "\(file.body)")
        let forge = try TCPHTTP.request(port, "GET", "/api/forge", headers: ["Cookie": cookie])
        #expect(forge.status == 200 && forge.body.contains("\"full_name\":\"shared/docs\"") && forge.body.contains("What belongs in shared/docs"))

        // /metrics for a scraper with the hive's token: core's series and the web process's own, valid text format.
        let token = try String(contentsOf: hive.root.appending(path: "metrics.token"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try TCPHTTP.request(port, "GET", "/metrics").status == 401)
        #expect(try TCPHTTP.request(port, "GET", "/metrics", headers: ["Authorization": "Bearer nope"]).status == 401)
        let metrics = try TCPHTTP.request(port, "GET", "/metrics", headers: ["Authorization": "Bearer " + token])
        #expect(metrics.status == 200)
        let samples = try MetricsTests.parse(metrics.body)
        #expect((MetricsTests.value(samples, "hive_web_requests_total", ["code": "2xx"]) ?? 0) >= 5, "the web process's own requests")
        #expect(MetricsTests.value(samples, "hive_agents", ["state": "idle"]) != nil, "core's series come along")
        #expect(MetricsTests.value(samples, "hive_web_sse_clients") != nil)
    }

    @Test("off loopback the dashboard needs the operator password; wrong ones are refused, then throttled per client; logout ends the session; no password, no start")
    func login() async throws {
        let hive = try LiveHive()
        try await hive.start()
        let noPassword = try hive.launch(["web", "--run-dir", hive.runDir.path, "--listen", "0.0.0.0:\(LiveHive.freePort())"])
        noPassword.waitUntilGone()
        #expect(noPassword.terminationStatus != 0)
        let file = hive.dir.appending(path: "password")
        try Data("correct horse battery\n".utf8).write(to: file)
        chmod(file.path, 0o600)
        let open = LiveHive.freePort()
        let p = try hive.launch(["web", "--run-dir", hive.runDir.path, "--listen", "0.0.0.0:\(open)", "--password-file", file.path, "--behind-proxy"])
        hive.agents.append(p)
        try await hive.eventually("it answers") { (try? TCPHTTP.request(open, "GET", "/login", readFor: .seconds(2)))?.status == 200 }
        #expect(try TCPHTTP.request(open, "GET", "/").status == 303)
        #expect(try TCPHTTP.request(open, "GET", "/api/snapshot").status == 401)
        #expect(try TCPHTTP.request(open, "GET", "/events").status == 401)
        #expect(try TCPHTTP.request(open, "POST", "/login", headers: ["Content-Type": "application/x-www-form-urlencoded"], body: "password=nope").status == 401)
        let ok = try TCPHTTP.request(open, "POST", "/login", headers: ["Content-Type": "application/x-www-form-urlencoded"], body: "password=correct+horse+battery")
        #expect(ok.status == 303)
        let cookie = try #require(ok.headers["set-cookie"]?.split(separator: ";").first.map(String.init))
        #expect(ok.headers["set-cookie"]?.contains("HttpOnly") == true && ok.headers["set-cookie"]?.contains("SameSite=Strict") == true)
        let page = try TCPHTTP.request(open, "GET", "/", headers: ["Cookie": cookie])
        #expect(page.status == 200)
        #expect(try TCPHTTP.request(open, "GET", "/api/snapshot", headers: ["Cookie": cookie]).status == 200)

        // Guessing is throttled per client (here: clients behind our proxy on loopback), without locking out others.
        let proxySecret = try String(contentsOf: hive.runDir.appending(path: "proxy-secret"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        func login(_ password: String, from client: String, proto: String = "http") throws -> TCPHTTP.Reply {
            try TCPHTTP.request(open, "POST", "/login", headers: ["Content-Type": "application/x-www-form-urlencoded", "X-Hive-Proxy": proxySecret,
                                                                    "X-Forwarded-For": client, "X-Forwarded-Proto": proto], body: "password=\(password)")
        }
        for _ in 0..<10 { #expect(try login("guess", from: "203.0.113.5").status == 401) }
        let throttled = try login("correct+horse+battery", from: "203.0.113.5")
        #expect(throttled.status == 429 && throttled.body.contains("too many failed logins"), "not even the right password is checked now")
        let other = try login("correct+horse+battery", from: "203.0.113.6", proto: "https")
        #expect(other.status == 303)
        #expect(other.headers["set-cookie"]?.contains("; Secure") == true, "behind TLS the cookie is Secure")

        // Logout needs the page's CSRF token, and ends the session.
        let csrf = try #require(page.body.firstMatch(of: /const CSRF = "([0-9a-f]{64})"/)?.1).description
        #expect(try TCPHTTP.request(open, "POST", "/logout", headers: ["Cookie": cookie]).status == 403)
        let out = try TCPHTTP.request(open, "POST", "/logout", headers: ["Cookie": cookie, "X-Hive-CSRF": csrf])
        #expect(out.status == 200 && out.headers["set-cookie"]?.contains("Max-Age=0") == true)
        #expect(try TCPHTTP.request(open, "GET", "/api/snapshot", headers: ["Cookie": cookie]).status == 401)
    }

    static let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test("nginx in front with the generated site: dashboard, agent page and live events work through it", .enabled(if: nginx != nil))
    func throughNginx() async throws {
        let hive = try LiveHive()
        try await hive.start(cage: "process", environment: try hive.fakeClaudeEnvironment())
        _ = try await hive.spawn("iris")
        try await hive.eventually("iris up") { try await hive.agentRow("iris")?.state == .idle }
        let (_, webPort) = try await hive.startWeb()
        let port = LiveHive.freePort()
        let dir = hive.dir.appending(path: "nginx")
        try FileManager.default.createDirectory(at: dir.appending(path: "logs"), withIntermediateDirectories: true)
        let siteFile = dir.appending(path: "site.conf")
        let site = try hive.cli(["nginx-config", "--server-name", "localhost", "--listen", "127.0.0.1:\(port)", "--upstream", "127.0.0.1:\(webPort)",
                                 "--output", siteFile.path])
        let written = try String(contentsOf: siteFile, encoding: .utf8)
        #expect(site.status == 0 && written.contains("proxy_buffering off"))
        let mode = try FileManager.default.attributesOfItem(atPath: siteFile.path)[.posixPermissions] as? Int
        #expect(mode == 0o600, "the proxy secret is root's alone")
        try Data("""
            worker_processes 1;
            pid \(dir.path)/nginx.pid;
            error_log \(dir.path)/logs/error.log;
            events { worker_connections 64; }
            http { access_log off; include \(dir.path)/site.conf; }
            """.utf8).write(to: dir.appending(path: "nginx.conf"))
        let nginx = Process()
        nginx.executableURL = URL(filePath: Self.nginx!)
        nginx.arguments = ["-p", dir.path, "-c", dir.appending(path: "nginx.conf").path, "-g", "daemon off;"]
        nginx.standardError = FileHandle.nullDevice
        try nginx.run()
        hive.agents.append(nginx)
        defer { kill(nginx.processIdentifier, SIGQUIT) }
        try await hive.eventually("nginx answers") { (try? TCPHTTP.request(port, "GET", "/login", readFor: .seconds(2)))?.status == 200 }

        let cookie = try hive.webCookie(port)
        let page = try TCPHTTP.request(port, "GET", "/", headers: ["Cookie": cookie])
        #expect(page.status == 200 && page.body.contains("\"name\":\"iris\""))
        #expect(try TCPHTTP.request(port, "GET", "/agent/iris/state", headers: ["Cookie": cookie]).body.contains("\"state\""))
        let seq = try await hive.web.call(SnapshotCommand()).seq
        let reader = Task { try TCPHTTP.request(port, "GET", "/events?after=\(seq)", headers: ["Cookie": cookie], readFor: .seconds(10)) { $0.contains("through nginx") } }
        try await Task.sleep(for: .milliseconds(500))
        let sent = ContinuousClock.now
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "through nginx"))
        let stream = try await reader.value
        #expect(stream.raw.contains("through nginx"), "the event came through unbuffered")
        #expect(ContinuousClock.now - sent < .seconds(5))
        let csrf = try #require(page.body.firstMatch(of: /const CSRF = "([0-9a-f]{64})"/)?.1).description
        #expect(try TCPHTTP.request(port, "POST", "/api/action", headers: ["X-Hive-CSRF": csrf, "Cookie": cookie], body: #"{"cmd":"send","to":"iris","body":"posted via nginx"}"#).status == 200)
    }

    @Test("in a real browser: headless Chromium renders the swarm and an agent's page", .enabled(if: chromium != nil))
    func browser() async throws {
        let hive = try LiveHive()
        try await hive.start(cage: "process", environment: try hive.fakeClaudeEnvironment())
        _ = try await hive.spawn("iris")
        try await hive.eventually("iris up") { try await hive.agentRow("iris")?.state == .idle }
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "<b>not bold</b> & friends"))
        _ = try await hive.agent("iris").call(AskCommand(question: "Which region?", options: ["eu-west", "us-east"]))
        let (_, port) = try await hive.startWeb()
        func dom(_ path: String) throws -> String {
            try FirstScreenTests.chrome(hive, "http://127.0.0.1:\(port)\(path)", size: (1280, 900), "--dump-dom")
        }
        let dashboard = try dom("/login?token=\(try hive.dashboardToken())") // the link `hive up` prints
        #expect(dashboard.contains("<a href=\"agent/iris/\">iris</a>"), "the agents table was rendered by the page's script")
        #expect(dashboard.contains("&lt;b&gt;not bold&lt;/b&gt; &amp; friends"), "agent text is shown, not interpreted")
        #expect(!dashboard.contains("<b>not bold</b>"))
        #expect(dashboard.contains("<option>manager</option>"))
        #expect(dashboard.contains("Which region?") && dashboard.contains(#"<input type="radio" name="q-1" value="us-east">"#),
                "an open question is shown with its options to pick")
        #expect(!(try dom("/")).contains("agent/iris/"), "without a session the browser gets the login page")
        let agentPage = try dom("/login?token=\(try hive.dashboardToken())&next=agent/iris/")
        #expect(agentPage.contains("<h1>iris</h1>"))
        // Drawn by the page's script from the stream and inbox it opened with (live updates follow over SSE).
        #expect(agentPage.contains("<b>turn 1</b>") && agentPage.contains("from <b>operator</b>"), "the turn stream was rendered")
        #expect(agentPage.contains("■ <b>ok</b>"), "the turn's end, with its result")
        #expect(agentPage.contains("0 unread ·"), "the inbox counts came from core")
        #expect(agentPage.contains("<pre>&lt;b&gt;not bold&lt;/b&gt; &amp; friends</pre>"), "the inbox shows agent text escaped")
        let stats = try dom("/login?token=\(try hive.dashboardToken())&next=agent/iris/stats")
        #expect(stats.contains("<h1>iris · stats</h1>") && stats.contains("<svg") && stats.contains("<rect"), "charts drawn server-side")
    }
}
