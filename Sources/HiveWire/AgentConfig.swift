import Foundation

/// One agent's declarative configuration: the file `agent.json` at the top of its config repo.
///
/// The manager writes it in the *proposed* repo; core reads it from the *applied* repo once the operator
/// approved it, checks every field (``parse(_:)`` names each bad one) and renders the cage from it.
/// Missing fields take the defaults below, unknown fields are refused (a typo must not silently mean
/// "default").
public struct AgentConfig: Codable, Sendable, Equatable {
    public static let fileName = "agent.json"
    /// The largest `agent.json` taken: well under what an approval's diff shows in full.
    public static let maxFileBytes = 32 * 1024

    /// Whether `name` can be claude's `--model` (it goes on claude's command line): letters, digits and
    /// `. _ : - [ ]`, starting with a letter or digit, at most 100 bytes.
    public static func isModelName(_ name: String) -> Bool {
        name.utf8.count <= 100 && name.range(of: #"^[A-Za-z0-9][A-Za-z0-9._:\[\]-]*$"#, options: .regularExpression) != nil
    }

    /// claude's `--model`.
    public var model: String = "sonnet"
    /// One line for the operator and the dashboard: what this agent is for.
    public var description: String = ""
    /// Appended to claude's system prompt (`--append-system-prompt`).
    public var systemPrompt: String = ""
    /// Whom the agent may message: agent names, or `*` for anyone. `manager` and `operator` are always allowed.
    public var allowedRecipients: [String] = ["*"]
    /// MCP servers beside the hive's own, by name.
    public var mcpServers: [String: MCPServer] = [:]
    /// Extra environment variables for claude.
    public var env: [String: String] = [:]
    /// `gated` (what new agents get), `host` or `none`. A file without the field means `host`: configs
    /// approved before the gated network existed keep what the operator approved.
    public var network: Network = .host
    /// What a `gated` agent may reach besides the model and the forge, and how fast.
    public var egress = Egress()
    /// Models the gateway lets this agent's claude use besides `model` (claude's own background calls use
    /// a small model). Aliases (`sonnet`, `opus`, `haiku`) stand for every model of their family.
    public var models: [String] = ["haiku"]
    public var limits = Limits()
    public var reminders = Reminders()
    public var session = Session()
    public var permissions = Permissions()
    /// Which stored credential (`hive login --name`) the agent's claude uses; nil: `default`.
    public var credential: String?
    /// What the agent may spend; core parks it (`over_budget`) before a turn that would pass a cap.
    public var budget = Budget()

    // The field names below are the file's one description of itself: the checker's "known fields" come
    // from these keys (CaseIterable), so a field added here is known there.
    enum CodingKeys: String, CodingKey, CaseIterable {
        case model, description, systemPrompt = "system_prompt", allowedRecipients = "allowed_recipients",
             mcpServers = "mcp_servers", env, network, egress, models, limits, reminders, session, permissions, credential, budget
    }

    /// What claude may do without asking (in `--print` mode nobody can answer a prompt, so anything not
    /// allowed is denied). The hive's own tools are always allowed.
    ///
    /// `mode` nil (the default) means: inside a bubblewrap cage, everything (the cage is the boundary),
    /// `deny` still applied; without a cage, only the hive's tools and reading files, never a bypass.
    public struct Permissions: Codable, Sendable, Equatable {
        /// claude's `--permission-mode`: `default`, `acceptEdits`, `plan`, `bypassPermissions`, or nil.
        public var mode: String?
        /// Extra `--allowedTools` rules (`Bash(git *)`, `Edit`, `mcp__github`).
        public var allow: [String] = []
        /// `--disallowedTools` rules, applied in every mode.
        public var deny: [String] = []
        public static let modes = ["default", "acceptEdits", "plan", "bypassPermissions"]
        enum CodingKeys: String, CodingKey, CaseIterable { case mode, allow, deny }
        public init(mode: String? = nil, allow: [String] = [], deny: [String] = []) { self.mode = mode; self.allow = allow; self.deny = deny }
    }

    /// - `gated`: the cage's own network namespace with loopback only; every byte leaves through the
    ///   hive's gateway (the model API with the credential added there, the forge, and HTTPS to `egress.allow`).
    /// - `host`: the host's network, and the credential in claude's environment.
    /// - `none`: loopback only and nothing through it: no model either.
    public enum Network: String, Codable, Sendable, CaseIterable { case gated, host, none }

    /// A `gated` agent's way out beyond the model and the forge.
    public struct Egress: Codable, Sendable, Equatable {
        /// Destinations for HTTPS `CONNECT` (and plain HTTP where written `http://…`): see ``EgressPolicy``.
        /// Empty: the model and the forge only.
        public var allow: [String] = []
        /// Bytes per minute through the gateway, in MiB (the gateway pauses past it, it never drops).
        public var mbPerMinute = 600
        /// Connections open at once through the gateway (model requests not counted).
        public var connections = 32
        public init(allow: [String] = [], mbPerMinute: Int = 600, connections: Int = 32) {
            self.allow = allow; self.mbPerMinute = mbPerMinute; self.connections = connections
        }
        enum CodingKeys: String, CodingKey, CaseIterable { case allow, mbPerMinute = "mb_per_minute", connections }
    }

    /// Whether the gateway lets this agent's claude ask `requested` (a model id as sent to the API).
    /// `model` and `models` count; an alias covers its family (`sonnet` → every `claude-sonnet-…`), a
    /// full id only itself (a `[1m]`-style suffix aside).
    public func allowsModel(_ requested: String) -> Bool {
        let asked = requested.lowercased()
        return ([model] + models).contains { approved in
            let name = approved.lowercased().split(separator: "[", maxSplits: 1).first.map(String.init) ?? ""
            if let families = Self.aliases[name] { return families.contains { asked.contains($0) } }
            return asked == name || asked.split(separator: "[", maxSplits: 1).first.map(String.init) == name
        }
    }

    /// claude's model aliases and the families they stand for.
    static let aliases: [String: [String]] = ["sonnet": ["sonnet"], "opus": ["opus"], "haiku": ["haiku"], "opusplan": ["opus", "sonnet"], "best": ["opus"]]

    public struct MCPServer: Codable, Sendable, Equatable {
        public var command: String
        public var args: [String] = []
        public var env: [String: String] = [:]
        public init(command: String, args: [String] = [], env: [String: String] = [:]) {
            self.command = command; self.args = args; self.env = env
        }
        enum CodingKeys: String, CodingKey, CaseIterable { case command, args, env }
    }

    /// Resource limits, enforced through cgroups where the host offers them (`hive ls` says).
    public struct Limits: Codable, Sendable, Equatable {
        public var memoryMB: Int?
        public var pids: Int?
        /// The agent's own dirs (state and harness), in MiB; over it the agent is parked. Nil: the hive's default.
        public var diskMB: Int?
        public init(memoryMB: Int? = nil, pids: Int? = nil, diskMB: Int? = nil) { self.memoryMB = memoryMB; self.pids = pids; self.diskMB = diskMB }
        enum CodingKeys: String, CodingKey, CaseIterable { case memoryMB = "memory_mb", pids, diskMB = "disk_mb" }
    }

    /// How many reminders the agent may keep pending and how fast it may set them.
    public struct Reminders: Codable, Sendable, Equatable {
        public var cap = 100
        public var burst = 20
        public var refillSeconds = 60
        public init() {}
        enum CodingKeys: String, CodingKey, CaseIterable { case cap, burst, refillSeconds = "refill_seconds" }
    }

    /// When the harness continues claude's session and when it starts afresh: the planner weighs the
    /// coming turns' cost of each (see the harness's `SessionPlanner`).
    public struct Session: Codable, Sendable, Equatable {
        /// The seed's rule's share of the window (fresh past it with a cold cache). Kept so approved files
        /// still read; the planner decides now.
        public var contextFraction = 0.5
        /// Seconds the prompt cache is taken to stay warm; nil (the default): learned from the cache
        /// writes claude reports (1-hour entries for a subscription, 5-minute ones for an API key).
        public var cacheTTLSeconds: Int?
        /// What losing the conversation is worth, in input tokens: a fresh start must save more than this.
        public var freshPenaltyTokens = 30_000
        /// Longest one turn may run.
        public var turnTimeoutSeconds = 1800
        public init() {}
        enum CodingKeys: String, CodingKey, CaseIterable {
            case contextFraction = "context_fraction", cacheTTLSeconds = "cache_ttl_seconds", freshPenaltyTokens = "fresh_penalty_tokens",
                 turnTimeoutSeconds = "turn_timeout_seconds"
        }
    }

    public init() {}

    /// Whether the agent may send to `recipient`. The manager and the operator are always reachable.
    public func allows(_ recipient: Recipient) -> Bool {
        switch recipient {
        case .operator, .agent(.manager): return true
        case .broadcast: return allowedRecipients.contains("*")
        case .agent(let n): return allowedRecipients.contains("*") || allowedRecipients.contains(n.rawValue)
        }
    }

    // MARK: - Reading and checking

    /// Parses and checks `agent.json`. Every problem is reported, one per line, naming its field.
    public static func parse(_ data: Data) throws(ConfigError) -> AgentConfig {
        guard data.count <= maxFileBytes else {
            throw ConfigError(["\(fileName) is \(data.count) bytes; at most \(maxFileBytes) (the operator must see the whole diff they approve)"])
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw ConfigError(["\(fileName) is not valid JSON: \((error as NSError).userInfo[NSDebugDescriptionErrorKey] ?? error.localizedDescription)"])
        }
        guard let top = object as? [String: Any] else { throw ConfigError(["\(fileName) must hold one JSON object"]) }
        // A key given twice would show the operator one value in the diff and deploy the other.
        let duplicates = DuplicateKeys.find(in: data)
        if !duplicates.isEmpty { throw ConfigError(duplicates.map { "\($0): given more than once" }) }
        var check = Checker()
        let config = check.config(top)
        if !check.problems.isEmpty { throw ConfigError(check.problems) }
        return config
    }

    /// The config file a new agent starts from (what `request_init_config` seeds), every field written
    /// out so the manager sees what it can change.
    public static func template(description: String) -> Data {
        var c = AgentConfig()
        c.description = description
        c.network = .gated
        return c.encoded()
    }

    /// The file as written: pretty, keys sorted. (Explicit coding keys, no key strategy: a strategy would
    /// also rewrite the names inside `env` and `mcp_servers`.)
    public func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return ((try? encoder.encode(self)) ?? Data("{}".utf8)) + Data("\n".utf8)
    }

    /// Reads a file written by ``encoded()`` (a config core has already checked).
    public static func decodeRendered(_ data: Data) throws -> AgentConfig {
        try JSONDecoder().decode(AgentConfig.self, from: data)
    }
}

/// Why a config file was refused: one line per problem.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public let problems: [String]
    public init(_ problems: [String]) { self.problems = problems }
    public var description: String { "invalid \(AgentConfig.fileName): " + problems.joined(separator: "; ") }
}

/// Walks the parsed JSON field by field, collecting a sentence for each problem.
private struct Checker {
    var problems: [String] = []

    mutating func config(_ o: [String: Any]) -> AgentConfig {
        var c = AgentConfig()
        known(o, AgentConfig.CodingKeys.self, in: nil)
        if let v = string(o, "model", max: 100) {
            if !AgentConfig.isModelName(v) {
                problems.append("model: '\(v.prefix(100))' is not a model name (letters, digits and . _ : - [ ])")
            } else { c.model = v }
        }
        if let v = string(o, "description", max: 500) { c.description = v }
        if let v = string(o, "system_prompt", max: 20_000) { c.systemPrompt = v }
        if let list = field(o, "allowed_recipients", as: [Any].self, "a list of agent names or \"*\"") {
            var names: [String] = []
            for (i, item) in list.enumerated() {
                guard let s = item as? String else { problems.append("allowed_recipients[\(i)]: must be a string"); continue }
                if s == "*" || s == "operator" || s == "manager" || (try? AgentName(s)) != nil { names.append(s) } else {
                    problems.append("allowed_recipients[\(i)]: '\(s.prefix(64))' is neither \"*\" nor a valid agent name")
                }
            }
            c.allowedRecipients = names
        }
        if let servers = field(o, "mcp_servers", as: [String: Any].self, "an object of name → {command, args, env}") {
            for (name, value) in servers.sorted(by: { $0.key < $1.key }) {
                let at = "mcp_servers.\(name.prefix(64))"
                guard name.range(of: #"^[a-z0-9_-]{1,32}$"#, options: .regularExpression) != nil else {
                    problems.append("\(at): server names are 1–32 of a-z 0-9 _ -"); continue
                }
                guard name != "hive" else { problems.append("\(at): 'hive' is the hive's own server and cannot be replaced"); continue }
                guard let s = value as? [String: Any] else { problems.append("\(at): must be an object with command, args, env"); continue }
                known(s, AgentConfig.MCPServer.CodingKeys.self, in: at)
                guard let command = s["command"] as? String, !command.isEmpty, command.utf8.count <= 1024 else {
                    problems.append("\(at).command: must be a non-empty string"); continue
                }
                var server = AgentConfig.MCPServer(command: command)
                if let args = s["args"] {
                    if let a = args as? [String], a.count <= 100 { server.args = a } else { problems.append("\(at).args: must be a list of at most 100 strings") }
                }
                if let env = s["env"] { server.env = environment(env, at: "\(at).env") }
                c.mcpServers[name] = server
            }
        }
        if let env = o["env"] { c.env = environment(env, at: "env") }
        if let v = string(o, "network", max: 16) {
            if let n = AgentConfig.Network(rawValue: v) { c.network = n } else { problems.append("network: must be \"gated\", \"host\" or \"none\", not '\(v)'") }
        }
        if let e = field(o, "egress", as: [String: Any].self, "an object with allow, mb_per_minute, connections") {
            known(e, AgentConfig.Egress.CodingKeys.self, in: "egress")
            if let list = e["allow"] {
                if let allow = list as? [String] {
                    do { _ = try EgressPolicy(allow: allow); c.egress.allow = allow } catch {
                        problems += error.problems.map { "egress.allow" + ($0.hasPrefix("[") ? $0 : ": " + $0) }
                    }
                } else { problems.append("egress.allow: must be a list of host names (\"example.com\", \"*.example.com\", \"http://example.com\")") }
            }
            if let v = int(e, "mb_per_minute", at: "egress", range: 1...1_000_000) { c.egress.mbPerMinute = v }
            if let v = int(e, "connections", at: "egress", range: 1...1024) { c.egress.connections = v }
        }
        if let list = field(o, "models", as: [Any].self, "a list of model names") {
            var models: [String] = []
            for (i, item) in list.prefix(32).enumerated() {
                if let m = item as? String, AgentConfig.isModelName(m) { models.append(m) } else { problems.append("models[\(i)]: must be a model name") }
            }
            if list.count > 32 { problems.append("models: at most 32") }
            c.models = models
        }
        if let l = field(o, "limits", as: [String: Any].self, "an object with memory_mb, pids, disk_mb") {
            known(l, AgentConfig.Limits.CodingKeys.self, in: "limits")
            c.limits.diskMB = int(l, "disk_mb", at: "limits", range: 16...100_000_000)
            c.limits.memoryMB = int(l, "memory_mb", at: "limits", range: 64...1_048_576)
            c.limits.pids = int(l, "pids", at: "limits", range: 16...1_000_000)
        }
        if let r = field(o, "reminders", as: [String: Any].self, "an object with cap, burst, refill_seconds") {
            known(r, AgentConfig.Reminders.CodingKeys.self, in: "reminders")
            if let v = int(r, "cap", at: "reminders", range: 1...10_000) { c.reminders.cap = v }
            if let v = int(r, "burst", at: "reminders", range: 1...1_000) { c.reminders.burst = v }
            if let v = int(r, "refill_seconds", at: "reminders", range: 1...86_400) { c.reminders.refillSeconds = v }
        }
        if let s = field(o, "session", as: [String: Any].self, "an object with context_fraction, cache_ttl_seconds, fresh_penalty_tokens, turn_timeout_seconds") {
            known(s, AgentConfig.Session.CodingKeys.self, in: "session")
            if let v = s["context_fraction"] {
                if let d = (v as? NSNumber).map(\.doubleValue), !(v is Bool), d >= 0.05, d <= 1 { c.session.contextFraction = d } else {
                    problems.append("session.context_fraction: must be a number from 0.05 to 1")
                }
            }
            if let v = int(s, "cache_ttl_seconds", at: "session", range: 0...86_400) { c.session.cacheTTLSeconds = v }
            if let v = int(s, "fresh_penalty_tokens", at: "session", range: 0...10_000_000) { c.session.freshPenaltyTokens = v }
            if let v = int(s, "turn_timeout_seconds", at: "session", range: 10...86_400) { c.session.turnTimeoutSeconds = v }
        }
        if let b = field(o, "budget", as: [String: Any].self, "an object with usd_per_day, usd_per_month, tokens_per_day, tokens_per_month, warn_at") {
            let (budget, bad) = Budget.parse(b, at: "budget")
            c.budget = budget
            problems += bad
        }
        if let v = string(o, "credential", max: 32) {
            if StoredCredential.isName(v) { c.credential = v } else { problems.append("credential: '\(v)' is not a credential name (1–32 of a-z 0-9 _ -)") }
        }
        if let p = field(o, "permissions", as: [String: Any].self, "an object with mode, allow, deny") {
            known(p, AgentConfig.Permissions.CodingKeys.self, in: "permissions")
            if let m = p["mode"] {
                if let m = m as? String, AgentConfig.Permissions.modes.contains(m) { c.permissions.mode = m } else if !(m is NSNull) {
                    problems.append("permissions.mode: must be one of \(AgentConfig.Permissions.modes.joined(separator: ", "))")
                }
            }
            c.permissions.allow = toolRules(p["allow"], at: "permissions.allow")
            c.permissions.deny = toolRules(p["deny"], at: "permissions.deny")
        }
        return c
    }

    /// Permission rules as claude takes them: `Tool` or `Tool(specifier)`, no commas or newlines (the
    /// list goes on claude's command line), at most 100 of 200 bytes each.
    private mutating func toolRules(_ v: Any?, at: String) -> [String] {
        guard let v else { return [] }
        guard let list = v as? [Any], list.count <= 100 else { problems.append("\(at): must be a list of at most 100 rules"); return [] }
        var rules: [String] = []
        for (i, item) in list.enumerated() {
            guard let s = item as? String, s.utf8.count <= 200,
                  s.range(of: #"^[A-Za-z][A-Za-z0-9_-]*(\([^\n\r,]*\))?$"#, options: .regularExpression) != nil else {
                problems.append("\(at)[\(i)]: must be a rule like \"Edit\" or \"Bash(git log *)\""); continue
            }
            rules.append(s)
        }
        return rules
    }

    private mutating func known<Key: CodingKey & CaseIterable>(_ o: [String: Any], _ described: Key.Type, in parent: String?) {
        let keys = Set(Key.allCases.map(\.stringValue))
        for key in o.keys.sorted() where !keys.contains(key) {
            let at = parent.map { "\($0).\(key.prefix(64))" } ?? String(key.prefix(64))
            problems.append("\(at): unknown field (known: \(keys.sorted().joined(separator: ", ")))")
        }
    }

    private mutating func field<T>(_ o: [String: Any], _ key: String, as: T.Type, _ what: String) -> T? {
        guard let v = o[key] else { return nil }
        guard let t = v as? T else { problems.append("\(key): must be \(what)"); return nil }
        return t
    }

    private mutating func string(_ o: [String: Any], _ key: String, max: Int) -> String? {
        guard let v = o[key] else { return nil }
        guard let s = v as? String else { problems.append("\(key): must be a string"); return nil }
        guard s.utf8.count <= max else { problems.append("\(key): longer than \(max) bytes"); return nil }
        return s
    }

    private mutating func int(_ o: [String: Any], _ key: String, at parent: String, range: ClosedRange<Int>) -> Int? {
        guard let v = o[key] else { return nil }
        guard !(v is Bool), let n = v as? NSNumber, n.doubleValue == n.doubleValue.rounded(), range.contains(n.intValue) else {
            problems.append("\(parent).\(key): must be a whole number from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return n.intValue
    }

    /// Environment variables: plain names, string values; the hive's own variables cannot be overridden.
    private mutating func environment(_ v: Any, at: String) -> [String: String] {
        guard let o = v as? [String: Any] else { problems.append("\(at): must be an object of NAME → string"); return [:] }
        var env: [String: String] = [:]
        for (k, value) in o.sorted(by: { $0.key < $1.key }) {
            guard k.range(of: "^[A-Za-z_][A-Za-z0-9_]{0,127}$", options: .regularExpression) != nil else {
                problems.append("\(at).\(k.prefix(64)): not a valid variable name"); continue
            }
            guard !k.hasPrefix("HIVE_"), !k.hasPrefix("GIT_CONFIG_"), !["HOME", "PATH", "CLAUDECODE"].contains(k) else {
                problems.append("\(at).\(k): set by the hive, cannot be overridden"); continue
            }
            guard !StoredCredential.variables.contains(k) else {
                problems.append("\(at).\(k): credentials are stored with hive login and chosen with \"credential\", never written in a config"); continue
            }
            guard let s = value as? String, s.utf8.count <= 8192 else { problems.append("\(at).\(k): must be a string of at most 8 KiB"); continue }
            env[k] = s
        }
        return env
    }
}

/// Finds keys given twice in one object of a JSON text (which JSONSerialization accepts, keeping the last).
/// Runs on text JSONSerialization has already accepted, so it only tracks strings, nesting and where a
/// key may stand; each key is decoded (escapes included) before it is compared.
enum DuplicateKeys {
    static func find(in data: Data) -> [String] {
        struct Level { var isObject: Bool; var keys: Set<String> = []; var expectKey: Bool; var path: String }
        var stack: [Level] = []
        var lastKey = ""
        var found: [String] = []
        let b = [UInt8](data)
        var i = 0
        while i < b.count {
            switch b[i] {
            case UInt8(ascii: "{"):
                let parent = stack.last.map { $0.isObject ? ($0.path.isEmpty ? lastKey : "\($0.path).\(lastKey)") : $0.path } ?? ""
                stack.append(Level(isObject: true, expectKey: true, path: parent))
            case UInt8(ascii: "["):
                let parent = stack.last.map { $0.isObject ? ($0.path.isEmpty ? lastKey : "\($0.path).\(lastKey)") : $0.path } ?? ""
                stack.append(Level(isObject: false, expectKey: false, path: parent))
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                _ = stack.popLast()
            case UInt8(ascii: ","):
                if stack.last?.isObject == true { stack[stack.count - 1].expectKey = true }
            case UInt8(ascii: ":"):
                if stack.last?.isObject == true { stack[stack.count - 1].expectKey = false }
            case UInt8(ascii: "\""):
                var j = i + 1
                while j < b.count, b[j] != UInt8(ascii: "\"") { j += b[j] == UInt8(ascii: "\\") ? 2 : 1 }
                if let top = stack.last, top.isObject, top.expectKey {
                    let key = (try? JSONSerialization.jsonObject(with: Data(b[i...min(j, b.count - 1)]), options: .fragmentsAllowed)) as? String ?? ""
                    lastKey = key
                    if !stack[stack.count - 1].keys.insert(key).inserted {
                        found.append(top.path.isEmpty ? String(key.prefix(64)) : "\(top.path).\(key.prefix(64))")
                    }
                }
                i = j
            default:
                break
            }
            i += 1
        }
        return found
    }
}
