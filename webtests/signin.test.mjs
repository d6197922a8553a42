// Sign-in with identity providers in a real browser, against a real OpenID Connect provider
// (webtests/oidc/provider.mjs, panva's oidc-provider): a staff member enters the console with the
// municipal account; a resident enters /mi-cuenta with "ClaveÚnica", sees their own cases (not a
// neighbour's), files a request with a verified identity, and logs out at the provider too.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { startServer, launchBrowser, axe, screenshot, ROOT } from "./harness.mjs";

let provider;
let issuer;
let server;
let browser;

/** A port nobody listens on now: the service must know its own address for its redirect URIs. */
async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

async function fileCase(rut, n) {
  const r = await fetch(server.base + "/api/v1/oirs/cases", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      type: "reclamo", topic: "calles_veredas", name: "María Pérez", rut, consent: true,
      description: `Bache profundo frente al número ${n} de la calle Serrano.`,
    }),
  });
  assert.equal(r.status, 201, await r.clone().text());
  return (await r.json()).folio;
}

before(async () => {
  provider = spawn(process.execPath, [join(ROOT, "webtests", "oidc", "provider.mjs")], { stdio: ["pipe", "pipe", "ignore"] });
  issuer = await new Promise((resolve, reject) => {
    provider.on("exit", (code) => reject(new Error(`test provider exited with ${code}`)));
    createInterface({ input: provider.stdout }).once("line", (line) => resolve(JSON.parse(line).issuer));
  });
  const port = await freePort();
  server = await startServer({
    VENTANILLA_LISTEN: `127.0.0.1:${port}`,
    VENTANILLA_PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    VENTANILLA_STAFF_OIDC_ISSUER: issuer,
    VENTANILLA_STAFF_OIDC_CLIENT_ID: "ventanilla-staff",
    VENTANILLA_STAFF_OIDC_CLIENT_SECRET: "staff-secret",
    VENTANILLA_CLAVEUNICA_ISSUER: issuer,
    VENTANILLA_CLAVEUNICA_CLIENT_ID: "ventanilla-vecinos",
    VENTANILLA_CLAVEUNICA_CLIENT_SECRET: "vecinos-secret",
  });
  server.addUser("dom1", "clave-de-prueba-1", "department", "dom");
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
  provider?.stdin.end();
  provider?.kill();
});

/** A fresh browser (no provider session shared between people). */
async function person(width = 1280) {
  const context = await browser.newContext({ viewport: { width, height: 900 }, bypassCSP: true });
  context.setDefaultTimeout(15000);
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  return { context, page, errors };
}

/** The test provider's sign-in page: any password. */
async function providerLogin(page, login) {
  await page.waitForURL((u) => u.href.startsWith(issuer));
  await page.locator("input[name=login]").fill(login);
  await page.locator("input[name=password]").fill("x");
  await page.locator("button[type=submit]").click();
  // The test provider asks native clients to confirm every time.
  await page.getByRole("button", { name: "Continue" }).click();
}

test("staff enter the console with the municipal account", async () => {
  const { context, page, errors } = await person();
  await page.goto(server.base + "/staff/ingreso");
  const sso = page.getByRole("link", { name: "Ingresar con la cuenta municipal" });
  await sso.waitFor();
  assert.deepEqual(await axe(page), []);
  await screenshot(page, "signin-staff-login-1280");
  await page.setViewportSize({ width: 360, height: 780 });
  await screenshot(page, "signin-staff-login-360");
  await sso.click();
  await providerLogin(page, "dom1");
  // Back in the console, on a same-site navigation that carries the SameSite=Strict session.
  await page.waitForURL(/\/staff\/casos/);
  await page.getByRole("heading", { level: 1 }).waitFor();
  assert.ok((await page.content()).includes("dom1"), "signed in as dom1");
  assert.deepEqual(errors, []);
  await context.close();
});

test("a provider account that is no console user is refused", async () => {
  const { context, page } = await person();
  await page.goto(server.base + "/staff/login/oidc");
  await providerLogin(page, "juan.perez");
  await page.getByText("no corresponde a un usuario activo").waitFor();
  await screenshot(page, "signin-staff-refused-1280");
  assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), "Acceso denegado");
  await context.close();
});

test("a resident with ClaveÚnica sees their own cases and files with a verified identity", async () => {
  const mine = await fileCase("12.345.678-5", 1);
  const theirs = await fileCase("11.111.111-1", 2);
  const { context, page, errors } = await person(360);
  await page.goto(server.base + "/mi-cuenta");
  await screenshot(page, "signin-cuenta-out-360");
  await page.getByRole("link", { name: "Ingresar con ClaveÚnica" }).click();
  await providerLogin(page, "12345678-5");
  await page.waitForURL(/\/mi-cuenta$/);
  await page.getByText("Identidad verificada con ClaveÚnica").first().waitFor();
  const text = await page.content();
  assert.ok(text.includes("12.345.678-5"));
  assert.ok(text.includes(mine), "their case is listed");
  assert.ok(!text.includes(theirs), "a neighbour's case is not");
  assert.deepEqual(await axe(page), []);
  await screenshot(page, "signin-cuenta-360");
  await page.setViewportSize({ width: 1280, height: 900 });
  await screenshot(page, "signin-cuenta-1280");

  await page.getByRole("link", { name: mine }).click();
  await page.getByText("Derivado a").first().waitFor();
  await screenshot(page, "signin-cuenta-caso-1280");

  // A data-rights request, without typing a RUT: the session's is used and marked verified.
  await page.goto(server.base + "/mi-cuenta");
  await page.getByRole("link", { name: /Solicitud sobre mis datos personales/ }).click();
  await page.getByText("identidad verificada con ClaveÚnica").waitFor();
  await screenshot(page, "signin-oirs-verificado-1280");
  await page.locator("#tema").selectOption("datos_personales");
  await page.getByLabel(/Acceso/).first().check();
  await page.getByLabel(/Describa su caso/).fill("Quiero saber qué datos míos tiene la municipalidad.");
  await page.getByLabel(/Nombre/).fill("María José Pérez Soto");
  await page.getByLabel(/Acepto que la municipalidad/).check();
  await page.getByRole("button", { name: "Enviar caso" }).click();
  await page.waitForURL(/\/oirs\/recibido/);
  const folio = (await page.content()).match(/OIRS-\d{4}-\d{6}/)[0];
  await page.goto(server.base + "/mi-cuenta");
  assert.ok((await page.content()).includes(folio), "the new request is listed");

  // Logging out goes to the provider's end-session page.
  await page.getByRole("button", { name: "Cerrar sesión" }).click();
  await page.waitForURL((u) => u.href.startsWith(`${issuer}/session/end`));
  await page.goto(server.base + "/mi-cuenta");
  await page.getByRole("link", { name: "Ingresar con ClaveÚnica" }).waitFor();
  assert.deepEqual(errors, []);
  await context.close();
});
