// The catalog review in a real browser: residents ask something the assistant does not know,
// an analyst finds it in "Revisión del asistente" (read well at 1280 and 360 px), assigns it
// to an answer in one click, and the widget answers that question in the next message.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startServer, launchBrowser, axe, screenshot, ROOT } from "./harness.mjs";

const PASSWORD = "clave-de-prueba-1";
const QUESTION = "donde queda la piscina temperada";
let server;
let browser;

async function ask(text) {
  const s = await (await fetch(server.base + "/api/v1/chat/sessions", { method: "POST" })).json();
  const r = await fetch(`${server.base}/api/v1/chat/sessions/${s.session_id}/messages`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ text }),
  });
  assert.equal(r.status, 200);
  return (await r.json()).match;
}

before(async () => {
  server = await startServer({ VENTANILLA_CHAT_EVAL_SETS: join(ROOT, "tests", "data", "regression.tsv") });
  browser = await launchBrowser();
  server.addUser("ana", PASSWORD, "analyst");
  for (const text of [QUESTION, "¿Dónde queda la piscina temperada?", "donde queda la piscina temperadaa"]) {
    assert.notEqual((await ask(text)).decision, "answer", text);
  }
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function login(viewport) {
  const context = await browser.newContext({ viewport, bypassCSP: true });
  context.setDefaultTimeout(15000);
  const page = await context.newPage();
  await page.goto(server.base + "/staff");
  await page.getByLabel("Usuario").fill("ana");
  await page.getByLabel("Contraseña").fill(PASSWORD);
  await page.getByRole("button", { name: "Ingresar" }).click();
  await page.waitForURL(/\/staff\/analitica/);
  return { context, page };
}

/** Opens the worklist until the recorder has written the three conversations. */
async function openWorklist(page) {
  for (let i = 0; i < 50; i++) {
    await page.goto(server.base + "/staff/revision");
    if (await page.locator("li.group", { hasText: "piscina" }).count()) return;
    await page.waitForTimeout(100 * Math.min(i + 1, 5));
  }
  throw new Error("the worklist never showed the question");
}

test("an analyst assigns a question and the widget answers it in the next message", async () => {
  const { context, page } = await login({ width: 1280, height: 900 });
  await page.getByRole("link", { name: "Revisión del asistente" }).click();
  await openWorklist(page);
  const group = page.locator("li.group", { hasText: "piscina" });
  assert.match(await group.innerText(), /3 conversaciones/);
  assert.doesNotMatch(await page.locator("main").innerText(), /cultura_deportes|contacto_direcciones/, "titles, not ids");
  await group.getByLabel("Asignar a…").selectOption({ label: "Cultura y deportes" });
  await group.getByRole("button", { name: "Asignar" }).click();
  await page.getByText("Listo: el asistente ya responde así").waitFor();
  const taught = page.locator("table tr", { hasText: "piscina" });
  assert.match(await taught.innerText(), /Cultura y deportes/);
  assert.deepEqual(await axe(page), []);
  await screenshot(page, "review-1280");

  // The widget, in a resident's browser.
  const resident = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const site = await resident.newPage();
  await site.goto(server.base + "/");
  await site.getByRole("button", { name: /Converse con el municipio/ }).click();
  const input = site.getByLabel("Escriba su consulta");
  await input.fill(QUESTION);
  await input.press("Enter");
  await site.locator("#vt-panel .log .msg.bot", { hasText: "talleres culturales y deportivos" }).waitFor();
  await resident.close();

  // Undo puts the question back as it was.
  await page.getByRole("button", { name: `Deshacer: ${QUESTION}` }).click();
  await page.getByText("Cambio deshecho").waitFor();
  assert.notEqual((await ask(QUESTION)).intent, "cultura_deportes");
  await context.close();
});

test("the worklist reads well on a phone", async () => {
  const { context, page } = await login({ width: 360, height: 740 });
  await openWorklist(page);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `no sideways scrolling (${overflow}px)`);
  await page.getByRole("link", { name: "Nueva respuesta" }).first().click();
  assert.match(await page.getByLabel("Consulta que responderá").inputValue(), /piscina/);
  assert.deepEqual(await axe(page), []);
  await screenshot(page, "review-draft-360");
  await context.close();
});
