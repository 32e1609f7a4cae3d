import Foundation
import HiveBroker
import HiveHost
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
/// stopped). When `/shared` is over its quota, whoever grew it most since the last round is parked (the
/// writer, not whoever holds the most), or, if nobody grew, the top owner; one more each round while it
/// stays over. A parked agent is released when its cause has fallen below 90% (so it does not flap at
/// the line); a destroyed one is forgotten, never released. No I/O here.
struct DiskQuotaMachine: Equatable {
    enum Cause: Equatable { case own(bytes: Int64, quota: Int64), tooManyFiles, shared(bytes: Int64, quota: Int64) }
    enum Action: Equatable { case park(AgentName, Cause), release(AgentName) }
    struct Usage: Equatable {
        /// Bytes of each live agent's own dirs (and its log); nil when the walk found more files than it counts.
        var own: [AgentName: Int64?]
        var quota: [AgentName: Int64]
        /// `/shared`: bytes in all (more than the quota when its walk could not finish), and per owning
        /// agent (empty when agents share a uid).
        var sharedTotal: Int64
        var sharedByAgent: [AgentName: Int64]
        var sharedQuota: Int64
    }

    private(set) var parked: [AgentName: Cause] = [:]
    private var lastShared: [AgentName: Int64] = [:]

    mutating func observe(_ u: Usage) -> [Action] {
        var actions: [Action] = []
        for name in parked.keys where u.own[name] == nil { parked[name] = nil } // destroyed: forgotten
        // Releases first: a cause that has gone away.
        for (name, cause) in parked.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let gone: Bool
            switch cause {
            case .own, .tooManyFiles:
                let quota = u.quota[name] ?? .max
                gone = (u.own[name] ?? nil).map { $0 * 10 < quota * 9 } ?? false
            case .shared:
                gone = u.sharedTotal * 10 < u.sharedQuota * 9
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
        if u.sharedTotal > u.sharedQuota {
            let candidates = u.sharedByAgent.filter { parked[$0.key] == nil && u.own[$0.key] != nil }
            let growth = candidates.map { ($0.key, $0.value - (lastShared[$0.key] ?? 0)) }.filter { $0.1 > 0 }
            let anyShared = parked.values.contains { if case .shared = $0 { return true } else { return false } }
            let pick = growth.max { ($0.1, $1.0.rawValue) < ($1.1, $0.0.rawValue) }?.0
                ?? (anyShared ? nil : candidates.max { ($0.value, $1.key.rawValue) < ($1.value, $0.key.rawValue) }?.key)
            if let pick {
                parked[pick] = .shared(bytes: u.sharedTotal, quota: u.sharedQuota)
                actions.append(.park(pick, parked[pick]!))
            }
        }
        lastShared = u.sharedByAgent
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
    let broker: any HiveStore
    let policy: DiskPolicy
    let board: AgentStatusBoard
    let configs: ConfigStore
    let processes: AgentProcesses?
    /// The agent whose cage runs as a uid (to tell who owns what in /shared); nil where agents share one.
    let owner: @Sendable (uid_t) -> AgentName?
    let notify: @Sendable (AgentName, String) -> Void
    let logger: Logger
    private let machine = Mutex(DiskQuotaMachine())

    init(layout: HiveLayout, broker: any HiveStore, policy: DiskPolicy, board: AgentStatusBoard, configs: ConfigStore, processes: AgentProcesses?,
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
            // Everything the agent fills: its dirs, its page dir, and its cage's log (what it prints).
            var total: Int64 = rotateLog(name), files = 0, complete = true
            for dir in [layout.stateDir(name), layout.harnessDir(name), layout.agentPageDir(name)] {
                let u = TreeUsage.measure(dir, maxEntries: Self.maxEntries - files)
                total += u.bytes; files += u.entries; complete = complete && u.complete
            }
            usage.own[name] = complete ? total : nil
            usage.quota[name] = Int64(configs.current(name).limits.diskMB ?? policy.agentQuotaMB) << 20
        }
        let shared = TreeUsage.measure(layout.sharedDir, maxEntries: Self.maxEntries)
        // A walk that could not finish (more files than it counts) is over the quota: what it missed is unknown.
        usage.sharedTotal = shared.complete ? shared.bytes : max(shared.bytes, usage.sharedQuota + 1)
        for (uid, bytes) in shared.byOwner { if let name = owner(uid) { usage.sharedByAgent[name, default: 0] += bytes } }
        let (actions, parked) = machine.withLock { m in (m.observe(usage), m.parked) }
        for action in actions { act(action) }
        // Parked stays parked: a cage someone started meanwhile (a restart, the manager) is stopped again.
        for (name, cause) in parked where processes?.isolation(name) != nil && !actions.contains(.park(name, cause)) {
            act(.park(name, cause), quiet: true)
        }
    }

    private func act(_ action: DiskQuotaMachine.Action, quiet: Bool = false) {
        switch action {
        case .park(let name, let cause):
            processes?.stop(name)
            let detail = "parked: \(cause.text); it starts again once under 90%"
            board.supervisor(name, state: .overDiskQuota, detail: detail)
            logger.warning("\(name) \(detail)")
            if !quiet { notify(name, "\(name) was stopped: \(cause.text). Free space in its dirs (or in /shared), and it starts again by itself.") }
        case .release(let name):
            board.supervisor(name, state: nil)
            if (try? broker.isStopped(name)) == false { processes?.start(name) }
            logger.notice("\(name) is under its disk quota again; started")
            notify(name, "\(name) is under its disk quota again and was started.")
        }
    }

    /// A cage log past its size keeps its newest ``DiskPolicy/logMaxMB`` in `<name>.log.1` (copied in
    /// bounded chunks, never read whole) and is emptied in place (the cage keeps appending to the same
    /// file); lines written between the copy and the truncation are lost. Returns the bytes the log held.
    @discardableResult
    private func rotateLog(_ name: AgentName) -> Int64 {
        let log = layout.cageLog(name)
        let fd = open(log.path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return 0 }
        let size = Int64(st.st_size), keep = Int64(policy.logMaxMB) << 20
        guard size > keep else { return Int64(st.st_blocks) * 512 }
        let older = log.deletingLastPathComponent().appending(path: "\(name.rawValue).log.1")
        let temp = older.deletingLastPathComponent().appending(path: ".\(name.rawValue).log.1.tmp")
        let out = open(temp.path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o640)
        if out >= 0 {
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            var at = size - keep
            while at < size {
                let n = pread(fd, &buffer, min(buffer.count, Int(size - at)), off_t(at))
                guard n > 0, write(out, buffer, n) == n else { break }
                at += Int64(n)
            }
            close(out)
            _ = rename(temp.path, older.path)
        }
        _ = ftruncate(fd, 0)
        logger.info("rotated the cage log of \(name) (\(Self.mib(size)) MiB; the newest \(policy.logMaxMB) MiB kept in \(older.lastPathComponent))")
        return Int64(st.st_blocks) * 512
    }
}

/// Refuses agents' writes to the broker when the disk is nearly full, so the hive fails with a clear
/// error while it still can, never half way through a write. Free space is read at most once a second.
final class DiskReserve: Sendable {
    let path: String
    let reserveBytes: Int64
    private let cache = Mutex<(at: ContinuousClock.Instant, free: Int64, inodes: Bool)?>(nil)

    init(path: String, reserveMB: Int) { self.path = path; self.reserveBytes = Int64(reserveMB) << 20 }

    func check() throws(RequestError) {
        let (free, inodes) = cache.withLock { c -> (Int64, Bool) in
            if let c, ContinuousClock.now - c.at < .seconds(1) { return (c.free, c.inodes) }
            var s = statvfs()
            guard statvfs(path, &s) == 0 else { return (.max, true) }
            // Files count too: empty files fill a disk's inodes without a byte of blocks.
            let entry = (at: ContinuousClock.now, free: Int64(s.f_bavail) * Int64(s.f_frsize), inodes: s.f_files == 0 || s.f_favail * 100 >= s.f_files)
            c = entry
            return (entry.free, entry.inodes)
        }
        guard inodes else {
            throw RequestError("refused: the hive's disk has almost no free inodes (files) left; delete files you made (state dir, /shared) and try again later")
        }
        guard free >= reserveBytes else {
            throw RequestError("refused: the hive's disk has \(DiskWatch.mib(free)) MiB free, below its reserve of \(DiskWatch.mib(reserveBytes)) MiB; delete files you made (state dir, /shared) and try again later")
        }
    }
}
