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
  const PROFILE = /*PROFILE*/ { municipio: "", telefono: "", correo: "", trato: "usted" };
  // Every sentence the widget says, in the municipality's register (its profile's "trato").
  const T = PROFILE.trato === "tu" ? {
    launcher: "¿Te ayudo? Chatea con el municipio", placeholder: "Escribe tu consulta…", label: "Escribe tu consulta",
    me: "Tú: ", foot: "No compartas claves ni datos bancarios en el chat.",
    meanwhile: "Mientras tanto puedes llamar al ", orWrite: " o escribir a ",
    limited: (w) => `Recibimos muchos mensajes seguidos desde tu conexión y debemos pausar un momento. Espera unos ${w} segundos: lo volveremos a intentar solos y tu mensaje sigue escrito.`,
    offline: (m, w) => `No pudimos conectarnos con el asistente${m}. Revisa tu conexión; lo intentaremos de nuevo en ${w} segundos y tu mensaje sigue escrito.`,
    gone: "Esa opción ya no está disponible. Te muestro el menú para seguir.",
    describe: "Describe tu caso", name: "Tu nombre", emailHint: "Te enviaremos el folio y la respuesta.",
    rutHint: "Permite seguir el caso sin el código.", codeHint: "O bien, en vez del código, el RUT que indicaste:",
    errDescription: "Describe tu caso con al menos 10 caracteres.", errName: "Escribe tu nombre.",
    errConsent: "Para ingresar el caso debes aceptar que la municipalidad use tus datos para responderte.",
    errType: "Elige el tipo de caso.", errTopic: "Elige el tema de tu caso.", errForm: "Revisa los datos del formulario.",
    errFolio: "Escribe el folio como OIRS-2026-000123.", errSecret: "Escribe el código de seguimiento o el RUT.",
    notFound: "No encontramos un caso con esos datos. Revisa el folio y el código o el RUT.",
    filed: "¡Listo! Recibimos tu caso. Guarda estos datos para seguirlo:",
    mailed: "Te enviamos un correo de confirmación con estos datos.", notMailed: "No te llegará un correo: anota el folio y el código.",
    rightLabel: "Derecho que quieres ejercer", chooseRight: "Elige un derecho",
    rightHint: "Se responde en 30 días corridos, prorrogables una vez por otros 30. Indica también tu RUT.",
    errRight: "Elige qué derecho quieres ejercer sobre tus datos.", errRutData: "Para una solicitud sobre tus datos personales escribe tu RUT.",
    chooseType: "Elige el tipo de caso", chooseTopic: "Elige un tema", fix: (n) => n === 1 ? "Revisa este campo:" : `Revisa estos ${n} campos:`,
    helped: "¿Te sirvió?", yesLabel: "Sí, esta respuesta me sirvió", noLabel: "No, esta respuesta no me sirvió",
    thanks: "¡Gracias por contarnos! Nos ayuda a mejorar las respuestas.",
  } : {
    launcher: "¿Le ayudo? Converse con el municipio", placeholder: "Escriba su consulta…", label: "Escriba su consulta",
    me: "Usted: ", foot: "No comparta claves ni datos bancarios en el chat.",
    meanwhile: "Mientras tanto puede llamar al ", orWrite: " o escribir a ",
    limited: (w) => `Recibimos muchos mensajes seguidos desde su conexión y debemos pausar un momento. Espere unos ${w} segundos: lo volveremos a intentar solos y su mensaje sigue escrito.`,
    offline: (m, w) => `No pudimos conectarnos con el asistente${m}. Revise su conexión; lo intentaremos de nuevo en ${w} segundos y su mensaje sigue escrito.`,
    gone: "Esa opción ya no está disponible. Le muestro el menú para seguir.",
    describe: "Describa su caso", name: "Su nombre", emailHint: "Le enviaremos el folio y la respuesta.",
    rutHint: "Permite seguir el caso sin el código.", codeHint: "O bien, en vez del código, el RUT que indicó:",
    errDescription: "Describa su caso con al menos 10 caracteres.", errName: "Escriba su nombre.",
    errConsent: "Para ingresar el caso debe aceptar que la municipalidad use sus datos para responderle.",
    errType: "Elija el tipo de caso.", errTopic: "Elija el tema de su caso.", errForm: "Revise los datos del formulario.",
    errFolio: "Escriba el folio como OIRS-2026-000123.", errSecret: "Escriba el código de seguimiento o el RUT.",
    notFound: "No encontramos un caso con esos datos. Revise el folio y el código o el RUT.",
    filed: "Recibimos su caso. Guarde estos datos para seguirlo:",
    mailed: "Le enviamos un correo de confirmación con estos datos.", notMailed: "No le llegará un correo: anote el folio y el código.",
    rightLabel: "Derecho que quiere ejercer", chooseRight: "Elija un derecho",
    rightHint: "Se responde en 30 días corridos, prorrogables una vez por otros 30. Indique también su RUT.",
    errRight: "Elija qué derecho quiere ejercer sobre sus datos.", errRutData: "Para una solicitud sobre sus datos personales escriba su RUT.",
    chooseType: "Elija el tipo de caso", chooseTopic: "Elija un tema", fix: (n) => n === 1 ? "Revise este campo:" : `Revise estos ${n} campos:`,
    helped: "¿Le sirvió?", yesLabel: "Sí, esta respuesta me sirvió", noLabel: "No, esta respuesta no me sirvió",
    thanks: "¡Gracias por contarnos! Nos ayuda a mejorar las respuestas.",
  };

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
    h("span", { class: "icon", "aria-hidden": "true" }), h("span", { class: "sr", text: T.launcher }));
  launcher.title = T.launcher;
  const logEl = h("div", { class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions", tabindex: "0", "aria-label": "Conversación" });
  const notice = h("div", { class: "notice", role: "alert", hidden: true });
  const typing = h("div", { class: "msg bot typing", hidden: true },
    h("span", { class: "sr", text: "El asistente está escribiendo…" }),
    h("span", { class: "dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")));
  const inputId = id("input");
  const input = h("input", { id: inputId, type: "text", autocomplete: "off", maxlength: "1000", placeholder: T.placeholder });
  const sendBtn = h("button", { type: "submit", class: "send" }, "Enviar");
  const composer = h("form", { class: "composer", onsubmit: (e) => { e.preventDefault(); sendText(); } },
    h("label", { for: inputId, class: "sr", text: T.label }), input, sendBtn);
  const closeBtn = h("button", { type: "button", class: "close", "aria-label": "Cerrar el chat", onclick: () => toggle(false) }, "×");
  const menuBtn = h("button", { type: "button", class: "ghost", onclick: () => clickButton({ id: "menu", label: "Menú principal" }) }, "Menú");
  const titleId = id("title");
  const panel = h("section", { id: "vt-panel", class: "panel", role: "dialog", "aria-modal": "false", "aria-labelledby": titleId, hidden: true },
    h("header", {}, h("h2", { id: titleId, text: TITLE }), menuBtn, closeBtn),
    logEl, typing, notice, composer,
    h("p", { class: "foot", text: T.foot }));
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
      toLatest();
      if (!state.sid) start();
    } else {
      launcher.focus();
    }
  }

  // ---------- messages ----------
  function scroll() { logEl.scrollTop = logEl.scrollHeight; }
  // The latest message in view once the panel is laid out (after a reload or reopening).
  function toLatest() { requestAnimationFrame(scroll); }
  // A new answer is read from its first line, however long it is.
  function showStart(node) {
    const top = node.offsetTop - logEl.offsetTop - 8;
    logEl.scrollTop = Math.max(0, Math.min(top, logEl.scrollHeight));
  }
  function addNode(node) {
    logEl.append(node);
    if (node.classList.contains("me")) scroll();
    else showStart(node);
    return node;
  }

  function userBubble(text) { return h("div", { class: "msg me" }, h("span", { class: "sr", text: T.me }), text); }

  function internalAction(url) {
    // Links into the service's own OIRS pages open the same flows inside the chat.
    let u;
    try { u = new URL(url, BASE + "/"); } catch (_) { return null; }
    if (u.origin !== new URL(BASE + "/").origin) return null;
    if (u.pathname === "/oirs") return () => fileForm({ type: u.searchParams.get("tipo"), topic: u.searchParams.get("tema"), right: u.searchParams.get("derecho") });
    if (u.pathname === "/oirs/recibido") return null;
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
          ? h("button", { type: "button", class: "option", onclick: act }, l.label)
          : h("a", { href: new URL(l.url, BASE + "/").href, target: "_blank", rel: "noopener" }, l.label, h("span", { class: "sr", text: " (abre en una pestaña nueva)" }))));
      }
      box.append(ul);
    }
    const buttons = reply.buttons || [];
    if (buttons.length) {
      box.append(h("div", { class: "buttons", role: "group", "aria-label": "Opciones" },
        buttons.map((b) => h("button", { type: "button", class: "option", onclick: () => clickButton(b) }, b.label))));
    }
    if (reply.turn_id && reply.rate) box.append(feedbackBlock(reply));
    if (live === false) box.removeAttribute("tabindex");
    return box;
  }

  // "¿Le sirvió?" under an answer: one click, then thanks (kept in the transcript).
  function feedbackBlock(reply) {
    const box = h("div", { class: "feedback" });
    const thanks = () => {
      box.textContent = "";
      box.append(h("p", { role: "status", text: T.thanks }));
    };
    if (reply.useful !== undefined) { thanks(); return box; }
    const send = (useful) => {
      reply.useful = useful;
      save();
      thanks();
      // The buttons are gone: keep the keyboard where the resident was.
      const said = box.firstChild;
      said.setAttribute("tabindex", "-1");
      said.focus({ preventScroll: true });
      // Best effort: a lost verdict is not worth interrupting the conversation for.
      api(`/api/v1/chat/sessions/${encodeURIComponent(reply.sid)}/feedback`, { method: "POST", body: { turn_id: reply.turn_id, useful } }).catch(() => {});
    };
    const q = id("fb");
    box.append(h("span", { id: q, text: T.helped }),
      h("div", { class: "fb-choices", role: "group", "aria-labelledby": q },
        h("button", { type: "button", class: "fb", "aria-label": T.yesLabel, onclick: () => send(true) }, "Sí"),
        h("button", { type: "button", class: "fb", "aria-label": T.noLabel, onclick: () => send(false) }, "No")));
    return box;
  }

  function replay() {
    logEl.textContent = "";
    for (const e of state.log) logEl.append(e.me !== undefined ? userBubble(e.me) : botBubble(e.bot, false));
    toLatest();
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
    const p = h("p", {}, T.meanwhile, parts[0]);
    if (parts[1]) p.append(T.orWrite, parts[1]);
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
      notice.append(h("p", { text: T.limited(wait) }));
    } else {
      wait = retryDelay;
      retryDelay = Math.min(retryDelay * 2, 30);
      notice.append(h("p", { text: T.offline(PROFILE.municipio ? " de la " + PROFILE.municipio : "", wait) }));
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
      return { text: T.gone, buttons: [{ id: "menu", label: "Menú principal" }], links: [] };
    }
    if (r.status !== 200) throw new Problem("offline", "unexpected answer");
    // The turn, so the resident can say whether an answer helped.
    return Object.assign(r.json.reply, { turn_id: r.json.turn_id, rate: !!(r.json.match && r.json.match.decision === "answer"), sid: state.sid });
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
  let rightsCache = null;

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

  // Shows every error at once, each beside its field, and puts the focus on the first.
  // The place a case is about, from the device's location: optional, shown once captured,
  // and clearable. Hidden where the browser has no geolocation.
  function locationField(form) {
    const status = h("p", { class: "hint", id: id("loc-status"), role: "status", text: "Sin ubicación en el mapa." });
    const use = h("button", { type: "button", class: "ghost", "aria-describedby": status.id }, "Usar mi ubicación");
    const clear = h("button", { type: "button", class: "ghost", hidden: true }, "Quitar la ubicación");
    const err = h("p", { class: "error", id: id("loc-err"), hidden: true });
    form.point = null;
    use.addEventListener("click", () => {
      status.textContent = "Buscando la ubicación…";
      navigator.geolocation.getCurrentPosition((p) => {
        form.point = { lat: Number(p.coords.latitude.toFixed(6)), long: Number(p.coords.longitude.toFixed(6)) };
        status.textContent = `Ubicación indicada: ${form.point.lat}, ${form.point.long}.`;
        clear.hidden = false;
      }, () => { status.textContent = "No se pudo obtener la ubicación; se puede escribir la dirección."; },
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
    });
    clear.addEventListener("click", () => {
      form.point = null;
      status.textContent = "Sin ubicación en el mapa.";
      clear.hidden = true;
      use.focus();
    });
    const wrap = h("div", { class: "field" }, h("p", { class: "label", text: "Punto en el mapa (opcional)" }), status, h("div", { class: "actions" }, use, clear), err);
    wrap.hidden = !navigator.geolocation;
    form.append(wrap);
    form.fields = form.fields || {};
    form.fields.lat = { control: use, err };
    form.fields.long = { control: use, err };
  }

  function setErrors(form, errors) {
    for (const f of Object.values(form.fields)) {
      f.err.hidden = true;
      f.control.removeAttribute("aria-invalid");
      const described = (f.control.getAttribute("aria-describedby") || "").split(" ").filter((x) => x && x !== f.err.id);
      if (described.length) f.control.setAttribute("aria-describedby", described.join(" "));
      else f.control.removeAttribute("aria-describedby");
    }
    let first = null;
    for (const { field, message } of errors) {
      const f = form.fields[field] || form.fields.description;
      f.err.textContent = message;
      f.err.hidden = false;
      f.control.setAttribute("aria-invalid", "true");
      const described = (f.control.getAttribute("aria-describedby") || "").split(" ").filter((x) => x && x !== f.err.id);
      f.control.setAttribute("aria-describedby", described.concat(f.err.id).join(" "));
      first = first || f;
    }
    if (first) first.control.focus();
  }
  function setError(form, name, message) { setErrors(form, [{ field: name, message }]); }

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
      const r = await api("/api/v1/oirs/rights");
      if (t.status !== 200 || p.status !== 200 || r.status !== 200) throw new Problem("offline", "could not load choices");
      rightsCache = r.json;
      typesCache = t.json;
      topicsCache = p.json.slice().sort((a, b) => a.label.localeCompare(b.label, "es"));
    }
  }

  // The filing form, started from what the conversation said (reply.filing or the link's
  // tipo and tema); a topic nobody chose stays unchosen, and the form asks for it.
  function fileForm(pre) {
    run(() => fileForm(pre), async () => {
      await loadChoices();
      const { form, box } = formShell("Ingresar un caso en la OIRS", submitCase, "Enviar caso");
      const typed = pre.type && typesCache.some((t) => t.id === pre.type) ? pre.type : "";
      const topic = pre.topic || (["datos_personales", "transparencia"].includes(typed) ? typed : "");
      field(form, "type", "Tipo de caso", h("select", { required: true },
        h("option", { value: "" }, T.chooseType),
        typesCache.map((t) => h("option", { value: t.id, selected: t.id === typed }, t.label))));
      field(form, "topic", "Tema", h("select", { required: true },
        h("option", { value: "" }, T.chooseTopic),
        topicsCache.map((t) => h("option", { value: t.id, selected: t.id === topic }, t.label))));
      // A request about one's personal data says which right; the others do not.
      const rights = field(form, "right", T.rightLabel, h("select", {},
        h("option", { value: "" }, T.chooseRight),
        rightsCache.map((r) => h("option", { value: r.id, selected: r.id === pre.right }, r.label))),
        T.rightHint);
      // What the chosen right means, under the list (the options keep to their names).
      const meaning = h("p", { class: "hint", id: id("right-meaning") });
      rights.closest(".field").append(meaning);
      const explain = () => { meaning.textContent = (rightsCache.find((r) => r.id === rights.value) || {}).description || ""; };
      rights.addEventListener("change", explain);
      explain();
      const showRights = () => { rights.closest(".field").hidden = form.fields.type.control.value !== "datos_personales"; };
      form.fields.type.control.addEventListener("change", showRights);
      showRights();
      field(form, "description", T.describe, h("textarea", { rows: "4", maxlength: "5000", required: true }), "Qué pasó, dónde y cuándo (al menos 10 caracteres).");
      field(form, "address", "Dirección (opcional)", h("input", { type: "text", autocomplete: "street-address" }), "Si el caso es sobre un lugar: calle, número y sector.");
      locationField(form);
      field(form, "name", T.name, h("input", { type: "text", autocomplete: "name", required: true }));
      field(form, "email", "Correo electrónico (opcional)", h("input", { type: "email", autocomplete: "email" }), T.emailHint);
      field(form, "phone", "Teléfono (opcional)", h("input", { type: "tel", autocomplete: "tel" }), "Ejemplo: +56 9 1234 5678.");
      field(form, "rut", "RUT (opcional, salvo datos personales)", h("input", { type: "text" }), "Ejemplo: 12.345.678-5. " + T.rutHint);
      field(form, "files", "Fotos o documentos (opcional)", h("input", { type: "file", multiple: true, accept: "image/jpeg,image/png,application/pdf,.jpg,.jpeg,.png,.pdf" }), "Hasta 5 fotos (JPEG o PNG) o PDF, de hasta 5 MB cada uno. A las fotos les quitamos los datos ocultos, como la ubicación.");
      const publish = h("input", { type: "checkbox", value: "si" });
      publish.id = id("publish");
      const perr = h("p", { class: "error", id: publish.id + "-err", hidden: true });
      form.append(h("div", { class: "field check" }, publish, h("label", { for: publish.id, text: "Publicar la descripción en el listado público de reportes (opcional)." })),
        h("p", { class: "hint", text: "Los casos sobre el espacio público se listan con su tema, dirección, punto en el mapa y estado; la descripción, solo si se marca esta casilla. Nunca se publican el nombre, el RUT, el correo ni el teléfono." }), perr);
      form.fields.public_description = { control: publish, err: perr };
      const consent = h("input", { type: "checkbox", value: "si", required: true });
      const cid = id("consent");
      consent.id = cid;
      const cerr = h("p", { class: "error", id: cid + "-err", hidden: true });
      form.append(h("div", { class: "field check" }, consent, h("label", { for: cid, text: "Acepto que la municipalidad use estos datos solo para responder mi caso." })), cerr);
      form.fields.consent = { control: consent, err: cerr };
      form.append(form.actions);
      addNode(box);
      (typed ? (topic ? form.fields.description : form.fields.topic) : form.fields.type).control.focus();
    });
  }

  function submitCase(form, box) {
    const v = (n) => form.fields[n].control.value.trim();
    const body = {
      type: v("type"), topic: v("topic"), description: v("description"), name: v("name"),
      consent: form.fields.consent.control.checked,
    };
    for (const n of ["email", "phone", "rut", "address"]) if (v(n)) body[n] = v(n);
    if (body.type === "datos_personales" && v("right")) body.right = v("right");
    if (form.point) { body.lat = form.point.lat; body.long = form.point.long; }
    if (form.fields.public_description.control.checked) body.public_description = true;
    if (state.sid) body.chat_session_id = state.sid;
    // Check what the browser can before asking the service, and say everything at once.
    const errors = [];
    if (!body.type) errors.push({ field: "type", message: T.errType });
    if (!body.topic) errors.push({ field: "topic", message: T.errTopic });
    if (body.type === "datos_personales" && !body.right) errors.push({ field: "right", message: T.errRight });
    if (body.type === "datos_personales" && !body.rut) errors.push({ field: "rut", message: T.errRutData });
    if (body.description.length < 10) errors.push({ field: "description", message: T.errDescription });
    if (body.name.length < 2) errors.push({ field: "name", message: T.errName });
    if (!body.consent) errors.push({ field: "consent", message: T.errConsent });
    const files = Array.from(form.fields.files.control.files || []);
    if (files.length > 5) errors.push({ field: "files", message: "Puede adjuntar hasta 5 archivos." });
    const big = files.find((f) => f.size > 5 * 1024 * 1024);
    if (big) errors.push({ field: "files", message: `«${big.name}» pesa más de 5 MB.` });
    if (errors.length) return setErrors(form, errors);
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
        const all = err.fields && err.fields.length ? err.fields : [{ field: err.field || "description", message: err.message || T.errForm }];
        setErrors(form, all);
        return;
      }
      // 201 filed; 200 is the replay of a case already filed with this key.
      if (r.status !== 201 && r.status !== 200) throw new Problem("offline", "filing failed");
      // The files go once the case exists (a replay already has them); each is judged by the
      // service, and one refused does not undo the case.
      const refused = [];
      if (r.status === 201) {
        for (const f of files) {
          const data = new FormData();
          data.append("file", f, f.name);
          let res = null;
          try {
            res = await fetch(`${BASE}/api/v1/oirs/cases/${encodeURIComponent(r.json.folio)}/attachments?code=${encodeURIComponent(r.json.tracking_code)}`, { method: "POST", body: data, credentials: "omit", cache: "no-store" });
          } catch (_) { /* reported below */ }
          if (!res || res.status !== 201) {
            let why = "no se pudo enviar";
            try { why = (await res.json()).error.message; } catch (_) { /* no body */ }
            refused.push(`«${f.name}»: ${why}`);
          }
        }
      }
      const done = filedBubble(r.json);
      if (files.length) {
        done.append(h("p", { text: refused.length ? `No pudimos adjuntar ${refused.join("; ")} Puede agregarlo desde el seguimiento del caso.` : `Adjuntamos ${files.length === 1 ? "1 archivo" : files.length + " archivos"} a su caso.` }));
      }
      box.replaceWith(done);
      remember({ bot: { text: `Caso ingresado. Folio ${r.json.folio}, código de seguimiento ${r.json.tracking_code}. Unidad responsable: ${r.json.department_name || r.json.department}.`, buttons: [], links: [] } });
      showStart(done);
      done.focus({ preventScroll: true });
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

  const dmy = (iso) => String(iso).slice(0, 10).split("-").reverse().join("-");

  function filedBubble(f) {
    const track = h("button", { type: "button", class: "option", onclick: () => lookup(f.folio, { code: f.tracking_code }, null) }, "Ver el estado de mi caso");
    return h("div", { class: "msg bot filed", tabindex: "-1" },
      h("p", { text: T.filed }),
      h("dl", {},
        h("dt", { text: "Folio" }), h("dd", {}, h("code", { class: "folio", text: f.folio }), copyButton(f.folio, "folio")),
        h("dt", { text: "Código de seguimiento" }), h("dd", {}, h("code", { class: "tracking", text: f.tracking_code }), copyButton(f.tracking_code, "código")),
        h("dt", { text: "Unidad responsable" }), h("dd", { text: f.department_name || f.department }),
        h("dt", { text: "Plazo de respuesta" }), h("dd", { text: dmy(f.due_date) })),
      h("p", { text: f.confirmation_email ? T.mailed : T.notMailed }),
      h("div", { class: "buttons" }, track));
  }

  function trackForm(folio) {
    const { form, box } = formShell("Seguir mi caso", submitTrack, "Ver estado");
    field(form, "folio", "Folio", h("input", { type: "text", value: folio || "", placeholder: "OIRS-2026-000123" }));
    field(form, "code", "Código de seguimiento", h("input", { type: "text", autocomplete: "off" }), T.codeHint);
    field(form, "rut", "RUT", h("input", { type: "text", autocomplete: "off" }));
    form.append(form.actions);
    addNode(box);
    form.fields[folio ? "code" : "folio"].control.focus();
  }

  function submitTrack(form, box) {
    const v = (n) => form.fields[n].control.value.trim();
    const folio = v("folio").toUpperCase();
    const errors = [];
    if (!/^OIRS-\d{4}-\d{1,9}$/.test(folio)) errors.push({ field: "folio", message: T.errFolio });
    if (!v("code") && !v("rut")) errors.push({ field: "code", message: T.errSecret });
    if (errors.length) return setErrors(form, errors);
    lookup(folio, v("code") ? { code: v("code") } : { rut: v("rut") }, { form, box });
  }

  // The case's status, history and answer. The code or RUT goes in the body of a POST, never
  // in an address.
  function lookup(folio, secret, where) {
    const action = () => run(action, async () => {
      const r = await api(`/api/v1/oirs/cases/${encodeURIComponent(folio)}/tracking`, { method: "POST", body: secret });
      if (r.status === 404 || r.status === 400 || r.status === 422) {
        if (where) return setError(where.form, "code", T.notFound);
        throw new Problem("offline", "tracking failed");
      }
      if (r.status !== 200) throw new Problem("offline", "tracking failed");
      const c = r.json;
      const node = h("div", { class: "msg bot status", tabindex: "-1" },
        h("h3", { text: `${c.folio}: ${c.status_label}` }),
        h("p", { text: `Unidad responsable: ${c.department_name || c.department}. Plazo de respuesta: ${dmy(c.due_date)}.` }),
        h("ol", {}, c.history.map((e) => h("li", {},
          h("span", { class: "when", text: new Date(e.at).toLocaleString("es-CL", { dateStyle: "short", timeStyle: "short" }) + " " }),
          e.note ? `${e.label}: ${e.note}` : e.label))),
        c.answer ? h("div", { class: "answer" }, h("h4", { text: "Respuesta" }), h("p", { text: c.answer })) : null);
      if (where) where.box.replaceWith(node);
      else addNode(node);
      showStart(node);
      node.focus({ preventScroll: true });
    });
    action();
  }

  // ---------- boot ----------
  function mount() {
    // The host element stays at the end of the page with the launcher's height, so the page's
    // last lines can always be scrolled above the launcher instead of hiding under it.
    host.style.display = "block";
    host.style.height = "5.5rem";
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
