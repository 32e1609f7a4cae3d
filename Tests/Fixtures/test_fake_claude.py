#!/usr/bin/env python3
"""Self-test for Tests/Fixtures/fake-claude. Run: python3 Tests/Fixtures/test_fake_claude.py"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "fake-claude")
BASE_ARGS = ["--print", "--verbose", "--output-format", "stream-json", "--model", "claude-test-1"]

ECHO_SERVER = r'''
import json, os, sys
def send(o):
    sys.stdout.write(json.dumps(o) + "\n"); sys.stdout.flush()
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    m = json.loads(line)
    meth, mid = m.get("method"), m.get("id")
    if meth == "initialize":
        # Noise first: a log notification and a response to a different id.
        send({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "hello"}})
        send({"jsonrpc": "2.0", "id": 9999, "result": {}})
        print("not json at all", flush=True)
        send({"jsonrpc": "2.0", "id": mid, "result": {"protocolVersion": m["params"]["protocolVersion"],
              "capabilities": {"tools": {}}, "serverInfo": {"name": "echo", "version": "1"}}})
    elif meth == "notifications/initialized":
        with open(os.environ["ECHO_MARK"], "a") as f:
            f.write("initialized\n")
    elif meth == "tools/list":
        send({"jsonrpc": "2.0", "id": mid, "result": {"tools": [
            {"name": "echo", "inputSchema": {"type": "object"}},
            {"name": "fail", "inputSchema": {"type": "object"}},
            {"name": "boom", "inputSchema": {"type": "object"}}]}})
    elif meth == "tools/call":
        name, args = m["params"]["name"], m["params"].get("arguments", {})
        if name == "boom":
            send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32602, "message": "boom went the tool"}})
        elif name == "fail":
            send({"jsonrpc": "2.0", "id": mid, "result": {"content": [{"type": "text", "text": "it failed"}], "isError": True}})
        else:
            send({"jsonrpc": "2.0", "id": mid, "result": {"content": [
                {"type": "text", "text": "echo:" + json.dumps(args, sort_keys=True)},
                {"type": "text", "text": "|tag=" + os.environ.get("ECHO_TAG", "?") + "|arg=" + sys.argv[1]}]}})
'''

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Env:
    """A temp world: cwd (agent state dir), FAKE_CLAUDE_HOME, script file, log."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="fake-claude-test-")
        self.cwd = os.path.join(self.root, "agent")
        self.home = os.path.join(self.root, "home")
        self.log = os.path.join(self.root, "log.jsonl")
        self.script = os.path.join(self.root, "script.json")
        os.makedirs(self.cwd)

    def write_script(self, obj):
        with open(self.script, "w") as f:
            json.dump(obj, f)

    def env(self, script=True, **extra):
        e = {k: v for k, v in os.environ.items() if k not in ("CLAUDECODE", "FAKE_CLAUDE_SCRIPT")}
        e["FAKE_CLAUDE_HOME"] = self.home
        e["FAKE_CLAUDE_LOG"] = self.log
        if script and os.path.exists(self.script):
            e["FAKE_CLAUDE_SCRIPT"] = self.script
        e.update(extra)
        return e

    def run(self, args=(), prompt="wake up", script=True, env_extra=None, base=True, timeout=60):
        argv = [FAKE] + (BASE_ARGS if base else []) + list(args)
        p = subprocess.run(argv, input=prompt.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           cwd=self.cwd, env=self.env(script, **(env_extra or {})), timeout=timeout)
        return Result(p)

    def logs(self):
        with open(self.log) as f:
            return [json.loads(l) for l in f if l.strip()]

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


class Result:
    def __init__(self, p):
        self.rc = p.returncode
        self.stdout = p.stdout.decode("utf-8")
        self.stderr = p.stderr.decode("utf-8")
        self.raw = [l for l in self.stdout.split("\n") if l]
        self.events = []
        self.non_json = []
        for l in self.raw:
            try:
                self.events.append(json.loads(l))
            except ValueError:
                self.non_json.append(l)

    @property
    def init(self):
        return self.events[0]

    @property
    def result(self):
        return self.events[-1]

    def of(self, typ, subtype=None):
        return [e for e in self.events if e.get("type") == typ and (subtype is None or e.get("subtype") == subtype)]


def check_init(r):
    assert r.init["type"] == "system" and r.init["subtype"] == "init", r.init
    assert r.init["session_id"], r.init
    assert r.init["claude_code_version"] == "2.1.240-fake"
    assert r.init["permissionMode"] == "default" and r.init["apiKeySource"] == "none"


def check_ok(r, text=None):
    assert r.rc == 0, (r.rc, r.stderr)
    check_init(r)
    res = r.result
    assert res["type"] == "result" and res["subtype"] == "success" and res["is_error"] is False, res
    assert res["session_id"] == r.init["session_id"]
    for k in ("duration_ms", "duration_api_ms", "num_turns", "total_cost_usd", "usage", "modelUsage"):
        assert k in res, k
    if text is not None:
        assert res["result"] == text, res["result"]
    assert all(e.get("session_id") == r.init["session_id"] for e in r.events)


def mcp_config(env, name="hive", command=None, args=None, extra_env=None):
    server_path = os.path.join(env.root, "echo_server.py")
    with open(server_path, "w") as f:
        f.write(ECHO_SERVER)
    cfg = {"mcpServers": {name: {
        "type": "stdio",
        "command": command or sys.executable,
        "args": args if args is not None else [server_path, "${ECHO_ARG:-defaultarg}"],
        "env": extra_env if extra_env is not None else {"ECHO_TAG": "${ECHO_TAG_SRC}", "ECHO_MARK": os.path.join(env.root, "mark")},
    }}}
    path = os.path.join(env.root, "mcp.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


# --------------------------------------------------------------------------- tests

@test
def plain_ok_without_script():
    e = Env()
    r = e.run()
    check_ok(r, "ok")
    assert r.init["model"] == "claude-test-1"
    assert r.init["cwd"] == os.path.realpath(e.cwd)
    a = r.of("assistant")
    assert len(a) == 2, a
    assert a[0]["message"]["id"] == a[1]["message"]["id"] and a[0]["message"]["id"].startswith("msg_")
    assert a[0]["message"]["usage"]["cache_read_input_tokens"] == 1000 == a[1]["message"]["usage"]["cache_read_input_tokens"]
    rl = r.of("rate_limit_event")
    assert len(rl) == 1 and rl[0]["rate_limit_info"]["status"] == "allowed"
    u = r.result["usage"]
    assert (u["input_tokens"], u["cache_creation_input_tokens"], u["cache_read_input_tokens"], u["output_tokens"]) == (10, 100, 1000, 20)
    assert r.result["modelUsage"]["claude-test-1"]["contextWindow"] == 200000
    assert r.result["total_cost_usd"] == 0.01
    assert r.stderr == ""
    assert os.listdir(e.cwd) == [], "cwd must stay clean"
    e.cleanup()


@test
def default_model_and_unknown_flags():
    e = Env()
    r = e.run(["--print", "--verbose", "--output-format=stream-json", "--strict-mcp-config", "--permission-mode",
               "bypassPermissions", "--allowedTools", "Read,mcp__hive", "--some-new-flag", "--max-turns", "5",
               "--append-system-prompt", "be nice", "--dangerously-skip-permissions"], base=False)
    check_ok(r)
    assert r.init["model"] == "claude-sonnet-4-5", r.init["model"]
    e.cleanup()


@test
def refuses_stream_json_without_verbose():
    e = Env()
    r = e.run(["--print", "--output-format", "stream-json", "--model", "x"], base=False)
    assert r.rc == 1
    assert "Error: When using --print, --output-format=stream-json requires --verbose" in r.stderr, r.stderr
    assert r.stdout == ""
    e.cleanup()


@test
def refuses_inside_claudecode():
    e = Env()
    r = e.run(env_extra={"CLAUDECODE": "1"})
    assert r.rc == 1
    assert r.stderr.startswith("Error: Claude Code cannot be launched inside another Claude Code session."), r.stderr
    assert r.stdout == ""
    e.cleanup()


@test
def sessions_new_continue_resume():
    e = Env()
    r1 = e.run()
    s1 = r1.init["session_id"]
    r2 = e.run(["--continue"])
    assert r2.init["session_id"] == s1 and r2.result["session_id"] == s1
    r3 = e.run(["--resume", s1])
    assert r3.init["session_id"] == s1
    r4 = e.run()
    s4 = r4.init["session_id"]
    assert s4 != s1
    r5 = e.run(["--continue"])
    assert r5.init["session_id"] == s4
    logs = e.logs()
    assert [l["continued"] for l in logs] == [False, True, True, False, True], logs
    # state lives in FAKE_CLAUDE_HOME, keyed by sha1(cwd)
    files = os.listdir(e.home)
    assert len(files) == 1 and files[0].endswith(".json") and len(files[0]) == 45, files
    # --continue in a fresh cwd starts a new session
    e2 = Env()
    r6 = e2.run(["--continue"])
    check_ok(r6)
    assert r6.init["session_id"] not in (s1, s4)
    e.cleanup(), e2.cleanup()


@test
def strict_resume_mismatch():
    e = Env()
    e.run()
    r = e.run(["--resume", "00000000-0000-0000-0000-000000000000"], env_extra={"FAKE_CLAUDE_STRICT_RESUME": "1"})
    assert r.rc == 1 and "No conversation found with session ID" in r.stderr, (r.rc, r.stderr)
    e.cleanup()


@test
def log_records_invocation():
    e = Env()
    e.run(["--continue"], prompt="hello from alice",
          env_extra={"HIVE_AGENT": "bob", "HIVE_SOCKET": "/tmp/x.sock", "OTHER": "no"})
    l = e.logs()[-1]
    assert l["prompt"] == "hello from alice"
    assert l["argv"][:2] == ["--print", "--verbose"] and "--continue" in l["argv"]
    assert l["cwd"] == os.path.realpath(e.cwd)
    assert l["env_hive"] == {"HIVE_AGENT": "bob", "HIVE_SOCKET": "/tmp/x.sock"}, l["env_hive"]
    assert l["session_id"] and l["continued"] is False and l["step"] is None
    e.cleanup()


@test
def script_counter_advances_then_default():
    e = Env()
    e.write_script({"steps": [{"text": "first"}, {"kind": "ok", "text": "second", "usage": {"input_tokens": 7}}],
                    "default": {"text": "fallback"}})
    assert e.run().result["result"] == "first"
    r = e.run()
    assert r.result["result"] == "second" and r.result["usage"]["input_tokens"] == 7
    assert e.run().result["result"] == "fallback"
    assert e.run().result["result"] == "fallback"
    with open(e.script + ".counter") as f:
        assert f.read().strip() == "4"
    assert [l["step"] for l in e.logs()] == [0, 1, None, None]
    e.cleanup()


@test
def no_default_gives_plain_ok():
    e = Env()
    e.write_script({"steps": []})
    check_ok(e.run(), "done")
    e.cleanup()


@test
def counter_is_safe_under_concurrency():
    e = Env()
    e.write_script({"steps": [{"text": "s%d" % i} for i in range(12)]})
    out = []

    def go():
        out.append(e.run().result["result"])
    ts = [threading.Thread(target=go) for _ in range(12)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert sorted(out) == sorted("s%d" % i for i in range(12)), out
    assert sorted(l["step"] for l in e.logs()) == list(range(12))
    e.cleanup()


@test
def by_prompt_routing_not_consumed():
    e = Env()
    e.write_script({"steps": [{"text": "step0"}, {"text": "step1"}],
                    "by_prompt": [{"contains": "from carol", "step": {"text": "routed"}},
                                  {"contains": "/compact", "step": {"kind": "error_result", "text": "no compaction today"}}]})
    assert e.run(prompt="msg from carol").result["result"] == "routed"
    assert e.run(prompt="msg from dave").result["result"] == "step0"
    assert e.run(prompt="again from carol").result["result"] == "routed"
    assert e.run(prompt="msg from dave").result["result"] == "step1"
    r = e.run(prompt="/compact")
    assert r.result["is_error"] is True and r.result["result"] == "no compaction today"
    assert [l["step_source"] for l in e.logs()] == ["by_prompt", "steps", "by_prompt", "steps", "by_prompt"]
    e.cleanup()


@test
def compact_prompt_gives_compact_boundary():
    e = Env()
    e.write_script({"steps": [{"text": "a", "usage": {"input_tokens": 5, "cache_creation_input_tokens": 500,
                                                        "cache_read_input_tokens": 40000}}]})
    s = e.run().init["session_id"]
    r = e.run(["--continue"], prompt="  /compact keep the task list\n")
    assert r.rc == 0
    assert r.events[0]["type"] == "system" and r.events[0]["subtype"] == "status" and r.events[0]["status"] == "compacting"
    inits = r.of("system", "init")
    assert len(inits) == 1 and inits[0]["session_id"] == s
    cb = r.of("system", "compact_boundary")
    assert len(cb) == 1
    md = cb[0]["compact_metadata"]
    assert md["trigger"] == "manual" and md["pre_tokens"] == 40505 and md["post_tokens"] < md["pre_tokens"], md
    res = r.result
    assert res["type"] == "result" and res["is_error"] is False and res["num_turns"] == 0 and res["result"] == ""
    assert res["session_id"] == s
    # compact did not consume a step
    with open(e.script + ".counter") as f:
        assert f.read().strip() == "1"
    # without a script too
    e2 = Env()
    r2 = e2.run(prompt="/compact")
    assert r2.rc == 0 and r2.of("system", "compact_boundary") and r2.result["result"] == ""
    e.cleanup(), e2.cleanup()


@test
def compact_step_kind():
    e = Env()
    e.write_script({"steps": [{"kind": "compact", "pre_tokens": 150000, "post_tokens": 9000, "trigger": "auto"}]})
    r = e.run()
    md = r.of("system", "compact_boundary")[0]["compact_metadata"]
    assert md == {"trigger": "auto", "pre_tokens": 150000, "post_tokens": 9000}, md
    e.cleanup()


@test
def tools_call_real_mcp_server():
    e = Env()
    cfg = mcp_config(e)
    e.write_script({"steps": [{"kind": "tools", "text": "sent it", "calls": [
        {"tool": "echo", "arguments": {"to": "alice", "body": "hi"}},
        {"server": "hive", "tool": "fail", "arguments": {}},
        {"tool": "boom"},
        {"server": "nope", "tool": "x"},
    ]}]})
    r = e.run(["--mcp-config", cfg, "--strict-mcp-config"], env_extra={"ECHO_TAG_SRC": "tagged"})
    check_ok(r, "sent it")
    assert r.init["mcp_servers"] == [{"name": "hive", "status": "connected"}], r.init["mcp_servers"]
    assert "mcp__hive__echo" in r.init["tools"], r.init["tools"]
    uses = [b for a in r.of("assistant") for b in a["message"]["content"] if b["type"] == "tool_use"]
    assert [u["name"] for u in uses] == ["mcp__hive__echo", "mcp__hive__fail", "mcp__hive__boom", "mcp__nope__x"]
    assert all(u["id"].startswith("toolu_") for u in uses) and len({u["id"] for u in uses}) == 4
    assert uses[0]["input"] == {"to": "alice", "body": "hi"}
    results = [e_["message"]["content"][0] for e_ in r.of("user")]
    assert [x["tool_use_id"] for x in results] == [u["id"] for u in uses]
    assert results[0]["content"] == 'echo:{"body": "hi", "to": "alice"}|tag=tagged|arg=defaultarg', results[0]
    assert results[0]["is_error"] is False
    assert results[1]["content"] == "it failed" and results[1]["is_error"] is True
    assert results[2]["is_error"] is True and "boom went the tool" in results[2]["content"], results[2]
    assert results[3]["is_error"] is True
    assert r.result["num_turns"] == 5
    # every assistant message deduped by id sums to the result usage
    ids = {a["message"]["id"] for a in r.of("assistant")}
    assert r.result["usage"]["input_tokens"] == 10 * len(ids) == 50
    with open(os.path.join(e.root, "mark")) as f:
        assert f.read() == "initialized\n"
    e.cleanup()


@test
def tools_env_expansion_and_unset_literal():
    e = Env()
    cfg = mcp_config(e, extra_env={"ECHO_TAG": "${DEFINITELY_UNSET_VAR_XYZ}", "ECHO_MARK": os.path.join(e.root, "mark")})
    e.write_script({"steps": [{"kind": "tools", "calls": [{"tool": "echo", "arguments": {"n": 1}}]}]})
    r = e.run(["--mcp-config", cfg], env_extra={"ECHO_ARG": "fromenv"})
    check_ok(r)
    content = r.of("user")[0]["message"]["content"][0]["content"]
    assert content.endswith("|tag=${DEFINITELY_UNSET_VAR_XYZ}|arg=fromenv"), content
    e.cleanup()


@test
def tools_inline_mcp_config():
    e = Env()
    cfg_path = mcp_config(e)
    with open(cfg_path) as f:
        inline = f.read()
    e.write_script({"steps": [{"kind": "tools", "calls": [{"tool": "echo", "arguments": {"k": "v"}}]}]})
    r = e.run(["--mcp-config", inline])
    check_ok(r)
    assert r.of("user")[0]["message"]["content"][0]["content"].startswith('echo:{"k": "v"}')
    e.cleanup()


@test
def tools_transport_failure():
    e = Env()
    cfg = mcp_config(e, command="/nonexistent/mcp-server-binary", args=[])
    e.write_script({"steps": [{"kind": "tools", "calls": [{"tool": "send", "arguments": {}}]}]})
    r = e.run(["--mcp-config", cfg])
    assert r.rc == 1, r.rc
    check_init(r)
    assert r.init["mcp_servers"] == [{"name": "hive", "status": "failed"}]
    assert r.result["type"] == "result" and r.result["is_error"] is True
    assert "failed to start" in r.result["result"], r.result
    e.cleanup()


@test
def tools_server_dies():
    e = Env()
    cfg = mcp_config(e, command=sys.executable, args=["-c", "import sys; sys.stdin.readline()"])
    e.write_script({"steps": [{"kind": "tools", "calls": [{"tool": "send"}]}]})
    r = e.run(["--mcp-config", cfg])
    assert r.rc == 1 and r.result["is_error"] is True and "closed" in r.result["result"], r.result
    e.cleanup()


@test
def tools_timeout():
    e = Env()
    cfg = mcp_config(e, command=sys.executable, args=["-c", "import time; time.sleep(60)"])
    e.write_script({"steps": [{"kind": "tools", "calls": [{"tool": "send"}]}]})
    t = time.time()
    r = e.run(["--mcp-config", cfg], env_extra={"FAKE_CLAUDE_MCP_TIMEOUT": "1"})
    assert time.time() - t < 15
    assert r.rc == 1 and r.result["is_error"] is True and "timed out" in r.result["result"], r.result
    e.cleanup()


@test
def rate_limited():
    e = Env()
    e.write_script({"steps": [{"kind": "rate_limited", "resets_in": 600}, {"kind": "rate_limited", "resets_at": 1767225600}]})
    now = int(time.time())
    r = e.run()
    assert r.rc == 1
    check_init(r)
    rl = r.of("rate_limit_event")
    assert len(rl) == 1
    info = rl[0]["rate_limit_info"]
    assert info["status"] == "rejected" and info["rateLimitType"] == "five_hour" and info["utilization"] == 1
    assert now + 590 <= info["resetsAt"] <= now + 620, info
    res = r.result
    assert res["type"] == "result" and res["subtype"] == "success" and res["is_error"] is True
    assert res["terminal_reason"] == "api_error" and res["api_error_status"] == 429
    assert res["result"] == "You've hit your session limit · resets 3pm (Europe/Berlin)"
    r2 = e.run()
    assert r2.of("rate_limit_event")[0]["rate_limit_info"]["resetsAt"] == 1767225600
    e.cleanup()


@test
def error_results():
    e = Env()
    e.write_script({"steps": [
        {"kind": "error_result", "text": "Claude AI usage limit reached|1750708800", "status": 429},
        {"kind": "error_result", "text": "API Error: 529 Overloaded. This is a server-side issue, usually temporary — try again in a moment.", "status": 529},
        {"kind": "error_result", "text": "Not logged in · Please run /login", "exit": 0},
        {"kind": "error_result", "text": "Reached maximum number of turns (60)", "subtype": "error_max_turns"},
        {"kind": "prompt_too_long"},
    ]})
    r = e.run()
    assert r.rc == 1 and r.result["is_error"] is True and r.result["api_error_status"] == 429
    assert r.result["result"] == "Claude AI usage limit reached|1750708800" and r.result["terminal_reason"] == "api_error"
    r = e.run()
    assert r.rc == 1 and r.result["api_error_status"] == 529 and r.result["result"].startswith("API Error: 529 Overloaded")
    r = e.run()
    assert r.rc == 0 and r.result["is_error"] is True and r.result["api_error_status"] is None
    r = e.run()
    assert r.rc == 1 and r.result["subtype"] == "error_max_turns" and r.result["errors"] == ["Reached maximum number of turns (60)"]
    r = e.run()
    check_init(r)
    assert r.rc == 1 and r.result["is_error"] is True and r.result["result"] == "Prompt is too long"
    e.cleanup()


@test
def slow_dies_on_sigterm_to_group():
    e = Env()
    e.write_script({"steps": [{"kind": "slow", "seconds": 30}]})
    p = subprocess.Popen([FAKE] + BASE_ARGS, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=e.cwd, env=e.env(), start_new_session=True)
    p.stdin.write(b"wake")
    p.stdin.close()
    first = json.loads(p.stdout.readline())
    assert first["subtype"] == "init"
    t = time.time()
    os.killpg(p.pid, signal.SIGTERM)
    rc = p.wait(timeout=5)
    assert time.time() - t < 3
    assert rc == -signal.SIGTERM, rc
    p.stdout.close(), p.stderr.close()
    e.cleanup()


@test
def slow_completes():
    e = Env()
    e.write_script({"steps": [{"kind": "slow", "seconds": 0.3, "text": "late"}]})
    t = time.time()
    r = e.run()
    assert time.time() - t >= 0.3
    check_ok(r, "late")
    e.cleanup()


@test
def crash_mid_turn():
    e = Env()
    e.write_script({"steps": [{"kind": "crash", "exit": 3}, {"kind": "crash", "signal": "KILL"}, {"kind": "crash"}]})
    r = e.run()
    assert r.rc == 3
    check_init(r)
    assert [x["type"] for x in r.events] == ["system", "assistant"]
    r = e.run()
    assert r.rc == -signal.SIGKILL, r.rc
    assert [x["type"] for x in r.events] == ["system", "assistant"]
    r = e.run()
    assert r.rc == 1 and not r.of("result")
    assert len(e.logs()) == 3
    e.cleanup()


@test
def garbage_lines():
    e = Env()
    e.write_script({"steps": [{"kind": "garbage", "bytes": 2000000}]})
    r = e.run()
    check_ok(r)
    assert any(l.startswith("Warning: no stdin data received") for l in r.non_json), r.non_json
    assert max(len(l) for l in r.raw) > 2000000
    big = [a for a in r.of("assistant") if a["message"]["content"][0].get("text", "").startswith("xxx")]
    assert len(big) == 1 and len(big[0]["message"]["content"][0]["text"]) == 2000000
    e.cleanup()


@test
def unknown_events():
    e = Env()
    e.write_script({"steps": [{"kind": "unknown_events"}]})
    r = e.run()
    check_ok(r)
    assert r.of("future_thing") and r.of("future_thing")[0]["x"] == 1
    assert [x for x in r.of("system") if x["subtype"] not in ("init",)]
    e.cleanup()


@test
def stderr_sleep_cost_and_context_window():
    e = Env()
    e.write_script({"steps": [{"text": "hi", "stderr": "some diagnostic", "sleep_before_result": 0.2,
                               "cost": 0.25, "context_window": 1000000, "thinking": False,
                               "rate_limit_info": {"status": "allowed_warning", "utilization": 0.9}}]})
    r = e.run()
    check_ok(r, "hi")
    assert "some diagnostic" in r.stderr
    assert r.result["total_cost_usd"] == 0.25
    assert r.result["modelUsage"]["claude-test-1"]["contextWindow"] == 1000000
    assert r.result["duration_ms"] >= 200
    assert len(r.of("assistant")) == 1
    assert r.of("rate_limit_event")[0]["rate_limit_info"]["status"] == "allowed_warning"
    e.cleanup()


@test
def bad_script_path_fails_loudly():
    e = Env()
    r = e.run(env_extra={"FAKE_CLAUDE_SCRIPT": os.path.join(e.root, "missing.json")})
    assert r.rc == 2 and "FAKE_CLAUDE_SCRIPT" in r.stderr
    e.cleanup()


def main():
    passed = failed = 0
    only = sys.argv[1:]
    for fn in TESTS:
        if only and fn.__name__ not in only:
            continue
        t = time.time()
        try:
            fn()
            passed += 1
            print("ok   %s (%.2fs)" % (fn.__name__, time.time() - t))
        except Exception:
            failed += 1
            print("FAIL %s" % fn.__name__)
            traceback.print_exc()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
