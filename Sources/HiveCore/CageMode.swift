import Foundation
import HiveWire

public enum CageMode: String, Sendable, CaseIterable {
    /// Core starts no process; external processes connect to the agents' sockets.
    case none
    /// One `hive agent` child process per agent, supervised, without isolation.
    case process
    /// Each harness in a bubblewrap sandbox (namespaces, an unprivileged uid, only its own directories).
    case bwrap
}

/// How core runs the agents' processes.
/// What `hive up` runs agents in: bubblewrap where it is installed; otherwise the process cage, which
/// as root means agents ARE root, so only when the operator says `--unsandboxed` (and is warned).
public enum UpSandbox {
    public static func choose(bwrapAvailable: Bool, asRoot: Bool, unsandboxed: Bool) throws(RequestError) -> (cage: CageMode, warning: String?) {
        if bwrapAvailable {
            return (.bwrap, asRoot ? nil : """
                hive: note: run by an ordinary user, every agent runs as this user: cages keep agents to their own
                hive: directories, but they share one uid, so limits and file ownership cannot tell them apart. Run as root for a uid per agent.
                """)
        }
        guard unsandboxed || !asRoot else {
            throw RequestError("""
                bubblewrap is not installed, and without it agents would run as root with the whole machine in reach. \
                Install it (apt-get install bubblewrap), or say --unsandboxed if you mean it
                """)
        }
        return (.process, """
            hive: WARNING: bubblewrap is not installed, so agents run WITHOUT a sandbox (--cage process):
            hive: they can read and write whatever this user can\(asRoot ? " (root: everything)" : ""). Install it (apt-get install bubblewrap) and restart.
            """)
    }
}
