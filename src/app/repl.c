/*
 * The interactive session: read a chunk (several lines while it is
 * incomplete), run it, show its results through ntk.repl.show, keep going
 * after errors. On a terminal, readline gives line editing, a history file
 * and tab completion (names come from ntk.repl.complete); Ctrl-C at the
 * prompt drops the line, during a computation it interrupts it (main.c).
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#include "app.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include "ntk.h"

#ifdef NTK_HAVE_READLINE
#include <readline/history.h>
#include <readline/readline.h>
#endif

#define PROMPT1 "> "
#define PROMPT2 ">> "
#define HISTORY_SIZE 1000

enum { LINE_OK, LINE_EOF, LINE_CANCEL };

/* ntk.repl, the Lua half of the session, in the registry (or LUA_NOREF). */
static int helpers_ref = LUA_NOREF;
static lua_State *session_L;
static int use_readline;

static void load_helpers(lua_State *L)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "ntk.repl");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "%s: ntk.repl unavailable (%s); results print plainly\n", APP_NAME,
                msg ? msg : "not a table");
        lua_pop(L, 1);
        return;
    }
    /* help() in the session, unless the user's init defined one. */
    int top = lua_gettop(L);
    if (lua_getfield(L, top, "help") == LUA_TFUNCTION && lua_getglobal(L, "help") == LUA_TNIL) {
        lua_pushvalue(L, top + 1);
        lua_setglobal(L, "help");
    }
    lua_settop(L, top);
    helpers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Push ntk.repl[name] and return 1 if it is a function; else push nothing. */
static int push_helper(lua_State *L, const char *name)
{
    if (helpers_ref == LUA_NOREF) return 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, helpers_ref);
    if (lua_getfield(L, -1, name) == LUA_TFUNCTION) {
        lua_remove(L, -2);
        return 1;
    }
    lua_pop(L, 2);
    return 0;
}

static const char *prompt_of(lua_State *L, int first)
{
    lua_getglobal(L, first ? "_PROMPT" : "_PROMPT2");
    const char *p = lua_tostring(L, -1);
    lua_pop(L, 1); /* the global keeps the string alive */
    return p ? p : first ? PROMPT1 : PROMPT2;
}

/* ---- reading lines ----------------------------------------------------- */

static char *read_plain(const char *prompt, int *result)
{
    fputs(prompt, stdout);
    fflush(stdout);
    size_t cap = 256, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        *result = LINE_EOF;
        return NULL;
    }
    int c;
    while ((c = getchar()) != EOF && c != '\n') {
        if (len + 1 >= cap) {
            char *grown = realloc(buf, cap * 2);
            if (!grown) break;
            buf = grown;
            cap *= 2;
        }
        buf[len++] = (char)c;
    }
    if (c == EOF && len == 0) {
        free(buf);
        *result = LINE_EOF;
        return NULL;
    }
    buf[len] = '\0';
    *result = LINE_OK;
    return buf;
}

#ifdef NTK_HAVE_READLINE
static char history_file[PATH_MAX];
static volatile sig_atomic_t prompt_sigint;
static char *rl_line;
static int rl_got;

static void on_prompt_sigint(int sig)
{
    (void)sig;
    prompt_sigint = 1;
}

static void on_line(char *line)
{
    rl_line = line;
    rl_got = 1;
    rl_callback_handler_remove();
}

/*
 * readline's callback interface, so a Ctrl-C at the prompt is a plain
 * flag we see when select() is interrupted, not a jump out of readline.
 */
static char *read_readline(const char *prompt, int *result)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_prompt_sigint;
    sigemptyset(&sa.sa_mask);
    prompt_sigint = 0;
    /* SIGINT stays blocked except inside pselect, so a Ctrl-C that lands
     * while readline works on a key is seen at the next wait, not lost. */
    sigset_t block, waitmask;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &waitmask);
    sigdelset(&waitmask, SIGINT);
    sigaction(SIGINT, &sa, &old);
    rl_got = 0;
    rl_line = NULL;
    rl_callback_handler_install(prompt, on_line);
    int fd = fileno(rl_instream);
    *result = LINE_OK;
    while (!rl_got) {
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(fd, &fds);
        int r = pselect(fd + 1, &fds, NULL, NULL, NULL, &waitmask);
        if (r < 0 && errno == EINTR) {
            if (!prompt_sigint) continue;
            /* Drop the line being edited and start afresh. */
            rl_free_line_state();
            rl_callback_sigcleanup();
            rl_callback_handler_remove();
            fputs("^C\n", stdout);
            fflush(stdout);
            *result = LINE_CANCEL;
            break;
        }
        if (r < 0) {
            rl_callback_handler_remove();
            *result = LINE_EOF;
            break;
        }
        rl_callback_read_char();
    }
    /* A Ctrl-C still pending lands in our handler, not the old one. */
    sigprocmask(SIG_UNBLOCK, &block, NULL);
    sigaction(SIGINT, &old, NULL);
    if (*result == LINE_OK && !rl_line) {
        fputc('\n', stdout); /* Ctrl-D: end the prompt's line */
        *result = LINE_EOF;
    }
    return *result == LINE_OK ? rl_line : NULL;
}

static void save_history(const char *chunk)
{
    if (!chunk[0]) return;
    add_history(chunk);
    if (history_file[0]) append_history(1, history_file);
}

/* ---- completion -------------------------------------------------------- */

static char **matches;
static size_t match_count, match_next;

static void free_matches(void)
{
    for (size_t i = 0; i < match_count; i++) free(matches[i]);
    free(matches);
    matches = NULL;
    match_count = match_next = 0;
}

static char *next_match(const char *text, int state)
{
    (void)text;
    if (state == 0) match_next = 0;
    if (match_next < match_count) {
        char *m = matches[match_next];
        matches[match_next++] = NULL; /* readline owns it now */
        return m;
    }
    return NULL;
}

/* Candidates from ntk.repl.complete(before, word): `before` is the line up
 * to the word, so the Lua side can resolve `ntk.plot.` or `K:`. */
static char **attempt_completion(const char *text, int start, int end)
{
    (void)end;
    if (rl_completion_quote_character) return NULL; /* in a string: file names */
    rl_attempted_completion_over = 1;
    free_matches();
    lua_State *L = session_L;
    int top = lua_gettop(L);
    if (!push_helper(L, "complete")) return NULL;
    lua_pushlstring(L, rl_line_buffer, (size_t)start);
    lua_pushstring(L, text);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
        lua_settop(L, top);
        return NULL;
    }
    size_t n = (size_t)luaL_len(L, -1);
    matches = n ? calloc(n, sizeof *matches) : NULL;
    for (size_t i = 0; matches && i < n; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        const char *s = lua_tostring(L, -1);
        if (s && (matches[match_count] = strdup(s))) match_count++;
        lua_pop(L, 1);
    }
    lua_settop(L, top);
    rl_completion_append_character = '\0';
    char **out = match_count ? rl_completion_matches(text, next_match) : NULL;
    free_matches();
    return out;
}

static void init_readline(void)
{
    rl_readline_name = "ntk";
    rl_catch_signals = 0;
    rl_attempted_completion_function = attempt_completion;
    /* '.' and ':' break words, so `ntk.plot.sp<Tab>` completes `sp` and
     * lists short names; the Lua side reads what precedes. */
    rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{}()[],+-*/%^~#.:";
    rl_completer_quote_characters = "\"'";
    using_history();
    stifle_history(HISTORY_SIZE);
    history_write_timestamps = 1; /* keeps multi-line chunks one entry */
    history_multiline_entries = 1;
    const char *path = getenv("NTK_HISTORY");
    const char *home = getenv("HOME");
    history_file[0] = '\0';
    if (path) snprintf(history_file, sizeof history_file, "%s", path);
    else if (home && home[0])
        snprintf(history_file, sizeof history_file, "%s/.ntk_history", home);
    if (history_file[0] && read_history(history_file) != 0) {
        /* append_history needs the file to exist. */
        if (write_history(history_file) != 0) history_file[0] = '\0';
    }
}

static void close_readline(void)
{
    if (history_file[0]) history_truncate_file(history_file, HISTORY_SIZE);
}
#endif

static char *read_line(lua_State *L, int first, int *result)
{
    const char *prompt = prompt_of(L, first);
#ifdef NTK_HAVE_READLINE
    if (use_readline) return read_readline(prompt, result);
#endif
    return read_plain(prompt, result);
}

static void remember(const char *chunk)
{
#ifdef NTK_HAVE_READLINE
    if (use_readline) save_history(chunk);
#else
    (void)chunk;
#endif
}

/* ---- compiling chunks -------------------------------------------------- */

#define EOF_MARK "<eof>"

/* A syntax error at the end of input: more lines may complete the chunk. */
static int incomplete(lua_State *L, int status)
{
    if (status != LUA_ERRSYNTAX) return 0;
    size_t len;
    const char *msg = lua_tolstring(L, -1, &len);
    size_t mark = sizeof EOF_MARK - 1;
    return msg && len >= mark && strcmp(msg + len - mark, EOF_MARK) == 0;
}

/*
 * Read and compile one chunk. On LUA_OK the function is on the stack top;
 * on a compile error, the message. Returns -1 at the end of input and -2
 * when the user cancelled with Ctrl-C.
 */
static int load_chunk(lua_State *L)
{
    int r;
    char *line = read_line(L, 1, &r);
    if (r == LINE_EOF) return -1;
    if (r == LINE_CANCEL) return -2;
    lua_pushstring(L, line);
    free(line);
    int base = lua_gettop(L);

    /* An expression first, so its values print. */
    const char *src = lua_pushfstring(L, "return %s;", lua_tostring(L, base));
    int status = luaL_loadbuffer(L, src, strlen(src), "=stdin");
    lua_remove(L, -2);
    if (status == LUA_OK) {
        remember(lua_tostring(L, base));
        lua_remove(L, base);
        return LUA_OK;
    }
    lua_pop(L, 1);

    for (;;) {
        size_t len;
        const char *code = lua_tolstring(L, base, &len);
        status = luaL_loadbuffer(L, code, len, "=stdin");
        if (!incomplete(L, status)) break;
        char *more = read_line(L, 0, &r);
        if (r == LINE_CANCEL) {
            lua_settop(L, base - 1);
            return -2;
        }
        if (r == LINE_EOF) break; /* report the incomplete chunk's error */
        lua_pop(L, 1);
        lua_pushliteral(L, "\n");
        lua_pushstring(L, more);
        free(more);
        lua_concat(L, 3);
    }
    remember(lua_tostring(L, base));
    lua_remove(L, base);
    return status;
}

/* Show the results on the stack (all of it) and keep the first in `_`. */
static void show_results(lua_State *L)
{
    int n = lua_gettop(L);
    if (n == 0) return;
    lua_pushvalue(L, 1);
    lua_setglobal(L, "_");
    if (push_helper(L, "show")) {
        lua_insert(L, 1);
        if (lua_pcall(L, n, 0, 0) != LUA_OK) {
            app_message(lua_pushfstring(L, "error showing the result (%s)", lua_tostring(L, -1)));
            lua_settop(L, 0);
        }
        return;
    }
    luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
    lua_getglobal(L, "print");
    lua_insert(L, 1);
    if (lua_pcall(L, n, 0, 0) != LUA_OK)
        app_message(lua_pushfstring(L, "error calling 'print' (%s)", lua_tostring(L, -1)));
}

/* Between prompts and runs, a stray Ctrl-C must not end the session. */
static void ignore_sigint(int sig)
{
    (void)sig;
}

void app_repl(lua_State *L, int banner)
{
    struct sigaction sa, old_sigint;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ignore_sigint;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_sigint);
    session_L = L;
    use_readline = 0;
#ifdef NTK_HAVE_READLINE
    use_readline = isatty(STDIN_FILENO);
    if (use_readline) init_readline();
#endif
    load_helpers(L);
    if (banner) {
        lua_getglobal(L, "ntk");
        int threads = 0;
        if (lua_getfield(L, -1, "get_threads") == LUA_TFUNCTION && lua_pcall(L, 0, 1, 0) == LUA_OK)
            threads = (int)lua_tointeger(L, -1);
        lua_settop(L, 0);
        printf("ntk %s on %s, %d BLAS thread%s. Expressions print their values; `_` is the "
               "last one.\nTab completes names, Ctrl-C interrupts, Ctrl-D quits; "
               "help() for an overview.\n",
               ntk_version(), LUA_RELEASE, threads, threads == 1 ? "" : "s");
        fflush(stdout);
    }
    int status;
    lua_settop(L, 0);
    while ((status = load_chunk(L)) != -1) {
        if (status == -2) continue;
        if (status == LUA_OK) status = app_docall(L, 0, LUA_MULTRET);
        if (status == LUA_OK) show_results(L);
        else app_report(L, status);
        lua_settop(L, 0);
    }
    lua_settop(L, 0);
    if (!use_readline) fputc('\n', stdout);
    fflush(stdout);
#ifdef NTK_HAVE_READLINE
    if (use_readline) close_readline();
#endif
    if (helpers_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, helpers_ref);
    helpers_ref = LUA_NOREF;
    sigaction(SIGINT, &old_sigint, NULL);
}
