// grok_nb video grid (anywidget ESM). The view draws the Python state (tiles, rows, cols, summary) and
// sends clicks back as messages; the only state of its own is playback, which must not round-trip.
const MIN_TILE_PX = 160; // below this a clip stops being watchable: the grid scrolls sideways instead
const MAX_TILE_PX = 560;
const WHOLE_PART = 28; // a summary part this short never wraps inside itself ("12 of 12 done", "ETA 4.0 s")
const GAP_PX = 8;
const DRIFT_S = 0.1; // nudge a video back to the clock when it drifts further than this
const TICK_MS = 100;

function setAttr(el, name, value) {
  const v = value === null || value === undefined || value === false ? null : String(value);
  if (el.getAttribute(name) !== v) v === null ? el.removeAttribute(name) : el.setAttribute(name, v);
}

// Every video of the grid plays from one clock: start together from one gesture, nudge the drifters.
class SyncGroup {
  constructor(root, onchange) {
    this.root = root;
    this.onchange = onchange;
    this.playing = false;
    this.loop = true;
    this.muted = true; // browsers refuse play() with sound without a gesture on each video
    this.timer = null;
  }
  videos() {
    return [...this.root.querySelectorAll("video.grok-vvideo")].filter((v) => v.getAttribute("src"));
  }
  clock(vs) {
    let best = null;
    for (const v of vs) {
      if (v.readyState < 1) continue;
      if (!best || (v.duration || 0) > (best.duration || 0)) best = v;
    }
    return best;
  }
  target(v, t) {
    const d = v.duration;
    if (!isFinite(d) || d <= 0) return t;
    return this.loop ? t % d : Math.min(t, d);
  }
  seek(v, t) {
    if (Math.abs(v.currentTime - t) < 0.001) return;
    v._grokSeeking = true; // our own seek: not a user's scrub to broadcast
    v.currentTime = t;
  }
  setup(v) {
    v.muted = this.muted;
    v.loop = this.loop;
    if (v._grokWatched) return;
    v._grokWatched = true;
    v.addEventListener("seeking", () => {
      if (v._grokSeeking) {
        v._grokSeeking = false;
        return;
      }
      this.seekAll(v.currentTime, v); // a user scrubbed this one: move all
    });
  }
  async play() {
    const vs = this.videos();
    if (!vs.length) return;
    const c = this.clock(vs);
    const t = c && !c.ended ? c.currentTime : 0;
    this.playing = true;
    for (const v of vs) {
      this.setup(v);
      this.seek(v, this.target(v, t));
    }
    await Promise.allSettled(vs.map((v) => v.play()));
    this.start();
    this.onchange();
  }
  pause() {
    this.playing = false;
    this.stop();
    const vs = this.videos();
    vs.forEach((v) => v.pause());
    const c = this.clock(vs);
    if (c) vs.forEach((v) => v !== c && this.seek(v, this.target(v, c.currentTime)));
    this.onchange();
  }
  toggle() {
    return this.playing ? this.pause() : this.play();
  }
  setLoop(on) {
    this.loop = on;
    this.videos().forEach((v) => (v.loop = on));
    this.onchange();
  }
  setMuted(on) {
    this.muted = on;
    this.videos().forEach((v) => (v.muted = on));
    this.onchange();
  }
  seekAll(t, from) {
    for (const v of this.videos()) if (v !== from) this.seek(v, this.target(v, t));
  }
  tick() {
    const vs = this.videos();
    const c = this.clock(vs);
    if (!c) return;
    if (!this.loop && c.ended) {
      this.playing = false;
      this.stop();
      this.onchange();
      return;
    }
    const t = c.currentTime;
    for (const v of vs) {
      this.setup(v);
      if (v === c) continue;
      const want = this.target(v, t);
      let drift = Math.abs(v.currentTime - want);
      if (this.loop && isFinite(v.duration)) drift = Math.min(drift, v.duration - drift);
      if (drift > DRIFT_S) this.seek(v, want);
      if (this.playing && v.paused && !(v.ended && !this.loop)) v.play().catch(() => {});
    }
    if (this.playing && c.paused && !c.ended) c.play().catch(() => {});
  }
  start() {
    if (!this.timer) this.timer = setInterval(() => this.tick(), TICK_MS);
  }
  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

function stars(n) {
  return n ? "★".repeat(n) + "☆".repeat(5 - n) : "";
}

function render({ model, el }) {
  // Keys typed on the grid's buttons and inputs are the grid's, not JupyterLab's command-mode shortcuts.
  const root = h("div", "grok-vgrid", { "data-lm-suppress-shortcuts": "true" });
  const hide = h("style", "grok-vhide"); // hides this view's static shadow (the saved-notebook fallback)
  hide.textContent = model.get("hide_css") || "";
  el.append(hide, root);
  const interactive = () => model.get("interactive") !== false;
  const send = (msg) => interactive() && model.send(msg);

  // -- summary bar: progress, counts, money, and the controls for all videos -------------------------
  const bar = h("div", "grok-vbar");
  const meter = h("div", "grok-vmeter", { role: "progressbar", "aria-label": "jobs finished", "aria-valuemin": 0 });
  const fillOk = h("span", "grok-vmeter-ok");
  const fillBad = h("span", "grok-vmeter-bad");
  const fillWarn = h("span", "grok-vmeter-warn");
  meter.append(fillOk, fillBad, fillWarn);
  const summary = h("span", "grok-vsummary", { "aria-live": "polite" });
  const buttons = h("span", "grok-vbuttons");
  const playBtn = h("button", "grok-vbtn grok-play-all", { type: "button", "aria-label": "Play all", hidden: true }, "▶ Play all");
  const loopBtn = h("button", "grok-vbtn grok-loop", { type: "button", "aria-pressed": "true", hidden: true }, "⟳ Loop");
  const muteBtn = h("button", "grok-vbtn grok-mute", { type: "button", "aria-pressed": "true", hidden: true }, "Muted");
  const abBtn = h("button", "grok-vbtn grok-ab-toggle", { type: "button", "aria-expanded": "false" }, "A/B");
  const stopBtn = h("button", "grok-vbtn grok-stop-all", { type: "button" }, "■ Stop all");
  // Which measures the tiles show: a list of checkboxes, and the colour scale's key (low → high across the grid).
  const pick = h("details", "grok-vpick", { hidden: true });
  const pickHead = h("summary", "grok-vbtn grok-vpick-head", { title: "measures shown under each tile" }, "Measures");
  const pickList = h("span", "grok-vpick-list", { role: "group", "aria-label": "measures shown under each tile" });
  const legend = h("span", "grok-vlegend", { hidden: true, title: "each value is tinted by where it sits between the grid's lowest and highest" });
  const legendBar = h("span", "grok-vlegend-bar", { "aria-hidden": "true" });
  legend.append(h("span", "", {}, "low"), legendBar, h("span", "", {}, "high"));
  pick.append(pickHead, pickList);
  buttons.append(playBtn, loopBtn, muteBtn, abBtn, stopBtn, pick, legend);
  const message = h("span", "grok-vmsg", { role: "status" });
  bar.append(meter, summary, buttons, message);
  const axes = h("div", "grok-vaxes");

  // -- A/B: two chosen tiles, one over the other, a wipe slider or a flicker -------------------------
  const ab = h("div", "grok-vab", { hidden: true });
  const abControls = h("div", "grok-vab-controls");
  const selA = h("select", "grok-ab-a", { "aria-label": "A" });
  const selB = h("select", "grok-ab-b", { "aria-label": "B" });
  const mode = h("select", "grok-ab-mode", { "aria-label": "A/B mode" });
  mode.append(h("option", "", { value: "wipe" }, "wipe"), h("option", "", { value: "flicker" }, "flicker"));
  const wipe = h("input", "grok-ab-wipe", { type: "range", min: 0, max: 100, value: 50, "aria-label": "wipe position" });
  const labA = h("label", "", {}, "A ");
  labA.append(selA);
  const labB = h("label", "", {}, "B ");
  labB.append(selB);
  abControls.append(labA, labB, mode, wipe);
  const abStage = h("div", "grok-vab-stage");
  const abA = h("video", "grok-vvideo grok-ab-video-a", { muted: true, playsinline: true, preload: "metadata" });
  const abB = h("video", "grok-vvideo grok-ab-video-b", { muted: true, playsinline: true, preload: "metadata" });
  const abLine = h("div", "grok-vab-line");
  abStage.append(abA, abB, abLine);
  ab.append(abControls, abStage);
  let flicker = null;

  // Rows × columns always: tiles shrink to MIN_TILE_PX, then the body scrolls sideways. The column headers sit
  // outside the scroller (so they stay at the top of the notebook's view) and follow its scroll; each row's
  // header sticks to the left edge.
  const headWrap = h("div", "grok-vheadwrap");
  const head = h("div", "grok-vhead");
  headWrap.append(head);
  const scroller = h("div", "grok-vscroll");
  const body = h("div", "grok-vbody");
  scroller.append(body);
  root.append(bar, axes, ab, headWrap, scroller);
  let syncing = false;
  const follow = (from, to) => () => {
    if (syncing) return;
    syncing = true;
    to.scrollLeft = from.scrollLeft;
    requestAnimationFrame(() => (syncing = false));
  };
  scroller.addEventListener("scroll", follow(scroller, headWrap), { passive: true });
  headWrap.addEventListener("scroll", follow(headWrap, scroller), { passive: true });

  const sync = new SyncGroup(root, () => {
    setText(playBtn, sync.playing ? "❚❚ Pause all" : "▶ Play all");
    playBtn.setAttribute("aria-label", sync.playing ? "Pause all" : "Play all");
    loopBtn.setAttribute("aria-pressed", String(sync.loop));
    muteBtn.setAttribute("aria-pressed", String(sync.muted));
    setText(muteBtn, sync.muted ? "Muted" : "Sound on");
  });
  playBtn.addEventListener("click", () => sync.toggle());
  loopBtn.addEventListener("click", () => sync.setLoop(!sync.loop));
  muteBtn.addEventListener("click", () => sync.setMuted(!sync.muted));
  stopBtn.addEventListener("click", () => send({ type: "stop_all" }));

  const rowEls = [];
  const tileEls = new Map();
  // A cell's take and the measures shown are chosen here, at once (a report has no kernel to ask); the kernel is
  // told, so that reviews reach the shown take's run and a saved copy shows the same.
  const chosenTakes = new Map();
  let shownMetrics = (model.get("metrics_shown") || []).slice();
  const takeOf = (t) => {
    const n = (t.takes || []).length;
    if (!n) return 0;
    const k = chosenTakes.has(t.index) ? chosenTakes.get(t.index) : t.take || 0;
    return Math.min(Math.max(k, 0), n - 1);
  };
  // What a tile shows: its chosen take's state, with the cell's own place and label.
  const shownOf = (t) => (t.takes && t.takes.length ? { ...t, ...t.takes[takeOf(t)] } : t);
  const mix = (colour) => `color-mix(in srgb, ${colour} 35%, var(--grok-bg))`;

  function drawPicker() {
    const names = model.get("metric_names") || [];
    pick.hidden = names.length === 0;
    legend.hidden = pick.hidden || !shownMetrics.some((n) => names.some((m) => m[0] === n));
    const scale = model.get("metric_scale") || [];
    if (scale.length) legendBar.style.background = `linear-gradient(to right, ${scale.map(mix).join(", ")})`;
    const key = names.map((n) => n[0]).join(",") + "|" + shownMetrics.join(",");
    if (pickList.dataset.key === key) return;
    pickList.dataset.key = key;
    pickList.replaceChildren(...names.map(([name, label]) => {
      const box = h("input", "grok-vpick-box", { type: "checkbox", value: name });
      box.checked = shownMetrics.includes(name);
      box.addEventListener("change", () => {
        const on = new Set(shownMetrics);
        box.checked ? on.add(name) : on.delete(name);
        // Known ones in the grid's order; picks the grid does not have (yet) are kept.
        shownMetrics = [...names.map((n) => n[0]).filter((n) => on.has(n)), ...shownMetrics.filter((n) => on.has(n) && !names.some((m) => m[0] === n))];
        if (interactive()) {
          model.set("metrics_shown", shownMetrics);
          model.save_changes();
        }
        drawPicker();
        drawTiles();
      });
      const item = h("label", "grok-vpick-item");
      item.append(box, document.createTextNode(" " + label));
      return item;
    }));
  }

  function drawHeaders() {
    const colLabels = model.get("cols") || [];
    const colTitles = model.get("col_titles") || [];
    head.replaceChildren(...colLabels.map((c, i) => h("div", "grok-vcolhead", { title: colTitles[i] || c }, c)));
    setText(axes, model.get("axes") || "");
    const rows = model.get("rows") || [];
    const rowTitles = model.get("row_titles") || [];
    while (rowEls.length < rows.length) {
      const section = h("section", "grok-vrow");
      const label = h("div", "grok-vrowhead");
      const tiles = h("div", "grok-vtiles");
      section.append(label, tiles);
      body.append(section);
      rowEls.push({ section, label, tiles });
    }
    rows.forEach((r, i) => {
      setText(rowEls[i].label, r);
      rowEls[i].label.hidden = !r;
      setAttr(rowEls[i].label, "title", rowTitles[i] || r);
    });
  }

  function makeTile(t) {
    const fig = h("figure", "grok-vtile", { "data-index": t.index });
    const media = h("div", "grok-vmedia");
    const video = h("video", "grok-vvideo", { muted: true, playsinline: true, preload: "metadata", tabindex: 0 });
    video.muted = true;
    const state = h("div", "grok-vstate");
    const prog = h("div", "grok-vprog");
    const progFill = h("span");
    prog.append(progFill);
    media.append(video, state, prog);
    const foot = h("figcaption", "grok-vfoot");
    const status = h("span", "grok-vstatus");
    const dot = h("span", "grok-vdot", { "aria-hidden": "true" });
    const statusText = h("span");
    status.append(dot, statusText);
    const cost = h("span", "grok-vcost");
    const latency = h("span", "grok-vlatency");
    const rate = h("span", "grok-vrate", { role: "group", "aria-label": "rating" });
    const starBtns = [1, 2, 3, 4, 5].map((n) => {
      const b = h("button", "grok-star", { type: "button", "aria-label": `rate ${n} of 5`, "aria-pressed": "false" }, "☆");
      b.addEventListener("click", () => send({ type: "rate", index: +fig.dataset.index, take: +fig.dataset.take, value: tileRating(fig) === n ? 0 : n }));
      rate.append(b);
      return b;
    });
    const staticStars = h("span", "grok-vstars");
    const win = h("button", "grok-vbtn-small grok-vwin", { type: "button", "aria-pressed": "false", "aria-label": "winner of this row", title: "winner of this row" }, "♛ best");
    win.addEventListener("click", () => send({ type: "winner", index: +fig.dataset.index, take: +fig.dataset.take }));
    const noteBtn = h("button", "grok-vbtn-small grok-vnote-btn", { type: "button", "aria-expanded": "false", "aria-label": "note", title: "note" }, "✎");
    const stop = h("button", "grok-vbtn-small grok-vstop", { type: "button", "aria-label": "stop waiting", title: "stop waiting (the job goes on; resumable)" }, "■");
    stop.addEventListener("click", () => send({ type: "stop", index: +fig.dataset.index }));
    const tools = h("span", "grok-vtools");
    tools.append(rate, staticStars, stop);
    foot.append(status, cost, latency, tools);
    // Review actions sit over the video's corner, shown on hover or focus: the footer stays one line.
    const corner = h("div", "grok-vcorner");
    corner.append(win, noteBtn);
    media.append(corner);
    const note = h("input", "grok-vnote", { type: "text", placeholder: "note (Enter saves)", "aria-label": "note", hidden: true });
    const noteText = h("div", "grok-vnote-text");
    noteBtn.addEventListener("click", () => {
      note.hidden = !note.hidden;
      noteBtn.setAttribute("aria-expanded", String(!note.hidden));
      if (!note.hidden) note.focus();
    });
    const saveNote = () => send({ type: "note", index: +fig.dataset.index, take: +fig.dataset.take, value: note.value });
    note.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        saveNote();
        note.hidden = true;
        noteBtn.setAttribute("aria-expanded", "false");
        noteBtn.focus();
      }
      e.stopPropagation(); // keep JupyterLab's shortcuts out of the text box
    });
    note.addEventListener("change", saveNote);
    const meta = h("div", "grok-vmeta");
    const strip = h("span", "grok-vtakes", { role: "group", "aria-label": "takes of this cell" });
    const chips = h("span", "grok-vmetrics");
    meta.append(strip, chips);
    fig.append(media, foot, meta, note, noteText);
    // Native controls only while the pointer or the keyboard is on the tile: the video stays clear.
    const show = () => (video.controls = !!video.getAttribute("src"));
    const hide = () => {
      if (!fig.contains(document.activeElement)) video.controls = false;
    };
    fig.addEventListener("mouseenter", show);
    fig.addEventListener("mouseleave", () => (video.controls = false));
    fig.addEventListener("focusin", show);
    fig.addEventListener("focusout", () => setTimeout(hide, 0));
    const parts = { fig, media, video, state, prog, progFill, status, statusText, cost, latency, starBtns, staticStars, win, noteBtn, stop, note, noteText, rate, meta, strip, chips, t: null };
    return parts;
  }

  function tileRating(fig) {
    return +(fig.dataset.rating || 0);
  }

  function drawTakes(p, t, k) {
    const takes = t.takes || [];
    p.strip.hidden = takes.length < 2;
    if (p.strip.children.length !== takes.length) {
      p.strip.replaceChildren(...takes.map((_, j) => {
        const b = h("button", "grok-vtake", { type: "button" }, String(j + 1));
        b.addEventListener("click", () => {
          const index = +p.fig.dataset.index;
          chosenTakes.set(index, j);
          send({ type: "take", index, take: j });
          drawTile(p, p.t);
          drawAbChoices(model.get("tiles") || []);
        });
        return b;
      }));
    }
    takes.forEach((take, j) => {
      const b = p.strip.children[j];
      b.className = `grok-vtake grok-tone-${take.tone}`;
      b.setAttribute("aria-pressed", String(j === k));
      b.setAttribute("aria-label", `take ${j + 1} of ${takes.length}: ${take.state}`);
      b.title = `take ${j + 1} of ${takes.length}: ${take.state}`;
    });
  }

  function drawMetrics(p, s) {
    const values = s.metrics || {};
    const names = (model.get("metric_names") || []).filter(([n]) => shownMetrics.includes(n));
    const key = JSON.stringify(names.map(([n, l]) => [l, values[n] || null]));
    if (p.chips.dataset.key === key) return;
    p.chips.dataset.key = key;
    p.chips.replaceChildren(...names.map(([name, label]) => {
      const [text, colour] = values[name] || ["—", null];
      const chip = h("span", "grok-vmetric", { "data-metric": name, title: `${label}: ${text}` + (colour ? " (tinted from the grid's lowest to its highest)" : "") }, `${label} ${text}`);
      if (colour) chip.style.background = mix(colour);
      return chip;
    }));
  }

  function drawTile(p, t) {
    p.t = t;
    const k = takeOf(t);
    const s = shownOf(t);
    const fig = p.fig;
    fig.className = `grok-vtile grok-tone-${s.tone} grok-kind-${s.kind}` + (s.winner ? " grok-winner" : "");
    fig.dataset.rating = s.rating;
    fig.dataset.take = k;
    setAttr(fig, "title", s.title);
    p.media.style.aspectRatio = `${s.width || 16} / ${s.height || 9}`;
    setAttr(p.video, "poster", s.poster || null);
    if (s.src && p.video.getAttribute("src") !== s.src) {
      p.video.setAttribute("src", s.src); // only when it changes: setting it again would restart playback
      sync.setup(p.video);
    } else if (!s.src && p.video.getAttribute("src")) {
      p.video.removeAttribute("src"); // a take that has no video (yet): its state shows instead
      p.video.load();
    }
    setAttr(p.video, "aria-label", `${s.prompt} (${s.label}${t.takes && t.takes.length ? `, take ${k + 1}` : ""})`);
    const hasVideo = !!s.src || !!s.poster;
    p.video.hidden = !hasVideo;
    // The state is said once: failures explain themselves in the media area, the footer names the state.
    // Red and amber tiles say why (and amber ones that the video may still be had); grey ones say their state.
    setText(p.state, s.tone === "bad" || s.tone === "warn" ? s.detail || s.state : s.tone === "idle" ? s.state : "");
    p.state.hidden = hasVideo;
    p.prog.hidden = s.tone !== "busy";
    p.progFill.style.width = s.progress === null || s.progress === undefined ? "100%" : `${s.progress}%`;
    p.prog.classList.toggle("grok-indeterminate", s.progress === null || s.progress === undefined);
    setText(p.statusText, s.state);
    setText(p.cost, s.cost);
    setText(p.latency, s.latency);
    const live = interactive();
    p.rate.hidden = !live || s.kind !== "done";
    p.starBtns.forEach((b, i) => {
      setText(b, i < s.rating ? "★" : "☆");
      b.setAttribute("aria-pressed", String(i < s.rating));
    });
    setText(p.staticStars, live ? "" : stars(s.rating));
    p.win.hidden = !(s.winner || (live && s.kind === "done"));
    p.win.disabled = !live;
    p.win.setAttribute("aria-pressed", String(!!s.winner));
    p.noteBtn.hidden = !live || !s.run_id;
    p.stop.hidden = !live || !s.can_stop;
    if (document.activeElement !== p.note) p.note.value = s.note || "";
    setText(p.noteText, s.note ? `“${s.note}”` : "");
    drawTakes(p, t, k);
    drawMetrics(p, s);
    p.meta.hidden = p.strip.hidden && !p.chips.children.length;
  }

  function drawTiles() {
    const tiles = model.get("tiles") || [];
    for (const t of tiles) {
      let p = tileEls.get(t.index);
      if (!p) {
        p = makeTile(t);
        tileEls.set(t.index, p);
      }
      const row = rowEls[t.row];
      if (row && p.fig.parentNode !== row.tiles) row.tiles.append(p.fig);
      p.fig.style.gridColumn = String(t.col + 1);
      drawTile(p, t);
    }
    drawAbChoices(tiles);
  }

  function drawSummary() {
    const s = model.get("summary") || {};
    const total = s.total || 0;
    if (summary.dataset.text !== (s.text || "")) {
      summary.dataset.text = s.text || "";
      // Wraps between parts, never inside a short one; a long one (the budget line) between its figures.
      const parts = s.parts || (s.text ? [s.text] : []);
      summary.replaceChildren(...parts.flatMap((p, i) => [
        ...(i ? [document.createTextNode(" · ")] : []),
        h("span", p.length <= WHOLE_PART ? "grok-vpart grok-vwhole" : "grok-vpart", {}, p),
      ]));
    }
    const ok = total ? (100 * (s.done || 0)) / total : 0;
    const bad = total ? (100 * (s.failed || 0)) / total : 0;
    const warn = total ? (100 * (s.warned || 0)) / total : 0; // stopped, not downloaded: may still be had
    fillOk.style.width = `${ok}%`;
    fillBad.style.width = `${bad}%`;
    fillWarn.style.width = `${warn}%`;
    meter.setAttribute("aria-valuemax", total);
    meter.setAttribute("aria-valuenow", (s.done || 0) + (s.failed || 0) + (s.warned || 0));
    stopBtn.hidden = !interactive() || !s.can_stop;
    setText(message, model.get("message") || "");
  }

  // An A/B choice names what differs between tiles: its column (the short values) first, then its row.
  function choiceText(t) {
    const rows = model.get("rows") || [];
    const take = t.takes && t.takes.length ? `take ${takeOf(t) + 1}` : "";
    return [t.label, take, rows[t.row]].filter((x) => x && x !== "result").join(" · ") || t.prompt.slice(0, 60);
  }

  function drawAbChoices(cells) {
    const tiles = cells.map(shownOf);
    const done = tiles.filter((t) => t.src);
    // Playback controls only once there is something to play (not while the grid waits for confirmation).
    for (const b of [playBtn, loopBtn, muteBtn]) b.hidden = done.length === 0;
    const key = done.map((t) => `${t.index}:${t.src}`).join(",");
    if (selA.dataset.key === key) return;
    selA.dataset.key = key;
    for (const sel of [selA, selB]) {
      const keep = sel.value;
      sel.replaceChildren(...done.map((t) => h("option", "", { value: t.index, title: t.title }, choiceText(t))));
      if (sel.dataset.chosen && keep && done.some((t) => String(t.index) === keep)) sel.value = keep;
    }
    // Until a person picks, A is the first finished tile and B the next one: never the same tile twice (tiles
    // finish in any order).
    if (!selA.dataset.chosen && done.length) selA.value = String(done[0].index);
    const other = done.find((t) => String(t.index) !== selA.value);
    if (!selB.dataset.chosen && other) selB.value = String(other.index);
    abBtn.hidden = done.length < 2;
    if (!ab.hidden) drawAb();
  }

  function drawAb() {
    const tiles = (model.get("tiles") || []).map(shownOf);
    const a = tiles.find((t) => String(t.index) === selA.value);
    const b = tiles.find((t) => String(t.index) === selB.value);
    for (const [v, t] of [[abA, a], [abB, b]]) {
      if (t && v.getAttribute("src") !== t.src) {
        v.setAttribute("src", t.src);
        if (t.poster) v.setAttribute("poster", t.poster);
        sync.setup(v);
      }
    }
    abStage.style.aspectRatio = a ? `${a.width} / ${a.height}` : "16 / 9";
    const wiping = mode.value === "wipe";
    wipe.hidden = !wiping;
    abLine.hidden = !wiping;
    if (flicker) clearInterval(flicker);
    flicker = null;
    if (wiping) {
      abB.style.visibility = "visible";
      abB.style.clipPath = `inset(0 0 0 ${wipe.value}%)`;
      abLine.style.left = `${wipe.value}%`;
    } else {
      abB.style.clipPath = "none";
      let on = true;
      flicker = setInterval(() => {
        on = !on;
        abB.style.visibility = on ? "visible" : "hidden";
      }, 700);
    }
  }

  abBtn.addEventListener("click", () => {
    ab.hidden = !ab.hidden;
    abBtn.setAttribute("aria-expanded", String(!ab.hidden));
    if (ab.hidden) {
      if (flicker) clearInterval(flicker);
      flicker = null;
      for (const v of [abA, abB]) {
        v.pause();
        v.removeAttribute("src"); // out of the sync group while closed
        v.load();
      }
    } else drawAb();
  });
  selA.addEventListener("change", () => {
    selA.dataset.chosen = "1";
    drawAb();
  });
  selB.addEventListener("change", () => {
    selB.dataset.chosen = "1";
    drawAb();
  });
  mode.addEventListener("change", drawAb);
  wipe.addEventListener("input", drawAb);

  // -- responsive tiles: as wide as the view allows (MIN_TILE_PX to MAX_TILE_PX); the grid never wraps a row ------
  function relayout() {
    const n = Math.max(1, (model.get("cols") || []).length);
    const view = root.clientWidth || 800;
    const fit = Math.floor((view - (n - 1) * GAP_PX) / n);
    const tile = Math.max(MIN_TILE_PX, Math.min(MAX_TILE_PX, fit));
    const scrolls = fit < MIN_TILE_PX;
    root.style.setProperty("--grok-cols", String(n));
    root.style.setProperty("--grok-tile-w", `${tile}px`);
    root.style.setProperty("--grok-view-w", `${view}px`);
    root.classList.toggle("grok-scrolls", scrolls);
    if (!scrolls && scroller.scrollLeft) scroller.scrollLeft = headWrap.scrollLeft = 0;
  }
  const headSize = new ResizeObserver(() => root.style.setProperty("--grok-head-h", `${headWrap.offsetHeight}px`));
  headSize.observe(headWrap);
  const resize = new ResizeObserver(() => relayout());
  resize.observe(root);

  drawHeaders();
  relayout();
  drawPicker();
  drawTiles();
  drawSummary();
  sync.onchange();
  const onMetrics = () => {
    shownMetrics = (model.get("metrics_shown") || []).slice();
    drawPicker();
    drawTiles();
  };
  const onNames = () => {
    drawPicker();
    drawTiles();
  };
  const onTiles = () => drawTiles();
  const onHeaders = () => {
    drawHeaders();
    relayout();
    drawTiles();
  };
  const onSummary = () => drawSummary();
  model.on("change:tiles", onTiles);
  model.on("change:rows", onHeaders);
  model.on("change:cols", onHeaders);
  model.on("change:summary", onSummary);
  model.on("change:message", onSummary);
  model.on("change:metrics_shown", onMetrics);
  model.on("change:metric_names", onNames);
  return () => {
    resize.disconnect();
    headSize.disconnect();
    sync.stop();
    if (flicker) clearInterval(flicker);
    model.off("change:tiles", onTiles);
    model.off("change:rows", onHeaders);
    model.off("change:cols", onHeaders);
    model.off("change:summary", onSummary);
    model.off("change:message", onSummary);
    model.off("change:metrics_shown", onMetrics);
    model.off("change:metric_names", onNames);
  };
}

export default { render };
