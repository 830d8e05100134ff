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
      ? field.value.split(/[\s,]+/).filter(Boolean) : field.value.trim();
  }
  return body;
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
    const body = formBody(form);
    let path = form.dataset.api;
    if (form.dataset.apiTemplate) {
      path = form.dataset.apiTemplate.replace("{purpose}", encodeURIComponent(body.purpose));
      delete body.purpose;
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

// The player: a short-lived playback link for the chosen purpose; the browser's own
// Range requests do the seeking.
const listen = document.getElementById("listen");
if (listen) {
  const player = document.getElementById("player");
  const seek = document.getElementById("seek");
  const position = document.getElementById("position");
  const clock = (s) => Math.floor(s / 60) + ":" + String(Math.floor(s % 60)).padStart(2, "0");
  listen.addEventListener("submit", async (event) => {
    event.preventDefault();
    say(listen, "");
    const path = "/v1/recordings/" + listen.dataset.recording + "/playback-links";
    const response = await api("POST", path, {purpose: listen.elements.purpose.value});
    if (!response.ok) { say(listen, await problemText(response)); return; }
    player.src = (await response.json()).url;
    seek.disabled = false;
    player.play().catch(() => {});
  });
  player.addEventListener("timeupdate", () => {
    seek.value = Math.floor(player.currentTime);
    position.textContent = clock(player.currentTime);
  });
  seek.addEventListener("input", () => {
    if (player.src) player.currentTime = Number(seek.value);
    position.textContent = clock(Number(seek.value));
  });
  player.addEventListener("error", () => say(listen, "the audio could not be played; the link may have expired"));
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
