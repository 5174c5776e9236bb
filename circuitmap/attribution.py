"""Attribution graphs: direct linear effects between the nodes of a local replacement model.

Nodes, in adjacency order (circuit-tracer's): feature nodes (active features, layer-major), error
nodes (layer-major, then position), token nodes (one per position), logit nodes (most likely next
tokens until `desired_logit_prob` cumulative probability, at most `max_n_logits`).

The edge s -> t is the direct effect of s on t's input through the frozen linear paths (residual
stream, attention OV with frozen patterns, norms with frozen scales; no MLPs but a transcoder's skip
connection). A target's row comes from pulling its input direction back through those paths and
dotting the result, at each source's output site, with the source's output vector:
- feature target: its encoder row W_enc[l, f], injected at its input site at layer l;
- logit target: the demeaned unembedding column W_U[:, t] - mean_v W_U[:, v], injected at the
  final norm's output (so it passes the frozen final norm); the softcap (Gemma-2) is ignored;
- feature source: activation x decoder vector, summed over every layer it writes to (CLT);
- error source: the error vector; token source: the token's embedding.
So each feature's pre-activation minus its encoder bias equals the sum of its incoming edges (plus
constants: model and decoder biases, positional embeddings, the MLP output at a zeroed position 0).

The pull-back is written out by hand instead of autograd: one forward pass of the real model at
batch 1 records patterns and scales, then each batch of targets is pulled back through the linear
map with batched matmuls only over the layers and positions that can reach the batch's targets
(causal attention: nothing at a later position or layer reaches an earlier target); batches are
formed in layer-major order so they span few layers and positions. Feature sources are scored per
output layer with one bmm over position-wise chunks of their decoder vectors (see
`DirectEffects._pack_decoders`), so no [batch, sources, d] gather is ever formed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from circuitmap.models import NormSpec, ov_transpose
from circuitmap.pruning import influence
from circuitmap.replacement import PromptRun, ReplacementModel


@dataclass
class AttributionGraph:
    """An unpruned attribution graph (tensors on CPU).

    Only feature and logit nodes have inputs, so the graph is stored as their rows of the
    adjacency matrix, `rows [k + m, N]`: the k feature nodes' rows, then the m logit nodes'
    (`row_nodes` maps a row to its node). `adjacency` builds the dense `[N, N]` matrix on
    demand; error and token rows would be zeros, and N grows with layers x tokens, so long
    prompts never form it."""

    input_ids: torch.Tensor  # [n]
    active_features: torch.Tensor  # [K, 3] (layer, position, index) of every active feature
    activation_values: torch.Tensor  # [K]
    selected_features: torch.Tensor  # [k] indices into active_features: the feature nodes
    logit_tokens: torch.Tensor  # [m] token ids of the logit nodes
    logit_probabilities: torch.Tensor  # [m]
    rows: torch.Tensor  # [k + m, N] float32, [target row, source node]
    n_layers: int

    @property
    def n_pos(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.selected_features.shape[0])

    @property
    def n_logits(self) -> int:
        return int(self.logit_tokens.shape[0])

    @property
    def error_offset(self) -> int:
        return self.n_features

    @property
    def token_offset(self) -> int:
        return self.n_features + self.n_layers * self.n_pos

    @property
    def logit_offset(self) -> int:
        return self.token_offset + self.n_pos

    @property
    def n_nodes(self) -> int:
        return self.logit_offset + self.n_logits

    @property
    def row_nodes(self) -> torch.Tensor:
        """[k + m] the node of each row of `rows`."""
        logits = torch.arange(self.logit_offset, self.n_nodes)
        return torch.cat([torch.arange(self.n_features), logits])

    @property
    def adjacency(self) -> torch.Tensor:
        """The dense adjacency matrix [N, N] float32, [target, source] (a new tensor)."""
        dense = torch.zeros(self.n_nodes, self.n_nodes)
        dense[self.row_nodes] = self.rows
        return dense

    def logit_weights(self) -> torch.Tensor:
        """[N] the logit probabilities on the logit nodes, zero elsewhere."""
        weights = torch.zeros(self.n_nodes)
        weights[self.logit_offset :] = self.logit_probabilities
        return weights


@dataclass(frozen=True)
class _Chunks:
    """The feature sources writing to one output layer, cut into chunks of one position."""

    width: int
    decoders: torch.Tensor  # [chunks, width, d] activation-scaled decoder vectors
    positions: torch.Tensor  # [chunks] ascending
    rows: torch.Tensor  # [chunks * width] score-buffer row of each slot


#: The narrowest chunk: every position with a feature takes at least this many rows, so a
#: long prompt with a few features per layer and position pads each layer's decoders by up to
#: `MIN_CHUNK_WIDTH x n` rows of zeros (docs/precision.md has the padding's cost at depth).
MIN_CHUNK_WIDTH = 4


def _chunk_width(counts: torch.Tensor) -> int:
    """Rows per chunk for features counted per position: the widest (better matmuls) that pads
    the total by at most a quarter, at least `MIN_CHUNK_WIDTH`."""
    total = int(counts.sum())
    for width in (256, 128, 64, 32, 16, 8):
        if int((-(-counts // width)).sum()) * width <= 1.25 * total:
            return width
    return MIN_CHUNK_WIDTH


@dataclass(frozen=True)
class _Norm:
    spec: NormSpec
    scale: torch.Tensor  # [n, 1]

    def transpose(self, grad: torch.Tensor) -> torch.Tensor:
        return self.spec.transpose(grad, self.scale[: grad.shape[1]])


def _transpose(norm: _Norm | None, grad: torch.Tensor) -> torch.Tensor:
    return grad if norm is None else norm.transpose(grad)


class DirectEffects:
    """Rows of the adjacency matrix for batches of targets, by pulling their input directions back
    through the frozen linear model of one prompt.

    Source columns: the K active features, then errors (layer-major), then tokens."""

    def __init__(self, rm: ReplacementModel, run: PromptRun, features: torch.Tensor, values):
        a, tc = rm.adapter, rm.transcoder
        self.n_layers, self.n_pos = a.n_layers, run.n_pos
        # Pull-backs are summed in float32 whatever the model's dtype (residual stream, norms,
        # scores); the big products (attention OV, decoder scores) run in the weights' own dtype
        # (bfloat16 matmuls are several times faster) with float32 results added up.
        self.dtype, self.device = torch.float32, a.device
        n, L = self.n_pos, self.n_layers
        self.n_features = int(features.shape[0])
        self.error_offset = self.n_features
        self.token_offset = self.n_features + L * n
        self.n_cols = self.token_offset + n

        def norm(module, spec=None) -> _Norm | None:
            if module is None:
                return None
            spec = spec or a.norm_spec(module)
            return _Norm(spec, run.scale(spec, module))

        def cast(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.detach().to(self.device, self.dtype)

        self.final_norm = norm(a.final_norm)
        self.attn_norm = [norm(a.attn_norm(i)) for i in range(L)]
        self.post_attn_norm = [norm(a.post_attn_norm(i)) for i in range(L)]
        self.ov = [a.ov_weights(i) for i in range(L)]
        self.patterns = run.patterns
        self.in_norm = [
            norm(a.mlp_norm(i), a.input_site_norm(i, rm.input_site))
            if rm.input_site != "resid_mid"
            else None
            for i in range(L)
        ]
        self.out_norm = [
            norm(a.post_mlp_norm(i), a.output_site_norm(i, rm.output_site))
            if a.output_site_norm(i, rm.output_site) is not None
            else None
            for i in range(L)
        ]
        self.w_skip = [cast(tc.W_skip[i]) if tc.W_skip is not None else None for i in range(L)]
        self.tokens = cast(run.token_vectors)
        errors = cast(run.errors).clone()
        if rm.zero_first_position:
            errors[:, 0] = 0
        self.errors = errors
        self.d_model = a.d_model
        self._pack_decoders(tc, features, values)

    def _pack_decoders(self, tc, features: torch.Tensor, values: torch.Tensor) -> None:
        """Lay the feature sources out for batched scoring.

        Scores live in a position-major buffer (rows ordered by position, then layer, index). At
        one position the features writing to output layer m are consecutive rows, so per m they
        are cut into chunks of `width_m` rows at one position each; a chunk is scored by one
        matmul with that position's gradient, all chunks of m by one bmm. Chunks are padded with
        zero decoders (their rows may run into the next features', which adding 0 leaves alone)."""
        n, L, K = self.n_pos, self.n_layers, len(features)
        layer, pos = features[:, 0].cpu(), features[:, 1].cpu()  # sorted (layer, pos, index)
        by_pos = torch.argsort(pos, stable=True)  # position-major order of the features
        self.row_of = torch.empty(K, dtype=torch.long)
        self.row_of[by_pos] = torch.arange(K)
        self.row_of = self.row_of.to(self.device)
        index = [features[(layer == s).to(features.device), 2] for s in range(L)]
        scale = [values[(layer == s).to(features.device)] for s in range(L)]
        self.chunks: list[_Chunks | None] = []
        for m in range(L):
            writers = [s for s in range(m + 1) if m in tc.output_layers(s) and len(index[s])]
            if not writers:
                self.chunks.append(None)
                continue
            cols = torch.cat([torch.nonzero(layer == s).flatten() for s in writers])
            vec = torch.cat(  # the writers' decoder vectors into layer m, times activations
                [
                    tc.decoder_vectors(s, index[s], m - tc.output_layers(s).start)
                    * scale[s][:, None]
                    for s in writers
                ]
            ).detach()
            order = torch.argsort(self.row_of.cpu()[cols])  # position-major
            cols, vec = cols[order], vec[order.to(vec.device)]
            counts = torch.bincount(pos[cols], minlength=n)
            width = _chunk_width(counts)
            per_pos = -(-counts // width)
            rank = torch.arange(len(cols)) - (counts.cumsum(0) - counts)[pos[cols]]
            chunk = (per_pos.cumsum(0) - per_pos)[pos[cols]] + rank // width
            opts = {"dtype": tc.dtype, "device": self.device}
            dec = torch.zeros(int(per_pos.sum()), width, self.d_model, **opts)
            dec[chunk.to(self.device), (rank % width).to(self.device)] = vec.to(**opts)
            first_row = self.row_of.cpu()[cols][rank % width == 0]  # each chunk's first row
            rows = (first_row[:, None] + torch.arange(width)).flatten()
            chunk_pos = torch.repeat_interleave(torch.arange(n), per_pos)
            self.chunks.append(_Chunks(width, dec, chunk_pos.to(self.device), rows.to(self.device)))
        self.pad = max((c.width for c in self.chunks if c is not None), default=0)

    def rows(
        self,
        layers: torch.Tensor,
        positions: torch.Tensor,
        vectors: torch.Tensor,
        out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Direct effects [B, n_cols] on B targets, written into `out` (zeros, any device) if
        given. A target is (layer, position, input vector): layer < n_layers reads that layer's
        input site; layer == n_layers is a logit direction read at the final norm's output."""
        L, B = self.n_layers, len(layers)
        if out is None or out.device != self.device:
            result = torch.zeros(B, self.n_cols, device=self.device)
        else:
            result = out[:, : self.n_cols]
        layers, positions = layers.to(self.device), positions.to(self.device)
        vectors = vectors.to(self.device, self.dtype)
        b_all = torch.arange(B, device=self.device)
        n_used = int(positions.max()) + 1
        g = torch.zeros(B, n_used, vectors.shape[1], dtype=self.dtype, device=self.device)
        logit = layers == L
        live = bool(logit.any())
        if live:
            b, p = b_all[logit], positions[logit]
            g[b, p] = self.final_norm.spec.transpose(vectors[logit], self.final_norm.scale[p])
        top = L - 1 if live else int(layers.max())
        # Feature-source scores, position-major [K + padding, B].
        scores = torch.zeros(self.n_features + self.pad, B, device=self.device)
        for layer in range(top, -1, -1):
            g_in = None
            if live:  # the MLP branch: sources writing to this layer's output site, skip path
                g_site = _transpose(self.out_norm[layer], g)
                self._score_sources(result, scores, g_site, layer)
                if self.w_skip[layer] is not None:
                    g_in = g_site @ self.w_skip[layer].T
            here = layers == layer
            if here.any():
                g_in = torch.zeros_like(g) if g_in is None else g_in
                g_in.index_put_((b_all[here], positions[here]), vectors[here], accumulate=True)
                live = True
            if g_in is not None:
                g = g + _transpose(self.in_norm[layer], g_in)
            if live:  # the attention branch
                g_attn = _transpose(self.post_attn_norm[layer], g)
                w_v, w_o = self.ov[layer]
                pattern = self.patterns[layer][:, :n_used, :n_used]
                g_ov = ov_transpose(pattern, w_v, w_o, g_attn.to(w_o.dtype)).to(self.dtype)
                g = g + self.attn_norm[layer].transpose(g_ov)
        tok = self.token_offset
        result[:, tok : tok + n_used] = (g * self.tokens[:n_used]).sum(-1)
        result[:, : self.n_features] = scores[self.row_of].T
        if out is not None and result.data_ptr() != out.data_ptr():
            out[:, : self.n_cols] = result
        return result

    def _score_sources(self, result, scores: torch.Tensor, g_site: torch.Tensor, m: int) -> None:
        """Score the sources at output layer m's site: its errors, and every feature writing
        to it (one batched matmul over positions)."""
        n_used, B = g_site.shape[1], g_site.shape[0]
        start = self.error_offset + m * self.n_pos
        result[:, start : start + n_used] = (g_site * self.errors[m, :n_used]).sum(-1)
        if self.chunks[m] is None:
            return
        c = self.chunks[m]
        n_chunks = int(torch.searchsorted(c.positions, n_used))  # chunks this batch reaches
        g_chunks = g_site.permute(1, 2, 0)[c.positions[:n_chunks]]  # [chunks, d, B]
        product = torch.bmm(c.decoders[:n_chunks], g_chunks.to(c.decoders.dtype))  # [chunks, w, B]
        scores.index_add_(0, c.rows[: n_chunks * c.width], product.view(-1, B).to(scores.dtype))


def logit_targets(
    rm: ReplacementModel, run: PromptRun, max_n_logits: int, desired_logit_prob: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(token ids [m], probabilities [m], demeaned unembedding directions [m, d]): the most likely
    next tokens until `desired_logit_prob` cumulative probability, at most `max_n_logits`."""
    probs = torch.softmax(run.logits[-1].float(), dim=-1)
    top_p, top_ids = probs.topk(min(max_n_logits, probs.shape[0]))
    cutoff = int(torch.searchsorted(torch.cumsum(top_p, 0), desired_logit_prob)) + 1
    ids = top_ids[:cutoff]
    w_u = rm.adapter.W_U
    vectors = w_u[:, ids].T.float() - _column_mean(w_u)
    return ids.cpu(), top_p[:cutoff].cpu(), vectors


def _column_mean(w: torch.Tensor, chunk: int = 16384) -> torch.Tensor:
    """Mean over columns in float32: directly for a float32 matrix, else summed in float32 over
    column chunks (a 256k-token vocabulary in bfloat16 would lose digits, and one float32 copy of
    it is gigabytes)."""
    if w.dtype == torch.float32:
        return w.mean(dim=1)
    total = torch.zeros(w.shape[0], device=w.device)
    for start in range(0, w.shape[1], chunk):
        total += w[:, start : start + chunk].float().sum(dim=1)
    return total / w.shape[1]


@torch.no_grad()
def attribute(
    rm: ReplacementModel,
    input_ids: torch.Tensor,
    *,
    max_n_logits: int = 10,
    desired_logit_prob: float = 0.95,
    batch_size: int = 256,
    max_feature_nodes: int | None = None,
    update_interval: int = 4,
    run: PromptRun | None = None,
    compute_batch_size: int | None = None,
) -> AttributionGraph:
    """The unpruned attribution graph of one prompt.

    With `max_feature_nodes`, only that many features become nodes: the most influential on the
    logits first, influence estimated from the rows computed so far and refreshed every
    `update_interval` batches (circuit-tracer's procedure). `compute_batch_size` (default
    `batch_size`) is how many targets are pulled back at once: a smaller one takes less memory
    (`GraphBuilder` picks it to fit) and leaves the graph the same, since `batch_size` alone
    sets when influence is refreshed. Without `run`, the prompt is recorded lean
    (`ReplacementModel.run`); a lean run is consumed: its activations, sites and errors are
    released as soon as they are read (only the patterns stay until the rows are done)."""
    if batch_size < 1 or (compute_batch_size is not None and compute_batch_size < 1):
        raise ValueError("batch_size must be at least 1")
    step = compute_batch_size or batch_size
    run = run or rm.run(input_ids, last_logits_only=True, lean=True)
    L, n = rm.adapter.n_layers, run.n_pos
    features = run.activations.nonzero()  # [K, 3] layer-major, then position, then index
    values = run.activations[tuple(features.T)]
    if run.lean:  # a record for attribution only: each dense tensor is released once read
        run.activations = None  # type: ignore[assignment]
    effects = DirectEffects(rm, run, features, values)
    if run.lean:
        run.site_in = run.site_out = run.reconstruction = run.errors = None  # type: ignore[assignment]
    tokens, probs, logit_vecs = logit_targets(rm, run, max_n_logits, desired_logit_prob)
    K, m = int(features.shape[0]), int(tokens.shape[0])
    k = K if max_feature_nodes is None else min(max_feature_nodes, K)
    tc = rm.transcoder

    n_cols, n_nodes = effects.n_cols, k + (L + 1) * n + m

    def compute_into(dest: torch.Tensor, layers, positions, vectors) -> None:
        for i in range(0, len(layers), step):
            b = slice(i, min(i + step, len(layers)))
            effects.rows(layers[b], positions[b], vectors[b], out=dest[b])

    logits = (torch.full((m,), L), torch.full((m,), n - 1), logit_vecs)
    if k == K:  # every feature is a node: rows go straight into the graph's rows
        graph_rows = torch.zeros(k + m, n_nodes)
        compute_into(graph_rows[k:], *logits)
        encoders = tc.encoder_rows(features[:, 0], features[:, 2])
        compute_into(graph_rows[:K], features[:, 0].cpu(), features[:, 1].cpu(), encoders)
        selected = torch.arange(K)
    else:
        # Rows over every source column, one block per refresh (the logits', then the features'
        # in the order visited), so each block can be freed as soon as it is copied into the
        # graph's rows.
        blocks = [torch.zeros(m, n_cols)]
        compute_into(blocks[0], *logits)
        visit = torch.empty(0, dtype=torch.long)
        while len(visit) < k:
            size = min(update_interval * batch_size, k - len(visit))
            chunk = _next_by_influence(blocks, visit, probs, K, size)
            chunk = chunk.sort().values  # layer-major order: batches span few layers and positions
            f = features[chunk].cpu()
            blocks.append(torch.zeros(len(chunk), n_cols))
            # Encoder rows of the visited features only (a cap visits few of them).
            encoders = tc.encoder_rows(features[chunk, 0], features[chunk, 2])
            compute_into(blocks[-1], f[:, 0], f[:, 1], encoders)
            visit = torch.cat([visit, chunk])
        del effects
        selected, order = visit.sort()
        graph_rows = _graph_rows(blocks, selected, order, K, n_nodes)
    return AttributionGraph(
        input_ids=run.input_ids,
        active_features=features.cpu(),
        activation_values=values.float().cpu(),
        selected_features=selected,
        logit_tokens=tokens,
        logit_probabilities=probs,
        rows=graph_rows,
        n_layers=L,
    )


def _graph_rows(
    blocks: list[torch.Tensor], selected: torch.Tensor, order: torch.Tensor, K: int, n_nodes: int
) -> torch.Tensor:
    """The graph's rows [k + m, n_nodes] from the selection's blocks (logits, then features in
    visit order, over every source column), emptying `blocks` as it goes: each block is freed
    once copied, and the graph's rows are touched only as they are written, so the two never
    both sit in memory whole."""
    k, m = len(selected), len(blocks[0])
    n_cols = blocks[0].shape[1]
    keep = torch.cat([selected, torch.arange(K, n_cols)])
    graph_rows = torch.empty(k + m, n_nodes)
    graph_rows[:, len(keep) :] = 0  # logit columns: logits are nobody's source
    rank = torch.empty(k, dtype=torch.long)  # visit number -> row of the graph
    rank[order] = torch.arange(k)
    targets = [torch.arange(k, k + m)]
    done = 0
    for block in blocks[1:]:
        targets.append(rank[done : done + len(block)])
        done += len(block)
    for i in range(len(blocks)):
        block, rows = blocks[i], targets[i]
        for j in range(0, len(block), 256):
            graph_rows[rows[j : j + 256], : len(keep)] = block[j : j + 256][:, keep]
        blocks[i] = None  # type: ignore[call-overload]
        del block
    return graph_rows


def _next_by_influence(blocks, visited, probs, n_features, size) -> torch.Tensor:
    """The `size` unvisited features with the most influence on the logits so far. `blocks` hold
    the logits' rows, then the visited features' (the first `n_features` columns are features)."""
    m = len(probs)
    row_nodes = torch.cat([torch.full((m,), -1), visited])  # logits are no source column
    start = torch.cat([probs, torch.zeros(len(visited))])
    scores = influence(blocks, start, row_nodes)[:n_features]
    ranked = torch.argsort(scores, descending=True)
    unvisited = torch.ones(n_features, dtype=torch.bool)
    unvisited[visited] = False
    return ranked[unvisited[ranked]][:size]
