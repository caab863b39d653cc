// Builds the UI into dist/: one JS and one CSS file named by their content
// hash under dist/assets/, and dist/index.html that loads them. The output
// depends only on the sources and the locked dependencies (no timestamps), so
// that `make check-web` can compare a rebuild with the committed files.
import * as esbuild from 'esbuild';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, 'dist');

await rm(dist, { recursive: true, force: true });
await mkdir(join(dist, 'assets'), { recursive: true });

const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: { app: 'src/main.tsx' },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: 'dist/assets',
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  legalComments: 'eof',
  charset: 'utf8',
  metafile: true,
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((p) => p.replace(/^dist\//, ''));
const js = outputs.find((p) => p.endsWith('.js'));
const css = outputs.find((p) => p.endsWith('.css'));
if (!js || !css) {
  throw new Error(`the build made no ${js ? 'CSS' : 'JS'} file: ${outputs.join(', ')}`);
}
const template = await readFile(join(root, 'src', 'index.html'), 'utf8');
await writeFile(join(dist, 'index.html'), template.replace('%CSS%', '/' + css).replace('%JS%', '/' + js));
console.log(`built dist/index.html, dist/${js}, dist/${css}`);
