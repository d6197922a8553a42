// Requests about one's personal data (Ley 21.719) in a real browser: asked in the chat and filed
// from the widget, filed on /oirs with the right exercised, found by the unit that handles them
// (the person's page and the JSON export), refused to other departments, and audited with axe-core.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startServer, launchBrowser, axe, ARTIFACTS } from "./harness.mjs";

const PASSWORD = "clave-de-prueba-1";
const RUT = "12.345.678-5";
const RUT_NORM = "12345678-5";
const FOLIO = /^OIRS-\d{4}-\d{6}$/;
const DAY = 86400000;
let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  server.addUser("admin", PASSWORD, "admin");
  server.addUser("transp1", PASSWORD, "department", "transparencia");
  server.addUser("dom1", PASSWORD, "department", "dom");
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A browser context; logged in to the console as `username` when given. */
async function session(username, opts = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true, ...opts });
  context.setDefaultTimeout(15000); // waits end as soon as met; loaded CI machines need headroom
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  if (username) {
    await page.goto(server.base + "/staff");
    await page.getByLabel("Usuario").fill(username);
    await page.getByLabel("Contraseña").fill(PASSWORD);
    await page.getByRole("button", { name: "Ingresar" }).click();
    await page.waitForURL(/\/staff\/(casos|analitica)/);
  }
  return { context, page, errors };
}

/** Files a data-rights request through the API, as any client of the service could. */
async function fileAcceso(description) {
  const r = await fetch(server.base + "/api/v1/oirs/cases", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      type: "datos_personales", topic: "datos_personales", right: "acceso", description,
      name: "Juana Pérez", rut: RUT, email: "juana@example.cl", consent: true,
    }),
  });
  assert.equal(r.status, 201, await r.clone().text());
  const filed = await r.json();
  assert.match(filed.folio, FOLIO);
  assert.equal(filed.department, "transparencia", "data-rights requests go to the unit that handles them");
  return filed;
}

/** Today's date in Chile, as midnight UTC of that calendar day. */
function todayInChile() {
  const [y, m, d] = new Intl.DateTimeFormat("en-CA", { timeZone: "America/Santiago" }).format(new Date()).split("-").map(Number);
  return Date.UTC(y, m - 1, d);
}

/** A dd-mm-yyyy date as midnight UTC of that day. */
function dmy(text) {
  const m = text.match(/(\d{2})-(\d{2})-(\d{4})/);
  assert.ok(m, `a dd-mm-yyyy date in ${JSON.stringify(text)}`);
  return Date.UTC(Number(m[3]), Number(m[2]) - 1, Number(m[1]));
}

/** A full-page screenshot kept with the other tests' screenshots. */
async function shot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

test("a resident asks for access to their data in the chat and files it from the widget", async () => {
  const { context, page, errors } = await session(null);
  await page.goto(server.base + "/");
  await page.getByRole("button", { name: /Converse con el municipio/ }).click();
  const lastBot = () => page.locator("#vt-panel .log .msg.bot").last();
  await lastBot().getByRole("button", { name: "Direcciones, teléfonos y correos" }).waitFor();
  const input = page.getByLabel("Escriba su consulta");
  await input.fill("quiero saber qué datos personales míos tiene la municipalidad");
  await input.press("Enter");
  await page.locator("#vt-panel .msg.me", { hasText: "datos personales míos" }).waitFor();
  const answer = lastBot();
  assert.match(await answer.innerText(), /Ley 21\.719/);
  // The reply's link into /oirs is a button that opens the form inside the chat.
  const open = answer.locator("ul.links").getByRole("button", { name: "Solicitud sobre datos personales" });
  await open.click();
  const form = page.locator("#vt-panel form.inline");
  await form.waitFor();
  assert.equal(await form.getByLabel("Tipo de caso").inputValue(), "datos_personales", "the link's tipo preselects the type");
  assert.equal(await form.getByLabel("Tema").inputValue(), "datos_personales", "the link's tema preselects the topic");
  const right = form.getByLabel("Derecho que quiere ejercer");
  assert.ok(await right.isVisible(), "the right is asked for a data-rights request");
  assert.equal(await right.inputValue(), "acceso", "what the resident said (saber qué datos tienen) is the right of access");

  // No RUT: the form says so beside the RUT field, and files nothing.
  await form.getByLabel("Describa su caso").fill("Quiero saber qué datos personales míos tiene la municipalidad y con quién los ha compartido.");
  await form.getByLabel("Su nombre").fill("Juana Pérez");
  await form.getByLabel(/Acepto que la municipalidad/).check();
  await form.getByRole("button", { name: "Enviar caso" }).click();
  const rut = form.locator('input[id^="vt-rut"]');
  await form.locator('input[id^="vt-rut"][aria-invalid="true"]').waitFor();
  assert.equal(await form.locator("[aria-invalid=true]").count(), 1, "only the RUT is marked");
  const errId = (await rut.getAttribute("aria-describedby")).split(" ").find((x) => x.endsWith("-err"));
  const rutError = form.locator(`[id="${errId}"]`);
  assert.ok(await rutError.isVisible(), "the error is shown");
  assert.match(await rutError.innerText(), /RUT/);
  // ... beside the RUT field: in the same field box.
  assert.equal(await rutError.evaluate((e) => e.closest(".field").querySelector("input").id), await rut.getAttribute("id"));
  assert.equal(await page.locator("#vt-panel .msg.filed").count(), 0);

  await rut.fill(RUT);
  await form.getByRole("button", { name: "Enviar caso" }).click();
  const filed = page.locator("#vt-panel .msg.filed");
  await filed.waitFor();
  const folio = (await filed.locator("code.folio").innerText()).trim();
  assert.match(folio, FOLIO);
  const receipt = await filed.innerText();
  assert.match(receipt, /Unidad de Transparencia/);
  // Data-rights requests run on calendar days: 30 of them.
  const due = dmy(await filed.locator("dt", { hasText: "Plazo de respuesta" }).locator("xpath=following-sibling::dd[1]").innerText());
  assert.ok(due - todayInChile() >= 30 * DAY, `due ${new Date(due).toISOString().slice(0, 10)} is at least 30 days away`);
  assert.deepEqual(errors, []);
  await context.close();
});

test("a resident files an acceso request on /oirs", async () => {
  const { context, page } = await session(null);
  await page.goto(server.base + "/oirs");
  const rights = page.locator("fieldset#derecho-grupo");
  assert.match(await rights.locator("legend").innerText(), /¿qué derecho quiere ejercer\?/);
  assert.ok(await rights.isHidden(), "the rights are not asked for other types");
  await page.getByLabel("Tipo de caso *").selectOption("reclamo");
  assert.ok(await rights.isHidden(), "... such as a reclamo");
  await page.getByLabel("Tipo de caso *").selectOption({ label: "Derechos sobre datos personales (Ley 21.719)" });
  assert.equal(await page.getByLabel("Tipo de caso *").inputValue(), "datos_personales");
  await rights.waitFor({ state: "visible" });
  await page.getByLabel("Tema *").selectOption("datos_personales");

  // Neither the right nor the RUT: both errors, listed at the top with links to the fields.
  await page.getByLabel("Describa su caso *").fill("Quiero saber qué datos personales míos tiene la municipalidad.");
  await page.getByLabel("Nombre *").fill("Juana Pérez");
  await page.getByLabel(/Acepto que la municipalidad/).check();
  await page.getByRole("button", { name: "Enviar caso" }).click();
  const summary = page.locator(".error-summary");
  await summary.waitFor();
  assert.match(await summary.locator("h2").innerText(), /Revise estos 2 campos/);
  const links = summary.getByRole("link");
  assert.deepEqual(await links.evaluateAll((as) => as.map((a) => a.getAttribute("href")).sort()), ["#derecho", "#rut"]);
  assert.match(await summary.innerText(), /derecho/);
  assert.match(await summary.innerText(), /RUT/);
  assert.ok(await page.locator("#derecho-error").isVisible(), "the right's error beside the choices");
  assert.ok(await page.locator("#rut-error").isVisible(), "the RUT's error beside the field");
  assert.equal(await page.locator("#rut").getAttribute("aria-invalid"), "true");
  // What was typed is kept, and the rights stay shown for the type chosen.
  assert.equal(await page.getByLabel("Tipo de caso *").inputValue(), "datos_personales");
  assert.ok(await rights.isVisible());
  assert.equal(await page.getByLabel("Nombre *").inputValue(), "Juana Pérez");

  await rights.getByRole("radio", { name: /^Acceso:/ }).check();
  await page.locator("#rut").fill(RUT);
  assert.ok(await page.getByLabel(/Acepto que la municipalidad/).isChecked(), "the consent given is kept");
  await page.getByRole("button", { name: "Enviar caso" }).click();
  await page.waitForURL(/\/oirs\/recibido/);
  assert.match(await page.locator("h1").innerText(), /Recibimos su caso/);
  const ok = page.locator(".ok");
  const folio = (await ok.locator(".code").first().innerText()).trim();
  assert.match(folio, FOLIO);
  const text = await ok.innerText();
  assert.match(text, /Unidad de Transparencia/);
  const due = dmy(text.match(/a más tardar el ([^.]+)/)[1]);
  assert.ok(due - todayInChile() >= 30 * DAY, `due ${new Date(due).toISOString().slice(0, 10)} is at least 30 calendar days away`);
  await context.close();
});

test("staff of the unit that handles personal data find the person and export everything", async () => {
  const filed = await fileAcceso("Solicito acceso a todos los datos personales que la municipalidad tiene sobre mí.");
  const { context, page } = await session("transp1");
  await page.goto(server.base + `/staff/casos/${filed.folio}`);
  const facts = await page.locator("dl.facts").first().innerText();
  assert.match(facts, /Derecho ejercido\s+Acceso\b/);
  // The unit's staff have the person search in their menu, and see their unit by name.
  const nav = page.getByRole("navigation", { name: "Consola" });
  await nav.getByRole("link", { name: "Titulares de datos" }).waitFor();
  assert.match(await page.locator("header.top").innerText(), /Unidad de Transparencia/);
  assert.doesNotMatch(await page.locator("header.top").innerText(), /\(transparencia\)/);
  await page.getByRole("link", { name: "Ver todo lo que tenemos de esta persona" }).click();
  await page.waitForURL((u) => u.pathname === `/staff/titulares/${RUT_NORM}`);
  assert.match(await page.locator("h1").innerText(), new RegExp(RUT_NORM));
  const cases = page.getByRole("region", { name: "Casos de la persona" });
  await cases.getByRole("link", { name: filed.folio }).waitFor();
  assert.match(await cases.locator("tr", { hasText: filed.folio }).innerText(), /Derecho: Acceso/);
  const rows = await cases.locator("tbody tr").count();
  assert.equal(await page.getByRole("heading", { level: 2, name: /casos?$/ }).innerText(), rows === 1 ? "1 caso" : `${rows} casos`);
  assert.match(await page.locator("dl.facts").innerText(), /Juana Pérez/);

  // The portability download: everything held about the person, as JSON.
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "Descargar todo en JSON (portabilidad)" }).click(),
  ]);
  assert.match(download.suggestedFilename(), /\.json$/);
  const data = JSON.parse(readFileSync(await download.path(), "utf8"));
  assert.equal(data.rut, RUT_NORM);
  const mine = data.cases.find((c) => c.folio === filed.folio);
  assert.ok(mine, `the export holds ${filed.folio}: ${JSON.stringify(data.cases.map((c) => c.folio))}`);
  assert.equal(mine.right, "acceso");
  assert.equal(mine.name, "Juana Pérez");
  assert.ok(Array.isArray(mine.events) && mine.events.length >= 1, "with its history");
  await context.close();

  // Another department's staff are refused the person, the page and the export alike.
  const dom = await session("dom1");
  const resp = await dom.page.goto(server.base + `/staff/titulares/${RUT_NORM}`);
  assert.equal(resp.status(), 403);
  assert.ok(!(await dom.page.content()).includes("Juana"), "nothing of the person on the refusal");
  assert.equal((await dom.context.request.get(server.base + `/staff/titulares/${RUT_NORM}/exportar`)).status(), 403);
  assert.equal((await dom.context.request.get(server.base + "/staff/titulares")).status(), 403);
  await dom.context.close();

  // The administrator reaches the person from the console's menu, by RUT as people write it.
  const admin = await session("admin");
  await admin.page.getByRole("navigation", { name: "Consola" }).getByRole("link", { name: "Titulares de datos" }).click();
  await admin.page.waitForURL((u) => u.pathname === "/staff/titulares");
  await admin.page.getByLabel("RUT de la persona").fill(RUT);
  await admin.page.getByRole("button", { name: "Buscar" }).click();
  await admin.page.waitForURL((u) => u.pathname === `/staff/titulares/${RUT_NORM}`);
  await admin.page.getByRole("region", { name: "Casos de la persona" }).getByRole("link", { name: filed.folio }).waitFor();
  await admin.context.close();
});

test("axe-core finds no serious or critical violations on the data-rights pages; screenshots kept", async () => {
  await fileAcceso("Quiero una copia de los datos personales que tienen de mí en sus registros.");
  for (const [name, viewport] of [["1280", { width: 1280, height: 900 }], ["360", { width: 360, height: 740 }]]) {
    const resident = await session(null, { viewport, bypassCSP: true });
    const page = resident.page;
    await page.goto(server.base + "/oirs");
    await page.getByLabel("Tipo de caso *").selectOption("datos_personales");
    const rights = page.locator("fieldset#derecho-grupo");
    await rights.waitFor({ state: "visible" });
    assert.deepEqual(await axe(page), [], `/oirs with the rights shown (${name} px)`);
    let overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `/oirs: no horizontal scrolling at ${name} px (${overflow} px)`);
    await shot(page, `privacy-oirs-rights-${name}`);
    await page.goto(server.base + "/privacidad");
    assert.match(await page.locator("h1").innerText(), /Privacidad y datos personales/);
    assert.deepEqual(await axe(page), [], `/privacidad (${name} px)`);
    await resident.context.close();

    const staff = await session("transp1", { viewport, bypassCSP: true });
    await staff.page.goto(server.base + `/staff/titulares/${RUT_NORM}`);
    await staff.page.getByRole("region", { name: "Casos de la persona" }).waitFor();
    assert.deepEqual(await axe(staff.page), [], `/staff/titulares/${RUT_NORM} (${name} px)`);
    overflow = await staff.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `titular page: no horizontal scrolling at ${name} px (${overflow} px)`);
    await shot(staff.page, `privacy-titular-${name}`);
    await staff.context.close();
  }
});
