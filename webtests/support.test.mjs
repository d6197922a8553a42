// Support access in a real browser, with the second factor on (as in production): the
// administrator enrols a TOTP app, grants 15 minutes of `config` to the vendor's engineer, who
// enrols too and fixes a case type's deadline under a banner with the time left; the
// administrator logs in again with a code, watches the action, revokes and reads the summary.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { startServer, launchBrowser, screenshot, axe } from "./harness.mjs";

const PASSWORD = "clave-de-prueba-1";
let server;
let browser;

before(async () => {
  server = await startServer({ VENTANILLA_REQUIRE_2FA: "admin,support" });
  browser = await launchBrowser();
  server.addUser("admin", PASSWORD, "admin");
  server.addUser("proveedor", PASSWORD, "support");
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** RFC 6238 (SHA-1, 6 digits, 30 s) for the base32 secret, `steps` steps from now. */
function totp(secret, steps = 0) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const ch of secret.replace(/=+$/, "")) bits += alphabet.indexOf(ch).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30000) + steps));
  const mac = createHmac("sha1", key).update(counter).digest();
  const off = mac[19] & 0xf;
  const n = ((mac[off] & 0x7f) << 24) | (mac[off + 1] << 16) | (mac[off + 2] << 8) | mac[off + 3];
  return String(n % 1000000).padStart(6, "0");
}

async function context(width) {
  // bypassCSP only lets axe-core inject its script; the pages themselves are unchanged.
  const ctx = await browser.newContext({ viewport: { width, height: 900 }, bypassCSP: true });
  ctx.setDefaultTimeout(10000);
  return ctx;
}

async function passwordStep(page, username) {
  await page.goto(server.base + "/staff");
  await page.getByLabel("Usuario").fill(username);
  await page.getByLabel("Contraseña").fill(PASSWORD);
  await page.getByRole("button", { name: "Ingresar" }).click();
}

/** First login of a user whose role requires a second factor: enrol it; returns the secret. */
async function enrol(page, username, shots) {
  await passwordStep(page, username);
  await page.waitForURL(/\/staff\/2fa$/);
  await page.getByText("Su perfil debe ingresar con un segundo factor").waitFor();
  assert.ok(await page.locator(".qr svg").isVisible(), "the QR code is shown");
  if (shots) {
    await screenshot(page, "support-enrol-1280");
    await page.setViewportSize({ width: 360, height: 900 });
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 360, `no horizontal scroll at 360 px (${width})`);
    await screenshot(page, "support-enrol-360");
    await page.setViewportSize({ width: 1280, height: 900 });
    assert.deepEqual(await axe(page), []);
  }
  const secret = (await page.locator("code.secret").innerText()).trim();
  await page.getByLabel("Código de verificación").fill("000000");
  await page.getByRole("button", { name: "Activar segundo factor" }).click();
  await page.getByRole("alert").filter({ hasText: "El código no coincide" }).waitFor();
  await page.getByLabel("Código de verificación").fill(totp(secret));
  await page.getByRole("button", { name: "Activar segundo factor" }).click();
  await page.getByRole("heading", { name: "Códigos de recuperación" }).waitFor();
  assert.equal(await page.locator("ol.codes li").count(), 10);
  return secret;
}

test("an administrator grants 15 minutes of config, support fixes a parameter, the administrator revokes and reads the summary", async () => {
  const adminCtx = await context(1280);
  const admin = await adminCtx.newPage();
  const adminSecret = await enrol(admin, "admin", true);

  // The grant: who, why, how long, what.
  await admin.goto(server.base + "/staff/admin/soporte");
  await admin.getByLabel("Usuario de soporte").selectOption("proveedor");
  await admin.getByLabel("Motivo").fill("Ticket 481: plazo de reclamos mal cargado");
  await admin.getByLabel("Minutos").fill("15");
  await admin.getByRole("radio", { name: /Configuración \(parámetros/ }).check();
  await admin.getByRole("button", { name: "Autorizar acceso" }).click();
  await admin.getByRole("status").filter({ hasText: "Autorización concedida" }).waitFor();
  const grantUrl = admin.url();
  assert.match(grantUrl, /\/staff\/admin\/soporte\/\d+/);
  await admin.goto(server.base + "/staff/admin/soporte");
  await admin.getByRole("cell", { name: "Vigente" }).waitFor();
  await screenshot(admin, "support-grants-1280");
  await admin.setViewportSize({ width: 360, height: 900 });
  await screenshot(admin, "support-grants-360");
  await admin.setViewportSize({ width: 1280, height: 900 });
  assert.deepEqual(await axe(admin), []);

  // The support engineer: enrols, then sees only what the scope allows, with the time left.
  const supportCtx = await context(1280);
  const support = await supportCtx.newPage();
  await enrol(support, "proveedor", false);
  await support.getByRole("link", { name: "Continuar a la consola" }).click();
  await support.waitForURL(/\/staff\/admin\/parametros/);
  const banner = await support.locator(".support-banner").innerText();
  assert.match(banner, /Acceso de soporte: quedan 1[45] minutos \(alcance: configuración\)/);
  const nav = await support.getByRole("navigation", { name: "Consola" }).innerText();
  assert.ok(nav.includes("Parámetros") && !nav.includes("Casos") && !nav.includes("Usuarios"), nav);
  await screenshot(support, "support-banner-1280");
  await support.getByLabel("Plazo de reclamo").fill("15");
  await support.getByRole("button", { name: "Guardar reclamo" }).click();
  await support.getByRole("status").filter({ hasText: "Cambio guardado" }).waitFor();
  await support.goto(server.base + "/staff/casos");
  await support.getByText("fuera del alcance de su autorización").waitFor();

  // The administrator logs in again: the code step of the login page.
  const again = await (await context(360)).newPage();
  await passwordStep(again, "admin");
  await again.getByLabel("Código de verificación").waitFor();
  await screenshot(again, "support-login-code-360");
  await again.setViewportSize({ width: 1280, height: 900 });
  await screenshot(again, "support-login-code-1280");
  await again.getByLabel("Código de verificación").fill("123");
  await again.getByRole("button", { name: "Verificar" }).click();
  await again.getByRole("alert").filter({ hasText: "El código no es válido" }).waitFor();
  await again.getByLabel("Código de verificación").fill(totp(adminSecret, 1));
  await again.getByRole("button", { name: "Verificar" }).click();
  await again.waitForURL(/\/staff\/casos/);

  // Watch, revoke, read the summary.
  await again.goto(grantUrl);
  await again.getByRole("cell", { name: "POST /staff/admin/parametros" }).waitFor();
  await again.getByRole("button", { name: "Revocar ahora" }).click();
  await again.getByRole("status").filter({ hasText: "Autorización revocada" }).waitFor();
  await again.getByRole("heading", { name: "Resumen" }).waitFor();
  const summary = await again.locator("main").innerText();
  assert.match(summary, /Cambios realizados: 1/);
  assert.match(summary, /Registros de casos leídos: 0/);
  await screenshot(again, "support-summary-1280");

  // Ended at once: the support engineer's next page is refused.
  await support.goto(server.base + "/staff/admin/parametros");
  await support.getByText("no está autorizado en este momento").waitFor();

  const stored = await (await fetch(server.base + "/api/v1/openapi.json")).json();
  assert.ok(stored.paths["/api/v1/admin/support-grants"], "the grants are in the contract");
  await adminCtx.close();
  await supportCtx.close();
  await again.context().close();
});
