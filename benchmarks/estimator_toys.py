"""Toy coverage of the default estimators (s2lib.stats.toys.coverage, 200 toys per point).

    python benchmarks/estimator_toys.py [point index ...]
"""
import sys, time
from s2lib.stats import toys
pts = [("recoil", dict(mean=0.3, cv=0.25, n_frames=1000, empty=0.2)),
       ("recoil", dict(mean=0.3, cv=0.0, n_frames=10000, empty=0.0)),
       ("recoil", dict(mean=2.0, cv=0.25, n_frames=100, empty=0.05)),
       ("recoil", dict(mean=5.0, cv=0.15, n_frames=1000, empty=0.1, pileup=0.03, xray_mean=8.0)),
       ("recoil", dict(mean=50.0, cv=0.25, n_frames=100000, empty=0.2, pileup=0.02, xray_mean=20.0)),
       ("xray", dict(mean=2.0, n=100, junk=0.3)),
       ("xray", dict(mean=8.0, n=3000, junk=0.05, double=0.03)),
       ("xray", dict(mean=2.0, n=400, junk=0.8, junk_lo=0.0, junk_scale=0.03))]
sel = [int(a) for a in sys.argv[1:]] or range(len(pts))
for i in sel:
    kind, sh = pts[i]
    t = time.time()
    c = toys.coverage(kind, 200, seed=100 + i, **sh)
    print(f"{kind:6s} {sh}: toys {c['n_toys']} (ok/poor/failed {c['n_ok']}/{c['n_poor']}/{c['n_failed']}), "
          f"coverage95 {c['coverage95']:.3f}±{c['coverage_err']:.3f}, bias {100*c['bias_rel']:+.2f}±{100*c['bias_rel_err']:.2f} %, "
          f"pull width {c['pull_width']:.3f}±{c['pull_width_err']:.3f}, err/spread {c['err_over_spread']:.3f} [{time.time()-t:.0f} s]", flush=True)
