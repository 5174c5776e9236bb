"""circuitmap: the model-side science (transcoders, replacement model, attribution, pruning).

Knows nothing of Neo4j or Streamlit: it turns tensors into `records.GraphRecord`s."""

__version__ = "0.1.0"
