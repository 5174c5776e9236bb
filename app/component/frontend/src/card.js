// The hover card: a node's label, activation, influence (a cumulative rank: smaller = more
// influential), and for features the catalogue's top contexts and logit effects.
import { degree } from "./graph.js";

const MAX_CONTEXTS = 3;
const MAX_LOGITS = 5;

export function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

const fmt = (v) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toPrecision(3));

function contextHtml(ctx, scale) {
  const tokens = ctx.tokens || [];
  const acts = ctx.activations || ctx.acts || [];
  return `<div class="cm-ctx">${tokens
    .map((t, k) => {
      const a = scale > 0 ? Math.max(0, Math.min(1, (acts[k] || 0) / scale)) : 0;
      return `<span style="background:rgba(249,115,22,${a.toFixed(2)})">${escapeHtml(t)}</span>`;
    })
    .join("")}</div>`;
}

function logitList(title, tokens, effects, cls) {
  if (!tokens || !tokens.length) return "";
  const items = tokens.slice(0, MAX_LOGITS).map((t, k) => {
    const fx = effects && effects[k] !== undefined ? ` ${Number(effects[k]).toFixed(2)}` : "";
    return `<span class="cm-chip ${cls}">${escapeHtml(t)}${fx}</span>`;
  });
  return `<div class="cm-row"><b>${title}</b> ${items.join(" ")}</div>`;
}

export function cardHtml(graph, i, cards, adj) {
  const kind = graph.kind[i];
  const [nIn, nOut] = degree(adj, i);
  const parts = [`<div class="cm-title">${escapeHtml(graph.caption[i])}</div>`];
  const facts = [`${kind}`, `layer ${graph.layer[i]}`, `pos ${graph.position[i]} '${escapeHtml(graph.token[i])}'`];
  parts.push(`<div class="cm-facts">${facts.join(" · ")}</div>`);
  if (kind === "logit") {
    parts.push(`<div class="cm-row">probability <b>${fmt(graph.probability[i])}</b></div>`);
  } else if (kind !== "token") {
    parts.push(
      `<div class="cm-row">activation <b>${fmt(graph.activation[i])}</b> · influence <b>${fmt(graph.influence[i])}</b> <span class="cm-hint">(smaller = more influential)</span></div>`,
    );
  }
  parts.push(`<div class="cm-row cm-hint">${nIn} inputs · ${nOut} outputs</div>`);
  const card = kind === "feature" ? cards.get(graph.featureUid[i]) : null;
  if (card) {
    const contexts = parseContexts(card.top_contexts).slice(0, MAX_CONTEXTS);
    if (contexts.length) {
      const scale = Math.max(0, ...contexts.flatMap((c) => c.activations || c.acts || []));
      parts.push(`<div class="cm-row"><b>Top activations</b></div>${contexts.map((c) => contextHtml(c, scale)).join("")}`);
    }
    parts.push(logitList("Promotes", card.top_logits, card.top_logit_effects, "up"));
    parts.push(logitList("Suppresses", card.bottom_logits, card.bottom_logit_effects, "down"));
  } else if (kind === "feature") {
    parts.push(`<div class="cm-row cm-hint">no catalogue card for this feature</div>`);
  }
  return parts.join("");
}

function parseContexts(raw) {
  if (!raw) return [];
  try {
    const data = typeof raw === "string" ? JSON.parse(raw) : raw;
    const list = Array.isArray(data) ? data : data.contexts || data.examples || [];
    return list.map((c) => (Array.isArray(c) ? { tokens: c[0], activations: c[1] } : c));
  } catch {
    return [];
  }
}
