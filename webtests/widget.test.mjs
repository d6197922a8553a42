// The resident side in a real browser: the demo page with the chat widget, filing and tracking
// a case inside the chat, /seguimiento, keyboard-only use, accessibility and small screens.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser, axe, screenshot, focused, tabTo } from "./harness.mjs";

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function openPage(opts = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...opts });
  context.setDefaultTimeout(15000); // waits end as soon as met; loaded CI machines need headroom
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error" && !m.text().includes("net::ERR")) errors.push(m.text()); });
  await page.goto(server.base + "/");
  return { context, page, errors };
}

const panel = (page) => page.locator("#vt-panel");
const lastBot = (page) => page.locator("#vt-panel .log .msg.bot").last();

async function openChat(page) {
  await page.getByRole("button", { name: /Converse con el municipio/ }).click();
  await assert.doesNotReject(lastBot(page).getByRole("button", { name: "Direcciones, teléfonos y correos" }).waitFor());
}

test("the demo page embeds the widget; a button and a sub-option answer with the profile's phone", async () => {
  const { context, page, errors } = await openPage();
  assert.match(await page.title(), /Municipalidad de Tomé/);
  await openChat(page);
  assert.match(await lastBot(page).innerText(), /asistente virtual/i);
  await lastBot(page).getByRole("button", { name: "Direcciones, teléfonos y correos" }).click();
  await lastBot(page).getByRole("button", { name: "Contactos telefónicos" }).waitFor();
  await lastBot(page).getByRole("button", { name: "Contactos telefónicos" }).click();
  await page.locator("#vt-panel .log .msg.bot", { hasText: "Central telefónica" }).waitFor();
  assert.match(await lastBot(page).innerText(), /\+56 41 240 6400/);
  // The clicks were echoed as the resident's messages.
  assert.deepEqual(await page.locator("#vt-panel .msg.me").allInnerTexts().then((t) => t.map((x) => x.replace(/^Usted:\s*/, ""))),
    ["Direcciones, teléfonos y correos", "Contactos telefónicos"]);
  // The conversation survives a reload (sessionStorage), without cookies.
  await page.reload();
  await page.locator("#vt-panel .log .msg.bot", { hasText: "Central telefónica" }).waitFor();
  assert.equal((await context.cookies()).length, 0);
  assert.deepEqual(errors, []);
  await context.close();
});

test("an option from an older menu (kept in the transcript) says so and offers the menu", async () => {
  const { context, page } = await openPage();
  await openChat(page);
  // The transcript in sessionStorage holds a button the catalog no longer has.
  await page.evaluate(() => {
    const st = JSON.parse(sessionStorage.getItem("ventanilla.chat"));
    st.log.push({ bot: { text: "Menú antiguo", buttons: [{ id: "boton_retirado", label: "Opción retirada" }], links: [] } });
    sessionStorage.setItem("ventanilla.chat", JSON.stringify(st));
  });
  await page.reload();
  await lastBot(page).getByRole("button", { name: "Opción retirada" }).click();
  await page.locator("#vt-panel .log .msg.bot", { hasText: "ya no está disponible" }).waitFor();
  assert.ok(await page.locator("#vt-panel .notice").isHidden(), "not reported as a connection problem");
  await lastBot(page).getByRole("button", { name: "Menú principal" }).click();
  await lastBot(page).getByRole("button", { name: "Direcciones, teléfonos y correos" }).waitFor();
  await context.close();
});

test("a free-text question with typos gets the right answer", async () => {
  const { context, page } = await openPage();
  await openChat(page);
  const input = page.getByLabel("Escriba su consulta");
  // An ambiguous word, first thing in the conversation, gets the likely options as buttons
  // instead of a guess.
  await input.fill("permiso");
  await input.press("Enter");
  await page.locator("#vt-panel .msg.me", { hasText: /^(Usted:\s*)?permiso$/ }).waitFor();
  assert.match(await lastBot(page).innerText(), /No estoy seguro/);
  await lastBot(page).getByRole("button", { name: "Permisos de edificación" }).click();
  await page.locator("#vt-panel .msg.me", { hasText: "Permisos de edificación" }).waitFor();
  assert.match(await lastBot(page).innerText(), /DOM|Obras/);
  await input.fill("cuanto sale el permiso de sircualcion");
  await input.press("Enter");
  await page.locator("#vt-panel .msg.me", { hasText: "sircualcion" }).waitFor();
  const answer = await lastBot(page).innerText();
  assert.match(answer, /permiso de circulaci[oó]n/i);
  assert.equal(await input.inputValue(), "", "the sent text leaves the input");
  // A follow-up is understood in context.
  await input.fill("y se puede pagar en cuotas?");
  await input.press("Enter");
  await page.locator("#vt-panel .msg.me", { hasText: "cuotas" }).waitFor();
  assert.match(await lastBot(page).innerText(), /dos cuotas/);
  // Something out of scope gets the honest fallback with its ways out.
  await input.fill("quien gano el partido de ayer");
  await input.press("Enter");
  await page.locator("#vt-panel .msg.me", { hasText: "partido" }).waitFor();
  await lastBot(page).getByRole("button", { name: /Menú/ }).waitFor();
  assert.match(await lastBot(page).innerText(), /no entendí/i);
  await context.close();
});

test("a resident files a reclamo in the chat and finds it on /seguimiento", async () => {
  const { context, page } = await openPage({ permissions: ["clipboard-read", "clipboard-write"] });
  await openChat(page);
  await lastBot(page).getByRole("button", { name: /^OIRS/ }).click();
  await lastBot(page).getByRole("button", { name: "Hacer un reclamo" }).waitFor();
  await lastBot(page).getByRole("button", { name: "Hacer un reclamo" }).click();
  await lastBot(page).getByRole("button", { name: "Ingresar un reclamo" }).waitFor();
  await lastBot(page).getByRole("button", { name: "Ingresar un reclamo" }).click();
  const form = page.locator("#vt-panel form.inline");
  await form.waitFor();
  assert.equal(await form.getByLabel("Tipo de caso").inputValue(), "reclamo", "the link's tipo preselects the type");
  assert.equal(await form.getByLabel("Tema").inputValue(), "", "no topic chosen for the resident");
  await form.getByLabel("Tema").selectOption("alumbrado_publico");
  await form.getByLabel("Describa su caso").fill("corto");
  await form.getByLabel("Su nombre").fill("Rosa Pérez");
  await form.getByRole("button", { name: "Enviar caso" }).click();
  // Every problem at once, each beside its field; focus on the first.
  await form.locator(".error:not([hidden])", { hasText: /al menos 10 caracteres/ }).waitFor();
  await form.locator(".error:not([hidden])", { hasText: /debe aceptar/ }).waitFor();
  assert.equal(await form.locator("[aria-invalid=true]").count(), 2);
  assert.equal((await focused(page)).tag, "textarea");
  await form.getByLabel("Describa su caso").fill("La luminaria de calle Egaña 450 lleva dos semanas apagada y la cuadra queda a oscuras.");
  await form.getByLabel("Correo electrónico (opcional)").fill("rosa.perez@example.cl");
  await form.getByLabel(/^RUT/).fill("12.345.678-0");
  await form.getByLabel(/Acepto que la municipalidad/).check();
  await form.getByRole("button", { name: "Enviar caso" }).click();
  // The service rejects the RUT (bad verifier digit): its message shows beside the RUT field.
  const invalid = form.locator('input[id^="vt-rut"][aria-invalid="true"]');
  await invalid.waitFor();
  assert.equal(await form.locator("[aria-invalid=true]").count(), 1, "only the RUT is marked");
  const errId = (await invalid.getAttribute("aria-describedby")).split(" ").find((x) => x.endsWith("-err"));
  assert.match(await form.locator(`[id="${errId}"]`).innerText(), /verificador/i);
  await form.getByLabel(/^RUT/).fill("12.345.678-5");
  await form.getByRole("button", { name: "Enviar caso" }).click();
  const filed = page.locator("#vt-panel .msg.filed");
  await filed.waitFor();
  const folio = (await filed.locator("code.folio").innerText()).trim();
  const code = (await filed.locator("code.tracking").innerText()).trim();
  assert.match(folio, /^OIRS-\d{4}-\d{6}$/);
  assert.ok(code.length >= 8);
  await filed.getByRole("button", { name: "Copiar código" }).click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), code);

  // Tracking inside the chat, by folio and RUT.
  const input = page.getByLabel("Escriba su consulta");
  await input.fill(`en que va mi caso ${folio}`);
  await input.press("Enter");
  await lastBot(page).getByRole("button", { name: `Ver el estado de ${folio}` }).click();
  const track = page.locator("#vt-panel form.inline");
  assert.equal(await track.getByLabel("Folio").inputValue(), folio);
  await track.getByLabel("RUT").fill("12345678-5");
  await track.getByRole("button", { name: "Ver estado" }).click();
  await page.locator("#vt-panel .msg.status").waitFor();
  assert.match(await page.locator("#vt-panel .msg.status").innerText(), new RegExp(folio));

  // The tracking page, as a resident would use it in another tab.
  await page.goto(server.base + "/seguimiento");
  await page.getByLabel("Folio").fill(folio);
  await page.getByLabel("Código de seguimiento").fill(code);
  await page.getByRole("button", { name: "Ver estado" }).click();
  const heading = page.locator("main h2");
  assert.match(await heading.innerText(), new RegExp(`${folio}: `));
  assert.match(await page.locator("ol.history").innerText(), /Recibido/i);
  await context.close();
});

test("a filing whose answer is lost on the way is not filed twice when retried", async () => {
  const { context, page } = await openPage();
  await openChat(page);
  await page.getByLabel("Escriba su consulta").fill("quiero hacer una solicitud a la oirs");
  await page.getByLabel("Escriba su consulta").press("Enter");
  await page.locator("#vt-panel .msg.me", { hasText: "quiero hacer una solicitud" }).waitFor();
  await lastBot(page).getByRole("button", { name: "Ingresar una solicitud" }).click();
  const form = page.locator("#vt-panel form.inline");
  await form.getByLabel("Tema").selectOption("areas_verdes");
  await form.getByLabel("Describa su caso").fill("Solicito la poda del árbol frente al número 12 de calle Prat.");
  await form.getByLabel("Su nombre").fill("Marta Rivas");
  await form.getByLabel(/Acepto que la municipalidad/).check();
  // The service files the case, but its answer never reaches the browser.
  let first = null;
  await page.route("**/api/v1/oirs/cases", async (route) => {
    const resp = await route.fetch();
    first = await resp.json();
    await route.abort("connectionreset");
  });
  await form.getByRole("button", { name: "Enviar caso" }).click();
  const notice = page.locator("#vt-panel .notice");
  await notice.waitFor();
  assert.ok(first && first.folio, "the service did file it");
  await page.unroute("**/api/v1/oirs/cases");
  await notice.getByRole("button", { name: "Reintentar ahora" }).click();
  const filed = page.locator("#vt-panel .msg.filed");
  await filed.waitFor();
  assert.equal((await filed.locator("code.folio").innerText()).trim(), first.folio, "the retry got the same case");
  await context.close();
});

for (const [name, viewport] of [["1280", { width: 1280, height: 900 }], ["360", { width: 360, height: 740 }]]) {
  test(`a garbage complaint typed in the chat is filed under its topic and reaches Aseo y Ornato (${name} px)`, async () => {
    const { context, page, errors } = await openPage({ viewport });
    await openChat(page);
    const input = page.getByLabel("Escriba su consulta");
    await input.fill("quiero reclamar porque hace una semana que no pasa el camion de la basura por mi pasaje");
    await input.press("Enter");
    await page.locator("#vt-panel .msg.me", { hasText: "camion de la basura" }).waitFor();
    // The answer is read from its first line, not its end.
    const answer = lastBot(page);
    const visible = await page.evaluate(() => {
      const log = document.querySelector("#ventanilla-widget").shadowRoot.querySelector(".log");
      const last = [...log.querySelectorAll(".msg.bot")].pop();
      const a = last.getBoundingClientRect(), l = log.getBoundingClientRect();
      return a.top >= l.top - 1 && a.top < l.bottom;
    });
    assert.ok(visible, "the new answer's first line is in view");
    await answer.getByRole("button", { name: "Ingresar un reclamo" }).click();
    const form = page.locator("#vt-panel form.inline");
    await form.waitFor();
    assert.equal(await form.getByLabel("Tipo de caso").inputValue(), "reclamo");
    assert.equal(await form.getByLabel("Tema").inputValue(), "aseo_retiro", "the conversation's topic, not the first of the list");
    await form.getByLabel("Describa su caso").fill("Hace una semana que el camión no pasa por el pasaje Los Olmos; las bolsas se acumulan.");
    await form.getByLabel("Dirección (opcional)").fill("Pasaje Los Olmos 45, Tomé");
    await form.getByLabel("Su nombre").fill("Luis Fuentes");
    await form.getByLabel(/Acepto que la municipalidad/).check();
    await form.getByRole("button", { name: "Enviar caso" }).click();
    const filed = page.locator("#vt-panel .msg.filed");
    await filed.waitFor();
    assert.match(await filed.innerText(), /Dirección de Aseo y Ornato/);
    await screenshot(page, `chat-filed-${name}`);
    // On a phone, the launcher leaves room: the page's last line can be scrolled above it.
    if (name === "360") {
      await page.locator("#vt-panel .close").click();
      await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
      const overlap = await page.evaluate(() => {
        const launcher = document.querySelector("#ventanilla-widget").shadowRoot.querySelector(".launcher").getBoundingClientRect();
        const last = [...document.querySelectorAll("main > *")].pop().getBoundingClientRect();
        return last.bottom > launcher.top && last.right > launcher.left;
      });
      assert.ok(!overlap, "the launcher does not cover the end of the page");
      await screenshot(page, "demo-end-360");
    }
    // A reload restores the transcript at its latest message.
    await page.reload();
    if (name === "360") await page.getByRole("button", { name: /Converse con el municipio/ }).click();
    await page.locator("#vt-panel .msg.me").first().waitFor();
    const atEnd = await page.evaluate(() => new Promise((res) => requestAnimationFrame(() => {
      const log = document.querySelector("#ventanilla-widget").shadowRoot.querySelector(".log");
      res(log.scrollHeight - log.clientHeight - log.scrollTop < 4);
    })));
    assert.ok(atEnd, "the transcript opens at its latest message");
    assert.deepEqual(errors, []);
    await context.close();
  });
}

test("/oirs: every error at once with a linked summary, and a reload after filing files nothing", async () => {
  const { context, page } = await openPage({ bypassCSP: true });
  await page.goto(server.base + "/oirs?tipo=reclamo");
  assert.equal(await page.getByLabel("Tema *").inputValue(), "", "no topic chosen for the resident");
  await page.getByRole("button", { name: "Enviar caso" }).click();
  const summary = page.locator(".error-summary");
  await summary.waitFor();
  assert.equal(await summary.getByRole("link").count(), 4, "topic, description, name, consent");
  for (const id of ["tema", "descripcion", "nombre", "consentimiento"]) {
    assert.equal(await page.locator(`#${id}`).getAttribute("aria-invalid"), "true", id);
    assert.ok(await page.locator(`#${id}-error`).isVisible(), `${id} error beside the field`);
  }
  await summary.getByRole("link").nth(2).click();
  assert.equal((await focused(page)).id, "nombre", "a summary link takes the resident to the field");
  assert.deepEqual(await axe(page), [], "/oirs with every error");
  await page.getByLabel("Tema *").selectOption("calles_veredas");
  await page.getByLabel("Describa su caso *").fill("Hay un hoyo profundo en la calle Serrano frente al 300; ya se cayó un ciclista.");
  await page.getByLabel("Nombre *").fill("Pedro Araya");
  await page.getByLabel(/Acepto que la municipalidad/).check();
  // An impatient double click sends the form twice: one case.
  await page.getByRole("button", { name: "Enviar caso" }).dblclick();
  await page.waitForURL(/\/oirs\/recibido/);
  await page.locator(".ok .code").first().waitFor();
  const folio = (await page.locator(".ok .code").first().innerText()).trim();
  assert.match(await page.locator(".ok").innerText(), /derivado a/);
  await page.reload();
  assert.equal((await page.locator(".ok .code").first().innerText()).trim(), folio, "a reload shows the same receipt");
  // The next case gets the next folio: nothing was filed in between.
  const r = await fetch(server.base + "/api/v1/oirs/cases", {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ type: "consulta", topic: "becas", description: "¿Cuándo abren las becas municipales este año?", name: "Ana", consent: true }),
  });
  const next = (await r.json()).folio;
  assert.equal(Number(next.slice(-6)), Number(folio.slice(-6)) + 1, `${folio} then ${next}`);
  await context.close();
});

test("keyboard only: open, ask, choose an option, close, focus returns", async () => {
  const { context, page } = await openPage();
  await tabTo(page, (f) => /Converse con el municipio/.test(f.text));
  await page.keyboard.press("Enter");
  await lastBot(page).getByRole("button", { name: "Direcciones, teléfonos y correos" }).waitFor();
  assert.equal((await focused(page)).tag, "input", "opening the chat puts focus in the text box");
  await page.keyboard.type("horario de atencion de la muni");
  await page.keyboard.press("Enter");
  await page.locator("#vt-panel .msg.me", { hasText: "horario" }).waitFor();
  assert.match(await lastBot(page).innerText(), /lunes a viernes/);
  // Shift+Tab walks back into the conversation: its options are reachable.
  await page.keyboard.press("Shift+Tab"); // log
  await page.keyboard.press("Shift+Tab");
  const f = await focused(page);
  assert.ok(["button", "div"].includes(f.tag), `focus went to ${JSON.stringify(f)}`);
  // Choose the menu option from the keyboard.
  await tabTo(page, (x) => x.text === "Menú principal" || x.text === "Menú");
  await page.keyboard.press("Enter");
  await page.locator("#vt-panel .msg.me", { hasText: /Men[uú]/ }).waitFor();
  assert.equal((await focused(page)).cls, "msg bot", "after a button the new answer takes focus");
  await page.keyboard.press("Tab");
  assert.equal((await focused(page)).text, "Direcciones, teléfonos y correos");
  await page.keyboard.press("Enter");
  await lastBot(page).getByRole("button", { name: "Correos", exact: true }).waitFor();
  await page.keyboard.press("Escape");
  assert.equal(await panel(page).isHidden(), true);
  assert.match((await focused(page)).text, /Converse con el municipio/);

  // To the end: file a case from the keyboard alone.
  await page.keyboard.press("Enter");
  await panel(page).waitFor();
  assert.equal((await focused(page)).tag, "input", "reopening puts focus in the text box");
  await page.keyboard.type("quiero poner un reclamo");
  assert.equal(await page.getByLabel("Escriba su consulta").inputValue(), "quiero poner un reclamo");
  await page.keyboard.press("Enter");
  const notice = page.locator("#vt-panel .notice");
  await Promise.race([page.locator("#vt-panel .msg.me", { hasText: "reclamo" }).waitFor(), notice.waitFor()]);
  assert.ok(await notice.isHidden(), `no problem notice: ${await notice.innerText().catch(() => "")}`);
  await tabTo(page, (x) => x.text === "Ingresar un reclamo", 20, "Shift+Tab");
  await page.keyboard.press("Enter");
  await page.locator("#vt-panel form.inline").waitFor();
  assert.match((await focused(page)).id, /^vt-topic/, "the form takes focus at the first field to fill: the topic");
  await page.keyboard.type("Recolección");
  assert.equal(await page.locator("#vt-panel form.inline select[name=topic]").inputValue(), "aseo_retiro");
  await tabTo(page, (x) => x.id.startsWith("vt-description"));
  await page.keyboard.type("El contenedor de basura de la plaza lleva una semana sin vaciarse.");
  await tabTo(page, (x) => x.id.startsWith("vt-name"));
  await page.keyboard.type("Teclado Pérez");
  await tabTo(page, (x) => x.id.startsWith("vt-email"));
  await page.keyboard.type("teclado@example.cl");
  await tabTo(page, (x) => x.id.startsWith("vt-consent"));
  await page.keyboard.press("Space");
  await tabTo(page, (x) => x.text === "Enviar caso");
  await page.keyboard.press("Enter");
  await page.locator("#vt-panel .msg.filed").waitFor();
  assert.equal((await focused(page)).cls, "msg bot filed", "the receipt takes focus");
  await page.keyboard.press("Tab");
  assert.equal((await focused(page)).text, "Copiar folio");
  await context.close();
});

test("axe-core finds no serious or critical violations on the resident pages", async () => {
  const { context, page } = await openPage({ bypassCSP: true });
  assert.deepEqual(await axe(page), [], "demo page, chat closed");
  await openChat(page);
  await page.getByLabel("Escriba su consulta").fill("necesito hacer un reclamo");
  await page.getByLabel("Escriba su consulta").press("Enter");
  await page.locator("#vt-panel .msg.me").waitFor();
  await lastBot(page).getByRole("button", { name: "Ingresar un reclamo" }).click();
  await page.locator("#vt-panel form.inline").waitFor();
  assert.deepEqual(await axe(page), [], "demo page, chat open with the filing form");
  for (const path of ["/oirs", "/seguimiento"]) {
    await page.goto(server.base + path);
    assert.deepEqual(await axe(page), [], path);
  }
  await page.goto(server.base + "/oirs");
  await page.getByRole("button", { name: "Enviar caso" }).click();
  await page.getByRole("alert").waitFor();
  assert.deepEqual(await axe(page), [], "/oirs with errors");
  await context.close();
});

test("a 360 px phone and 200% zoom: the chat fits, screenshots kept", async () => {
  for (const [name, viewport] of [["360", { width: 360, height: 740 }], ["1280", { width: 1280, height: 800 }], ["zoom200", { width: 640, height: 400 }]]) {
    const { context, page } = await openPage({ viewport });
    await screenshot(page, `demo-${name}`);
    await openChat(page);
    await lastBot(page).getByRole("button", { name: "Pagos y servicios en línea" }).click();
    await lastBot(page).getByRole("button", { name: "Pagos en línea" }).waitFor();
    const box = await panel(page).boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= viewport.width + 0.5, `panel inside the width at ${name}`);
    assert.ok(box.y >= 0 && box.y + box.height <= viewport.height + 0.5, `panel inside the height at ${name}`);
    assert.ok(await page.getByLabel("Escriba su consulta").isVisible());
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no horizontal scrolling at ${name} (${overflow} px)`);
    await screenshot(page, `chat-${name}`);
    await context.close();
  }
});

test("the host page's styles do not reach the widget (shadow DOM)", async () => {
  const { context, page } = await openPage({ bypassCSP: true });
  await page.addStyleTag({ content: "button, p, div { background: rgb(255, 0, 0) !important; color: rgb(0, 255, 0) !important; font-size: 40px !important; }" });
  const launcher = page.getByRole("button", { name: /Converse con el municipio/ });
  const style = await launcher.evaluate((b) => { const s = getComputedStyle(b); return [s.backgroundColor, s.fontSize]; });
  assert.deepEqual(style, ["rgb(11, 61, 110)", "16px"]);
  await context.close();
});

test("prefers-reduced-motion stops the typing animation", async () => {
  const { context, page } = await openPage({ reducedMotion: "reduce" });
  await openChat(page);
  const anim = await page.evaluate(() => {
    const dot = document.querySelector("#ventanilla-widget").shadowRoot.querySelector(".dots i");
    return getComputedStyle(dot).animationName;
  });
  assert.equal(anim, "none");
  await context.close();
  const moving = await openPage();
  await openChat(moving.page);
  assert.equal(await moving.page.evaluate(() =>
    getComputedStyle(document.querySelector("#ventanilla-widget").shadowRoot.querySelector(".dots i")).animationName), "vt-blink");
  await moving.context.close();
});

test("unreachable service: the widget says so, shows phone and e-mail, keeps the text and retries", async () => {
  const { context, page } = await openPage();
  await openChat(page);
  await page.route("**/api/v1/chat/sessions/*/messages", (route) => route.abort("internetdisconnected"));
  const input = page.getByLabel("Escriba su consulta");
  await input.fill("donde pago el permiso de circulacion");
  await input.press("Enter");
  const notice = page.locator("#vt-panel .notice");
  await notice.waitFor();
  const text = await notice.innerText();
  assert.match(text, /No pudimos conectarnos/);
  assert.match(text, /\+56 41 240 6400/);
  assert.match(text, /oirs@tome\.cl/);
  assert.equal(await input.inputValue(), "donde pago el permiso de circulacion", "the typed text is kept");
  assert.equal(await page.locator("#vt-panel .msg.me").count(), 0);
  await page.unroute("**/api/v1/chat/sessions/*/messages");
  await notice.getByRole("button", { name: "Reintentar ahora" }).click();
  await page.locator("#vt-panel .msg.me", { hasText: "permiso de circulacion" }).waitFor();
  await notice.waitFor({ state: "hidden" });
  assert.match(await lastBot(page).innerText(), /permiso de circulaci[oó]n/i);
  assert.equal(await input.inputValue(), "");
  await context.close();
});

test("a 429 from the service's rate limit is explained in plain words and retried after the wait", async () => {
  // A second service with a tight per-client limit: 1 request per second, bursts of 4.
  const limited = await startServer({
    VENTANILLA_RATE_LIMIT: "on",
    VENTANILLA_RATE_LIMIT_PER_SECOND: "1",
    VENTANILLA_RATE_LIMIT_BURST: "4",
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(15000);
  const page = await context.newPage();
  try {
    await page.goto(limited.base + "/"); // 1 request of the budget
    await openChat(page); // 2
    const input = page.getByLabel("Escriba su consulta");
    const notice = page.locator("#vt-panel .notice");
    // Ask until the limit answers 429: the widget explains it and keeps the text.
    let sent = 0;
    for (; sent < 8 && (await notice.isHidden()); sent++) {
      await input.fill(`horario de atencion ${sent}`);
      await input.press("Enter");
      await Promise.race([
        page.locator("#vt-panel .msg.me", { hasText: `atencion ${sent}` }).waitFor(),
        notice.waitFor(),
      ]);
    }
    assert.ok(await notice.isVisible(), "the limit was reached");
    assert.match(await notice.innerText(), /muchos mensajes seguidos.*\d+ segundos/s);
    const pending = await input.inputValue();
    assert.match(pending, /horario de atencion \d/, "the typed text is kept");
    // The widget retries by itself after Retry-After and the message goes through.
    await page.locator("#vt-panel .msg.me", { hasText: pending }).waitFor();
    await notice.waitFor({ state: "hidden" });
    assert.equal(await input.inputValue(), "");
  } finally {
    await context.close();
    await limited.stop();
  }
});
