#!/usr/bin/env python3
"""Writes edge.jsonl beside this file: 37 hand-made lksg cases (each named in its
"note" key) in six 5-minute windows, for compare.py to check proof and lksg.sql on
what generated logs rarely hold. Run: python3 scripts/duckdb/make_edge.py"""
import copy
import json
from pathlib import Path

base = {"audit":{"dates":["2025-06-01","2026-09-01"],"score":80},"controls":[True]*8,"countries":["DE"],
        "grievance_mechanism":True,"risk_assessment":{"completed":True},"spend_eur":1000,
        "supplier_hashes":["0xaaaaaaaaaaaaaaaa"],"ubo_hashes":["0xbbbbbbbbbbbbbbbb"],"tier":1}


def ctx(**kw):
    c = copy.deepcopy(base)
    for k, v in kw.items():
        path = k.split("__"); o = c
        for p in path[:-1]: o = o[p]
        if v is DEL: o.pop(path[-1], None)
        else: o[path[-1]] = v
    return c
DEL = object()  # a key to remove
cases = [
  ("plain ok", {}),
  ("no policy_id", {}),
  ("other policy", {}),
  ("int ts", {}),
  ("sub-ms ts", {}),
  ("offset ts", {}),
  ("empty suppliers", dict(supplier_hashes=[])),
  ("missing suppliers", dict(supplier_hashes=DEL)),
  ("sanctioned", dict(supplier_hashes=["0x1", "0xe220a8397b1dcdaf"])),
  ("empty ubos", dict(ubo_hashes=[])),
  ("watchlisted ubo", dict(ubo_hashes=["0x88f63ca4bda2af35"])),
  ("missing countries", dict(countries=DEL)),
  ("high risk country", dict(countries=["DE", "KP"])),
  ("empty countries", dict(countries=[])),
  ("no assessment", dict(risk_assessment=DEL)),
  ("assessment false", dict(risk_assessment__completed=False)),
  ("assessment null", dict(risk_assessment__completed=None)),
  ("grievance false", dict(grievance_mechanism=False)),
  ("no grievance", dict(grievance_mechanism=DEL)),
  ("empty dates", dict(audit__dates=[])),
  ("missing dates", dict(audit__dates=DEL)),
  ("bad date", dict(audit__dates=["2026-01-01", "2025-13-01"])),
  ("rfc3339 dates", dict(audit__dates=["2024-01-01T12:00:00Z", "2026-10-01T23:59:59.999+02:00"])),
  ("800 days old", dict(audit__dates=["2024-08-24"])),
  ("400 days old score 55", dict(audit__dates=["2025-09-28"], audit__score=55)),
  ("400 days old no score", dict(audit__dates=["2025-09-28"], audit__score=DEL)),
  ("fresh no score", dict(audit__score=DEL)),
  ("fresh score 45", dict(audit__score=45)),
  ("stale score 45 many suppliers bad controls", dict(audit__dates=["2025-09-28"], audit__score=45,
      supplier_hashes=["0x1","0x2","0x3","0x4","0x5"], controls=[True]*5+[False]*3)),
  ("many suppliers 6/8 controls", dict(supplier_hashes=["0x1","0x2","0x3","0x4","0x5"], controls=[True]*6+[False]*2)),
  ("high spend empty controls", dict(spend_eur=1000000, controls=[])),
  ("missing spend bad controls", dict(spend_eur=DEL, controls=[False]*8)),
  ("null spend", dict(spend_eur=None, controls=[True]*5+[False]*3)),
  ("spend just under", dict(spend_eur=999999.5, controls=[False]*8)),
  ("missing controls many suppliers", dict(controls=DEL, supplier_hashes=["0x1","0x2","0x3","0x4","0x5"])),
  ("ubo watchlisted and stale score 45", dict(ubo_hashes=["0x88f63ca4bda2af35"], audit__dates=["2025-09-28"], audit__score=45)),
  ("fresh 45 bad controls high spend", dict(audit__score=45, spend_eur=2000000, controls=[False]*8)),
]
out = []
t0 = 1793577600000  # 2026-11-02T00:00:00Z
for rep in range(6):  # the same cases in several windows, with different request ids
    for i, (name, kw) in enumerate(cases):
        ts_ms = t0 + rep * 300_000 + i * 1000
        iso = "2026-11-02T00:%02d:%02d.000Z" % ((ts_ms - t0) // 60000, (ts_ms - t0) // 1000 % 60)
        rec = {"ts": iso, "request_id": f"edge-{rep}-{i:02d}", "policy_id": "lksg.v1", "context": ctx(**kw), "note": name}
        if name == "no policy_id": del rec["policy_id"]
        if name == "other policy": rec["policy_id"] = "lksg.v0"
        if name == "int ts": rec["ts"] = ts_ms
        if name == "sub-ms ts": rec["ts"] = iso[:-1] + "999Z"
        if name == "offset ts": rec["ts"] = iso[:11] + "02" + iso[13:-1] + "+02:00"
        out.append(json.dumps(rec))
    out.append("")  # a blank line, ignored
open(Path(__file__).resolve().parent / "edge.jsonl", "w").write("\n".join(out) + "\n")
