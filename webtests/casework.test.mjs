// Case work in a real browser: a resident files with a photo from a 360 px phone and sees it
// listed; staff assign the case, answer with a reply template, attach nothing more, and close.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser, screenshot } from "./harness.mjs";

const PASSWORD = "clave-de-prueba-1";
let server;
let browser;

before(async () => {
  server = await startServer({ VENTANILLA_REQUIRE_2FA: "none" });
  browser = await launchBrowser();
  server.addUser("admin", PASSWORD, "admin");
  server.addUser("coord", PASSWORD, "coordinator");
  server.addUser("luz1", PASSWORD, "department", "aseo_ornato");
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
    await page.waitForURL(/\/staff\//);
  }
  return { context, page };
}

let filed = {};

test("a resident files with a photo from a 360 px phone and sees it listed", async () => {
  const { context, page } = await session(null, { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
  await page.goto(server.base + "/oirs?tipo=reclamo&tema=alumbrado_publico");
  // A real JPEG, drawn by the browser itself.
  const b64 = await page.evaluate(() => {
    const c = document.createElement("canvas");
    c.width = 320; c.height = 240;
    const g = c.getContext("2d");
    g.fillStyle = "#845"; g.fillRect(0, 0, 320, 240);
    g.fillStyle = "#fc3"; g.fillRect(40, 40, 120, 80);
    return c.toDataURL("image/jpeg", 0.9).split(",")[1];
  });
  await page.getByLabel(/Describa su caso/).fill("La luminaria del pasaje Los Aromos lleva dos semanas apagada.");
  await page.getByLabel(/^Nombre/).fill("Juana Pérez");
  await page.getByLabel(/Fotos o documentos/).setInputFiles({ name: "luminaria.jpg", mimeType: "image/jpeg", buffer: Buffer.from(b64, "base64") });
  await page.getByLabel(/Acepto que la municipalidad/).check();
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 360, `no horizontal scroll at 360 px (${width})`);
  await screenshot(page, "oirs-file-360");
  await page.getByRole("button", { name: "Enviar caso" }).click();
  await page.getByRole("heading", { name: "Recibimos su caso" }).waitFor();
  const codes = await page.locator("strong.code").allInnerTexts();
  filed = { folio: codes[0], code: codes[1] };
  await page.getByRole("button", { name: "Ver el estado de mi caso" }).click();
  const files = page.getByRole("list", { name: "Archivos" });
  await files.waitFor();
  assert.match(await files.innerText(), /luminaria\.jpg/);
  assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 360);
  await context.close();
});

test("staff assign the case, answer with a template and close it", async () => {
  const admin = await session("admin");
  await admin.page.goto(server.base + "/staff/admin/plantillas");
  await admin.page.getByLabel("Título").fill("Luminaria reparada");
  await admin.page.getByLabel("Texto").fill("Estimada {{nombre}}: la luminaria de su caso {{folio}} fue reparada por {{unidad}}.");
  await admin.page.getByRole("button", { name: "Agregar plantilla" }).click();
  await admin.page.getByRole("status").filter({ hasText: "Plantilla guardada." }).waitFor();
  await admin.context.close();

  const { context, page } = await session("coord");
  await page.goto(server.base + `/staff/casos/${filed.folio}`);
  // The resident's photo, as a thumbnail that really loaded.
  const img = page.getByRole("img", { name: "Miniatura de luminaria.jpg" });
  await img.waitFor();
  assert.ok(await img.evaluate((i) => i.complete && i.naturalWidth > 0), "thumbnail loads");

  await page.getByLabel(/Funcionario de/).selectOption("luz1");
  await page.getByRole("button", { name: "Asignar a un funcionario" }).click();
  await page.getByRole("status").filter({ hasText: "Caso asignado." }).waitFor();
  assert.match(await page.locator("dl.facts").first().innerText(), /Asignado a\s+luz1/);
  await context.close();

  // The assignee finds it under "Mis casos", answers with the template, then closes.
  const luz = await session("luz1");
  await luz.page.getByRole("link", { name: "Mis casos" }).click();
  await luz.page.getByRole("link", { name: filed.folio }).click();
  await luz.page.getByLabel("Plantilla de respuesta").selectOption({ label: "Luminaria reparada (todas las unidades)" });
  await luz.page.getByRole("button", { name: "Usar plantilla" }).click();
  const answer = luz.page.getByLabel(/Respuesta al vecino/);
  await answer.waitFor();
  const text = await answer.inputValue();
  assert.match(text, new RegExp(`Estimada Juana Pérez: la luminaria de su caso ${filed.folio} fue reparada por Dirección de Aseo y Ornato\\.`));
  await answer.fill(text + " Gracias por avisarnos.");
  await luz.page.getByRole("button", { name: "Responder al vecino" }).click();
  await luz.page.locator("#confirmar").getByRole("button", { name: "Enviar la respuesta al vecino" }).click();
  await luz.page.getByRole("status").filter({ hasText: "Respuesta registrada" }).waitFor();
  await luz.page.getByRole("button", { name: "Cerrar el caso" }).click();
  await luz.page.getByRole("status").filter({ hasText: "Caso cerrado." }).waitFor();
  assert.match(await luz.page.locator("h1").innerText(), /Cerrado/);
  await screenshot(luz.page, "staff-case-closed");
  await luz.context.close();

  // The resident reads the answer.
  const resident = await session(null);
  await resident.page.goto(server.base + "/seguimiento");
  await resident.page.getByLabel("Folio").fill(filed.folio);
  await resident.page.getByLabel("Código de seguimiento").fill(filed.code);
  await resident.page.getByRole("button", { name: "Ver estado" }).click();
  assert.match(await resident.page.locator(".answer").innerText(), /Gracias por avisarnos/);
  await resident.context.close();
});

test("the chat widget's form files a case with a document attached", async () => {
  const context = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
  context.setDefaultTimeout(15000);
  const page = await context.newPage();
  await page.goto(server.base + "/");
  await page.getByRole("button", { name: /Converse con el municipio/ }).click();
  const lastBot = page.locator("#vt-panel .log .msg.bot").last();
  // The greeting (the session exists) before the resident types.
  await lastBot.getByRole("button", { name: "Direcciones, teléfonos y correos" }).waitFor();
  await page.getByLabel("Escriba su consulta").fill("quiero hacer una solicitud a la oirs");
  await page.getByLabel("Escriba su consulta").press("Enter");
  await page.locator("#vt-panel .msg.me", { hasText: "quiero hacer una solicitud" }).waitFor();
  await lastBot.getByRole("button", { name: "Ingresar una solicitud" }).click();
  const form = page.locator("#vt-panel form.inline");
  await form.getByLabel("Tema").selectOption("areas_verdes");
  await form.getByLabel("Describa su caso").fill("Solicito la poda del árbol frente al número 12 de calle Prat.");
  await form.getByLabel("Su nombre").fill("Marta Rivas");
  await form.getByLabel(/Fotos o documentos/).setInputFiles({ name: "carta.pdf", mimeType: "application/pdf", buffer: Buffer.from("%PDF-1.4\n%%EOF\n") });
  await form.getByLabel(/Acepto que la municipalidad/).check();
  await form.getByRole("button", { name: "Enviar caso" }).click();
  const done = page.locator("#vt-panel .msg.filed");
  await done.waitFor();
  assert.match(await done.innerText(), /Adjuntamos 1 archivo a su caso\./);
  await context.close();
});
