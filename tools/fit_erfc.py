#!/usr/bin/python3
"""The coefficients of backend/activation.c's erfc, fitted here.

    /usr/bin/python3 tools/fit_erfc.py

GELU's exact form is x * Phi(x) = x/2 * erfc(-x/sqrt(2)). LLVM has no erf
intrinsic, and libm's erff is a call per element, so the backend computes
erfc(z) for z >= 0 as

    erfc(z) = t * S(t) * exp(-z^2),   t = 1 / (1 + P z),   P = 1/2

(the kind of change of variable of Abramowitz & Stegun 7.1.26, whose
P = 0.3275911 and 5 coefficients give only 1.5e-7 absolute error: it maps z
in [0, inf) to t in (0, 1]). S(t) = erfcx(z) / t is smooth on (0, 1], so a
polynomial of degree DEG fits it: least squares on Chebyshev points of t
for z in [0, ZMAX],
weighted by 1/S (relative error), reweighted (Lawson's iteration towards
the minimax fit). Beyond ZMAX = 10.5, exp(-z^2) is below float's smallest
denormal and erfc is 0 whatever S is. Prints the fit's relative error in
double and the coefficients rounded to float, lowest degree first.

Tried (relative error of erfcx evaluated in float, all sources included):
P = 0.3275911, 0.4, 0.47047, 0.5 with degrees 8-10 all land at 3.2e-7 to
4.4e-7, the rounding of t and of Horner's steps; P = 1/2 with degree 8 is
as good as any and the cheapest.
"""
import math

import torch

P = 0.5
DEG = 8
ZMAX = 10.5


def fit(p=P, deg=DEG, zmax=ZMAX, iters=60, n=8000):
    torch.set_default_dtype(torch.float64)
    tmin = 1 / (1 + p * zmax)
    k = torch.arange(n, dtype=torch.float64)
    t = tmin + (1 - tmin) * (0.5 - 0.5 * torch.cos(math.pi * (k + 0.5) / n))
    z = (1 / t - 1) / p
    s = torch.special.erfcx(z) / t
    a = torch.stack([t ** i for i in range(deg + 1)], 1)
    w = 1 / s.abs()
    for _ in range(iters):
        c = torch.linalg.lstsq(a * w[:, None], (s * w)[:, None]).solution[:, 0]
        err = (a @ c - s) / s
        w = w * torch.sqrt(err.abs() / err.abs().max() + 1e-3)
    # the float coefficients, evaluated in double: what rounding them costs
    cf = c.to(torch.float32).to(torch.float64)
    errf = (a @ cf - s) / s
    return c, float(err.abs().max()), float(errf.abs().max())


def main():
    c, e, ef = fit()
    print(f"P = {P}, degree {DEG}, z in [0, {ZMAX}]: max relative error of S "
          f"{e:.3g} (double coefficients), {ef:.3g} (float coefficients)")
    print("static const float erfc_s[%d] = {" % (DEG + 1))
    print(",\n".join("    %.9ef" % float(torch.tensor(float(x)).to(torch.float32)) for x in c) + "};")


if __name__ == "__main__":
    main()
