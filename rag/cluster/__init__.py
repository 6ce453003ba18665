"""Scale-out: ingestion as a Ray Data pipeline into Milvus (``rag.cluster.ingest``), answers
from Ray Serve replicas (``rag.cluster.serve``), and local servers for tests and benches
(``rag.cluster.local``). Needs the ``cluster`` extra: ``pip install -e '.[cluster]'``."""
