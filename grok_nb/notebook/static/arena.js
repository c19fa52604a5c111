// grok_nb blind arena (anywidget ESM). Two takes side by side, parameters hidden, sides shuffled by Python; the
// view plays them together and sends votes back: ← left, → right, ↓ tie (or the buttons); Backspace (or Undo)
// takes the last vote back. Python records each vote, picks the next pair and sends it (after an undo, the pair
// voted on again); until then the view takes no other vote.
const DRIFT_S = 0.15; // nudge the right video back to the left one's time when it drifts further than this
const TICK_MS = 150;
const KEYS = { ArrowLeft: "left", ArrowRight: "right", ArrowDown: "tie" };
const UNDO_KEYS = new Set(["Backspace", "u", "U"]);

function render({ model, el }) {
  // Keys pressed inside the arena are its own, not JupyterLab's command-mode shortcuts (↓ would move the cell).
  const root = h("div", "grok-arena", {
    tabindex: 0, role: "group", "data-lm-suppress-shortcuts": "true",
    "aria-label": "blind arena: press left arrow if the left video is better, right arrow for the right one, "
      + "down arrow for a tie, backspace to take the last vote back",
  });
  const hide = h("style", "grok-arena-hide"); // hides this view's static shadow (the saved-notebook copy)
  hide.textContent = model.get("hide_css") || "";
  el.append(hide, root);

  const bar = h("div", "grok-arena-bar");
  const title = h("span", "grok-arena-title", {}, "Which is better?");
  const count = h("span", "grok-arena-count", { "aria-live": "polite" });
  bar.append(title, count);

  const stage = h("div", "grok-arena-stage");
  const sides = {};
  for (const [side, label] of [["left", "Left · ←"], ["right", "Right · →"]]) {
    const fig = h("figure", `grok-arena-side grok-arena-${side}`);
    const media = h("div", "grok-arena-media");
    const video = h("video", "grok-arena-video", {
      muted: true, loop: true, playsinline: true, preload: "auto", tabindex: -1, "aria-label": `${side} video`,
    });
    video.muted = true; // the attribute alone does not mute a video made by script
    video.loop = true;
    media.append(video);
    const cap = h("figcaption", "grok-arena-caption", {}, label);
    fig.append(media, cap);
    stage.append(fig);
    sides[side] = { fig, media, video };
  }
  const play = h("button", "grok-arena-play", { type: "button", hidden: true }, "▶ Play both");
  stage.append(play);
  const empty = h("div", "grok-arena-empty", { hidden: true });
  stage.append(empty);

  const buttons = h("div", "grok-arena-buttons");
  const voteBtns = {};
  for (const [side, text] of [["left", "← Left is better"], ["tie", "↓ Tie"], ["right", "Right is better →"]]) {
    const b = h("button", `grok-arena-vote grok-arena-vote-${side}`, { type: "button", "data-side": side }, text);
    b.addEventListener("click", (e) => {
      e.stopPropagation();
      vote(side);
      root.focus({ preventScroll: true }); // the keys keep working after a click on a button
    });
    buttons.append(b);
    voteBtns[side] = b;
  }
  const undoBtn = h("button", "grok-arena-undo", { type: "button", title: "Take the last vote back (Backspace)" },
    "↶ Undo");
  undoBtn.addEventListener("click", (e) => {
    e.stopPropagation();
    undo();
    root.focus({ preventScroll: true });
  });
  buttons.append(undoBtn);
  const help = h("div", "grok-arena-help");
  const message = h("div", "grok-arena-msg", { role: "status" });
  root.append(bar, stage, buttons, help, message);

  let pending = false; // a vote was sent: no other until Python answers
  let playing = false;
  let timer = null;
  let flash = null;

  // A vote or an undo is on its way: every button waits until Python answers (then unlock()).
  function lock() {
    pending = true;
    root.classList.add("grok-arena-pending");
    for (const b of Object.values(voteBtns)) b.disabled = true;
    undoBtn.disabled = true;
  }

  function vote(side) {
    if (pending || !model.get("pair")) return;
    lock();
    if (side !== "tie") sides[side].fig.classList.add("grok-arena-chosen");
    else stage.classList.add("grok-arena-tied");
    model.send({ type: "vote", side, pair: model.get("pair") });
  }

  function undo() {
    if (pending || !(model.get("counter") || {}).can_undo) return;
    lock();
    model.send({ type: "undo" });
  }

  function unlock() {
    pending = false;
    root.classList.remove("grok-arena-pending");
    const open = !!model.get("pair");
    for (const b of Object.values(voteBtns)) b.disabled = !open;
    undoBtn.disabled = !(model.get("counter") || {}).can_undo;
    if (flash) clearTimeout(flash);
    // The chosen side stays marked a moment, so a person sees the vote land before the next pair plays.
    flash = setTimeout(() => {
      for (const s of Object.values(sides)) s.fig.classList.remove("grok-arena-chosen");
      stage.classList.remove("grok-arena-tied");
    }, 250);
  }

  root.addEventListener("keydown", (e) => {
    const side = KEYS[e.key];
    const back = UNDO_KEYS.has(e.key) && !e.ctrlKey && !e.metaKey && !e.altKey;
    if (!side && !back) return;
    e.preventDefault();
    e.stopPropagation();
    if (e.repeat) return;
    if (side) vote(side);
    else undo();
  });
  root.addEventListener("click", () => {
    root.focus({ preventScroll: true });
    if (!playing) start();
  });
  play.addEventListener("click", (e) => {
    e.stopPropagation();
    root.focus({ preventScroll: true });
    start();
  });

  const videos = () => [sides.left.video, sides.right.video].filter((v) => v.getAttribute("src"));

  async function start() {
    const vs = videos();
    if (vs.length < 2) return;
    for (const v of vs) {
      v.muted = true;
      v.loop = true;
      if (Math.abs(v.currentTime) > 0.001) v.currentTime = 0;
    }
    const results = await Promise.allSettled(vs.map((v) => v.play()));
    playing = results.every((r) => r.status === "fulfilled");
    play.hidden = playing; // refused without a gesture: a click (or a key) starts both
    if (!playing) vs.forEach((v) => v.pause());
    if (playing && !timer) timer = setInterval(tick, TICK_MS);
  }

  // Both play from one clock, the left video: the right one is nudged back when it drifts.
  function tick() {
    const [a, b] = [sides.left.video, sides.right.video];
    if (a.readyState < 2 || b.readyState < 2 || a.paused) return;
    const d = b.duration;
    const want = isFinite(d) && d > 0 ? a.currentTime % d : a.currentTime;
    let drift = Math.abs(b.currentTime - want);
    if (isFinite(d)) drift = Math.min(drift, d - drift);
    if (drift > DRIFT_S) b.currentTime = want;
    if (b.paused) b.play().catch(() => {});
  }

  function loadPair() {
    const pair = model.get("pair");
    const shown = { left: model.get("left") || {}, right: model.get("right") || {} };
    playing = false;
    for (const side of ["left", "right"]) {
      const { video, media } = sides[side];
      const t = shown[side];
      video.pause();
      if (t.poster) video.setAttribute("poster", t.poster);
      else video.removeAttribute("poster");
      media.style.aspectRatio = `${t.width || 16} / ${t.height || 9}`;
      if (t.src) {
        if (video.getAttribute("src") !== t.src) video.setAttribute("src", t.src);
        else video.currentTime = 0;
      } else {
        video.removeAttribute("src");
        video.load();
      }
    }
    empty.hidden = !!pair;
    setText(empty, pair ? "" : model.get("message") || "Nothing to compare.");
    for (const s of Object.values(sides)) s.fig.hidden = !pair;
    buttons.hidden = !pair;
    if (!pair) return;
    // Start both once both can play: one gesture-free attempt (muted), else the Play button.
    const ready = () => videos().every((v) => v.readyState >= 2);
    const go = () => {
      if (!ready()) return;
      for (const v of videos()) v.removeEventListener("loadeddata", go);
      start();
    };
    for (const v of videos()) v.addEventListener("loadeddata", go);
    go();
  }

  function drawCount() {
    const c = model.get("counter") || {};
    setText(count, c.text || "");
    const who = model.get("voter");
    setText(help, `Click the arena, then ← → ↓ (or the buttons); Backspace takes the last vote back. Parameters are ${
      ""}hidden and the sides shuffled.${who ? ` Voting as ${who}.` : ""}`);
    if (!pending) undoBtn.disabled = !c.can_undo;
    setText(message, model.get("pair") ? model.get("message") || "" : "");
  }

  loadPair();
  drawCount();
  unlock();
  const onPair = () => {
    loadPair();
    drawCount();
  };
  const onAnswer = () => {
    drawCount();
    unlock();
  };
  model.on("change:pair", onPair);
  model.on("change:counter", drawCount);
  model.on("change:message", drawCount);
  model.on("change:answered", onAnswer);
  return () => {
    if (timer) clearInterval(timer);
    if (flash) clearTimeout(flash);
    model.off("change:pair", onPair);
    model.off("change:counter", drawCount);
    model.off("change:message", drawCount);
    model.off("change:answered", onAnswer);
  };
}

export default { render };
