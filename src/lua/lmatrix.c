/* ntk.Matrix: row-major doubles held inside the userdata. */
#include "lntk.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define HEADER_BYTES offsetof(lntk_matrix, data)

lntk_matrix *lntk_newmatrix(lua_State *L, size_t rows, size_t cols, int zero)
{
    size_t count, bytes;
    if (ntk_mat_count(NULL, rows, cols, &count) != NTK_OK ||
        count > ((size_t)-1 - HEADER_BYTES) / sizeof(double))
        luaL_error(L, "a %I x %I matrix is too large", (lua_Integer)rows,
                   (lua_Integer)cols);
    bytes = HEADER_BYTES + count * sizeof(double);
    lntk_matrix *m = lua_newuserdatauv(L, bytes, 0);
    m->rows = rows;
    m->cols = cols;
    m->closed = 0;
    if (zero && count) memset(m->data, 0, count * sizeof(double));
    luaL_setmetatable(L, LNTK_MATRIX);
    return m;
}

lntk_matrix *lntk_testmatrix(lua_State *L, int idx)
{
    return luaL_testudata(L, idx, LNTK_MATRIX);
}

lntk_matrix *lntk_checkmatrix(lua_State *L, int idx)
{
    lntk_matrix *m = luaL_checkudata(L, idx, LNTK_MATRIX);
    if (m->closed) luaL_argerror(L, idx, "matrix is closed");
    return m;
}

lntk_matrix *lntk_checkfinite(lua_State *L, int idx, const char *what)
{
    lntk_matrix *m = lntk_checkmatrix(L, idx);
    ntk_mat v = lntk_view(m);
    size_t r, c;
    if (ntk_mat_find_nonfinite(&v, &r, &c)) {
        double x = m->data[r * m->cols + c];
        luaL_argerror(L, idx,
                      lua_pushfstring(L, "%s contains %s at row %I, column %I", what,
                                      isnan(x) ? "NaN" : "Inf",
                                      (lua_Integer)r + 1, (lua_Integer)c + 1));
    }
    return m;
}

static size_t count_of(const lntk_matrix *m) { return m->rows * m->cols; }

/* ---- construction ---- */

static void fill_from_rows(lua_State *L, int idx)
{
    lua_Integer rows = luaL_len(L, idx);
    if (rows == 0) {
        lntk_newmatrix(L, 0, 0, 0);
        return;
    }
    lua_geti(L, idx, 1);
    int nested = lua_istable(L, -1);
    lua_pop(L, 1);
    if (!nested) {
        /* A flat list is a column vector. */
        lntk_matrix *m = lntk_newmatrix(L, (size_t)rows, 1, 0);
        for (lua_Integer i = 1; i <= rows; i++) {
            lua_geti(L, idx, i);
            int ok;
            m->data[i - 1] = lua_tonumberx(L, -1, &ok);
            if (!ok)
                luaL_argerror(L, idx,
                              lua_pushfstring(L, "entry %I must be a number, got %s", i,
                                              luaL_typename(L, -1)));
            lua_pop(L, 1);
        }
        return;
    }
    lua_geti(L, idx, 1);
    lua_Integer cols = luaL_len(L, -1);
    lua_pop(L, 1);
    lntk_matrix *m = lntk_newmatrix(L, (size_t)rows, (size_t)cols, 0);
    for (lua_Integer i = 1; i <= rows; i++) {
        if (lua_geti(L, idx, i) != LUA_TTABLE)
            luaL_argerror(L, idx,
                          lua_pushfstring(L, "row %I must be a table, got %s", i,
                                          luaL_typename(L, -1)));
        if (luaL_len(L, -1) != cols)
            luaL_argerror(L, idx,
                          lua_pushfstring(L, "row %I has %I entries, row 1 has %I", i,
                                          luaL_len(L, -1), cols));
        for (lua_Integer j = 1; j <= cols; j++) {
            lua_geti(L, -1, j);
            int ok;
            m->data[(i - 1) * cols + (j - 1)] = lua_tonumberx(L, -1, &ok);
            if (!ok)
                luaL_argerror(L, idx,
                              lua_pushfstring(L, "entry (%I, %I) must be a number, got %s",
                                              i, j, luaL_typename(L, -1)));
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
}

/* ntk.matrix(rows, cols[, fill]) or ntk.matrix{{...}, ...} or ntk.matrix{...} */
static int l_matrix(lua_State *L)
{
    if (lua_istable(L, 1)) {
        luaL_argcheck(L, lua_isnone(L, 2), 2, "no argument expected after a table");
        fill_from_rows(L, 1);
        return 1;
    }
    if (lntk_testmatrix(L, 1)) {
        lntk_matrix *a = lntk_checkmatrix(L, 1);
        lntk_matrix *m = lntk_newmatrix(L, a->rows, a->cols, 0);
        memcpy(m->data, a->data, count_of(a) * sizeof(double));
        return 1;
    }
    if (lua_type(L, 1) != LUA_TNUMBER)
        return luaL_typeerror(L, 1, "rows (integer) or table of rows");
    size_t rows = lntk_checksize(L, 1, "rows");
    size_t cols = lntk_checksize(L, 2, "cols");
    double fill = luaL_optnumber(L, 3, 0.0);
    lntk_matrix *m = lntk_newmatrix(L, rows, cols, fill == 0.0 && !signbit(fill));
    if (!(fill == 0.0 && !signbit(fill)))
        for (size_t i = 0; i < rows * cols; i++) m->data[i] = fill;
    return 1;
}

static int l_zeros(lua_State *L)
{
    size_t rows = lntk_checksize(L, 1, "rows");
    size_t cols = lntk_checksize(L, 2, "cols");
    lntk_newmatrix(L, rows, cols, 1);
    return 1;
}

static int l_ones(lua_State *L)
{
    size_t rows = lntk_checksize(L, 1, "rows");
    size_t cols = lntk_checksize(L, 2, "cols");
    lntk_matrix *m = lntk_newmatrix(L, rows, cols, 0);
    for (size_t i = 0; i < rows * cols; i++) m->data[i] = 1.0;
    return 1;
}

static int l_eye(lua_State *L)
{
    size_t n = lntk_checksize(L, 1, "n");
    lntk_matrix *m = lntk_newmatrix(L, n, n, 1);
    for (size_t i = 0; i < n; i++) m->data[i * n + i] = 1.0;
    return 1;
}

static int l_randn(lua_State *L)
{
    size_t rows = lntk_checksize(L, 1, "rows");
    size_t cols = lntk_checksize(L, 2, "cols");
    uint64_t seed = lntk_checkseed(L, 3);
    lntk_matrix *m = lntk_newmatrix(L, rows, cols, 0);
    ntk_rng rng;
    ntk_rng_seed(&rng, seed);
    ntk_mat v = lntk_view(m);
    ntk_rng_fill_normal(&rng, &v);
    return 1;
}

static int l_rand(lua_State *L)
{
    size_t rows = lntk_checksize(L, 1, "rows");
    size_t cols = lntk_checksize(L, 2, "cols");
    uint64_t seed = lntk_checkseed(L, 3);
    lntk_matrix *m = lntk_newmatrix(L, rows, cols, 0);
    ntk_rng rng;
    ntk_rng_seed(&rng, seed);
    for (size_t i = 0; i < rows * cols; i++) m->data[i] = ntk_rng_uniform(&rng);
    return 1;
}

static int l_is_matrix(lua_State *L)
{
    lua_pushboolean(L, lntk_testmatrix(L, 1) != NULL);
    return 1;
}

/* ---- access ---- */

static int m_rows(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)lntk_checkmatrix(L, 1)->rows);
    return 1;
}

static int m_cols(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)lntk_checkmatrix(L, 1)->cols);
    return 1;
}

static int m_shape(lua_State *L)
{
    lntk_matrix *m = lntk_checkmatrix(L, 1);
    lua_pushinteger(L, (lua_Integer)m->rows);
    lua_pushinteger(L, (lua_Integer)m->cols);
    return 2;
}

static size_t checkindex(lua_State *L, int idx, size_t n, const char *what)
{
    lua_Integer i = luaL_checkinteger(L, idx);
    if (i < 1 || (size_t)i > n)
        luaL_argerror(L, idx,
                      lua_pushfstring(L, "%s index %I out of range 1..%I", what, i,
                                      (lua_Integer)n));
    return (size_t)(i - 1);
}

static int m_get(lua_State *L)
{
    lntk_matrix *m = lntk_checkmatrix(L, 1);
    size_t i = checkindex(L, 2, m->rows, "row");
    size_t j = checkindex(L, 3, m->cols, "column");
    lua_pushnumber(L, m->data[i * m->cols + j]);
    return 1;
}

static int m_set(lua_State *L)
{
    lntk_matrix *m = lntk_checkmatrix(L, 1);
    size_t i = checkindex(L, 2, m->rows, "row");
    size_t j = checkindex(L, 3, m->cols, "column");
    m->data[i * m->cols + j] = luaL_checknumber(L, 4);
    lua_settop(L, 1);
    return 1;
}

static int m_len(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)lntk_checkmatrix(L, 1)->rows);
    return 1;
}

static int m_totable(lua_State *L)
{
    lntk_matrix *m = lntk_checkmatrix(L, 1);
    lua_createtable(L, (int)m->rows, 0);
    for (size_t i = 0; i < m->rows; i++) {
        lua_createtable(L, (int)m->cols, 0);
        for (size_t j = 0; j < m->cols; j++) {
            lua_pushnumber(L, m->data[i * m->cols + j]);
            lua_rawseti(L, -2, (lua_Integer)j + 1);
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int m_copy(lua_State *L)
{
    lntk_matrix *a = lntk_checkmatrix(L, 1);
    lntk_matrix *m = lntk_newmatrix(L, a->rows, a->cols, 0);
    memcpy(m->data, a->data, count_of(a) * sizeof(double));
    return 1;
}

static int m_T(lua_State *L)
{
    lntk_matrix *a = lntk_checkmatrix(L, 1);
    lntk_matrix *m = lntk_newmatrix(L, a->cols, a->rows, 0);
    const size_t T = 32;
    for (size_t i0 = 0; i0 < a->rows; i0 += T)
        for (size_t j0 = 0; j0 < a->cols; j0 += T)
            for (size_t i = i0; i < i0 + T && i < a->rows; i++)
                for (size_t j = j0; j < j0 + T && j < a->cols; j++)
                    m->data[j * a->rows + i] = a->data[i * a->cols + j];
    return 1;
}

static size_t checkrange_end(lua_State *L, int idx, size_t start, size_t n,
                             const char *what)
{
    lua_Integer e = luaL_checkinteger(L, idx);
    if (e < (lua_Integer)start || (size_t)e > n)
        luaL_argerror(L, idx,
                      lua_pushfstring(L, "%s range end %I out of range %I..%I", what, e,
                                      (lua_Integer)start, (lua_Integer)n));
    return (size_t)e;
}

/* m:sub(r1, r2, c1, c2): a copy of rows r1..r2 and columns c1..c2
 * (inclusive, 1-based; an end one below its start gives an empty range). */
static int m_sub(lua_State *L)
{
    lntk_matrix *a = lntk_checkmatrix(L, 1);
    size_t r1 = checkindex(L, 2, a->rows + 1, "row");
    size_t r2 = checkrange_end(L, 3, r1, a->rows, "row");
    size_t c1 = lua_isnoneornil(L, 4) ? 0 : checkindex(L, 4, a->cols + 1, "column");
    size_t c2 = lua_isnoneornil(L, 5) ? a->cols
                                      : checkrange_end(L, 5, c1, a->cols, "column");
    lntk_matrix *m = lntk_newmatrix(L, r2 - r1, c2 - c1, 0);
    for (size_t i = r1; i < r2; i++)
        memcpy(m->data + (i - r1) * m->cols, a->data + i * a->cols + c1,
               m->cols * sizeof(double));
    return 1;
}

static int m_row(lua_State *L)
{
    lntk_matrix *a = lntk_checkmatrix(L, 1);
    size_t i = checkindex(L, 2, a->rows, "row");
    lntk_matrix *m = lntk_newmatrix(L, 1, a->cols, 0);
    memcpy(m->data, a->data + i * a->cols, a->cols * sizeof(double));
    return 1;
}

static int m_col(lua_State *L)
{
    lntk_matrix *a = lntk_checkmatrix(L, 1);
    size_t j = checkindex(L, 2, a->cols, "column");
    lntk_matrix *m = lntk_newmatrix(L, a->rows, 1, 0);
    for (size_t i = 0; i < a->rows; i++) m->data[i] = a->data[i * a->cols + j];
    return 1;
}

static int m_diag(lua_State *L)
{
    lntk_matrix *a = lntk_checkmatrix(L, 1);
    size_t n = a->rows < a->cols ? a->rows : a->cols;
    lntk_matrix *m = lntk_newmatrix(L, n, 1, 0);
    for (size_t i = 0; i < n; i++) m->data[i] = a->data[i * a->cols + i];
    return 1;
}

static int m_reshape(lua_State *L)
{
    lntk_matrix *a = lntk_checkmatrix(L, 1);
    size_t rows = lntk_checksize(L, 2, "rows");
    size_t cols = lntk_checksize(L, 3, "cols");
    if (rows * cols != count_of(a))
        return luaL_argerror(
            L, 2,
            lua_pushfstring(L, "cannot reshape %Ix%I into %Ix%I", (lua_Integer)a->rows,
                            (lua_Integer)a->cols, (lua_Integer)rows, (lua_Integer)cols));
    lntk_matrix *m = lntk_newmatrix(L, rows, cols, 0);
    memcpy(m->data, a->data, count_of(a) * sizeof(double));
    return 1;
}

static int m_fill(lua_State *L)
{
    lntk_matrix *a = lntk_checkmatrix(L, 1);
    double v = luaL_checknumber(L, 2);
    for (size_t i = 0; i < count_of(a); i++) a->data[i] = v;
    lua_settop(L, 1);
    return 1;
}

/* ---- reductions ---- */

static int m_max_abs(lua_State *L)
{
    lntk_matrix *a = lntk_checkmatrix(L, 1);
    double best = 0.0;
    for (size_t i = 0; i < count_of(a); i++) {
        double v = fabs(a->data[i]);
        if (v > best || isnan(v)) best = v;
        if (isnan(v)) break;
    }
    lua_pushnumber(L, best);
    return 1;
}

static double sum_of(const lntk_matrix *a)
{
    /* Pairwise-free Kahan summation: kernels hold 10^8 entries. */
    double s = 0.0, c = 0.0;
    for (size_t i = 0; i < count_of(a); i++) {
        double y = a->data[i] - c, t = s + y;
        c = (t - s) - y;
        s = t;
    }
    return s;
}

static int m_sum(lua_State *L)
{
    lua_pushnumber(L, sum_of(lntk_checkmatrix(L, 1)));
    return 1;
}

static int m_mean(lua_State *L)
{
    lntk_matrix *a = lntk_checkmatrix(L, 1);
    luaL_argcheck(L, count_of(a) > 0, 1, "mean of an empty matrix");
    lua_pushnumber(L, sum_of(a) / (double)count_of(a));
    return 1;
}

static int minmax(lua_State *L, int want_max)
{
    lntk_matrix *a = lntk_checkmatrix(L, 1);
    luaL_argcheck(L, count_of(a) > 0, 1, "empty matrix");
    size_t best = 0;
    for (size_t i = 1; i < count_of(a); i++)
        if (want_max ? a->data[i] > a->data[best] : a->data[i] < a->data[best]) best = i;
    lua_pushnumber(L, a->data[best]);
    lua_pushinteger(L, (lua_Integer)(best / a->cols) + 1);
    lua_pushinteger(L, (lua_Integer)(best % a->cols) + 1);
    return 3;
}

static int m_min(lua_State *L) { return minmax(L, 0); }
static int m_max(lua_State *L) { return minmax(L, 1); }

static int m_trace(lua_State *L)
{
    lntk_matrix *a = lntk_checkmatrix(L, 1);
    if (a->rows != a->cols)
        return luaL_argerror(L, 1,
                             lua_pushfstring(L, "trace needs a square matrix, got %Ix%I",
                                             (lua_Integer)a->rows, (lua_Integer)a->cols));
    double s = 0.0;
    for (size_t i = 0; i < a->rows; i++) s += a->data[i * a->cols + i];
    lua_pushnumber(L, s);
    return 1;
}

static int m_norm(lua_State *L)
{
    lntk_matrix *a = lntk_checkmatrix(L, 1);
    /* dnrm2 takes an int length; sum blocks of it with scaling. */
    double scale = 0.0, ssq = 1.0;
    for (size_t i = 0; i < count_of(a); i++) {
        double v = fabs(a->data[i]);
        if (v == 0.0) continue;
        if (scale < v) {
            ssq = 1.0 + ssq * (scale / v) * (scale / v);
            scale = v;
        } else {
            ssq += (v / scale) * (v / scale);
        }
    }
    lua_pushnumber(L, scale * sqrt(ssq));
    return 1;
}

/* ---- arithmetic ---- */

static const char *shape_str(lua_State *L, const lntk_matrix *m)
{
    return lua_pushfstring(L, "%Ix%I", (lua_Integer)m->rows, (lua_Integer)m->cols);
}

static int shape_error(lua_State *L, const char *op, const lntk_matrix *a,
                       const lntk_matrix *b)
{
    const char *sa = shape_str(L, a), *sb = shape_str(L, b);
    return luaL_error(L, "%s: shapes %s and %s do not match", op, sa, sb);
}

static int addsub(lua_State *L, double sign, const char *op)
{
    lntk_matrix *a = lntk_testmatrix(L, 1), *b = lntk_testmatrix(L, 2);
    if (!a || !b) {
        /* Matrix plus scalar is a shift of every entry. */
        int mi = a ? 1 : 2;
        lntk_matrix *m = lntk_checkmatrix(L, mi);
        if (lua_type(L, 3 - mi) != LUA_TNUMBER)
            return luaL_error(L, "%s: expected a matrix or a number, got %s", op,
                              luaL_typename(L, 3 - mi));
        double s = lua_tonumber(L, 3 - mi);
        lntk_matrix *r = lntk_newmatrix(L, m->rows, m->cols, 0);
        for (size_t i = 0; i < count_of(m); i++)
            r->data[i] = mi == 1 ? m->data[i] + sign * s : s + sign * m->data[i];
        return 1;
    }
    lntk_checkmatrix(L, 1);
    lntk_checkmatrix(L, 2);
    if (a->rows != b->rows || a->cols != b->cols) return shape_error(L, op, a, b);
    lntk_matrix *r = lntk_newmatrix(L, a->rows, a->cols, 0);
    for (size_t i = 0; i < count_of(a); i++) r->data[i] = a->data[i] + sign * b->data[i];
    return 1;
}

static int m_add(lua_State *L) { return addsub(L, 1.0, "A + B"); }
static int m_sub_op(lua_State *L) { return addsub(L, -1.0, "A - B"); }

static int scaled(lua_State *L, const lntk_matrix *a, double s)
{
    lntk_matrix *r = lntk_newmatrix(L, a->rows, a->cols, 0);
    for (size_t i = 0; i < count_of(a); i++) r->data[i] = s * a->data[i];
    return 1;
}

static int m_mul(lua_State *L)
{
    lntk_matrix *a = lntk_testmatrix(L, 1), *b = lntk_testmatrix(L, 2);
    if (a && b)
        return luaL_error(L, "A * B: use A:mm(B) for the matrix product or "
                             "A:cmul(B) for the elementwise one");
    int mi = a ? 1 : 2;
    lntk_matrix *m = lntk_checkmatrix(L, mi);
    if (lua_type(L, 3 - mi) != LUA_TNUMBER)
        return luaL_error(L, "A * s: expected a number, got %s", luaL_typename(L, 3 - mi));
    return scaled(L, m, lua_tonumber(L, 3 - mi));
}

static int m_div(lua_State *L)
{
    lntk_matrix *a = lntk_checkmatrix(L, 1);
    if (lua_type(L, 2) != LUA_TNUMBER)
        return luaL_error(L, "A / s: expected a number, got %s", luaL_typename(L, 2));
    return scaled(L, a, 1.0 / lua_tonumber(L, 2));
}

static int m_unm(lua_State *L) { return scaled(L, lntk_checkmatrix(L, 1), -1.0); }

static int m_cmul(lua_State *L)
{
    lntk_matrix *a = lntk_checkmatrix(L, 1), *b = lntk_checkmatrix(L, 2);
    if (a->rows != b->rows || a->cols != b->cols) return shape_error(L, "A:cmul(B)", a, b);
    lntk_matrix *r = lntk_newmatrix(L, a->rows, a->cols, 0);
    for (size_t i = 0; i < count_of(a); i++) r->data[i] = a->data[i] * b->data[i];
    return 1;
}

static int m_mm(lua_State *L)
{
    lntk_matrix *a = lntk_checkmatrix(L, 1), *b = lntk_checkmatrix(L, 2);
    if (a->cols != b->rows) {
        const char *sa = shape_str(L, a), *sb = shape_str(L, b);
        return luaL_error(L, "A:mm(B): inner dimensions differ (A is %s, B is %s)", sa, sb);
    }
    lntk_matrix *c = lntk_newmatrix(L, a->rows, b->cols, 1);
    ntk_mat va = lntk_view(a), vb = lntk_view(b), vc = lntk_view(c);
    ntk_status st = ntk_mat_gemm(lntk_ctx(L), 0, 0, 1.0, &va, &vb, 0.0, &vc);
    if (st) return lntk_error(L, st);
    return 1;
}

/* ---- printing ---- */

#define SHOW_ROWS 10
#define SHOW_COLS 8

static void pick(size_t n, size_t max, size_t *idx, size_t *k, int *gap)
{
    *k = 0;
    *gap = -1;
    if (n <= max) {
        for (size_t i = 0; i < n; i++) idx[(*k)++] = i;
        return;
    }
    size_t head = max / 2, tail = max - head - 1;
    for (size_t i = 0; i < head; i++) idx[(*k)++] = i;
    *gap = (int)head;
    for (size_t i = n - tail; i < n; i++) idx[(*k)++] = i;
}

static int m_tostring(lua_State *L)
{
    lntk_matrix *m = luaL_checkudata(L, 1, LNTK_MATRIX);
    if (m->closed) {
        lua_pushliteral(L, "[ntk.Matrix (closed)]");
        return 1;
    }
    size_t ri[SHOW_ROWS], ci[SHOW_COLS], nr, nc;
    int rgap, cgap;
    pick(m->rows, SHOW_ROWS, ri, &nr, &rgap);
    pick(m->cols, SHOW_COLS, ci, &nc, &cgap);
    char cell[SHOW_ROWS][SHOW_COLS][32];
    int width[SHOW_COLS] = {0};
    for (size_t a = 0; a < nr; a++)
        for (size_t b = 0; b < nc; b++) {
            int w = snprintf(cell[a][b], sizeof cell[a][b], "%.6g",
                             m->data[ri[a] * m->cols + ci[b]]);
            if (w > width[b]) width[b] = w;
        }
    luaL_Buffer buf;
    luaL_buffinit(L, &buf);
    for (size_t a = 0; a < nr; a++) {
        if ((int)a == rgap) luaL_addstring(&buf, " ...\n");
        for (size_t b = 0; b < nc; b++) {
            char tmp[48];
            if ((int)b == cgap) luaL_addstring(&buf, "  ...");
            snprintf(tmp, sizeof tmp, "%s%*s", b ? "  " : " ", width[b], cell[a][b]);
            luaL_addstring(&buf, tmp);
        }
        luaL_addchar(&buf, '\n');
    }
    lua_pushfstring(L, "[ntk.Matrix %Ix%I]", (lua_Integer)m->rows, (lua_Integer)m->cols);
    luaL_addvalue(&buf);
    luaL_pushresult(&buf);
    return 1;
}

/* __gc and __close: the memory lives in the userdata, so releasing means
 * marking the matrix unusable; calling it twice is harmless. */
static int m_release(lua_State *L)
{
    lua_settop(L, 1); /* __close also passes the error object */
    lntk_matrix *m = luaL_checkudata(L, 1, LNTK_MATRIX);
    m->closed = 1;
    m->rows = m->cols = 0;
    return 0;
}

static const luaL_Reg module_fns[] = {
    {"matrix", l_matrix}, {"zeros", l_zeros},   {"ones", l_ones},
    {"eye", l_eye},       {"randn", l_randn},   {"rand", l_rand},
    {"is_matrix", l_is_matrix}, {NULL, NULL},
};

static const luaL_Reg methods[] = {
    {"rows", m_rows},       {"cols", m_cols},     {"shape", m_shape},
    {"get", m_get},         {"set", m_set},       {"totable", m_totable},
    {"copy", m_copy},       {"T", m_T},           {"sub", m_sub},
    {"row", m_row},         {"col", m_col},       {"diag", m_diag},
    {"reshape", m_reshape}, {"fill", m_fill},     {"max_abs", m_max_abs},
    {"sum", m_sum},         {"mean", m_mean},     {"min", m_min},
    {"max", m_max},         {"trace", m_trace},   {"norm", m_norm},
    {"mm", m_mm},           {"cmul", m_cmul},     {NULL, NULL},
};

static const luaL_Reg metamethods[] = {
    {"__tostring", m_tostring}, {"__len", m_len}, {"__add", m_add},
    {"__sub", m_sub_op},        {"__mul", m_mul}, {"__div", m_div},
    {"__unm", m_unm},           {"__gc", m_release},
    {NULL, NULL},
};

void lntk_open_matrix(lua_State *L, int ctx_idx)
{
    lntk_setfuncs(L, ctx_idx, module_fns);
    /* ntk.Matrix is exposed so the Lua layer can add methods. */
    lntk_newclass(L, ctx_idx, LNTK_MATRIX, "Matrix", metamethods, methods);
}
