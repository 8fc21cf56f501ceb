/**
 * Model file checksums: a folder may hold checksums.json ({"files": {"model.safetensors":
 * "<sha256 hex>", ...}}). Every listed file is checked before the engine loads the folder, so
 * that a corrupted or truncated download gets a clear error instead of garbage output.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const CHECKSUM_FILE = 'checksums.json';

export function sha256File(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Checks every file listed in dir/checksums.json (none listed: nothing to check); throws a clear error. */
export function verifyChecksums(dir: string): number {
  const list = path.join(dir, CHECKSUM_FILE);
  if (!fs.existsSync(list)) return 0;
  let parsed: { files?: Record<string, unknown> };
  try {
    parsed = JSON.parse(fs.readFileSync(list, 'utf8'));
  } catch (err) {
    throw new Error(`${list}: not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const files = parsed.files;
  if (!files || typeof files !== 'object') throw new Error(`${list}: expected {"files": {"name": "sha256 hex"}}`);
  let n = 0;
  for (const [name, want] of Object.entries(files)) {
    if (typeof want !== 'string' || !/^[0-9a-f]{64}$/.test(want)) throw new Error(`${list}: the checksum of ${name} is not a sha256 hex string`);
    const file = path.join(dir, name);
    if (!fs.existsSync(file)) throw new Error(`${file}: missing (listed in ${CHECKSUM_FILE})`);
    const got = sha256File(file);
    if (got !== want) {
      throw new Error(`${file}: checksum mismatch (sha256 ${got.slice(0, 16)}…, expected ${want.slice(0, 16)}…): the file is corrupted or was changed; restore it (e.g. git checkout -- ${name})`);
    }
    n++;
  }
  return n;
}
