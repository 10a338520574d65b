#!/usr/bin/env python3
"""The ntk program from the outside: command line, scripts, stdin, exit
codes, the session through piped stdin and through a pseudo-terminal
(readline, completion, history, Ctrl-C), and progress bars on a terminal
and not otherwise. Standard library only.

    NTK_PROGRAM=build/bin/ntk python3 tests/app/test_program.py
"""
import os
import pty
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
import unittest

PROGRAM = os.path.abspath(os.environ.get("NTK_PROGRAM", "build/bin/ntk"))
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]")

# A kernel that takes half a minute on one thread, in 210 progress steps.
LONG_KERNEL = ("net = ntk.mlp{sizes = {200, 1000, 1000, 1}, seed = 1}; "
               "X = ntk.randn(1000, 200, 1)")
LONG_CALL = "K = net:ntk(X, {method = 'jacobian', chunk = 50})"


def env(**extra):
    e = dict(os.environ)
    e.pop("NTK_PROGRESS", None)
    e.update({"OPENBLAS_NUM_THREADS": "1", "NTK_HISTORY": ""})
    e.update(extra)
    return e


def run(args, stdin=None, **kw):
    return subprocess.run([PROGRAM] + args, input=stdin, capture_output=True,
                          text=True, timeout=60, env=kw.pop("env", env()), **kw)


class CommandLine(unittest.TestCase):
    def test_e_and_global_ntk(self):
        r = run(["-e", "print(ntk.version, type(ntk.mlp))"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^\d+\.\d+\.\d+\tfunction\n$")

    def test_require_gives_the_same_module(self):
        r = run(["-e", "print(require('ntk') == ntk, require('ntk.core') == ntk.core)"])
        self.assertEqual(r.stdout, "true\ttrue\n", r.stderr)

    def test_script_and_arguments(self):
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write("print(select('#', ...), ...)\nprint(arg[0], arg[1], arg[-1])\n")
        try:
            r = run([f.name, "a", "b c"])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.splitlines(),
                             ["2\ta\tb c", f"{f.name}\ta\t{PROGRAM}"])
        finally:
            os.unlink(f.name)

    def test_stdin_as_script(self):
        r = run(["-"], stdin="print(6 * 7)\n")
        self.assertEqual(r.stdout, "42\n")
        r = run([], stdin="print(ntk.eye(2):trace())\n")  # no tty: stdin runs
        self.assertEqual(r.stdout, "2.0\n")

    def test_version_and_help(self):
        r = run(["--version"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("ntk 0.1.0", r.stdout)
        self.assertIn("Lua 5.4", r.stdout)
        self.assertIn("OpenBLAS", r.stdout)
        r = run(["--help"])
        self.assertEqual(r.returncode, 0)
        for opt in ("-e stat", "-i", "-l mod", "-v, --version", "-h, --help", "NTK_HISTORY"):
            self.assertIn(opt, r.stdout)

    def test_bad_option_is_an_error_with_usage(self):
        r = run(["-x"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("unrecognized option", r.stderr)
        self.assertIn("usage:", r.stderr)
        r = run(["-e"])
        self.assertEqual(r.returncode, 1)

    def test_errors_exit_nonzero_with_traceback(self):
        r = run(["-e", "local function f() error('deep trouble') end f()"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("deep trouble", r.stderr)
        self.assertIn("stack traceback", r.stderr)
        r = run(["/nonexistent/script.lua"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot open /nonexistent/script.lua", r.stderr)
        r = run(["-e", "x = = 1"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("unexpected symbol", r.stderr)

    def test_engine_errors_name_the_argument(self):
        r = run(["-e", "ntk.mlp{sizes = {3, 2}}:forward(ntk.zeros(2, 4))"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("bad argument #1 to 'forward'", r.stderr)

    def test_l_option_and_ntk_init(self):
        r = run(["-l", "string", "-e", "print(string == require 'string')"])
        self.assertEqual(r.stdout, "true\n", r.stderr)
        r = run(["-e", "print(X)"], env=env(NTK_INIT="X = 5"))
        self.assertEqual(r.stdout, "5\n")
        r = run(["-E", "-e", "print(X)"], env=env(NTK_INIT="X = 5"))
        self.assertEqual(r.stdout, "nil\n")

    def test_lua_dir_override_and_missing_layer(self):
        with tempfile.TemporaryDirectory() as d:
            r = run(["-e", "print(1)"], env=env(NTK_LUA_DIR=d))  # no ntk/ there
            self.assertEqual(r.stdout, "1\n", "falls back to the source tree")
            os.makedirs(os.path.join(d, "ntk"))
            with open(os.path.join(d, "ntk", "init.lua"), "w") as f:
                f.write("return {version = 'from NTK_LUA_DIR'}\n")
            r = run(["-e", "print(ntk.version)"], env=env(NTK_LUA_DIR=d))
            self.assertEqual(r.stdout, "from NTK_LUA_DIR\n", r.stderr)

    def test_sigint_stops_a_script_cleanly(self):
        p = subprocess.Popen([PROGRAM, "-e", "io.stdout:write('go\\n'):flush() while true do end"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
        self.assertEqual(p.stdout.readline(), "go\n")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
        self.assertEqual(p.returncode, 1)
        self.assertIn("interrupted", err)

    def test_sigint_stops_engine_work_in_a_script(self):
        code = (LONG_KERNEL + "; io.stdout:write('go\\n'):flush(); local b0 = ntk.bytes_in_use(); "
                "local ok, e = pcall(function() " + LONG_CALL + " end); "
                "print(ok, e, ntk.bytes_in_use() - b0)")
        p = subprocess.Popen([PROGRAM, "-e", code], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env())
        self.assertEqual(p.stdout.readline(), "go\n")
        time.sleep(1.0)
        t0 = time.time()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=25)
        self.assertLess(time.time() - t0, 15, "the kernel was not interrupted")
        self.assertEqual(p.returncode, 0, err)
        ok, msg, leaked = out.strip().split("\t")
        self.assertEqual((ok, leaked), ("false", "0"))
        self.assertTrue(msg.endswith("interrupted during ntk"), msg)


class InstalledProgram(unittest.TestCase):
    """`cmake --install` puts the program in bin/; run from elsewhere, it
    finds the installed Lua layer, not the source tree."""

    def test_installed_tree(self):
        build = os.environ.get("NTK_BUILD_DIR")
        if not build:
            self.skipTest("NTK_BUILD_DIR (the build to install) is not set")
        with tempfile.TemporaryDirectory() as d:
            prefix = os.path.join(d, "prefix")
            r = subprocess.run(["cmake", "--install", build, "--prefix", prefix],
                               capture_output=True, text=True, timeout=300)
            self.assertEqual(r.returncode, 0, r.stderr)
            program = os.path.join(prefix, "bin", "ntk")
            self.assertTrue(os.access(program, os.X_OK), "bin/ntk not installed")
            r = subprocess.run([program, "-e", "print(package.searchpath('ntk', package.path)); "
                                "print(ntk.eye(2):trace())"],
                               capture_output=True, text=True, timeout=60, env=env(), cwd=d)
            self.assertEqual(r.returncode, 0, r.stderr)
            found, trace = r.stdout.splitlines()
            self.assertTrue(os.path.realpath(found).startswith(os.path.realpath(prefix)), found)
            self.assertEqual(trace, "2.0")


class PipedSession(unittest.TestCase):
    def session(self, text):
        return run(["-i"], stdin=text)

    def test_expressions_statements_and_errors(self):
        r = self.session("1 + 1\nx = 10\nx * 2\nerror('boom')\nx + 1\n"
                         "for i = 1, 3 do\nio.write(i, ' ')\nend\n\n"
                         "{a = 1, b = {2, 3}, 'z'}\nntk.eye(2)\n_\nreturn 1, 'two', nil\n")
        self.assertEqual(r.returncode, 0)
        out = r.stdout
        for want in ["2\n", "20\n", "11\n", "1 2 3 ", '{"z", a = 1, b = {2, 3}}\n',
                     "[ntk.Matrix 2x2]\n", "1\ttwo\tnil\n"]:
            self.assertIn(want, out)
        self.assertEqual(out.count("[ntk.Matrix 2x2]"), 2, "_ is the last result")
        self.assertIn("boom", r.stderr)
        self.assertIn("stack traceback", r.stderr)

    def test_incomplete_chunk_at_end_of_input(self):
        r = self.session("function f(\n")
        self.assertIn("<eof>", r.stderr)

    def test_help_lists_the_engine(self):
        r = self.session("help()\nhelp(ntk.plot)\n")
        self.assertIn("Functions of ntk:", r.stdout)
        self.assertIn("mlp", r.stdout)
        self.assertIn("spectrum", r.stdout)


class Pty:
    """The program on a pseudo-terminal, as a user at a keyboard sees it."""

    def __init__(self, args, **extra):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            e = env(TERM="dumb", COLUMNS="80", **extra)
            os.execve(PROGRAM, [PROGRAM] + args, e)
        self.buf = b""

    def read_until(self, pattern, timeout=20):
        deadline = time.time() + timeout
        rx = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        while True:
            clean = ANSI.sub(b"", self.buf)
            m = rx.search(clean)
            if m:
                self.buf = clean[m.end():]
                return clean[:m.end()].decode(errors="replace")
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {pattern!r}; got {clean!r}")
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:
                    data = b""
                if not data:
                    raise AssertionError(f"program ended waiting for {pattern!r}; got {clean!r}")
                self.buf += data

    def send(self, s):
        os.write(self.fd, s.encode())

    def close(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        os.close(self.fd)

    def wait(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            try:  # drain, so the program never blocks on a full terminal
                r, _, _ = select.select([self.fd], [], [], 0.1)
                if r:
                    self.buf += os.read(self.fd, 4096)
            except OSError:
                time.sleep(0.05)
        raise AssertionError("program did not exit")


PROMPT = r"(^|\n|\r)> $"


class TerminalSession(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.history = os.path.join(self.tmp.name, "history")
        self.p = Pty([], NTK_HISTORY=self.history)
        self.p.read_until(r"Ctrl-D quits")
        self.p.read_until(PROMPT)

    def tearDown(self):
        self.p.close()
        self.tmp.cleanup()

    def ask(self, line, expect, timeout=20):
        self.p.send(line + "\r")
        out = self.p.read_until(expect, timeout)
        return out

    def test_expressions_multiline_errors(self):
        self.ask("1 + 1", r"\n2\r?\n")
        self.p.read_until(PROMPT)
        self.ask("ntk.matrix{{1, 2}, {3, 4}}", r"\[ntk\.Matrix 2x2\]")
        self.p.read_until(PROMPT)
        self.ask("for i = 1, 3 do", r">> $")
        self.ask("io.write(i, ';')", r">> $")
        self.ask("end", r"1;2;3;")
        self.p.read_until(PROMPT)
        self.ask("error('boom')", r"boom")
        self.p.read_until(r"stack traceback")
        self.p.read_until(PROMPT)
        self.ask("40 + 2", r"\n42\r?\n")
        self.p.read_until(PROMPT)

    def test_ctrl_c_interrupts_a_lua_loop(self):
        self.p.send("while true do end\r")
        time.sleep(0.5)
        self.p.send("\x03")
        self.p.read_until(r"interrupted")
        self.p.read_until(PROMPT)
        self.ask("6 * 7", r"\n42\r?\n")

    def test_ctrl_c_interrupts_a_kernel_and_frees_it(self):
        self.ask(LONG_KERNEL + "; b0 = ntk.bytes_in_use()", PROMPT)
        self.p.send(LONG_CALL + "\r")
        time.sleep(1.5)
        t0 = time.time()
        self.p.send("\x03")
        self.p.read_until(r"interrupted during ntk", timeout=15)
        self.p.read_until(PROMPT)
        self.assertLess(time.time() - t0, 15)
        self.ask("ntk.bytes_in_use() - b0, K", r"\n0\tnil\r?\n")
        self.p.read_until(PROMPT)
        self.ask("net:ntk(ntk.randn(2, 200, 3)):rows()", r"\n2\r?\n")  # still usable

    def test_ctrl_c_at_the_prompt_drops_the_line(self):
        self.p.send("this is not lua")
        time.sleep(0.2)
        self.p.send("\x03")
        self.p.read_until(r"\^C")
        self.p.read_until(PROMPT)
        self.ask("7 * 6", r"\n42\r?\n")

    def test_ctrl_c_in_a_continuation_drops_the_chunk(self):
        self.ask("function g()", r">> $")
        self.p.send("\x03")
        self.p.read_until(PROMPT)
        self.ask("g", r"\nnil\r?\n")

    def test_tab_completion(self):
        self.p.send("ntk.plo\t")
        self.p.read_until(r"ntk\.plot\.")
        self.p.send("spec\t")
        self.p.read_until(r"spectrum\(")
        self.p.send("\x03")
        self.p.read_until(PROMPT)
        self.ask("E = ntk.eye(3)", PROMPT)
        self.p.send("E:tra\t")
        self.p.read_until(r"E:trace\(")
        self.p.send(")\r")
        self.p.read_until(r"\n3\.0\r?\n")

    def test_history_file_and_ctrl_d(self):
        self.ask("hist_marker = 12345", PROMPT)
        self.p.send("\x04")
        self.assertEqual(self.p.wait(), 0)
        with open(self.history) as f:
            self.assertIn("hist_marker = 12345", f.read())


class Progress(unittest.TestCase):
    # A few seconds of work on one thread, past the bar's half-second delay.
    CODE = ("local net = ntk.mlp{sizes = {100, 300, 300, 1}, seed = 1}; "
            "local K = net:ntk(ntk.randn(200, 100, 1), {method = 'jacobian', chunk = 10}); "
            "print('done', K:rows())")

    def test_bar_on_a_terminal(self):
        p = Pty(["-e", self.CODE])
        try:
            out = p.read_until(r"done\s+200", timeout=60)
            self.assertRegex(out, r"ntk\s+\[[#.]+\]\s+\d+\.\d%")
            self.assertIn("/s", out)
            self.assertIn("left", out)
            self.assertRegex(out, r"100\.0%.*done in")
            self.assertEqual(p.wait(), 0)
        finally:
            p.close()

    def test_silent_when_asked_on_a_terminal(self):
        p = Pty(["-e", self.CODE.replace("chunk = 10", "chunk = 10, progress = false")])
        try:
            out = p.read_until(r"done\s+200", timeout=60)
            self.assertNotIn("%", out)
        finally:
            p.close()

    def test_silent_when_stderr_is_not_a_terminal(self):
        r = run(["-e", self.CODE])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        self.assertIn("done\t200", r.stdout)

    def test_forced_for_logs(self):
        r = run(["-e", self.CODE.replace("200, 100, 1", "40, 100, 1")], env=env(NTK_PROGRESS="always"))
        self.assertRegex(r.stderr, r"100\.0%.*done in")


if __name__ == "__main__":
    unittest.main(verbosity=2)
