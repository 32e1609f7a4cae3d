import Foundation
@testable import HiveWeb
import HiveWire
import Testing

@Suite("Dashboard access")
struct WebAuthTests {
    @Test("loopback needs no login; elsewhere a session from the right password, each with its own CSRF token")
    func sessions() throws {
        let open = WebAuth(password: nil)
        #expect(open.session(cookieHeader: nil)?.csrf == open.processToken)
        let closed = WebAuth(password: "correct horse")
        #expect(closed.session(cookieHeader: nil) == nil)
        #expect(closed.login(password: "wrong") == nil)
        let id = try #require(closed.login(password: "correct horse"))
        let session = try #require(closed.session(cookieHeader: "a=b; \(WebAuth.cookie)=\(id); c=d"))
        #expect(session.csrf.count == 64 && session.csrf != closed.processToken)
        #expect(closed.session(cookieHeader: "\(WebAuth.cookie)=forged") == nil)
        closed.logout(id)
        #expect(closed.session(cookieHeader: "\(WebAuth.cookie)=\(id)") == nil)
    }

    @Test("agent text cannot break out of the page: the embedded snapshot escapes </script>")
    func escaping() {
        let evil = MessageView(id: 1, from: "iris", to: "operator", body: "</script><script>alert(1)</script><!--", sentAt: 0, deliveredAt: nil,
                               ackedAt: nil, inReplyTo: nil, broadcast: false, redelivered: false, state: "pending")
        let page = DashboardPage.dashboard(snapshot: .init(seq: 1, agents: [], approvals: [], messages: [evil], reminders: [], forge: nil),
                                           csrf: "t\"'</script>", loginRequired: false)
        #expect(!page.contains("</script><script>alert(1)"))
        #expect(page.components(separatedBy: "</script>").count == 3, "only the two real script elements close")
        #expect(!page.contains("<!--"))
    }
}
