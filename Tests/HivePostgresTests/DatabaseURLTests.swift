import HivePostgres
import Testing

@Suite("--database URLs")
struct DatabaseURLTests {
    @Test("a URL names user, host, port and database; TLS is verified unless the database is on loopback; the password may come from PGPASSWORD")
    func parsed() throws {
        let remote = try DatabaseURL("postgres://hive:s3cret@db.internal:6432/hive", environment: [:])
        #expect(remote.user == "hive" && remote.host == "db.internal" && remote.port == 6432 && remote.database == "hive")
        #expect(remote.password == "s3cret" && remote.tls == .verifyFull)
        #expect(!remote.description.contains("s3cret"), "the password never shows in logs: \(remote)")
        let local = try DatabaseURL("postgresql://hive@127.0.0.1/hive", environment: ["PGPASSWORD": "from-env"])
        #expect(local.port == 5432 && local.tls == .disable && local.password == "from-env")
        #expect(try DatabaseURL("postgres://hive@localhost/hive?sslmode=verify-full", environment: [:]).tls == .verifyFull)
    }

    @Test("bad URLs are refused with what is wrong, and the password is not repeated in the error")
    func refused() {
        let cases: [(String, String)] = [
            ("mysql://hive@db/hive", "postgres://"),
            ("postgres://db.internal/hive", "no user"),
            ("postgres://hive@db.internal", "no database name"),
            ("postgres://hive@db.internal:99999/hive", "out of range"),
            ("postgres://hive:pw@db.internal/hive?sslmode=disable", "only allowed for a database on this host"),
            ("postgres://hive@db.internal/hive?sslmode=prefer", "sslmode is one of"),
            ("postgres://hive@db.internal/hive?application_name=x", "unknown parameter"),
            ("postgres://hive:topsecret@/hive", "no host"),
        ]
        for (url, says) in cases {
            do {
                _ = try DatabaseURL(url, environment: [:])
                Issue.record("\(url) was accepted")
            } catch {
                let text = "\(error)"
                #expect(text.contains(says), "\(url): \(text)")
                #expect(!text.contains("topsecret") && !text.contains(":pw@"), "the password is not echoed: \(text)")
            }
        }
    }
}
