/*
 * Ventanilla chat widget. Embed with one tag:
 *   <script src="https://ventanilla.example.cl/widget.js" defer
 *           data-title="Asistente virtual" data-open="false"></script>
 * Optional attributes: data-api (service origin, default: where this script came from),
 * data-title (panel title), data-open ("true" opens the panel on load).
 * No framework, no cookies: the chat session id lives in sessionStorage. The UI lives in a
 * shadow root so the host page's styles do not leak in (nor ours out).
 */
(() => {
  "use strict";
  if (window.__ventanillaWidget) return;
  window.__ventanillaWidget = true;

  // The service replaces this with the municipality profile's contact data when it serves the
  // file, so the widget can show them while the service is unreachable.
  const PROFILE = /*PROFILE*/ { municipio: "", telefono: "", correo: "" };

  const script = document.currentScript;
  const data = (script && script.dataset) || {};
  const BASE = (data.api || (script && script.src ? new URL(script.src, location.href).origin : location.origin)).replace(/\/$/, "");
  const TITLE = data.title || "Asistente virtual";
  const STORE = "ventanilla.chat";
  const KEEP = 60; // transcript entries kept in sessionStorage

  // ---------- state ----------
  let state = { sid: null, open: false, log: [] };
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORE) || "null");
    if (saved && typeof saved === "object") state = Object.assign(state, saved);
  } catch (_) { /* storage blocked or corrupt: start afresh */ }
  const save = () => {
    state.log = state.log.slice(-KEEP);
    try { sessionStorage.setItem(STORE, JSON.stringify(state)); } catch (_) { /* private mode */ }
  };

  // ---------- DOM helpers ----------
  const h = (tag, attrs, ...kids) => {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
      else if (k === "text") n.textContent = v;
      else n.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids.flat()) if (k !== null && k !== undefined) n.append(k);
    return n;
  };
  let uid = 0;
  const id = (p) => `vt-${p}-${++uid}`;

  // ---------- API ----------
  class Problem extends Error {
    constructor(kind, message, extra) { super(message); this.kind = kind; Object.assign(this, extra || {}); }
  }
  async function api(path, { method = "GET", body, headers = {} } = {}) {
    let res;
    try {
      res = await fetch(BASE + path, {
        method,
        headers: Object.assign(body ? { "content-type": "application/json" } : {}, headers),
        body: body ? JSON.stringify(body) : undefined,
        credentials: "omit",
        cache: "no-store",
      });
    } catch (e) {
      throw new Problem("offline", "network error");
    }
    let json = null;
    try { json = await res.json(); } catch (_) { /* empty or not JSON */ }
    if (res.status === 429) {
      const wait = parseInt(res.headers.get("retry-after") || "", 10);
      throw new Problem("limited", "too many requests", { wait: wait > 0 ? wait : 10 });
    }
    if (res.status >= 500) throw new Problem("offline", "service unavailable");
    return { status: res.status, json };
  }

  // ---------- shell ----------
  const host = h("div", { id: "ventanilla-widget" });
  const root = host.attachShadow({ mode: "open" });
  root.append(h("link", { rel: "stylesheet", href: BASE + "/widget.css" }));
  const launcher = h("button", { type: "button", class: "launcher", "aria-expanded": "false", "aria-controls": "vt-panel" },
    h("span", { class: "dot", "aria-hidden": "true" }), h("span", { text: "¿Te ayudo? Chatea con el municipio" }));
  const logEl = h("div", { class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions", tabindex: "0", "aria-label": "Conversación" });
  const notice = h("div", { class: "notice", role: "alert", hidden: true });
  const typing = h("div", { class: "msg bot typing", hidden: true },
    h("span", { class: "sr", text: "El asistente está escribiendo…" }),
    h("span", { class: "dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")));
  const inputId = id("input");
  const input = h("input", { id: inputId, type: "text", autocomplete: "off", maxlength: "1000", placeholder: "Escribe tu consulta…" });
  const sendBtn = h("button", { type: "submit", class: "send" }, "Enviar");
  const composer = h("form", { class: "composer", onsubmit: (e) => { e.preventDefault(); sendText(); } },
    h("label", { for: inputId, class: "sr", text: "Escribe tu consulta" }), input, sendBtn);
  const closeBtn = h("button", { type: "button", class: "close", "aria-label": "Cerrar el chat", onclick: () => toggle(false) }, "×");
  const menuBtn = h("button", { type: "button", class: "ghost", onclick: () => clickButton({ id: "menu", label: "Menú principal" }) }, "Menú");
  const titleId = id("title");
  const panel = h("section", { id: "vt-panel", class: "panel", role: "dialog", "aria-modal": "false", "aria-labelledby": titleId, hidden: true },
    h("header", {}, h("h2", { id: titleId, text: TITLE }), menuBtn, closeBtn),
    logEl, typing, notice, composer,
    h("p", { class: "foot", text: "No compartas claves ni datos bancarios en el chat." }));
  root.append(launcher, panel);
  launcher.addEventListener("click", () => toggle(!state.open));
  panel.addEventListener("keydown", (e) => { if (e.key === "Escape") { e.preventDefault(); toggle(false); } });

  function toggle(open) {
    state.open = open;
    save();
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    launcher.hidden = open;
    if (open) {
      input.focus();
      if (!state.sid) start();
    } else {
      launcher.focus();
    }
  }

  // ---------- messages ----------
  function scroll() { logEl.scrollTop = logEl.scrollHeight; }
  function addNode(node) { logEl.append(node); scroll(); return node; }

  function userBubble(text) { return h("div", { class: "msg me" }, h("span", { class: "sr", text: "Tú: " }), text); }

  function internalAction(url) {
    // Links into the service's own OIRS pages open the same flows inside the chat.
    let u;
    try { u = new URL(url, BASE + "/"); } catch (_) { return null; }
    if (u.origin !== new URL(BASE + "/").origin) return null;
    if (u.pathname === "/oirs") return () => fileForm({ type: u.searchParams.get("tipo"), topic: u.searchParams.get("tema") });
    if (u.pathname === "/seguimiento") return () => trackForm(u.searchParams.get("folio") || "");
    return null;
  }

  function botBubble(reply, live) {
    const box = h("div", { class: "msg bot", tabindex: "-1" }, h("span", { class: "sr", text: "Asistente: " }));
    for (const para of String(reply.text || "").split(/\n{2,}/)) box.append(h("p", { text: para }));
    const links = reply.links || [];
    if (links.length) {
      const ul = h("ul", { class: "links" });
      for (const l of links) {
        const act = internalAction(l.url);
        ul.append(h("li", {}, act
          ? h("button", { type: "button", class: "link", onclick: act }, l.label)
          : h("a", { href: new URL(l.url, BASE + "/").href, target: "_blank", rel: "noopener" }, l.label, h("span", { class: "sr", text: " (abre en una pestaña nueva)" }))));
      }
      box.append(ul);
    }
    const buttons = reply.buttons || [];
    if (buttons.length) {
      box.append(h("div", { class: "buttons", role: "group", "aria-label": "Opciones" },
        buttons.map((b) => h("button", { type: "button", class: "option", onclick: () => clickButton(b) }, b.label))));
    }
    if (live === false) box.removeAttribute("tabindex");
    return box;
  }

  function replay() {
    logEl.textContent = "";
    for (const e of state.log) logEl.append(e.me !== undefined ? userBubble(e.me) : botBubble(e.bot, false));
    scroll();
  }

  function remember(entry) { state.log.push(entry); save(); }

  // ---------- sending, with offline and 429 handling ----------
  let busy = false;
  let pending = null; // the action to retry
  let retryTimer = null;
  let retryDelay = 3;

  function clearNotice() {
    notice.hidden = true;
    notice.textContent = "";
    clearTimeout(retryTimer);
    retryTimer = null;
    retryDelay = 3;
  }

  function contactLine() {
    const parts = [];
    if (PROFILE.telefono) parts.push(h("a", { href: "tel:" + PROFILE.telefono.replace(/[^+\d]/g, "") }, PROFILE.telefono));
    if (PROFILE.correo) parts.push(h("a", { href: "mailto:" + PROFILE.correo }, PROFILE.correo));
    if (!parts.length) return null;
    const p = h("p", {}, "Mientras tanto puedes llamar al ", parts[0]);
    if (parts[1]) p.append(" o escribir a ", parts[1]);
    p.append(".");
    return p;
  }

  function showProblem(problem, action) {
    pending = action;
    clearTimeout(retryTimer);
    notice.textContent = "";
    let wait;
    if (problem.kind === "limited") {
      wait = problem.wait;
      notice.append(h("p", { text: `Recibimos muchos mensajes seguidos desde tu conexión y debemos pausar un momento. Espera unos ${wait} segundos: lo volveremos a intentar solos y tu mensaje sigue escrito.` }));
    } else {
      wait = retryDelay;
      retryDelay = Math.min(retryDelay * 2, 30);
      notice.append(h("p", { text: `No pudimos conectarnos con el asistente${PROFILE.municipio ? " de la " + PROFILE.municipio : ""}. Revisa tu conexión; lo intentaremos de nuevo en ${wait} segundos y tu mensaje sigue escrito.` }));
      const c = contactLine();
      if (c) notice.append(c);
    }
    notice.append(h("button", { type: "button", class: "option", onclick: retryNow }, "Reintentar ahora"));
    notice.hidden = false;
    retryTimer = setTimeout(retryNow, wait * 1000);
  }

  function retryNow() {
    clearTimeout(retryTimer);
    retryTimer = null;
    const act = pending;
    pending = null;
    if (act) act();
  }

  async function run(action, work) {
    if (busy) return false;
    busy = true;
    typing.hidden = false;
    logEl.setAttribute("aria-busy", "true");
    scroll();
    try {
      await work();
      const hadNotice = !notice.hidden;
      clearNotice();
      if (hadNotice) input.focus();
      return true;
    } catch (e) {
      if (!(e instanceof Problem)) throw e;
      showProblem(e, action);
      return false;
    } finally {
      busy = false;
      typing.hidden = true;
      logEl.removeAttribute("aria-busy");
    }
  }

  async function start() {
    await run(start, async () => {
      const r = await api("/api/v1/chat/sessions", { method: "POST" });
      if (r.status !== 201) throw new Problem("offline", "could not start");
      state.sid = r.json.session_id;
      remember({ bot: r.json.reply });
      addNode(botBubble(r.json.reply));
    });
  }

  async function message(payload) {
    if (!state.sid) {
      const r = await api("/api/v1/chat/sessions", { method: "POST" });
      if (r.status !== 201) throw new Problem("offline", "could not start");
      state.sid = r.json.session_id;
    }
    let r = await api(`/api/v1/chat/sessions/${encodeURIComponent(state.sid)}/messages`, { method: "POST", body: payload });
    if (r.status === 404) {
      // The session expired (idle): start a new one and say it again.
      state.sid = null;
      return message(payload);
    }
    if (r.status === 422 && payload.button) {
      // An option from an older menu (the catalog changed since): say so and offer the menu.
      return { text: "Esa opción ya no está disponible. Te muestro el menú para seguir.", buttons: [{ id: "menu", label: "Menú principal" }], links: [] };
    }
    if (r.status !== 200) throw new Problem("offline", "unexpected answer");
    return r.json.reply;
  }

  function sendText() {
    const text = input.value.trim();
    if (!text || busy) return;
    const action = () => run(action, async () => {
      const reply = await message({ text });
      input.value = "";
      remember({ me: text });
      addNode(userBubble(text));
      remember({ bot: reply });
      addNode(botBubble(reply));
    });
    action();
  }

  function clickButton(b) {
    const action = () => run(action, async () => {
      const reply = await message({ button: b.id });
      remember({ me: b.label });
      addNode(userBubble(b.label));
      remember({ bot: reply });
      const node = addNode(botBubble(reply));
      node.focus({ preventScroll: true });
    });
    action();
  }

  // ---------- forms inside the chat ----------
  let typesCache = null;
  let topicsCache = null;

  function field(form, name, label, control, hint) {
    const fid = id(name);
    control.id = fid;
    control.name = name;
    const err = h("p", { class: "error", id: fid + "-err", hidden: true });
    const wrap = h("div", { class: "field" }, h("label", { for: fid, text: label }), control);
    if (hint) {
      const hid = fid + "-hint";
      wrap.append(h("p", { class: "hint", id: hid, text: hint }));
      control.setAttribute("aria-describedby", hid);
    }
    wrap.append(err);
    form.append(wrap);
    form.fields = form.fields || {};
    form.fields[name] = { control, err };
    return control;
  }

  function setError(form, name, message) {
    for (const f of Object.values(form.fields)) {
      f.err.hidden = true;
      f.control.removeAttribute("aria-invalid");
    }
    const f = form.fields[name] || form.fields.description;
    f.err.textContent = message;
    f.err.hidden = false;
    f.control.setAttribute("aria-invalid", "true");
    const described = (f.control.getAttribute("aria-describedby") || "").split(" ").filter((x) => x && x !== f.err.id);
    f.control.setAttribute("aria-describedby", described.concat(f.err.id).join(" "));
    f.control.focus();
  }

  function formShell(title, onsubmit, submitLabel) {
    const hid = id("form-title");
    const form = h("form", { class: "inline", "aria-labelledby": hid, novalidate: true });
    const box = h("div", { class: "msg bot form" }, h("h3", { id: hid, text: title }), form);
    const submit = h("button", { type: "submit", class: "primary" }, submitLabel);
    const cancel = h("button", { type: "button", class: "ghost", onclick: () => { box.remove(); input.focus(); } }, "Cancelar");
    form.addEventListener("submit", (e) => { e.preventDefault(); onsubmit(form, box); });
    form.actions = h("div", { class: "actions" }, submit, cancel);
    return { form, box };
  }

  async function loadChoices() {
    if (!typesCache) {
      const t = await api("/api/v1/oirs/case-types");
      const p = await api("/api/v1/oirs/topics");
      if (t.status !== 200 || p.status !== 200) throw new Problem("offline", "could not load choices");
      typesCache = t.json;
      topicsCache = p.json.slice().sort((a, b) => a.label.localeCompare(b.label, "es"));
    }
  }

  function fileForm(pre) {
    run(() => fileForm(pre), async () => {
      await loadChoices();
      const { form, box } = formShell("Ingresar un caso en la OIRS", submitCase, "Enviar caso");
      const types = typesCache.filter((t) => t.id !== "transparencia" && t.id !== "datos_personales");
      field(form, "type", "Tipo de caso", h("select", {}, types.map((t) => h("option", { value: t.id, selected: t.id === (pre.type || "consulta") }, t.name))));
      field(form, "topic", "Tema", h("select", {}, topicsCache.map((t) => h("option", { value: t.id, selected: t.id === pre.topic }, t.label))));
      field(form, "description", "Describe tu caso", h("textarea", { rows: "4", maxlength: "5000" }), "Qué pasó, dónde y cuándo (al menos 10 caracteres).");
      field(form, "name", "Tu nombre", h("input", { type: "text", autocomplete: "name" }));
      field(form, "email", "Correo electrónico (opcional)", h("input", { type: "email", autocomplete: "email" }), "Te enviaremos el folio y la respuesta.");
      field(form, "phone", "Teléfono (opcional)", h("input", { type: "tel", autocomplete: "tel" }), "Ej.: +56 9 1234 5678");
      field(form, "rut", "RUT (opcional)", h("input", { type: "text" }), "Ej.: 12.345.678-5. Permite seguir el caso sin el código.");
      const consent = h("input", { type: "checkbox", value: "si" });
      const cid = id("consent");
      consent.id = cid;
      const cerr = h("p", { class: "error", id: cid + "-err", hidden: true });
      form.append(h("div", { class: "field check" }, consent, h("label", { for: cid, text: "Acepto que la municipalidad use estos datos solo para responder mi caso." })), cerr);
      form.fields.consent = { control: consent, err: cerr };
      form.append(form.actions);
      addNode(box);
      form.fields.type.control.focus();
    });
  }

  function submitCase(form, box) {
    const v = (n) => form.fields[n].control.value.trim();
    const body = {
      type: v("type"), topic: v("topic"), description: v("description"), name: v("name"),
      consent: form.fields.consent.control.checked,
    };
    for (const n of ["email", "phone", "rut"]) if (v(n)) body[n] = v(n);
    if (state.sid) body.chat_session_id = state.sid;
    // Check what the browser can before asking the service.
    if (body.description.length < 10) return setError(form, "description", "Describe tu caso con al menos 10 caracteres.");
    if (body.name.length < 2) return setError(form, "name", "Escribe tu nombre.");
    if (!body.consent) return setError(form, "consent", "Debes aceptar el uso de tus datos para ingresar el caso.");
    // Retrying the same case reuses its key (the service files it once); an edited case is a
    // new request and gets a new key.
    const sent = JSON.stringify(body);
    if (form.idemBody !== sent) {
      form.idem = (crypto.randomUUID && crypto.randomUUID()) || String(Date.now()) + Math.random();
      form.idemBody = sent;
    }
    const action = () => run(action, async () => {
      const r = await api("/api/v1/oirs/cases", { method: "POST", body, headers: { "idempotency-key": form.idem } });
      if (r.status === 422 || r.status === 400) {
        const err = (r.json && r.json.error) || {};
        setError(form, err.field || "description", err.message || "Revisa los datos del formulario.");
        return;
      }
      // 201 filed; 200 is the replay of a case already filed with this key.
      if (r.status !== 201 && r.status !== 200) throw new Problem("offline", "filing failed");
      const done = filedBubble(r.json);
      box.replaceWith(done);
      remember({ bot: { text: `Caso ingresado. Folio ${r.json.folio}, código de seguimiento ${r.json.tracking_code}.`, buttons: [], links: [] } });
      done.focus();
    });
    action();
  }

  function copyButton(value, what) {
    const b = h("button", { type: "button", class: "copy" }, `Copiar ${what}`);
    b.addEventListener("click", async () => {
      let ok = false;
      try { await navigator.clipboard.writeText(value); ok = true; } catch (_) { /* not allowed */ }
      b.textContent = ok ? `${what[0].toUpperCase() + what.slice(1)} copiado` : `Selecciona y copia: ${value}`;
    });
    return b;
  }

  function filedBubble(f) {
    const due = f.due_date.split("-").reverse().join("-");
    const url = `/seguimiento?folio=${encodeURIComponent(f.folio)}&code=${encodeURIComponent(f.tracking_code)}`;
    return h("div", { class: "msg bot filed", tabindex: "-1" },
      h("p", { text: "¡Listo! Recibimos tu caso. Guarda estos datos para seguirlo:" }),
      h("dl", {},
        h("dt", { text: "Folio" }), h("dd", {}, h("code", { class: "folio", text: f.folio }), copyButton(f.folio, "folio")),
        h("dt", { text: "Código de seguimiento" }), h("dd", {}, h("code", { class: "tracking", text: f.tracking_code }), copyButton(f.tracking_code, "código"))),
      h("p", { text: `Plazo de respuesta: ${due} (días hábiles).` }),
      h("p", {}, h("a", { href: BASE + url, target: "_blank", rel: "noopener" }, "Ver el estado de mi caso", h("span", { class: "sr", text: " (abre en una pestaña nueva)" }))));
  }

  function trackForm(folio) {
    const { form, box } = formShell("Seguir mi caso", submitTrack, "Ver estado");
    field(form, "folio", "Folio", h("input", { type: "text", value: folio || "", placeholder: "OIRS-2026-000123" }));
    field(form, "code", "Código de seguimiento", h("input", { type: "text", autocomplete: "off" }), "O bien, en vez del código, el RUT que indicaste:");
    field(form, "rut", "RUT", h("input", { type: "text", autocomplete: "off" }));
    form.append(form.actions);
    addNode(box);
    form.fields[folio ? "code" : "folio"].control.focus();
  }

  function submitTrack(form, box) {
    const v = (n) => form.fields[n].control.value.trim();
    const folio = v("folio").toUpperCase();
    if (!/^OIRS-\d{4}-\d{1,9}$/.test(folio)) return setError(form, "folio", "Escribe el folio como OIRS-2026-000123.");
    if (!v("code") && !v("rut")) return setError(form, "code", "Escribe el código de seguimiento o el RUT.");
    const q = v("code") ? `code=${encodeURIComponent(v("code"))}` : `rut=${encodeURIComponent(v("rut"))}`;
    const action = () => run(action, async () => {
      const r = await api(`/api/v1/oirs/cases/${encodeURIComponent(folio)}?${q}`);
      if (r.status === 404 || r.status === 400) return setError(form, "code", "No encontramos un caso con esos datos. Revisa el folio y el código o RUT.");
      if (r.status !== 200) throw new Problem("offline", "tracking failed");
      const c = r.json;
      const node = h("div", { class: "msg bot status", tabindex: "-1" },
        h("h3", { text: `${c.folio}: ${c.status_label}` }),
        h("p", { text: `Plazo de respuesta: ${c.due_date.split("-").reverse().join("-")}` }),
        h("ol", {}, c.history.map((e) => h("li", { text: e.note ? `${e.label}: ${e.note}` : e.label }))),
        c.answer ? h("div", { class: "answer" }, h("h4", { text: "Respuesta" }), h("p", { text: c.answer })) : null);
      box.replaceWith(node);
      node.focus();
    });
    action();
  }

  // ---------- boot ----------
  function mount() {
    document.body.append(host);
    replay();
    if (state.open) {
      panel.hidden = false;
      launcher.hidden = true;
      launcher.setAttribute("aria-expanded", "true");
      if (!state.sid) start();
    }
    if (data.open === "true" && !state.open) toggle(true);
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
