// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "hyperhive",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "hive", targets: ["hive"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk.git", from: "0.12.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-async-algorithms.git", from: "1.1.4"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.36.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
    ],
    targets: [
        // Wire types: what every process speaks (commands, replies, states, agent.json). Foundation only.
        .target(name: "HiveWire"),
        // The host every process shares: the hive's paths (HiveLayout), unix and TCP sockets, child
        // processes, file access confined to a directory, stored credentials, finding claude.
        .target(name: "HiveHost", dependencies: ["HiveWire"]),
        // The hive's metrics: the names and buckets every process uses through swift-metrics, and the
        // Prometheus registry and text exposition behind them (one per process).
        .target(name: "HiveMetrics", dependencies: [
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // A small blocking-socket client for the NDJSON sockets, used by the CLI, tests and bench.
        .target(name: "HiveClient", dependencies: ["HiveWire", "HiveHost"]),
        // What the hive keeps durably (the registry with each agent's cage uid, messages, reminders,
        // approvals, questions) behind the HiveStore protocols, and the lifecycles that rule its states.
        // Broker is the SQLite store, through GRDB. No sockets, no processes.
        .target(name: "HiveBroker", dependencies: [
            "HiveWire", "HiveMetrics",
            .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        // The private git forge: repos, users and tokens, git's smart HTTP and a Gitea-shaped API under /forge/.
        .target(name: "HiveForge", dependencies: [
            "HiveWire", "HiveHost",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Subprocess", package: "swift-subprocess"),
            .product(name: "SystemPackage", package: "swift-system"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
        ]),
        // The gated network: the host ends core runs per gated agent (the model gateway that adds the
        // credential and meters tokens, the CONNECT proxy that decides by the allow-list with names resolved
        // here, the forge relay, the per-agent budget) and the cage's loopback forwarder the harness runs.
        .target(name: "CSplice"),
        .target(name: "HiveGate", dependencies: [
            "HiveWire", "HiveHost", "CSplice",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // The coordinator daemon (`hive core`, root): the sockets and what they answer, cage supervision and
        // bubblewrap, the one place root touches agent-writable trees, configs and approvals, disk watch, sweeps.
        .target(name: "HiveCore", dependencies: [
            "HiveWire", "HiveHost", "HiveBroker", "HiveForge", "HiveGate", "HiveMetrics", "HivePostgres", "HiveHTTP",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // Per-agent telemetry stores (events.sqlite, turn-stats.sqlite): written and swept by the harness, as the agent.
        .target(name: "HiveTelemetry", dependencies: ["HiveWire", .product(name: "GRDB", package: "GRDB.swift")]),
        // HTTP pieces the dashboard, the agents' pages and the node endpoints share: JSON and HTML replies, the
        // SSE writer, the checked proxy to an agent's own page server.
        .target(name: "HiveHTTP", dependencies: [
            "HiveWire", "HiveHost",
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
        ]),
        // The harness (`hive agent`): the turn machine and the loop driving claude, its stores and its HTTP endpoint.
        // Reaches the hive only through its agent socket: never the broker or core.
        .target(name: "HiveHarness", dependencies: [
            "HiveWire", "HiveHost", "HiveClient", "HiveTelemetry", "HiveHTTP", "HiveGate",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Subprocess", package: "swift-subprocess"),
            .product(name: "SystemPackage", package: "swift-system"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Hummingbird", package: "hummingbird"),
        ]),
        // `hive mcp`: the agent's hive tools over MCP stdio, each one a request on the agent socket.
        // The broker's messages on PostgreSQL for a hive on many hosts (issue 15, first slice): one pool and
        // one LISTEN connection per node, wake across nodes by NOTIFY.
        .target(name: "HivePostgres", dependencies: [
            "HiveWire", "HiveHost", "HiveBroker", "HiveMetrics",
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "HiveMCP", dependencies: [
            "HiveWire", "HiveClient", "HiveTelemetry",
            .product(name: "MCP", package: "swift-sdk"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // `hive web`: the dashboard, an unprivileged process that reaches the hive only through web.sock.
        .target(name: "HiveWeb", dependencies: [
            "HiveWire", "HiveHost", "HiveClient", "HiveHTTP", "HiveMetrics",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // A stand-in of the Anthropic Messages API for the real Claude Code CLI: only the model is scripted.
        // Used by the tests and the benchmarks; never linked into `hive`.
        .target(name: "ModelStandIn", dependencies: [
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "hive", dependencies: [
            "HiveWire", "HiveHost", "HiveClient", "HiveBroker", "HiveCore", "HiveHarness", "HiveMCP", "HiveTelemetry", "HiveWeb", "HiveMetrics", "HivePostgres",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .target(name: "HiveFuzz", dependencies: ["HiveWire", "HiveHost"]),
        // Throwaway PostgreSQL clusters (initdb, pg_ctl) for the tests and benchmarks; never linked into `hive`.
        .target(name: "PostgresFixture", dependencies: ["HiveHost"]),
        .executableTarget(name: "hive-bench", dependencies: [
            "HiveWire", "HiveHost", "HiveClient", "HiveBroker", "HiveTelemetry", "HiveHarness", "ModelStandIn", "HiveFuzz", "HiveGate",
            "HivePostgres", "PostgresFixture", .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "HiveWireTests", dependencies: ["HiveWire"]),
        .testTarget(name: "HiveBrokerTests", dependencies: ["HiveBroker", "HivePostgres", "PostgresFixture", "HiveWire",
                                                   .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "HiveCoreTests", dependencies: ["HiveCore"]),
        .testTarget(name: "HiveForgeTests", dependencies: ["HiveForge"]),
        .testTarget(name: "HiveWebTests", dependencies: ["HiveWeb"]),
        .testTarget(name: "HivePostgresTests", dependencies: ["HivePostgres", "HiveBroker", "PostgresFixture", "HiveWire", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "HiveTelemetryTests", dependencies: ["HiveTelemetry", "HiveWire"]),
        .testTarget(name: "HiveHarnessTests", dependencies: ["HiveHarness", "HiveWire", "HiveTelemetry"]),
        .testTarget(name: "ModelStandInTests", dependencies: ["ModelStandIn"]),
        .testTarget(name: "HiveGateTests", dependencies: ["HiveGate", "HiveHost", "HiveWire", .product(name: "NIOHTTP1", package: "swift-nio")]),
        .testTarget(name: "HiveMCPTests", dependencies: ["HiveMCP", .product(name: "MCP", package: "swift-sdk")]),
        .testTarget(name: "HiveEndToEndTests", dependencies: ["HiveClient", "HiveBroker", "HiveWire", "HiveHost", "HiveTelemetry", "ModelStandIn", "HiveFuzz",
                                                      "PostgresFixture"],
                    exclude: ["Golden"]), // read from disk by GoldenWireTests, not built
    ]
)
