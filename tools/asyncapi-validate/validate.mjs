// Validate AsyncAPI documents with the official parser (@asyncapi/parser): the spec's JSON
// Schema plus its semantic rules (operation channels, reply references, message payloads).
// Usage: node validate.mjs FILE... ; prints one JSON line per diagnostic, exits 1 when any
// document has an error (or cannot be parsed), 2 on bad usage.
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';

const require = createRequire(import.meta.url);
const { Parser, DiagnosticSeverity } = require('@asyncapi/parser');

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node validate.mjs FILE...');
  process.exit(2);
}
const parser = new Parser();
let failed = false;
for (const file of files) {
  const text = await readFile(file, 'utf8');
  const { document, diagnostics } = await parser.parse(text, { source: file });
  for (const d of diagnostics) {
    const severity = ['error', 'warning', 'information', 'hint'][d.severity] ?? String(d.severity);
    console.log(JSON.stringify({ file, severity, code: d.code, path: d.path.join('/'), message: d.message }));
    if (d.severity === DiagnosticSeverity.Error) failed = true;
  }
  if (document === undefined) {
    failed = true;
  } else {
    console.log(JSON.stringify({ file, ok: !failed, version: document.version(),
      channels: document.channels().length, operations: document.operations().length,
      messages: document.allMessages().length }));
  }
}
process.exit(failed ? 1 : 0);
