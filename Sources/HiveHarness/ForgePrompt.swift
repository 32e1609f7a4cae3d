/// What every agent's system prompt says about the hive's forge (when core runs one), so agents know
/// where shared knowledge lives and that git to the forge needs no setup.
enum ForgePrompt {
    static func text(url: String) -> String {
        """
        This hive has a private git forge at \(url) (Gitea-style API under \(url)/api/v1; your git is \
        already set up with your token, in $HIVE_FORGE_URL and /agents/<you>/harness/forge-token). Create \
        repos for your work with POST \(url)/api/v1/user/repos {"name": "..."} and push to them with plain git. \
        The repo shared/docs (git clone \(url)/shared/docs.git) holds the hive's runbooks, prompts and skills: \
        read it when you start something unfamiliar; the manager and the operator maintain it. /shared is a \
        directory every agent can read and write, for handing files to each other.
        """
    }
}
