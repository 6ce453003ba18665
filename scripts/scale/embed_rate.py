"""Embedding throughput per core (real embedder, onnx int8, one text per call) on ~10k real-sentence chunks; saves the vectors."""
import json, sys, time, tempfile, shutil
from pathlib import Path
import numpy as np
from rag.config import Settings
from rag.bench import _synthetic_corpus
from rag.chunking import chunk_document
from rag.ingest import load_corpus
from rag.embedding import load_embedder
from rag.models import embedder_location, set_offline
set_offline()
s = Settings()
folder = Path(tempfile.mkdtemp()); _synthetic_corpus(folder, Path("seeds"), 10_000, s.chunk_size)
chunks = [c.text for d in load_corpus(folder) for c in chunk_document(d, s.chunk_size, s.chunk_overlap)]
shutil.rmtree(folder)
out = {"chunks": len(chunks)}
for threads in (1, 2):
    e = load_embedder(embedder_location(s.embedder), s.embedder, "auto", "auto", s.cache_dir, threads)
    sample = chunks[:2000]
    t = time.perf_counter(); e.embed(sample); dt = time.perf_counter() - t
    out[f"chunks_per_s_{threads}_threads"] = len(sample) / dt
    print(threads, len(sample) / dt, flush=True)
vecs = e.embed(chunks)
np.save("/tmp/scale/real10k.npy", vecs)
json.dump(out, open("/tmp/scale/embed_rate.json", "w"), indent=1); print(out)
