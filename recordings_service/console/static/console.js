// The console's only script (CSP: script-src 'self'). Changes go through the JSON API with
// the session's CSRF token; the service's refusals are shown in its own words.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

// The reader's time zone, so the server shows times and reads dates in it.
const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
if (!document.cookie.split("; ").includes("rs_tz=" + zone)) {
  document.cookie = "rs_tz=" + zone + "; path=/; SameSite=Strict; max-age=31536000";
  if (document.querySelector("main table, main dl")) location.reload();
}

async function api(method, path, body) {
  const headers = {"X-CSRF-Token": csrf()};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return fetch(path, {method, headers, credentials: "same-origin",
                      body: body === undefined ? undefined : JSON.stringify(body)});
}

async function problemText(response) {
  try {
    const problem = await response.json();
    return problem.detail || problem.title || ("refused (" + response.status + ")");
  } catch (e) {
    return "refused (" + response.status + ")";
  }
}

function say(form, text) {
  const box = form.querySelector(".refusal");
  box.textContent = text ? text.charAt(0).toUpperCase() + text.slice(1) + "." : "";
  box.hidden = !text;
}

function formBody(form) {
  const body = {};
  for (const field of form.elements) {
    if (field.type === "checkbox") {
      // Checkboxes anywhere on the page (form="…") add their value to a list.
      if (field.checked) body[field.name] = [...(body[field.name] || []), field.value];
      continue;
    }
    if (!field.name || field.value.trim() === "") continue;
    body[field.name] = field.hasAttribute("data-list")
      ? field.value.split(/[\s,]+/).filter(Boolean)
      : field.type === "number" ? Number(field.value) : field.value.trim();
  }
  return body;
}

// "1:32", "92" or "1:32.5" as milliseconds (NaN when it is none of those).
function millisecondsOf(text) {
  const parts = String(text || "").trim().split(":");
  if (parts.length > 3 || parts.some((p) => !/^\d+(\.\d+)?$/.test(p))) return NaN;
  return Math.round(parts.map(Number).reduce((sum, p) => sum * 60 + p, 0) * 1000);
}

// A redaction's form is one span: the API takes a list of them. Null when a time is not
// one a person writes.
function redactionBody(body) {
  const span = {start_ms: millisecondsOf(body.start), end_ms: millisecondsOf(body.end)};
  if (Number.isNaN(span.start_ms) || Number.isNaN(span.end_ms)) return null;
  if (body.channel !== undefined) span.channel = Number(body.channel);
  return {spans: [span], reason: body.reason, fill: body.fill};
}

async function download(response) {
  const blob = await response.blob();
  const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = match ? match[1] : "export.zip";
  document.body.appendChild(link);
  link.click();
  link.remove();
}

for (const form of document.querySelectorAll("form[data-method]")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    let body = formBody(form);
    if (form.dataset.shape === "redaction") {
      body = redactionBody(body);
      if (!body) { say(form, "give each time as m:ss, such as 1:32 or 1:32.5"); return; }
    }
    let path = form.dataset.api;
    if (form.dataset.apiTemplate) {
      // Fields named in the path go there, not in the body.
      path = form.dataset.apiTemplate.replace(/\{(\w+)\}/g, (_, name) => {
        const value = encodeURIComponent(body[name] || "");
        delete body[name];
        return value;
      });
    }
    say(form, "");
    const response = await api(form.dataset.method, path, body);
    if (!response.ok) { say(form, await problemText(response)); return; }
    if (form.dataset.then === "download") return download(response);
    if (form.dataset.then === "hold") {
      // The hold's own page lists what it covers.
      const hold = await response.json();
      location.href = "/legal-holds/" + encodeURIComponent(hold.id);
      return;
    }
    if (form.dataset.then === "request") {
      // What became of each recording stays on the request's own page.
      const answer = await response.json();
      location.href = "/subject-requests/" + encodeURIComponent(answer.subject_request.id);
      return;
    }
    location.reload();
  });
}

const signIn = document.getElementById("sign-in");
if (signIn) {
  signIn.addEventListener("submit", async (event) => {
    event.preventDefault();
    const response = await fetch("/v1/session", {
      method: "POST", headers: {"Content-Type": "application/json"}, credentials: "same-origin",
      body: JSON.stringify({name: signIn.elements.name.value, password: signIn.elements.password.value})});
    if (!response.ok) { say(signIn, await problemText(response)); return; }
    location.assign(signIn.dataset.next || "/");
  });
}

const signOut = document.getElementById("sign-out");
if (signOut) {
  signOut.addEventListener("click", async () => {
    await api("DELETE", "/v1/session");
    location.assign("/sign-in");
  });
}

// The player: a short-lived playback link for the chosen purpose (the browser's own Range
// requests do the seeking), one timeline drawn over the call's waveform, and keys. A link
// that expires during a pause is replaced (audited as a renewal) and play goes on there.
const listen = document.getElementById("listen");
if (listen) {
  const player = document.getElementById("player");
  const seek = document.getElementById("seek");
  const position = document.getElementById("position");
  const toggle = document.getElementById("toggle");
  const speed = document.getElementById("speed");
  const wave = document.getElementById("wave");
  const controls = [seek, toggle, speed, document.getElementById("back"),
                    document.getElementById("ahead")];
  const recording = listen.dataset.recording;
  const speeds = [...speed.options].map((o) => o.value);
  const clock = (s) => Math.floor(s / 60) + ":" + String(Math.floor(s % 60)).padStart(2, "0");
  let link = null;  // {url, expires, purpose}
  let levels = null;
  let resumeAt = null;
  let renewedAt = 0;
  let renewing = false;
  let wantPlaying = false;  // what the listener asked for last: a renewal keeps to it
  let intended = 0;  // where the listener is, or asked to go: a failed seek forgets it

  let marks = [];  // the moments the reader may see, in order
  // The span a redaction form holds, in seconds, when it is one.
  const redact = document.querySelector('form[data-shape="redaction"]');
  const chosen = () => {
    if (!redact) return null;
    const from = millisecondsOf(redact.elements.start.value);
    const to = millisecondsOf(redact.elements.end.value);
    return Number.isNaN(from) || Number.isNaN(to) || to <= from ? null
      : {from: from / 1000, to: to / 1000};
  };
  const draw = () => {
    const context = wave.getContext("2d");
    const width = wave.width, height = wave.height;
    const length = Number(seek.max) || 1;
    const played = Math.min(1, player.currentTime / length);
    context.clearRect(0, 0, width, height);
    for (const m of marks) {  // spans shaded behind the bars, points as a line over them
      if (m.end_seconds === null) continue;
      context.fillStyle = "rgba(130, 80, 223, 0.18)";
      context.fillRect(m.at_seconds / length * width, 0,
                       (m.end_seconds - m.at_seconds) / length * width, height);
    }
    const bars = levels || new Array(200).fill(24);
    const step = width / bars.length;
    bars.forEach((level, i) => {
      const h = Math.max(2, (level / 255) * height);
      context.fillStyle = (i + 0.5) / bars.length <= played ? "#1f4e79" : "#8c959f";
      context.fillRect(i * step, (height - h) / 2, Math.max(1, step - 1), h);
    });
    context.fillStyle = "#8250df";
    for (const m of marks) context.fillRect(m.at_seconds / length * width - 1, 0, 2, height);
    const span = chosen();
    if (span) {  // the span to redact, over everything: red, edged
      const x = span.from / length * width, w = Math.max(2, (span.to - span.from) / length * width);
      context.fillStyle = "rgba(207, 34, 46, 0.35)";
      context.fillRect(x, 0, w, height);
      context.fillStyle = "#cf222e";
      context.fillRect(x, 0, 2, height);
      context.fillRect(x + w - 2, 0, 2, height);
    }
  };
  const show = () => {
    if (!player.seeking && resumeAt === null) intended = player.currentTime;
    seek.value = player.currentTime;
    position.textContent = clock(player.currentTime);
    seek.setAttribute("aria-valuetext", clock(player.currentTime) + " of " + clock(Number(seek.max)));
    draw();
  };

  async function newLink(purpose, renews) {
    const response = await api("POST", "/v1/recordings/" + recording + "/playback-links",
                               {purpose, renews});
    if (!response.ok) { say(listen, await problemText(response)); return false; }
    const answer = await response.json();
    link = {url: answer.url, expires: Date.now() + answer.expires_in * 1000, purpose};
    return true;
  }
  async function loadWaveform(purpose) {
    const response = await fetch("/v1/recordings/" + recording + "/waveform?points=" + wave.width,
                                 {headers: {"Access-Purpose": purpose}, credentials: "same-origin"});
    levels = response.ok ? (await response.json()).levels : null;
    draw();
  }
  // Goes on from ``at`` with a fresh link for the same purpose.
  async function renew(at) {
    if (!link || renewing) return;
    renewing = true;
    try {
      if (!(await newLink(link.purpose, true))) return;
      renewedAt = Date.now();
      resumeAt = at;
      player.src = link.url;
      if (wantPlaying) player.play().catch(() => {});
    } finally {
      renewing = false;
    }
  }
  async function play() {
    wantPlaying = true;
    if (link && Date.now() > link.expires - 2000) return renew(intended);
    return player.play().catch(() => {});
  }
  const pause = () => { wantPlaying = false; player.pause(); };
  const goTo = (t) => {
    intended = Math.max(0, Math.min(Number(seek.max) || player.duration || 0, t));
    player.currentTime = intended;
    show();
  };
  const setSpeed = (i) => {
    speed.value = speeds[Math.max(0, Math.min(speeds.length - 1, i))];
    player.playbackRate = Number(speed.value);
  };

  // Moments: read and marked for the purpose of this listening; each one seeks there.
  const box = document.getElementById("moments-box");
  const list = document.getElementById("moments");
  const mark = document.getElementById("mark");
  const base = "/v1/recordings/" + recording + "/moments";
  async function loadMoments() {
    const response = await fetch(base, {headers: {"Access-Purpose": link.purpose},
                                        credentials: "same-origin"});
    marks = response.ok ? (await response.json()).items : [];
    list.replaceChildren(...marks.map((m) => {
      const item = document.createElement("li");
      const go = document.createElement("button");
      go.type = "button";
      const where = clock(m.at_seconds) + (m.end_seconds === null ? "" : "–" + clock(m.end_seconds));
      go.textContent = "Go to " + where;
      go.addEventListener("click", () => { goTo(m.at_seconds); play(); });
      item.append(go, " " + m.note + " (" + m.purpose + ", " + m.author + ")");
      if (m.author === box.dataset.me || box.dataset.compliance) {
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "quiet";
        remove.textContent = "Remove the moment at " + where;
        remove.addEventListener("click", async () => {
          const answer = await api("DELETE", base + "/" + encodeURIComponent(m.id));
          if (!answer.ok) { say(mark, await problemText(answer)); return; }
          loadMoments();
        });
        item.append(" ", remove);
      }
      return item;
    }));
    box.hidden = false;
    draw();
  }
  mark.addEventListener("submit", async (event) => {
    event.preventDefault();
    say(mark, "");
    const until = mark.elements.until.value.trim();
    const body = {purpose: link.purpose, at_seconds: Math.round(player.currentTime * 10) / 10,
                  note: mark.elements.note.value.trim()};
    if (until) {
      const [m, sec] = until.split(":").map(Number);
      body.end_seconds = m * 60 + sec;
    }
    const response = await api("POST", base, body);
    if (!response.ok) { say(mark, await problemText(response)); return; }
    mark.reset();
    loadMoments();
  });

  // Redaction: the span is chosen while listening (at the player's position, or by a
  // Shift+drag across the waveform), drawn over it, and previewed in place: the call
  // around it as it is, the span as the chosen fill would leave it (Web Audio gains
  // scheduled on the audio clock, so the edges fall where the service will cut).
  const tools = document.getElementById("span-tools");
  const spanStatus = document.getElementById("span-status");
  const stamp = (s) => Math.floor(s / 60) + ":" + (s % 60).toFixed(1).padStart(4, "0");
  const setSpan = (from, to) => {
    redact.elements.start.value = stamp(from);
    redact.elements.end.value = stamp(to);
    draw();
  };
  let graph = null;
  let preview = null;  // {from, to, fill, until, phase}
  function audioGraph() {
    if (graph) return graph;
    const context = new AudioContext();
    const whole = context.createGain();
    // Mono calls come out on both sides; stereo ones keep their two.
    whole.channelCount = 2;
    whole.channelCountMode = "explicit";
    whole.channelInterpretation = "speakers";
    const splitter = context.createChannelSplitter(2);
    const merger = context.createChannelMerger(2);
    context.createMediaElementSource(player).connect(whole);
    whole.connect(splitter);
    const sides = [0, 1].map((i) => {
      const gain = context.createGain();
      splitter.connect(gain, i);
      gain.connect(merger, 0, i);
      return gain;
    });
    const tone = context.createOscillator();
    tone.frequency.value = 1000;
    const tones = [0, 1].map((i) => {
      const gain = context.createGain();
      gain.gain.value = 0;
      tone.connect(gain);
      gain.connect(merger, 0, i);
      return gain;
    });
    tone.start();
    merger.connect(context.destination);
    graph = {context, whole, sides, tones};
    return graph;
  }
  function endPreview(words) {
    if (!preview) return;
    preview = null;
    for (const node of [graph.whole, ...graph.sides, ...graph.tones]) {
      node.gain.cancelScheduledValues(0);
    }
    [graph.whole, ...graph.sides].forEach((node) => { node.gain.value = 1; });
    graph.tones.forEach((node) => { node.gain.value = 0; });
    spanStatus.textContent = words;
  }
  function previewPhase() {
    if (!preview) return;
    const t = player.currentTime;
    if (t >= preview.until) {
      player.pause();
      endPreview("Preview ended. Redact to make it so, or choose another span.");
      return;
    }
    const phase = t < preview.from ? "before" : t < preview.to ? "span" : "after";
    if (phase === preview.phase) return;
    preview.phase = phase;
    spanStatus.textContent = phase === "span"
      ? "Preview: " + (preview.fill === "tone" ? "a tone" : "silence") + " in place of " +
        stamp(preview.from) + "–" + stamp(preview.to)
      : "Preview: the call " + phase + " the span";
  }
  async function startPreview() {
    const span = chosen();
    if (!span) { spanStatus.textContent = "Choose a span first: its start before its end."; return; }
    const {context, whole, sides, tones} = audioGraph();
    await context.resume();
    endPreview("");
    const channel = redact.elements.channel.value;
    const fill = redact.elements.fill.value;
    const begin = Math.max(0, span.from - 2);
    goTo(begin);
    player.playbackRate = 1;
    speed.value = "1";
    await play();
    // Media time to audio-clock time, from where the player is now.
    const at = (t) => context.currentTime + Math.max(0, t - player.currentTime);
    const cut = channel === "" ? [whole] : [sides[Number(channel)]];
    const sound = channel === "" ? tones : [tones[Number(channel)]];
    for (const node of cut) {
      node.gain.setValueAtTime(0, at(span.from));
      node.gain.setValueAtTime(1, at(span.to));
    }
    if (fill === "tone") {
      for (const node of sound) {
        node.gain.setValueAtTime(0.1, at(span.from));  // -20 dBFS, as the service writes it
        node.gain.setValueAtTime(0, at(span.to));
      }
    }
    preview = {from: span.from, to: span.to, fill,
               until: Math.min(Number(seek.max) || player.duration, span.to + 2), phase: null};
    previewPhase();
  }
  if (redact && tools) {
    document.getElementById("span-start").addEventListener("click", () => {
      const span = chosen();
      setSpan(player.currentTime, span && span.to > player.currentTime ? span.to : player.currentTime + 1);
    });
    document.getElementById("span-end").addEventListener("click", () => {
      const span = chosen();
      setSpan(span && span.from < player.currentTime ? span.from : Math.max(0, player.currentTime - 1),
              player.currentTime);
    });
    document.getElementById("span-preview").addEventListener("click", startPreview);
    for (const field of [redact.elements.start, redact.elements.end]) {
      field.addEventListener("input", draw);
    }
    player.addEventListener("timeupdate", previewPhase);
    player.addEventListener("pause", () => endPreview(preview ? "Preview stopped." : ""));
    player.addEventListener("seeking", () => {
      if (preview && Math.abs(player.currentTime - intended) > 0.5) endPreview("Preview stopped.");
    });
    // Shift+drag across the waveform: caught before the position slider sees it.
    const timeline = wave.parentElement;
    const timeAt = (x) => {
      const box = timeline.getBoundingClientRect();
      return Math.max(0, Math.min(1, (x - box.left) / box.width)) * (Number(seek.max) || 0);
    };
    let dragFrom = null;
    timeline.addEventListener("pointerdown", (event) => {
      if (!event.shiftKey || !link) return;
      event.preventDefault();
      event.stopPropagation();
      dragFrom = timeAt(event.clientX);
      timeline.setPointerCapture(event.pointerId);
    }, true);
    timeline.addEventListener("pointermove", (event) => {
      if (dragFrom === null) return;
      event.preventDefault();
      event.stopPropagation();
      const t = timeAt(event.clientX);
      setSpan(Math.min(dragFrom, t), Math.max(dragFrom, t));
    }, true);
    timeline.addEventListener("pointerup", (event) => {
      if (dragFrom === null) return;
      event.stopPropagation();
      dragFrom = null;
      const span = chosen();
      if (span) spanStatus.textContent = "Span " + stamp(span.from) + "–" + stamp(span.to) + " chosen.";
    }, true);
  }

  listen.addEventListener("submit", async (event) => {
    event.preventDefault();
    say(listen, "");
    const purpose = listen.elements.purpose.value;
    if (!(await newLink(purpose, false))) return;
    player.src = link.url;
    player.playbackRate = Number(speed.value);
    controls.forEach((c) => { c.disabled = false; });
    if (tools) tools.hidden = false;
    loadWaveform(purpose);
    loadMoments();
    play();
  });
  player.addEventListener("loadedmetadata", () => {
    if (resumeAt !== null) { player.currentTime = resumeAt; resumeAt = null; }
    player.playbackRate = Number(speed.value);
    if (!Number(seek.max) && isFinite(player.duration)) seek.max = player.duration;
  });
  player.addEventListener("timeupdate", show);
  player.addEventListener("play", () => { toggle.textContent = "Pause"; });
  player.addEventListener("pause", () => { toggle.textContent = "Play"; });
  player.addEventListener("error", () => {
    // An expired link is answered 404 when the player asks for more: renew it and go on
    // where it was; failing again at once means something else is wrong.
    if (link && Date.now() - renewedAt > 5000) renew(resumeAt ?? intended);
    else say(listen, "the audio could not be played");
  });
  toggle.addEventListener("click", () => (player.paused ? play() : pause()));
  document.getElementById("back").addEventListener("click", () => goTo(player.currentTime - 10));
  document.getElementById("ahead").addEventListener("click", () => goTo(player.currentTime + 10));
  speed.addEventListener("change", () => { player.playbackRate = Number(speed.value); });
  seek.addEventListener("input", () => goTo(Number(seek.value)));
  draw();

  document.addEventListener("keydown", (event) => {
    if (!link || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    const typing = target.matches("input:not([type=range]), select, textarea");
    if (typing) return;
    if (event.key === " " && target.tagName !== "BUTTON") {
      event.preventDefault();
      player.paused ? play() : pause();
    } else if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      event.preventDefault();
      const by = (event.shiftKey ? 30 : 5) * (event.key === "ArrowLeft" ? -1 : 1);
      goTo(player.currentTime + by);
    } else if (event.key === "[" || event.key === "]") {
      setSpeed(speeds.indexOf(speed.value) + (event.key === "]" ? 1 : -1));
    }
  });
}

// A call scored on a quality form: the service computes the score.
for (const form of document.querySelectorAll("form.evaluation")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    say(form, "");
    const answers = {};
    for (const field of form.elements) {
      if (!field.dataset.kind) continue;
      if (field.dataset.kind === "text") {
        if (field.value.trim()) answers[field.name] = field.value.trim();
      } else if (field.checked) {
        answers[field.name] = field.dataset.kind === "yes_no" ? field.value === "true" : Number(field.value);
      }
    }
    const comment = form.elements.comment.value.trim();
    // A first scoring names its form; a revision scores again on the evaluation's own.
    const response = await api("POST", form.dataset.target,
                               {form: form.dataset.form, answers, ...(comment ? {comment} : {})});
    if (!response.ok) { say(form, await problemText(response)); return; }
    location.reload();
  });
}

// Each cell names its column, for the narrow layout (console.css) where rows are cards;
// the roles keep the table a table for screen readers when CSS displays it as blocks.
for (const table of document.querySelectorAll("main table")) {
  const names = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
  table.setAttribute("role", "table");
  for (const th of table.querySelectorAll("thead th")) th.setAttribute("role", "columnheader");
  for (const group of table.querySelectorAll("thead, tbody")) group.setAttribute("role", "rowgroup");
  for (const row of table.querySelectorAll("tr")) {
    row.setAttribute("role", "row");
    [...row.children].forEach((cell, i) => {
      if (cell.tagName !== "TD") return;
      cell.setAttribute("role", "cell");
      if (names[i] && !cell.hasAttribute("colspan")) cell.dataset.label = names[i];
    });
  }
}
