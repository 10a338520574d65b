/* ntk.Net: multilayer perceptrons, their Jacobians and kernels. */
#include "lntk.h"

#include <math.h>
#include <string.h>

typedef struct lntk_net {
    ntk_net *net;
    ntk_ctx *ctx; /* the context that allocated net */
    int busy;     /* computations running on it that may call back into Lua */
} lntk_net;

static lntk_net *checknet(lua_State *L, int idx)
{
    lntk_net *n = luaL_checkudata(L, idx, LNTK_NET);
    if (!n->net) luaL_argerror(L, idx, "network is closed");
    return n;
}

/* Push an empty ntk.Net before the core makes the network, so that a
 * memory error raised here never strands one. */
static lntk_net *newnet(lua_State *L)
{
    lntk_net *n = lua_newuserdatauv(L, sizeof *n, 1);
    n->net = NULL;
    n->ctx = lntk_ctx(L);
    n->busy = 0;
    /* Keep the context alive as long as the network. */
    lua_pushvalue(L, LNTK_CTX_UPVALUE);
    lua_setiuservalue(L, -2, 1);
    luaL_setmetatable(L, LNTK_NET);
    return n;
}

/* Hand the network made by the core to the userdata from newnet. */
static void setnet(lua_State *L, lntk_net *n, ntk_net *net)
{
    n->net = net;
    /* The parameters live outside Lua's heap: tell the collector. */
    size_t kb = ntk_net_num_params(net) * sizeof(double) / 1024;
    if (kb > 0) lua_gc(L, LUA_GCSTEP, kb > INT32_MAX ? INT32_MAX : (int)kb);
}

/* ntk.mlp{sizes = {...}, activation = ..., parameterization = ...,
 *         weight_std = ..., bias_std = ..., seed = ...} */
static int l_mlp(lua_State *L)
{
    static const char *const known[] = {"sizes",    "activation", "parameterization",
                                        "weight_std", "bias_std", "seed", NULL};
    luaL_checktype(L, 1, LUA_TTABLE);
    lntk_checkoptions(L, 1, known);
    ntk_ctx *ctx = lntk_ctx(L);
    ntk_mlp_spec spec;
    ntk_mlp_spec_init(&spec);

    if (lua_getfield(L, 1, "sizes") != LUA_TTABLE)
        return luaL_argerror(L, 1,
                             lua_pushfstring(L, "sizes must be a table of widths {n, h1, ..., m}, got %s",
                                             luaL_typename(L, -1)));
    lua_Integer nsizes = luaL_len(L, -1);
    if (nsizes < 2 || nsizes > 10000)
        return luaL_argerror(L, 1, "sizes must list at least an input and an output width");
    size_t *sizes = lua_newuserdatauv(L, (size_t)nsizes * sizeof *sizes, 0);
    for (lua_Integer i = 1; i <= nsizes; i++) {
        lua_geti(L, -2, i);
        int isint;
        lua_Integer w = lua_tointegerx(L, -1, &isint);
        if (!isint || w < 1 || w > INT32_MAX)
            return luaL_argerror(L, 1,
                                 lua_pushfstring(L, "sizes[%I] must be a positive integer, got %s",
                                                 i, luaL_tolstring(L, -1, NULL)));
        sizes[i - 1] = (size_t)w;
        lua_pop(L, 1);
    }
    spec.depth = (size_t)nsizes - 1;
    spec.sizes = sizes;

    size_t hidden = spec.depth - 1;
    ntk_act *acts = lua_newuserdatauv(L, (hidden ? hidden : 1) * sizeof *acts, 0);
    int t = lua_getfield(L, 1, "activation");
    if (t == LUA_TNIL || t == LUA_TSTRING) {
        ntk_act a = NTK_ACT_RELU;
        if (t == LUA_TSTRING && ntk_act_parse(ctx, lua_tostring(L, -1), &a))
            return luaL_argerror(L, 1, ntk_ctx_error(ctx));
        for (size_t k = 0; k < hidden; k++) acts[k] = a;
    } else if (t == LUA_TTABLE) {
        if (luaL_len(L, -1) != (lua_Integer)hidden)
            return luaL_argerror(L, 1,
                                 lua_pushfstring(L, "activation must name one activation per hidden layer (%I), got %I",
                                                 (lua_Integer)hidden, luaL_len(L, -1)));
        for (size_t k = 0; k < hidden; k++) {
            if (lua_geti(L, -1, (lua_Integer)k + 1) != LUA_TSTRING)
                return luaL_argerror(L, 1,
                                     lua_pushfstring(L, "activation[%I] must be a string", (lua_Integer)k + 1));
            if (ntk_act_parse(ctx, lua_tostring(L, -1), &acts[k]))
                return luaL_argerror(L, 1, ntk_ctx_error(ctx));
            lua_pop(L, 1);
        }
    } else {
        return luaL_argerror(L, 1, "activation must be a name or a table of names");
    }
    lua_pop(L, 1);
    spec.acts = acts;

    const char *p = lntk_optstring(L, 1, "parameterization", "ntk");
    if (ntk_param_parse(ctx, p, &spec.param)) return luaL_argerror(L, 1, ntk_ctx_error(ctx));
    spec.weight_std = lntk_optnumber(L, 1, "weight_std", NTK_DEFAULT_WEIGHT_STD);
    spec.bias_std = lntk_optnumber(L, 1, "bias_std", NTK_DEFAULT_BIAS_STD);
    if (spec.weight_std < 0) return luaL_argerror(L, 1, "weight_std must be >= 0");
    if (spec.bias_std < 0) return luaL_argerror(L, 1, "bias_std must be >= 0");
    spec.seed = (uint64_t)lntk_optinteger(L, 1, "seed", 0);

    lntk_net *n = newnet(L);
    ntk_net *net;
    ntk_status st = ntk_mlp_create(ctx, &spec, &net);
    /* What is left after the checks above is the spec as a whole (too
     * many parameters); running out of memory is not misuse. */
    if (st == NTK_ERR_INVALID || st == NTK_ERR_OVERFLOW)
        return luaL_argerror(L, 1, ntk_ctx_error(ctx));
    if (st) return lntk_error(L, st);
    setnet(L, n, net);
    return 1;
}

static int n_copy(lua_State *L)
{
    lntk_net *n = checknet(L, 1);
    lntk_net *c = newnet(L);
    ntk_net *net;
    ntk_status st = ntk_net_copy(lntk_ctx(L), n->net, &net);
    if (st) return lntk_error(L, st);
    setnet(L, c, net);
    return 1;
}

static int n_release(lua_State *L)
{
    lua_settop(L, 1); /* __close also passes the error object */
    lntk_net *n = luaL_checkudata(L, 1, LNTK_NET);
    /* A progress function may reach __gc or __close through the metatable
     * while the core still reads the network. */
    if (n->busy)
        return luaL_error(L, "network is in use by a running computation; "
                             "close it after that returns");
    if (n->net) {
        ntk_net_destroy(n->ctx, n->net);
        n->net = NULL;
    }
    return 0;
}

static int n_num_params(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)ntk_net_num_params(checknet(L, 1)->net));
    return 1;
}

static int n_depth(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)ntk_net_depth(checknet(L, 1)->net));
    return 1;
}

static int n_input_dim(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)ntk_net_input_dim(checknet(L, 1)->net));
    return 1;
}

static int n_output_dim(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)ntk_net_output_dim(checknet(L, 1)->net));
    return 1;
}

static int n_sizes(lua_State *L)
{
    ntk_net *net = checknet(L, 1)->net;
    size_t d = ntk_net_depth(net);
    lua_createtable(L, (int)d + 1, 0);
    for (size_t l = 0; l <= d; l++) {
        lua_pushinteger(L, (lua_Integer)ntk_net_width(net, l));
        lua_rawseti(L, -2, (lua_Integer)l + 1);
    }
    return 1;
}

static int n_activations(lua_State *L)
{
    ntk_net *net = checknet(L, 1)->net;
    size_t d = ntk_net_depth(net);
    lua_createtable(L, (int)d, 0);
    for (size_t l = 1; l < d; l++) {
        lua_pushstring(L, ntk_act_name(ntk_net_act(net, l)));
        lua_rawseti(L, -2, (lua_Integer)l);
    }
    return 1;
}

static int n_parameterization(lua_State *L)
{
    lua_pushstring(L, ntk_param_name(ntk_net_param(checknet(L, 1)->net)));
    return 1;
}

static int n_weight_std(lua_State *L)
{
    lua_pushnumber(L, ntk_net_weight_std(checknet(L, 1)->net));
    return 1;
}

static int n_bias_std(lua_State *L)
{
    lua_pushnumber(L, ntk_net_bias_std(checknet(L, 1)->net));
    return 1;
}

static int n_params(lua_State *L)
{
    ntk_net *net = checknet(L, 1)->net;
    size_t P = ntk_net_num_params(net);
    lntk_matrix *m = lntk_newmatrix(L, P, 1, 0);
    memcpy(m->data, ntk_net_params(net), P * sizeof(double));
    return 1;
}

static int n_set_params(lua_State *L)
{
    lntk_net *n = checknet(L, 1);
    lntk_matrix *v = lntk_checkmatrix(L, 2);
    size_t P = ntk_net_num_params(n->net);
    if (!((v->rows == P && v->cols == 1) || (v->rows == 1 && v->cols == P)))
        return luaL_argerror(L, 2,
                             lua_pushfstring(L, "theta must be %Ix1 (one entry per parameter), got %Ix%I",
                                             (lua_Integer)P, (lua_Integer)v->rows,
                                             (lua_Integer)v->cols));
    lntk_checkfinite(L, 2, "theta");
    ntk_status st = ntk_net_set_params(lntk_ctx(L), n->net, v->data, P);
    if (st) return lntk_error(L, st);
    lua_settop(L, 1);
    return 1;
}

static size_t checklayer(lua_State *L, int idx, ntk_net *net)
{
    lua_Integer l = luaL_checkinteger(L, idx);
    lua_Integer d = (lua_Integer)ntk_net_depth(net);
    if (l < 1 || l > d)
        luaL_argerror(L, idx, lua_pushfstring(L, "layer must be between 1 and %I, got %I", d, l));
    return (size_t)l;
}

static int n_layer(lua_State *L)
{
    ntk_net *net = checknet(L, 1)->net;
    size_t l = checklayer(L, 2, net);
    lntk_matrix *w = lntk_newmatrix(L, ntk_net_width(net, l), ntk_net_width(net, l - 1), 0);
    lntk_matrix *b = lntk_newmatrix(L, ntk_net_width(net, l), 1, 0);
    ntk_mat vw = lntk_view(w), vb = lntk_view(b);
    ntk_status st = ntk_net_get_layer(lntk_ctx(L), net, l, &vw, &vb);
    if (st) return lntk_error(L, st);
    return 2;
}

static int n_set_layer(lua_State *L)
{
    ntk_net *net = checknet(L, 1)->net;
    size_t l = checklayer(L, 2, net);
    size_t rows = ntk_net_width(net, l), cols = ntk_net_width(net, l - 1);
    lntk_matrix *w = lua_isnil(L, 3) ? NULL : lntk_checkmatrix(L, 3);
    lntk_matrix *b = lua_isnoneornil(L, 4) ? NULL : lntk_checkmatrix(L, 4);
    if (w && (w->rows != rows || w->cols != cols))
        return luaL_argerror(L, 3,
                             lua_pushfstring(L, "W for layer %I must be %Ix%I (n_out x n_in), got %Ix%I",
                                             (lua_Integer)l, (lua_Integer)rows, (lua_Integer)cols,
                                             (lua_Integer)w->rows, (lua_Integer)w->cols));
    if (b && !((b->rows == rows && b->cols == 1) || (b->rows == 1 && b->cols == rows)))
        return luaL_argerror(L, 4,
                             lua_pushfstring(L, "b for layer %I must be %Ix1, got %Ix%I",
                                             (lua_Integer)l, (lua_Integer)rows,
                                             (lua_Integer)b->rows, (lua_Integer)b->cols));
    if (w) lntk_checkfinite(L, 3, "W");
    if (b) lntk_checkfinite(L, 4, "b");
    ntk_mat vw = w ? lntk_view(w) : (ntk_mat){0, 0, NULL};
    ntk_mat vb = b ? lntk_view(b) : (ntk_mat){0, 0, NULL};
    ntk_status st = ntk_net_set_layer(lntk_ctx(L), net, l, w ? &vw : NULL, b ? &vb : NULL);
    if (st) return lntk_error(L, st);
    lua_settop(L, 1);
    return 1;
}

static int n_forward(lua_State *L)
{
    ntk_net *net = checknet(L, 1)->net;
    lntk_matrix *x = lntk_checkinput(L, 2, ntk_net_input_dim(net), "X");
    lntk_matrix *y = lntk_newmatrix(L, x->rows, ntk_net_output_dim(net), 0);
    ntk_mat vx = lntk_view(x), vy = lntk_view(y);
    ntk_status st = ntk_net_forward(lntk_ctx(L), net, &vx, &vy);
    if (st) return lntk_error(L, st);
    return 1;
}

static int n_jacobian(lua_State *L)
{
    static const char *const known[] = {"layout", "progress", NULL};
    lntk_net *self = checknet(L, 1);
    ntk_net *net = self->net;
    lntk_matrix *x = lntk_checkinput(L, 2, ntk_net_input_dim(net), "X");
    lntk_checkoptions(L, 3, known);
    const char *layout = lntk_optstring(L, 3, "layout", x->rows == 1 ? "columns" : "rows");
    int columns;
    if (strcmp(layout, "columns") == 0) columns = 1;
    else if (strcmp(layout, "rows") == 0) columns = 0;
    else return luaL_argerror(L, 3, "layout must be 'rows' ((N*m) x P) or 'columns' (P x (N*m))");
    size_t m = ntk_net_output_dim(net), P = ntk_net_num_params(net);
    size_t rows;
    if (ntk_mat_count(NULL, x->rows, m, &rows))
        return luaL_argerror(L, 2, "X has too many rows");
    lntk_progress prog;
    lntk_matrix *j = lntk_newmatrix(L, rows, P, 0);
    ntk_mat vx = lntk_view(x), vj = lntk_view(j);
    lntk_progress_begin(L, &prog, lua_isnoneornil(L, 3) ? 0 : 3);
    self->busy++;
    ntk_status st = ntk_net_jacobian(lntk_ctx(L), net, &vx, &vj);
    self->busy--;
    lntk_progress_end(L, &prog);
    if (st) return lntk_error(L, st);
    if (columns) {
        lntk_matrix *t = lntk_newmatrix(L, P, rows, 0);
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < P; c++) t->data[c * rows + r] = j->data[r * P + c];
    }
    return 1;
}

static const char *const kernel_keys[] = {"mode", "normalize", "method", "memory",
                                          "chunk", "progress", NULL};

/* Parse kernel options at idx (0: none) into o. */
static void kernel_opts(lua_State *L, int idx, ntk_kernel_opts *o)
{
    lntk_kernel_opts(L, idx, kernel_keys, 4, "mode must be full, trace, outputs or blocks", o);
}

static int n_ntk(lua_State *L)
{
    lntk_net *self = checknet(L, 1);
    ntk_net *net = self->net;
    lntk_matrix *x1, *x2;
    int oi = lntk_kernel_args(L, ntk_net_input_dim(net), &x1, &x2);
    ntk_kernel_opts o;
    kernel_opts(L, oi, &o);
    ntk_ctx *ctx = lntk_ctx(L);
    if (o.mode == NTK_MODE_BLOCKS && x2)
        return luaL_argerror(L, 3, "mode 'blocks' takes one input set");
    size_t rows, cols, count;
    ntk_status st = ntk_kernel_shape(ctx, net, x1->rows, x2 ? (x2->rows ? x2->rows : 1) : 0,
                                     &o, &rows, &cols, &count);
    if (st) return lntk_error(L, st);
    if (x2 && x2->rows == 0) cols = 0;
    /* "outputs" is always a table of m kernels, also when m = 1. */
    int table = o.mode == NTK_MODE_OUTPUTS;
    ntk_mat outs_small[1];
    ntk_mat *outs = outs_small;
    if (table) {
        outs = lua_newuserdatauv(L, count * sizeof *outs, 0);
        lua_createtable(L, (int)count, 0);
    }
    for (size_t a = 0; a < count; a++) {
        lntk_matrix *k = lntk_newmatrix(L, rows, cols, 0);
        outs[a] = lntk_view(k);
        if (table) lua_rawseti(L, -2, (lua_Integer)a + 1);
    }
    ntk_mat v1 = lntk_view(x1), v2 = x2 ? lntk_view(x2) : (ntk_mat){0, 0, NULL};
    lntk_progress prog;
    lntk_progress_begin(L, &prog, oi);
    self->busy++;
    st = ntk_net_ntk(ctx, net, &v1, x2 ? &v2 : NULL, &o, outs);
    self->busy--;
    lntk_progress_end(L, &prog);
    if (st) return lntk_error(L, st);
    return 1;
}

static size_t count_arg(lua_State *L, int idx, ntk_net *net, const char *what)
{
    if (lua_type(L, idx) == LUA_TNUMBER) return lntk_checksize(L, idx, what);
    return lntk_checkinput(L, idx, ntk_net_input_dim(net), what)->rows;
}

static int n_ntk_plan(lua_State *L)
{
    ntk_net *net = checknet(L, 1)->net;
    size_t n1 = count_arg(L, 2, net, "X1"), n2 = 0;
    int oi = 0;
    if (lntk_testmatrix(L, 3) || lua_type(L, 3) == LUA_TNUMBER) {
        n2 = count_arg(L, 3, net, "X2");
        luaL_argcheck(L, n2 > 0, 3, "X2 must have at least one row");
        if (!lua_isnoneornil(L, 4)) oi = 4;
    } else if (!lua_isnoneornil(L, 3)) {
        oi = 3;
    }
    if (oi) luaL_checktype(L, oi, LUA_TTABLE);
    ntk_kernel_opts o;
    kernel_opts(L, oi, &o);
    ntk_plan plan;
    ntk_status st = ntk_net_ntk_plan(lntk_ctx(L), net, n1, n2, &o, &plan);
    /* Options are checked above, so an overflow is the sample count's. */
    if (st == NTK_ERR_OVERFLOW) return luaL_argerror(L, 2, ntk_ctx_error(lntk_ctx(L)));
    if (st) return lntk_error(L, st);
    size_t rows, cols, count;
    if ((st = ntk_kernel_shape(lntk_ctx(L), net, n1, n2, &o, &rows, &cols, &count)))
        return lntk_error(L, st);
    lua_createtable(L, 0, 8);
    lua_pushstring(L, plan.method == NTK_METHOD_JACOBIAN ? "jacobian" : "structured");
    lua_setfield(L, -2, "method");
    lua_pushnumber(L, plan.flops);
    lua_setfield(L, -2, "flops");
    lua_pushinteger(L, (lua_Integer)plan.memory);
    lua_setfield(L, -2, "memory");
    lua_pushinteger(L, (lua_Integer)plan.chunk);
    lua_setfield(L, -2, "chunk");
    lua_pushnumber(L, plan.flops_jacobian);
    lua_setfield(L, -2, "flops_jacobian");
    lua_pushnumber(L, plan.flops_structured);
    lua_setfield(L, -2, "flops_structured");
    lua_pushnumber(L, (double)rows * (double)cols * (double)count * sizeof(double));
    lua_setfield(L, -2, "output_bytes");
    return 1;
}

static int n_tostring(lua_State *L)
{
    lntk_net *n = luaL_checkudata(L, 1, LNTK_NET);
    if (!n->net) {
        lua_pushliteral(L, "[ntk.Net (closed)]");
        return 1;
    }
    ntk_net *net = n->net;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_pushfstring(L, "ntk.Net: MLP ");
    luaL_addvalue(&b);
    size_t d = ntk_net_depth(net);
    for (size_t l = 0; l <= d; l++) {
        lua_pushfstring(L, "%s%I", l ? " -> " : "", (lua_Integer)ntk_net_width(net, l));
        luaL_addvalue(&b);
        if (l > 0 && l < d) {
            lua_pushfstring(L, " (%s)", ntk_act_name(ntk_net_act(net, l)));
            luaL_addvalue(&b);
        }
    }
    lua_pushfstring(L, "\n  parameterization %s, weight_std %f, bias_std %f, %I parameters",
                    ntk_param_name(ntk_net_param(net)), ntk_net_weight_std(net),
                    ntk_net_bias_std(net), (lua_Integer)ntk_net_num_params(net));
    luaL_addvalue(&b);
    luaL_pushresult(&b);
    return 1;
}

ntk_net *lntk_checknet(lua_State *L, int idx) { return checknet(L, idx)->net; }

ntk_net **lntk_newnet(lua_State *L) { return &newnet(L)->net; }

void lntk_net_hold(lua_State *L, int idx, int delta) { checknet(L, idx)->busy += delta; }

static const luaL_Reg module_fns[] = {
    {"mlp", l_mlp},
    {NULL, NULL},
};

static const luaL_Reg methods[] = {
    {"copy", n_copy},
    {"num_params", n_num_params},
    {"depth", n_depth},
    {"input_dim", n_input_dim},
    {"output_dim", n_output_dim},
    {"sizes", n_sizes},
    {"activations", n_activations},
    {"parameterization", n_parameterization},
    {"weight_std", n_weight_std},
    {"bias_std", n_bias_std},
    {"params", n_params},
    {"set_params", n_set_params},
    {"layer", n_layer},
    {"set_layer", n_set_layer},
    {"forward", n_forward},
    {"jacobian", n_jacobian},
    {"ntk", n_ntk},
    {"ntk_plan", n_ntk_plan},
    {NULL, NULL},
};

static const luaL_Reg metamethods[] = {
    {"__tostring", n_tostring},
    {"__gc", n_release},
    {NULL, NULL},
};

void lntk_open_net(lua_State *L, int ctx_idx)
{
    lntk_setfuncs(L, ctx_idx, module_fns);
    lntk_newclass(L, ctx_idx, LNTK_NET, "Net", metamethods, methods);
}
