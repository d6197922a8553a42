// Test harness: starts the real `ventanilla` binary on a free port with its own SQLite database,
// drives Debian's chromium with playwright-core, and runs axe-core audits.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(here, "..");
export const ARTIFACTS = join(ROOT, "test-artifacts");
const BIN = process.env.VENTANILLA_BIN || join(ROOT, "target", "debug", "ventanilla");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

function env(dir, extra) {
  const e = {
    ...process.env,
    DATABASE_URL: `sqlite://${join(dir, "ventanilla.db")}`,
    VENTANILLA_INTENTS_DIR: join(ROOT, "intents"),
    VENTANILLA_LISTEN: "127.0.0.1:0",
    VENTANILLA_LOG_FORMAT: "json",
    VENTANILLA_RATE_LIMIT: "off",
    // Tests that are not about the second factor log in with a password alone; the one that
    // is (support.test.mjs) asks for it.
    VENTANILLA_REQUIRE_2FA: "none",
    ...extra,
  };
  delete e.VENTANILLA_CONFIG; // the built-in defaults, and no ventanilla.toml in the temp cwd
  return e;
}

/** Starts the service; resolves once it logged the address it listens on. */
export async function startServer(extraEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), "ventanilla-web-"));
  const child = spawn(BIN, ["serve"], { cwd: dir, env: env(dir, extraEnv), stdio: ["ignore", "ignore", "pipe"] });
  const lines = createInterface({ input: child.stderr });
  const logs = [];
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`service did not start:\n${logs.join("\n")}`)), 60000);
    child.on("exit", (code) => reject(new Error(`service exited with ${code}:\n${logs.join("\n")}`)));
    lines.on("line", (line) => {
      logs.push(line);
      if (!line.includes("listening")) return;
      try {
        const addr = JSON.parse(line).fields.addr;
        clearTimeout(timer);
        resolve(`http://${addr}`);
      } catch (_) { /* not the JSON line we want */ }
    });
  });
  return {
    base,
    dir,
    logs,
    /** Adds a staff user through the CLI, as an operator would. */
    addUser(username, password, role, department) {
      const args = ["user", "add", "--username", username, "--role", role];
      if (department) args.push("--department", department);
      const r = spawnSync(BIN, args, { cwd: dir, env: env(dir, extraEnv), input: password + "\n" });
      if (r.status !== 0) throw new Error(`user add failed: ${r.stderr}`);
    },
    /** Runs a command of the binary on this server's database, as an operator would. */
    cli(args, input = "") {
      const r = spawnSync(BIN, args, { cwd: dir, env: env(dir, extraEnv), input });
      if (r.status !== 0) throw new Error(`${args.join(" ")} failed: ${r.stderr}`);
      return r.stdout.toString();
    },
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r() : child.on("exit", r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"],
  });
}

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/**
 * Runs axe-core (WCAG 2.0/2.1 A and AA rules) on the page as it is now, including open shadow
 * roots. The page's context must have been created with `bypassCSP: true` so axe can be injected.
 * Returns the serious and critical violations.
 */
export async function axe(page) {
  await page.addScriptTag({ content: AXE });
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    await axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }));
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  return path;
}

/** The element focused inside the widget's shadow root (or the document's). */
export async function focused(page) {
  return page.evaluate(() => {
    let el = document.activeElement;
    while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
    if (!el) return null;
    return { tag: el.tagName.toLowerCase(), text: (el.textContent || "").trim().slice(0, 80), id: el.id, cls: el.className, label: el.getAttribute("aria-label") };
  });
}

/** Presses Tab (or `key`, e.g. Shift+Tab) until `pred(focused)` holds; fails after `max` presses. */
export async function tabTo(page, pred, max = 60, key = "Tab") {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press(key);
    const f = await focused(page);
    if (f && pred(f)) return f;
  }
  throw new Error("never focused the wanted element by Tab");
}

/** The current month (YYYY-MM) in the municipality's time zone, as the service counts it:
 * at 21:00 on the last day of a month in Chile it is already the next month in UTC. */
export function localMonth(timeZone = "America/Santiago") {
  return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit" })
    .format(new Date());
}
