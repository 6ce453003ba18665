"""ANN index sizes, recall@10 and latency at 1M 384-dim vectors (synthetic clustered, as rag bench)."""
import json, sys, time, statistics
import numpy as np, faiss
sys.path.insert(0, ".")
from rag.bench import _clustered

N, D, Q = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000, 384, 200
rng = np.random.default_rng(0)
t = time.time(); xb = _clustered(N, D, rng); xq = _clustered(Q, D, rng); print("data", time.time() - t, flush=True)
out = {"n": N, "dim": D, "queries": Q, "threads": faiss.omp_get_max_threads(), "rows": []}
flat = faiss.IndexFlatIP(D); flat.add(xb)
lat = []
gt = []
for q in xq:
    t0 = time.perf_counter(); _, I = flat.search(q[None], 10); lat.append(time.perf_counter() - t0); gt.append(set(I[0]))
def row(name, index, build_s, params=""):
    lat, rec = [], []
    for q, g in zip(xq, gt):
        t0 = time.perf_counter(); _, I = index.search(q[None], 10); lat.append(time.perf_counter() - t0)
        rec.append(len(g & set(I[0])) / 10)
    size = faiss.serialize_index(index).nbytes
    r = {"index": name, "params": params, "bytes_per_vector": size / N, "recall@10": float(np.mean(rec)),
         "p50_ms": statistics.median(lat) * 1000, "p95_ms": sorted(lat)[int(0.95 * (len(lat) - 1))] * 1000, "build_s": build_s}
    out["rows"].append(r); print(json.dumps(r), flush=True)
row("Flat", flat, 0.0)
del flat
nlist = int(4 * np.sqrt(N))
sample = xb[rng.choice(N, min(N, 64 * nlist), replace=False)]
for name, factory in (("IVF-Flat", f"IVF{nlist},Flat"), ("IVF-SQ8", f"IVF{nlist},SQ8"), ("IVF-PQ48", f"IVF{nlist},PQ48"), ("IVF-PQ96", f"IVF{nlist},PQ96")):
    t = time.time(); index = faiss.index_factory(D, factory, faiss.METRIC_INNER_PRODUCT); index.train(sample); index.add(xb); b = time.time() - t
    for nprobe in (16, 32, 64, 96, 128):
        index.nprobe = nprobe; row(name, index, b, f"nlist={nlist} nprobe={nprobe}")
    del index
t = time.time(); index = faiss.IndexHNSWFlat(D, 16, faiss.METRIC_INNER_PRODUCT); index.hnsw.efConstruction = 64; index.add(xb); b = time.time() - t
for ef in (16, 32, 64, 128, 256):
    index.hnsw.efSearch = ef; row("HNSW", index, b, f"M=16 efConstruction=64 ef={ef}")
json.dump(out, open(f"/tmp/scale/ann_{N}.json", "w"), indent=1)
