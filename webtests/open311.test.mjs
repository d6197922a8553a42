// Open311 GeoReport v2 against the running binary: an administrator issues a key with the
// CLI, an app files a report with it, and a real GeoReport v2 client (PyPI `georeport`,
// pinned) reads the services, the listing and the report back in JSON and XML. Then a
// resident files from /oirs with "Usar mi ubicación" (the browser's geolocation) and the
// point reaches the public listing.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { startServer, launchBrowser, screenshot, axe } from "./harness.mjs";

// npm's `open311` (codeforamerica/node-open311 0.0.12) cannot be installed: it depends on a
// GitHub repository over git:// and on request 2.11. `georeport` is maintained; it only reads.
const GEOREPORT_VERSION = "0.3.1";
const VENV = join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "ventanilla", `georeport-${GEOREPORT_VERSION}`);
const PYTHON = join(VENV, "bin", "python");

function ensureGeoreport() {
  const check = () => existsSync(PYTHON) &&
    spawnSync(PYTHON, ["-c", `import georeport, sys; sys.exit(georeport.__version__ != "${GEOREPORT_VERSION}")`]).status === 0;
  if (check()) return;
  const mk = spawnSync("python3", ["-m", "venv", VENV]);
  if (mk.status !== 0) throw new Error(`venv: ${mk.stderr}`);
  const pip = spawnSync(join(VENV, "bin", "pip"), ["install", "-q", "--disable-pip-version-check", `georeport==${GEOREPORT_VERSION}`]);
  if (pip.status !== 0) throw new Error(`pip install georeport: ${pip.stderr}`);
  assert.ok(check(), "georeport installed");
}

/** Runs the georeport client against the service; returns what it read, as JSON. */
function georeport(root, format, folio) {
  const script = `
import json, sys
from georeport import GeoReport
client = GeoReport(sys.argv[1], output_format=sys.argv[2])
out = {
    "services": client.get_service_list(),
    "lights": client.get_service_requests(service_code="alumbrado_publico", status="open"),
    "one": client.get_service_request(sys.argv[3]),
}
print(json.dumps(out))
`;
  const r = spawnSync(PYTHON, ["-c", script, root, format, folio]);
  assert.equal(r.status, 0, `georeport failed: ${r.stderr}`);
  return JSON.parse(r.stdout.toString());
}

const asList = (x) => (Array.isArray(x) ? x : [x]);

let server;
let browser;

before(async () => {
  ensureGeoreport();
  server = await startServer({ VENTANILLA_REQUIRE_2FA: "none" });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test("an app files with a key from the CLI and a GeoReport client reads it back", async () => {
  const out = server.cli(["open311", "key", "add", "--name", "App de prueba"]);
  const key = out.trim().split("\n").pop();
  assert.match(key, /^o311_[0-9a-f]{64}$/);
  assert.doesNotMatch(server.cli(["open311", "key", "list"]), new RegExp(key));

  const form = new URLSearchParams({
    api_key: key,
    service_code: "alumbrado_publico",
    lat: "-36.6183",
    long: "-72.9556",
    address_string: "Avenida Latorre 1200, Tomé",
    description: "Luminaria apagada hace una semana frente al 1200.",
    first_name: "Rosa",
    email: "rosa@example.cl",
    public_description: "true",
  });
  const r = await fetch(`${server.base}/open311/v2/requests.json`, { method: "POST", body: form });
  assert.equal(r.status, 201);
  const [filed] = await r.json();
  assert.match(filed.service_request_id, /^OIRS-\d{4}-\d{6}$/);
  const folio = filed.service_request_id;

  const root = `${server.base}/open311/v2`;
  const json = georeport(root, "json", folio);
  const light = json.services.find((s) => s.service_code === "alumbrado_publico");
  assert.equal(light.service_name, "Alumbrado público");
  assert.equal(light.group, "Dirección de Aseo y Ornato");
  const listed = json.lights.find((x) => x.service_request_id === folio);
  assert.ok(listed, "the report is in the listing");
  assert.equal(listed.status, "open");
  assert.equal(listed.lat, -36.6183);
  assert.equal(json.one.service_request_id, folio);
  assert.equal(json.one.description, "Luminaria apagada hace una semana frente al 1200.");
  assert.equal(json.one.agency_responsible, "Dirección de Aseo y Ornato");

  const xml = georeport(root, "xml", folio);
  const xlight = asList(xml.services).find((s) => s.service_code === "alumbrado_publico");
  assert.equal(xlight.service_name, "Alumbrado público");
  assert.equal(xlight.metadata, "false");
  const xlisted = asList(xml.lights).find((x) => x.service_request_id === folio);
  assert.equal(xlisted.long, "-72.9556");
  assert.equal(xml.one.service_request_id, folio);
  assert.equal(xml.one.status, "open");
  // The client saw no personal data: it was never sent.
  const seen = JSON.stringify([json, xml]);
  assert.ok(!seen.includes("Rosa") && !seen.includes("rosa@"), "no personal data");

  server.cli(["open311", "key", "revoke", "--id", "1"]);
  const again = await fetch(`${server.base}/open311/v2/requests.json`, { method: "POST", body: form });
  assert.equal(again.status, 403, "a revoked key files nothing");
});

for (const width of [360, 1280]) {
  test(`a resident marks the place with "Usar mi ubicación" at ${width} px`, async () => {
    const context = await browser.newContext({
      viewport: { width, height: 900 },
      bypassCSP: true,
      geolocation: { latitude: -36.61234567, longitude: -72.95678912, accuracy: 12 },
      permissions: ["geolocation"],
    });
    context.setDefaultTimeout(10000);
    const page = await context.newPage();
    await page.goto(server.base + "/oirs?tipo=reclamo&tema=calles_veredas");
    const publish = page.getByLabel(/Publicar la descripción/);
    assert.equal(await publish.isChecked(), false, "publication is off by default");
    await page.getByRole("button", { name: "Usar mi ubicación" }).click();
    await page.getByText("Ubicación indicada: -36.612346, -72.956789").waitFor();
    await page.getByRole("button", { name: "Quitar la ubicación" }).click();
    await page.getByText("Sin ubicación en el mapa.").waitFor();
    await page.getByRole("button", { name: "Usar mi ubicación" }).click();
    await page.getByText(/Ubicación indicada/).waitFor();
    await page.getByLabel(/Describa su caso/).fill("Bache grande en la esquina, ya reventó dos neumáticos.");
    await page.getByLabel(/^Nombre/).fill("Juana Pérez");
    await page.getByLabel(/^Dirección/).fill("Serrano esquina Latorre");
    await publish.check();
    await page.getByLabel(/Acepto que la municipalidad/).check();
    const scroll = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(scroll <= width, `no horizontal scroll at ${width} px (${scroll})`);
    assert.deepEqual(await axe(page), []);
    await page.locator("#ubicacion").scrollIntoViewIfNeeded();
    await screenshot(page, `oirs-location-${width}`);
    await page.getByRole("button", { name: "Enviar caso" }).click();
    await page.getByRole("heading", { name: "Recibimos su caso" }).waitFor();
    const folio = (await page.locator("strong.code").allInnerTexts())[0];
    const r = await fetch(`${server.base}/open311/v2/requests/${folio}.json`);
    assert.equal(r.status, 200);
    const [one] = await r.json();
    assert.equal(one.lat, -36.612346);
    assert.equal(one.long, -72.956789);
    assert.equal(one.address, "Serrano esquina Latorre");
    assert.equal(one.description, "Bache grande en la esquina, ya reventó dos neumáticos.");
    await context.close();
  });
}

test("an administrator issues and revokes a key in the console, and staff see the point on the map", async () => {
  const PASSWORD = "clave-de-prueba-1";
  server.addUser("admin311", PASSWORD, "admin");
  for (const width of [360, 1280]) {
    const context = await browser.newContext({ viewport: { width, height: 900 }, bypassCSP: true });
    context.setDefaultTimeout(10000);
    const page = await context.newPage();
    await page.goto(server.base + "/staff");
    await page.getByLabel("Usuario").fill("admin311");
    await page.getByLabel("Contraseña").fill(PASSWORD);
    await page.getByRole("button", { name: "Ingresar" }).click();
    await page.waitForURL(/\/staff\//);
    await page.getByRole("link", { name: "Open311" }).click();
    await page.getByRole("heading", { name: "Open311: claves de aplicaciones" }).waitFor();
    await page.getByLabel("Aplicación u organización que la usará").fill(`App ${width}`);
    await page.getByRole("button", { name: "Emitir clave" }).click();
    const key = await page.locator("code.secret").innerText();
    assert.match(key, /^o311_[0-9a-f]{64}$/);
    assert.deepEqual(await axe(page), []);
    const scroll = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(scroll <= width, `no horizontal scroll at ${width} px (${scroll})`);
    await screenshot(page, `console-open311-${width}`);
    // Shown once: reloading the page does not show it again.
    await page.goto(server.base + "/staff/admin/open311");
    assert.equal(await page.locator("code.secret").count(), 0);
    assert.ok(!(await page.content()).includes(key));
    await page.getByRole("button", { name: `Revocar la clave de App ${width}` }).click();
    await page.getByText("Clave revocada.").waitFor();
    const filed = await fetch(`${server.base}/open311/v2/requests.json`, {
      method: "POST",
      body: new URLSearchParams({ api_key: key, service_code: "areas_verdes", address_string: "Plaza de Armas", description: "Árbol caído sobre la vereda." }),
    });
    assert.equal(filed.status, 403, "revoked in the console");

    // A case with a point: its page links to it on openstreetmap.org.
    const [one] = await (await fetch(`${server.base}/open311/v2/requests.json?service_code=calles_veredas`)).json();
    await page.goto(`${server.base}/staff/casos/${one.service_request_id}`);
    const link = page.getByRole("link", { name: "Ver el punto en OpenStreetMap" });
    assert.equal(await link.getAttribute("href"),
      "https://www.openstreetmap.org/?mlat=-36.612346&mlon=-72.956789#map=18/-36.612346/-72.956789");
    await link.scrollIntoViewIfNeeded();
    await screenshot(page, `console-case-location-${width}`);
    await context.close();
  }
});
