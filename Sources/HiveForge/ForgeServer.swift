import Foundation
import AsyncAlgorithms
import Hummingbird
import Logging
import Subprocess
import SystemPackage
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The forge over HTTP, everything under `/forge/`: git's smart HTTP (clone, fetch, push; protocol v2)
/// through `git http-backend`, and a repository API shaped like Forgejo/Gitea's (`/forge/api/v1/...`).
/// Every refusal is a clear 401/403/404/409/422 with a JSON `message`, never a 500.
public enum ForgeServer {
    public static func application(_ forge: Forge, host: String, port: Int, limits: GitLimits = .init(), logger: Logger) -> some ApplicationProtocol {
        let gate = GitBackend.Gate(limits)
        let router = Router()
        for method in [HTTPRequest.Method.get, .post, .delete] {
            router.on("/forge/**", method: method) { request, _ in
                do {
                    return try await handle(forge, request, gate: gate, logger: logger)
                } catch let e as ForgeError {
                    return refusal(e)
                } catch {
                    logger.error("forge: \(request.method) \(request.uri.path) failed: \(error)")
                    return json(["message": "internal error; the core's log has the details"], status: .internalServerError)
                }
            }
        }
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "hive-forge"), logger: logger)
    }

    /// Who is asking: a token in `Authorization: token …` / `Bearer …`, or as the password of HTTP Basic.
    static func caller(_ forge: Forge, _ request: Request) throws -> (name: String, admin: Bool)? {
        guard let header = request.headers[.authorization] else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { throw ForgeError.unauthorized }
        var token: String
        switch parts[0].lowercased() {
        case "token", "bearer": token = parts[1]
        case "basic":
            guard let data = Data(base64Encoded: parts[1]), let pair = String(data: data, encoding: .utf8),
                  let colon = pair.firstIndex(of: ":") else { throw ForgeError.unauthorized }
            token = String(pair[pair.index(after: colon)...])
        default: throw ForgeError.unauthorized
        }
        token = token.trimmingCharacters(in: .whitespaces)
        guard !token.isEmpty, token.utf8.count <= 200, let who = try forge.store.user(token: token) else { throw ForgeError.unauthorized }
        return who
    }

    static func handle(_ forge: Forge, _ request: Request, gate: GitBackend.Gate, logger: Logger) async throws -> Response {
        let path = request.uri.path
        // Names never need escaping: an encoded path is a trick, not a request.
        guard !path.contains("%"), !path.contains("//"), path.utf8.count <= 512 else { throw ForgeError.badRequest("malformed path") }
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).dropFirst().map(String.init) // after "forge"
        if parts.count >= 2, parts[0] == "api", parts[1] == "v1" {
            return try await api(forge, request, Array(parts.dropFirst(2)))
        }
        guard parts.count >= 3, parts[1].hasSuffix(".git") else { throw ForgeError.notFound }
        let owner = try ForgeName.owner(parts[0])
        let name = try ForgeName.repo(String(parts[1].dropLast(4)))
        let rest = parts.dropFirst(2).joined(separator: "/")
        guard ["info/refs", "git-upload-pack", "git-receive-pack", "HEAD"].contains(rest) else { throw ForgeError.notFound }
        // git reads the query its own way (a repeated `service` is the last one to git), so the forge passes
        // on only the queries git's clients send, and decides on exactly what git will see.
        let query = request.uri.query ?? ""
        guard ["", "service=git-upload-pack", "service=git-receive-pack"].contains(query) else {
            throw ForgeError.badRequest("unexpected query: git asks for ?service=git-upload-pack or ?service=git-receive-pack only")
        }
        let push = rest == "git-receive-pack" || query == "service=git-receive-pack"
        // git asks again with credentials only after a 401 that names Basic.
        guard let who = try? caller(forge, request) else {
            return Response(status: .unauthorized, headers: [.wwwAuthenticate: "Basic realm=\"hive forge\""],
                            body: .init(byteBuffer: ByteBuffer(string: "a forge token is needed (the cage's git is set up with one)\n")))
        }
        guard let repo = try forge.store.repo(owner: owner, name: name) else { throw ForgeError.notFound }
        let access = try forge.access(user: who.name, admin: who.admin, to: repo)
        guard access >= .read else { throw ForgeError.notFound }
        guard !push || access >= .write else { throw ForgeError.forbidden("\(who.name) may read \(repo.fullName) but not push to it") }
        var env: [String: String] = [
            "GIT_PROJECT_ROOT": forge.dir.appending(path: "repos").path, "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": "/\(owner)/\(name).git/\(rest)", "REQUEST_METHOD": request.method.rawValue,
            "QUERY_STRING": query, "REMOTE_USER": who.name, "REMOTE_ADDR": "127.0.0.1",
            "SERVER_PROTOCOL": "HTTP/1.1", "PATH": "/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM": "1", "HOME": forge.dir.path,
        ]
        if let v = request.headers[.contentType] { env["CONTENT_TYPE"] = v }
        if let v = request.headers[.contentLength] { env["CONTENT_LENGTH"] = v }
        if let v = request.headers[.contentEncoding] {
            // git sends its pushes as they are (a pack is compressed already); a gzipped push would be
            // inflated by git past what the forge counted.
            guard !push else { throw ForgeError.badRequest("a push is sent without Content-Encoding") }
            env["HTTP_CONTENT_ENCODING"] = v
        }
        if let v = request.headers[.init("Git-Protocol")!] { env["GIT_PROTOCOL"] = v }
        // The pack a push may bring, as git itself counts it (after any inflation), is the forge's limit too.
        env["GIT_CONFIG_COUNT"] = "1"
        env["GIT_CONFIG_KEY_0"] = "receive.maxInputSize"
        env["GIT_CONFIG_VALUE_0"] = "\(gate.limits.maxBodyBytes)"
        return try await GitBackend.run(env: env, body: request.body, gate: gate, caller: who.name, logger: logger)
    }

    // MARK: - The repository API

    static func api(_ forge: Forge, _ request: Request, _ p: [String]) async throws -> Response {
        guard let who = try caller(forge, request) else { throw ForgeError.unauthorized }
        switch (request.method, p.count) {
        case (.get, 1) where p[0] == "user":
            return json(["login": who.name, "is_admin": who.admin])
        case (.get, 2) where p == ["user", "repos"]:
            let visible = try forge.store.allRepos().filter { try forge.access(user: who.name, admin: who.admin, to: $0) >= .read }
            return json(visible.map { view(forge, $0) })
        case (.post, 2) where p == ["user", "repos"]:
            let (name, description, isPrivate) = try await createBody(request)
            guard who.name != Forge.operatorUser || who.admin else { throw ForgeError.forbidden("no user repos for \(who.name)") }
            return json(view(forge, try forge.create(owner: who.name, name: name, description: description, isPrivate: isPrivate)), status: .created)
        case (.post, 3) where p[0] == "orgs" && p[2] == "repos":
            let org = try ForgeName.owner(p[1])
            guard try forge.store.isOrg(org) else { throw ForgeError.notFound }
            let role = try forge.store.role(of: who.name, in: org)
            guard who.admin || role == .write else {
                if role == nil { throw ForgeError.notFound }
                throw ForgeError.forbidden("\(who.name) may not create repos in \(org)")
            }
            let (name, description, isPrivate) = try await createBody(request)
            return json(view(forge, try forge.create(owner: org, name: name, description: description, isPrivate: isPrivate)), status: .created)
        case (.get, 3) where p[0] == "repos", (.delete, 3) where p[0] == "repos":
            let owner = try ForgeName.owner(p[1]), name = try ForgeName.repo(p[2])
            guard let repo = try forge.store.repo(owner: owner, name: name),
                  try forge.access(user: who.name, admin: who.admin, to: repo) >= .read else { throw ForgeError.notFound }
            if request.method == .get { return json(view(forge, repo)) }
            guard who.admin || repo.owner == who.name else { throw ForgeError.forbidden("only \(repo.owner) (or the operator) may delete \(repo.fullName)") }
            try forge.delete(repo)
            return Response(status: .noContent)
        default:
            throw ForgeError.notFound
        }
    }

    static func createBody(_ request: Request) async throws -> (String, String, Bool) {
        let data = try await request.body.collect(upTo: 16 * 1024)
        guard let body = try? JSONSerialization.jsonObject(with: Data(data.readableBytesView)) as? [String: Any] else {
            throw ForgeError.badRequest("send a JSON object: {\"name\": \"...\", \"description\"?: \"...\", \"private\"?: true}")
        }
        guard let raw = body["name"] as? String else { throw ForgeError.badRequest("field 'name' is required") }
        let description = body["description"] as? String ?? ""
        guard description.utf8.count <= 1000 else { throw ForgeError.badRequest("description is longer than 1000 bytes") }
        return (try ForgeName.repo(raw), description, body["private"] as? Bool ?? true)
    }

    static func view(_ forge: Forge, _ repo: ForgeStore.Repo) -> [String: Any] {
        var v: [String: Any] = [
            "id": repo.id, "name": repo.name, "full_name": repo.fullName, "owner": ["login": repo.owner],
            "description": repo.description, "private": repo.isPrivate, "clone_url": forge.cloneURL(repo),
            "html_url": "\(forge.baseURL)/\(repo.fullName)", "default_branch": "main",
            "created_at": ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: repo.createdAt)),
        ]
        if let last = forge.lastCommit(repo) {
            v["empty"] = false
            v["last_commit"] = ["sha": last.sha, "message": last.subject, "date": ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: last.at))]
        } else {
            v["empty"] = true
        }
        return v
    }

    static func json(_ value: Any, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// (API refusals carry no `WWW-Authenticate`: API clients send their token up front; only git's
    /// paths ask for Basic credentials, because git sends them only when asked.)
    static func refusal(_ e: ForgeError) -> Response {
        var response = json(["message": e.description], status: HTTPResponse.Status(code: e.status))
        if case .busy(let after) = e { response.headers[.retryAfter] = "\(after)" }
        return response
    }
}

/// What one git request over HTTP may take: each runs a `git http-backend` of its own, so requests are
/// bounded in number, in time without progress, in total time and in how much they upload.
public struct GitLimits: Sendable {
    /// Git requests served at once; more get 503 with `Retry-After`.
    public var concurrent = 16
    /// Of those, what one caller (one token) may hold, so one agent cannot take them all.
    public var perCaller: Int { max(1, concurrent / 4) }
    /// A request that moves no byte either way for this long is ended (its backend killed).
    public var idle: Duration = .seconds(60)
    /// No request lasts longer than this.
    public var total: Duration = .seconds(3600)
    /// The largest request body (a push), in bytes.
    public var maxBodyBytes = 2 << 30
    public init() {}
}

/// `git http-backend` as CGI: the request body streams into its stdin while its stdout streams back as
/// the response (a push or clone of any size is never held whole in memory by the forge). Whatever ends
/// a request early (a client that goes away, stalls, or sends too much) kills its backend: swift-subprocess
/// tears the child down when the closure throws or the task is cancelled.
enum GitBackend {
    static let executable = "/usr/lib/git-core/git-http-backend"

    /// Admission: how many backends run now, in all and per caller, against ``GitLimits``.
    final class Gate: Sendable {
        let limits: GitLimits
        private let running = Mutex<(all: Int, by: [String: Int])>((0, [:]))
        init(_ limits: GitLimits) { self.limits = limits }
        func enter(_ caller: String) -> Bool {
            running.withLock { n in
                guard n.all < limits.concurrent, n.by[caller, default: 0] < limits.perCaller else { return false }
                n.all += 1
                n.by[caller, default: 0] += 1
                return true
            }
        }
        func leave(_ caller: String) {
            running.withLock { n in
                n.all -= 1
                n.by[caller, default: 1] -= 1
                if n.by[caller] == 0 { n.by[caller] = nil }
            }
        }

        /// When a request last moved a byte either way.
        final class Progress: Sendable {
            private let at = Mutex(ContinuousClock.now)
            func mark() { at.withLock { $0 = .now } }
            var last: ContinuousClock.Instant { at.withLock { $0 } }
        }
    }

    static func run(env: [String: String], body: RequestBody, gate: Gate, caller: String, logger: Logger) async throws -> Response {
        guard gate.enter(caller) else { throw ForgeError.busy(retryAfter: 5) }
        let limits = gate.limits
        let (heads, headSink) = AsyncThrowingStream<(Int, [(String, String)]), any Error>.makeStream()
        // The response's bytes go over a channel: each send waits until the client's side took the chunk,
        // so git is held at the client's pace and nothing piles up in core (an unread clone once could).
        let chunks = AsyncThrowingChannel<ByteBuffer, any Error>()
        var environment: [Subprocess.Environment.Key: String] = [:]
        for (k, v) in env { environment[Subprocess.Environment.Key(stringLiteral: k)] = v }
        let progress = Gate.Progress()
        // Hummingbird reads what is left of the request body (from the same iterator) once a response is
        // written: the response must not end while this request's own reading of the body may still be
        // under way (two readers at once is a fatal error in NIO). So the response's stream, and any
        // refusal, end only once the whole task has.
        let task = Task {
            defer { gate.leave(caller) }
            var failure: (any Error)?
            do {
                _ = try await Subprocess.run(.path(FilePath(executable)), environment: .custom(environment),
                                             input: .inputWriter, output: .sequence, error: .sequence) { execution in
                    let pid = execution.processIdentifier.value
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            var sent = 0
                            for try await buffer in body {
                                sent += buffer.readableBytes
                                guard sent <= limits.maxBodyBytes else {
                                    kill(pid, SIGKILL)
                                    throw ForgeError.tooLarge("a push may be at most \(limits.maxBodyBytes) bytes")
                                }
                                progress.mark()
                                _ = try await execution.standardInputWriter.write(Array(buffer: buffer))
                            }
                            try await execution.standardInputWriter.finish()
                        }
                        group.addTask {
                            for try await line in execution.standardError.strings() { logger.debug("git http-backend: \(line)") }
                        }
                        group.addTask {
                            var pending: [UInt8] = []
                            var headed = false
                            for try await chunk in execution.standardOutput {
                                let bytes = chunk.withUnsafeBytes { Array($0) }
                                if headed {
                                    await chunks.send(ByteBuffer(bytes: bytes))
                                    progress.mark() // the client took it
                                    continue
                                }
                                progress.mark()
                                pending += bytes
                                guard let (head, rest) = splitHead(pending) else { continue }
                                headed = true
                                headSink.yield(head)
                                if !rest.isEmpty { await chunks.send(ByteBuffer(bytes: rest)) }
                            }
                        }
                        // The watchdog: no progress for `idle`, or past `total`, kills the backend (which ends
                        // its pipes, so nothing waits on it) and ends the request.
                        group.addTask {
                            let start = ContinuousClock.now
                            while true {
                                try await Task.sleep(for: min(.seconds(1), limits.idle / 4))
                                var why: String?
                                if ContinuousClock.now - progress.last > limits.idle { why = "nothing moved for \(limits.idle); the request was ended" }
                                if ContinuousClock.now - start > limits.total { why = "the request ran past \(limits.total)" }
                                if let why {
                                    kill(pid, SIGKILL)
                                    throw ForgeError.timedOut(why)
                                }
                            }
                        }
                        // Done when the three streams are; the watchdog is then cancelled.
                        for _ in 0..<3 { try await group.next() }
                        group.cancelAll()
                    }
                }
            } catch {
                failure = error
                if !(error is CancellationError) { logger.info("forge: a git request ended early: \(error)") }
            }
            headSink.finish(throwing: failure ?? ForgeError.notFound) // no-op when the head came
            if let failure { chunks.fail(failure) } else { chunks.finish() }
        }
        // A client that goes away stops taking chunks: nothing moves, and the watchdog ends the request
        // (and its backend) after the idle time.
        do {
            for try await (status, fields) in heads {
                var headers = HTTPFields()
                for (name, value) in fields {
                    if let n = HTTPFields.Element.Name(name) { headers[n] = value }
                }
                return Response(status: HTTPResponse.Status(code: status), headers: headers, body: ResponseBody(asyncSequence: chunks))
            }
        } catch {
            await task.value
            throw error
        }
        await task.value
        throw ForgeError.notFound
    }

    /// The CGI header block (up to the first blank line) parsed into a status and fields, and what follows.
    static func splitHead(_ bytes: [UInt8]) -> ((Int, [(String, String)]), [UInt8])? {
        var end: Int?, skip = 0
        for i in 0..<max(0, bytes.count - 1) {
            if bytes[i] == 10 && bytes[i + 1] == 10 { end = i; skip = 2; break }
            if i + 3 < bytes.count, bytes[i] == 13, bytes[i + 1] == 10, bytes[i + 2] == 13, bytes[i + 3] == 10 { end = i; skip = 4; break }
        }
        guard let end else { return nil }
        var status = 200
        var fields: [(String, String)] = []
        for line in String(decoding: bytes[..<end], as: UTF8.self).split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if name.lowercased() == "status" { status = Int(value.prefix(3)) ?? 200 } else { fields.append((name, value)) }
        }
        return ((status, fields), Array(bytes[(end + skip)...]))
    }
}
