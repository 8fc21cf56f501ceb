// Writes models/<name>/checksums.json (sha256 of the weights, config and tokenizer files),
// which the loader checks at every load. Run after copying a new export into the folder.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

const dir = path.resolve(process.argv[2] ?? 'models/hogwild-tiny');
const files = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
const out = {};
for (const f of files) out[f] = crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, f))).digest('hex');
fs.writeFileSync(path.join(dir, 'checksums.json'), JSON.stringify({ algorithm: 'sha256', files: out }, null, 2) + '\n');
console.log(`${path.join(dir, 'checksums.json')}: ${files.length} files`);
