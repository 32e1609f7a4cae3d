import Foundation
import HiveWire
import Testing

@Suite("Agent config file")
struct AgentConfigTests {
    func parse(_ json: String) throws(ConfigError) -> AgentConfig { try AgentConfig.parse(Data(json.utf8)) }

    @Test("the template parses back to the defaults with a gated network; a file without the field keeps host")
    func template() throws {
        let c = try AgentConfig.parse(AgentConfig.template(description: "reviews pull requests"))
        var expected = AgentConfig()
        expected.description = "reviews pull requests"
        expected.network = .gated
        #expect(c == expected)
        #expect(c.network == .gated && c.egress.allow.isEmpty && c.allowedRecipients == ["*"] && c.model == "sonnet")
        #expect(try parse(#"{"model": "opus"}"#).network == .host, "a config approved before gated existed keeps what it meant")
    }

    @Test("the egress allow-list is checked entry by entry, with its limits in range")
    func egress() throws {
        let c = try parse(#"{"network": "gated", "egress": {"allow": ["pypi.org", "*.pythonhosted.org", "http://deb.debian.org"], "mb_per_minute": 60, "connections": 4}}"#)
        #expect(c.egress == .init(allow: ["pypi.org", "*.pythonhosted.org", "http://deb.debian.org"], mbPerMinute: 60, connections: 4))
        do {
            _ = try parse(#"{"egress": {"allow": ["ok.example", "evil.com/path", "a.*.b"], "mb_per_minute": 0, "proxy": 1}}"#)
            Issue.record("a bad allow-list was accepted")
        } catch {
            #expect(error.problems.contains { $0.hasPrefix("egress.allow[1] 'evil.com/path'") })
            #expect(error.problems.contains { $0.hasPrefix("egress.allow[2] 'a.*.b'") })
            #expect(error.problems.contains { $0.hasPrefix("egress.mb_per_minute: must be a whole number from 1") })
            #expect(error.problems.contains { $0.hasPrefix("egress.proxy: unknown field") })
            #expect(error.problems.count == 4, "\(error.problems)")
        }
        #expect((try? parse(#"{"egress": {"allow": "pypi.org"}}"#)) == nil, "a string is not a list")
    }

    @Test("the gateway lets through the approved model's family for an alias, a full id only itself")
    func models() throws {
        let c = try parse(#"{"model": "sonnet", "models": ["claude-opus-4-1-20250805"]}"#)
        #expect(c.allowsModel("claude-sonnet-4-5-20250929") && c.allowsModel("claude-sonnet-4-5-20250929[1m]"))
        #expect(c.allowsModel("claude-opus-4-1-20250805"))
        #expect(!c.allowsModel("claude-opus-4-5-20251101") && !c.allowsModel("claude-3-5-haiku-20241022"), "listed models replace the default haiku")
        #expect(try parse(#"{"model": "opus"}"#).allowsModel("claude-haiku-4-5"), "haiku by default, for claude's background calls")
        #expect((try? parse(#"{"models": ["bad model"]}"#)) == nil)
    }

    @Test("every bad field is named in one error, typos included")
    func problems() throws {
        let json = """
            {"modle": "opus", "model": "op us", "network": "wifi", "limits": {"memory_mb": 10, "cpu": 2},
             "env": {"HOME": "/root", "1BAD": "x", "OK_VAR": 3}, "allowed_recipients": ["bob", "../etc"],
             "mcp_servers": {"hive": {"command": "x"}, "Bad Name": {"command": "y"}, "git": {"args": []}},
             "reminders": {"cap": 0}, "session": {"context_fraction": 2, "turn_timeout_seconds": 1.5}}
            """
        do {
            _ = try parse(json)
            Issue.record("a config this wrong was accepted")
        } catch {
            let text = error.description
            for expected in ["modle: unknown field", "model: 'op us' is not a model name", "network: must be \"gated\", \"host\" or \"none\"",
                             "limits.memory_mb: must be a whole number from 64", "limits.cpu: unknown field", "env.HOME: set by the hive",
                             "env.1BAD: not a valid variable name", "env.OK_VAR: must be a string", "allowed_recipients[1]: '../etc'",
                             "mcp_servers.hive: 'hive' is the hive's own server", "mcp_servers.Bad Name: server names",
                             "mcp_servers.git.command: must be a non-empty string", "reminders.cap: must be a whole number from 1",
                             "session.context_fraction: must be a number from 0.05 to 1", "session.turn_timeout_seconds: must be a whole number"] {
                #expect(text.contains(expected), "missing: \(expected)")
            }
            #expect(error.problems.count == 15)
        }
    }

    @Test("not JSON, or not an object, is refused with a reason")
    func notJSON() {
        #expect(throws: ConfigError.self) { try parse("{model: opus}") }
        #expect((try? parse("[1]")) == nil)
    }

    @Test("a full config parses; what core renders reads back the same, variable names untouched")
    func roundTrip() throws {
        let c = try parse("""
            {"model": "claude-opus-4-1", "system_prompt": "Be brief.", "allowed_recipients": ["bob"], "network": "none",
             "env": {"MY_TOKEN": "t", "lowerCase": "v"}, "limits": {"memory_mb": 512, "pids": 128},
             "mcp_servers": {"git_tools": {"command": "/usr/bin/env", "args": ["x"], "env": {"GIT_DIR": "/x"}}},
             "reminders": {"cap": 5, "burst": 2, "refill_seconds": 30}, "session": {"context_fraction": 0.25, "cache_ttl_seconds": 60}}
            """)
        #expect(c.env == ["MY_TOKEN": "t", "lowerCase": "v"])
        #expect(c.mcpServers["git_tools"]?.env == ["GIT_DIR": "/x"])
        #expect(c.limits == .init(memoryMB: 512, pids: 128))
        #expect(c.session.contextFraction == 0.25 && c.session.cacheTTLSeconds == 60 && c.session.turnTimeoutSeconds == 1800)
        #expect(try AgentConfig.decodeRendered(c.encoded()) == c)
        #expect(try AgentConfig.parse(c.encoded()) == c, "a rendered file is itself a valid config")
    }

    @Test("allowed recipients: the listed agents; manager and operator always; * needed for a broadcast")
    func recipients() throws {
        var c = AgentConfig()
        let bob = try AgentName("bob"), eve = try AgentName("eve")
        c.allowedRecipients = ["bob"]
        #expect(c.allows(.agent(bob)))
        #expect(!c.allows(.agent(eve)))
        #expect(c.allows(.agent(.manager)) && c.allows(.operator))
        #expect(!c.allows(.broadcast))
        c.allowedRecipients = ["*"]
        #expect(c.allows(.broadcast) && c.allows(.agent(eve)))
    }

    @Test("system notices start with their kind and fit in a message")
    func notices() {
        #expect(SystemNotice.containerCrash.body("x") == "container_crash: x")
        let long = SystemNotice.deadLetter.body(String(repeating: "é", count: 5000))
        #expect(long.utf8.count <= WireLimits.maxBodyBytes && long.hasPrefix("dead_letter: "))
    }
}

@Suite("agent.json cannot say two things")
struct AgentConfigDuplicateKeyTests {
    @Test("a key given twice is refused, at any depth, escapes included; so is a file past the size cap")
    func duplicates() {
        func problems(_ text: String) -> [String] {
            do { _ = try AgentConfig.parse(Data(text.utf8)); return [] } catch { return error.problems }
        }
        #expect(problems(#"{"network":"none","model":"opus","network":"host"}"#) == ["network: given more than once"])
        #expect(problems(#"{"env":{"A":"1","\u0041":"2"}}"#) == ["env.A: given more than once"])
        #expect(problems(#"{"limits":{"pids":100},"session":{"cache_ttl_seconds":1,"cache_ttl_seconds":2}}"#) == ["session.cache_ttl_seconds: given more than once"])
        #expect(problems(#"{"env":{"X":"{\"network\":1,\"network\":2}"},"network":"none"}"#).isEmpty, "keys inside strings are text")
        #expect(problems(#"{"allowed_recipients":["a","a"]}"#).isEmpty, "values may repeat")
        let huge = #"{"description":"\#(String(repeating: "x", count: 40_000))"}"#
        #expect(problems(huge).first?.contains("at most") == true)
    }
}

@Suite("agent.json never carries a credential")
struct AgentConfigCredentialTests {
    @Test("credential variables in env are refused; a stored credential is chosen by name")
    func credentials() throws {
        #expect(throws: ConfigError.self) { try AgentConfig.parse(Data(#"{"env":{"ANTHROPIC_API_KEY":"sk-ant-api03-x"}}"#.utf8)) }
        #expect(throws: ConfigError.self) { try AgentConfig.parse(Data(#"{"credential":"../etc"}"#.utf8)) }
        #expect(try AgentConfig.parse(Data(#"{"credential":"team-b"}"#.utf8)).credential == "team-b")
        #expect(throws: RequestError.self) { try StoredCredential(secret: "sk-ant-api03-\u{7}bell") }
    }
}
