// Build the COP front end into src/kizuna/cop/static/ (committed, so `make setup` needs no npm).
// Reproducible: `npm ci && npm run build` from package-lock.json gives the same bytes.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "src", "kizuna", "cop", "static");
mkdirSync(out, { recursive: true });

await build({
  entryPoints: [join(here, "src", "main.js")],
  bundle: true,
  minify: true,
  format: "iife",
  target: ["chrome100", "firefox100", "safari15"],
  loader: { ".json": "json" },
  legalComments: "linked", // third-party licence texts in app.js.LEGAL.txt
  outfile: join(out, "app.js"),
  logLevel: "warning",
});

// One stylesheet: MapLibre's own CSS, then ours.
const css = [
  readFileSync(join(here, "node_modules", "maplibre-gl", "dist", "maplibre-gl.css"), "utf8"),
  readFileSync(join(here, "src", "style.css"), "utf8"),
].join("\n");
writeFileSync(join(out, "app.css"), css);
copyFileSync(join(here, "src", "index.html"), join(out, "index.html"));
// Land for the Python SVG snapshot (kizuna.cop.snapshot): Natural Earth 1:50m, public domain.
copyFileSync(join(here, "node_modules", "world-atlas", "land-50m.json"), join(out, "land-50m.json"));
console.log(`built ${out}`);
