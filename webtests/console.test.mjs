// The staff console in a real browser: department inbox confinement, answering a case and the
// resident seeing the answer, the coordinator's re-routing, analysts refused case details,
// CSRF, logout, administration pages and an axe-core audit.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser, axe, screenshot } from "./harness.mjs";

const PASSWORD = "clave-de-prueba-1";
let server;
let browser;
const cases = {};

async function file(topic, description) {
  const r = await fetch(server.base + "/api/v1/oirs/cases", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ type: "solicitud", topic, description, name: "Rosa Pérez Soto", email: "rosa@example.cl", consent: true }),
  });
  assert.equal(r.status, 201);
  return r.json();
}

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  server.addUser("admin", PASSWORD, "admin");
  server.addUser("coord", PASSWORD, "coordinator");
  server.addUser("dom1", PASSWORD, "department", "dom");
  server.addUser("dideco1", PASSWORD, "department", "dideco");
  server.addUser("ana", PASSWORD, "analyst");
  cases.dom = await file("permisos_edificacion", "Necesito saber el estado de mi permiso de ampliación en calle Sotomayor 220.");
  cases.dideco = await file("becas", "Quiero postular a la beca municipal para mi hijo que entra a la universidad.");
  assert.equal(cases.dom.department, "dom");
  assert.equal(cases.dideco.department, "dideco");
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function session(username, opts = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...opts });
  context.setDefaultTimeout(10000);
  const page = await context.newPage();
  if (username) {
    await page.goto(server.base + "/staff");
    await page.getByLabel("Usuario").fill(username);
    await page.getByLabel("Contraseña").fill(PASSWORD);
    await page.getByRole("button", { name: "Ingresar" }).click();
    await page.waitForURL(/\/staff\/(casos|analitica)/);
  }
  return { context, page };
}

test("a department user sees only their department's cases, answers one, and the resident sees the answer", async () => {
  const { context, page } = await session("dom1");
  assert.match(await page.locator("h1").innerText(), /Casos de Dirección de Obras Municipales \(DOM\)/);
  const list = page.getByRole("region", { name: "Lista de casos" });
  await list.getByRole("link", { name: cases.dom.folio }).waitFor();
  assert.equal(await list.getByRole("link", { name: cases.dideco.folio }).count(), 0);
  assert.ok(Number(await page.locator("ul.counts li").first().locator("strong").innerText()) >= 1);
  // The department filter is not even offered to department staff.
  assert.equal(await page.getByLabel("Departamento").count(), 0);

  // The CSV export holds the same list.
  const csv = await (await context.request.get(server.base + "/staff/casos.csv")).text();
  assert.match(csv, /^folio,tipo,tema,departamento,estado/);
  assert.ok(csv.includes(cases.dom.folio) && !csv.includes(cases.dideco.folio));
  assert.ok(!csv.includes("Rosa"), "no personal data in the list export");

  await list.getByRole("link", { name: cases.dom.folio }).click();
  await page.getByRole("heading", { name: new RegExp(cases.dom.folio) }).waitFor();
  assert.match(await page.locator("main").innerText(), /Rosa Pérez Soto/);
  assert.match(await page.locator("main").innerText(), /quedan \d+ días hábiles/);
  // Answering without text is refused beside the actions, nothing changes.
  await page.getByRole("button", { name: "Responder al vecino" }).click();
  await page.getByRole("alert").filter({ hasText: "Escriba el texto" }).waitFor();
  await page.getByLabel(/Respuesta al vecino/).fill("Su permiso fue aprobado; puede retirarlo en la DOM de lunes a viernes.");
  await page.getByRole("button", { name: "Responder al vecino" }).click();
  await page.getByRole("status").filter({ hasText: "Respuesta registrada" }).waitFor();
  assert.match(await page.locator("h1").innerText(), /Respondido/);
  await screenshot(page, "staff-case-1280");

  // Another department's case is out of reach.
  const other = await page.goto(server.base + `/staff/casos/${cases.dideco.folio}`);
  assert.equal(other.status(), 403);
  await context.close();

  const resident = await session(null);
  await resident.page.goto(server.base + "/seguimiento");
  await resident.page.getByLabel("Folio").fill(cases.dom.folio);
  await resident.page.getByLabel("Código de seguimiento").fill(cases.dom.tracking_code);
  await resident.page.getByRole("button", { name: "Ver estado" }).click();
  assert.match(await resident.page.locator(".answer").innerText(), /Su permiso fue aprobado/);
  assert.match(await resident.page.locator("main h2").innerText(), /Respondido/);
  await resident.context.close();
});

test("the coordinator re-routes a case and the new department sees it", async () => {
  const { context, page } = await session("coord");
  assert.match(await page.locator("h1").innerText(), /todos los departamentos/);
  await page.getByRole("link", { name: cases.dideco.folio }).click();
  await page.getByLabel("Departamento de destino").selectOption("dom");
  await page.getByLabel("Motivo (interno)").fill("Es un permiso de la DOM, no una beca.");
  await page.getByRole("button", { name: "Derivar a otro departamento" }).click();
  await page.getByRole("status").filter({ hasText: "Caso derivado" }).waitFor();
  assert.match(await page.locator("dl.facts").first().innerText(), /Departamento\s+Dirección de Obras Municipales/);
  assert.match(await page.locator("ol.timeline").innerText(), /Es un permiso de la DOM/);
  await context.close();

  const dom = await session("dom1");
  await dom.page.getByRole("link", { name: cases.dideco.folio }).waitFor();
  await dom.context.close();
  const dideco = await session("dideco1");
  assert.equal(await dideco.page.getByRole("link", { name: cases.dideco.folio }).count(), 0);
  await dideco.context.close();
});

test("an analyst sees the charts and is refused case details", async () => {
  const { context, page } = await session("ana");
  assert.match(page.url(), /\/staff\/analitica/);
  assert.ok(await page.locator("section.chart svg").count() >= 5);
  assert.equal(await page.getByRole("link", { name: "Casos" }).count(), 0, "no cases menu for analysts");
  const resp = await page.goto(server.base + `/staff/casos/${cases.dom.folio}`);
  assert.equal(resp.status(), 403);
  assert.match(await page.locator("h1").innerText(), /Acceso denegado/);
  assert.ok(!(await page.content()).includes("Rosa"));
  const api = await context.request.get(server.base + `/api/v1/staff/cases/${cases.dom.folio}`);
  assert.equal(api.status(), 403);
  // The monthly report downloads through the console.
  await page.goto(server.base + "/staff/analitica");
  const report = await context.request.get(server.base + `/staff/analitica/informe?mes=${new Date().toISOString().slice(0, 7)}&formato=csv`);
  assert.equal(report.status(), 200);
  assert.match(report.headers()["content-disposition"], /attachment/);
  await context.close();
});

test("forms need the session's CSRF token; logout ends the session", async () => {
  const { context, page } = await session("dom1");
  const url = server.base + `/staff/casos/${cases.dideco.folio}`;
  const forged = await context.request.post(url, { form: { accion: "comentar", texto: "forjado" } });
  assert.equal(forged.status(), 403);
  const wrong = await context.request.post(url, { form: { accion: "comentar", texto: "forjado", _csrf: "0".repeat(40) } });
  assert.equal(wrong.status(), 403);
  const api = await context.request.post(server.base + `/api/v1/staff/cases/${cases.dideco.folio}/events`, {
    data: { kind: "comentar", text: "forjado" },
  });
  assert.equal(api.status(), 403);
  assert.equal((await api.json()).error.code, "csrf");
  await page.goto(url);
  assert.ok(!(await page.locator("ol.timeline").innerText()).includes("forjado"));

  await page.getByRole("button", { name: "Cerrar sesión" }).click();
  await page.getByText("Cerró su sesión").waitFor();
  await page.goto(server.base + "/staff/casos");
  assert.match(page.url(), /\/staff\/ingreso\?next=/);
  await context.close();
});

test("an administrator manages users, parameters, the catalog, the outbox and reads the audit log", async () => {
  const { context, page } = await session("admin");
  await page.goto(server.base + "/staff/admin/usuarios");
  await page.getByLabel("Usuario", { exact: true }).fill("secpla1");
  await page.getByLabel("Rol", { exact: true }).selectOption("department");
  await page.getByLabel("Departamento (solo para el rol Departamento)").selectOption("secpla");
  await page.getByLabel("Contraseña (al menos 10 caracteres)").fill("corta");
  await page.getByRole("button", { name: "Agregar usuario" }).click();
  await page.getByRole("alert").filter({ hasText: "al menos 10 caracteres" }).waitFor();
  await page.getByLabel("Usuario", { exact: true }).fill("secpla1");
  await page.getByLabel("Rol", { exact: true }).selectOption("department");
  await page.getByLabel("Departamento (solo para el rol Departamento)").selectOption("secpla");
  await page.getByLabel("Contraseña (al menos 10 caracteres)").fill(PASSWORD);
  await page.getByRole("button", { name: "Agregar usuario" }).click();
  await page.getByRole("status").filter({ hasText: "Usuario guardado" }).waitFor();
  await page.getByRole("rowheader", { name: /secpla1/ }).waitFor();
  const secpla = await session("secpla1");
  assert.match(await secpla.page.locator("h1").innerText(), /Casos de .*SECPLA/);
  await secpla.context.close();

  await page.goto(server.base + "/staff/admin/parametros");
  await page.getByLabel("Fecha").fill("2027-12-24");
  await page.locator("#f-nombre").fill("Feriado municipal de prueba");
  await page.getByRole("button", { name: "Agregar feriado" }).click();
  await page.getByRole("status").filter({ hasText: "Cambio guardado" }).waitFor();
  await page.getByRole("cell", { name: "Feriado municipal de prueba" }).waitFor();

  await page.goto(server.base + "/staff/admin/catalogo");
  await page.getByText("Los archivos pasan la revisión").waitFor();
  await page.getByRole("button", { name: "Recargar el catálogo" }).click();
  await page.getByRole("status").filter({ hasText: "Catálogo recargado" }).waitFor();

  await page.goto(server.base + "/staff/admin/envios");
  await page.getByRole("list", { name: "Estado de la cola" }).waitFor();

  // Reading a case's personal data is audited, and the log is searchable.
  await page.goto(server.base + `/staff/casos/${cases.dom.folio}`);
  await page.goto(server.base + "/staff/admin/auditoria");
  await page.getByLabel("Folio").fill(cases.dom.folio);
  await page.getByLabel("Usuario").fill("admin");
  await page.getByLabel("Acción").fill("ver_caso");
  await page.getByRole("button", { name: "Buscar" }).click();
  const rows = page.getByRole("region", { name: "Registros" }).locator("tbody tr");
  assert.ok((await rows.count()) >= 1, "the read of the case is audited");
  assert.match(await rows.first().innerText(), /admin\s+ver_caso/);
  await context.close();
});

test("staff register a case received on paper and the resident tracks it with the receipt", async () => {
  const { context, page } = await session("coord");
  await page.getByRole("link", { name: "Registrar un caso recibido por otro canal" }).click();
  await page.getByLabel("Canal de recepción").selectOption("oficina_partes");
  const day = new Date(Date.now() - 3 * 86400000).toISOString().slice(0, 10); // YYYY-MM-DD
  await page.getByLabel("Recibido el (hora de Chile)").fill(`${day}T10:30`);
  await page.getByLabel("Tipo de caso").selectOption("reclamo");
  await page.getByLabel("Tema").selectOption("calles_veredas");
  await page.getByLabel("Descripción").fill("Carta recibida: reclamo por vereda rota en calle Latorre 300.");
  await page.getByLabel(/autorizó usar sus datos/).check();
  await page.getByRole("button", { name: "Registrar caso" }).click();
  // The missing name comes back beside its field, with what was typed kept.
  const name = page.getByLabel("Nombre del vecino o vecina");
  assert.equal(await name.getAttribute("aria-invalid"), "true");
  assert.match(await page.locator("#nombre-error").innerText(), /nombre/);
  assert.equal(await page.getByLabel("Descripción").inputValue(), "Carta recibida: reclamo por vereda rota en calle Latorre 300.");
  await name.fill("José Carrasco");
  await page.getByRole("button", { name: "Registrar caso" }).click();
  const receipt = page.getByRole("status");
  const text = await receipt.innerText();
  const folio = text.match(/OIRS-\d{4}-\d{6}/)[0];
  const code = text.match(/Código de seguimiento:\s*(\S+)/)[1];
  await page.getByRole("link", { name: "Ver el caso" }).click();
  assert.match(await page.locator("dl.facts").first().innerText(), /oficina_partes/);
  assert.ok((await page.locator("dl.facts").first().innerText()).includes(`${day.split("-").reverse().join("-")} 10:30`));
  await context.close();

  const resident = await session(null);
  await resident.page.goto(server.base + `/seguimiento?folio=${folio}&code=${code}`);
  assert.match(await resident.page.locator("main h2").innerText(), new RegExp(folio));
  await resident.context.close();
});

test("axe-core finds no serious or critical violations in the console", async () => {
  const anon = await session(null, { bypassCSP: true });
  await anon.page.goto(server.base + "/staff/ingreso");
  assert.deepEqual(await axe(anon.page), [], "login");
  await anon.context.close();
  for (const [user, paths] of [
    ["coord", ["/staff/casos", `/staff/casos/${cases.dom.folio}`, `/staff/casos/${cases.dideco.folio}`, "/staff/casos/nuevo", "/staff/admin/envios"]],
    ["admin", ["/staff/analitica", "/staff/admin/usuarios", "/staff/admin/parametros", "/staff/admin/catalogo", "/staff/admin/auditoria"]],
  ]) {
    const { context, page } = await session(user, { bypassCSP: true });
    for (const path of paths) {
      await page.goto(server.base + path);
      assert.deepEqual(await axe(page), [], `${user} ${path}`);
    }
    if (user === "coord") await screenshot(page, "staff-outbox-1280");
    await context.close();
  }
  const phone = await session("coord", { viewport: { width: 360, height: 740 } });
  await screenshot(phone.page, "staff-inbox-360");
  await phone.context.close();
});
