import Foundation
import HiveHTTP
import HiveWire

/// Searches several agents' transcripts at once: each agent's page server searches its own
/// `events.sqlite` (as the agent: nobody else opens an agent's files), reached through the checked
/// connection of ``AgentPageProxy``. The dashboard and `hive search --transcripts` (dropped to the
/// dashboard's uid) both come here.
public enum TranscriptSearch {
    /// Longest one agent may take; the others' results do not wait for it.
    public static let perAgentTimeout: Duration = .seconds(3)
    /// Most bytes one agent's answer may have (100 hits of short snippets are a few tens of KB).
    static let maxAnswer = 512 * 1024
    /// Agents asked at once.
    static let concurrency = 16
    /// Longest a whole search takes: agents not asked by then are listed as not searched.
    public static let deadline: Duration = .seconds(10)
    /// The kinds an event has; an answer with another is refused.
    static let kinds: Set<String> = ["stdout", "stderr", "harness"]

    /// Searches every agent in `agents` for `query` (validated first, so a bad query is one error, not one
    /// per agent) and merges their hits, newest first, at most `limit`.
    public static func across(_ agents: [String], query: String, limit: Int, runDir: URL) async throws -> TranscriptSearchResult {
        _ = try SearchQuery.parse(query)
        let limit = min(SearchQuery.maxResults, max(1, limit))
        var path = URLComponents()
        path.path = "/search"
        path.queryItems = [URLQueryItem(name: "q", value: query), URLQueryItem(name: "limit", value: String(limit))]
        let uri = path.percentEncodedPath + "?" + (path.percentEncodedQuery ?? "")
        let names = agents.compactMap { try? AgentName($0) }
        var hits: [TranscriptHit] = []
        var unreachable: [String: String] = [:]
        let end = ContinuousClock.now + deadline
        await withTaskGroup(of: (String, Swift.Result<[TranscriptHit], any Error>).self) { group in
            var next = names.makeIterator()
            func launch() {
                guard let name = next.next() else { return }
                guard ContinuousClock.now < end else {
                    unreachable[name.rawValue] = "not asked: the search's \(deadline) were up"
                    return launch()
                }
                group.addTask {
                    do {
                        let (status, body) = try await AgentPageProxy.fetch(uri, runDir: runDir, agent: name, maxBytes: maxAnswer, timeout: perAgentTimeout)
                        guard status == 200 else { throw WebError("its page answered \(status)") }
                        var found = try WireCoding.decoder().decode(TranscriptSearchReply.self, from: body).hits.prefix(limit).map { $0 }
                        // The agent answers for its own transcript only: the name is ours, the kind one of the
                        // three, the time not past now (a hit dated in the future would push every other
                        // agent's off the newest-first list), the snippet bounded.
                        let now = Date().timeIntervalSince1970
                        guard found.allSatisfy({ kinds.contains($0.kind) && $0.at.isFinite }) else { throw WebError("its answer has an event of no known kind") }
                        for i in found.indices {
                            found[i].agent = name.rawValue
                            found[i].at = min(found[i].at, now)
                            found[i].snippet = String(found[i].snippet.prefix(600))
                        }
                        return (name.rawValue, .success(found))
                    } catch {
                        return (name.rawValue, .failure(error))
                    }
                }
            }
            for _ in 0..<concurrency { launch() }
            for await (name, result) in group {
                switch result {
                case .success(let found): hits += found
                case .failure(let error): unreachable[name] = "\(error)"
                }
                launch()
            }
        }
        hits.sort { $0.at > $1.at }
        return TranscriptSearchResult(hits: Array(hits.prefix(limit)), unreachable: unreachable)
    }
}
