import Foundation
import HiveBroker
import HiveWire
import Logging
import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What disk the hive lets agents take (finding 24 of issue 13). Agents write their own dirs and the
/// world-writable `/shared`, and their cages' output fills their logs: left alone, one agent fills the
/// disk the broker writes to, and then every send in the hive fails.
public struct DiskPolicy: Sendable, Equatable {
    /// An agent's own dirs (state and harness), unless its agent.json says `limits.disk_mb`.
    public var agentQuotaMB = 10_240
    /// `/shared`, all agents together.
    public var sharedQuotaMB = 10_240
    /// A cage log past this is rotated (one older generation kept, `<name>.log.1`).
    public var logMaxMB = 16
    /// Free space below which agents' sends, reminders and questions are refused (the broker keeps it).
    public var reserveMB = 512
    /// How often usage is measured.
    public var interval: Duration = .seconds(60)
    public init() {}
}

/// The quota machine: usage in, parks and releases out. Over its quota an agent is parked (its cage
/// stopped); when `/shared` is over its quota, the agent owning most of it is parked. A parked agent is
/// released when its cause has fallen below 90% (so it does not flap at the line). No I/O here.
struct DiskQuotaMachine: Equatable {
    enum Cause: Equatable { case own(bytes: Int64, quota: Int64), tooManyFiles, shared(bytes: Int64, quota: Int64) }
    enum Action: Equatable { case park(AgentName, Cause), release(AgentName) }
    struct Usage: Equatable {
        /// Bytes of each agent's own dirs; nil when the walk found more files than it counts.
        var own: [AgentName: Int64?]
        var quota: [AgentName: Int64]
        /// `/shared`: bytes in all, and per owning agent (empty when agents share a uid).
        var sharedTotal: Int64
        var sharedByAgent: [AgentName: Int64]
        var sharedQuota: Int64
    }

    private(set) var parked: [AgentName: Cause] = [:]

    mutating func observe(_ u: Usage) -> [Action] {
        var actions: [Action] = []
        // Releases first: a cause that has gone away.
        for (name, cause) in parked.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let gone: Bool
            switch cause {
            case .own, .tooManyFiles:
                guard let measured = u.own[name] else { gone = true; break } // destroyed
                let quota = u.quota[name] ?? .max
                gone = measured.map { $0 * 10 < quota * 9 } ?? false
            case .shared:
                gone = u.sharedTotal * 10 < u.sharedQuota * 9 || u.own[name] == nil
            }
            if gone { parked[name] = nil; actions.append(.release(name)) }
        }
        for (name, measured) in u.own.sorted(by: { $0.key.rawValue < $1.key.rawValue }) where parked[name] == nil {
            let quota = u.quota[name] ?? .max
            if let bytes = measured {
                if bytes > quota { parked[name] = .own(bytes: bytes, quota: quota); actions.append(.park(name, parked[name]!)) }
            } else {
                parked[name] = .tooManyFiles
                actions.append(.park(name, .tooManyFiles))
            }
        }
        if u.sharedTotal > u.sharedQuota,
           let top = u.sharedByAgent.filter({ parked[$0.key] == nil && u.own[$0.key] != nil }).max(by: { ($0.value, $1.key.rawValue) < ($1.value, $0.key.rawValue) }),
           !parked.values.contains(where: { if case .shared = $0 { return true } else { return false } }) {
            parked[top.key] = .shared(bytes: u.sharedTotal, quota: u.sharedQuota)
            actions.append(.park(top.key, parked[top.key]!))
        }
        return actions
    }
}

extension DiskQuotaMachine.Cause {
    var text: String {
        switch self {
        case .own(let bytes, let quota): return "its dirs hold \(DiskWatch.mib(bytes)) MiB, over its quota of \(DiskWatch.mib(quota)) MiB"
        case .tooManyFiles: return "its dirs hold more than \(DiskWatch.maxEntries) files, or nest deeper than \(TreeUsage.maxDepth)"
        case .shared(let bytes, let quota): return "/shared holds \(DiskWatch.mib(bytes)) MiB, over its quota of \(DiskWatch.mib(quota)) MiB, and it owns the most there"
        }
    }
}

/// Measures, parks and releases, and rotates cage logs, every ``DiskPolicy/interval``.
final class DiskWatch: Service, Sendable {
    static let maxEntries = 1_000_000
    let layout: HiveLayout
    let broker: Broker
    let policy: DiskPolicy
    let board: AgentStatusBoard
    let configs: ConfigStore
    let processes: AgentProcesses?
    /// The agent whose cage runs as a uid (to tell who owns what in /shared); nil where agents share one.
    let owner: @Sendable (uid_t) -> AgentName?
    let notify: @Sendable (AgentName, String) -> Void
    let logger: Logger
    private let machine = Mutex(DiskQuotaMachine())

    init(layout: HiveLayout, broker: Broker, policy: DiskPolicy, board: AgentStatusBoard, configs: ConfigStore, processes: AgentProcesses?,
         owner: @escaping @Sendable (uid_t) -> AgentName?, notify: @escaping @Sendable (AgentName, String) -> Void, logger: Logger) {
        self.layout = layout; self.broker = broker; self.policy = policy; self.board = board; self.configs = configs
        self.processes = processes; self.owner = owner; self.notify = notify; self.logger = logger
    }

    static func mib(_ bytes: Int64) -> Int64 { bytes / (1 << 20) }

    private let stopping = Atomic<Bool>(false)

    func run() async throws {
        await withGracefulShutdownHandler {
            while !stopping.load(ordering: .relaxed) {
                await onThread { [self] in check() }
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.policy.interval) }
            }
        } onGracefulShutdown: {
            self.stopping.store(true, ordering: .relaxed)
        }
    }

    /// One round: measure, decide, act; rotate logs.
    func check() {
        guard let live = try? broker.agents().filter({ $0.record.destroyedAt == nil }).compactMap({ try? AgentName($0.record.name) }) else { return }
        var usage = DiskQuotaMachine.Usage(own: [:], quota: [:], sharedTotal: 0, sharedByAgent: [:], sharedQuota: Int64(policy.sharedQuotaMB) << 20)
        for name in live {
            var total: Int64 = 0, files = 0, complete = true
            for dir in [layout.stateDir(name), layout.harnessDir(name)] {
                let u = TreeUsage.measure(dir, maxEntries: Self.maxEntries - files)
                total += u.bytes; files += u.entries; complete = complete && u.complete
            }
            usage.own[name] = complete ? total : nil
            usage.quota[name] = Int64(configs.current(name).limits.diskMB ?? policy.agentQuotaMB) << 20
            rotateLog(name)
        }
        let shared = TreeUsage.measure(layout.sharedDir, maxEntries: Self.maxEntries)
        usage.sharedTotal = shared.bytes
        for (uid, bytes) in shared.byOwner { if let name = owner(uid) { usage.sharedByAgent[name, default: 0] += bytes } }
        let actions = machine.withLock { $0.observe(usage) }
        for action in actions { act(action) }
    }

    private func act(_ action: DiskQuotaMachine.Action) {
        switch action {
        case .park(let name, let cause):
            processes?.stop(name)
            let detail = "parked: \(cause.text); it starts again once under 90%"
            board.supervisor(name, state: "over_disk_quota", detail: detail)
            logger.warning("\(name) \(detail)")
            notify(name, "\(name) was stopped: \(cause.text). Free space in its dirs (or in /shared), and it starts again by itself.")
        case .release(let name):
            board.supervisor(name, state: nil)
            if (try? broker.isStopped(name)) == false { processes?.start(name) }
            logger.notice("\(name) is under its disk quota again; started")
            notify(name, "\(name) is under its disk quota again and was started.")
        }
    }

    /// A cage log past its size is copied to `<name>.log.1` and emptied in place (the cage keeps
    /// appending to the same file). Lines written between the copy and the truncation are lost.
    private func rotateLog(_ name: AgentName) {
        let log = layout.cageLog(name)
        let fd = open(log.path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, Int64(st.st_size) > Int64(policy.logMaxMB) << 20 else { return }
        let older = log.deletingLastPathComponent().appending(path: "\(name.rawValue).log.1")
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
        guard let data = try? handle.readToEnd() else { return }
        try? data.write(to: older, options: .atomic)
        _ = ftruncate(fd, 0)
        logger.info("rotated the cage log of \(name) (\(Self.mib(Int64(data.count))) MiB)")
    }
}

/// Refuses agents' writes to the broker when the disk is nearly full, so the hive fails with a clear
/// error while it still can, never half way through a write. Free space is read at most once a second.
final class DiskReserve: Sendable {
    let path: String
    let reserveBytes: Int64
    private let cache = Mutex<(at: ContinuousClock.Instant, free: Int64)?>(nil)

    init(path: String, reserveMB: Int) { self.path = path; self.reserveBytes = Int64(reserveMB) << 20 }

    func check() throws(RequestError) {
        let free = cache.withLock { c -> Int64 in
            if let c, ContinuousClock.now - c.at < .seconds(1) { return c.free }
            var s = statvfs()
            let free = statvfs(path, &s) == 0 ? Int64(s.f_bavail) * Int64(s.f_frsize) : .max
            c = (.now, free)
            return free
        }
        guard free >= reserveBytes else {
            throw RequestError("refused: the hive's disk has \(DiskWatch.mib(free)) MiB free, below its reserve of \(DiskWatch.mib(reserveBytes)) MiB; delete files you made (state dir, /shared) and try again later")
        }
    }
}
