import Crypto
import Foundation
import HiveHost
import HiveWire

/// What a service install puts on a host: two systemd units (core, and the dashboard that reaches core
/// only through `web.sock`), a system user and group for the dashboard, an environment file for settings
/// and credentials, and the binary. Pure: the text of each file from the settings; ``ServiceInstaller``
/// writes them.
///
/// One unit per process rather than one for `hive up`: systemd restarts each on its own (a crashed
/// dashboard never takes the agents down), hardens each as far as it goes (the web process gets every
/// protection; core runs cages, so it keeps what bubblewrap and cgroups need), and `journalctl -u` splits
/// their logs.
public struct ServiceUnits: Sendable, Equatable {
    public static let coreUnit = "hyperhive.service"
    public static let webUnit = "hyperhive-web.service"
    /// The dashboard's user and group: `hive web` started as root drops to this uid, and core gives
    /// `web.sock` this group. The ids are fixed (``WebSurface/uid``): the install makes the names.
    public static let webAccount = "hyperhive-web"

    /// Where the binary is run from (a link to the versioned copy the install made).
    public var binary = "/usr/local/bin/hive"
    public var root = "/var/lib/hyperhive"
    public var runDir = "/run/hyperhive"
    public var environmentFile = "/etc/hyperhive/hyperhive.env"
    public var listen = "127.0.0.1:7000"
    /// Where hives claim their agent uid blocks (`UIDRange`): outside the root, shared by every hive.
    public var uidRegistry = "/etc/hyperhive/uid-ranges"

    public init() {}

    public var core: String {
        """
        # Written by `hive install`; a new install rewrites it. Settings go in \(environmentFile);
        # anything else in a drop-in (`systemctl edit \(Self.coreUnit)`).
        [Unit]
        Description=Hyperhive core: the broker, the agents' cages and sockets
        Wants=network-online.target
        After=network-online.target

        [Service]
        Type=simple
        EnvironmentFile=\(environmentFile)
        ExecStart=\(binary) core --root ${HIVE_ROOT} --run-dir ${HIVE_RUN_DIR} $HIVE_CORE_ARGS
        # SIGTERM stops core gracefully (cages first); whatever is left after the timeout is killed.
        KillMode=mixed
        TimeoutStopSec=90
        Restart=on-failure
        RestartSec=2s
        # Each agent holds sockets, logs and a harness; a hive of dozens needs more than 1024 descriptors.
        LimitNOFILE=65536
        TasksMax=infinity
        # Core makes each cage's memory and process-count cgroups (the cgroup v1 controllers, where the host
        # has them).
        Delegate=yes
        RuntimeDirectory=hyperhive
        RuntimeDirectoryMode=0755
        RuntimeDirectoryPreserve=yes
        StateDirectory=hyperhive
        StateDirectoryMode=0755
        UMask=0022
        # /usr, /boot and /etc read-only, and a /tmp of its own. No more: core makes namespaces, sets
        # hostnames and uids and mounts inside cages (bubblewrap), and cages need the host's devices, so
        # NoNewPrivileges, PrivateUsers, ProtectHostname, ProtectClock and device or syscall filters would
        # break them.
        ProtectSystem=full
        # ... except the host-wide registry where each hive claims its block of agent uids.
        ReadWritePaths=-\(uidRegistry)
        PrivateTmp=yes

        [Install]
        WantedBy=multi-user.target

        """
    }

    public var web: String {
        """
        # Written by `hive install`; a new install rewrites it. Settings go in \(environmentFile).
        [Unit]
        Description=Hyperhive dashboard (unprivileged; reaches core only through web.sock)
        After=\(Self.coreUnit)
        PartOf=\(Self.coreUnit)

        [Service]
        Type=simple
        EnvironmentFile=\(environmentFile)
        # The dashboard never needs a credential the settings may hold.
        UnsetEnvironment=ANTHROPIC_API_KEY ANTHROPIC_AUTH_TOKEN CLAUDE_CODE_OAUTH_TOKEN
        # Starts as root to read the run dir's token and secret, then drops to \(Self.webAccount) for good.
        ExecStart=\(binary) web --run-dir ${HIVE_RUN_DIR} --listen ${HIVE_WEB_LISTEN} $HIVE_WEB_ARGS
        Restart=always
        RestartSec=2s
        LimitNOFILE=65536
        NoNewPrivileges=yes
        # full, not strict: on its first start it writes the dashboard token into the run dir.
        ProtectSystem=full
        ProtectHome=yes
        PrivateTmp=yes
        PrivateDevices=yes
        ProtectKernelTunables=yes
        ProtectKernelModules=yes
        ProtectKernelLogs=yes
        ProtectControlGroups=yes
        ProtectClock=yes
        ProtectHostname=yes
        RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
        RestrictNamespaces=yes
        RestrictRealtime=yes
        RestrictSUIDSGID=yes
        LockPersonality=yes
        MemoryDenyWriteExecute=yes
        SystemCallArchitectures=native

        [Install]
        WantedBy=multi-user.target

        """
    }

    /// systemd-sysusers' entry for the dashboard's account (ids fixed: core and the web agree on them).
    public var sysusers: String {
        let id = WebSurface.uid
        return """
            # Written by `hive install`: the account `hive web` drops to, and the group of web.sock.
            g \(Self.webAccount) \(id)
            u \(Self.webAccount) \(id):\(id) "Hyperhive dashboard" - -

            """
    }

    /// The environment file's first text (an install never rewrites one that exists: it holds the operator's
    /// settings and credentials).
    public var environment: String {
        """
        # Settings of the hyperhive services, read by systemd (`systemctl restart hyperhive` applies them).
        # Mode 0600: it may hold a credential.
        HIVE_ROOT=\(root)
        HIVE_RUN_DIR=\(runDir)
        # Where the dashboard listens (keep it on loopback; put nginx in front: `hive nginx-config`).
        HIVE_WEB_LISTEN=\(listen)
        # More flags for `hive core` and `hive web` (see `hive core --help`), e.g. --log-level debug.
        HIVE_CORE_ARGS=
        HIVE_WEB_ARGS=
        # Agents use the credential stored with `hive login`; or set an API key here:
        #ANTHROPIC_API_KEY=
        # The claude the harnesses run, when it is not on PATH (scripts/fetch-claude prints the tested one):
        #HIVE_CLAUDE=

        """
    }
}

/// Installs, upgrades and removes the service on a host (or, with a prefix, in a tree laid out like one:
/// what packaging and the tests use). Runs as root on a real host; every path it writes is the
/// operator's (`/usr/local`, `/etc`, `/var/lib`), none an agent's.
public struct ServiceInstaller: Sendable {
    /// Everything lands under this directory; the files name the paths without it (`/` on a host).
    public var prefix: URL
    public var units = ServiceUnits()
    /// Where the versioned binaries live (the link `units.binary` points at one).
    public var libDir = "/usr/local/lib/hyperhive"
    public var unitDir = "/etc/systemd/system"
    public var sysusersFile = "/usr/lib/sysusers.d/hyperhive.conf"
    /// Where a pre-upgrade backup goes (outside the root: a backup may not be inside what it copies).
    public var backupsDir = "/var/lib/hyperhive-backups"

    public init(prefix: URL) { self.prefix = prefix }

    /// What an install did, for the operator.
    public struct Report: Sendable {
        public var lines: [String] = []
        /// The binary the link pointed at before, when this install changed it.
        public var previousBinary: String?
        public var backup: String?
        public var upgraded: Bool { previousBinary != nil }
    }

    func path(_ p: String) -> URL { prefix.appending(path: String(p.drop { $0 == "/" })) }
    var isHost: Bool { prefix.standardizedFileURL.path == "/" }

    /// Copies `binary` in (named by its content, so versions sit side by side), points the link at it, writes
    /// the units, the account and the directories, and keeps the environment file an operator already has.
    /// When the link already pointed at another binary and the root holds a hive, a backup is taken first:
    /// the point a rollback returns to.
    public func install(binary: URL, backup: Bool = true, now: Date = Date()) throws -> Report {
        var report = Report()
        let data = try Data(contentsOf: binary)
        let digest = SHA256.hash(data: data).prefix(6).map { String(format: "%02x", $0) }.joined()
        let versioned = "\(libDir)/hive-\(digest)"
        try makeDirectory(libDir, mode: 0o755)
        if !FileManager.default.fileExists(atPath: path(versioned).path) {
            try writeAtomically(data, to: versioned, mode: 0o755)
        }
        let link = path(units.binary)
        let before = linkTarget()
        if let before, before != versioned {
            report.previousBinary = before
            if backup, let taken = try backupRoot(now: now) { report.backup = taken }
        }
        if before != versioned {
            try makeDirectory((units.binary as NSString).deletingLastPathComponent, mode: 0o755)
            try pointLink(link, at: versioned)
            try writeAtomically(Data((before ?? "").utf8), to: "\(libDir)/previous", mode: 0o644)
            report.lines.append("binary     \(units.binary) -> \(versioned)\(before.map { " (was \($0))" } ?? "")")
        } else {
            report.lines.append("binary     \(units.binary) -> \(versioned) (unchanged)")
        }
        try pruneBinaries(keeping: [versioned, before].compactMap { $0 })

        try makeDirectory(unitDir, mode: 0o755)
        try writeAtomically(Data(units.core.utf8), to: "\(unitDir)/\(ServiceUnits.coreUnit)", mode: 0o644)
        try writeAtomically(Data(units.web.utf8), to: "\(unitDir)/\(ServiceUnits.webUnit)", mode: 0o644)
        report.lines.append("units      \(unitDir)/\(ServiceUnits.coreUnit), \(ServiceUnits.webUnit)")

        try makeDirectory((sysusersFile as NSString).deletingLastPathComponent, mode: 0o755)
        try writeAtomically(Data(units.sysusers.utf8), to: sysusersFile, mode: 0o644)
        try makeAccount()
        report.lines.append("account    \(ServiceUnits.webAccount) (uid and gid \(WebSurface.uid)), for the dashboard")

        let envDir = (units.environmentFile as NSString).deletingLastPathComponent
        try makeDirectory(envDir, mode: 0o755)
        try makeDirectory(units.uidRegistry, mode: 0o755)
        if FileManager.default.fileExists(atPath: path(units.environmentFile).path) {
            report.lines.append("settings   \(units.environmentFile) (kept as it was)")
        } else {
            try writeAtomically(Data(units.environment.utf8), to: units.environmentFile, mode: 0o600)
            report.lines.append("settings   \(units.environmentFile) (new; 0600, for settings and credentials)")
        }
        try makeDirectory(units.root, mode: 0o755)
        try makeDirectory(units.runDir, mode: 0o755)
        report.lines.append("data       \(units.root), sockets \(units.runDir)")
        return report
    }

    /// The absolute (final) path the binary's link names, if it is a link.
    func linkTarget() -> String? {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path(units.binary).path) else { return nil }
        if target.hasPrefix("/") { return target }
        return URL(filePath: (units.binary as NSString).deletingLastPathComponent).appending(path: target).standardizedFileURL.path
    }

    /// Points the link back at the binary the last install replaced.
    public func rollback() throws -> (from: String, to: String) {
        let link = path(units.binary)
        guard let current = linkTarget() else {
            throw CoreError("\(units.binary) is not a link an install made: nothing to roll back")
        }
        let previous = (try? String(contentsOf: path("\(libDir)/previous"), encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        guard !previous.isEmpty, FileManager.default.isExecutableFile(atPath: path(previous).path) else {
            throw CoreError("no earlier binary is kept in \(libDir): nothing to roll back to")
        }
        try pointLink(link, at: previous)
        try writeAtomically(Data(current.utf8), to: "\(libDir)/previous", mode: 0o644)
        return (current, previous)
    }

    /// Removes the units, the account's entry file and the binaries; the data, settings and backups stay
    /// unless `purge` (then the root and the settings file go too; backups and the uid registry never).
    public func uninstall(purge: Bool) throws -> [String] {
        var lines: [String] = []
        for file in ["\(unitDir)/\(ServiceUnits.coreUnit)", "\(unitDir)/\(ServiceUnits.webUnit)", sysusersFile, units.binary] {
            if unlink(path(file).path) == 0 { lines.append("removed    \(file)") }
        }
        let lib = path(libDir)
        try TreeRemoval.remove(lib.lastPathComponent, in: lib.deletingLastPathComponent())
        lines.append("removed    \(libDir)")
        guard purge else {
            lines.append("kept       \(configuredRoot), \(units.environmentFile) (--purge removes them)")
            return lines
        }
        let rootPath = configuredRoot
        let root = path(rootPath)
        if Self.hiveRunning(root: root) { throw CoreError("a hive core is running on \(rootPath): stop it before --purge") }
        if FileManager.default.fileExists(atPath: root.path) {
            // HIVE_ROOT is the operator's text: remove only a directory that holds a hive.
            guard ["broker.sqlite", "uid-range"].contains(where: { FileManager.default.fileExists(atPath: root.appending(path: $0).path) }) else {
                throw CoreError("\(rootPath) (HIVE_ROOT) holds no hive (no broker.sqlite): not removing it")
            }
            try TreeRemoval.remove(root.lastPathComponent, in: root.deletingLastPathComponent())
        }
        _ = unlink(path(units.environmentFile).path)
        lines.append("removed    \(rootPath), \(units.environmentFile)")
        // The uid registry is every hive's on this host: this hive's claim stays too (its uids may still own
        // files somewhere), so no later hive reuses them.
        lines.append("kept       \(backupsDir) (backups are never removed by an uninstall), \(units.uidRegistry) (every hive's uid claims)")
        return lines
    }

    /// Whether a core holds the root's lock (a running hive, under systemd or not).
    public static func hiveRunning(root: URL) -> Bool {
        let fd = open(root.appending(path: "core.lock").path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK
    }

    /// The root the services run on: `HIVE_ROOT` of the settings file, else the default.
    var configuredRoot: String {
        let text = (try? String(contentsOf: path(units.environmentFile), encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") where line.hasPrefix("HIVE_ROOT=") {
            // systemd takes the value with or without quotes.
            let value = line.dropFirst("HIVE_ROOT=".count).trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
            if value.hasPrefix("/") { return value }
        }
        return units.root
    }

    /// The backup an upgrade takes before anything changes, when the root holds a hive.
    func backupRoot(now: Date) throws -> String? {
        let root = path(configuredRoot)
        guard FileManager.default.fileExists(atPath: root.appending(path: "broker.sqlite").path) else { return nil }
        try makeDirectory(backupsDir, mode: 0o700)
        let stamp = ISO8601DateFormatter.string(from: now, timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withYear, .withMonth, .withDay, .withTime])
        let name = "\(backupsDir)/pre-upgrade-\(stamp)"
        _ = try HiveBackup.take(root: root, to: path(name), now: now)
        return name
    }

    /// Makes the account with systemd-sysusers (into the prefix's /etc when there is one), then checks
    /// that the name has the ids core and the web process use.
    func makeAccount() throws {
        let conf = path(sysusersFile).path
        var args = [conf]
        if !isHost { args = ["--root=\(prefix.path)", conf] }
        let tool = ["/usr/bin/systemd-sysusers", "/bin/systemd-sysusers"].first { FileManager.default.isExecutableFile(atPath: $0) }
        if let tool {
            let r = try ChildProcess.run(tool, args, environment: ["PATH": "/usr/bin:/bin", "LC_ALL": "C"])
            guard r.status == 0 else { throw CoreError("systemd-sysusers failed (\(r.status)): \(String(decoding: r.stderr, as: UTF8.self).prefix(300))") }
        } else {
            // No systemd on the host: the shadow tools, which know the same prefix.
            let id = "\(WebSurface.uid)"
            let p = isHost ? [] : ["--prefix", prefix.path]
            if Self.accountID(ServiceUnits.webAccount, in: path("/etc/group")) == nil {
                _ = try ChildProcess.run("/usr/sbin/groupadd", p + ["--system", "--gid", id, ServiceUnits.webAccount], environment: ["PATH": "/usr/sbin:/usr/bin:/bin"])
            }
            _ = try ChildProcess.run("/usr/sbin/useradd", p + ["--system", "--uid", id, "--gid", id, "--no-create-home", "--shell", "/usr/sbin/nologin",
                                                               ServiceUnits.webAccount], environment: ["PATH": "/usr/sbin:/usr/bin:/bin"])
        }
        guard let gid = Self.accountID(ServiceUnits.webAccount, in: path("/etc/group")) else {
            throw CoreError("the group \(ServiceUnits.webAccount) was not made (see \(sysusersFile))")
        }
        guard gid == WebSurface.uid else {
            throw CoreError("the group \(ServiceUnits.webAccount) has gid \(gid), not \(WebSurface.uid) (another group held that id?): core gives web.sock gid \(WebSurface.uid)")
        }
        // The dashboard drops to the uid by number: it must be this account's, nobody else's.
        guard Self.accountID(ServiceUnits.webAccount, in: path("/etc/passwd")) == WebSurface.uid else {
            throw CoreError("the user \(ServiceUnits.webAccount) does not have uid \(WebSurface.uid) (another user holds that id?): the dashboard runs as uid \(WebSurface.uid)")
        }
    }

    /// The id (third field) of `name` in a group(5) or passwd(5) file.
    static func accountID(_ name: String, in file: URL) -> UInt32? {
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            if f.count >= 3, f[0] == name { return UInt32(f[2]) }
        }
        return nil
    }

    func makeDirectory(_ p: String, mode: mode_t) throws {
        let url = path(p)
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw CoreError("\(url.path) exists and is not a directory") }
            return
        }
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: Int(mode)])
        _ = chmod(url.path, mode) // past the umask
    }

    /// Writes through a temporary file and a rename: a unit or binary is never seen half-written.
    func writeAtomically(_ data: Data, to p: String, mode: mode_t) throws {
        let url = path(p)
        let temp = url.deletingLastPathComponent().appending(path: ".\(url.lastPathComponent).new")
        _ = unlink(temp.path)
        let fd = open(temp.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw CoreError("cannot write \(temp.path): \(String(cString: strerror(errno)))") }
        let ok = data.withUnsafeBytes { buf in
            var done = 0
            while done < buf.count {
                let n = write(fd, buf.baseAddress! + done, buf.count - done)
                if n <= 0 { return false }
                done += n
            }
            return fsync(fd) == 0
        }
        _ = fchmod(fd, mode)
        close(fd)
        guard ok, rename(temp.path, url.path) == 0 else {
            _ = unlink(temp.path)
            throw CoreError("cannot write \(url.path): \(String(cString: strerror(errno)))")
        }
    }

    /// Replaces `link` with one to `target` (an absolute final path) in one rename. The link is relative,
    /// so it names the same file in a prefix as on the host.
    func pointLink(_ link: URL, at target: String) throws {
        let temp = link.deletingLastPathComponent().appending(path: ".\(link.lastPathComponent).new")
        _ = unlink(temp.path)
        let from = (units.binary as NSString).deletingLastPathComponent.split(separator: "/")
        let to = target.split(separator: "/")
        let shared = zip(from, to).prefix { $0 == $1 }.count
        let relative = (Array(repeating: "..", count: from.count - shared) + to.dropFirst(shared).map(String.init)).joined(separator: "/")
        guard symlink(relative, temp.path) == 0, rename(temp.path, link.path) == 0 else {
            throw CoreError("cannot point \(link.path) at \(target): \(String(cString: strerror(errno)))")
        }
    }

    /// Keeps the binary in use and the one before it (the rollback); older ones go.
    func pruneBinaries(keeping: [String]) throws {
        let dir = path(libDir)
        let keep = Set(keeping.map { ($0 as NSString).lastPathComponent })
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [] where name.hasPrefix("hive-") && !keep.contains(name) {
            _ = unlink(dir.appending(path: name).path)
        }
    }
}
