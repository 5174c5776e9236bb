// Node positions in the Neuronpedia convention: x = token position, y = layer band (embeddings
// at the bottom, logits on top). Unlike a fixed grid, each token's column is as wide as its
// fullest cell needs (nodes at least NODE_GAP apart, never overlapping) and as its token label;
// the columns then share the page's width in proportion. Logits spread leftwards along the top
// with their labels in as many rows as they need not to overlap.

const NODE_GAP = 13; // px between node centres in a cell
const MIN_GAP = 7; // the least gap when the page is too narrow for the fullest columns
const LEFT = 44; // band labels
const TOP_LABEL_ROW = 16; // one row of logit labels
const BOTTOM = 28; // token labels, horizontal
const MAX_TOKEN_CHARS = 16; // longer token labels are cut (the full token is the label's title)
const CHAR_PX = 6.6; // width of one character of the 11 px label font

export function textWidth(text) {
  return (text || "").length * CHAR_PX + 6;
}

export function layoutGraph(graph, keep, width, maxHeight) {
  const nBands = graph.nLayers + 2;
  const nPos = graph.tokens.length;
  const bandOf = (i) => {
    const kind = graph.kind[i];
    if (kind === "token") return 0;
    if (kind === "logit") return nBands - 1;
    return graph.layer[i] + 1;
  };
  // cells: nodes per (band, position), most influential first
  const cells = new Map();
  const logits = [];
  for (let i = 0; i < graph.n; i += 1) {
    if (!keep[i]) continue;
    const band = bandOf(i);
    if (band === nBands - 1) {
      logits.push(i);
      continue;
    }
    const key = band * nPos + graph.position[i];
    if (!cells.has(key)) cells.set(key, []);
    cells.get(key).push(i);
  }
  const rank = (i) => (graph.kind[i] === "error" ? 2 : 0) + (Number.isNaN(graph.influence[i]) ? 1 : graph.influence[i]);
  for (const list of cells.values()) list.sort((a, b) => rank(a) - rank(b));
  logits.sort((a, b) => (graph.probability[b] || 0) - (graph.probability[a] || 0));

  // logit label rows: as many as needed for the labels not to overlap at the chosen spacing
  const logitText = logits.map((i) => logitLabel(graph, i));
  const labelW = Math.max(40, ...logitText.map(textWidth));
  const usable = width - LEFT - 8;
  let labelRows = 1;
  while (labelRows < 4 && logits.length * (labelW / labelRows) > usable * 0.9) labelRows += 1;
  const top = TOP_LABEL_ROW * labelRows + 6;

  // Column widths: what the fullest cell needs, and the token label when they all fit side by
  // side; otherwise the labels are turned (-40 degrees) and the columns need room for nodes only.
  const tokenText = graph.tokens.map(tokenLabel);
  const labelWidths = tokenText.map(textWidth);
  const columnsFor = (rowsFit, withLabels) => {
    const need = new Float64Array(nPos);
    for (let p = 0; p < nPos; p += 1) need[p] = Math.max(withLabels ? labelWidths[p] : 0, 2 * NODE_GAP);
    for (const [key, list] of cells) {
      const p = key % nPos;
      need[p] = Math.max(need[p], Math.ceil(list.length / rowsFit) * NODE_GAP + NODE_GAP);
    }
    return need;
  };
  const height = Math.round(Math.max(320, maxHeight));
  let bottom = BOTTOM;
  let bandH = (height - top - bottom) / nBands;
  let rowsFit = Math.max(1, Math.floor((bandH * 0.86) / NODE_GAP));
  let need = columnsFor(rowsFit, true);
  let rotate = need.reduce((a, b) => a + b, 0) > usable;
  if (rotate) {
    bottom = Math.min(110, 0.66 * Math.max(...labelWidths) + 14);
    bandH = (height - top - bottom) / nBands;
    rowsFit = Math.max(1, Math.floor((bandH * 0.86) / NODE_GAP));
    need = columnsFor(rowsFit, false);
  }
  const total = need.reduce((a, b) => a + b, 0);
  const scale = usable / total; // < 1 squeezes, > 1 spreads
  const columns = [];
  let x = LEFT;
  for (let p = 0; p < nPos; p += 1) {
    const w = need[p] * scale;
    columns.push({ left: x, center: x + w / 2, width: w, token: graph.tokens[p], text: tokenText[p] });
    x += w;
  }
  const bands = [];
  for (let b = 0; b < nBands; b += 1) {
    const label = b === 0 ? "Emb" : b === nBands - 1 ? "Logits" : `L${b - 1}`;
    bands.push({ y: height - bottom - bandH * (b + 0.5), label });
  }
  const xs = new Float64Array(graph.n).fill(NaN);
  const ys = new Float64Array(graph.n).fill(NaN);
  for (const [key, list] of cells) {
    const band = Math.floor(key / nPos);
    const col = columns[key % nPos];
    const cols = Math.ceil(list.length / rowsFit);
    const rows = Math.ceil(list.length / cols);
    const gapX = Math.max(MIN_GAP, Math.min(NODE_GAP, (col.width - 4) / Math.max(cols, 1)));
    const gapY = Math.min(NODE_GAP, (bandH * 0.86) / Math.max(rows, 1));
    list.forEach((i, k) => {
      const c = k % cols;
      const r = Math.floor(k / cols);
      xs[i] = col.center + (c - (cols - 1) / 2) * gapX;
      ys[i] = bands[band].y + (r - (rows - 1) / 2) * gapY;
    });
  }
  // logits: from the last column leftwards, spaced by their labels over labelRows rows
  const step = Math.max(NODE_GAP, Math.min(labelW / labelRows + 4, usable / Math.max(1, logits.length)));
  const logitY = bands[nBands - 1].y;
  const right = columns.length ? columns[columns.length - 1].center : width - 20;
  logits.forEach((i, k) => {
    xs[i] = Math.max(LEFT + 6, right - k * step);
    ys[i] = logitY;
  });
  // a label is centred on its logit, but never past either edge of the chart
  const logitLabels = logits.map((i, k) => {
    const half = textWidth(logitText[k]) / 2;
    return {
      i,
      text: logitText[k],
      x: Math.min(width - half - 2, Math.max(LEFT + half, xs[i])),
      y: top - 4 - (k % labelRows) * TOP_LABEL_ROW,
    };
  });
  return {
    x: xs, y: ys, columns, bands, height, top, bottom, rotate, left: LEFT, right: LEFT + usable,
    logitLabels,
    gap: Math.min(NODE_GAP, scale * NODE_GAP),
  };
}

function tokenLabel(token) {
  const text = token || "";
  return text.length > MAX_TOKEN_CHARS ? `${text.slice(0, MAX_TOKEN_CHARS - 1)}…` : text;
}

export function logitLabel(graph, i) {
  const p = graph.probability[i];
  const pct = Number.isNaN(p) ? "" : p >= 0.01 ? ` ${Math.round(p * 100)}%` : " <1%";
  return `${graph.token[i]}${pct}`;
}
