"""1M vectors made from real chunk embeddings (each a normalised mix of two of 17.6k real ones),
queries = 200 held-out real chunk embeddings: recall@10 vs exact, bytes/vector, latency."""
import json, sys, time, statistics
import numpy as np, faiss
real = np.load("/tmp/scale/real10k.npy").astype(np.float32)
rng = np.random.default_rng(1)
perm = rng.permutation(len(real)); xq = real[perm[:200]]; base = real[perm[200:]]
N, D = int(sys.argv[1]), real.shape[1]
i, j = rng.integers(0, len(base), N), rng.integers(0, len(base), N)
a = rng.uniform(0.3, 0.7, (N, 1)).astype(np.float32)
xb = a * base[i] + (1 - a) * base[j]; xb /= np.linalg.norm(xb, axis=1, keepdims=True)
out = {"n": N, "dim": D, "rows": []}
flat = faiss.IndexFlatIP(D); flat.add(xb)
gt = [set(flat.search(q[None], 10)[1][0]) for q in xq]
def row(name, index, build_s, params=""):
    lat, rec = [], []
    for q, g in zip(xq, gt):
        t0 = time.perf_counter(); _, I = index.search(q[None], 10); lat.append(time.perf_counter() - t0)
        rec.append(len(g & set(I[0])) / 10)
    r = {"index": name, "params": params, "bytes_per_vector": faiss.serialize_index(index).nbytes / N,
         "recall@10": float(np.mean(rec)), "p50_ms": statistics.median(lat) * 1000, "build_s": build_s}
    out["rows"].append(r); print(json.dumps(r), flush=True)
row("Flat", flat, 0.0); del flat
t = time.time(); index = faiss.IndexHNSWFlat(D, 16, faiss.METRIC_INNER_PRODUCT); index.hnsw.efConstruction = 100; index.add(xb); b = time.time() - t
for ef in (32, 64, 128, 256):
    index.hnsw.efSearch = ef; row("HNSW", index, b, f"M=16 efConstruction=100 ef={ef}")
del index
nlist = int(4 * np.sqrt(N)); sample = xb[rng.choice(N, min(N, 64 * nlist), replace=False)]
for name, factory in (("IVF-SQ8", f"IVF{nlist},SQ8"), ("IVF-PQ48", f"IVF{nlist},PQ48")):
    t = time.time(); index = faiss.index_factory(D, factory, faiss.METRIC_INNER_PRODUCT); index.train(sample); index.add(xb); b = time.time() - t
    for nprobe in (16, 32, 64, 96):
        index.nprobe = nprobe; row(name, index, b, f"nlist={nlist} nprobe={nprobe}")
    del index
json.dump(out, open(f"/tmp/scale/ann_real_{N}.json", "w"), indent=1)
