// Residents' verdicts in a real browser: rating the answer to a closed case on /seguimiento
// from a 360 px phone, and "¿Le sirvió?" → "No" under an answer of the chat widget.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser, axe, screenshot } from "./harness.mjs";

const PASSWORD = "clave-de-prueba-1";
let server;
let browser;
let admin;

async function api(path, { method = "GET", body, token } = {}) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const r = await fetch(server.base + path, { method, headers, body: body && JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : null };
}

async function login(username) {
  const r = await api("/api/v1/auth/login", { method: "POST", body: { username, password: PASSWORD } });
  assert.equal(r.status, 200);
  return r.json.token;
}

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  server.addUser("admin", PASSWORD, "admin");
  server.addUser("ana", PASSWORD, "analyst");
  admin = await login("admin");
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function phone() {
  const context = await browser.newContext({ viewport: { width: 360, height: 740 }, bypassCSP: true });
  context.setDefaultTimeout(15000);
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  return { context, page, errors };
}

test("a resident rates the answer to a closed case on /seguimiento from a 360 px phone", async () => {
  const filed = await api("/api/v1/oirs/cases", {
    method: "POST",
    body: { type: "reclamo", topic: "alumbrado_publico", description: "La luminaria del pasaje Los Aromos lleva dos semanas apagada.", name: "Rosa Pérez Soto", consent: true },
  });
  assert.equal(filed.status, 201);
  const { folio, tracking_code: code } = filed.json;
  const { context, page, errors } = await phone();

  // Not closed yet: no survey.
  await page.goto(`${server.base}/seguimiento?folio=${folio}`);
  await page.getByLabel("Código de seguimiento").fill(code);
  await page.getByRole("button", { name: "Ver estado" }).click();
  await page.getByRole("heading", { name: new RegExp(folio) }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Enviar evaluación" }).count(), 0);

  for (const ev of [{ kind: "responder", text: "Repusimos la luminaria el martes." }, { kind: "cerrar" }]) {
    const r = await api(`/api/v1/staff/cases/${folio}/events`, { method: "POST", body: ev, token: admin });
    assert.equal(r.status, 200, JSON.stringify(r.json));
  }

  await page.goto(`${server.base}/seguimiento?folio=${folio}`);
  await page.getByLabel("Código de seguimiento").fill(code);
  await page.getByRole("button", { name: "Ver estado" }).click();
  const survey = page.getByRole("region", { name: "Evalúe la respuesta" });
  await survey.waitFor();
  // Sending without a score is stopped by the browser (required); the page fits the phone.
  const fits = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  assert.ok(fits, "no horizontal scrolling at 360 px");
  assert.deepEqual(await axe(page), []);
  await survey.getByRole("radio", { name: /^2/ }).check();
  await survey.getByLabel("Comentario (opcional)").fill("Tardaron mucho en venir.");
  await screenshot(page, "survey-360");
  await survey.getByRole("button", { name: "Enviar evaluación" }).click();
  await page.getByText("¡Gracias por evaluar la respuesta!").waitFor();
  assert.equal(await page.getByRole("button", { name: "Enviar evaluación" }).count(), 0);

  // Once: the next visit says it was rated; staff see the score and the comment.
  await page.goto(`${server.base}/seguimiento?folio=${folio}`);
  await page.getByLabel("Código de seguimiento").fill(code);
  await page.getByRole("button", { name: "Ver estado" }).click();
  await page.getByText("Ya evaluó la respuesta a este caso").waitFor();
  const detail = await api(`/api/v1/staff/cases/${folio}`, { token: admin });
  assert.equal(detail.json.satisfaction.score, 2);
  assert.equal(detail.json.satisfaction.comment, "Tardaron mucho en venir.");
  assert.deepEqual(errors, []);
  await context.close();

  // An analyst finds the score, by unit and without the comment, in the console.
  const desk = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const staff = await desk.newPage();
  await staff.goto(server.base + "/staff");
  await staff.getByLabel("Usuario").fill("ana");
  await staff.getByLabel("Contraseña").fill(PASSWORD);
  await staff.getByRole("button", { name: "Ingresar" }).click();
  await staff.waitForURL(/\/staff\/analitica/);
  const section = staff.getByRole("region", { name: "Satisfacción con las respuestas de la OIRS" });
  assert.match(await section.innerText(), /Dirección de Aseo y Ornato\s+1\s+2,00\s+1/);
  assert.doesNotMatch(await staff.content(), /Tardaron mucho/);
  await desk.close();
});

test("in the widget a resident says an answer did not help and is thanked", async () => {
  const { context, page, errors } = await phone();
  await page.goto(server.base + "/");
  await page.getByRole("button", { name: /Converse con el municipio/ }).click();
  const input = page.getByLabel("Escriba su consulta");
  await input.fill("kiero sacar el permiso de sirculasion del auto");
  await input.press("Enter");
  await page.locator("#vt-panel .msg.me", { hasText: "sirculasion" }).waitFor();
  const answer = page.locator("#vt-panel .log .msg.bot").last();
  assert.match(await answer.innerText(), /¿Le sirvió\?/);
  // The greeting (not an answer) asks nothing.
  assert.equal(await page.locator("#vt-panel .log .msg.bot").first().locator(".feedback").count(), 0);
  const no = answer.getByRole("button", { name: "No, esta respuesta no me sirvió" });
  assert.equal(await no.innerText(), "No");
  const box = await no.boundingBox();
  assert.ok(box && box.height >= 28 && box.x + box.width <= 360, "a button a thumb can hit, inside the screen");
  await no.click();
  await answer.getByText("¡Gracias por contarnos!").waitFor();
  assert.equal(await answer.getByRole("button", { name: /esta respuesta/ }).count(), 0);

  // The verdict is recorded against the answer's intent, and the thanks survive a reload.
  const analyst = await login("ana");
  const today = new Date().toLocaleDateString("sv-SE", { timeZone: "America/Santiago" });
  let groups = [];
  for (let i = 0; i < 50 && !groups.length; i++) {
    groups = (await api(`/api/v1/analytics/feedback?from=${today}&to=${today}`, { token: analyst })).json.groups;
    if (!groups.length) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(groups[0].unhelpful, 1);
  assert.equal(groups[0].useful, 0);
  await page.reload();
  await page.locator("#vt-panel .log .msg.bot").last().getByText("¡Gracias por contarnos!").waitFor();
  assert.deepEqual(errors, []);
  await context.close();
});
