"""Retrieved passages (doc_id, start, end, score) for every eval question, as JSON on stdout."""
import json, sys, shutil, tempfile
from pathlib import Path
from rag.config import Settings
from rag.evaluate import load_items
from rag.models import get_embedder
from rag.retrieve import Retriever
from rag import steps
from rag.evaluate import has_fact

class E:  # just what steps.retrieve needs
    pass

def main(out, **over):
    base = Path(tempfile.mkdtemp())
    shutil.copytree("seeds", base / "corpus")
    s = Settings(corpus_dir=base / "corpus", index_dir=base / "index", **over)
    emb = get_embedder(s)
    try:
        from rag.store import sync
    except ImportError:
        from rag.index import sync
    index = sync(s, emb)
    e = E(); e.settings = s; e.retriever = Retriever(index, emb)
    rows = []; hit = tot = 0
    for item in load_items():
        d = steps.Draft(item.question, list(item.history), s.top_k, steps.Filter(), 0.0, standalone=item.question)
        steps.retrieve(e, d)
        if item.expected:
            tot += 1; hit += all(any(has_fact(p.text, f) for p in d.passages) for f in item.expected)
        rows.append([[p.chunk.doc_id, p.chunk.start, p.chunk.end, round(p.score, 4), round(p.similarity, 4)] for p in d.passages])
    Path(out).write_text(json.dumps(rows))
    print(out, len(rows), f"recall@k {hit}/{tot} = {hit/tot:.3f}")

if __name__ == "__main__":
    over = dict(a.split("=", 1) for a in sys.argv[2:])
    main(sys.argv[1], **over)
