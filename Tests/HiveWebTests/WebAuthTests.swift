import Foundation
@testable import HiveWeb
import HiveWire
import Testing

@Suite("Dashboard access")
struct WebAuthTests {
    @Test("a session opens only with the secret; each session has its own CSRF token; logout ends it")
    func sessions() throws {
        let auth = WebAuth(secret: "correct horse")
        #expect(auth.session(cookieHeader: nil) == nil)
        #expect(auth.login(password: "wrong") == nil)
        let id = try #require(auth.login(password: "correct horse"))
        let session = try #require(auth.session(cookieHeader: "a=b; \(WebAuth.cookie)=\(id); c=d"))
        #expect(session.csrf.count == 64)
        let other = try #require(auth.login(password: "correct horse"))
        #expect(auth.session(cookieHeader: "\(WebAuth.cookie)=\(other)")?.csrf != session.csrf)
        #expect(auth.session(cookieHeader: "\(WebAuth.cookie)=forged") == nil)
        auth.logout(id)
        #expect(auth.session(cookieHeader: "\(WebAuth.cookie)=\(id)") == nil)
    }

    @Test("agent text cannot break out of the page: the embedded snapshot escapes </script>")
    func escaping() throws {
        let evil = MessageView(id: 1, from: "iris", to: "operator", body: "</script><script>alert(1)</script><!--<script>", sentAt: 0, deliveredAt: nil,
                               ackedAt: nil, inReplyTo: nil, broadcast: false, redelivered: false, state: "pending")
        let page = DashboardPage.dashboard(snapshot: .init(seq: 1, agents: [], approvals: [], messages: [evil], reminders: [], questions: [], forge: nil),
                                           csrf: "t\"'</script>")
        #expect(!page.contains("</script><script>alert(1)"))
        #expect(page.components(separatedBy: "</script>").count == 3, "only the two real script elements close")
        #expect(!page.contains("<!--"))
        // The embedded data still parses to the same text (\u003c is "<" to JSON).
        let json = try #require(page.components(separatedBy: "type=\"application/json\">").last?.components(separatedBy: "</script>").first)
        let decoded = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        #expect(((decoded?["messages"] as? [[String: Any]])?.first?["body"] as? String) == evil.body)
    }
}
