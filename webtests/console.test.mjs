// The staff console in a real browser: department inbox confinement, answering a case and the
// resident seeing the answer, the coordinator's re-routing, analysts refused case details,
// CSRF, logout, administration pages and an axe-core audit.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser, axe, screenshot, localMonth } from "./harness.mjs";

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

  // People's words in the list: each case's subject, type and status names, no raw ids.
  const table = await list.innerText();
  assert.match(table, /Necesito saber el estado de mi permiso/, "the subject");
  assert.match(table, /Solicitud/);
  for (const raw of ["solicitud\t", "permisos_edificacion", "derivado\t", "dom\t"]) assert.ok(!table.includes(raw), `raw id ${raw}`);

  // The CSV export holds the same list, ids with their names beside; the Excel variant uses
  // ";" and a byte-order mark so a Chilean Excel opens it in columns.
  const csv = await (await context.request.get(server.base + "/staff/casos.csv")).text();
  assert.match(csv, /^folio,tipo,tipo_nombre,tema,tema_nombre,departamento,departamento_nombre,estado,estado_nombre/);
  assert.ok(csv.includes(cases.dom.folio) && !csv.includes(cases.dideco.folio));
  assert.ok(csv.includes("Permisos de edificación"));
  assert.ok(!csv.includes("Rosa"), "no personal data in the list export");
  const excel = await (await context.request.get(server.base + "/staff/casos.csv?excel=si")).body();
  assert.deepEqual([...excel.subarray(0, 3)], [0xef, 0xbb, 0xbf], "UTF-8 BOM");
  assert.match(excel.toString("utf8"), /^\ufefffolio;tipo;tipo_nombre;/);

  await list.getByRole("link", { name: cases.dom.folio }).click();
  await page.getByRole("heading", { name: new RegExp(cases.dom.folio) }).waitFor();
  assert.match(await page.locator("main").innerText(), /Rosa Pérez Soto/);
  assert.match(await page.locator("main").innerText(), /quedan \d+ días hábiles/);
  // Answering without text is refused beside the actions, nothing changes.
  await page.getByRole("button", { name: "Responder al vecino" }).click();
  await page.getByRole("alert").filter({ hasText: "Escriba el texto" }).waitFor();
  await page.getByLabel(/Respuesta al vecino/).fill("Su permiso fue aprobado; puede retirarlo en la DOM de lunes a viernes.");
  await page.getByRole("button", { name: "Responder al vecino" }).click();
  // Nothing is sent before its author confirms.
  const confirm = page.locator("#confirmar");
  await confirm.waitFor();
  assert.match(await confirm.innerText(), /Se enviará por correo a rosa@example.cl/);
  assert.doesNotMatch(await page.locator("h1").innerText(), /Respondido/);
  await confirm.getByRole("button", { name: "Enviar la respuesta al vecino" }).click();
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
  assert.equal(await page.getByLabel("Departamento de destino").inputValue(), "", "no department preselected");
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
  const report = await context.request.get(server.base + `/staff/analitica/informe?mes=${localMonth()}&formato=csv`);
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
  assert.match(await page.locator("dl.facts").first().innerText(), /Oficina de Partes \(carta o documento\)/);
  assert.ok((await page.locator("dl.facts").first().innerText()).includes(`${day.split("-").reverse().join("-")} 10:30`));
  await context.close();

  const resident = await session(null);
  await resident.page.goto(server.base + `/seguimiento?folio=${folio}`);
  await resident.page.getByLabel("Código de seguimiento").fill(code);
  await resident.page.getByRole("button", { name: "Ver estado" }).click();
  assert.match(await resident.page.locator("main h2").innerText(), new RegExp(folio));
  const facts = await resident.page.locator("dl.facts").innerText();
  assert.match(facts, /Unidad responsable\s+\S/);
  assert.ok(!facts.includes("secpla") && !facts.includes("calles_veredas"), "names, not ids");
  await resident.context.close();
});

test("staff close a duplicate as a repeat of another folio; the resident is told where it continues", async () => {
  const first = await file("alumbrado_publico", "La luminaria del pasaje Los Aromos 12 está apagada hace una semana.");
  const repeat = await file("alumbrado_publico", "Otra vez: la luminaria del pasaje Los Aromos 12 sigue apagada.");
  const { context, page } = await session("coord");
  await page.goto(server.base + `/staff/casos/${repeat.folio}`);
  const form = page.locator("#accion-duplicado");
  // A folio that does not exist is refused beside the action, with what was typed kept.
  await form.getByLabel("Folio del caso que este repite").fill("OIRS-2020-999999");
  await form.getByRole("button", { name: "Cerrar por duplicado" }).click();
  await page.locator("#err-duplicado").waitFor();
  assert.equal(await page.getByLabel("Folio del caso que este repite").inputValue(), "OIRS-2020-999999");
  await page.getByLabel("Folio del caso que este repite").fill(first.folio);
  await page.locator("#accion-duplicado").getByRole("button", { name: "Cerrar por duplicado" }).click();
  await page.getByRole("status").filter({ hasText: "Caso cerrado" }).waitFor();
  assert.match(await page.locator("h1").innerText(), /Cerrado/);
  assert.match(await page.locator("dl.facts").first().innerText(), new RegExp(`Duplicado de\\s+${first.folio}`));
  // The topic can be corrected too (audited), on the other case.
  await page.goto(server.base + `/staff/casos/${first.folio}`);
  await page.getByLabel("Tema correcto").selectOption("calles_veredas");
  await page.getByRole("button", { name: "Corregir el tema" }).click();
  await page.getByRole("status").filter({ hasText: "Tema corregido" }).waitFor();
  assert.match(await page.locator("dl.facts").first().innerText(), /Tema\s+Calles y veredas/);
  await context.close();

  const resident = await session(null);
  await resident.page.goto(server.base + "/seguimiento");
  await resident.page.getByLabel("Folio").fill(repeat.folio);
  await resident.page.getByLabel("Código de seguimiento").fill(repeat.tracking_code);
  await resident.page.getByRole("button", { name: "Ver estado" }).click();
  assert.match(await resident.page.locator("ol.history").innerText(), new RegExp(`repetir el caso ${first.folio}`));
  await resident.context.close();
});

test("the inbox and the monthly report read in people's words, without raw ids", async () => {
  // A conversation and a compliment, so the report has intents and case types to name.
  const s = await (await fetch(server.base + "/api/v1/chat/sessions", { method: "POST" })).json();
  for (const text of ["horario de atencion de la muni", "quiero que me contacten"]) {
    await fetch(server.base + `/api/v1/chat/sessions/${s.session_id}/messages`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ text }),
    });
  }
  const r = await fetch(server.base + "/api/v1/oirs/cases", {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ type: "felicitacion", topic: "sugerencia", description: "Felicito a la funcionaria del mesón por su amabilidad.", name: "Ana Soto", consent: true }),
  });
  assert.equal(r.status, 201);
  const { context, page } = await session("admin");
  const month = localMonth();
  // The recorder writes in batches: wait for the month's report to count the messages.
  let html = "";
  for (let i = 0; i < 50 && !html.includes("Horarios de atención"); i++) {
    html = await (await context.request.get(server.base + `/api/v1/reports/monthly/${month}?format=html`)).text();
    if (!html.includes("Horarios de atención")) await new Promise((res) => setTimeout(res, 200));
  }
  await page.setContent(html);
  const text = await page.locator("body").innerText();
  assert.match(text, /Horarios de atención/);
  assert.match(text, /Felicitación/);
  for (const raw of ["horario_atencion", "contactar_me", "felicitacion", "permiso_circulacion_campana", "aseo_ornato"]) {
    assert.ok(!text.includes(raw), `raw id ${raw} in the report`);
  }
  assert.doesNotMatch(text, /\b1 casos\b|\b1 nuevos\b|mediana de —/);
  assert.equal(await page.locator("main").count(), 1, "the report has its main landmark");
  await page.goto(server.base + "/staff/casos?estado=todos");
  const inbox = await page.locator("main").innerText();
  for (const raw of ["felicitacion", "alumbrado_publico", "relaciones_publicas"]) assert.ok(!inbox.includes(raw), `raw id ${raw} in the inbox`);
  await context.close();
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
