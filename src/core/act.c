#include "internal.h"

#include <math.h>
#include <string.h>

static const char *const act_names[NTK_ACT_COUNT] = {
    "identity", "relu", "tanh", "sigmoid", "erf", "gelu", "softplus", "sin",
};

const char *ntk_act_name(ntk_act act)
{
    return (unsigned)act < NTK_ACT_COUNT ? act_names[act] : "?";
}

ntk_status ntk_act_parse(ntk_ctx *ctx, const char *name, ntk_act *out)
{
    int i = ntk__lookup(act_names, NTK_ACT_COUNT, name);
    if (i < 0)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "unknown activation '%s' (expected identity, relu, tanh, "
                         "sigmoid, erf, gelu, softplus or sin)",
                         name ? name : "(null)");
    *out = (ntk_act)i;
    return NTK_OK;
}

static double sigmoid(double x)
{
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

void ntk_act_apply(ntk_act act, const double *x, size_t n, double *y,
                   double *dy)
{
    static const double inv_sqrt2 = 0.70710678118654752440;
    static const double two_over_sqrt_pi = 1.12837916709551257390;
    static const double inv_sqrt_2pi = 0.39894228040143267794;
    for (size_t k = 0; k < n; k++) {
        double v = x[k], f, d;
        switch (act) {
        case NTK_ACT_RELU:
            f = v > 0 ? v : 0.0;
            d = v > 0 ? 1.0 : 0.0;
            break;
        case NTK_ACT_TANH:
            f = tanh(v);
            d = 1.0 - f * f;
            break;
        case NTK_ACT_SIGMOID:
            f = sigmoid(v);
            d = f * (1.0 - f);
            break;
        case NTK_ACT_ERF:
            f = erf(v);
            d = two_over_sqrt_pi * exp(-v * v);
            break;
        case NTK_ACT_GELU: {
            double cdf = 0.5 * erfc(-v * inv_sqrt2);
            f = v * cdf;
            d = cdf + v * inv_sqrt_2pi * exp(-0.5 * v * v);
            break;
        }
        case NTK_ACT_SOFTPLUS:
            f = v > 0 ? v + log1p(exp(-v)) : log1p(exp(v));
            d = sigmoid(v);
            break;
        case NTK_ACT_SIN:
            f = sin(v);
            d = cos(v);
            break;
        case NTK_ACT_IDENTITY:
        default:
            f = v;
            d = 1.0;
            break;
        }
        if (y) y[k] = f;
        if (dy) dy[k] = d;
    }
}

static const char *const param_names[] = {"ntk", "standard"};

const char *ntk_param_name(ntk_param p)
{
    return (unsigned)p < 2 ? param_names[p] : "?";
}

ntk_status ntk_param_parse(ntk_ctx *ctx, const char *name, ntk_param *out)
{
    int i = ntk__lookup(param_names, 2, name);
    if (i < 0)
        return ntk__fail(ctx, NTK_ERR_INVALID,
                         "unknown parameterization '%s' (expected ntk or standard)",
                         name ? name : "(null)");
    *out = (ntk_param)i;
    return NTK_OK;
}
