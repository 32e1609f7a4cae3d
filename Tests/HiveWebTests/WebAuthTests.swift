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

    @Test("password attempts are counted per client before they are checked, for the window; a success starts the count again; the table stays bounded")
    func throttle() {
        let t = LoginThrottle(limit: 3, window: 600, capacity: 100)
        for _ in 0..<3 { #expect(t.admit("a", now: 1000) == nil) }
        #expect(t.admit("a", now: 1100) == 500)
        #expect(t.admit("b", now: 1100) == nil, "another client is not affected")
        #expect(t.admit("a", now: 1600) == nil, "the window passed")
        _ = t.admit("c", now: 1000); _ = t.admit("c", now: 1000)
        t.succeeded("c")
        for _ in 0..<3 { #expect(t.admit("c", now: 1001) == nil, "the count started again after a success") }
        for i in 0..<1000 { _ = t.admit("spray-\(i)", now: 2000 + Double(i)) }
        for _ in 0..<2 { _ = t.admit("spray-999", now: 3000) }
        #expect(t.admit("spray-999", now: 3000) != nil, "the newest client is still tracked after the table was trimmed")
    }

    @Test("an agent page's capability opens that agent only, and dies with its session")
    func capabilities() throws {
        let auth = WebAuth(secret: "s3cret")
        let id = try #require(auth.login(password: "s3cret"))
        let cap = auth.agentCapability(session: id, agent: "iris")
        #expect(auth.agentCapability(session: id, agent: "iris") == cap, "one per (session, agent)")
        #expect(auth.agentCapability(session: id, agent: "bob") != cap)
        #expect(auth.agent(capability: cap) == "iris")
        #expect(auth.agent(capability: "forged") == nil)
        auth.logout(id)
        #expect(auth.agent(capability: cap) == nil)
    }

    @Test("agent text cannot break out of the page: the embedded snapshot escapes </script>")
    func escaping() throws {
        let evil = MessageView(id: 1, from: "iris", to: "operator", body: "</script><script>alert(1)</script><!--<script>", sentAt: 0, deliveredAt: nil,
                               ackedAt: nil, inReplyTo: nil, broadcast: false, redelivered: false, state: .pending)
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
